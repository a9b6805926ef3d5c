"""The station's settings: a TOML file in the platform's user config folder, overridden by KHANA_STATION_*.

    # ~/.config/khana/station.toml (Linux; see `khana station config --path`)
    url = "https://khana.example.ir"
    token = "..."            # the station token (kept out of every output and log)
    office = "11-2301"
    home = "/var/lib/khana-station"   # the outbox folder (default: the user data folder)
    watch_dir = "/srv/scans"          # optional: the scanner's output folder for `khana station run`

Environment variables win over the file: KHANA_STATION_URL, KHANA_STATION_TOKEN, KHANA_STATION_OFFICE,
KHANA_STATION_HOME, KHANA_STATION_WATCH_DIR, ...; KHANA_STATION_CONFIG names another config file.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from core.errors import BadInput

APP = "khana"


def config_path() -> Path:
    """The config file: $KHANA_STATION_CONFIG, else station.toml in the platform's user config folder."""
    env = os.environ.get("KHANA_STATION_CONFIG")
    return Path(env) if env else platformdirs.user_config_path(APP) / "station.toml"


def _default_home() -> Path:
    return platformdirs.user_data_path(APP) / "station"


class StationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KHANA_STATION_", env_file=None, extra="ignore")

    url: str = Field("http://127.0.0.1:8000", description="the Khana server")
    token: SecretStr | None = Field(None, description="the station's API token (never printed)")
    office: str = Field("", description="the e-judicial service office code")
    home: Path = Field(default_factory=_default_home, description="the outbox folder")
    watch_dir: Path | None = Field(None, description="scanner output folder watched by `khana station run`")

    connect_timeout_s: float = 5.0
    timeout_s: float = Field(120.0, description="read/write timeout of one upload")
    backoff_base_s: float = Field(1.0, description="first retry delay; doubles with every failure (with jitter)")
    backoff_max_s: float = Field(120.0, description="longest wait between two tries (also caps Retry-After)")
    parallel: int = Field(1, ge=1, le=8, description="uploads in flight at once (`send`); 1 keeps the deadline "
                          "order strict, 2 starts the next filing while the server stores the previous one")
    give_up_s: float = Field(300.0, description="`send` stops trying after this long without progress")
    poll_s: float = Field(2.0, description="how often `run`/`watch` look at the watch folder and the outbox")
    refresh_s: float = Field(30.0, description="how often `run` asks the server about delivered filings")

    # the server's limits (the same defaults): refused at the counter rather than after the outage
    max_upload_bytes: int = 200 * 1024 * 1024
    max_pages_per_batch: int = 500
    max_image_pixels: int = 120_000_000
    raster_dpi: int = 300

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("the server URL must start with http:// or https://")
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_path()))

    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token else None

    @property
    def outbox_dir(self) -> Path:
        return self.home


def load_settings(**overrides) -> StationSettings:
    """The settings, or a BadInput naming the config file's problem (never the token's value)."""
    path = config_path()
    try:
        return StationSettings(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"the station config file {path} is not valid TOML: {exc}",
                       fa=f"فایل تنظیمات ایستگاه ({path}) خراب است") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise BadInput(f"station settings are invalid ({path} or KHANA_STATION_*): {problems}",
                       fa="تنظیمات ایستگاه نادرست است") from None


def write_config(values: dict) -> Path:
    """Merge `values` into the config file (created with mode 0600: it holds the token)."""
    path = config_path()
    current: dict = {}
    if path.is_file():
        with open(path, "rb") as fh:
            current = tomllib.load(fh)
    current.update({k: v for k, v in values.items() if v is not None})
    lines = []
    for k, v in current.items():
        if isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, (int, float)):
            lines.append(f"{k} = {v}")
        else:
            s = str(v).replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{k} = "{s}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Khana station settings (written by `khana station config`)\n" + "\n".join(lines) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
