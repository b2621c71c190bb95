"""The unit of work: writers queue first come first served, bounded in length and
in waiting time; a writer that cannot get its turn gets Busy (503, Retry-After) and
nothing is written; end of day runs in batches and says what is left."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from conftest import BUSINESS_DATE, TEST_SETTINGS, actor, login, runtime_on, serve
from sqlalchemy import create_engine, func, select

from sandu.api.app import create_app
from sandu.context import wait_budget_s, waiting_until
from sandu.demo.stories import replay_all
from sandu.domain.errors import Busy
from sandu.origination import actions as orig
from sandu.servicing import actions
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m
from sandu.store.db import FileWriteLock, WriterQueue, make_engine, writer_lock_path

S2 = STORY_ROWS[1]
WAIT_S = 10.0  # generous: a test thread waits at most this long for its turn


def _until(predicate, what: str, limit_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@contextmanager
def held(q: WriterQueue) -> Iterator[None]:
    """Another thread holds the write turn for the duration of the block."""
    release, holding = threading.Event(), threading.Event()

    def holder() -> None:
        with q.turn():
            holding.set()
            release.wait(WAIT_S)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(WAIT_S)
    try:
        yield
    finally:
        release.set()
        t.join(WAIT_S)


def test_writers_get_their_turn_in_the_order_they_asked():
    q = WriterQueue(max_waiting=100, wait_s=WAIT_S)
    order: list[int] = []
    release = threading.Event()

    def writer(k: int) -> None:
        with q.turn():
            order.append(k)

    def holder() -> None:
        with q.turn():
            order.append(0)
            release.wait(WAIT_S)

    first = threading.Thread(target=holder)
    first.start()
    _until(lambda: order == [0], "the first writer")
    threads = []
    for k in range(1, 21):
        t = threading.Thread(target=writer, args=(k,))
        t.start()
        threads.append(t)
        _until(lambda k=k: q.waiting == k, f"writer {k} to queue")  # queued strictly one after the other
    release.set()
    for t in [first, *threads]:
        t.join(WAIT_S)
    assert order == list(range(21))
    assert q.waiting == 0
    with q.turn():  # free again
        pass


def test_a_writer_waits_no_longer_than_its_requests_deadline():
    q = WriterQueue(max_waiting=10, wait_s=WAIT_S)
    with held(q):
        t0 = time.monotonic()
        with waiting_until(t0 + 0.2), pytest.raises(Busy, match=r"waited 0\.[12]\d* s for a turn"):
            with q.turn():
                pytest.fail("must not get the turn while it is held")
        assert 0.15 <= time.monotonic() - t0 < WAIT_S / 2 and q.waiting == 0
        with waiting_until(t0 - 1), pytest.raises(Busy, match="waited 0 s"):  # a deadline passed: refused at once
            with q.turn():
                pass
    with waiting_until(time.monotonic() - 1), q.turn():  # a free line is entered whatever the deadline
        pass


def test_the_earliest_deadline_holds_and_each_ends_with_its_block():
    assert wait_budget_s(5.0) == 5.0
    now = time.monotonic()
    with waiting_until(now + 60):
        assert 59 < wait_budget_s(100.0) <= 60 and wait_budget_s(5.0) == 5.0
        with waiting_until(now + 600):  # a later one does not extend it
            assert wait_budget_s(100.0) <= 60
        with waiting_until(now + 1):
            assert wait_budget_s(100.0) <= 1
        assert 59 < wait_budget_s(100.0) <= 60
    assert wait_budget_s(100.0) == 100.0


def test_a_writer_that_waits_too_long_gets_busy_and_leaves_the_line():
    q = WriterQueue(max_waiting=10, wait_s=0.2)
    with held(q):
        t0 = time.monotonic()
        with pytest.raises(Busy) as info:
            with q.turn():
                pytest.fail("must not get the turn while it is held")
        assert 0.15 <= time.monotonic() - t0 < WAIT_S
        assert info.value.http_status == 503 and info.value.retry_after_s == 1 and "waited" in info.value.message
        assert q.waiting == 0
    with q.turn():
        pass


def test_a_full_line_refuses_at_once_and_an_error_inside_releases_the_turn():
    q = WriterQueue(max_waiting=1, wait_s=WAIT_S)

    def waiter() -> None:
        with q.turn():
            pass

    with held(q):
        w = threading.Thread(target=waiter)
        w.start()
        _until(lambda: q.waiting == 1, "the waiter to queue")
        t0 = time.monotonic()
        with pytest.raises(Busy, match="1 writes already waiting"):
            with q.turn():
                pass
        assert time.monotonic() - t0 < 1.0
    w.join(WAIT_S)
    with pytest.raises(RuntimeError):
        with q.turn():
            raise RuntimeError("boom")
    with q.turn():  # the failed writer gave its turn back
        pass


@contextmanager
def another_process_writing(lock_path: str) -> Iterator[subprocess.Popen]:
    """A second process holding the store's writer lock until the block ends (its stdin is closed)."""
    code = "import sys\nfrom sandu.store.db import FileWriteLock\nwith FileWriteLock(sys.argv[1], 5).held():\n    print('held', flush=True)\n    sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code, lock_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(WAIT_S)


