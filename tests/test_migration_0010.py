"""Migration 0010 adds the ageing history of drawings (`delinquency_history`). On SQLite and PostgreSQL: a store
whose drawing fell overdue is taken back to 0009 (the table goes) and up again — the backfill gives the open overdue
drawing its oldest unpaid due date from the day before it fell due, so the DPD derived for the days since equals
what end of day computed, and the services go on writing the history."""

from __future__ import annotations

from datetime import date, timedelta

from servicing_support import D0, SERVICE_NOW, draw, eod, open_line, repay
from sqlalchemy import inspect, select

from sandu.analytics import service as asvc
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m
from sandu.store.migrate import current_revision, downgrade, head_revision, upgrade

S3 = STORY_ROWS[2]


def test_the_history_is_backfilled_from_the_oldest_unpaid_due_down_and_up_again(rt):
    overdue_line, repaid_line = open_line(rt), open_line(rt, S3, "keji_xinyong")
    late = draw(rt, overdue_line, 100 * WAN).drawing.id
    repaid = draw(rt, repaid_line, 50 * WAN).drawing.id
    repay(rt, repaid_line, 50 * WAN, D0 + timedelta(days=3))  # the principal early, its interest on the day it falls due
    eod(rt, date(2026, 12, 20))
    with rt.uow.read() as s:
        interest = s.get(m.Drawing, repaid).interest_fen
    repay(rt, repaid_line, interest, date(2026, 12, 21))
    last = date(2027, 1, 5)
    eod(rt, last)
    with rt.uow.read() as s:
        kept = {day: asvc.days_past_due_as_of(s, day) for day in (date(2026, 12, 21), date(2026, 12, 22), last)}
        dpd_now = s.get(m.Drawing, late).dpd
        assert s.get(m.Drawing, repaid).status == "repaid"
    assert kept[last] == {late: dpd_now} == {late: 15} and kept[date(2026, 12, 22)] == {late: 1} and not kept[date(2026, 12, 21)]

    engine = rt.engine
    assert downgrade(engine, "0009") == "0009" == current_revision(engine)
    assert "delinquency_history" not in inspect(engine).get_table_names()
    assert upgrade(engine) == head_revision(engine) == current_revision(engine)
    with rt.uow.read() as s:
        rows = s.execute(select(m.DelinquencyChange.drawing_id, m.DelinquencyChange.on_date, m.DelinquencyChange.oldest_due_on)).all()
        assert rows == [(late, date(2026, 12, 20), date(2026, 12, 21))]  # the repaid drawing has none: its past reads 0
        for day, want in kept.items():
            assert asvc.days_past_due_as_of(s, day) == want, day
        assert asvc.days_past_due_as_of(s, date(2026, 12, 19)) == {}

    # the services go on: the arrears are paid the next day, and end of day agrees with the history
    with rt.uow.read() as s:
        d = s.get(m.Drawing, late)
        arrears = d.overdue_interest_fen + d.penalty_fen + d.compound_fen
    rt.clock.value = SERVICE_NOW
    repay(rt, overdue_line, arrears, last + timedelta(days=1))
    eod(rt, last + timedelta(days=1))
    with rt.uow.read() as s:
        assert s.get(m.Drawing, late).dpd == 0 and asvc.days_past_due_as_of(s, last + timedelta(days=1)) == {}
        assert asvc.days_past_due_as_of(s, last) == {late: 15}
