"""Measurements take turns: at most `measure_concurrency` at once in a server process, the others waiting in line on the
event loop, first come first served, bounded in length and in waiting time (503 busy, nothing done). Where every wait is
local (SQLite, every source served from the store) the action runs on the event loop itself (`runs_on_loop`), its waits
bounded by `ON_LOOP_WAIT_S`."""

from __future__ import annotations

import threading
import time
from functools import partial

import anyio
import httpx
import pytest
from conftest import TEST_SETTINGS, login, runtime_on, serve
from sqlalchemy import func, select

from sandu.api.app import create_app
from sandu.api.routers import enterprises
from sandu.api.routing import ON_LOOP_WAIT_S, Turns, run_action, runs_on_loop
from sandu.context import wait_budget_s
from sandu.domain.errors import Busy
from sandu.intake.http import HttpAdapter
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m
from sandu.store.db import make_engine

S2 = STORY_ROWS[1]
WAIT_S = 10.0


def _post_into(answers: dict[str, httpx.Response], base: str, url: str, body: dict, headers: dict[str, str], name: str) -> None:
    """POST on a connection of its own, the answer kept under `name`."""
    with httpx.Client(base_url=base, timeout=30) as own:
        answers[name] = own.post(url, json=body, headers=headers)


def _consented_s2(c: httpx.Client) -> tuple[dict[str, str], int, str]:
    """S2's legal representative logged in, S2 registered with every source consented: (auth, consent id, measurement URL)."""
    auth = login(c, "rep-s2")
    assert c.post("/api/v1/enterprises", json={k: S2[k] for k in ("uscc", "name")}, headers=auth).status_code == 201
    consent = c.post(f"/api/v1/enterprises/{S2['uscc']}/consents", json={"scopes": list(ALL_SOURCES), "bureau_authorization": True},
                     headers=auth).json()["id"]
    return auth, consent, f"/api/v1/enterprises/{S2['uscc']}/measurements"


def _decisions(rt: Runtime) -> int:
    with rt.uow.read() as s:
        return s.scalar(select(func.count()).select_from(m.Decision))


def test_no_more_than_the_slots_run_at_once_and_they_go_in_the_order_they_came():
    turns = Turns("measurements", 2, max_waiting=100, wait_s=WAIT_S)
    running, most, order = 0, 0, []

    async def one(k: int) -> None:
        nonlocal running, most
        async with turns.turn():
            order.append(k)
            running += 1
            most = max(most, running)
            await anyio.sleep(0.01)
            running -= 1

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for k in range(8):
                tg.start_soon(one, k)
                await anyio.sleep(0)  # each in line before the next

    anyio.run(main)
    assert most == 2 and order == list(range(8)) and turns.waiting == 0 and turns.in_use == 0


def test_a_turn_not_given_in_time_is_busy_a_full_line_refuses_at_once_and_an_error_gives_the_turn_back():
    turns = Turns("measurements", 1, max_waiting=1, wait_s=0.2)

    served: list[bool] = []

    async def main() -> None:
        held, release = anyio.Event(), anyio.Event()

        async def holder() -> None:
            async with turns.turn():
                held.set()
                await release.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await held.wait()
            t0 = anyio.current_time()
            with pytest.raises(Busy, match="waited 0.2 s") as info:
                async with turns.turn():
                    pytest.fail("a turn while the only one is held")
            assert anyio.current_time() - t0 >= 0.15 and info.value.http_status == 503 and info.value.retry_after_s == 1
            assert turns.waiting == 0

            async def waiter() -> None:
                async with turns.turn():  # in line while the holder holds it, served when it lets go
                    served.append(True)

            tg.start_soon(waiter)
            while turns.waiting < 1:
                await anyio.sleep(0.001)
            with pytest.raises(Busy, match="1 waiting"):  # the line holds one: refused without waiting
                async with turns.turn():
                    pass
            release.set()
        assert served == [True]
        with pytest.raises(RuntimeError):
            async with turns.turn():
                raise RuntimeError("boom")
        async with turns.turn():  # the failed one gave its turn back
            assert turns.in_use == 1

    anyio.run(main)


