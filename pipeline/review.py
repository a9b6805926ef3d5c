"""QA review of held pages: the queue, override, request rescan, reject; office quality statistics.

Held pages of held filings wait here for a QA reviewer, nearest legal deadline first. Every action needs
a written reason and is audited (who, when, why):

* ``override``        the page counts as passing. A page held before OCR (early gate) is read first, by the
                      pipeline's own OCR step, so that it joins the searchable PDF with its text layer. The
                      batch is finalised again: forwarded to its court once every page passes.
* ``request_rescan``  the station sees the request and its reason in the batch status; the page stays held
                      until the station's rescan supersedes it.
* ``reject``          the whole filing is refused (status ``rejected``): never forwarded; the station sees why.

``office_stats`` gives the office quality figures the judiciary rates offices by, per office and Solar
Hijri month: pages received, the share held by reason, rescans, and the median time from upload to forwarding.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import jdatetime
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import BadInput, KhanaError
from core.status import BatchStatus, Decision, PageStatus
from pipeline import audit, stages
from pipeline.finalise import finalise_batch
from pipeline.report import PageReport
from pipeline.runtime import Runtime
from storage.models import Batch, Delivery, Office, OriginalFile, Page, utcnow

log = logging.getLogger("khana.review")

# Solar Hijri months begin at local midnight in Iran
IRAN = ZoneInfo("Asia/Tehran")
MAX_REASON_CHARS = 2000


# --- errors ------------------------------------------------------------------------------------------------
class ReasonRequired(BadInput):
    """A written reason is required for every QA action."""

    message_fa = "نوشتن دلیل برای هر اقدام کنترل کیفیت الزامی است."


class ReviewNotFound(KhanaError, LookupError):
    """No such filing or page."""

    message_fa = "چنین پرونده یا صفحه‌ای وجود ندارد."


class NotAwaitingReview(KhanaError):
    """The page or filing is no longer waiting for QA (already decided by someone else, forwarded or rejected)."""

    message_fa = "این صفحه یا پرونده دیگر در انتظار بررسی نیست (پیش‌تر تصمیم گرفته شده، ارسال یا رد شده است)."


class CannotOverride(KhanaError):
    """The page has no usable image (the file could not be read): only a rescan can replace it."""

    message_fa = "این صفحه تصویر قابل استفاده‌ای ندارد (پرونده خوانده نشد)؛ فقط با اسکن دوباره جایگزین می‌شود."


def clean_reason(reason: str | None) -> str:
    """The reviewer's written reason, stripped; refused when empty or too long."""
    text = (reason or "").strip()
    if not text:
        raise ReasonRequired("a written reason is required for every QA action")
    if len(text) > MAX_REASON_CHARS:
        raise ReasonRequired(f"the reason is longer than {MAX_REASON_CHARS} characters",
                             fa=f"دلیل بیش از {MAX_REASON_CHARS} نویسه است.")
    return text


