"""`khana station ...`: the office's side of Khana, which keeps working through outages of the central system.

    khana station push PATH... --court C --case N --type T [--deadline D]   queue a filing, check its pages
    khana station send                   deliver the whole outbox once (exit 0: everything was accepted)
    khana station run [--watch DIR]      keep delivering (and watching a scanner folder) until stopped
    khana station watch DIR              queue the scanner folder's filings as they are completed
    khana station status [--json]        every filing and its state; pages to rescan and why
"""
from __future__ import annotations

import functools
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import BadInput, ExitCode, KhanaError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="The station: queue filings during outages, deliver them exactly once when the line is back.")
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE_FA = {"queued": "در صف", "sending": "در حال ارسال", "accepted": "دریافت شد", "held": "نیاز به اسکن دوباره",
            "forwarded": "به دادگاه رفت", "rejected": "رد شد", "cancelled": "لغو شد"}
STATE_STYLE = {"queued": "yellow", "sending": "cyan", "accepted": "green", "held": "bold red", "forwarded": "bold green",
               "rejected": "bold red", "cancelled": "dim"}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="station")


def _errors(fn):
    """Khana's errors become one line on stderr (Persian / English) and their exit code; never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KhanaError as exc:
            sys.stderr.write(f"khana: error: {exc.one_line()}\n")
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("khana: interrupted\n")
            raise typer.Exit(int(ExitCode.ctrl_c)) from None
    return wrapper


def _settings(**overrides):
    from station.config import load_settings

    return load_settings(**overrides)


def _outbox(settings):
    from station.outbox import Outbox

    return Outbox(settings.home)


def _reason_lines(reasons: list) -> list[str]:
    from quality import reason_message

    out = []
    for r in reasons:
        code = r["code"] if isinstance(r, dict) else r
        fa = r.get("fa") if isinstance(r, dict) else reason_message(code, "fa")
        en = r.get("en") if isinstance(r, dict) else reason_message(code, "en")
        out.append(f"{code}: {fa} / {en}")
    return out


def _print_verdicts(verdicts: list[dict]) -> int:
    held = [v for v in verdicts if v["decision"] == "hold"]
    if not held:
        err.print(f"[green]local check: all {len(verdicts)} page(s) look fine[/] "
                  "(بررسی محلی: صفحه‌ها مشکلی ندارند؛ نظر نهایی با سرور است)")
        return 0
    err.print(f"[bold red]local check: {len(held)} of {len(verdicts)} page(s) will be held: rescan them now[/] "
              f"(بررسی محلی: {len(held)} صفحه نگه داشته خواهد شد؛ همین حالا دوباره اسکن کنید)")
    for v in held:
        err.print(f"  {v['file']} page {v['page']}:")
        for line in _reason_lines(v["reasons"]):
            err.print(f"    - {line}")
        if v.get("picture"):
            err.print(f"    picture: {v['picture']}")
    return len(held)


@app.command()
@_errors
def push(
    paths: List[Path] = typer.Argument(..., help="the filing's scanned pages (PNG, JPEG, TIFF, PDF) or a folder of them"),
    court: str = typer.Option(..., "--court", help="the court the filing is for"),
    case: str = typer.Option(..., "--case", help="the case number"),
    doc_type: str = typer.Option(..., "--type", help="document type: petition, complaint, evidence, ..."),
    deadline: Optional[str] = typer.Option(None, "--deadline", help="legal deadline: 1405/09/10 or 2026-12-01"),
    check: bool = typer.Option(True, "--check/--no-check", help="run the local page checks (default on)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (id, pages, local verdicts)"),
) -> None:
    """Validate the files, queue the filing durably and print its local id; then check every page locally.

    Exit status: 0 queued, 3 queued but some page will be held (rescan it), 2 refused (nothing queued).
    """
    from station.intake import FilingMeta, check_filing, queue_filing, read_paths

    settings = _settings()
    meta = FilingMeta.parse(court, case, doc_type, deadline, settings.office)
    named = read_paths(paths)
    with _outbox(settings) as outbox:
        filing = queue_filing(outbox, settings, named, meta)
        if not as_json:
            sys.stdout.write(filing.id + "\n")
            sys.stdout.flush()
            err.print(f"queued {filing.id}: {filing.pages} page(s), deadline {filing.deadline or '-'} "
                      f"(در صف ارسال قرار گرفت)")
        verdicts = check_filing(outbox, settings, filing) if check else []
    held = [v for v in verdicts if v["decision"] == "hold"]
    if as_json:
        sys.stdout.write(json.dumps({"id": filing.id, "state": "queued", "pages": filing.pages,
                                     "deadline": filing.deadline, "precheck": verdicts}, ensure_ascii=False) + "\n")
    elif check:
        _print_verdicts(verdicts)
    raise typer.Exit(int(ExitCode.held) if held else 0)


def _event_printer(progress: Progress | None, task=None):
    def on_event(kind, filing, outcome):
        if kind == "accepted":
            err.print(f"[green]accepted[/] {filing.id} -> batch {filing.batch_id}")
            if progress is not None:
                progress.advance(task)
        elif kind == "rejected":
            err.print(f"[bold red]rejected[/] {filing.id}: {outcome.message} (سرور پرونده را نپذیرفت)")
            if progress is not None:
                progress.advance(task)
        else:
            err.print(f"[yellow]retry[/] {filing.id}: {outcome.message}")
    return on_event


@app.command()
@_errors
def send(
    give_up: Optional[float] = typer.Option(None, "--give-up", help="stop after this many seconds without progress "
                                            "(default: give_up_s setting, 300)"),
) -> None:
    """Deliver the whole outbox once, nearest deadline first, and exit.

    Exit status: 0 everything queued was accepted; 6 some filing is still queued (server unreachable: run send
    again later); 2 some filing was rejected by the server, or the token is wrong.
    """
    from station.sender import Sender

    settings = _settings()
    limit = settings.give_up_s if give_up is None else give_up
    stop = threading.Event()  # Ctrl-C / SIGTERM: finish the uploads in flight, keep the rest queued
    _on_signals(stop)
    with _outbox(settings) as outbox, outbox.sender_lock():
        todo = len(outbox.in_states("queued"))
        rejected_before = {f.id for f in outbox.in_states("rejected")}
        with Progress(TextColumn("[bold]sending[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("filings", total=todo)
            sender = Sender(outbox, settings, on_event=_event_printer(progress, task))
            try:
                sender.drain(parallel=settings.parallel, give_up_s=limit, stop=stop)
            finally:
                sender.close()
        counts = outbox.counts()
        rejected = [f for f in outbox.in_states("rejected") if f.id not in rejected_before]
    left = counts.get("queued", 0) + counts.get("sending", 0)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    err.print(f"outbox: {summary or 'empty'}")
    if left:
        err.print(f"[bold yellow]{left} filing(s) still queued: the server could not be reached; they are kept and "
                  f"will go with the next send/run[/] ({left} پرونده هنوز در صف است و بعداً ارسال می‌شود)")
        raise typer.Exit(int(ExitCode.unavailable))
    if rejected:
        raise typer.Exit(int(ExitCode.bad_input))


@app.command()
@_errors
def run(
    watch_dir: Optional[Path] = typer.Option(None, "--watch", help="also queue this scanner folder's filings "
                                             "(default: watch_dir setting)"),
) -> None:
    """Keep delivering the outbox (and watching the scanner folder) until stopped (Ctrl-C or SIGTERM)."""
    from station.sender import Sender
    from station.watch import FolderWatcher

    settings = _settings()
    folder = watch_dir or settings.watch_dir
    stop = threading.Event()
    _on_signals(stop)
    with _outbox(settings) as outbox, outbox.sender_lock():
        outbox.remove_orphans()
        sender = Sender(outbox, settings, on_event=_event_printer(None))
        watcher = FolderWatcher(outbox, settings, folder) if folder else None
        err.print(f"delivering {settings.home} to {settings.url}" + (f", watching {folder}" if folder else "")
                  + " (Ctrl-C to stop)")
        next_poll = next_refresh = 0.0
        unreachable = False
        try:
            while not stop.is_set():
                now = time.monotonic()
                if watcher is not None and now >= next_poll:
                    _print_watch(watcher.poll())
                    next_poll = now + settings.poll_s
                if sender.step():
                    continue
                if now >= next_refresh:
                    _, problem = sender.refresh(timeout_s=10)
                    if problem and not unreachable:
                        err.print(f"[yellow]{problem}: filings stay queued[/]")
                    unreachable = bool(problem)
                    next_refresh = now + settings.refresh_s
                wait = sender.seconds_until_due()
                stop.wait(min(settings.poll_s, wait if wait is not None else settings.poll_s) or 0.05)
        finally:
            sender.close()
    err.print("stopped")


def _on_signals(stop: threading.Event) -> None:
    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _print_watch(events) -> None:
    for ev in events:
        if ev.kind == "queued":
            err.print(f"[green]queued[/] {ev.filing.id} from {ev.folder.name}")
            if ev.verdicts is not None:
                _print_verdicts(ev.verdicts)
        else:
            err.print(f"[bold red]refused[/] {ev.folder}: {ev.message}")


@app.command()
@_errors
def watch(
    folder: Path = typer.Argument(..., help="the scanner's output folder (one sub-folder per filing)"),
    once: bool = typer.Option(False, "--once", help="queue what is complete now (two polls) and exit"),
) -> None:
    """Queue each complete filing folder of DIR (see the README for filing.toml) and move it to DIR/.queued/."""
    from station.watch import FolderWatcher

    settings = _settings()
    stop = threading.Event()
    _on_signals(stop)
    with _outbox(settings) as outbox:
        watcher = FolderWatcher(outbox, settings, folder)
        polls = 0
        while not stop.is_set():
            _print_watch(watcher.poll())
            polls += 1
            if once and polls >= 2:
                break
            stop.wait(settings.poll_s)


def _jalali(iso: str | None) -> str:
    if not iso:
        return "-"
    import datetime

    import jdatetime

    return jdatetime.date.fromgregorian(date=datetime.date.fromisoformat(iso)).strftime("%Y/%m/%d")


@app.command()
@_errors
def status(
    as_json: bool = typer.Option(False, "--json", help="one JSON object: every filing with its state"),
    offline: bool = typer.Option(False, "--offline", help="do not ask the server for news"),
) -> None:
    """Every filing and its state: queued, sending, accepted, held (pages to rescan and why), forwarded, rejected."""
    from station.sender import Sender

    settings = _settings()
    with _outbox(settings) as outbox:
        problem = None
        if not offline and outbox.in_states("accepted", "held"):
            sender = Sender(outbox, settings)
            try:
                _, problem = sender.refresh(timeout_s=5)
            finally:
                sender.close()
        filings = [f for f in outbox.all()]
        counts = outbox.counts()
        busy = outbox.sender_running()
    if as_json:
        sys.stdout.write(json.dumps({"filings": [f.as_dict() for f in filings], "counts": counts,
                                     "sender_running": busy, "server_problem": problem}, ensure_ascii=False) + "\n")
        return
    console = Console(highlight=False, soft_wrap=True) if sys.stdout.isatty() else Console(width=140, highlight=False, soft_wrap=True)
    if problem:
        console.print(f"[yellow]{problem}: states as last known[/] (سرور در دسترس نیست)")
    if not filings:
        console.print("the outbox is empty (صف خالی است)")
        return
    table = Table(title=f"Khana station outbox ({settings.home})", title_justify="left")
    for col in ("id", "deadline", "case", "court", "type", "pages", "state", "batch"):
        table.add_column(col, overflow="fold")
    for f in filings:
        style = STATE_STYLE.get(f.state, "")
        table.add_row(f.id, f"{f.deadline or '-'} ({_jalali(f.deadline)})" if f.deadline else "-", f.case_number,
                      f.court, f.document_type, str(f.pages),
                      f"[{style}]{f.state}[/] {STATE_FA.get(f.state, '')}", f.batch_id or "-")
    console.print(table)
    live = [f for f in filings if f.state != "cancelled"]
    done = sum(1 for f in live if f.state not in ("queued", "sending"))
    if done < len(live):
        with Progress(TextColumn("with the server"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("sender running" if busy else "[yellow]no sender running: khana station send[/]"),
                      console=console, auto_refresh=False) as bar:
            bar.add_task("", total=len(live), completed=done)
            bar.refresh()
    for f in filings:
        if f.state == "held" and f.rescan:
            console.print(f"[bold red]{f.id}[/] (case {f.case_number}): rescan these pages / این صفحه‌ها را دوباره اسکن کنید:")
            for p in f.rescan:
                console.print(f"  {p.get('file')} page {p.get('page')}:")
                for line in _reason_lines(p.get("reasons", [])):
                    console.print(f"    - {line}")
        elif f.state == "rejected":
            console.print(f"[bold red]{f.id}[/] (case {f.case_number}) rejected by the server / سرور نپذیرفت: {f.message}")
        elif f.state in ("queued", "sending"):
            held = [v for v in f.precheck if v["decision"] == "hold"]
            if held:
                console.print(f"[yellow]{f.id}[/] local check: {len(held)} page(s) will likely be held:")
                for v in held:
                    console.print(f"  {v['file']} page {v['page']}: {'; '.join(_reason_lines(v['reasons']))}"
                                  + (f" (picture: {v['picture']})" if v.get("picture") else ""))
            if f.last_error:
                console.print(f"  [dim]{f.id}: last try: {f.last_error} (attempts: {f.attempts})[/]")


@app.command()
@_errors
def cancel(filing_id: str = typer.Argument(..., help="the local id printed by push")) -> None:
    """Withdraw a queued filing that has not been sent yet (for example before pushing a rescanned one)."""
    settings = _settings()
    with _outbox(settings) as outbox:
        try:
            f = outbox.get(filing_id)
        except LookupError:
            raise BadInput(f"no filing {filing_id} in the outbox", fa=f"پرونده {filing_id} در صف نیست") from None
        if not outbox.cancel(filing_id):
            raise BadInput(f"filing {filing_id} is {f.state}: only a queued filing can be cancelled",
                             fa=f"پرونده {filing_id} دیگر در صف نیست و لغو نمی‌شود")
    err.print(f"cancelled {filing_id} (لغو شد)")


@app.command()
@_errors
def config(
    url: Optional[str] = typer.Option(None, "--url", help="the Khana server, e.g. https://khana.example.ir"),
    office: Optional[str] = typer.Option(None, "--office", help="this office's code"),
    home: Optional[Path] = typer.Option(None, "--home", help="the outbox folder"),
    watch_dir: Optional[Path] = typer.Option(None, "--watch-dir", help="the scanner's output folder"),
    token_stdin: bool = typer.Option(False, "--token-stdin", help="read the station token from standard input"),
    show_path: bool = typer.Option(False, "--path", help="print the config file's path and exit"),
) -> None:
    """Write the station's settings into its config file (mode 0600); without options, show them (token hidden)."""
    from station.config import config_path, write_config

    if show_path:
        sys.stdout.write(f"{config_path()}\n")
        return
    values: dict = {"url": url, "office": office, "home": str(home) if home else None,
                    "watch_dir": str(watch_dir) if watch_dir else None}
    if token_stdin:
        token = sys.stdin.readline().strip()
        if not token:
            raise BadInput("no token on standard input", fa="توکنی وارد نشد")
        values["token"] = token
    if any(v is not None for v in values.values()):
        _settings(**{k: v for k, v in values.items() if k != "token"})  # refuse a bad URL before writing
        path = write_config(values)
        err.print(f"wrote {path}")
    s = _settings()
    for k in ("url", "office", "home", "watch_dir"):
        sys.stdout.write(f"{k} = {getattr(s, k) or ''}\n")
    sys.stdout.write(f"token = {'(set, hidden)' if s.token else '(not set)'}\n")
    sys.stdout.write(f"# config file: {config_path()}\n")
