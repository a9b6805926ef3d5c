"""Settings from environment variables (prefix ``KHANA_``), with the embedded default.

The one place Khana reads its settings: the entry points (the CLI, the API factory, the worker entry
points) call `get_settings()` and hand explicit values down (`pipeline_config()`, `minio_config()`, ...);
nothing in quality/, ocr/, storage/ or pipeline/ reads the environment.

With nothing set, Khana runs with no servers: SQLite and a local object store
under ``KHANA_HOME`` and an in-process worker pool. Production sets the
database URL to PostgreSQL, the object store to MinIO and a Redis broker.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.config import PipelineConfig
from storage.minio_config import MinioConfig


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "khana"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KHANA_", env_file=None, extra="ignore")

    home: Path = Field(default_factory=_default_home, description="data folder of the embedded default")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///$KHANA_HOME/khana.db")

    durable: bool = Field(True, description="fsync every stored object and database commit (local store, SQLite); "
                          "`khana process` turns it off for its scratch workspace, which is removed after the run")
    object_store: Literal["local", "minio"] = "local"
    cache_dir: Path | None = Field(None, description="things rebuilt when absent (the Persian-digit templates "
                                   "drawn from the fonts); default $XDG_CACHE_HOME/khana (~/.cache/khana)")
    store_dir: Path | None = Field(None, description="local object store root; default $KHANA_HOME/objects")
    minio_endpoint: str = "127.0.0.1:9000"
    minio_access_key: str = ""
    minio_secret_key: str = ""
    minio_secure: bool = False
    minio_region: str = "us-east-1"
    minio_public_endpoint: str | None = Field(None, description="host:port clerks' browsers reach MinIO at, for "
                                              "presigned URLs (default: minio_endpoint)")
    minio_public_secure: bool | None = Field(None, description="https for presigned URLs (default: minio_secure)")
    bucket_prefix: str = Field("khana-", description="prefix of the MinIO bucket names")

    broker_url: str | None = Field(None, description="Celery broker (redis://...); unset = in-process worker")
    result_backend: str | None = None
    workers: int = Field(0, description="in-process worker processes; 0 = number of CPU cores")

    ocr_lang: str = "fas"
    ocr_timeout_s: float = 60.0
    gate_policy: Path | None = Field(None, description="gate thresholds TOML; default quality/gate_policy.toml")
    raster_dpi: int = 300
    max_upload_bytes: int = 200 * 1024 * 1024
    max_pages_per_batch: int = 500
    max_image_pixels: int = 120_000_000
    max_render_pixels: int = Field(50_000_000, description="a PDF page larger than this at raster_dpi is rendered at a "
                                   "lower resolution (pixels are bounded before rendering)")
    page_cpu_s: float = Field(120.0, description="CPU seconds one page stage may use (decode, correction, measures); "
                              "then the page is held as processing_timeout")

    api_tokens: str = Field("", description="station API tokens: 'token=office,token2=office2'; empty = no auth "
                            "(allowed only on a loopback address)")
    tesseract: str = Field("tesseract", description="the Tesseract command (a name on PATH or a path)")

    # --- the distributed mode (Celery workers, sweeper) ---
    visibility_timeout_s: int = Field(120, description="a message unacknowledged this long (its worker died before "
                                      "its page was leased) is redelivered; a copy delivered while the page is still "
                                      "being worked on finds it leased and waits")
    broker_key_prefix: str = Field("", description="prefix of every Redis key Celery uses (several deployments on one Redis)")
    task_max_retries: int = Field(20, description="retries of a step after a transient error (store, database, broker)")
    retry_backoff_max_s: int = Field(60, description="cap of the exponential retry back-off")
    ocr_task_time_limit_s: int = Field(600, description="hard time limit of one OCR task (the pool process is replaced)")
    sweep_interval_s: float = Field(15.0, description="how often the sweeper looks for expired leases and lost work")
    page_lease_s: float = Field(45.0, description="a page being worked on is leased this long, renewed while its "
                                "process lives; an expired lease is re-driven at the next sweep")
    lease_renew_s: float = Field(15.0, description="how often the working process renews its page's lease")
    page_max_attempts: int = Field(3, description="a page stage (or a batch's finalise) that crashed or failed this "
                                   "many times is parked for QA (held processing_error / batch failed)")
    stuck_after_s: float = Field(900.0, description="a page waiting in a queue (no lease) this long is re-driven "
                                 "(its message was lost)")
    sweep_max_redrives: int = Field(5, description="re-drives of one page before the sweeper gives up and reports it")

    # web service: sessions, login rate limit, concurrent uploads
    cookie_secure: bool | None = Field(None, description="send cookies only over https; default: true unless the "
                                       "server listens on a loopback address over plain http")
    session_hours: float = Field(12.0, description="a web login lasts this long")
    login_max_failures: int = Field(5, description="failed logins per user name or client address per window")
    login_window_s: float = Field(300.0, description="the login rate limit's window in seconds")
    upload_budget_bytes: int = Field(0, description="bytes of uploads held at once by all requests (memory and "
                                     "temporary disk); each upload reserves twice its size; 0 = twice max_upload_bytes")
    upload_wait_s: float = Field(60.0, description="how long an upload waits for room in the budget before 503")

    def station_tokens(self) -> dict[str, str]:
        pairs = [p.strip() for p in self.api_tokens.split(",") if p.strip()]
        return {tok.strip(): office.strip() for tok, _, office in (p.partition("=") for p in pairs)}

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'khana.db'}"

    def resolved_store_dir(self) -> Path:
        return self.store_dir or self.home / "objects"

    # --- the explicit values handed down to the layers below ---
    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(raster_dpi=self.raster_dpi, max_upload_bytes=self.max_upload_bytes,
                              max_pages_per_batch=self.max_pages_per_batch, max_image_pixels=self.max_image_pixels,
                              workers=self.workers, max_render_pixels=self.max_render_pixels,
                              lease_s=self.page_lease_s, lease_renew_s=self.lease_renew_s,
                              max_attempts=self.page_max_attempts, page_cpu_s=self.page_cpu_s)

    def minio_config(self) -> MinioConfig:
        return MinioConfig(endpoint=self.minio_endpoint, access_key=self.minio_access_key,
                           secret_key=self.minio_secret_key, secure=self.minio_secure, region=self.minio_region,
                           public_endpoint=self.minio_public_endpoint, public_secure=self.minio_public_secure,
                           bucket_prefix=self.bucket_prefix)

    def sweep_options(self) -> dict:
        return {"stuck_after_s": self.stuck_after_s, "max_redrives": self.sweep_max_redrives}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
