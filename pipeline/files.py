"""The checks every filing's files get before anything is stored or queued: the same rules at the server's door
(`KhanaService.check`) and at the station's counter (`station.intake.validate`), so a file the server would
refuse is refused at the counter, with the same reason, while the client is still there."""
from __future__ import annotations

from typing import Iterable, Protocol

from core.errors import BadInput
from core.text import printable
from pipeline.decode import FileInfo, UnreadableFile, inspect

__all__ = ["FileLimits", "check_files"]


class FileLimits(Protocol):
    """The limits (`PipelineConfig` and the station's settings both have them)."""

    max_upload_bytes: int
    max_pages_per_batch: int
    max_image_pixels: int


def check_files(named: Iterable[tuple[str, bytes]], limits: FileLimits) -> list[FileInfo]:
    """Type sniffed from the content, every image page decoded, total size and page count within the limits.

    Returns one `FileInfo` per file; the first problem raises `BadInput` (English and Persian, naming the
    file and quoting the configured limit)."""
    infos: list[FileInfo] = []
    total = 0
    for name, data in named:
        total += len(data)
        if total > limits.max_upload_bytes:
            mib = limits.max_upload_bytes // (1024 * 1024)
            raise BadInput(f"the batch is larger than {mib} MiB", fa=f"حجم این پرونده بیشتر از {mib} مگابایت است")
        label = printable(name, 200)
        try:
            infos.append(inspect(data, max_pixels=limits.max_image_pixels))
        except UnreadableFile as exc:
            raise BadInput(f"{label}: {exc.message}", fa=f"{label}: {exc.message_fa}") from exc
    if not infos:
        raise BadInput("a batch needs at least one file", fa="پرونده باید دست‌کم یک فایل داشته باشد")
    n_pages = sum(i.page_count for i in infos)
    if n_pages > limits.max_pages_per_batch:
        raise BadInput(f"the batch has {n_pages} pages; at most {limits.max_pages_per_batch} are accepted",
                       fa=f"این پرونده {n_pages} صفحه دارد؛ حداکثر {limits.max_pages_per_batch} صفحه پذیرفته می‌شود")
    return infos
