"""Access: every operation of the app's OpenAPI schema, walked with no credentials, a wrong token, and the tokens
of every role, office and court that may not see the filing (issue 11).

No credentials or a wrong token: 401 on the API (a web page sends the browser to the login page, or refuses a
form post without its CSRF token). A valid token of a role, office or court that may not see the filing: 404,
never the document. A route the walk does not know fails the test, so a new endpoint must be classified here.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

PUBLIC = {"/healthz", "/readyz"}  # liveness and readiness: no filing data in them

# who may get an answer other than 404 for a path (the filing: office A, court X, held, not forwarded)
EXACT = {
    "/api/v1/batches": {"stA", "stB"},  # any station uploads for its own office
    "/api/v1/batches/{batch_id}": {"stA"},
    "/api/v1/batches/{batch_id}/pdf": {"stA"},
    "/api/v1/batches/{batch_id}/pages/{seq}/rescan": {"stA"},
    "/api/v1/batches/{batch_id}/pages/{seq}/problems.png": {"stA", "qa"},
    "/api/v1/batches/{batch_id}/pages/{seq}/thumbnail.jpg": {"stA", "qa"},
    "/api/v1/court/filings": {"clX", "clY"},  # each clerk's own inbox
}
PREFIXES = [
    ("/api/v1/court/filings/", set()),  # not forwarded: no court sees it yet
    ("/api/v1/review", {"qa"}),
    ("/qa", {"qa"}),
]
PRINCIPALS = {"stA": ("station", {"office": "A"}), "stB": ("station", {"office": "B"}),
              "clX": ("clerk", {"court": "X"}), "clY": ("clerk", {"court": "Y"}), "qa": ("qa", {})}


def _allowed(path: str) -> set[str]:
    if path in EXACT:
        return EXACT[path]
    for prefix, who in PREFIXES:
        if path.startswith(prefix):
            return who
    raise AssertionError(f"route {path} is not classified in tests/test_access.py: who may see it?")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import os

    from api.app import create_app
    from khana.bootstrap import build_runtime
    from khana.settings import Settings
    from pipeline import stages
    from pipeline.accounts import Accounts
    from pipeline.finalise import finalise_batch
    from pipeline.service import BatchMeta, KhanaService, Upload

    home = tmp_path_factory.mktemp("access")
    settings = Settings(home=home)
    rt = build_runtime(settings)
    acc = Accounts(rt.db)
    tokens = {name: acc.create_token(role, **kw)[1] for name, (role, kw) in PRINCIPALS.items()}
    buf = io.BytesIO()
    Image.fromarray(np.full((877, 620), 255, np.uint8)).save(buf, "PNG")
    sub = KhanaService(rt).submit_batch([Upload("p.png", buf.getvalue())],
                                        BatchMeta(office="A", court="X", case_number="140209987654321",
                                                  document_type="petition"))
    for pid in sub.page_ids:
        stages.run_page(rt, pid)
    assert finalise_batch(rt, sub.batch_id) == "held"
    assert os.environ.get("KHANA_API_TOKENS") is None
    with TestClient(create_app(rt, start_worker=False, settings=settings)) as c:
        spec = c.get("/openapi.json").json()
        yield c, spec, tokens, sub.batch_id
    rt.close()


def _operations(spec) -> list[tuple[str, str]]:
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]


def _url(path: str, batch: str) -> str:
    return (path.replace("{batch_id}", batch).replace("{batch}", batch).replace("{seq}", "1").replace("{n}", "1")
            .replace("{kind}", "overlay"))


def test_the_walk_covers_every_operation_of_the_schema(world):
    _c, spec, _t, _b = world
    ops = _operations(spec)
    assert len(ops) >= 20
    for _m, path in ops:
        if path not in PUBLIC:
            _allowed(path)  # classified


def test_no_credentials_or_a_wrong_token_is_401_or_the_login_page(world):
    c, spec, _t, batch = world
    for method, path in _operations(spec):
        if path in PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}):
            r = c.request(method, _url(path, batch), headers=headers, follow_redirects=False)
            if path.startswith("/api/"):
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text[:200])
            else:  # a web page: the login page (GET), or the CSRF refusal of a form post without a session
                assert r.status_code in (303, 401, 403), (method, path, headers, r.status_code)
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/login"), r.headers["location"]
            assert "140209987654321" not in r.text


def test_other_roles_offices_and_courts_get_404_never_the_document(world):
    c, spec, tokens, batch = world
    seen = 0
    for method, path in _operations(spec):
        if path in PUBLIC:
            continue
        allowed = _allowed(path)
        for who, tok in tokens.items():
            if who in allowed:
                continue
            r = c.request(method, _url(path, batch), headers={"Authorization": f"Bearer {tok}"},
                          follow_redirects=False)
            assert r.status_code == 404, (method, path, who, r.status_code, r.text[:200])
            assert "140209987654321" not in r.text
            seen += 1
    assert seen >= 80


def test_the_owner_does_see_it(world):
    """The walk is not vacuous: the office that filed it, and QA, do get the filing and its problem image."""
    c, _spec, tokens, batch = world
    own = c.get(f"/api/v1/batches/{batch}", headers={"Authorization": f"Bearer {tokens['stA']}"})
    assert own.status_code == 200 and own.json()["case_number"] == "140209987654321"
    qa = c.get(f"/api/v1/batches/{batch}/pages/1/problems.png", headers={"Authorization": f"Bearer {tokens['qa']}"})
    assert qa.status_code == 200 and qa.headers["content-type"] == "image/png"
