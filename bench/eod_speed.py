"""End of day speed (速度): one business date for 100,000 open drawings, on SQLite and PostgreSQL.

The store is loaded in bulk with SQLAlchemy core: S2's 经营快贷 line is opened and drawn on through the services, then its
rows (decision, offer, line, the draw's journal entry and postings, the drawing) are copied N − 1 times — every line with
one 随借随还 drawing of its own amount drawn on 2026-11-29, closed through 2026-12-18 (its interest fen-days accrued
for those 20 days) — so the balances kept on rows equal the journal (`ledger_check` is run to show it, and again after
end of day; a check that fails, e.g. on PostgreSQL's statement timeout, is printed, not raised). Then
`actions.end_of_day` is timed for 2026-12-19 (an ordinary date: accrual) and for 2026-12-20 (the settlement date: every
drawing's interest charged, its due raised), with the default batch size. Figures only: nothing is asserted.

Usage: .venv/bin/python bench/eod_speed.py [--drawings N] [--json FILE]   (default 100000)
Env:   SANDU_BENCH_PG_ADMIN  (default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Results, json_option  # noqa: E402
from ledger_throughput import NOW, new_store, open_line, stores  # noqa: E402  (also sets the bench's own key)
from sqlalchemy import Connection, Table, func, insert, select, update  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from sandu.security.actor import Actor  # noqa: E402
from sandu.servicing import actions  # noqa: E402
from sandu.servicing import service as svc  # noqa: E402
from sandu.servicing.close import class_rules, owner  # noqa: E402
from sandu.store import models as m  # noqa: E402

DRAWN_ON = date(2026, 11, 29)
CLOSED_THROUGH = date(2026, 12, 18)
ORDINARY, SETTLEMENT = date(2026, 12, 19), date(2026, 12, 20)
EOD_NOW = datetime(2027, 1, 1, 9, 0, tzinfo=timezone.utc)  # end of day runs after the dates it closes
CHUNK = 5000
MAX_DRAWINGS = 1_000_000


def _row(conn: Connection, table: Table, where) -> dict:
    return dict(conn.execute(table.select().where(where)).mappings().one())


def _insert(conn: Connection, table: Table, rows: list[dict]) -> list:
    """Insert `rows`, returning their new ids in the order given."""
    return list(conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())


def copies(rt, line_id: int, drawing_id: int, entry_id: int, n: int, *, decision_values: dict, line_values: dict,
           drawing_values: Callable[[int], dict]) -> list[tuple[int, int, int]]:
    """n − 1 copies of a line with its one drawing (its decision, offer, line, draw entry and postings, drawing), each of
    its own random amount, with these values over the copied ones; returns (line id, drawing id, amount) of each copy."""
    t = {model: model.__table__ for model in (m.Decision, m.Offer, m.CreditLine, m.JournalEntryRow, m.PostingRow, m.Drawing)}
    rng = random.Random(1)
    with rt.engine.begin() as conn:
        line = _row(conn, t[m.CreditLine], t[m.CreditLine].c.id == line_id)
        offer = _row(conn, t[m.Offer], t[m.Offer].c.id == line["offer_id"])
        decision = _row(conn, t[m.Decision], t[m.Decision].c.id == offer["decision_id"])
        entry = _row(conn, t[m.JournalEntryRow], t[m.JournalEntryRow].c.id == entry_id)
        draw = _row(conn, t[m.Drawing], t[m.Drawing].c.id == drawing_id)
    out = []
    for first in range(1, n, CHUNK):
        k = min(CHUNK, n - first)
        amounts = [rng.randint(10_000, 5_000_000) for _ in range(k)]
        with rt.engine.begin() as conn:
            decision_ids = [str(uuid.uuid4()) for _ in range(k)]
            conn.execute(insert(t[m.Decision]), [{**decision, "id": d, "superseded_at": NOW, **decision_values} for d in decision_ids])
            offer_ids = _insert(conn, t[m.Offer], [{**{c: v for c, v in offer.items() if c != "id"}, "decision_id": d} for d in decision_ids])
            line_ids = _insert(conn, t[m.CreditLine], [{**{c: v for c, v in line.items() if c != "id"}, "offer_id": o, "drawn_principal_fen": a,
                                                        **line_values} for o, a in zip(offer_ids, amounts, strict=True)])
            entry_ids = _insert(conn, t[m.JournalEntryRow], [{**{c: v for c, v in entry.items() if c != "id"}, "idempotency_key": f"c:{i}:bench-0",
                                                              "line_id": i} for i in line_ids])
            drawing_ids = _insert(conn, t[m.Drawing], [
                {**{c: v for c, v in draw.items() if c != "id"}, "line_id": i, "entry_id": e, "amount_fen": a, "principal_fen": a, **drawing_values(a)}
                for i, e, a in zip(line_ids, entry_ids, amounts, strict=True)])
            conn.execute(insert(t[m.PostingRow]), [
                p for i, d, e, a in zip(line_ids, drawing_ids, entry_ids, amounts, strict=True)
                for p in ({"entry_id": e, "account": f"loan:{owner(i, d)}:principal", "amount_fen": a},
                          {"entry_id": e, "account": "clearing:disbursement", "amount_fen": -a})])
            out += list(zip(line_ids, drawing_ids, amounts, strict=True))
    return out


def load(rt, n: int) -> float:
    """S2's line and drawing, and n − 1 copies of them (see the module docstring); returns seconds."""
    started = time.perf_counter()
    line_id = open_line(rt)
    with rt.uow.write() as s:
        drawing = svc.draw(s, line_id=line_id, amount_fen=1_000_000, on_date=DRAWN_ON, idempotency_key="bench-0", now=NOW,
                           rules=class_rules(rt.bundle.classification)).drawing
        drawing_id, entry_id = drawing.id, drawing.entry_id
    days = (CLOSED_THROUGH - DRAWN_ON).days + 1
    with rt.engine.begin() as conn:  # the original line too: closed through CLOSED_THROUGH, its 20 days accrued
        conn.execute(update(m.CreditLine.__table__).where(m.CreditLine.id == line_id).values(accrued_through=CLOSED_THROUGH))
        conn.execute(update(m.Drawing.__table__).where(m.Drawing.id == drawing_id).values(interest_fen_days=m.Drawing.amount_fen * days))
    copies(rt, line_id, drawing_id, entry_id, n, decision_values={"application": {}, "result": {}, "timings_ms": {}, "model_versions": {}},
           line_values={"accrued_through": CLOSED_THROUGH}, drawing_values=lambda a: {"interest_fen_days": a * days})
    with rt.engine.begin() as conn:
        conn.execute(update(m.BusinessCalendar.__table__).values(last_closed_on=CLOSED_THROUGH))
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")  # what autovacuum does after a bulk load
    return time.perf_counter() - started


