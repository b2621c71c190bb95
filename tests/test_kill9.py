"""kill -9 at random moments: nothing acknowledged is lost, nothing is half written, end of day resumes.

A worker process (tests/kill9_worker.py, a fork server: one import of sandu, a forked child per run) is killed with
SIGKILL 20–300 ms after it is ready, again and again, on SQLite and on PostgreSQL:

- during postings (draws and repayments with idempotency keys on one line; the worker logs, with fsync, each request
  before it starts and each acknowledgement after its commit returned): after every kill every acknowledged key has its
  journal entry (with the logged amount), no refused key has one, no entry exists that was never asked for, the
  ledger proves rows == journal (no entry without postings, none unbalanced), the audit chain is intact; the request in
  flight at the kill is retried with the same key by the next run, and written exactly once;
- during end of day (48 lines of four repayment methods with drawings, 10 lines a batch, closing December and
  January: settlements, dues, overdue, penalty and compound interest, classification): after every kill the ledger
  check holds and the run's checkpoint agrees with the lines (every line up to it closed through the date in progress,
  none after it); a new run on the same host takes over from the killed holder at once, even while its lease is live;
  run to the end, the store equals that of an uninterrupted run on a copy of the same store.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXED_NOW, TEST_SECRET, TEST_SETTINGS, new_db_url, runtime_on
from servicing_support import D0, SERVICE_NOW, draw, eod, open_line, repay
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from sandu.audit import service as audit
from sandu.domain.enums import EodStatus, LineStatus
from sandu.ledger.schedule import METHODS, REVOLVING
from sandu.servicing import eod as eod_module
from sandu.servicing import service as svc
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m

WORKER = Path(__file__).resolve().parent / "kill9_worker.py"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
POSTING_KILLS = 30
EOD_KILLS = 25
KILL_AFTER_S = (0.02, 0.30)
EOD_LINES = 48
EOD_BATCH_LINES = 10
EOD_FIRST = D0 + timedelta(days=3)  # the first end of day, before the kills: the starting store
EOD_LAST_AT_LEAST = date(2027, 1, 22)  # past the settlement of 12-20, its due date, overdue, and the settlement of 01-20
TEMPLATE_LINES = ((STORY_ROWS[0], "jingying_kuaidai", False), (STORY_ROWS[1], "jingying_kuaidai", False), (STORY_ROWS[2], "keji_xinyong", False),
                  (STORY_ROWS[3], "keji_xinyong", False), (STORY_ROWS[4], "diya_xinyong", True))
LEDGER_MODELS = (m.CreditLine, m.Drawing, m.Due, m.Instalment, m.ClassificationChange, m.JournalEntryRow, m.PostingRow, m.BusinessCalendar,
                 m.EodRun)


# --- the worker --------------------------------------------------------------------------------


RUN_NAME = "sandu-kill9-run"  # the application_name of a run's connections on PostgreSQL, so that `settled` can wait for them
SETTLE_S = 30


def run_url(url: str) -> str:
    """The store's URL as a run is given it: on PostgreSQL, naming the run's connections RUN_NAME."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return url
    return u.update_query_dict({"application_name": RUN_NAME}).render_as_string(hide_password=False)


