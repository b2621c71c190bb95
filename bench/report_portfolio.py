"""The portfolio report on a big book: `sandu report portfolio` on 100,000 lines and about 1,000,000 postings, on SQLite
and PostgreSQL — seconds and peak memory (goal: at most 5 s on SQLite).

The store is loaded in bulk with SQLAlchemy core. S2's 经营快贷 line is opened through origination and drawn on through
the services on 2026-07-29 (its opening moved back to that day); its rows (decision, offer, line, the draw's entry and
postings, the drawing) are copied N − 1 times, each line with one 随借随还 drawing of its own amount. Then three
months of each drawing's life are written as end of day and repayments write them — journal entries built by the
ledger's own builders (`charge_entry` on each 20th in batches of 1,000 drawings, `overdue_entry` in batches on the
21st, one `repayments_entry` per repayment and line), the dues, the drawings' balances, oldest unpaid due date, DPD
and class, the class changes and the ageing history — by the drawing's id modulo 10: 0–5 pay each interest on the day
it falls due; 6 never pays; 7 pays August and misses September (odd ids) or October (even); 8 pays September's
10 days late; 9 repays its principal on 09-10 and the last interest on 09-21 (repaid). The amounts are simplified
(interest at 3.8 % on the days of the month; no penalty charged), the shapes are the ledger's. `sandu ledger check`
is run on the result (a failed check is a failed row).

Then `sandu report portfolio --as-of 2026-10-31 --from 2026-08-31` (12 month-end roll rates, the stage movement since
08-31) runs as its own process — the CLI, start-up included — once as a table and once as xlsx: seconds and the
process's peak RSS.

Usage: .venv/bin/python bench/report_portfolio.py [--lines N] [--json FILE]   (default 100000)
Env:   SANDU_BENCH_PG_ADMIN  (default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Results, json_option  # noqa: E402
from eod_speed import _insert, copies, ledger_check  # noqa: E402
from ledger_throughput import NOW, new_store, open_line, stores  # noqa: E402  (also sets the bench's own key)
from sqlalchemy import bindparam, insert, update  # noqa: E402

from sandu.ledger import journal as jl  # noqa: E402
from sandu.servicing import service as svc  # noqa: E402
from sandu.servicing.close import class_rules, owner  # noqa: E402
from sandu.store import models as m  # noqa: E402

OPENED = DRAWN_ON = date(2026, 7, 29)
MONTHS = (date(2026, 8, 20), date(2026, 9, 20), date(2026, 10, 20))  # settlement days; each interest falls due the next day
CLOSED_THROUGH = AS_OF = date(2026, 10, 31)
SINCE = date(2026, 8, 31)
EARLY_PRINCIPAL = date(2026, 9, 10)
LATE_BY = timedelta(days=10)
RATE_PER_DAY = (38, 360 * 1000)  # 3.8 % a year, 360-day basis: fen × days × 38 / 360,000
CHUNK = 5000
BATCH = 1000  # drawings per batch entry of end of day, as `servicing.close.BATCH_POSTINGS`
MAX_LINES = 1_000_000
FORMATS = ("table", "xlsx")  # the formats timed (json and csv compute the same report and write less)


def _interest(fen: int, days: int) -> int:
    return (fen * days * RATE_PER_DAY[0] + RATE_PER_DAY[1] // 2) // RATE_PER_DAY[1]


def _copies(rt, n: int) -> list[tuple[int, int, int]]:
    """S2's line drawn on `DRAWN_ON`, and n − 1 copies; returns (line id, drawing id, amount) of each."""
    line_id = open_line(rt)
    with rt.engine.begin() as conn:
        conn.execute(update(m.CreditLine.__table__).where(m.CreditLine.id == line_id).values(opened_on=OPENED, accrued_through=OPENED - timedelta(days=1)))
    with rt.uow.write() as s:
        drawing = svc.draw(s, line_id=line_id, amount_fen=1_000_000, on_date=DRAWN_ON, idempotency_key="bench-0", now=NOW,
                           rules=class_rules(rt.bundle.classification)).drawing
        drawing_id, entry_id = drawing.id, drawing.entry_id
    return [(line_id, drawing_id, 1_000_000), *copies(rt, line_id, drawing_id, entry_id, n, decision_values={}, line_values={},
                                                        drawing_values=lambda a: {})]


class Book:
    """What three months of end of day and repayments write, gathered before it is inserted in bulk."""

    def __init__(self) -> None:
        self.entries: list[tuple[jl.JournalEntry, int | None]] = []  # (entry, line id)
        self.dues: list[dict] = []
        self.history: list[dict] = []
        self.changes: list[dict] = []
        self.drawings: list[dict] = []
        self.lines: list[dict] = []

    def batch(self, build, amounts: dict, day: date, kind: str) -> None:
        names = list(amounts)
        for n, start in enumerate(range(0, len(names), BATCH)):
            part = names[start:start + BATCH]
            self.entries.append((build({o: amounts[o] for o in part}, day, f"sys:eod:{day}:{kind}:bench:{n}"), None))

    def repay(self, line_id: int, name: str, buckets: dict[str, int], day: date, tag: str) -> None:
        self.entries.append((jl.repayments_entry({name: buckets}, day, f"c:{line_id}:bench-{tag}"), line_id))


