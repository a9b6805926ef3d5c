"""`khana serve` as a real process for tests: the embedded default (SQLite, local store, in-process pool)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
from sqlalchemy import func, select

from fixtures_services import descendants, free_port, proc_name, wait_for

FORM = {"court": "tehran-civil-12", "case_number": "140209987654321", "document_type": "petition"}


class Serve:
    """`khana serve` as a real process on the embedded default (SQLite, local store, in-process pool)."""

    def __init__(self, tmp_path: Path, **env: str):
        self.port = free_port()
        self.home = tmp_path / "home"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
        self.env.update({"KHANA_HOME": str(self.home), "OMP_THREAD_LIMIT": "1", **env})
        self.log_path = tmp_path / "serve.log"
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> "Serve":
        from web_fixtures import launch_serve

        self.proc = launch_serve(self.env, self.port, self.log_path, timeout=120, append=True)
        return self

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30)

    def upload(self, pngs: list[bytes]) -> str:
        r = httpx.post(f"{self.base}/api/v1/batches", data=FORM,
                       files=[("files", (f"p{i + 1}.png", b, "image/png")) for i, b in enumerate(pngs)], timeout=60)
        assert r.status_code == 202, r.text
        return r.json()["batch"]

    def post_raw(self, filename: bytes, data: bytes) -> httpx.Response:
        """An upload whose multipart file name is sent byte for byte (control characters and all)."""
        boundary = b"khana-test-boundary-7d1"
        parts = []
        for k, v in FORM.items():
            parts.append(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + k.encode() + b'"\r\n\r\n'
                         + v.encode() + b"\r\n")
        parts.append(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; filename="' + filename
                     + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n")
        body = b"".join(parts) + b"--" + boundary + b"--\r\n"
        return httpx.post(f"{self.base}/api/v1/batches", content=body, timeout=120,
                          headers={"Content-Type": "multipart/form-data; boundary=" + boundary.decode()})

    def runtime(self):
        from khana.bootstrap import build_runtime
        from khana.settings import Settings

        return build_runtime(Settings(home=self.home), migrate=False)

    def wait_final(self, batch: str, timeout: float) -> dict:
        def final():
            body = self.get(f"/api/v1/batches/{batch}").json()
            return body if body["status"] not in ("received", "processing") else None

        return wait_for(final, timeout, interval=0.1, what=f"batch {batch} ({self.log_path})")

    def pool_processes(self) -> list[int]:
        return [p for p in descendants(self.proc.pid) if proc_name(p).startswith("python")
                and b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]

    def tesseracts(self) -> list[tuple[int, int]]:
        out = []
        for p in descendants(self.proc.pid):
            if proc_name(p) == "tesseract":
                try:
                    ppid = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    continue
                out.append((p, ppid))
        return out

    def decided_counts(self, batch: str) -> dict[str, int]:
        from khana.bootstrap import build_runtime
        from khana.settings import Settings
        from storage.models import AuditEvent, Page

        rt = build_runtime(Settings(home=self.home), migrate=False)
        try:
            with rt.db.session() as s:
                ids = list(s.scalars(select(Page.id).where(Page.batch_id == batch)))
                rows = dict(s.execute(select(AuditEvent.page_id, func.count()).where(
                    AuditEvent.batch_id == batch, AuditEvent.action == "page_decided").group_by(AuditEvent.page_id)).all())
        finally:
            rt.close()
        return {pid: rows.get(pid, 0) for pid in ids}

    def stop(self) -> None:
        from web_fixtures import stop_process

        stop_process(self.proc)
