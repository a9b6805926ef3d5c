"""Delivering the outbox: exactly once (Idempotency-Key), nearest deadline first, patient with outages.

A filing is uploaded with the Idempotency-Key derived from its local id, so a retry after any failure (a lost
answer, a killed sender, a power cut) returns the batch the server already has instead of a second one.

Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and jitter, honouring
Retry-After (capped by `backoff_max_s`); any other 4xx is the server refusing that filing: it is marked
`rejected` with the server's message and the others still go. 401/403 mean the token is wrong: nothing can be
sent, so everything stops with one clear line.
"""
from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import httpx

from core.errors import ExitCode, KhanaError
from core.status import BatchStatus
from station.config import StationSettings
from station.outbox import Filing, Outbox

log = logging.getLogger("khana.station")

# the server's batch status -> the station's state
SERVER_STATES = {BatchStatus.received: "accepted", BatchStatus.processing: "accepted", BatchStatus.passed: "accepted",
                 BatchStatus.failed: "accepted", BatchStatus.held: "held", BatchStatus.forwarded: "forwarded",
                 BatchStatus.rejected: "rejected"}
REFRESH_DAYS = 30  # filings sent longer ago are no longer asked about (their state stays as last known)


class BadToken(KhanaError):
    """The server refused the station token."""

    exit_code = ExitCode.bad_input
    message_fa = "سرور توکن ایستگاه را نپذیرفت؛ توکن را در تنظیمات ایستگاه (KHANA_STATION_TOKEN) بررسی کنید"


