"""Ledger throughput (速度): draw + repay commits per second through the service, next to the raw floor.

On a SQLite file (the app's engine: WAL, synchronous=FULL, BEGIN IMMEDIATE) and on PostgreSQL (when it answers), single
thread: N operations alternating a draw and the repayment of it on one 随借随还 line (`svc.draw` / `svc.repay`, each in its
own `rt.uow.write()`, audit seal included), each one commit. The floor is measured by the same run on the same engine:
N transactions that each insert a balanced entry (one header, two postings) with SQLAlchemy core and commit — the least
any durable posting costs there. Each backend has two stores: one with an empty journal, one into which 100,000 postings
were bulk-inserted first; the four measurements (service and floor on each store) run interleaved in rounds, so that
whatever else loads the machine weighs on all four alike. Prints commits/s, service/floor, and the store with the full
journal against the empty one. Figures only: nothing is asserted.

Usage: .venv/bin/python bench/ledger_throughput.py [N] [--journal POSTINGS] [--rounds R] [--json FILE]   (defaults 2000, 100000, 5)
Env:   SANDU_BENCH_PG_ADMIN  (default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

os.environ.setdefault("SANDU_SECRET_KEY", secrets.token_urlsafe(48))  # the bench's own store and key

from _results import Results, json_option  # noqa: E402
from sqlalchemy import Engine, func, insert, select  # noqa: E402

from sandu.demo.seed import seed_universe  # noqa: E402
from sandu.demo.users import actor, demo_specs, ensure_users  # noqa: E402
from sandu.origination import actions as orig  # noqa: E402
from sandu.policy.bundle import load_bundle  # noqa: E402
from sandu.runtime import Runtime  # noqa: E402
from sandu.scoring.risk import load_model  # noqa: E402
from sandu.servicing import service as svc  # noqa: E402
from sandu.servicing.close import class_rules  # noqa: E402
from sandu.simulate.stories import STORY_ROWS  # noqa: E402
from sandu.sources.catalog import ALL_SOURCES  # noqa: E402
from sandu.store import models as m  # noqa: E402
from sandu.store.db import make_engine  # noqa: E402

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc)  # the line opens, and every movement is value-dated, on this business date
TODAY = date(2026, 11, 29)
S2 = STORY_ROWS[1]
PG_ADMIN = os.environ.get("SANDU_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
WARM_UP = 20
BULK_CHUNK = 5000  # entries per statement of the bulk insert
MAX_OPS = 1_000_000


def runtime(url: str, now: datetime = NOW) -> Runtime:
    return Runtime(engine=make_engine(url), bundle=load_bundle(), model=load_model(), clock=lambda: now)


def new_store(url: str) -> Runtime:
    """A migrated store with the story enterprises and the demo users, on the bench's clock."""
    rt = runtime(url)
    rt.upgrade_schema()
    seed_universe(rt.uow, 0, 1, date(2026, 10, 31))
    ensure_users(rt, [spec for spec in demo_specs() if spec.username == "rep-s2"])  # password hashing is slow: only the one needed
    return rt


def open_line(rt: Runtime) -> int:
    """S2's 经营快贷 line (随借随还), opened through origination by its legal representative."""
    rep = actor(rt, "rep-s2")
    orig.register(rt, rep, uscc=S2["uscc"], name=S2["name"])
    consent = orig.grant_consent(rt, rep, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", valid_days=30)
    decision = orig.measure(rt, rep, uscc=S2["uscc"], consent_id=consent.id)
    return orig.accept_offer(rt, rep, decision_id=decision.id, product="jingying_kuaidai").id


def _pg_admin():
    import psycopg

    urls = [PG_ADMIN] if "SANDU_BENCH_PG_ADMIN" in os.environ else [PG_ADMIN, "postgresql://root@127.0.0.1:5432/test"]
    last: Exception | None = None
    for url in urls:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=3)
        except Exception as exc:  # noqa: BLE001 - reported below
            last = exc
    raise RuntimeError(f"{type(last).__name__}: {last}")


