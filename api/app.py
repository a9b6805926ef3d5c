"""The Khana web service: the API (OpenAPI at /docs) and the web pages, on top of the service layer.

Routers are listed in `ROUTERS` (one line each); every module there exposes ``router``:

    api.stations         station API (upload, status, PDF, problems, thumbnails, rescan) and the station pages
    api.accounts_pages   home, login/logout, the language switch, the admin's accounts page

`create_app` receives everything it needs (the runtime with its settings, the dispatcher, whether the first-try
mode may apply, the cookie flag); modules below it never read the environment.
"""
from __future__ import annotations

import importlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import health
from api.auth import CsrfMiddleware, WebConfig
from api.web import STATIC_DIR, install_handlers
from khana.bootstrap import build_runtime
from khana.settings import Settings, get_settings
from pipeline.accounts import Accounts
from pipeline.runtime import Runtime
from pipeline.service import Dispatcher, KhanaService

log = logging.getLogger("khana.api")

ROUTERS = [
    "api.stations",
    "api.accounts_pages",
    "api.court",
    "api.review",
    "api.health",
]


def create_app(rt: Runtime | None = None, dispatcher: Dispatcher | None = None, *, start_worker: bool = True,
               settings: Settings | None = None, allow_open: bool = False,
               cookie_secure: bool | None = None) -> FastAPI:
    """Build the app (the API's composition root: the settings are read here and nowhere below).

    Without a dispatcher: Celery when KHANA_BROKER_URL is set, else the embedded worker.
    `allow_open`: the server listens on loopback only, so with no accounts at all the first-try mode applies.
    `cookie_secure`: cookies only over https (default: KHANA_COOKIE_SECURE, else True).
    """
    state: dict = {}
    if cookie_secure is None:
        configured = (settings or get_settings()).cookie_secure
        cookie_secure = True if configured is None else configured

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        cfg = settings or get_settings()
        runtime = rt or build_runtime(cfg)
        disp = dispatcher
        worker = None
        if disp is None:
            if cfg.broker_url:
                from workers.dispatch import CeleryDispatcher

                disp = CeleryDispatcher()
            elif start_worker:
                from workers.embedded import BackgroundWorker

                worker = BackgroundWorker(runtime, settings=cfg)
                worker.start()
                disp = worker
        s = cfg
        budget = s.upload_budget_bytes or 2 * s.max_upload_bytes
        from api.uploads import UploadBudget

        state.update(rt=runtime, service=KhanaService(runtime, disp), worker=worker,
                     upload_budget=UploadBudget(budget, s.upload_wait_s))
        app.state.khana = state
        app.state.web = WebConfig(accounts=Accounts(runtime.db), allow_open=allow_open,
                                  env_tokens=s.station_tokens(), cookie_secure=cookie_secure,
                                  session_hours=s.session_hours, login_max_failures=s.login_max_failures,
                                  login_window_s=s.login_window_s)
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            if rt is None:
                runtime.close()

    app = FastAPI(title="Khana", version="0.1.0", lifespan=lifespan,
                  description="Legible, searchable scans for the courts: station uploads, batch status and rescans, "
                              "QA review, court inboxes. Authenticate with `Authorization: Bearer <token>` "
                              "(`khana admin token create ...`).")
    app.add_middleware(CsrfMiddleware, cookie_secure=cookie_secure)
    install_handlers(app)
    health.install_outage_handler(app)  # database down: 503 + Retry-After on every route, never a 500
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    for name in ROUTERS:
        app.include_router(importlib.import_module(name).router)
    return app