@dataclass
class Outcome:
    kind: str  # accepted | rejected | retry
    message: str = ""
    retry_after: float | None = None
    batch: str | None = None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(failures: int, base: float, cap: float, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter (half fixed, half random); at least Retry-After (both capped)."""
    rng = rng or random
    d = min(cap, base * (2 ** max(0, failures - 1)))
    d = d / 2 + rng.uniform(0, d / 2)
    if retry_after is not None:
        d = max(d, min(retry_after, cap))
    return d


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's 422: [{"loc": [...], "msg": "..."}]
        return "; ".join(f"{'.'.join(str(x) for x in d.get('loc', [])[1:])}: {d.get('msg')}" if isinstance(d, dict)
                         else str(d) for d in detail)
    return str(detail)[:1000]


@dataclass
class Sender:
    outbox: Outbox
    settings: StationSettings
    on_event: Callable[[str, Filing, Outcome], None] | None = None
    failures: int = 0  # consecutive transient failures, all filings together
    wait_until: float = 0.0  # no upload before this time (backoff after a failure)
    last_progress: float = field(default_factory=time.monotonic)
    client: httpx.Client | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.client is None:
            headers = {"User-Agent": "khana-station/0.1"}
            token = self.settings.token_value()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            self.client = httpx.Client(base_url=self.settings.url, headers=headers,
                                       timeout=httpx.Timeout(self.settings.timeout_s,
                                                             connect=self.settings.connect_timeout_s))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    # --- one upload ---------------------------------------------------------------------------------------
    def upload(self, filing: Filing) -> Outcome:
        files = []
        for f in self.outbox.files(filing.id):
            try:
                data = f.path.read_bytes()
            except OSError as exc:
                return Outcome("rejected", f"the outbox copy of {f.name} cannot be read ({exc.strerror}); push the "
                                           "filing again / نسخه صف این فایل خوانده نمی‌شود؛ پرونده را دوباره ثبت کنید")
            if hashlib.sha256(data).hexdigest() != f.sha256:
                return Outcome("rejected", f"the outbox copy of {f.name} is damaged; push the filing again / "
                                           "نسخه صف این فایل آسیب دیده است؛ پرونده را دوباره ثبت کنید")
            files.append(("files", (f.name, data, f.content_type)))
        form = {"court": filing.court, "case_number": filing.case_number, "document_type": filing.document_type,
                "office": filing.office or self.settings.office}
        if filing.deadline:
            form["deadline"] = filing.deadline
        assert self.client is not None
        try:
            resp = self.client.post("/api/v1/batches", data=form, files=files,
                                    headers={"Idempotency-Key": self.outbox.idempotency_key(filing.id)})
        except httpx.TransportError as exc:  # connection refused/reset, timeouts, protocol errors
            return Outcome("retry", f"server unreachable ({type(exc).__name__}: {exc})"[:300])
        return self._judge(resp)

    def _judge(self, resp: httpx.Response) -> Outcome:
        code = resp.status_code
        if code in (200, 201, 202):
            try:
                body = resp.json()
                return Outcome("accepted", batch=str(body["batch"]))
            except (ValueError, KeyError, TypeError):
                return Outcome("retry", f"the server's answer ({code}) has no batch id")
        if code in (401, 403):
            raise BadToken(f"the server refused the station token ({code}): check KHANA_STATION_TOKEN or the "
                           "station config file")
        message = f"{code}: {_detail(resp)}"
        if code in (408, 429) or code >= 500:
            return Outcome("retry", f"server answered {message}"[:500],
                           retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
        if 300 <= code < 400:
            return Outcome("retry", f"server answered {code} (redirect to {resp.headers.get('location')}): check "
                                    "the server URL")
        return Outcome("rejected", message)

    # --- the delivery loop ----------------------------------------------------------------------------------
    def step(self) -> bool:
        """Send the due filing with the nearest deadline, if the backoff allows; True when one was tried."""
        now = time.time()
        if now < self.wait_until:
            return False
        filing = self.outbox.claim_next(now)
        if filing is None:
            return False
        try:
            outcome = self.upload(filing)
        except BadToken:
            self.outbox.retry_later(filing.id, "the server refused the station token", 0.0, count=False)
            raise
        except BaseException:
            self.outbox.retry_later(filing.id, "interrupted", 0.0, count=False)
            raise
        if outcome.kind == "accepted":
            self.outbox.mark_accepted(filing.id, outcome.batch or "")
            with self._lock:
                self.failures, self.wait_until, self.last_progress = 0, 0.0, time.monotonic()
        elif outcome.kind == "rejected":
            self.outbox.mark_rejected(filing.id, outcome.message)
            with self._lock:
                self.failures, self.wait_until, self.last_progress = 0, 0.0, time.monotonic()
        else:
            s = self.settings
            with self._lock:
                self.failures += 1
                delay = backoff_delay(self.failures, s.backoff_base_s, s.backoff_max_s, outcome.retry_after)
                self.wait_until = time.time() + delay
            # the filing's own backoff grows with its attempts, so one filing the server keeps failing
            # on does not hold back the others
            own = backoff_delay(filing.attempts, s.backoff_base_s, s.backoff_max_s, outcome.retry_after)
            self.outbox.retry_later(filing.id, outcome.message, time.time() + max(delay, own))
            log.info("filing %s: %s; next try in %.1f s", filing.id, outcome.message, delay)
        if self.on_event is not None:
            self.on_event(outcome.kind, self.outbox.get(filing.id), outcome)
        return True

    def drain(self, *, parallel: int = 1, give_up_s: float | None = None,
              stop: threading.Event | None = None) -> None:
        """Send until nothing is queued (or nothing got through for `give_up_s`), `parallel` uploads at a time.

        Filings are taken in deadline order; with `parallel` > 1 the next one starts while the server is still
        storing the previous one. A bad token stops every thread and is raised.
        """
        stop = stop or threading.Event()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                while not stop.is_set():
                    if self.step():
                        continue
                    wait = self.seconds_until_due()
                    if wait is None or (give_up_s is not None and self.stalled_for() > give_up_s):
                        return
                    stop.wait(min(wait, 1.0) or 0.05)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                errors.append(exc)
                stop.set()

        if parallel <= 1:
            worker()
        else:
            with ThreadPoolExecutor(parallel, thread_name_prefix="khana-send") as pool:
                for _ in range(parallel):
                    pool.submit(worker)
        if errors:
            raise errors[0]

    def seconds_until_due(self) -> float | None:
        """How long until something can be sent (None: nothing is queued)."""
        nxt = self.outbox.next_try_at()
        if nxt is None:
            return None
        return max(0.0, max(nxt, self.wait_until) - time.time())

    def stalled_for(self) -> float:
        return time.monotonic() - self.last_progress

    # --- news from the server ----------------------------------------------------------------------------
    def refresh(self, timeout_s: float | None = None) -> tuple[int, str | None]:
        """Ask the server about every filing it has and not yet finished; (updated, problem or None)."""
        assert self.client is not None
        updated = 0
        recent = time.time() - REFRESH_DAYS * 86400
        for f in self.outbox.in_states("accepted", "held"):
            if not f.batch_id or (f.sent_at or 0) < recent:
                continue
            try:
                resp = self.client.get(f"/api/v1/batches/{f.batch_id}",
                                       timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as exc:
                return updated, f"server unreachable ({type(exc).__name__})"
            if resp.status_code in (401, 403):
                raise BadToken(f"the server refused the station token ({resp.status_code}): check "
                               "KHANA_STATION_TOKEN or the station config file")
            if resp.status_code != 200:
                continue
            body = resp.json()
            status = str(body.get("status", ""))
            state = SERVER_STATES.get(status, f.state)
            rescan = body.get("rescan") or []
            if state != f.state or status != f.server_status or rescan != f.rescan:
                message = (f"refused by QA on the server (batch {f.batch_id}) / کارشناس کنترل کیفیت پرونده را رد کرد"
                           if state == "rejected" else None)
                self.outbox.update_from_server(f.id, state, status, rescan, message)
                updated += 1
        return updated, None
