"""Servicing rules added after review: no future or back-dated movements, settlement
never skipped by a late end of day, caller keys that cannot reach system entries,
non-revolving lines, and the applicant form pointing at its own inputs."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from conftest import FIXED_NOW, PII_KEY, actor
from servicing_support import D0, check_ledger, draw, eod, ledger_dump, open_line, prepay, repay, rules
from sqlalchemy import select

from sandu.domain.errors import Conflict, InvalidInput, NotFound
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.domain.project import Project
from sandu.origination import service as orig
from sandu.servicing import service as svc
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m

S1 = STORY_ROWS[0]


def test_movements_and_end_of_day_are_never_in_the_future(rt_sqlite):
    line_id = open_line(rt_sqlite)
    now = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    before = ledger_dump(rt_sqlite)
    with pytest.raises(Conflict) as e, rt_sqlite.uow.write() as s:
        svc.draw(s, line_id=line_id, amount_fen=WAN, on_date=date(2026, 12, 2), idempotency_key="k", now=now, rules=rules(rt_sqlite))
    assert e.value.field == "on_date" and "after the business date 2026-12-01" in e.value.message
    with pytest.raises(Conflict) as e:
        eod(rt_sqlite, date(2026, 12, 2), now=now)
    assert e.value.field == "business_date"
    assert ledger_dump(rt_sqlite) == before


def test_no_movement_is_dated_before_the_lines_last_movement(rt_sqlite):
    line_id = open_line(rt_sqlite)
    draw(rt_sqlite, line_id, 100 * WAN, D0 + timedelta(days=5))
    before = ledger_dump(rt_sqlite)
    with pytest.raises(Conflict) as e:
        repay(rt_sqlite, line_id, 10 * WAN, D0 + timedelta(days=2))
    assert e.value.field == "on_date" and str(D0 + timedelta(days=5)) in e.value.allowed
    assert ledger_dump(rt_sqlite) == before


def test_a_late_end_of_day_still_settles_on_the_20th(rt_sqlite):
    line_id = open_line(rt_sqlite)
    draw(rt_sqlite, line_id, 100 * WAN, D0)  # 2026-11-29
    eod(rt_sqlite, date(2026, 12, 22))  # the runs of 11-29 … 12-21 were missed
    with rt_sqlite.uow.write() as s:
        dates = list(s.scalars(select(m.JournalEntryRow.effective_date).where(m.JournalEntryRow.kind == "interest")))
    assert dates == [date(2026, 12, 20)]
    with pytest.raises(Conflict, match="overdue"):
        draw(rt_sqlite, line_id, WAN, date(2026, 12, 23))
    check_ledger(rt_sqlite)


def test_caller_keys_cannot_reach_system_entries(rt_sqlite):
    first, second = open_line(rt_sqlite), open_line(rt_sqlite, STORY_ROWS[2], "keji_xinyong")  # S2's and S3's lines
    draw(rt_sqlite, first, 100 * WAN, D0)
    # A caller picking the very text of a system key on another line changes nothing for the first.
    system_key = f"sys:eod:2026-12-20:interest:{first}-{second}:0"  # end of day's key for the settlement of both lines
    draw(rt_sqlite, second, WAN, D0, key=system_key)
    eod(rt_sqlite, date(2026, 12, 21))
    with rt_sqlite.uow.write() as s:
        keys = set(s.scalars(select(m.JournalEntryRow.idempotency_key)))
    assert system_key in keys and f"c:{second}:{system_key}" in keys
    check_ledger(rt_sqlite)


def test_the_same_caller_key_on_two_lines_is_two_requests(rt_sqlite):
    first, second = open_line(rt_sqlite), open_line(rt_sqlite, STORY_ROWS[2], "keji_xinyong")
    a = draw(rt_sqlite, first, WAN, D0, key="same")
    b = draw(rt_sqlite, second, 2 * WAN, D0, key="same")
    assert not a.replayed and not b.replayed and a.drawing.id != b.drawing.id


def test_a_repeated_request_without_a_date_is_a_replay_on_a_later_day(rt_sqlite):
    line_id = open_line(rt_sqlite)
    day1 = datetime(2026, 11, 30, 10, tzinfo=timezone.utc)
    with rt_sqlite.uow.write() as s:
        first = svc.draw(s, line_id=line_id, amount_fen=WAN, on_date=None, idempotency_key="retry-me", now=day1, rules=rules(rt_sqlite))
    with rt_sqlite.uow.write() as s:
        again = svc.draw(s, line_id=line_id, amount_fen=WAN, on_date=None, idempotency_key="retry-me", now=day1 + timedelta(days=1),
                         rules=rules(rt_sqlite))
    assert again.replayed and again.drawing.id == first.drawing.id and again.drawing.drawn_on == day1.date()


def test_a_project_loan_does_not_revolve(rt_sqlite):
    rt = rt_sqlite
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S1["uscc"], name=S1["name"], registrant=actor(rt, "rep-s1"), pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=S1["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", signer=actor(rt, "rep-s1"), valid_days=30, now=FIXED_NOW)
        project = Project("扩产项目", 13_600 * WAN, 2_600 * WAN, 7)
        d = orig.measure(s, uscc=S1["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech, project=project)
        orig.review_offer(s, decision_id=d.id, product="project_loan", reviewer=actor(rt, "officer-longwan"), opinion="同意", now=FIXED_NOW)
        orig.approve_offer(s, decision_id=d.id, product="project_loan", approver=actor(rt, "approver-longwan"), now=FIXED_NOW, bundle=rt.bundle)
        line = orig.accept_offer(s, decision_id=d.id, product="project_loan", signer=actor(rt, "rep-s1"), as_of=D0, now=FIXED_NOW)
        assert not line.revolving and line.repayment_method == "等额本息"
    d = draw(rt, line.id, line.limit_fen, D0).drawing
    assert d.maturity_on == date(2033, 11, 29)  # the project's 7-year tenor, not the 12-month revolving rule
    prepay(rt, d.id, 1_000 * WAN, D0 + timedelta(days=1))
    with pytest.raises(Conflict) as e:
        draw(rt, line.id, WAN, D0 + timedelta(days=2))
    assert e.value.field == "amount_fen" and "available limit of 0 fen" in e.value.message
    with rt.uow.write() as s:
        assert svc.line_view(s, line.id, D0 + timedelta(days=2)).available_fen == 0


def test_line_view_shows_accrued_interest_in_whole_fen(rt_sqlite):
    line_id = open_line(rt_sqlite)
    draw(rt_sqlite, line_id, 100 * WAN, D0)
    eod(rt_sqlite, D0 + timedelta(days=1))  # two days of 100万 at 3.80 % / 360 = 21,111.11… fen
    with rt_sqlite.uow.write() as s:
        view = svc.line_view(s, line_id, D0 + timedelta(days=1))
    assert view.balances.interest_accrued_fen == 21_111 and isinstance(view.balances.interest_accrued_fen, int)


def test_reads_see_one_snapshot_while_draws_commit(rt):
    """GET /lines/{id} asserts ledger == line on read; a concurrent draw must never split its view."""
    import threading

    line_id = open_line(rt)
    stop, errors, reads = threading.Event(), [], [0]

    def drawer() -> None:
        try:
            for i in range(120):
                draw(rt, line_id, 1000, D0, key=f"race-{i}")
        except Exception as exc:  # noqa: BLE001 - any failure is the test's failure
            errors.append(repr(exc))
        finally:
            stop.set()

    def reader() -> None:
        while not stop.is_set():
            try:
                with rt.uow.read() as s:
                    svc.line_view(s, line_id, D0)
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
                stop.set()

    threads = [threading.Thread(target=drawer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert reads[0] > 0


def test_business_dates_are_beijing_dates(rt_sqlite):
    line_id = open_line(rt_sqlite)
    early_morning_beijing = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)  # 2026-12-01 07:00 in Beijing
    with rt_sqlite.uow.write() as s:
        d = svc.draw(s, line_id=line_id, amount_fen=WAN, on_date=None, idempotency_key="early", now=early_morning_beijing, rules=rules(rt_sqlite))
    assert d.drawing.drawn_on == date(2026, 12, 1)
    with rt_sqlite.uow.write() as s:
        svc.repay(s, line_id=line_id, amount_fen=WAN, on_date=date(2026, 12, 1), idempotency_key="same-day", now=early_morning_beijing,
                  rules=rules(rt_sqlite))


def test_nothing_is_available_outside_the_lines_validity(rt_sqlite):
    line_id = open_line(rt_sqlite)
    with rt_sqlite.uow.write() as s:
        line = s.get(m.CreditLine, line_id)
        assert svc.line_view(s, line_id, line.expires_on - timedelta(days=1)).available_fen == line.limit_fen
        assert svc.line_view(s, line_id, line.expires_on).available_fen == 0
        assert svc.line_view(s, line_id, line.opened_on - timedelta(days=1)).available_fen == 0


def test_line_numbers_beyond_the_id_column_are_refused(rt):
    with pytest.raises(InvalidInput) as e, rt.uow.write() as s:
        svc.draw(s, line_id=2**31, amount_fen=1, on_date=D0, idempotency_key="k", now=FIXED_NOW, rules=rules(rt))
    assert e.value.field == "line_id"
    with pytest.raises(NotFound), rt.uow.read() as s:
        svc.line_view(s, 2**31 - 1, D0)
