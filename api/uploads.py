"""Reading an upload safely: a byte budget shared by concurrent uploads, and a streaming multipart parser that
stops at the size limit.

The route authenticates from the headers first (no body is read), refuses an over-limit Content-Length at once
(413), waits for room in the budget (503 when there is none in time), then streams the body through
python-multipart's parser, counting bytes and stopping at the limit. Nothing is spooled to temporary files: the
budget bounds the memory all uploads hold at once. A request reserves twice its declared size: while a file is
received and handed over, its bytes exist twice for a moment.
"""
from __future__ import annotations

import asyncio
import io
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELD_BYTES = 16 * 1024
MAX_FIELDS = 32


class UploadBudget:
    """A counting semaphore over bytes: uploads reserve their declared size before reading."""

    def __init__(self, capacity: int, wait_s: float = 20.0):
        self.capacity = max(1, capacity)
        self.wait_s = wait_s
        self.used = 0
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def reserve(self, n: int):
        n = min(max(n, 1), self.capacity)
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self.used + n <= self.capacity), self.wait_s)
            except TimeoutError:
                raise HTTPException(503, "the server is busy receiving other uploads; the batch was NOT accepted, "
                                         "retry in a minute / سرور سرگرم دریافت بارگذاری‌های دیگر است؛ دسته پذیرفته "
                                         "نشد، یک دقیقهٔ دیگر دوباره بفرستید", headers={"Retry-After": "30"}) from None
            self.used += n
        try:
            yield
        finally:
            async with self._cond:
                self.used -= n
                self._cond.notify_all()


def too_large(limit: int) -> HTTPException:
    mib = limit // (1024 * 1024)
    return HTTPException(413, f"the batch is larger than {mib} MiB; split the filing or scan at a lower resolution / "
                              f"حجم دسته بیش از {mib} مگابایت است؛ پرونده را چند بخش کنید یا با وضوح کمتر اسکن کنید")


def declared_length(request: Request, limit: int, overhead: int = 1024 * 1024) -> int:
    """The Content-Length, refused at once (413) when over the limit; `limit + overhead` when none is declared."""
    raw = request.headers.get("content-length")
    if raw is None:
        return limit + overhead
    if not raw.isdigit():
        raise HTTPException(400, "invalid Content-Length / طول محتوای نامعتبر")
    n = int(raw)
    if n > limit + overhead:
        raise too_large(limit)
    return n


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    buf: io.BytesIO = field(default_factory=io.BytesIO)
    size: int = 0


@dataclass
class ParsedForm:
    fields: dict[str, str]
    files: list[tuple[str, str, bytes]]  # (field name, file name, bytes)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name, default)


async def read_multipart(request: Request, limit: int, *, max_files: int = 500) -> ParsedForm:
    """Stream a multipart/form-data body: files up to `limit` bytes in total, small text fields."""
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not opts.get(b"boundary"):
        raise HTTPException(400, "send the files as multipart/form-data / فایل‌ها را به صورت multipart/form-data بفرستید")
    parts: list[Part] = []
    header_name = b""
    headers: dict[bytes, bytes] = {}
    errors: list[HTTPException] = []
    file_bytes = 0

    def on_part_begin():
        headers.clear()

    def on_header_field(data, start, end):
        nonlocal header_name
        header_name += data[start:end]

    def on_header_value(data, start, end):
        headers[header_name.lower()] = headers.get(header_name.lower(), b"") + data[start:end]

    def on_header_end():
        nonlocal header_name
        header_name = b""

    def on_headers_finished():
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        parts.append(Part(name, filename.decode("utf-8", "replace") if filename is not None else None,
                          headers.get(b"content-type", b"").decode("latin-1")))
        n_files = sum(1 for p in parts if p.filename is not None)
        if n_files > max_files or len(parts) - n_files > MAX_FIELDS:
            errors.append(HTTPException(400, f"too many parts in the form (at most {max_files} files) / "
                                             f"تعداد بخش‌های فرم بیش از حد است"))

    def on_part_data(data, start, end):
        nonlocal file_bytes
        p = parts[-1]
        n = end - start
        p.size += n
        if p.filename is None:
            if p.size > MAX_FIELD_BYTES:
                errors.append(HTTPException(400, f"the form field {p.name!r} is too long / فیلد فرم بیش از حد بلند است"))
                return
        else:
            file_bytes += n
            if file_bytes > limit:
                errors.append(too_large(limit))
                return
        p.buf.write(data[start:end])

    parser = MultipartParser(opts[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
    })
    received = 0
    hard_limit = limit + 1024 * 1024  # files plus the form's own bytes
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > hard_limit:
                raise too_large(limit)
            parser.write(chunk)
            if errors:
                raise errors[0]
        parser.finalize()
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed body or a client that went away
        from starlette.requests import ClientDisconnect

        if isinstance(exc, ClientDisconnect):
            raise HTTPException(400, "the upload was interrupted / بارگذاری نیمه‌کاره ماند") from exc
        raise HTTPException(400, f"the form could not be read ({exc.__class__.__name__}) / فرم خوانده نشد") from exc
    if errors:
        raise errors[0]
    fields: dict[str, str] = {}
    files: list[tuple[str, str, bytes]] = []
    for p in parts:
        if p.filename is None:
            fields[p.name] = p.buf.getvalue().decode("utf-8", "replace")
        elif p.size or p.filename:
            files.append((p.name, p.filename or "upload", p.buf.getvalue()))
        p.buf = io.BytesIO()
    return ParsedForm(fields, files)
