"""The runtime a pipeline step needs: its configuration, the metadata database, the object store, the gate
policy and the OCR engine.

Built by the entry points (`khana.bootstrap.build_runtime` from the settings) and handed to every step; one
per process (workers build their own after fork). Tests build one with a fake OCR engine or a stricter policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ocr.engine import OcrEngine
from pipeline.config import PipelineConfig
from quality.gate import GatePolicy
from storage.database import Database
from storage.objects import ObjectStore


@dataclass
class Runtime:
    config: PipelineConfig
    db: Database
    store: ObjectStore
    policy: GatePolicy
    ocr: OcrEngine
    # a picklable zero-argument callable that builds an equivalent runtime in another process (the
    # embedded worker's pool processes); set by the entry point that built this one
    rebuild: Callable[[], "Runtime"] | None = field(default=None, repr=False, compare=False)

    def close(self) -> None:
        self.db.dispose()
