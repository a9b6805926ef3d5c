"""The states of a batch (one filing) and of its pages, and a page's decision.

`StrEnum`s: each member is its string (the database stores the string, JSON shows it), so a typo is an
AttributeError at import time instead of a silent mismatch in a query.
"""
from __future__ import annotations

from enum import StrEnum


class PageStatus(StrEnum):
    pending = "pending"  # stored, waiting for the quality stage
    corrected = "corrected"  # quality stage done, waiting for OCR
    decided = "decided"  # decision written (exactly once)
    superseded = "superseded"  # replaced by a rescan


OPEN_PAGE_STATUSES = (PageStatus.pending, PageStatus.corrected)


class BatchStatus(StrEnum):
    received = "received"  # originals stored and recorded; no page started yet
    processing = "processing"  # pages going through the stages
    held = "held"  # every page decided, some held: waiting for rescans or QA
    passed = "passed"  # every page passed (no court to deliver to)
    forwarded = "forwarded"  # delivered to its court
    rejected = "rejected"  # refused by QA: never forwarded
    failed = "failed"  # could not be processed (parked for an operator)


OPEN_BATCH_STATUSES = (BatchStatus.received, BatchStatus.processing)


class Decision(StrEnum):
    passed = "pass"
    hold = "hold"


class HoldKind(StrEnum):
    """Why a held page was held, as the station and QA need to know it."""

    hopeless = "hopeless"  # nothing readable (blank, hopelessly blurred, noisy or dark): held without OCR
    image = "image"  # an image fault (cut off, skew that could not be undone...): held at once, still read for QA
    reading = "reading"  # held for how the OCR read went (low confidence, lines or text left unread)