def ledger_check(rt) -> str:
    """`sandu ledger check` on the store, as a phrase (its failure too: it is reported, not raised)."""
    started = time.perf_counter()
    try:
        check = actions.ledger_check(rt)
    except OperationalError as exc:  # e.g. PostgreSQL's statement timeout
        return f"ledger check failed after {time.perf_counter() - started:.1f} s: {str(exc.orig).strip().splitlines()[0]}"
    verdict = "ok" if check.ok else f"{len(check.problems)} problems, e.g. {check.problems[:2]}"
    return f"ledger check {verdict} ({check.drawings} drawings, {check.entries} entries, {check.postings} postings, {time.perf_counter() - started:.1f} s)"


def timed_eod(rt, day: date) -> tuple[float, object]:
    started = time.perf_counter()
    view = actions.end_of_day(rt, Actor.system("eod"), day)
    return time.perf_counter() - started, view


def main(n: int, results: Results) -> None:
    assert 1 <= n <= MAX_DRAWINGS, f"--drawings must be 1..{MAX_DRAWINGS}"
    print(f"end of day for {n} open 随借随还 drawings (one a line), batches of the default size; the store loaded in bulk")
    for label, (url,) in stores(1, results, "end of day"):
        rt = new_store(url)
        try:
            seconds = load(rt, n)
            check_before = ledger_check(rt)
            print(f"  {label:10} loaded in {seconds:.1f} s; {check_before}")
            eod_rt = rt.with_clock(lambda: EOD_NOW)
            for kind, day in (("ordinary date", ORDINARY), ("settlement date", SETTLEMENT)):
                seconds, view = timed_eod(eod_rt, day)
                (d,) = view.days
                print(f"  {label:10} {kind:16} {day}: {seconds:7.2f} s   {d.lines / seconds:9.0f} lines/s   batches {d.batches}   "
                      f"accrued {d.drawings_accrued}   interest charged {d.charged_fen['interest']} fen")
                results.add(f"end of day {label}: {kind}, {n:,} open drawings", d.lines / seconds, "lines/s",
                            notes=f"{seconds:.2f} s, {d.batches} batches, {d.drawings_accrued} drawings accrued")
            with rt.uow.read() as s:
                dues = s.scalar(select(func.count()).select_from(m.Due))
                charged = s.scalar(select(func.count()).select_from(m.Drawing).where(m.Drawing.interest_fen > 0))
                last = s.scalar(select(m.BusinessCalendar.last_closed_on))
            check_after = ledger_check(rt)
            print(f"  {label:10} closed through {last}: {charged} drawings with interest charged, {dues} dues raised; {check_after}")
            for when, check in (("before", check_before), ("after", check_after)):
                if not check.startswith("ledger check ok"):
                    results.failed(f"end of day {label}: ledger check {when} end of day", check)
        finally:
            rt.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=100_000, help="open drawings (one a line)")
    json_option(parser)
    args = parser.parse_args()
    main(args.drawings, Results("eod_speed", args.json))
