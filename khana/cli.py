"""The `khana` command line."""
from __future__ import annotations

import json
import os
import queue
import sys
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ExitCode, KhanaError, OutputError

class _KhanaApp(typer.Typer):
    """The `khana` command: Khana's own errors become one line and their exit code, never a traceback."""

    def __call__(self, *args, **kwargs):
        return _guarded(lambda: super(_KhanaApp, self).__call__(*args, **kwargs))


app = _KhanaApp(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                help="Khana (خوانا): legible, searchable scans for the courts.")
err = Console(stderr=True)

EXIT_OK, EXIT_BAD_INPUT, EXIT_HELD = ExitCode.ok, ExitCode.bad_input, ExitCode.held


def _fail(message: str, code: ExitCode = ExitCode.bad_input) -> None:
    sys.stderr.write(f"khana: error: {_printable(message)}\n")  # one plain line: scripts and stations parse it
    raise typer.Exit(int(code))


_CONTROL = {c: "?" for c in range(0x20)} | {0x7F: "?"} | {c: "?" for c in (0x200E, 0x200F, *range(0x202A, 0x202F),
                                                                           *range(0x2066, 0x206A))}


def _printable(text: str) -> str:
    """One line without control or bidi-override characters (a hostile file name cannot fake the output)."""
    return str(text).translate(_CONTROL)


_NAME_BYTES = 200  # output names stay well within the file system's 255-byte limit with their suffixes


def _output_stems(files: list[Path]) -> list[str]:
    """One distinct, safe output name per input: `good.png` and `good.jpg` never write the same `good.pdf`."""
    def clip(name: str) -> str:
        name = _printable(name).replace("/", "_").strip() or "file"
        while len(name.encode("utf-8")) > _NAME_BYTES:
            name = name[:-1]
        return name

    stems = Counter(clip(f.stem) for f in files)
    out: list[str] = []
    taken: set[str] = set()
    for f in files:
        stem = clip(f.stem)
        name = stem if stems[stem] == 1 else clip(f.name)  # same stem: keep the extension in the name
        n, candidate = 1, name
        while candidate in taken:
            n += 1
            candidate = f"{clip(name)}-{n}"
        taken.add(candidate)
        out.append(candidate)
    return out