def stores(count: int = 1, results: Results | None = None, what: str = "") -> Iterator[tuple[str, list[str]]]:
    """(label, urls of `count` new, empty stores) on SQLite (temporary files) and, when it answers, on PostgreSQL.

    A PostgreSQL that does not answer is printed and, given `results`, recorded as the skipped row "`what` postgresql"
    (an error with CI=true)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield "sqlite", [f"sqlite:///{Path(tmp) / f'bench{k}.db'}" for k in range(count)]
    try:
        admin = _pg_admin()
    except RuntimeError as exc:
        print(f"postgresql: not measured ({exc})")
        if results is not None:
            results.skipped(f"{what} postgresql".strip(), f"PostgreSQL not reachable at {PG_ADMIN}: {str(exc).splitlines()[0]}")
        return
    names = [f"sandu_bench_{uuid.uuid4().hex[:8]}" for _ in range(count)]
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        yield "postgresql", [f"postgresql+psycopg://{admin.info.user}@127.0.0.1:5432/{name}" for name in names]
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# --- what is measured ----------------------------------------------------------------------------


def service_ops(rt: Runtime, line_id: int, n: int, tag: str) -> float:
    """n operations through the service, a draw and then its repayment, one transaction each; returns seconds."""
    rules = class_rules(rt.bundle.classification)
    started = time.perf_counter()
    for i in range(n):
        amount = 100 + (i // 2) % 1000  # fen; the repayment repays the draw before it, so one drawing at most is open
        call = svc.draw if i % 2 == 0 else svc.repay
        with rt.uow.write() as s:
            call(s, line_id=line_id, amount_fen=amount, on_date=None, idempotency_key=f"{tag}-{i}", now=NOW, rules=rules)
    return time.perf_counter() - started


def floor_ops(engine: Engine, n: int, tag: str) -> float:
    """n transactions on the same engine, each a balanced entry (a header, two postings) inserted with core; seconds."""
    entries, postings = m.JournalEntryRow.__table__, m.PostingRow.__table__
    started = time.perf_counter()
    for i in range(n):
        with engine.begin() as conn:
            entry_id = conn.execute(insert(entries).values(idempotency_key=f"floor:{tag}-{i}", request_sha256="0" * 64, kind="draw", line_id=None,
                                                           effective_date=TODAY, memo="", created_at=NOW).returning(entries.c.id)).scalar_one()
            conn.execute(insert(postings), [{"entry_id": entry_id, "account": "floor:debit", "amount_fen": 100},
                                            {"entry_id": entry_id, "account": "floor:credit", "amount_fen": -100}])
    return time.perf_counter() - started


def bulk_postings(engine: Engine, postings: int) -> float:
    """Insert `postings` postings (balanced entries of two, on distinct accounts) in bulk; returns seconds."""
    entries_t, postings_t = m.JournalEntryRow.__table__, m.PostingRow.__table__
    started = time.perf_counter()
    n_entries = postings // 2
    for first in range(0, n_entries, BULK_CHUNK):
        keys = [f"bulk:{i}" for i in range(first, min(first + BULK_CHUNK, n_entries))]
        with engine.begin() as conn:
            conn.execute(insert(entries_t), [{"idempotency_key": k, "request_sha256": "0" * 64, "kind": "draw", "line_id": None, "effective_date": TODAY,
                                              "memo": "", "created_at": NOW} for k in keys])
            ids = conn.execute(select(entries_t.c.id, entries_t.c.idempotency_key).where(entries_t.c.idempotency_key.in_(keys))).all()
            rows = []
            for entry_id, key in ids:
                amount = 100 + int(key.split(":")[1]) % 997
                rows += [{"entry_id": entry_id, "account": f"history:{key.split(':')[1]}:principal", "amount_fen": amount},
                         {"entry_id": entry_id, "account": "clearing:disbursement", "amount_fen": -amount}]
            conn.execute(insert(postings_t), rows)
    return time.perf_counter() - started


def main(n: int, journal: int, rounds: int, results: Results) -> None:
    assert 2 <= n <= MAX_OPS and n % (2 * rounds) == 0, f"N must be a multiple of {2 * rounds}, 2..{MAX_OPS}"
    assert 0 <= journal <= 10_000_000, "--journal must be 0..10,000,000"
    print(f"ledger throughput: {n} operations (a draw, then its repayment), one commit each, single thread; floor: a balanced entry "
          f"(a header, two postings) per commit with SQLAlchemy core on the same engine. Two stores per backend, one with {journal} "
          f"postings bulk-inserted first; the four measurements interleaved in {rounds} rounds (so that load on the machine hits all alike)")
    for label, urls in stores(2, results, "ledger"):
        rts = [new_store(url) for url in urls]
        try:
            lines = [open_line(rt) for rt in rts]
            load_s = bulk_postings(rts[1].engine, journal)
            totals = []
            for rt in rts:
                with rt.engine.connect() as conn:
                    if rt.engine.dialect.name == "postgresql":
                        conn.exec_driver_sql("ANALYZE")  # what autovacuum would have done after a bulk load
                    totals.append(conn.execute(select(func.count()).select_from(m.PostingRow)).scalar_one())
            for k, rt in enumerate(rts):  # warm up
                service_ops(rt, lines[k], WARM_UP, "warm")
                floor_ops(rt.engine, WARM_UP, "warm")
            seconds = {(k, what): 0.0 for k in range(2) for what in ("service", "floor")}
            block = n // rounds
            for r in range(rounds):
                order = list(seconds)
                order = order[r % len(order):] + order[:r % len(order)]
                for k, what in order:
                    if what == "service":
                        seconds[(k, what)] += service_ops(rts[k], lines[k], block, f"r{r}")
                    else:
                        seconds[(k, what)] += floor_ops(rts[k].engine, block, f"r{r}")
            rate = {key: n / s for key, s in seconds.items()}
            for k, name in enumerate(("empty journal", f"+{journal} postings")):
                print(f"  {label:10} {name:17} ({totals[k]:>6} postings before): service {rate[(k, 'service')]:7.1f} commits/s   "
                      f"floor {rate[(k, 'floor')]:7.1f} commits/s   service/floor {rate[(k, 'service')] / rate[(k, 'floor')]:.3f}")
            print(f"  {label:10} with {journal} postings against the empty journal: service {100 * (rate[(1, 'service')] / rate[(0, 'service')] - 1):+.1f} %   "
                  f"floor {100 * (rate[(1, 'floor')] / rate[(0, 'floor')] - 1):+.1f} %   (bulk load {load_s:.1f} s)")
            floor = "raw commit floor: a balanced entry per commit (core insert, same store)"
            for k, name in enumerate(("empty journal", f"{journal:,} postings in the journal")):
                results.add(f"ledger {label}: draw + repay through the service, {name}", rate[(k, "service")], "commits/s", reference=floor,
                            reference_value=rate[(k, "floor")], notes=f"{n} operations, single thread, {rounds} interleaved rounds"
                            + (f"; against the empty journal: service {100 * (rate[(1, 'service')] / rate[(0, 'service')] - 1):+.1f} %, "
                               f"floor {100 * (rate[(1, 'floor')] / rate[(0, 'floor')] - 1):+.1f} %" if k else ""))
        finally:
            for rt in rts:
                rt.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=2000, help="operations per measurement (even)")
    parser.add_argument("--journal", type=int, default=100_000, help="postings bulk-inserted into the second store")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the measurements are interleaved in")
    json_option(parser)
    args = parser.parse_args()
    main(args.n, args.journal, args.rounds, Results("ledger_throughput", args.json))
