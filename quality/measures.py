"""Legibility measures of a page (raw scan + its correction).  Pure functions, no I/O.

All measures are defined so that they are comparable across resolutions: blur and
stroke width are in raw pixels *and* relative to the text-line height; noise and
contrast are relative to the page's own ink/paper levels.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from ._img import downscale, impulse_fraction, percentile_f, percentiles_u8, to_gray_u8
from .correct import WORK_SIDE, CorrectedPage, _rules
from .cutoff import EDGES, find_cut_text, spans_to_corrected

GRID = (8, 6)  # rows, cols of the problem-region grid
PIXEL_BLUR_FLOOR = 0.8  # px: edge spread of a perfectly sharp, anti-aliased scan


@dataclass
class PageMeasures:
    width: int = 0
    height: int = 0
    dpi: float = 300.0
    # exposure
    paper_level: float = 255.0      # raw paper brightness 0..255 (median)
    darkness: float = 0.0           # 1 - paper_level/255
    contrast: float = 1.0           # ink/paper separation after illumination normalisation 0..1
    dynamic_range: float = 255.0    # raw grey levels between paper and ink
    uneven_lighting: float = 0.0    # 1 - darkest paper / median paper (0 = even)
    min_dynamic_range: float = 255.0  # grey levels between ink and paper in the darkest area
    # sharpness and noise
    blur_sigma_px: float = 0.0      # estimated Gaussian edge blur, raw pixels
    blur_rel: float = 0.0           # blur beyond the 0.8 px sampling floor / (char_height_px / 10)
    sharpness: float = 1.0          # 0..1 (1 = crisp)
    noise: float = 0.0              # paper noise sigma relative to ink/paper contrast
    impulse_noise: float = 0.0      # fraction of salt-and-pepper pixels
    # resolution and text
    stroke_width_px: float = 0.0
    stroke_depth: float = 1.0       # median darkness of stroke centres, 0..1 (thin + blurred -> low)
    char_height_px: float = 0.0     # median text-line band height, raw pixels
    effective_resolution: float = 0.0  # char height in px at which OCR sees the text (after upscale)
    text_coverage: float = 0.0      # ink fraction of the page
    text_lines: int = 0
    blank: bool = False
    # geometry
    skew_degrees: float = 0.0
    rotation: int = 0
    skew_recoverable: bool = True
    skew_confidence: float = 0.0
    orientation_confidence: float = 0.0
    cut_off: bool = False
    cut_off_edges: list = field(default_factory=list)   # e.g. ["right"], edges of the corrected image
    cut_off_fraction: float = 0.0   # largest share of an edge covered by text strokes cut by it
    cut_off_strokes: int = 0        # most text strokes cut by one edge (0 = nothing continues past an edge)
    cut_off_segments: list = field(default_factory=list)  # [x0, y0, x1, y1] corrected coords: where text is lost
    border_fraction: float = 0.0    # widest scanner-lid border / page side
    # problem regions in corrected-image coordinates: (left, top, width, height)
    dark_regions: list = field(default_factory=list)
    blur_regions: list = field(default_factory=list)
    line_bands: list = field(default_factory=list)  # text-line (top, bottom) rows in the corrected image
    corrected_size: tuple = (0, 0)  # (width, height) of the corrected image
    legibility: float = 0.0         # filled by measure_page via legibility_score

    def as_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, (np.floating, np.integer)):
                d[k] = v.item()
            elif isinstance(v, float):
                d[k] = round(v, 5) if math.isfinite(v) else None
            elif isinstance(v, tuple):
                d[k] = list(v)
        d["dark_regions"] = [list(map(int, b)) for b in self.dark_regions]
        d["blur_regions"] = [list(map(int, b)) for b in self.blur_regions]
        d["line_bands"] = [list(map(int, b)) for b in self.line_bands]
        d["cut_off_segments"] = [list(map(int, b)) for b in self.cut_off_segments]
        return d


def _crops(img: np.ndarray, mask_work: np.ndarray, ws: float, n: int = 6, size: int = 256):
    """Up to `n` full-resolution crops centred on text-dense working-copy cells."""
    h, w = img.shape
    if h < 32 or w < 32:
        return [img]
    cs = max(4, int(size * ws))
    dens = cv2.boxFilter(mask_work.astype(np.float32), -1, (cs, cs), normalize=True)
    out = []
    d = dens.copy()
    for _ in range(n):
        y, x = np.unravel_index(int(np.argmax(d)), d.shape)
        if d[y, x] <= 0.01 and out:
            break
        cy, cx = int(y / ws), int(x / ws)
        y0 = max(0, min(h - size, cy - size // 2))
        x0 = max(0, min(w - size, cx - size // 2))
        out.append(img[y0:y0 + size, x0:x0 + size])
        d[max(0, y - cs):y + cs, max(0, x - cs):x + cs] = -1
    return out


def _edge_blur(crop_norm: np.ndarray) -> float:
    """Gaussian-equivalent edge blur (px) from the steepest edges: sigma = C / (sqrt(2 pi) G)."""
    c8 = cv2.medianBlur(crop_norm, 3)
    # (the percentiles of an 8-bit tile from its histogram: this runs on every text tile of a held page)
    lo, hi = percentiles_u8(c8, (1, 90)) if c8.dtype == np.uint8 else np.percentile(c8, (1, 90))
    c = c8.astype(np.float32)
    C = hi - lo
    if C < 3:
        return float("inf")
    if C < 40:  # faint page: judge the edge profile, not the (separately measured) contrast
        c = (c - lo) * (200.0 / C)
        C = 200.0
    gx = np.abs(cv2.Sobel(c, cv2.CV_32F, 1, 0, ksize=3)) / 8.0
    gy = np.abs(cv2.Sobel(c, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
    sig = []
    for g in (gx, gy):
        gp = percentile_f(g, 99.3)
        sig.append(C / (math.sqrt(2 * math.pi) * max(gp, 1e-3)))
    return max(sig)


def _stroke_depth(crop_norm: np.ndarray) -> float:
    """How dark stroke centres get (0..1): thin strokes under blur never reach full ink."""
    c = cv2.medianBlur(crop_norm, 3)
    lo, hi = np.percentile(c, 0.5), np.percentile(c, 90)
    if hi - lo < 3:
        return 0.0
    mins = (cv2.erode(c, np.ones((5, 5), np.uint8)) == c) & (c < hi - 0.25 * (hi - lo))
    if mins.sum() < 10:
        return 0.0
    return float(max(0.0, (hi - np.median(c[mins])) / max(hi, 1.0)))


def _stroke_width(crop_norm: np.ndarray) -> float:
    c = cv2.medianBlur(crop_norm, 3)
    lo, hi = np.percentile(c, 1), np.percentile(c, 90)
    if hi - lo < 20:
        return 0.0
    m = (c < 0.5 * (lo + hi)).astype(np.uint8)
    area = int(m.sum())
    if area < 30:
        return 0.0
    per = int((m & (1 - cv2.erode(m, np.ones((3, 3), np.uint8)))).sum())
    return 2.0 * area / max(per, 1)


def _noise(crop_raw: np.ndarray, paper: float, span: float) -> tuple[float, float]:
    """(relative Gaussian noise sigma on flat areas, impulse fraction)."""
    c = crop_raw.astype(np.float32)
    med = cv2.medianBlur(crop_raw, 5)
    impulse = impulse_fraction(crop_raw)
    k = np.ones((9, 9), np.uint8)
    flat = (cv2.dilate(med, k).astype(np.int16) - cv2.erode(med, k).astype(np.int16)) < 0.3 * span
    flat &= med.astype(np.float32) > paper - 0.5 * span  # flat paper, not solid ink
    sm = cv2.GaussianBlur(med, (0, 0), 1.5).astype(np.float32)
    r = (c - sm)[flat]
    if r.size < 200:
        r = (c - sm).ravel()
    if r.size == 0:
        return 0.0, impulse
    sigma = float(np.sqrt(np.mean(r * r)))
    return sigma / max(span, 1.0), impulse


def _edges_after_rotation(edges: list, rotation: int) -> list:
    """Raw-image edge names -> edges of the corrected (rotated CCW by `rotation`) image."""
    turn = {"top": "left", "left": "bottom", "bottom": "right", "right": "top"}  # one CCW quarter turn
    out = []
    for e in edges:
        for _ in range((rotation // 90) % 4):
            e = turn[e]
        out.append(e)
    return out


def _ordered(items) -> list:
    out = []
    for i in items:
        if i not in out:
            out.append(i)
    return out


def _edge_contact(mask: np.ndarray, border: tuple[int, int, int, int]) -> dict[str, float]:
    """Share of each edge (inside any lid border) along which text ink touches it."""
    h, w = mask.shape
    bl, bt, br, bb = border
    d = max(2, int(round(0.004 * max(h, w))))
    sub = mask[bt:h - bb, bl:w - br]
    if sub.size == 0 or sub.shape[0] <= 2 * d or sub.shape[1] <= 2 * d:
        return {}
    res = {}
    for name, strip, along in (("left", sub[:, :d], 1), ("right", sub[:, -d:], 1),
                               ("top", sub[:d, :], 0), ("bottom", sub[-d:, :], 0)):
        hit = strip.any(axis=along)
        # ignore isolated specks: close small gaps, drop runs shorter than ~0.3% of the edge
        hit = hit.astype(np.uint8)
        k = max(2, len(hit) // 300)
        hit = cv2.morphologyEx(hit[None, :], cv2.MORPH_OPEN, np.ones((1, k), np.uint8))[0]
        res[name] = float(hit.mean())
    return res


def _corner_contact(shape, border: tuple[int, int, int, int], skew_degrees: float) -> dict[str, float]:
    """Share of each edge that one straight text edge skewed by `skew_degrees` touches within the
    contact depth of `_edge_contact` (0 for an upright page: any contact along it is a line at the edge)."""
    h, w = shape
    bl, bt, br, bb = border
    t = math.tan(math.radians(min(abs(float(skew_degrees or 0.0)), 45.0)))
    if t < math.tan(math.radians(0.5)):
        return dict.fromkeys(EDGES, 0.0)
    d = max(2, int(round(0.004 * max(h, w))))
    along = {"left": h - bt - bb, "right": h - bt - bb, "top": w - bl - br, "bottom": w - bl - br}
    return {k: min(1.0, d / t / max(n, 1)) for k, n in along.items()}



def _edge_span(edge: str, work_shape, ws: float, raw_shape) -> tuple[int, int, int, int]:
    """The whole of a raw edge as a segment (x0, y0, x1, y1)."""
    h, w = raw_shape
    return {"left": (0, 0, 0, h - 1), "right": (w - 1, 0, w - 1, h - 1),
            "top": (0, 0, w - 1, 0), "bottom": (0, h - 1, w - 1, h - 1)}[edge]


def measure_page(raw, corrected: CorrectedPage, dpi: float = 300.0) -> PageMeasures:
    from .score import legibility_score  # local import: score depends on PageMeasures

    g = to_gray_u8(raw)
    h, w = g.shape
    m = PageMeasures(width=int(w), height=int(h), dpi=float(dpi or 0.0))
    cp = corrected
    m.skew_degrees, m.rotation = float(cp.skew_degrees), int(cp.rotation)
    m.skew_recoverable, m.skew_confidence = bool(cp.skew_recoverable), float(cp.skew_confidence)
    m.orientation_confidence = float(cp.orientation_confidence)
    m.corrected_size = (int(cp.image.shape[1]), int(cp.image.shape[0]))
    m.paper_level = float(cp.paper_level)
    m.darkness = float(1.0 - cp.paper_level / 255.0)
    m.contrast = float(max(0.0, (255.0 - min(cp.ink_level, 255.0)) / 255.0))
    m.dynamic_range = float(cp.paper_level * m.contrast)
    m.uneven_lighting = float(max(0.0, 1.0 - cp.paper_min / max(cp.paper_level, 1.0)))
    m.min_dynamic_range = float(cp.paper_min * m.contrast)
    bl, bt, br, bb = cp.border
    if cp.background is not None:
        bh, bw = cp.background.shape
        m.border_fraction = float(max((bl + br) / max(bw, 1), (bt + bb) / max(bh, 1)))
    if h < 16 or w < 16:
        m.blank = True
        m.legibility = legibility_score(m)
        return m

    # working copy of the illumination-normalised raw page
    if cp.work is not None:
        work, ws2 = cp.work, cp.work_scale
    else:
        work, ws2 = downscale(g, WORK_SIDE)
    p1, p99 = np.percentile(work, (0.5, 99.5))
    if p99 - p1 < 12 and cp.skew_confidence < 1.6:  # uniform sheet (all white, all black, flat grey)
        m.blank = True
        m.dynamic_range = float(p99 - p1)
        m.legibility = legibility_score(m)
        return m
    bg = cp.background if cp.background is not None and cp.background.shape == work.shape else \
        np.maximum(cv2.GaussianBlur(cv2.dilate(work, np.ones((15, 15), np.uint8)), (0, 0), 7), 1)
    norm_w = cv2.divide(work, bg, scale=255)
    thr = 255 - 0.5 * (255 - min(cp.ink_level, 252))
    mask_w = norm_w <= thr
    if any(cp.border):
        hh, ww = mask_w.shape
        mask_w[:, :bl + 1 if bl else 0] = False
        mask_w[:bt + 1 if bt else 0, :] = False
        if br:
            mask_w[:, ww - br - 1:] = False
        if bb:
            mask_w[hh - bb - 1:, :] = False
    # specks: remove components smaller than ~ a dot
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask_w.astype(np.uint8), connectivity=8)
    small_px = max(2, int(round(4 * (ws2 * 300 / 100) ** 2 / 9)))
    keep = stats[:, cv2.CC_STAT_AREA] >= small_px
    keep[0] = False
    big = keep[lab]
    m.text_coverage = float(big.mean())

    # text lines in the corrected image (working scale)
    bands = list(cp.line_bands) if m.text_coverage > 0.0005 else []
    m.text_lines = len(bands)
    m.line_bands = [(int(a), int(b)) for a, b in bands]
    m.char_height_px = float(cp.line_height_px / max(cp.upscale, 1e-6))
    m.effective_resolution = float(cp.line_height_px)
    # blank: almost no ink and no text-line structure
    m.blank = bool(m.text_coverage < 0.0015 or (m.text_lines < 1 and m.text_coverage < 0.004))

    # full-resolution crops for blur, stroke and noise
    span = max(cp.paper_level * m.contrast, 1.0)
    if not m.blank:
        crops = _crops(g, big, ws2, n=4)
        hh, ww = g.shape
        ncrops = [g[max(0, y0):max(0, y0) + 256, max(0, x0):max(0, x0) + 256] for y0, x0 in
                  ((hh // 2 - 128, ww // 2 - 128), (hh // 4, ww // 4), (3 * hh // 4 - 256, 3 * ww // 4 - 256),
                   (hh // 4, 3 * ww // 4 - 256))]
        blurs, strokes, noises, imps, depths = [], [], [], [], []
        for c in crops:
            # local illumination normalisation of the crop
            cb = cv2.dilate(c, np.ones((9, 9), np.uint8))
            cb = np.maximum(cv2.GaussianBlur(cb, (0, 0), 6), 1)
            cn = cv2.divide(c, cb, scale=255)
            blurs.append(_edge_blur(cn))
            strokes.append(_stroke_width(cn))
            depths.append(_stroke_depth(cn))
        for c in ncrops:
            if c.size == 0:
                continue
            nz, im = _noise(c, cp.paper_level, span)
            noises.append(nz)
            imps.append(im)
        m.blur_sigma_px = float(np.median(blurs))
        m.stroke_width_px = float(np.median(strokes))
        # relative to the page's ink/paper contrast: a faded but sharp page is deep, a blurred thin font is not
        m.stroke_depth = float(min(1.0, np.median(depths) / max(m.contrast, 0.02))) if depths else 0.0
        m.noise = float(np.median(noises)) if noises else 0.0
        m.impulse_noise = float(np.median(imps)) if imps else 0.0
        ref = max(m.char_height_px, 4.0) / 10.0  # blur in tenths of the text-line height
        # optical blur beyond the sampling floor (a sharp scan measures ~0.8 px at any resolution;
        # the cost of coarse sampling itself is judged by char_height_px)
        excess = math.sqrt(max(m.blur_sigma_px ** 2 - PIXEL_BLUR_FLOOR ** 2, 0.0)) if math.isfinite(m.blur_sigma_px) else 1e3
        m.blur_rel = float(min(excess / ref, 50.0))
        m.sharpness = float(1.0 / (1.0 + max(0.0, m.blur_rel - 0.2) ** 2))
    else:
        crops = _crops(g, np.ones_like(mask_w), ws2, n=2)
        nz = [_noise(c, cp.paper_level, max(cp.paper_level, 1.0)) for c in crops]
        m.noise = float(np.median([a for a, _ in nz]))
        m.impulse_noise = float(np.median([b for _, b in nz]))

    # cut-off: text strokes cut by an edge of the scan (full resolution), or text right at a lid border
    if not m.blank:
        cut = find_cut_text(g, work=work, work_scale=ws2, border=cp.border, char_height_px=m.char_height_px,
                            paper_level=cp.paper_level, dynamic_range=m.dynamic_range,
                            skew_degrees=cp.skew_degrees, noisy=cp.noise_sigma > 10 or cp.impulse > 0.004)
        bad = list(cut.edges)
        if abs(cp.skew_degrees) < 5.0:
            # an upright page: text running on to an edge between two lines leaves no cut stroke,
            # only text right at the edge (within 0.4 % of the page) on a part of it, well above the
            # noise that touches every edge alike; a skewed page's intact text block touches the edges
            # with its corners, so it is judged by cut strokes only
            # (a form's frame and table rules near the edge are not text running off it)
            contact = _edge_contact(big & ~_rules(big), cp.border)
            vals = sorted(contact.values())
            floor = vals[len(vals) // 2] if vals else 0.0
            # a page skewed by a few degrees, its text intact up to the edge: a line meets the edge with
            # one slanted end, within the contact depth over `corner` of the edge's length; text cut along
            # the edge of a slanted page leaves cut strokes instead (find_cut_text)
            corner = _corner_contact(big.shape, cp.border, cp.skew_degrees)
            for k, v in contact.items():
                if v >= 0.004 and v > 3.0 * floor and v > 1.5 * corner[k] and k not in bad:
                    bad.append(k)
                    cut.fraction[k] = max(cut.fraction.get(k, 0.0), v)
                    cut.spans.append((k, *_edge_span(k, big.shape, ws2, g.shape)))
        # a lid border with text right at its inner edge probably hides more text under it
        lh_w = max(2.0, m.char_height_px * ws2)
        rows, cols = big.any(axis=1), big.any(axis=0)
        lid_edges = []
        for name, b, prof, rev in (("left", bl, cols, False), ("top", bt, rows, False),
                                   ("right", br, cols, True), ("bottom", bb, rows, True)):
            if not b or name in bad:
                continue
            p = prof[::-1] if rev else prof
            idx = np.flatnonzero(p[b + 1:])
            if idx.size and idx[0] < 0.6 * lh_w:
                bad.append(name)
                lid_edges.append(name)
        segs, seg_edges = spans_to_corrected(cut.spans, cp.matrix, m.corrected_size)
        # edges of the corrected image: where the cut strokes land after deskew (a steep page's raw
        # left edge may be the corrected page's top), and the lid edges turned with the page
        m.cut_off_edges = _ordered(seg_edges + _edges_after_rotation(lid_edges, cp.rotation))
        m.cut_off_segments = segs
        m.cut_off_strokes = int(max(cut.strokes.values())) if cut.strokes else 0
        m.cut_off_fraction = float(max(cut.fraction.values())) if cut.fraction else 0.0
        m.cut_off = bool(bad)

    # problem regions in corrected coordinates
    m.dark_regions = _dark_regions(cp, m)
    m.legibility = legibility_score(m)
    return m


def _dark_regions(cp: CorrectedPage, m: PageMeasures) -> list:
    """Grid cells (corrected coordinates) whose raw paper brightness is low."""
    if cp.background is None:
        return []
    W, H = m.corrected_size
    q = 1.0 / 8.0
    M = np.asarray(cp.matrix, np.float64).copy()
    M[:, 0] /= cp.work_scale
    M[:, 1] /= cp.work_scale
    Ms = M * q
    sw, sh = max(1, int(W * q)), max(1, int(H * q))
    bgc = cv2.warpAffine(cp.background, Ms, (sw, sh), flags=cv2.INTER_LINEAR, borderValue=255)
    lim = min(0.55 * max(m.paper_level, 1.0), 110.0) if m.uneven_lighting > 0.3 else 90.0
    rows, cols = GRID
    out = []
    for i in range(rows):
        for j in range(cols):
            y0, y1 = i * sh // rows, (i + 1) * sh // rows
            x0, x1 = j * sw // cols, (j + 1) * sw // cols
            cell = bgc[y0:y1, x0:x1]
            if cell.size and float(np.median(cell)) < lim:
                out.append((int(x0 / q), int(y0 / q), int((x1 - x0) / q), int((y1 - y0) / q)))
    return out