@app.command()
def process(
    files: List[Path] = typer.Argument(..., help="scanned pages: PNG, JPEG, TIFF (multi-page) or PDF"),
    out: Path = typer.Option(Path("khana-out"), "--out", "-o", help="folder for searchable PDFs, the report and problem images"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per page per line, nothing else"),
    court: str = typer.Option("", help="court the filing is for"),
    office: str = typer.Option("", help="e-judicial service office code"),
    case_number: Optional[str] = typer.Option(None, "--case-number", help="declared case number (checked against the text)"),
    document_type: str = typer.Option("", "--document-type", help="petition, complaint, evidence, ..."),
    keep: bool = typer.Option(False, "--keep", help="keep the batches in Khana's data folder (KHANA_HOME) "
                              "instead of a scratch workspace removed after the run"),
) -> None:
    """Run the whole pipeline locally (no servers) and write searchable PDFs and a report.

    Exit status: 0 every page passed, 3 some page is held, 2 bad input.
    """
    from khana.settings import get_settings

    # every argument is checked before any work starts
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: exists and is not a folder / مسیر خروجی پوشه نیست")
    from pipeline.metadata import (InvalidMetadata, normalise_case_number, validate_code,
                                   validate_document_type)

    try:  # the same rules as the API and the station page
        office, court = validate_code(office, "office", required=False), validate_code(court, "court", required=False)
        case_number, document_type = normalise_case_number(case_number), validate_document_type(document_type)
    except InvalidMetadata as exc:
        _fail(exc.one_line())
    data = [_read_input(f) for f in files]
    settings = get_settings()

    scratch = None
    if not keep and "KHANA_HOME" not in os.environ and "KHANA_DATABASE_URL" not in os.environ:
        # A local run's records live in a scratch workspace; its results go to --out.
        scratch = tempfile.TemporaryDirectory(prefix="khana-")
        # (thrown away after the run: nothing to make durable, no fsyncs)
        settings = settings.model_copy(update={"home": Path(scratch.name), "durable": False})
    pools = [p for p in [_early_pool(settings, len(files))] if p is not None]
    try:
        from pipeline.service import BatchMeta, Upload

        from khana.bootstrap import ocr_engine

        ocr_engine(settings).check()  # Tesseract and its Persian model: fail now, not after the first page
        uploads = [Upload(str(f), d) for f, d in zip(files, data)]
        _process(settings, files, uploads, out, as_json, BatchMeta(office=office, court=court, case_number=case_number,
                                                                    document_type=document_type), pools)
    finally:
        if pools:  # not handed over to _process (it failed before): end it
            from workers.pool import kill_pool

            kill_pool(pools.pop())
        if scratch is not None:
            scratch.cleanup()


def _early_pool(settings, n_files: int):
    """With at least as many files as worker processes, start the pool now: its processes import the
    pipeline and build their runtime while this process imports, migrates and checks the files.
    (Fewer files: the pool is sized by the page count, known after the check, as before.)"""
    processes = settings.workers or os.cpu_count() or 1
    if n_files < 2 or n_files < processes:
        return None
    from workers.pool import init_from_settings, start_pool

    return start_pool(processes, init_from_settings, (settings,))


def _read_input(f: Path) -> bytes:
    """The bytes of one input file, or one clear line (exit 2) saying why not."""
    import stat

    try:
        st = f.stat()
    except FileNotFoundError:
        _fail(f"{f}: no such file / چنین فایلی نیست")
    except OSError as exc:
        _fail(f"{f}: cannot be read ({exc.strerror}) / فایل خوانده نمی‌شود")
    if stat.S_ISDIR(st.st_mode):
        _fail(f"{f}: is a folder, not a file / این یک پوشه است، نه فایل")
    if not stat.S_ISREG(st.st_mode):
        _fail(f"{f}: is not a regular file (a device, pipe or socket) / فایل عادی نیست")
    try:
        return f.read_bytes()
    except OSError as exc:
        _fail(f"{f}: cannot be read ({exc.strerror}) / فایل خوانده نمی‌شود")


def _process(settings, files: list[Path], uploads, out: Path, as_json: bool, meta, pools: list | None = None) -> None:
    """`pools`: [the worker pool] if already started (`_early_pool`): taken from the list, shut down here."""
    from khana.bootstrap import build_runtime
    from pipeline.service import BadInput, KhanaService
    from workers.embedded import EmbeddedWorker

    rt = build_runtime(settings)
    pool = pools.pop() if pools else None
    service = KhanaService(rt)
    try:  # every file is checked before any is submitted: bad input leaves nothing behind
        # (decoding is most of a check and frees the GIL: the files are checked on every core while the
        # worker processes, started early, are still importing; the first bad file in order is reported)
        with ThreadPoolExecutor(max(1, min(len(uploads), os.cpu_count() or 1))) as ex:
            infos = list(ex.map(lambda u: service.check([u]), uploads))
    except BadInput as exc:
        rt.close()
        if pool is not None:
            from workers.pool import kill_pool

            kill_pool(pool)
        _fail(exc.one_line() if isinstance(exc, KhanaError) else str(exc))
    total = sum(i.page_count for info in infos for i in info)
    processes = rt.config.workers or os.cpu_count() or 1
    if pool is not None:
        worker = EmbeddedWorker(rt, processes=processes, pool=pool)
    else:
        worker = EmbeddedWorker(rt, processes=min(processes, total))
    # The files are stored and recorded one by one in a thread; the worker starts on a file's pages as
    # soon as it is recorded (`feed`), not after the last one is.
    submitted: list = [None] * len(uploads)
    batch_of: dict[str, str] = {}
    feed: queue.Queue = queue.Queue()
    failed: list[BaseException] = []

    def intake() -> None:
        try:
            for k, (u, i) in enumerate(zip(uploads, infos)):
                sub = service.submit_batch([u], meta, actor="cli", source="cli", infos=i)
                submitted[k] = sub
                batch_of.update((pid, sub.batch_id) for pid in sub.page_ids)
                feed.put(list(sub.page_ids))
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread below
            failed.append(exc)
        finally:
            feed.put(None)

    feeder = None
    if pool is not None:  # the pool is up (started early): it works while the rest is stored
        feeder = threading.Thread(target=intake, name="khana-intake", daemon=True)
        feeder.start()
    else:  # a page or two: stored first, then one short run (a single page needs no pool at all)
        intake()
        if failed:
            worker.close(wait=False)
            raise failed[0]
        feed = None
    first = [] if feed is not None else list(batch_of)
    try:
        if as_json:
            worker.run(first, batch_of, feed=feed)
        else:
            with Progress(TextColumn("[bold]OCR[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task("pages", total=total)
                worker.run(first, batch_of, on_page=lambda _pid: bar.advance(task), feed=feed)
    finally:
        worker.close(wait=False)  # its processes exit while the output is written
        if feeder is not None:
            feeder.join()
    if failed:
        raise failed[0]

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot be created ({exc.strerror})", fa="پوشهٔ خروجی ساخته نمی‌شود") from exc
    all_pages: list[dict] = []
    files_summary = []
    for f, stem, sub in zip(files, _output_stems(files), submitted):
        report = service.report(sub.batch_id)
        for p in report["pages"]:
            p["file"] = _printable(str(f))
        all_pages.extend(report["pages"])
        pdf = service.searchable_pdf(sub.batch_id)
        pdf_path = None
        if pdf:
            pdf_path = out / f"{stem}.pdf"
            pdf_path.write_bytes(pdf)
        for seq, png in service.problem_images(sub.batch_id):
            (out / f"{stem}.page{seq}.problems.png").write_bytes(png)  # one file per batch: seq = page
        files_summary.append({"file": _printable(str(f)), "batch": sub.batch_id, "status": report["status"],
                              "searchable_pdf": str(pdf_path) if pdf_path else None})
    (out / "report.json").write_text(json.dumps({"files": files_summary, "pages": all_pages}, ensure_ascii=False, indent=2), encoding="utf-8")
    rt.close()

    held = [p for p in all_pages if p["decision"] != "pass"]
    if as_json:
        for p in all_pages:
            sys.stdout.write(json.dumps(p, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        _print_table(all_pages, out)
    raise typer.Exit(int(EXIT_HELD if held else EXIT_OK))


def _print_table(pages: list[dict], out: Path) -> None:
    from quality import reason_message

    console = Console() if sys.stdout.isatty() else Console(width=120)
    table = Table(title="Khana page report", title_justify="left")
    table.add_column("file", overflow="fold")
    for col in ("page", "decision", "legibility", "OCR conf", "skew°", "rot", "sec"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("reasons", overflow="fold")
    for p in pages:
        decision = "[green]pass[/]" if p["decision"] == "pass" else "[bold red]hold[/]"
        conf = "-" if p["ocr_confidence"] is None else f"{p['ocr_confidence']:.1f}"
        table.add_row(Path(p["file"]).name, str(p["page"]), decision, f"{p['legibility']:.2f}", conf,
                      f"{p['skew_degrees']:.1f}", str(p["rotation"]), f"{p['seconds']:.1f}", ", ".join(p["reasons"]))
    console.print(table)
    held = [p for p in pages if p["decision"] != "pass"]
    if not held:
        console.print(f"[green]All {len(pages)} page(s) passed.[/] Searchable PDF and report in {out}/")
        return
    console.print(f"[bold red]{len(held)} page(s) held: rescan them[/] (problem images in {out}/):")
    for p in held:
        console.print(f"  {Path(p['file']).name} page {p['page']}:", highlight=False)
        for r in p["reasons"]:
            console.print(f"    - {r}: {reason_message(r, 'en')} / {reason_message(r, 'fa')}", highlight=False)
    for p in pages:
        for w in p.get("warnings", []):
            console.print(f"  note: {Path(p['file']).name} page {p['page']}: {w}", highlight=False)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    workers: int = typer.Option(0, "--workers", help="embedded worker processes (0 = CPU cores); unused with a broker"),
) -> None:
    """Start the API with an embedded worker (or Celery when KHANA_BROKER_URL is set) on http://HOST:PORT."""
    import ipaddress

    import uvicorn

    from api.app import create_app
    from khana.settings import get_settings

    settings = get_settings()
    if workers:
        settings = settings.model_copy(update={"workers": workers})
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not settings.station_tokens() and not _has_accounts(settings):
        _fail(f"refusing to serve on {host} without accounts: create them first (khana admin user create NAME "
              "--role admin; khana admin token create --role station --office O), or set KHANA_API_TOKENS for a "
              "first start")
    cookie_secure = settings.cookie_secure if settings.cookie_secure is not None else not loopback
    uvicorn.run(create_app(settings=settings, allow_open=loopback, cookie_secure=cookie_secure), host=host, port=port, log_level="info",
                proxy_headers=True, server_header=False)


def _has_accounts(settings) -> bool:
    from pipeline.accounts import Accounts
    from storage.database import Database

    db = Database(settings.resolved_database_url())
    try:
        db.migrate()
        return Accounts(db).has_accounts()
    finally:
        db.dispose()


@app.command("make-test-page")
def make_test_page(
    out: Path = typer.Argument(..., help="PNG file to write"),
    font: str = typer.Option("naskh", help="naskh, sans, nazli, homa, naskh-bold"),
    size: float = typer.Option(12.0, help="font size in points"),
    skew: float = typer.Option(0.0, help="rotate the content by this many degrees (CCW positive)"),
    blur: float = typer.Option(0.0, help="Gaussian blur sigma in pixels"),
    seed: int = typer.Option(0, help="which text sample"),
    blank: bool = typer.Option(False, help="an empty sheet instead of text"),
) -> None:
    """Render a synthetic A4 Persian page at 300 dpi (for trying Khana without a scanner)."""
    from testpages import degrade, render_page

    if blank:
        img = degrade.blank()
    else:
        page = render_page(font=font, size_pt=size, seed=seed)
        img = degrade.blur(degrade.skew(page.image, skew) if skew else page.image, blur)
    from PIL import Image

    Image.fromarray(img).save(out, dpi=(300, 300))
    err.print(f"wrote {out}")


from khana.cli_ops import register as _register_ops  # noqa: E402  (worker, sweeper, db-upgrade)
_register_ops(app)
from khana.cli_admin import register as _register_admin  # noqa: E402  (khana admin ...)
_register_admin(app)
from khana.cli_station import register as _register_station  # noqa: E402  (khana station ...)
_register_station(app)

def _guarded(run):
    """Run the CLI; a `KhanaError` is printed as one line and exits with its code; a bug is logged."""
    import logging
    import traceback

    try:
        return run()
    except KhanaError as exc:
        sys.stderr.write(f"khana: error: {_printable(exc.one_line())}\n")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write("khana: interrupted\n")
        sys.exit(int(ExitCode.ctrl_c))
    except Exception as exc:  # noqa: BLE001 - a bug: the details go to a log file, one line to the operator
        log_dir = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "khana"
        where = "the log"
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            with open(log_dir / "errors.log", "a", encoding="utf-8") as fh:
                fh.write(traceback.format_exc() + "\n")
            where = str(log_dir / "errors.log")
        except OSError:
            logging.getLogger("khana").exception("internal error")
        sys.stderr.write(f"khana: internal error ({type(exc).__name__}: {_printable(str(exc))[:200]}); "
                         f"details in {where}\n")
        sys.exit(int(ExitCode.other_error))


if __name__ == "__main__":
    app()