def life(book: Book, drawings: list[tuple[int, int, int]]) -> None:
    """Each drawing's three months (see the module docstring), written into `book`."""
    charges: dict[date, dict[str, int]] = {d: {} for d in MONTHS}
    overdue: dict[date, dict[str, tuple[int, int]]] = {d + timedelta(days=1): {} for d in MONTHS}
    for line_id, drawing_id, amount in drawings:
        name, group = owner(line_id, drawing_id), drawing_id % 10
        start, unpaid, oldest, repaid_on, first_late = DRAWN_ON, 0, None, None, None
        principal = amount
        for k, settle in enumerate(MONTHS):
            if repaid_on is not None:
                break
            due_on = settle + timedelta(days=1)
            fen_days = principal * (settle - start).days if group != 9 or k != 1 else amount * (EARLY_PRINCIPAL - start).days
            start = settle
            fen = _interest(fen_days, 1)
            charges[settle][name] = fen
            if oldest is None:
                book.history.append({"drawing_id": drawing_id, "on_date": settle, "oldest_due_on": due_on})
                oldest = due_on
            if group == 9 and k == 1:  # the principal repaid on 09-10; September's interest paid when due: repaid
                book.repay(line_id, name, {"principal": amount}, EARLY_PRINCIPAL, "p")
                principal = 0
            missed = group == 6 or (group == 7 and k >= (1 if drawing_id % 20 == 7 else 2)) or (group == 8 and k == 1)
            late = group == 8 and k == 1
            book.dues.append({"drawing_id": drawing_id, "due_on": due_on, "kind": "settlement", "raised_principal_fen": 0,
                              "raised_interest_fen": fen, "principal_fen": 0, "interest_fen": fen if missed and not late else 0,
                              "overdue": missed, "grace_principal_fen_days": 0, "grace_interest_fen_days": 0})
            if not missed:
                book.repay(line_id, name, {"interest": fen}, due_on, f"i{k}")
                book.history.append({"drawing_id": drawing_id, "on_date": due_on, "oldest_due_on": None})
                oldest = None
                if group == 9 and k == 1:
                    repaid_on = due_on
                continue
            overdue[due_on][name] = (0, fen)
            first_late = first_late or due_on + timedelta(days=1)
            if late:
                book.repay(line_id, name, {"overdue_interest": fen}, due_on + LATE_BY, f"o{k}")
                book.history.append({"drawing_id": drawing_id, "on_date": due_on + LATE_BY, "oldest_due_on": None})
                oldest = None
            else:
                unpaid += fen
        dpd = 0 if oldest is None else (AS_OF - oldest).days
        risk_class = "special_mention" if first_late else "normal"
        if first_late:
            book.changes.append({"drawing_id": drawing_id, "on_date": first_late, "from_class": "normal", "to_class": risk_class,
                                 "officer_class": None, "dpd": 1, "cause": "rule", "by_user": None, "note": "1 days past due"})
        book.drawings.append({"b_id": drawing_id, "principal_fen": principal, "overdue_interest_fen": unpaid, "oldest_due_on": oldest,
                              "dpd": dpd, "days_current": 0 if dpd or not first_late else (AS_OF - (first_late + LATE_BY)).days + 1,
                              "risk_class": risk_class, "status": "repaid" if repaid_on else "open", "repaid_on": repaid_on,
                              "interest_fen_days": 0 if repaid_on else principal * (AS_OF - MONTHS[-1]).days})
        book.lines.append({"b_id": line_id, "drawn_principal_fen": principal, "risk_class": "normal" if repaid_on else risk_class})
    for day, amounts in charges.items():
        book.batch(lambda a, d, key: jl.charge_entry("interest", a, d, key), amounts, day, "interest")
    for day, moves in overdue.items():
        if moves:
            book.batch(jl.overdue_entry, moves, day, "overdue")


