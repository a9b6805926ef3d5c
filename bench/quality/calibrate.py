"""Calibrate the legibility score on benchmark results (CER after correction).

    .venv/bin/python -m bench.quality.calibrate bench/quality/out/results-full-s0.jsonl

Fits the (midpoint, width) of every factor term in quality/score.py:PARAMS to maximise the
Spearman rank correlation between the score and (1 - CER after correction), with a small
least-squares term that keeps the score on a 0..1 "probability of a good read" scale.
Prints the new PARAMS; paste them into quality/score.py and bump SCORE_MODEL.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _features(recs, params):
    names = list(params)
    X = np.array([[float(r["measures"].get(params[n][0]) or 0.0) for n in names] for r in recs])
    X[~np.isfinite(X)] = 1e6
    flags = np.array([(r["measures"].get("blank", False), r["measures"].get("cut_off", False),
                       not r["measures"].get("skew_recoverable", True)) for r in recs], float)
    return names, X, flags


def score_matrix(theta, names, X, flags, params):
    s = np.ones(len(X))
    for j, n in enumerate(names):
        sign = params[n][3]
        mid, lw = theta[2 * j], theta[2 * j + 1]
        z = sign * (X[:, j] - mid) / math.exp(lw)
        s *= 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    s = np.where(flags[:, 0] > 0, 0.0, s)
    s = s * np.where(flags[:, 1] > 0, 0.5, 1.0) * np.where(flags[:, 2] > 0, 0.2, 1.0)
    return s


def main(paths):
    from scipy.optimize import minimize
    from scipy.stats import spearmanr

    from quality.score import PARAMS

    recs = []
    for p in paths:
        recs += [json.loads(l) for l in open(p) if l.strip()]
    recs = [r for r in recs if r.get("cer_after") is not None]
    y = 1.0 - np.clip([r["cer_after"] for r in recs], 0, 1)
    good = (np.array([r["cer_after"] for r in recs]) <= 0.10).astype(float)
    names, X, flags = _features(recs, PARAMS)
    theta0 = np.array([v for n in names for v in (PARAMS[n][1], math.log(PARAMS[n][2]))])

    def loss(theta):
        s = score_matrix(theta, names, X, flags, PARAMS)
        rho = spearmanr(s, y).statistic
        if not np.isfinite(rho):
            rho = 0.0
        return -rho + 0.2 * float(np.mean((s - good) ** 2))

    print(f"start: spearman={spearmanr(score_matrix(theta0, names, X, flags, PARAMS), y).statistic:.4f}")
    best = minimize(loss, theta0, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-6})
    th = best.x
    for _ in range(2):  # restarts help Nelder-Mead on a rank objective
        best = minimize(loss, th, method="Nelder-Mead", options={"maxiter": 3000})
        th = best.x
    s = score_matrix(th, names, X, flags, PARAMS)
    print(f"fitted: spearman={spearmanr(s, y).statistic:.4f} over {len(recs)} pages")
    print("PARAMS = {")
    for j, n in enumerate(names):
        attr, _, _, sign = PARAMS[n]
        print(f'    "{n}": ("{attr}", {th[2 * j]:.4g}, {math.exp(th[2 * j + 1]):.4g}, {sign:+d}),')
    print("}")


if __name__ == "__main__":
    main(sys.argv[1:])
