"""Early-warning scan speed (贷后预警): N open lines, on SQLite and PostgreSQL.

The store is loaded in bulk as `eod_speed` loads it: S2's 经营快贷 line and N − 1 copies of it, each with one open
drawing, all of S2's enterprise. Then S2's tax source reports the latest year's revenue 40 % lower and the sources are
refreshed through the service (`origination.actions.refresh_sources`), which scans every open line of the enterprise:
the revenue-collapse rule raises one alert on each line, a batch of lines per committed unit of work — timed as
"refresh + scan raising". Then the daily scan (`alert_actions.scan`) runs over every open line: nothing new is raised
(each line has its open alert), so it measures reading the lines, their snapshots (hash-checked once a batch) and
their drawings. The reference is the pure engine (`policy.warning.evaluate`) on the same facts, in the same process.
A check that does not hold (not every line raised its alert) is a failed row.

Usage: .venv/bin/python bench/early_warning.py [--lines N] [--json FILE]   (default 5000)
Env:   SANDU_BENCH_PG_ADMIN  (default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Results, json_option  # noqa: E402
from eod_speed import load  # noqa: E402
from ledger_throughput import NOW, S2, new_store, stores  # noqa: E402
from sqlalchemy import select, update  # noqa: E402

from sandu.origination import actions as orig  # noqa: E402
from sandu.policy.warning import LineFacts, evaluate  # noqa: E402
from sandu.security.actor import Actor  # noqa: E402
from sandu.servicing import alert_actions  # noqa: E402
from sandu.servicing import alerts as svc  # noqa: E402
from sandu.store import models as m  # noqa: E402

MAX_LINES = 1_000_000
LATER = NOW + timedelta(minutes=5)  # the refresh and the scan: after the lines were opened, the same business date


def collapse_revenue(rt) -> None:
    with rt.uow.write() as s:
        rec = s.scalar(select(m.SourceRecord).where(m.SourceRecord.uscc == S2["uscc"], m.SourceRecord.source == "tax"))
        payload = copy.deepcopy(rec.payload)
        payload["years"][-1]["revenue_fen"] = payload["years"][-1]["revenue_fen"] * 6 // 10
        s.execute(update(m.SourceRecord).where(m.SourceRecord.uscc == S2["uscc"], m.SourceRecord.source == "tax").values(payload=payload))


def engine_rate(rt, rounds: int) -> float:
    """Evaluations a second of the pure engine on S2's facts (its snapshots, no drawing past due)."""
    with rt.uow.read() as s:
        ent = s.scalar(select(m.Enterprise.id).where(m.Enterprise.uscc == S2["uscc"]))
        previous, current = svc.latest_profiles(s, ent)
    facts = LineFacts(1, LATER.date(), previous, current, None)
    rules = rt.bundle.early_warning
    assert evaluate(rules, facts), "the facts raise the revenue-collapse rule"
    started = time.perf_counter()
    for _ in range(rounds):
        evaluate(rules, facts)
    return rounds / (time.perf_counter() - started)


def main(n: int, results: Results) -> None:
    assert 1 <= n <= MAX_LINES, f"--lines must be 1..{MAX_LINES}"
    print(f"early-warning scan of {n:,} open lines (one drawing each, one enterprise), batches of {svc.MAX_SCAN_BATCH:,} lines")
    for label, (url,) in stores(1, results, "early warning"):
        rt = new_store(url)
        try:
            seconds = load(rt, n)
            print(f"  {label:10} loaded in {seconds:.1f} s")
            later = rt.with_clock(lambda: LATER)
            collapse_revenue(later)
            started = time.perf_counter()
            view = orig.refresh_sources(later, Actor.system("bench"), uscc=S2["uscc"])
            refresh_s = time.perf_counter() - started
            with later.uow.read() as s:
                raised = len(s.scalars(select(m.Alert.id)).all())
            started = time.perf_counter()
            daily = alert_actions.scan(later, Actor.system("bench"))
            scan_s = time.perf_counter() - started
            reference = engine_rate(later, 20_000)
            print(f"  {label:10} refresh + scan raising: {refresh_s:7.2f} s  {n / refresh_s:9.0f} lines/s   alerts raised {raised:,} "
                  f"(answer lists {len(view.alerts_raised):,})")
            print(f"  {label:10} daily scan, nothing new: {scan_s:7.2f} s  {daily.lines / scan_s:9.0f} lines/s   raised {daily.raised}")
            print(f"  {label:10} pure engine: {reference:9.0f} evaluations/s (7 rules)")
            results.add(f"early warning {label}: refresh + scan raising an alert on each of {n:,} lines", n / refresh_s, "lines/s",
                        reference="pure engine, same facts", reference_value=reference, notes=f"{refresh_s:.2f} s")
            results.add(f"early warning {label}: daily scan of {n:,} open lines, nothing new", daily.lines / scan_s, "lines/s",
                        reference="pure engine, same facts", reference_value=reference, notes=f"{scan_s:.2f} s")
            if raised != n or daily.raised != 0 or daily.lines != n:
                results.failed(f"early warning {label}: one alert per line", f"{raised} alerts on {n} lines; the daily scan saw {daily.lines} "
                               f"lines and raised {daily.raised}")
        finally:
            rt.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5_000, help="open lines (one drawing each)")
    json_option(parser)
    args = parser.parse_args()
    main(args.lines, Results("early_warning", args.json))
