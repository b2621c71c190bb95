"""Simulated history speed: `sandu simulate --history` on a seeded store, on SQLite and PostgreSQL.

A new store is migrated and seeded with N enterprises (seed 42, the demo's), marked a demo store, and run forward M
months (`sandu.demo.history.run_history`, the default behaviour model): every application, draw, repayment and close
through the service functions, every date closed by the real end of day. Timed from the first day to the last; then
`ledger_check` is run (a check that does not hold is a failed row). Figures: days closed per second, lines opened,
journal postings written per second, applications per second; the notes say what the run did.

Usage: .venv/bin/python bench/simulate_history.py [--enterprises N] [--months M] [--json FILE]   (default 2000, 3)
Env:   SANDU_BENCH_PG_ADMIN  (default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Results, json_option  # noqa: E402
from ledger_throughput import runtime, stores  # noqa: E402  (also sets the bench's own key)
from sqlalchemy import func, select  # noqa: E402

from sandu.demo.history import run_history  # noqa: E402
from sandu.demo.seed import seed_universe  # noqa: E402
from sandu.domain.enums import StoreKind  # noqa: E402
from sandu.servicing.actions import ledger_check  # noqa: E402
from sandu.servicing.calendar import mark_store  # noqa: E402
from sandu.store import models as m  # noqa: E402

AS_OF = date(2026, 10, 31)
SEED = 42
MAX_ENTERPRISES = 200_000


def measure(url: str, enterprises: int, months: int, label: str, results: Results) -> None:
    rt = runtime(url)
    rt.upgrade_schema()
    seed_universe(rt.uow, enterprises, SEED, AS_OF)
    with rt.uow.write() as s:
        mark_store(s, StoreKind.DEMO)
    t0 = time.perf_counter()
    r = run_history(rt, months=months, seed=SEED)
    seconds = time.perf_counter() - t0
    with rt.uow.read() as s:
        postings = s.scalar(select(func.count()).select_from(m.PostingRow)) or 0
    check = ledger_check(rt)
    size = f"{enterprises:,} enterprises × {months} months"
    notes = (f"{r.days} days in {seconds:.1f} s: {r.applications:,} applications, {r.lines_opened:,} lines, {r.draws:,} draws, "
             f"{r.repayments:,} repayments, {r.closes:,} closes, {postings:,} postings; refused {sum(r.refused.values())}")
    print(f"{label}: {size}: {notes}")
    results.add(f"history {label}: days closed ({size})", round(r.days / seconds, 2), "days/s", notes=notes)
    results.add(f"history {label}: lines opened ({size})", r.lines_opened, "lines", notes=f"{r.applications:,} applications")
    results.add(f"history {label}: postings written ({size})", round(postings / seconds, 1), "postings/s", notes=f"{postings:,} postings")
    results.add(f"history {label}: applications ({size})", round(r.applications / seconds, 2), "applications/s",
                notes="register, consent, measure, sign: through the service functions")
    if not check.ok:
        results.failed(f"history {label}: ledger check", "; ".join(check.problems[:3]))
    rt.engine.dispose()


def main(enterprises: int, months: int, results: Results) -> None:
    if not 1 <= enterprises <= MAX_ENTERPRISES:
        raise SystemExit(f"--enterprises: must be within 1..{MAX_ENTERPRISES}, got {enterprises}")
    for label, urls in stores(1, results, "history"):
        measure(urls[0], enterprises, months, label, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=2000, help="enterprises seeded")
    parser.add_argument("--months", type=int, default=3, help="months run forward")
    json_option(parser)
    args = parser.parse_args()
    main(args.enterprises, args.months, Results("simulate_history", args.json))