def test_a_writer_that_cannot_start_its_waiting_thread_gets_busy_and_keeps_no_descriptor(tmp_path, monkeypatch):
    lock = FileWriteLock(str(tmp_path / "store.db.writer-lock"), WAIT_S)
    with lock.held():  # held by another open file, as another process would: the next writer must wait
        def no_thread(self):
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", no_thread)
        before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(Busy, match="no thread to wait for the writer lock in"):
            with lock.held():
                pytest.fail("the lock was held by the other writer")
        assert len(os.listdir("/proc/self/fd")) == before, "the waiting writer's descriptor is closed"
        monkeypatch.undo()
    with lock.held():  # and the lock is free once the first writer is done
        pass


def test_a_writer_waits_for_another_processs_lock_no_longer_than_its_requests_deadline(tmp_path):
    path = str(tmp_path / "store.db.writer-lock")
    lock = FileWriteLock(path, WAIT_S)
    with another_process_writing(path):
        t0 = time.monotonic()
        with waiting_until(t0 + 0.2), pytest.raises(Busy, match=r"another process has been writing for 0\.[12]\d* s"):
            with lock.held():
                pytest.fail("the other process holds the lock")
        assert 0.15 <= time.monotonic() - t0 < WAIT_S / 2
    with lock.held():  # given back by the waiter when the other process let go
        pass


def register_s2(rt) -> None:
    orig.register(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], name=S2["name"])


def _enterprises(rt) -> int:
    with rt.uow.read() as s:
        return s.scalar(select(func.count()).select_from(m.Enterprise))


def test_a_writer_waits_for_another_processs_write_and_goes_as_soon_as_it_ends(sqlite_url):
    rt = runtime_on(sqlite_url)
    try:
        lock_path, before = rt.uow.file_lock.path, _enterprises(rt)
        done = threading.Event()

        def write() -> None:
            register_s2(rt)
            done.set()

        with another_process_writing(lock_path):
            w = threading.Thread(target=write)
            w.start()
            assert not done.wait(0.3), "wrote while another process held the writer lock"
            assert _enterprises(rt) == before
        assert done.wait(WAIT_S), "not woken when the other process's write ended"
        w.join(WAIT_S)
        assert _enterprises(rt) == before + 1
    finally:
        rt.engine.dispose()


def test_a_writer_that_waits_too_long_for_another_process_gets_busy_writes_nothing_and_leaves_the_lock_free(sqlite_url):
    rt = runtime_on(sqlite_url, TEST_SETTINGS.model_copy(update={"sqlite_busy_timeout_ms": 300}))
    try:
        before = _enterprises(rt)
        with another_process_writing(rt.uow.file_lock.path):
            t0 = time.monotonic()
            with pytest.raises(Busy, match="another process") as info:
                register_s2(rt)
            assert 0.25 <= time.monotonic() - t0 < WAIT_S
            assert info.value.http_status == 503 and info.value.retry_after_s == 1
            assert _enterprises(rt) == before
        register_s2(rt)  # the writer that gave up took the lock when it came, and gave it back at once
        assert _enterprises(rt) == before + 1
        with FileWriteLock(rt.uow.file_lock.path, 0).held():  # nobody keeps it: granted without waiting
            pass
    finally:
        rt.engine.dispose()


def test_the_writer_lock_lives_beside_a_store_file_and_an_in_memory_store_has_none(tmp_path, monkeypatch):
    assert writer_lock_path(make_engine(f"sqlite:///{tmp_path / 'a.db'}", TEST_SETTINGS)) == str(tmp_path / "a.db") + ".writer-lock"
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:mem?mode=memory&uri=true", "sqlite:///file::memory:?uri=true"):
        assert writer_lock_path(create_engine(url)) is None, url
    lock = str(tmp_path / "a b.db") + ".writer-lock"  # a store named by a file: URI has its lock beside the same file
    for uri in (f"file:{tmp_path / 'a%20b.db'}", f"file://{tmp_path / 'a%20b.db'}"):
        assert writer_lock_path(create_engine(f"sqlite:///{uri}?mode=rwc&uri=true")) == lock, uri
    monkeypatch.chdir(tmp_path)
    assert writer_lock_path(create_engine("sqlite:///file:a%20b.db?uri=true")) == lock