def settled(url: str) -> None:
    """After a kill on PostgreSQL: wait (at most SETTLE_S) until no connection of a run is left. The server process of a
    killed client still finishes the statement it was given — a COMMIT received just before the kill lands after it —
    so the store is checked only once the killed run's transaction has ended, one way or the other, and not between two
    reads of the check (one before that COMMIT landed, one after)."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return
    engine = create_engine(u.difference_update_query(["application_name"]), poolclass=NullPool)
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = :name")
    deadline = time.monotonic() + SETTLE_S
    try:
        with engine.connect() as conn:
            while conn.execute(query, {"name": RUN_NAME}).scalar_one():
                assert time.monotonic() < deadline, f"a killed run's connection is still open after {SETTLE_S} s"
                conn.rollback()  # a new transaction sees pg_stat_activity anew
                time.sleep(0.01)
    finally:
        engine.dispose()


class Workers:
    """The fork server (tests/kill9_worker.py) and the runs it forks for us."""

    def __init__(self, err_path: Path):
        self.err_path = err_path
        self.err = open(err_path, "wb")  # noqa: SIM115 - closed in close()
        env = {**os.environ, "SANDU_SECRET_KEY": TEST_SECRET, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode().strip())
        self.lines.put(None)

    def _next(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the worker said nothing for {timeout} s; its stderr:\n{self.stderr()}") from None
        assert line is not None, f"the fork server ended; its stderr:\n{self.stderr()}"
        return line

    def stderr(self) -> str:
        self.err.flush()
        return self.err_path.read_bytes().decode(errors="replace")[-4000:]

    def start(self, job: dict[str, Any]) -> int:
        """Fork a run of `job`; returns its pid once it is connected to the store."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        line = self._next(60)
        assert line.startswith("ready "), f"the run ended before it was ready ({line}); stderr:\n{self.stderr()}"
        return int(line.split()[1])

    def wait(self, pid: int, timeout: float = 120) -> int:
        """The run's exit code (-9: killed by SIGKILL)."""
        line = self._next(timeout)
        kind, who, code = line.split()
        assert (kind, int(who)) == ("exit", pid), line
        return int(code)

    def kill_soon(self, job: dict[str, Any], rng: random.Random) -> int:
        """Start a run, SIGKILL it after a random 20–300 ms; its exit code (0 when it finished first) once what it left
        in flight has `settled`."""
        pid = self.start(job)
        time.sleep(rng.uniform(*KILL_AFTER_S))
        try:
            line = self.lines.get_nowait()  # finished already: nothing to kill
        except queue.Empty:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended (and was reaped) just now: its exit line is on its way
            code = self.wait(pid)
            settled(job["url"])
            return code
        assert line == f"exit {pid} 0", f"{line}; stderr:\n{self.stderr()}"
        return 0

    def run(self, job: dict[str, Any]) -> int:
        return self.wait(self.start(job))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


@pytest.fixture(scope="module")
def workers(tmp_path_factory) -> Iterator[Workers]:
    w = Workers(tmp_path_factory.mktemp("kill9") / "worker.stderr")
    yield w
    w.close()