def test_a_turns_bound_covers_the_work_after_it_so_the_waits_add_up_to_one_bound():
    """The deadline a turn yields reaches the worker thread: the writers' line there may only wait what is left."""
    turns = Turns("measurements", 1, max_waiting=10, wait_s=1.0)
    budgets: list[float] = []

    async def main() -> None:
        held = anyio.Event()

        async def holder() -> None:
            async with turns.turn():
                held.set()
                await anyio.sleep(0.4)

        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await held.wait()
            budgets.append(await run_action(wait_budget_s, 100.0, turns=turns))  # waited ≥ 0.4 s for its turn
        budgets.append(await run_action(wait_budget_s, 100.0))  # without turns: the line's own bound

    anyio.run(main)
    assert 0 < budgets[0] <= 0.65 and budgets[1] == 100.0
    assert wait_budget_s(100.0) == 100.0  # nothing is left behind in the caller's context


def test_a_measurement_waits_for_a_turn_and_past_the_wait_is_refused_503_writing_nothing(sqlite_url, monkeypatch):
    """One turn: measurement A holds it (waiting for a writer the test holds); B waits in line for a turn, not for the
    store, and is refused naming what was busy; A is served when the writer lets go, and so is the next measurement.
    On request threads, as on PostgreSQL or with a source over HTTP (on the loop, B would not be read before A ends)."""
    monkeypatch.setattr(enterprises, "runs_on_loop", lambda rt, reads_sources=False: False)
    settings = TEST_SETTINGS.model_copy(update={"measure_concurrency": 1, "write_wait_s": WAIT_S})
    rt = runtime_on(sqlite_url, settings)
    try:
        app = create_app(rt)
        made = app.state.measure_turns
        assert (made.slots, made.max_waiting, made.wait_s) == (1, settings.write_queue_max, WAIT_S)  # from the settings
        turns = app.state.measure_turns = Turns("measurements", 1, max_waiting=10, wait_s=WAIT_S)
        for base in serve(app):
            with httpx.Client(base_url=base, timeout=30) as c:
                auth, consent, url = _consented_s2(c)
                before = _decisions(rt)
                answers: dict[str, httpx.Response] = {}

                measure = partial(_post_into, answers, base, url, {"consent_id": consent}, auth)
                with rt.uow.write():  # the store's writer is taken: A, in its turn, waits for it
                    a = threading.Thread(target=measure, args=("A",))
                    a.start()
                    deadline = time.monotonic() + WAIT_S
                    while turns.in_use < 1:
                        assert time.monotonic() < deadline, "A never got its turn"
                        time.sleep(0.005)
                    turns.wait_s = 0.3  # A came while the bound was long; B's is short
                    measure("B")  # in line behind A for the whole wait
                    assert turns.in_use == 1 and turns.waiting == 0 and "A" not in answers
                a.join(WAIT_S)
                b = answers["B"]
                assert b.status_code == 503 and b.headers["retry-after"] == "1", b.text
                assert "too many measurements at once (waited 0.3 s" in b.json()["error"]["message"]
                assert answers["A"].status_code == 201, answers["A"].text
                assert _decisions(rt) == before + 1  # A's, not B's
                assert c.post(url, json={"consent_id": consent}, headers=auth).status_code == 201  # the turn is free again
                assert turns.in_use == 0 and turns.waiting == 0
    finally:
        rt.engine.dispose()