def write(rt, book: Book) -> int:
    """Insert what `book` holds; returns the postings written."""
    entries, postings = m.JournalEntryRow.__table__, m.PostingRow.__table__
    written = 0
    for start in range(0, len(book.entries), CHUNK):
        part = book.entries[start:start + CHUNK]
        with rt.engine.begin() as conn:
            ids = _insert(conn, entries, [{"idempotency_key": e.idempotency_key, "kind": e.kind, "line_id": line_id, "effective_date": e.effective_date,
                                           "memo": e.memo, "created_at": NOW, "request_sha256": hashlib.sha256(e.idempotency_key.encode()).hexdigest()}
                                          for e, line_id in part])
            rows = [{"entry_id": i, "account": p.account, "amount_fen": p.amount_fen} for i, (e, _) in zip(ids, part, strict=True) for p in e.postings]
            conn.execute(insert(postings), rows)
            written += len(rows)
    d, ln = m.Drawing.__table__, m.CreditLine.__table__
    with rt.engine.begin() as conn:
        for table, rows in ((m.Due.__table__, book.dues), (m.DelinquencyChange.__table__, book.history),
                            (m.ClassificationChange.__table__, book.changes)):
            for start in range(0, len(rows), CHUNK):
                conn.execute(insert(table), rows[start:start + CHUNK])
        cols = ("principal_fen", "overdue_interest_fen", "oldest_due_on", "dpd", "days_current", "risk_class", "status", "repaid_on", "interest_fen_days")
        update_drawing = d.update().where(d.c.id == bindparam("b_id")).values({c: bindparam(c) for c in cols})
        update_line = ln.update().where(ln.c.id == bindparam("b_id")).values(drawn_principal_fen=bindparam("drawn_principal_fen"),
                                                                              risk_class=bindparam("risk_class"), accrued_through=CLOSED_THROUGH)
        for start in range(0, len(book.drawings), CHUNK):
            conn.execute(update_drawing, book.drawings[start:start + CHUNK])
            conn.execute(update_line, book.lines[start:start + CHUNK])
        conn.execute(update(m.BusinessCalendar.__table__).values(last_closed_on=CLOSED_THROUGH))
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")  # what autovacuum does after a bulk load
    else:  # what SQLite's automatic checkpoints do in a running store: the bulk load's WAL moved into the database
        raw = rt.engine.raw_connection()  # outside any transaction (a checkpoint cannot run inside one)
        try:
            busy, _, _ = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0, "the checkpoint was not blocked"
        finally:
            raw.close()
    return written


# `sandu` run in a process that prints its own peak RSS (VmHWM, which exec resets) as it exits: the rusage of a child
# counts the pages of the forking bench (about 900 MiB of loaded book), not the CLI's own
PEAK_REPORTER = ("import atexit, re, runpy, sys; "
                 "atexit.register(lambda: sys.stderr.write(re.search(r'VmHWM:.*', open('/proc/self/status').read()).group(0) + '\\n')); "
                 "sys.argv = ['sandu', *sys.argv[1:]]; runpy.run_module('sandu.cli.main', run_name='__main__')")


def cli(url: str, fmt: str, out_dir: Path) -> tuple[float, float, str]:
    """`sandu report portfolio` as its own process: (seconds, peak RSS in MiB, the first line of what it printed)."""
    args = [sys.executable, "-c", PEAK_REPORTER, "report", "portfolio", "--as-of", AS_OF.isoformat(), "--from", SINCE.isoformat(),
            "--format", fmt]
    if fmt != "table":
        args += ["--out", str(out_dir / f"portfolio-{uuid.uuid4().hex[:6]}.{fmt}")]
    env = {**os.environ, "SANDU_DATABASE_URL": url}
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, errors = proc.communicate()  # small: the table or one line, and the peak
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"sandu report portfolio --format {fmt} exited {proc.returncode}: {errors.strip().splitlines()[-1:]}")
    peak = [line for line in errors.splitlines() if line.startswith("VmHWM:")]
    assert peak, "the CLI's process reported its peak RSS"
    return seconds, int(peak[-1].split()[1]) / 1024, (out.strip().splitlines() or [""])[0]


def main(n: int, results: Results) -> None:
    assert 1 <= n <= MAX_LINES, f"--lines must be 1..{MAX_LINES}"
    print(f"sandu report portfolio on {n:,} lines (one drawing each, three months of life), loaded in bulk")
    for label, (url,) in stores(1, results, "report portfolio"):
        rt = new_store(url)
        try:
            started = time.perf_counter()
            drawings = _copies(rt, n)
            book = Book()
            life(book, drawings)
            postings = write(rt, book) + 2 * n
            loaded = time.perf_counter() - started
            check = ledger_check(rt)
            print(f"  {label:10} loaded in {loaded:.1f} s: {postings:,} postings, {len(book.history):,} ageing rows; {check}")
            if not check.startswith("ledger check ok"):
                results.failed(f"report portfolio {label}: ledger check after the load", check)
            with tempfile.TemporaryDirectory() as tmp:
                for fmt in FORMATS:
                    seconds, rss, first = cli(url, fmt, Path(tmp))
                    print(f"  {label:10} sandu report portfolio --format {fmt:5}: {seconds:6.2f} s, peak RSS {rss:7.1f} MiB  ({first[:60]})")
                    results.add(f"report portfolio {label}: CLI --format {fmt}, {n:,} lines", seconds, "s",
                                notes=f"peak RSS {rss:.0f} MiB; the process end to end (start-up and imports included)")
                    results.add(f"report portfolio {label}: CLI --format {fmt} peak RSS", rss, "MiB")
        finally:
            rt.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="credit lines (one drawing each)")
    json_option(parser)
    args = parser.parse_args()
    main(args.lines, Results("report_portfolio", args.json))