@pytest.fixture(params=BACKENDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def seeded_url(request, kind, tmp_path, pg_available) -> Iterator[str]:
    """A copy of the session's seeded template on `kind`."""
    if kind == "sqlite":
        template = str(request.getfixturevalue("sqlite_template"))
    else:
        template = request.getfixturevalue("pg_template") if pg_available else None
    yield from new_db_url(kind, tmp_path, pg_available, template)


# --- what must hold after any kill -------------------------------------------------------------


def check_store(rt) -> None:
    """No half-written entry, rows == journal, an intact audit chain, an intact SQLite file."""
    with rt.uow.read() as s:
        result = svc.ledger_check(s)
        assert result.ok, result.problems
        verdict = audit.verify_chain(s)
        assert verdict.ok, verdict.text()
    if rt.engine.dialect.name == "sqlite":
        with rt.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def read_log(path: Path) -> tuple[dict[str, dict], set[str], set[str], str | None]:
    """The worker's log: requests begun by key, keys acknowledged, keys refused, the key in flight (or None)."""
    begun: dict[str, dict] = {}
    acked: set[str] = set()
    refused: set[str] = set()
    last = None
    if path.exists():
        for raw in path.read_text(encoding="utf-8").splitlines(keepends=True):
            assert raw.endswith("\n"), f"a torn log line: {raw!r}"  # each line is one write(2): a kill cannot tear it
            kind, *rest = raw.rstrip("\n").split("\t")
            if kind == "begin":
                n, key, op, amount, on = rest
                assert key not in begun, f"{key} begun twice"
                begun[key] = {"n": int(n), "op": op, "amount": int(amount), "on": date.fromisoformat(on)}
                last = key
            elif kind == "ack":
                acked.add(rest[0])
            else:
                assert kind == "refused", raw
                refused.add(rest[0])
    assert not acked & refused
    assert acked | refused <= set(begun)
    in_flight = last if last is not None and last not in acked | refused else None
    assert len(begun) - len(acked | refused) == (in_flight is not None), "only the last request may be unanswered"
    return begun, acked, refused, in_flight


def client_entries(rt, line_id: int) -> dict[str, tuple[str, int, date, int]]:
    """The line's entries written for a caller: key → (kind, the total of the debits, value date, postings)."""
    prefix = f"c:{line_id}:"
    e, p = m.JournalEntryRow, m.PostingRow
    with rt.uow.read() as s:
        rows = s.execute(
            select(e.idempotency_key, e.kind, e.effective_date, func.coalesce(func.sum(func.abs(p.amount_fen)), 0), func.count(p.id))
            .outerjoin(p, p.entry_id == e.id).where(e.idempotency_key.like(prefix + "%")).group_by(e.id)).all()
    return {key[len(prefix):]: (kind, int(total) // 2, on, n) for key, kind, on, total, n in rows}


def check_postings(rt, line_id: int, log: Path) -> tuple[dict[str, dict], set[str], str | None]:
    begun, acked, refused, in_flight = read_log(log)
    entries = client_entries(rt, line_id)
    kinds = {"draw": "draw", "repay": "repayment"}
    assert set(entries) <= set(begun), f"entries nobody asked for: {sorted(set(entries) - set(begun))}"
    assert acked <= set(entries), f"acknowledged and lost: {sorted(acked - set(entries))}"
    assert not refused & set(entries), f"refused and written: {sorted(refused & set(entries))}"
    assert set(entries) - acked <= {in_flight}, "only the request in flight may be written and unacknowledged"
    for key, (kind, total, on, postings) in entries.items():
        request = begun[key]
        assert postings >= 2, f"{key}: a half-written entry ({postings} postings)"
        assert (kind, total, on) == (kinds[request["op"]], request["amount"], request["on"]), (key, entries[key], request)
    with rt.uow.read() as s:  # every draw's entry has its drawing, of the amount asked
        drawn = dict(s.execute(select(m.JournalEntryRow.idempotency_key, m.Drawing.amount_fen)
                               .join(m.Drawing, m.Drawing.entry_id == m.JournalEntryRow.id).where(m.Drawing.line_id == line_id)).all())
    assert {k[len(f"c:{line_id}:"):]: v for k, v in drawn.items()} == {k: begun[k]["amount"] for k, v in entries.items() if v[0] == "draw"}
    check_store(rt)
    return begun, acked, in_flight


# --- postings ----------------------------------------------------------------------------------


def test_kill9_during_postings_loses_no_acknowledged_entry_and_writes_no_half_entry(seeded_url, workers, tmp_path, kind):
    rt = runtime_on(seeded_url)
    try:
        line_id = open_line(rt)
        log = tmp_path / "postings.log"
        job = {"job": "postings", "url": run_url(seeded_url), "log": str(log), "line_id": line_id, "seed": 9, "start": D0.isoformat(),
               "now": SERVICE_NOW.isoformat(), "ops_per_day": 6, "deadline_s": 60}
        rng = random.Random(f"postings-{kind}")
        in_flight_at_kill = 0
        for k in range(POSTING_KILLS):
            code = workers.kill_soon(job, rng)
            assert code == -signal.SIGKILL, f"kill {k}: the run ended with {code} before it was killed; stderr:\n{workers.stderr()}"
            # (read_log also proves that each run first answered the request left in flight by the kill before it)
            _, _, in_flight = check_postings(rt, line_id, log)
            in_flight_at_kill += in_flight is not None
        # The last run retries what was in flight at the last kill, then stops: every request is answered.
        begun = read_log(log)[0]
        assert workers.run({**job, "max_ops": len(begun)}) == 0, workers.stderr()
        begun, acked, in_flight = check_postings(rt, line_id, log)
        assert in_flight is None
        entries = client_entries(rt, line_id)
        assert set(entries) == acked, "exactly the acknowledged requests are in the journal"
        assert len(acked) > 0 and in_flight_at_kill > 0, (len(acked), in_flight_at_kill)  # the kills fell while money moved
        replays = sum(1 for raw in log.read_text().splitlines() if raw.startswith("ack\t") and raw.endswith("\t1"))
        print(f"{kind}: {POSTING_KILLS} kills, {len(begun)} requests, {len(acked)} written, {in_flight_at_kill} kills with one in flight, "
              f"{replays} retries replayed (committed before the kill, unacknowledged)")
    finally:
        rt.engine.dispose()


# --- end of day --------------------------------------------------------------------------------


def _copy_rows(s, model, where, **changes) -> Any:
    """Insert a copy of the one row of `model` matching `where`, with `changes`; returns its primary key."""
    table = model.__table__
    row = dict(s.execute(table.select().where(where)).mappings().one())
    row.update(changes)
    (pk,) = table.primary_key.columns
    if pk.name not in changes:
        del row[pk.name]  # a new id from the database
    return s.execute(insert(table).values(**row).returning(pk)).scalar_one()


def build_eod_store(rt) -> list[int]:
    """EOD_LINES lines with drawings of every repayment method; the first end of day closed (through EOD_FIRST).
    Five lines are opened as the story enterprises' own; the others are copies of them (each with its own decision and
    offer, inserted directly: the comprehensive limit would refuse them as new offers), with a repayment method and a grace
    period of their own. Every drawing and repayment goes through the service."""
    ids = [open_line(rt, row, product, approve=approve) for row, product, approve in TEMPLATE_LINES]
    with rt.uow.write() as s:
        for i in range(EOD_LINES - len(ids)):
            line = s.get(m.CreditLine, ids[i % len(TEMPLATE_LINES)])
            offer = s.get(m.Offer, line.offer_id)
            decision_id = _copy_rows(s, m.Decision, m.Decision.id == offer.decision_id, id=str(uuid.uuid4()), superseded_at=FIXED_NOW)
            offer_id = _copy_rows(s, m.Offer, m.Offer.id == offer.id, decision_id=decision_id)
            method = METHODS[i % len(METHODS)]
            ids.append(_copy_rows(s, m.CreditLine, m.CreditLine.id == line.id, offer_id=offer_id, repayment_method=method,
                                  revolving=method == REVOLVING, grace_days=(0, 3)[(i // len(METHODS)) % 2]))
    rng = random.Random(11)
    for i, line_id in enumerate(ids):
        if i % 7 == 6:
            continue  # a line without a drawing
        draw(rt, line_id, rng.randint(1_000_00, 30_000_00), D0 + timedelta(days=i % 4), key=f"setup-{line_id}-a")
        if i % 5 == 0:
            draw(rt, line_id, rng.randint(1_000_00, 10_000_00), EOD_FIRST, key=f"setup-{line_id}-b")
    with rt.uow.read() as s:
        revolving = [lid for lid in ids if s.get(m.CreditLine, lid).repayment_method == REVOLVING and s.get(m.CreditLine, lid).drawn_principal_fen]
    for line_id in revolving[::3]:
        with rt.uow.read() as s:
            drawn = s.get(m.CreditLine, line_id).drawn_principal_fen
        repay(rt, line_id, drawn // 3, EOD_FIRST, key=f"setup-{line_id}-r")
    eod(rt, EOD_FIRST)
    return ids


def copy_store(kind: str, url: str, tmp_path: Path, pg_available: bool) -> Iterator[str]:
    """A copy of the store at `url` (no connection may be open to it)."""
    if kind == "sqlite":
        path = make_url(url).database
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        target = tmp_path / f"copy-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(path, target)
        yield f"sqlite:///{target}"
        return
    yield from new_db_url(kind, tmp_path, pg_available, make_url(url).database)


def eod_state(rt) -> dict[str, Any]:
    """The store as end of day leaves it, without ids of rows it creates or timestamps: lines, drawings, instalments,
    dues, classification history, the journal (entries by key with their postings; balances by account), the calendar
    and the runs' counters."""
    out: dict[str, Any] = {}
    with rt.uow.read() as s:
        for model in (m.CreditLine, m.Drawing, m.Instalment):
            out[model.__tablename__] = sorted(tuple(r) for r in s.execute(model.__table__.select()).all())
        for model in (m.Due, m.ClassificationChange):
            cols = [c for c in model.__table__.columns if c.name != "id"]
            out[model.__tablename__] = sorted((tuple(r) for r in s.execute(select(*cols)).all()), key=repr)
        e, p = m.JournalEntryRow, m.PostingRow
        entries: dict[str, Any] = {}
        # Not request_sha256: end of day hashes an entry's postings in the order its unordered SELECTs return the
        # drawings, which on PostgreSQL depends on where the rows lie in the heap (see the report of this test).
        for key, kind, line_id, on, memo, account, amount in s.execute(
                select(e.idempotency_key, e.kind, e.line_id, e.effective_date, e.memo, p.account, p.amount_fen).join(p, p.entry_id == e.id)):
            entries.setdefault(key, [(kind, line_id, on, memo)]).append((account, amount))
        out["journal"] = {k: (v[0], sorted(v[1:])) for k, v in entries.items()}
        balances: dict[str, int] = defaultdict(int)
        for account, total in s.execute(select(p.account, func.sum(p.amount_fen)).group_by(p.account)):
            balances[account] = int(total)
        out["balances"] = dict(balances)
        out["calendar"] = s.scalar(select(m.BusinessCalendar.last_closed_on))
        r = m.EodRun
        out["eod_runs"] = sorted(tuple(x) for x in s.execute(select(r.business_date, r.status, r.last_line_id, r.lines_done, r.days_accrued,
                                                                      r.interest_posted_fen)).all())
    return out


def ledger_rows(rt) -> dict[str, list]:
    with rt.uow.read() as s:
        return {model.__tablename__: sorted((tuple(r) for r in s.execute(model.__table__.select()).all()), key=repr) for model in LEDGER_MODELS}


def check_checkpoint(rt) -> tuple[date, m.EodRun | None]:
    """Dates before the one in progress are closed for every line; of the date in progress exactly the lines up to its
    checkpoint are closed (a batch and its checkpoint commit together)."""
    with rt.uow.read() as s:
        last = s.scalar(select(m.BusinessCalendar.last_closed_on))
        runs = {r.business_date: r for r in s.scalars(select(m.EodRun))}
        lines = s.execute(select(m.CreditLine.id, m.CreditLine.accrued_through, m.CreditLine.status)).all()
        for r in runs.values():
            s.expunge(r)
    assert all(r.status == EodStatus.DONE for d, r in runs.items() if d <= last)
    running = [r for d, r in runs.items() if d > last]
    assert all(r.status == EodStatus.RUNNING and r.business_date == last + timedelta(days=1) for r in running), running
    run = running[0] if running else None
    for line_id, through, status in lines:
        assert status != LineStatus.CLOSED
        want = run.business_date if run is not None and line_id <= run.last_line_id else last
        assert through == want, f"line {line_id} closed through {through}, expected {want} (checkpoint {run and run.last_line_id})"
    return last, run


@pytest.fixture
def eod_store(kind, seeded_url, tmp_path, pg_available) -> Iterator[tuple[str, str]]:
    """The starting store and an untouched copy of it."""
    rt = runtime_on(seeded_url)
    try:
        build_eod_store(rt)
        check_store(rt)
    finally:
        rt.engine.dispose()
    copies = copy_store(kind, seeded_url, tmp_path, pg_available)
    yield seeded_url, next(copies)
    copies.close()


def test_kill9_during_end_of_day_resumes_to_the_state_of_an_uninterrupted_run(eod_store, workers, kind):
    url, reference_url = eod_store
    rt = runtime_on(url)
    rng = random.Random(f"eod-{kind}")
    step = eod_module.LEASE + timedelta(seconds=1)  # each restart comes after the killed run's lease ran out
    job = {"job": "eod", "url": run_url(url), "batch_lines": EOD_BATCH_LINES}
    try:
        kills, finished, takeovers, mid_date = 0, 0, 0, 0
        target, now = EOD_FIRST, SERVICE_NOW
        while kills < EOD_KILLS:
            last, _ = check_checkpoint(rt)
            target, now = max(target, last + timedelta(days=3)), now + step
            code = workers.kill_soon({**job, "target": target.isoformat(), "now": now.isoformat()}, rng)
            assert code in (0, -signal.SIGKILL), f"end of day failed ({code}); stderr:\n{workers.stderr()}"
            kills += code == -signal.SIGKILL
            finished += code == 0
            check_store(rt)
            _, run = check_checkpoint(rt)
            mid_date += run is not None
            soon = now + timedelta(seconds=1)
            if run is not None and run.lease_until > soon and takeovers < 2:
                # The killed run holds the date and its lease is live, but its process is gone: a run on the same host
                # takes over at once from the checkpoint (a live holder is refused: tests/test_calendar.py).
                code = workers.run({**job, "target": target.isoformat(), "now": soon.isoformat()})
                assert code == 0, f"a run after a killed holder ended with {code}; stderr:\n{workers.stderr()}"
                check_store(rt)
                takeovers += 1
        final = max(target, EOD_LAST_AT_LEAST)
        assert workers.run({**job, "target": final.isoformat(), "now": (now + step).isoformat()}) == 0, workers.stderr()
        check_store(rt)
        assert check_checkpoint(rt) == (final, None)
        assert mid_date > 0 and takeovers > 0, (mid_date, takeovers)
        print(f"{kind}: {kills} kills ({mid_date} inside a date's run), {finished} runs finished first, closed through {final}")
    finally:
        rt.engine.dispose()

    reference = runtime_on(reference_url, TEST_SETTINGS.model_copy(update={"eod_batch_lines": EOD_BATCH_LINES}))
    try:
        eod(reference, final)
        check_store(reference)
        expected = eod_state(reference)
    finally:
        reference.engine.dispose()
    rt = runtime_on(url)
    try:
        got = eod_state(rt)
    finally:
        rt.engine.dispose()
    assert expected["calendar"] == final
    assert any(k.startswith("sys:eod:2026-12-20:interest") for k in expected["journal"])
    assert any(k.startswith("sys:eod:2027-01-20:penalty") for k in expected["journal"]), "the store reaches penalty interest"
    for name in expected:
        assert got[name] == expected[name], f"{name} differs from the uninterrupted run"