def test_work_runs_on_the_loop_only_where_every_wait_is_local(sqlite_url):
    """SQLite with every source served from the store: on the loop; a source over HTTP (for work that reads the
    sources) or a PostgreSQL store (for any work): on a request thread. No connection is made to find out."""
    rt = runtime_on(sqlite_url)
    pg = Runtime(engine=make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", TEST_SETTINGS), bundle=load_bundle(), model=load_model(),
                 settings=TEST_SETTINGS)
    try:
        assert runs_on_loop(rt) and runs_on_loop(rt, reads_sources=True)
        rt.adapters = {**rt.adapters, "tax": HttpAdapter("http://127.0.0.1:9")}
        assert runs_on_loop(rt) and not runs_on_loop(rt, reads_sources=True)
        assert not runs_on_loop(pg) and not runs_on_loop(pg, reads_sources=True)
    finally:
        rt.engine.dispose()
        pg.engine.dispose()


def test_on_the_loop_the_action_runs_on_the_loops_thread_and_waits_at_most_the_loops_bound():
    turns = Turns("measurements", 1, max_waiting=10, wait_s=60.0)
    short = Turns("measurements", 1, max_waiting=10, wait_s=ON_LOOP_WAIT_S / 4)  # a turn whose bound ends before the loop's
    seen: dict[str, object] = {}

    async def main() -> None:
        seen["loop"] = threading.get_ident()
        seen["on loop"] = await run_action(threading.get_ident, on_loop=True)
        seen["on thread"] = await run_action(threading.get_ident)
        seen["budget on loop"] = await run_action(wait_budget_s, 100.0, on_loop=True)
        seen["budget on loop, in a turn"] = await run_action(wait_budget_s, 100.0, on_loop=True, turns=turns)
        seen["budget on thread, in a turn"] = await run_action(wait_budget_s, 100.0, turns=turns)
        seen["budget on loop, in a short turn"] = await run_action(wait_budget_s, 100.0, on_loop=True, turns=short)

    anyio.run(main)
    assert seen["on loop"] == seen["loop"] != seen["on thread"]
    assert 0 < seen["budget on loop"] <= ON_LOOP_WAIT_S and 0 < seen["budget on loop, in a turn"] <= ON_LOOP_WAIT_S
    assert ON_LOOP_WAIT_S / 2 < seen["budget on loop"]  # the loop's bound itself, not a shorter one
    assert ON_LOOP_WAIT_S < seen["budget on thread, in a turn"] <= 60.0
    assert 0 < seen["budget on loop, in a short turn"] <= ON_LOOP_WAIT_S / 4  # whichever bound ends first
    assert wait_budget_s(100.0) == 100.0 and turns.in_use == 0


def test_a_measurement_on_the_loop_waits_for_the_writer_at_most_the_loops_bound_then_503_writing_nothing(sqlite_url):
    """On SQLite with simulated sources the measurement runs on the loop: held up by a writer elsewhere, it waits
    `ON_LOOP_WAIT_S` (the process answers nothing meanwhile), not the settings' `write_wait_s`; refused 503, nothing is
    written, and the process serves again at once — the next measurement, once the writer lets go, is recorded."""
    settings = TEST_SETTINGS.model_copy(update={"write_wait_s": WAIT_S})
    rt = runtime_on(sqlite_url, settings)
    try:
        assert runs_on_loop(rt, reads_sources=True)
        app = create_app(rt)
        for base in serve(app):
            with httpx.Client(base_url=base, timeout=30) as c:
                auth, consent, url = _consented_s2(c)
                before = _decisions(rt)
                with rt.uow.write():  # the store's writer is taken for longer than the loop may wait
                    t0 = time.monotonic()
                    held = c.post(url, json={"consent_id": consent}, headers=auth)
                    waited_s = time.monotonic() - t0
                assert held.status_code == 503 and held.headers["retry-after"] == "1", held.text
                assert "busy" in held.json()["error"]["message"]
                assert ON_LOOP_WAIT_S * 0.9 <= waited_s < WAIT_S / 2  # the loop's bound, not the writers' line's
                assert _decisions(rt) == before
                assert c.get("/healthz").status_code == 200
                assert c.post(url, json={"consent_id": consent}, headers=auth).status_code == 201
                assert _decisions(rt) == before + 1
    finally:
        rt.engine.dispose()