def _aware(d: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were written in UTC."""
    if d is None:
        return None
    return d if d.tzinfo is not None else d.replace(tzinfo=timezone.utc)


def _iso(d: datetime | None) -> str | None:
    d = _aware(d)
    return d.isoformat() if d else None


# --- the queue ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeldPage:
    """One held page in the QA queue."""

    batch: str
    page: int  # the page's position in the filing (1-based), as in the station's batch status
    page_id: str
    office: str
    court: str
    case_number: str | None
    document_type: str
    deadline: date | None
    file: str
    file_page: int
    reasons: list[str]
    legibility: float | None
    ocr_confidence: float | None
    received_at: datetime
    decided_at: datetime | None
    ocr_done: bool
    has_problems_image: bool
    has_corrected_image: bool
    rescan_requested: bool
    rescan_reason: str | None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["deadline"] = self.deadline.isoformat() if self.deadline else None
        d["received_at"] = _iso(self.received_at)
        d["decided_at"] = _iso(self.decided_at)
        return d


def _held_query():
    return (
        select(Page, Batch, OriginalFile.name)
        .join(Batch, Batch.id == Page.batch_id)
        .join(OriginalFile, OriginalFile.id == Page.file_id)
        .where(Page.status == PageStatus.decided, Page.decision == Decision.hold, Batch.status == BatchStatus.held)
    )


def _held_page(p: Page, b: Batch, file_name: str) -> HeldPage:
    return HeldPage(
        batch=b.id, page=p.seq, page_id=p.id, office=b.office, court=b.court, case_number=b.case_number,
        document_type=b.document_type, deadline=b.deadline, file=file_name, file_page=p.file_page,
        reasons=list(p.reasons or []), legibility=p.legibility, ocr_confidence=p.ocr_confidence,
        received_at=_aware(b.created_at), decided_at=_aware(p.updated_at), ocr_done=_ocr_done(p),
        has_problems_image=bool(p.overlay_key), has_corrected_image=bool(p.corrected_key),
        rescan_requested=p.rescan_requested_at is not None, rescan_reason=p.rescan_reason,
    )


def held_pages(rt: Runtime, *, office: str | None = None, reason: str | None = None,
               rescan_requested: bool | None = None, limit: int | None = 500) -> list[HeldPage]:
    """Held pages of held filings across offices: nearest deadline first (no deadline last), then oldest.

    `office` and `reason` filter; `rescan_requested` True/False keeps only pages with/without an open
    rescan request (None: both).
    """
    q = _held_query()
    if office:
        q = q.where(Batch.office == office)
    if rescan_requested is True:
        q = q.where(Page.rescan_requested_at.is_not(None))
    elif rescan_requested is False:
        q = q.where(Page.rescan_requested_at.is_(None))
    q = q.order_by(Batch.deadline.is_(None), Batch.deadline, Batch.created_at, Batch.id, Page.seq)
    if limit is not None and not reason:
        q = q.limit(limit)
    with rt.db.session() as s:
        rows = [_held_page(p, b, name) for p, b, name in s.execute(q)]
    if reason:  # reasons are a JSON list: filtered here, the same on SQLite and PostgreSQL
        rows = [r for r in rows if reason in r.reasons]
        if limit is not None:
            rows = rows[:limit]
    return rows


def queue_filters(rt: Runtime) -> dict:
    """The offices and reasons present in the queue (for the filter menus)."""
    offices: set[str] = set()
    reasons: Counter = Counter()
    with rt.db.session() as s:
        for office, rs in s.execute(
            select(Batch.office, Page.reasons).join(Batch, Batch.id == Page.batch_id)
            .where(Page.status == PageStatus.decided, Page.decision == Decision.hold, Batch.status == BatchStatus.held)
        ):
            offices.add(office)
            reasons.update(rs or [])
    return {"offices": sorted(offices), "reasons": [r for r, _ in reasons.most_common()]}


# --- one page --------------------------------------------------------------------------------------------
def _ocr_done(p: Page) -> bool:
    """True once the OCR step ran on the page (its words were stored), even when it read nothing."""
    return bool(p.words_key)


def _active_page(s, batch_id: str, seq: int) -> Page | None:
    return s.scalar(select(Page).where(Page.batch_id == batch_id, Page.seq == seq, Page.status != PageStatus.superseded))


def page_detail(rt: Runtime, batch_id: str, seq: int) -> dict:
    """Everything QA looks at for one page of a filing (the current scan of that position)."""
    with rt.db.session() as s:
        b = s.get(Batch, batch_id)
        p = _active_page(s, batch_id, seq) if b is not None else None
        if p is None:
            raise ReviewNotFound(f"no page {seq} in filing {batch_id}")
        report = dict(p.report or {})
        n_pages = s.scalar(select(func.count()).select_from(Page).where(Page.batch_id == batch_id,
                                                                       Page.status != PageStatus.superseded))
        rescans = s.scalar(select(func.count()).select_from(Page).where(Page.batch_id == batch_id,
                                                                       Page.seq == seq, Page.status == PageStatus.superseded))
        return {
            "batch": b.id, "page": p.seq, "page_id": p.id, "pages_total": n_pages, "office": b.office,
            "court": b.court, "case_number": b.case_number, "document_type": b.document_type,
            "deadline": b.deadline.isoformat() if b.deadline else None, "batch_status": b.status,
            "received_at": _iso(b.created_at), "file": p.file.name, "file_page": p.file_page,
            "status": p.status, "decision": p.decision, "reasons": list(p.reasons or []),
            "held_reasons": list(p.held_reasons or []), "legibility": p.legibility,
            "ocr_confidence": p.ocr_confidence, "ocr_done": _ocr_done(p), "text": p.text or "",
            "measures": dict(p.measures or {}), "skew_degrees": report.get("skew_degrees"),
            "rotation": report.get("rotation"), "fields": report.get("fields", []),
            "warnings": report.get("warnings", []),
            "override_reason": p.override_reason, "reviewed_by": p.reviewed_by, "reviewed_at": _iso(p.reviewed_at),
            "rescan_requested": p.rescan_requested_at is not None, "rescan_reason": p.rescan_reason,
            "rescan_requested_by": p.rescan_requested_by, "rescan_requested_at": _iso(p.rescan_requested_at),
            "rejected_reason": b.rejected_reason, "rejected_by": b.rejected_by, "rejected_at": _iso(b.rejected_at),
            "rescans": rescans, "has_problems_image": bool(p.overlay_key), "has_corrected_image": bool(p.corrected_key),
            "awaiting_review": b.status == BatchStatus.held and p.status == PageStatus.decided and p.decision == Decision.hold,
        }


def case_number(rt: Runtime, batch_id: str) -> str | None:
    with rt.db.session() as s:
        return s.scalar(select(Batch.case_number).where(Batch.id == batch_id))


def page_image(rt: Runtime, batch_id: str, seq: int, kind: str) -> bytes:
    """The corrected page image ("corrected") or the one with its problems marked ("problems"), PNG."""
    if kind not in ("corrected", "problems"):
        raise ReviewNotFound(f"no image {kind!r}")
    with rt.db.session() as s:
        p = _active_page(s, batch_id, seq)
        if p is None:
            raise ReviewNotFound(f"no page {seq} in filing {batch_id}")
        key, sha = (p.corrected_key, p.corrected_sha256) if kind == "corrected" else (p.overlay_key, None)
    if not key:
        raise ReviewNotFound(f"page {seq} of filing {batch_id} has no {kind} image")
    return rt.store.get("pages", key, sha)


# --- actions -----------------------------------------------------------------------------------------------
@dataclass
class ActionResult:
    batch: str
    page: int | None
    action: str
    batch_status: str
    decision: str | None = None
    reasons: list[str] = field(default_factory=list)
    ocr_confidence: float | None = None
    ocr_rerun: bool = False
    reason: str = ""
    actor: str = ""
    at: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _lock_batch(s, batch_id: str) -> Batch:
    s.execute(select(Batch.id).where(Batch.id == batch_id).with_for_update())
    b = s.get(Batch, batch_id)
    if b is None:
        raise ReviewNotFound(f"no filing {batch_id}")
    return b


def _held_page_for_action(s, batch_id: str, seq: int) -> tuple[Batch, Page]:
    b = _lock_batch(s, batch_id)
    p = _active_page(s, batch_id, seq)
    if p is None:
        raise ReviewNotFound(f"no page {seq} in filing {batch_id}")
    if b.status != BatchStatus.held or p.status != PageStatus.decided or p.decision != Decision.hold:
        raise NotAwaitingReview(f"page {seq} of filing {batch_id} is not waiting for QA "
                                f"(filing {b.status}, page {p.status}/{p.decision})")
    return b, p


def _read_first(rt: Runtime, page_id: str, held_reasons: list[str], actor: str) -> None:
    """OCR a page that was held before OCR, with the pipeline's own OCR step (text layer, words, PDF image).

    The page goes back to `corrected` for the duration (so nobody else acts on it), then the OCR step decides
    it again; any failure puts it back as it was: held for the same reasons.
    """
    try:
        stages.run_ocr(rt, page_id, actor)
    except BaseException:
        with rt.db.session() as s:
            s.execute(update(Page).where(Page.id == page_id, Page.status == PageStatus.corrected)
                      .values(status=PageStatus.decided, decision=Decision.hold, reasons=held_reasons))
        raise
    with rt.db.session() as s:
        status = s.scalar(select(Page.status).where(Page.id == page_id))
    if status != PageStatus.decided:  # run_ocr only leaves a page undecided when it was not `corrected`
        raise NotAwaitingReview(f"page {page_id} changed while it was being read")


def _finalise(rt: Runtime, batch_id: str, actor: str) -> str:
    try:
        return finalise_batch(rt, batch_id, actor)
    except IntegrityError:  # a concurrent finalise of the same batch delivered it first
        with rt.db.session() as s:
            return s.scalar(select(Batch.status).where(Batch.id == batch_id))


def override(rt: Runtime, batch_id: str, seq: int, reason: str, actor: str) -> ActionResult:
    """The held page counts as passing; the filing is forwarded once every page passes."""
    reason = clean_reason(reason)
    with rt.db.session() as s:
        b, p = _held_page_for_action(s, batch_id, seq)
        if not p.corrected_key:
            raise CannotOverride(f"page {seq} of filing {batch_id} has no usable image: request a rescan")
        page_id, held_reasons = p.id, list(p.reasons or [])
        needs_ocr = not _ocr_done(p) or "ocr_timeout" in held_reasons
        if needs_ocr:  # claim the page: a second reviewer now finds it not waiting
            s.execute(update(Page).where(Page.id == page_id)
                      .values(status=PageStatus.corrected, held_reasons=held_reasons, attempts=0, lease_until=None))
    if needs_ocr:
        _read_first(rt, page_id, held_reasons, actor)
    now = utcnow()
    with rt.db.session() as s:
        _lock_batch(s, batch_id)
        p = s.get(Page, page_id)
        if p is None or p.status != PageStatus.decided or (not needs_ocr and p.decision != Decision.hold):
            raise NotAwaitingReview(f"page {seq} of filing {batch_id} changed while it was being reviewed")
        report = PageReport.from_dict(p.report) if p.report else stages.base_report(p)
        report.hold([])  # passes: no reasons, no hold kind
        report.warnings = [w for w in report.warnings if w != "qa_override"] + ["qa_override"]
        reread = {"reread_reasons": list(p.reasons or []), "ocr_confidence": p.ocr_confidence} if needs_ocr else {}
        p.decision, p.reasons, p.report = Decision.passed, [], report.as_dict()
        p.held_reasons = held_reasons
        p.override_reason, p.reviewed_by, p.reviewed_at = reason, actor, now
        p.rescan_requested_at = p.rescan_requested_by = p.rescan_reason = None  # the override answers it
        audit.record(s, actor, "page_override", batch_id=batch_id, page_id=page_id, page=seq, reason=reason,
                     held_reasons=held_reasons, ocr_rerun=needs_ocr, **reread)
        ocr_conf = p.ocr_confidence
    status = _finalise(rt, batch_id, actor)
    log.info("%s overrode page %s of %s (%s): filing %s", actor, seq, batch_id, ",".join(held_reasons), status)
    return ActionResult(batch=batch_id, page=seq, action="override", batch_status=status, decision=Decision.passed,
                        reasons=[], ocr_confidence=ocr_conf, ocr_rerun=needs_ocr, reason=reason, actor=actor,
                        at=now.isoformat())


def request_rescan(rt: Runtime, batch_id: str, seq: int, reason: str, actor: str) -> ActionResult:
    """Ask the station to rescan a held page; the station sees the request and why in its batch status
    (`rescan_requests` of the batch report)."""
    reason = clean_reason(reason)
    now = utcnow()
    with rt.db.session() as s:
        b, p = _held_page_for_action(s, batch_id, seq)
        p.rescan_requested_at, p.rescan_requested_by, p.rescan_reason = now, actor, reason
        audit.record(s, actor, "page_rescan_requested", batch_id=batch_id, page_id=p.id, page=seq, reason=reason,
                     held_reasons=list(p.reasons or []))
        return ActionResult(batch=batch_id, page=seq, action="request_rescan", batch_status=b.status,
                            decision=p.decision, reasons=list(p.reasons or []), ocr_confidence=p.ocr_confidence,
                            reason=reason, actor=actor, at=now.isoformat())


REJECTABLE = (BatchStatus.held,)


def reject(rt: Runtime, batch_id: str, reason: str, actor: str) -> ActionResult:
    """Refuse the whole filing: status `rejected`, never forwarded; the station sees the reason."""
    reason = clean_reason(reason)
    now = utcnow()
    with rt.db.session() as s:
        b = _lock_batch(s, batch_id)
        if b.status not in REJECTABLE:
            raise NotAwaitingReview(f"filing {batch_id} is {b.status}: only a held filing can be rejected")
        b.status, b.rejected_at, b.rejected_by, b.rejected_reason = BatchStatus.rejected, now, actor, reason
        audit.record(s, actor, "batch_rejected", batch_id=batch_id, reason=reason)
    return ActionResult(batch=batch_id, page=None, action="reject", batch_status=BatchStatus.rejected, reason=reason,
                        actor=actor, at=now.isoformat())


# --- office quality statistics ----------------------------------------------------------------------------
_PERSIAN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_PERIOD = re.compile(r"^\s*(\d{4})\s*[-/]\s*(\d{1,2})\s*$")


@dataclass(frozen=True)
class Period:
    """A Solar Hijri month, e.g. 1405-09 (Azar 1405)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str | None) -> "Period":
        m = _PERIOD.match((text or "").translate(_PERSIAN_DIGITS))
        if not m or not 1 <= int(m.group(2)) <= 12 or not 1300 <= int(m.group(1)) <= 1500:
            raise BadInput(f"period {text!r} is not a Solar Hijri month like 1405-09",
                           fa=f"دوره «{text}» ماه خورشیدی معتبری مانند ۱۴۰۵-۰۹ نیست.")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> "Period":
        local = _aware(moment).astimezone(IRAN)
        j = jdatetime.date.fromgregorian(date=local.date())
        return cls(j.year, j.month)

    @classmethod
    def current(cls) -> "Period":
        return cls.of(datetime.now(timezone.utc))

    def next(self) -> "Period":
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Period":
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def start(self) -> datetime:
        """The month's first moment (midnight in Iran), in UTC."""
        g = jdatetime.date(self.year, self.month, 1).togregorian()
        return datetime(g.year, g.month, g.day, tzinfo=IRAN).astimezone(timezone.utc)

    def end(self) -> datetime:
        return self.next().start()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class OfficeStats:
    period: str
    office: str
    office_name: str = ""  # from `khana admin office add CODE --name N`, when registered
    batches: int = 0
    pages_received: int = 0  # every page scanned in the period, rescans included
    pages_held: int = 0  # pages the gates held (including those QA later overrode or that were rescanned)
    held_by_reason: dict[str, int] = field(default_factory=dict)
    rescans: int = 0  # pages superseded by a rescan
    rescan_requests: int = 0
    overrides: int = 0
    forwarded: int = 0
    rejected: int = 0
    median_forward_minutes: float | None = None

    @property
    def held_share(self) -> float:
        return self.pages_held / self.pages_received if self.pages_received else 0.0

    def share(self, reason: str) -> float:
        return self.held_by_reason.get(reason, 0) / self.pages_received if self.pages_received else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["held_share"] = round(self.held_share, 4)
        d["held_share_by_reason"] = {r: round(self.share(r), 4) for r in self.held_by_reason}
        return d


