"""The values the pipeline needs, handed down explicitly by the entry point that read the settings.

Nothing below the entry points reads environment variables: `khana.settings.Settings` (the CLI, the
API factory, the worker entry points) builds a `PipelineConfig` and passes it down.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineConfig:
    raster_dpi: int = 300  # PDF pages are rasterised at this resolution
    max_upload_bytes: int = 200 * 1024 * 1024  # one batch, all files together
    max_pages_per_batch: int = 500
    max_image_pixels: int = 120_000_000  # decompression-bomb limit of one page
    workers: int = 0  # embedded worker processes; 0 = CPU cores
    max_render_pixels: int = 50_000_000  # a PDF page is rendered at a lower resolution above this (A2 at 300 dpi: 35 Mpx)
    lease_s: float = 45.0  # a page being worked on is leased this long; renewed while its process lives
    lease_renew_s: float = 15.0  # how often the working process renews its lease
    max_attempts: int = 3  # starts of one stage of a page that ended in a crash or an error before it is parked
    page_cpu_s: float = 120.0  # CPU seconds one page stage may use in its process (Tesseract is bounded apart)
