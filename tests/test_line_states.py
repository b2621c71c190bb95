"""The life of a line: the state table itself, and freeze, unfreeze, reduce, renew, close and
expiry through the services — each refused where the table says so, changing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import FIXED_NOW, actor
from sqlalchemy import select
from test_servicing import D0, LIMIT, WAN, draw, eod, ledger_dump, open_line, repay

from sandu.domain.enums import LineStatus
from sandu.domain.errors import Conflict, InvalidInput
from sandu.servicing import actions
from sandu.servicing.states import TRANSITIONS, LineAction, next_state
from sandu.store import models as m

A, F, E, C = LineStatus.ACTIVE, LineStatus.FROZEN, LineStatus.EXPIRED, LineStatus.CLOSED
# Written out independently: (action, from) → to, for every allowed pair; every other pair is refused.
EXPECTED = {
    ("draw", A): A,
    ("repay", A): A, ("repay", F): F, ("repay", E): E,
    ("freeze", A): F, ("unfreeze", F): A,
    ("expire", A): E, ("expire", F): E,
    ("renew", A): A, ("renew", E): A,
    ("reduce", A): A, ("reduce", F): F,
    ("close", A): C, ("close", F): C, ("close", E): C,
}


@pytest.mark.parametrize("action", list(LineAction))
@pytest.mark.parametrize("state", list(LineStatus))
def test_the_state_table_is_exactly_the_expected_one(action, state):
    expected = EXPECTED.get((str(action), state))
    if expected is None:
        with pytest.raises(Conflict) as info:
            next_state(state, action, 7)
        assert info.value.field == "line_id" and f"line 7 is {state}: it cannot {action}" in info.value.message
        assert all(str(s) in info.value.allowed for s in TRANSITIONS[action][0])
    else:
        assert next_state(state, action) == expected
    assert set(TRANSITIONS) == set(LineAction)


def _status(rt, line_id: int) -> str:
    with rt.uow.read() as s:
        return s.get(m.CreditLine, line_id).status


def test_a_frozen_line_can_be_repaid_not_drawn_and_unfrozen(rt_sqlite):
    rt = rt_sqlite
    line = open_line(rt)
    draw(rt, line, 100 * WAN, D0)
    officer = actor(rt, "officer-yongjia")
    assert actions.freeze(rt, officer, line_id=line).status == "frozen"
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as info:
        draw(rt, line, WAN, D0)
    assert info.value.field == "line_id" and "frozen" in info.value.message
    assert ledger_dump(rt) == before
    repay(rt, line, 10 * WAN, D0)
    with pytest.raises(Conflict):
        actions.freeze(rt, officer, line_id=line)  # already frozen
    assert actions.unfreeze(rt, officer, line_id=line).status == "active"
    draw(rt, line, WAN, D0)


def test_a_limit_is_reduced_never_below_what_is_drawn(rt_sqlite):
    rt = rt_sqlite
    line = open_line(rt)
    draw(rt, line, 100 * WAN, D0)
    risk = actor(rt, "risk")
    for limit, field in [(99 * WAN, "limit_fen"), (LIMIT, "limit_fen"), (LIMIT + 1, "limit_fen")]:
        before = ledger_dump(rt)
        with pytest.raises(Conflict) as info:
            actions.reduce_limit(rt, risk, line_id=line, limit_fen=limit)
        assert info.value.field == field
        assert ledger_dump(rt) == before
    with pytest.raises(InvalidInput):
        actions.reduce_limit(rt, risk, line_id=line, limit_fen=-1)
    view = actions.reduce_limit(rt, risk, line_id=line, limit_fen=100 * WAN)  # exactly what is drawn
    assert (view.limit_fen, view.available_fen) == (100 * WAN, 0)
    with pytest.raises(Conflict):
        draw(rt, line, 1, D0)


def test_a_line_is_closed_only_when_nothing_is_owed_and_then_takes_nothing_more(rt_sqlite):
    rt = rt_sqlite
    line = open_line(rt)
    draw(rt, line, 100 * WAN, D0)
    officer = actor(rt, "officer-yongjia")
    with pytest.raises(Conflict) as info:
        actions.close(rt, officer, line_id=line)
    assert f"{100 * WAN} fen of principal and 0 fen of interest are owed" in info.value.message
    repay(rt, line, 100 * WAN, D0)  # drawn and repaid the same day: no interest
    assert actions.close(rt, officer, line_id=line).status == "closed"
    for op in (lambda: draw(rt, line, WAN, D0), lambda: repay(rt, line, 1, D0), lambda: actions.freeze(rt, officer, line_id=line)):
        with pytest.raises(Conflict):
            op()
    with rt.uow.read() as s:  # every change made through the actions is on the trail, by whom
        trail = list(s.execute(select(m.AuditRecord.action, m.AuditRecord.actor_user_id).where(m.AuditRecord.object_type == "line",
                                                                                               m.AuditRecord.object_id == str(line))))
    assert trail == [("line.close", officer.user_id)]


def test_end_of_day_expires_a_line_after_its_last_valid_day_and_it_can_be_renewed(rt_sqlite):
    rt = rt_sqlite
    line = open_line(rt)
    with rt.uow.read() as s:
        expires_on = s.get(m.CreditLine, line).expires_on
    eod(rt, expires_on - timedelta(days=2))
    assert _status(rt, line) == "active"
    eod(rt, expires_on - timedelta(days=1))  # the last valid day closes
    assert _status(rt, line) == "expired"
    rt.clock.value = FIXED_NOW.replace(year=expires_on.year, month=expires_on.month, day=expires_on.day)
    with pytest.raises(Conflict):
        actions.freeze(rt, actor(rt, "officer-yongjia"), line_id=line)  # an expired line is not frozen
    with pytest.raises(Conflict):
        draw(rt, line, WAN, expires_on)
    view = actions.renew(rt, actor(rt, "approver-yongjia"), line_id=line)
    assert view.status == "active" and view.expires_on == expires_on.replace(year=expires_on.year + 1)
