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