def test_a_busy_store_answers_503_with_retry_after_and_writes_nothing(sqlite_url):
    rt = runtime_on(sqlite_url, TEST_SETTINGS.model_copy(update={"write_wait_s": 0.3}))
    try:
        for base in serve(create_app(rt)):
            body = {k: S2[k] for k in ("uscc", "name")}
            with httpx.Client(base_url=base, timeout=30) as c:
                auth = login(c, "rep-s2")
                with rt.uow.write() as s:  # someone holds the write turn
                    before = s.scalar(select(func.count()).select_from(m.Enterprise))
                    r = c.post("/api/v1/enterprises", json=body, headers=auth)
                    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
                    assert r.json()["error"]["code"] == "busy"
                    assert c.get(f"/api/v1/enterprises/{S2['uscc']}", headers=auth).status_code == 404  # reads never wait for writers
                with rt.uow.read() as s:
                    assert s.scalar(select(func.count()).select_from(m.Enterprise)) == before
                assert c.post("/api/v1/enterprises", json=body, headers=auth).status_code == 201  # the turn is free: it succeeds
    finally:
        rt.engine.dispose()


def test_end_of_day_runs_in_batches_until_every_line_is_done(rt):
    rt = rt.__class__(engine=rt.engine, bundle=rt.bundle, model=rt.model, tech=rt.tech, clock=rt.clock, settings=TEST_SETTINGS.model_copy(update={"eod_batch_lines": 2}))
    outcomes = replay_all(rt, BUSINESS_DATE - timedelta(days=20))  # five enterprises, a line each, drawn, and ten days of end of day
    assert all(o.ok for o in outcomes)
    with rt.uow.read() as s:
        lines = list(s.scalars(select(m.CreditLine.id)))
    assert len(lines) == 5
    day = rt.today() - timedelta(days=1)
    ops = actor(rt, "ops")
    v = actions.end_of_day(rt, ops, day)
    # the first end of day closes `day` alone: each line is caught up from where its movements left it, day by day
    assert [x.business_date for x in v.days] == [day] and v.last_closed_on == day
    assert (v.days[0].lines, v.days[0].batches) == (5, 4)  # 2 + 2 + 1, then the closing batch
    assert all(actions.get_line(rt, line).accrued_through == day for line in lines)
    again = actions.end_of_day(rt, ops, day)
    assert again.days == [] and again.last_closed_on == day


def _write_metrics(rt) -> tuple[float, float, float]:
    """(writes, seconds waited, seconds held) as the runtime's metrics count them."""
    sample = rt.metrics.registry.get_sample_value
    return (sample("sandu_store_write_held_seconds_count") or 0.0, sample("sandu_store_write_wait_seconds_sum") or 0.0,
            sample("sandu_store_write_held_seconds_sum") or 0.0)


def test_every_write_is_counted_with_the_time_it_held_the_store_committed_or_not(rt):
    n0, waited0, held0 = _write_metrics(rt)
    with rt.uow.write():
        time.sleep(0.2)
    n1, waited1, held1 = _write_metrics(rt)
    assert n1 == n0 + 1 and held1 - held0 >= 0.2 and waited1 - waited0 < 0.2  # nobody else was writing
    with pytest.raises(RuntimeError, match="the write failed"), rt.uow.write():
        time.sleep(0.1)
        raise RuntimeError("the write failed")
    n2, _, held2 = _write_metrics(rt)
    assert n2 == n1 + 1 and 0.1 <= held2 - held1 < 0.2  # rolled back, yet it held the store that long
    with rt.uow.read():
        time.sleep(0.05)
    assert _write_metrics(rt)[0] == n2  # a read is no write
    text_ = rt.metrics.render().decode()
    assert "sandu_store_write_wait_seconds_bucket" in text_ and "sandu_store_write_held_seconds_bucket" in text_


def test_a_write_held_up_by_another_process_is_counted_with_its_wait(sqlite_url):
    rt = runtime_on(sqlite_url)
    try:
        n0, waited0, held0 = _write_metrics(rt)
        with another_process_writing(rt.uow.file_lock.path):
            w = threading.Thread(target=register_s2, args=(rt,))
            w.start()
            time.sleep(0.4)  # the writer asks for the lock early in this (a thread starts in far less than 0.1 s)
        w.join(WAIT_S)
        n1, waited1, held1 = _write_metrics(rt)
        assert n1 == n0 + 1 and 0.3 <= waited1 - waited0 < WAIT_S  # waited for the other process, not counted as held
        assert 0 < held1 - held0 < 0.3
    finally:
        rt.engine.dispose()