def _held_reasons_of(decision: str | None, reasons: list | None, held: list | None) -> list[str]:
    if held:  # overridden (or being re-read): the reasons the gates gave
        return list(held)
    return list(reasons or []) if decision == Decision.hold else []


def office_stats(rt: Runtime, period: Period | str, office: str | None = None) -> list[OfficeStats]:
    """Quality figures per office for the filings uploaded in one Solar Hijri month (Iran time)."""
    period = period if isinstance(period, Period) else Period.parse(period)
    start, end = period.start(), period.end()
    in_period = (Batch.created_at >= start) & (Batch.created_at < end)
    if office:
        in_period = in_period & (Batch.office == office)
    out: dict[str, OfficeStats] = {}

    def get(o: str) -> OfficeStats:
        return out.setdefault(o, OfficeStats(period=str(period), office=o))

    with rt.db.session() as s:
        # the simple counts: SQL aggregation
        for o, st, n in s.execute(select(Batch.office, Batch.status, func.count()).where(in_period)
                                  .group_by(Batch.office, Batch.status)):
            row = get(o)
            row.batches += n
            row.forwarded += n if st == BatchStatus.forwarded else 0
            row.rejected += n if st == BatchStatus.rejected else 0
        page_counts = (
            select(Batch.office, func.count(Page.id), func.sum(case((Page.status == PageStatus.superseded, 1), else_=0)),
                   func.count(Page.rescan_requested_at), func.count(Page.override_reason))
            .join(Batch, Batch.id == Page.batch_id).where(in_period).group_by(Batch.office)
        )
        for o, received, superseded, requests, overrides in s.execute(page_counts):
            row = get(o)
            row.pages_received, row.rescans = int(received or 0), int(superseded or 0)
            row.rescan_requests, row.overrides = int(requests or 0), int(overrides or 0)
        # held pages by reason: the reasons are JSON lists, counted here over this period's held pages
        held = select(Batch.office, Page.decision, Page.reasons, Page.held_reasons).join(
            Batch, Batch.id == Page.batch_id).where(
            in_period, (Page.decision == Decision.hold) | Page.held_reasons.is_not(None))
        by_reason: dict[str, Counter] = defaultdict(Counter)
        for o, decision, reasons, held_reasons in s.execute(held):
            rs = _held_reasons_of(decision, reasons, held_reasons)
            if rs:
                get(o).pages_held += 1
                by_reason[o].update(set(rs))
        # upload -> forwarded: the median per office
        waits: dict[str, list[float]] = defaultdict(list)
        for o, created, delivered in s.execute(
            select(Batch.office, Batch.created_at, Delivery.delivered_at).join(Delivery, Delivery.batch_id == Batch.id)
            .where(in_period)
        ):
            waits[o].append((_aware(delivered) - _aware(created)).total_seconds() / 60.0)
        if out:
            for code, name in s.execute(select(Office.code, Office.name).where(Office.code.in_(list(out)))):
                out[code].office_name = name or ""
    for o, c in by_reason.items():
        out[o].held_by_reason = dict(c.most_common())
    for o, w in waits.items():
        out[o].median_forward_minutes = round(statistics.median(w), 2)
    return [out[o] for o in sorted(out)]


