"""FastAPI dependencies for the app's shared parts (set up by `create_app`'s lifespan)."""
from __future__ import annotations

from fastapi import Request

from api.auth import WebConfig
from pipeline.accounts import Accounts
from pipeline.runtime import Runtime
from pipeline.service import KhanaService


def service(request: Request) -> KhanaService:
    return request.app.state.khana["service"]


def runtime(request: Request) -> Runtime:
    return request.app.state.khana["rt"]


def accounts(request: Request) -> Accounts:
    return request.app.state.web.accounts


def web_config(request: Request) -> WebConfig:
    return request.app.state.web
