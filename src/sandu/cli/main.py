"""The `sandu` command line. Thin: parse, call one service, render."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sandu.domain.errors import SanduError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help="sandu (三度): credit for technology SMEs.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

DEFAULT_AS_OF = "2026-10-31"
MAX_SIM_ENTERPRISES = 5_000_000


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _runtime():
    from sandu.runtime import make_runtime

    return make_runtime()


def _parse_date(value: str, field: str) -> date:
    from sandu.domain.dates import parse_iso_date

    try:
        return parse_iso_date(value)
    except ValueError as exc:
        _fail(f"{field}: {exc} (allowed: YYYY-MM-DD)")
        raise  # unreachable


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest revision."""
    rt = _runtime()
    rev = rt.upgrade_schema()
    console.print(f"schema at revision [bold]{rev}[/] ({rt.store_label()})")


@app.command()
def simulate(
    enterprises: Annotated[int, typer.Option("--enterprises", "-n", help="How many enterprises to generate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same universe.")] = 42,
    as_of: Annotated[str, typer.Option(help="Data as-of date (YYYY-MM-DD).")] = DEFAULT_AS_OF,
    out: Annotated[Optional[Path], typer.Option(help="Write a Parquet file instead of the store.")] = None,
) -> None:
    """Build the deterministic synthetic universe (plus the five story enterprises)."""
    if not 0 <= enterprises <= MAX_SIM_ENTERPRISES:
        _fail(f"--enterprises: must be within 0..{MAX_SIM_ENTERPRISES}, got {enterprises}")
    day = _parse_date(as_of, "--as-of")
    if out is not None:
        if out.suffix != ".parquet":
            _fail(f"--out: {out} must end in .parquet")
        from sandu.demo.seed import universe_frame

        frame = universe_frame(enterprises, seed, day)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(out)
        console.print(f"wrote {frame.height:,} enterprises × {frame.width} columns to {out}")
        return
    from sandu.demo.seed import seed_universe

    rt = _runtime()
    rt.upgrade_schema()
    with Progress(TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("seed", total=enterprises)
        added = seed_universe(rt.uow, enterprises, seed, day, progress=lambda k: bar.advance(task, k))
    console.print(f"added {added:,} enterprises to the store (existing USCCs kept)")


@app.command()
def stories(
    as_of: Annotated[Optional[str], typer.Option(help="Day the stories start (default: 10 days ago; the replay runs 10 business days).")] = None,
) -> None:
    """Replay the five stories end to end and print their table; exit 1 if one does not match."""
    from sandu.demo.seed import seed_universe
    from sandu.demo.stories import REPLAY_DAYS, replay_all

    rt = _runtime()
    rt.upgrade_schema()
    seed_universe(rt.uow, 0, 0, _parse_date(DEFAULT_AS_OF, "as_of"))
    latest = rt.today() - timedelta(days=REPLAY_DAYS)
    day = _parse_date(as_of, "--as-of") if as_of else latest
    if day > latest:
        _fail(f"--as-of: the replay runs {REPLAY_DAYS} business days from {day} and ends after the business date {rt.today()} (allowed: {latest} or earlier)")
    outcomes = replay_all(rt, day)
    table = Table(title=f"sandu stories — policy {rt.bundle.label}, business date {day}")
    for col in ("story", "enterprise", "products", "limits", "rate", "to_first_disbursement", "servicing", "shape"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        table.add_row(*o.row().values())
    console.print(table)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@app.command()
def eod(date_: Annotated[Optional[str], typer.Option("--date", help="Business date (default: today).")] = None) -> None:
    """End of day: accrue interest on every active line; post it on the 20th. Idempotent."""
    from sandu.servicing.actions import end_of_day

    rt = _runtime()
    day = _parse_date(date_, "--date") if date_ else rt.today()
    v = end_of_day(rt, day)
    console.print(f"eod {day}: {v.lines} lines in {v.batches} batches, {v.days_accrued} line-days accrued, {v.interest_posted_fen} fen interest posted")
    if v.remaining_lines:
        _fail(f"eod {day}: {v.remaining_lines} lines are not yet brought up to date; run it again", code=1)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on (default: SANDU_HOST or 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port (default: SANDU_PORT or 8000).")] = None,
) -> None:
    """Serve the API (/api/v1, /docs) and the web pages (/app)."""
    import uvicorn

    from sandu.api.app import create_app
    from sandu.settings import get_settings

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if not 1 <= port <= 65535:
        _fail(f"--port: must be within 1..65535, got {port}")
    console.print(f"sandu is serving on [bold]http://{host}:{port}/app[/]  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@app.command()
def demo(
    enterprises: Annotated[int, typer.Option("--enterprises", "-n")] = 2000,
    seed: Annotated[int, typer.Option()] = 42,
    port: Annotated[Optional[int], typer.Option(help="TCP port (default: SANDU_PORT or 8000).")] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after seeding.")] = True,
) -> None:
    """Set up the demo: migrate, seed the universe, then serve it."""
    db_upgrade()
    simulate(enterprises=enterprises, seed=seed, as_of=DEFAULT_AS_OF, out=None)
    if serve_after:
        serve(host=None, port=port)


def main() -> None:  # pragma: no cover - console entry point
    from pydantic import ValidationError

    try:
        app()
    except SanduError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        sys.exit(2)
    except ValidationError as exc:  # a bad SANDU_* setting
        first = exc.errors()[0]
        err.print(f"[bold red]error:[/] setting SANDU_{'_'.join(str(p) for p in first['loc']).upper()}: {first['msg']}")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