def periods_with_data(rt: Runtime, newest_first: bool = True) -> list[Period]:
    """Every Solar Hijri month from the first upload to now (for the period picker)."""
    with rt.db.session() as s:
        first = s.scalar(select(func.min(Batch.created_at)))
    now = Period.current()
    p = Period.of(first) if first else now
    out = [p]
    while (p.year, p.month) < (now.year, now.month):
        p = p.next()
        out.append(p)
    return out[::-1] if newest_first else out


def reasons_in(stats: list[OfficeStats]) -> list[str]:
    """The reasons present in `stats`, most frequent first."""
    c: Counter = Counter()
    for row in stats:
        c.update(row.held_by_reason)
    return [r for r, _ in c.most_common()]


CSV_COLUMNS = ["period", "office", "office_name", "batches", "pages_received", "pages_held", "held_share", "rescans",
               "rescan_requests", "overrides", "forwarded", "rejected", "median_forward_minutes"]


def stats_csv(stats: list[OfficeStats]) -> str:
    """CSV of `office_stats` (one row per office; a `held_share_<reason>` column per reason present)."""
    reasons = reasons_in(stats)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS + [f"held_share_{r}" for r in reasons])
    for row in stats:
        d = row.as_dict()
        w.writerow([d[c] if d[c] is not None else "" for c in CSV_COLUMNS] + [round(row.share(r), 4) for r in reasons])
    return buf.getvalue()
