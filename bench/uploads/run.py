"""Upload hardening under load: server memory with concurrent large uploads, and a body without a token.

Starts a real `khana serve` (fresh KHANA_HOME), then
  1. sends N concurrent uploads of SIZE MiB each (valid multipart, one file of random bytes: refused as an
     unreadable image after it was read, so the whole body passes through the server), and records the server's
     peak resident memory (VmHWM) and the answers;
  2. declares a 5 GiB body without a token and streams for two seconds: how many bytes the server accepted
     before answering, and whether KHANA_HOME grew.

    PYTHONPATH=. .venv/bin/python bench/uploads/run.py --uploads 4 --size 190
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from web_fixtures import start_server, stop_server  # noqa: E402


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def du(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uploads", type=int, default=4)
    ap.add_argument("--size", type=int, default=190, help="MiB per upload")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="khana-bench-uploads-"))
    srv = start_server(home / "home", {"KHANA_UPLOAD_WAIT_S": "120"})
    try:
        tok = srv.token("station", office="bench")
        pid = srv.proc.pid
        base_rss = rss_mib(pid)
        payload = os.urandom(args.size * 1024 * 1024)
        results: list = []

        def one(i: int) -> None:
            t0 = time.monotonic()
            try:
                r = httpx.post(f"{srv.url}/api/v1/batches", headers={"Authorization": f"Bearer {tok}"},
                               data={"court": "c1"}, files=[("files", (f"big{i}.png", payload, "image/png"))],
                               timeout=600)
                results.append((r.status_code, round(time.monotonic() - t0, 1)))
            except httpx.HTTPError as exc:
                results.append((type(exc).__name__, round(time.monotonic() - t0, 1)))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.uploads)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        print(f"{args.uploads} concurrent uploads of {args.size} MiB: answers {sorted(results)}; wall {wall:.1f} s")
        print(f"server RSS before {base_rss:.0f} MiB, peak (VmHWM) {vm_hwm_mib(pid):.0f} MiB "
              f"(upload budget 400 MiB = 2 x KHANA_MAX_UPLOAD_BYTES; each upload reserves twice its size)")

        home_before = du(str(home))
        host, port = srv.url.removeprefix("http://").split(":")
        s = socket.create_connection((host, int(port)))
        s.sendall(f"POST /api/v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
                  f"Content-Length: {5 * 1024 ** 3}\r\n\r\n".encode())
        sent, chunk, answer = 0, b"\0" * 65536, b""
        s.settimeout(0.05)
        end = time.monotonic() + 2
        while time.monotonic() < end:
            try:
                sent += s.send(chunk)
            except (BlockingIOError, socket.timeout):
                pass
            except OSError:
                break
            try:
                answer += s.recv(4096)
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                break
        s.close()
        grew = du(str(home)) - home_before
        status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(connection closed)"
        print(f"5 GiB declared without a token: answer {status!r}; {sent / 1024 / 1024:.1f} MiB pushed by the "
              f"client in 2 s (mostly socket buffers); growth of KHANA_HOME {grew / 1024 / 1024:.1f} MiB (no temporary files are written)")
    finally:
        stop_server(srv)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
