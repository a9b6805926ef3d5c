"""The page report: the README's and design.md's contract, as a typed record.

`PageReport.as_dict()` is exactly the JSON object of the contract (the CLI's `--json` lines, the API's
page reports, `report.json`); `PageReport.from_dict` reads one back (from the database's JSON column).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core.status import Decision, HoldKind


@dataclass
class PageReport:
    file: str
    page: int  # 1-based page within its file
    decision: Decision = Decision.hold
    reasons: list[str] = field(default_factory=list)
    skew_degrees: float = 0.0  # counterclockwise positive, as scanned
    rotation: int = 0  # 0/90/180/270 applied to make the text upright
    legibility: float = 0.0  # 0..1
    ocr_confidence: float | None = None  # mean word confidence 0..100; None when OCR was skipped
    text: str = ""
    seconds: float = 0.0
    fields: list[dict[str, Any]] = field(default_factory=list)  # {"kind", "value", "text"}
    warnings: list[str] = field(default_factory=list)
    # which kind of hold: "hopeless" (nothing readable: held without OCR), "image" (an image fault such as
    # a cut-off edge, held at once and still read for QA), "reading" (held for how the OCR read went);
    # None when the page passed
    hold_kind: HoldKind | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["decision"] = str(Decision(self.decision))
        d["hold_kind"] = None if self.hold_kind is None else str(HoldKind(self.hold_kind))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PageReport":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown page report field(s): {', '.join(unknown)}")
        r = cls(**{k: v for k, v in d.items() if k in names})
        r.decision = Decision(r.decision)
        r.hold_kind = None if r.hold_kind is None else HoldKind(r.hold_kind)
        r.reasons, r.fields, r.warnings = list(r.reasons), list(r.fields), list(r.warnings)
        return r

    def hold(self, reasons: list[str], kind: "HoldKind | None" = None) -> None:
        self.reasons = list(reasons)
        self.decision = Decision.hold if reasons else Decision.passed
        self.hold_kind = (kind or HoldKind.reading) if reasons else None
