"""The business calendar: one rule for the business date, end of day never in the future (unless the clock is
simulated) and never before the last date closed, and a simulated clock only on a demo or test store."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_support import sandu as sandu_in_process
from conftest import FIXED_NOW, TEST_SECRET, TEST_SETTINGS, new_db_url
from servicing_support import D0, check_ledger, draw, open_line

from sandu.domain.dates import business_date
from sandu.domain.enums import StoreKind
from sandu.domain.errors import Conflict, InvalidInput
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.runtime import make_runtime
from sandu.security.actor import Actor
from sandu.servicing import actions
from sandu.servicing.calendar import SimulatedClockRefused, business_today, calendar_row, mark_store, require_value_date
from sandu.store.migrate import upgrade

SANDU = str(Path(sys.executable).with_name("sandu"))


def test_the_business_date_is_the_beijing_date_or_the_day_after_the_last_closed(rt_sqlite):
    rt = rt_sqlite
    late_evening_utc = datetime(2026, 11, 29, 17, 0, tzinfo=timezone.utc)  # 11-30 01:00 in Beijing
    with rt.uow.read() as s:
        assert business_today(s, late_evening_utc) == date(2026, 11, 30)
    line_id = open_line(rt)
    draw(rt, line_id, WAN, D0)
    rt.clock.value = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)  # 23:00 in Beijing: end of day closes the 29th
    actions.end_of_day(rt, Actor.system("eod"), D0)
    with rt.uow.read() as s:
        assert calendar_row(s).last_closed_on == D0
        assert business_today(s, rt.clock.value) == D0 + timedelta(days=1)  # the same evening, movements are dated the 30th
    with pytest.raises(Conflict) as e:  # nothing may be dated into a closed day
        draw(rt, line_id, WAN, D0, now=rt.clock.value)
    assert e.value.field == "on_date"
    moved = draw(rt, line_id, WAN, None, now=rt.clock.value)  # no date: the business date
    assert moved.drawing.drawn_on == D0 + timedelta(days=1)
    check_ledger(rt)


def test_a_value_date_is_a_date_not_after_the_business_date():
    today = date(2026, 11, 29)
    assert require_value_date(today, today) == today
    assert require_value_date(today - timedelta(days=400), today) == today - timedelta(days=400)
    with pytest.raises(Conflict) as e:
        require_value_date(today + timedelta(days=1), today)
    assert e.value.field == "on_date" and e.value.allowed == "2026-11-29 or earlier"
    for bad in ("2026-11-29", datetime(2026, 11, 29, tzinfo=timezone.utc), 20261129, None):
        with pytest.raises(InvalidInput):
            require_value_date(bad, today, "on_date")


def _simulated(url: str):
    return make_runtime(TEST_SETTINGS.model_copy(update={"database_url": url, "clock": "simulated"}))


def test_a_simulated_clock_is_refused_on_a_production_store(tmp_path):
    url = next(new_db_url("sqlite", tmp_path, False))
    engine_rt = _simulated(url)
    upgrade(engine_rt.engine)  # a new store is a production store
    with pytest.raises(SimulatedClockRefused, match="demo or test store"):
        engine_rt.now()
    engine_rt.engine.dispose()


def test_on_a_simulated_clock_end_of_day_moves_the_business_date_ahead_of_the_calendar(sqlite_url):
    rt = _simulated(sqlite_url)  # the tests' template is marked a test store
    try:
        real = datetime.now(timezone.utc)
        assert business_date(rt.now()) == business_date(real)  # nothing closed yet: the calendar date
        target = business_date(real) + timedelta(days=400)
        v = actions.end_of_day(rt, Actor.system("eod"), target)  # the first end of day closes the target alone
        assert [x.business_date for x in v.days] == [target]
        assert business_date(rt.now()) == target + timedelta(days=1)  # time stands on the next business date
        v = actions.end_of_day(rt, Actor.system("eod"), target + timedelta(days=3))  # then every date in order
        assert [x.business_date for x in v.days] == [target + timedelta(days=k) for k in (1, 2, 3)]
        with pytest.raises(Conflict):
            actions.end_of_day(rt, Actor.system("eod"), target)
    finally:
        rt.engine.dispose()


def test_the_real_clock_never_closes_a_future_date(rt_sqlite):
    rt_sqlite.clock.value = FIXED_NOW
    with pytest.raises(Conflict) as e:
        actions.end_of_day(rt_sqlite, Actor.system("eod"), business_date(FIXED_NOW) + timedelta(days=1))
    assert e.value.field == "business_date" and "simulated" in e.value.allowed


def test_sandu_eod_on_a_simulated_demo_store_replays_dates_in_order(tmp_path):
    env = {**os.environ, "SANDU_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "COLUMNS": "200", "SANDU_SECRET_KEY": TEST_SECRET}

    def sandu(*args: str, clock: str = "real", process: bool = False):
        """In this process (tests/cli_support.py), or with `process` a real `sandu` process."""
        if process:
            return subprocess.run([SANDU, *args], capture_output=True, text=True, timeout=300, env={**env, "SANDU_CLOCK": clock}, cwd=tmp_path)
        return sandu_in_process(list(args), env={**env, "SANDU_CLOCK": clock}, cwd=tmp_path)

    assert sandu("db", "upgrade").returncode == 0
    refused = sandu("eod", "--date", "2030-01-01", clock="simulated", process=True)  # the real command refuses: exit 2, no traceback
    assert refused.returncode == 2 and "demo or test store" in refused.stderr and "Traceback" not in refused.stderr
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    engine = create_engine(env["SANDU_DATABASE_URL"])
    with Session(engine) as s, s.begin():
        mark_store(s, StoreKind.DEMO)
    engine.dispose()
    first = sandu("eod", "--date", "2030-01-01", clock="simulated")
    assert first.returncode == 0 and "last closed 2030-01-01" in first.stdout, first.stdout + first.stderr
    second = sandu("eod", "--date", "2030-01-04", clock="simulated")
    assert second.returncode == 0, second.stderr
    assert all(day in second.stdout for day in ("2030-01-02", "2030-01-03", "2030-01-04"))
    assert sandu("eod", "--date", "2030-01-04", clock="real").returncode == 2  # the real clock: a future date


def test_while_end_of_day_runs_a_line_it_has_closed_takes_movements_on_the_next_date(rt_sqlite):
    from sandu.servicing import eod as eod_run
    from sandu.servicing.close import class_rules

    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, WAN, D0)
    evening = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)  # 23:00 in Beijing
    owner = eod_run.new_owner()
    with rt.uow.write() as s:  # end of day for the 29th has closed this line's batch, and not yet the date
        eod_run.begin(s, D0, owner, evening)
    with rt.uow.write() as s:
        assert eod_run.batch(s, D0, owner, evening, class_rules(rt.bundle.classification), 1000) is not None
    with rt.uow.read() as s:
        assert calendar_row(s).last_closed_on is None
    moved = draw(rt, line_id, WAN, None, now=evening)
    assert moved.drawing.drawn_on == D0 + timedelta(days=1)
    with pytest.raises(Conflict):  # the 29th is closed for the line
        draw(rt, line_id, WAN, D0, now=evening)
    rt.clock.value = evening
    with pytest.raises(Conflict) as e:  # a second run while the first one's lease is live
        actions.end_of_day(rt, Actor.system("eod"), D0)
    assert e.value.field == "business_date" and "running elsewhere" in e.value.message
    with rt.uow.write() as s:
        assert eod_run.finish(s, D0, owner, evening, class_rules(rt.bundle.classification), 1000)[1]  # the date is closed
    with rt.uow.read() as s:
        assert calendar_row(s).last_closed_on == D0
    rt.clock.value = evening + eod_run.LEASE
    assert actions.end_of_day(rt, Actor.system("eod"), D0).days == []  # done: nothing to do
    check_ledger(rt)
