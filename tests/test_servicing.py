"""Servicing on the double-entry ledger: drawings (借据), settlement on the 20th, repayment of what is due,
overdue, penalty and compound interest, the five categories, end of day.

Ledger invariants (balanced entries, every balance kept on a row equal to the journal, 0 ≤ drawn ≤ limit),
exact interest to the fen, idempotency, rejected operations leaving every row byte-identical, and concurrent
draws never overdrawing the line or the enterprise's comprehensive limit — on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Any

import pytest
from conftest import FIXED_NOW, PII_KEY, actor
from servicing_support import (
    D0,
    LIMIT,
    S2,
    SERVICE_NOW,
    check_ledger,
    draw,
    drawing,
    eod,
    ledger_dump,
    line,
    open_line,
    prepay,
    repay,
    rules,
)
from sqlalchemy import func, select, text

from sandu.domain.errors import Conflict, InvalidInput, SanduError
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.domain.project import Project
from sandu.ledger import journal as jl
from sandu.origination import service as orig
from sandu.servicing import service as svc
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m

RATE = Fraction(38, 1000)  # the S2 经营快贷 rate, 3.80 %
PENALTY = RATE * Fraction(3, 2)  # + 50 %


def round_half_up(x: Fraction) -> int:
    assert x >= 0
    return floor(x + Fraction(1, 2))


def expected_interest(principal: int, days: int, rate: Fraction = RATE, basis: int = 360) -> int:
    return round_half_up(principal * rate * days / basis)


def balance(rt, account: str) -> int:
    with rt.uow.read() as s:
        return int(s.scalar(select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0)).where(m.PostingRow.account == account)) or 0)


def acct(line_id: int, drawing_id: int, bucket: str) -> str:
    return jl.loan_account(f"{line_id}-{drawing_id}", bucket)


# --- the life of a 随借随还 drawing ------------------------------------------------------------


def test_a_repayment_between_settlement_days_pays_principal_not_interest_not_yet_due(rt):
    line_id = open_line(rt)
    principal = 300 * WAN
    result = draw(rt, line_id, principal, D0)
    d = result.drawing
    assert not result.replayed and d.amount_fen == principal and d.repayment_method == "随借随还"
    assert d.maturity_on == date(2027, 11, 29)  # 12 months, never past the line's expiry
    assert (d.rate_annual, d.penalty_rate_annual) == (Decimal("0.0380"), Decimal("0.057"))
    res = repay(rt, line_id, principal, D0 + timedelta(days=10))  # 12-09: the interest of 11-29..12-08 is due on 12-21
    assert res.allocations == {"principal": principal} and res.interest_settled_fen == 0
    after = drawing(rt, d.id)
    assert after.principal_fen == 0 and after.interest_fen == 0 and after.status == "open"
    assert after.interest_fen_days == principal * 10  # accrued, not charged: 算头不算尾, 11-29 .. 12-08
    with pytest.raises(Conflict) as e:  # nothing is due: the accrued interest is not owed yet
        repay(rt, line_id, 1, D0 + timedelta(days=11))
    assert e.value.field == "amount_fen" and "0 fen owed now" in e.value.message
    eod(rt, date(2026, 12, 20))  # the settlement day: 10 days of interest on 300万, rounded once
    interest = expected_interest(principal, 10)
    assert interest == 316_667
    assert drawing(rt, d.id).interest_fen == interest
    assert balance(rt, acct(line_id, d.id, "interest")) == interest
    assert balance(rt, jl.INTEREST_INCOME_ACCOUNT) == -interest
    res = repay(rt, line_id, interest, date(2026, 12, 21))
    assert res.allocations == {"interest": interest}
    after = drawing(rt, d.id)
    assert (after.status, after.repaid_on) == ("repaid", date(2026, 12, 21))  # nothing owed, nothing accruing
    assert balance(rt, jl.DISBURSEMENT_ACCOUNT) == -principal
    assert balance(rt, jl.REPAYMENT_ACCOUNT) == principal + interest
    check_ledger(rt)


def test_interest_is_charged_on_each_20th_and_falls_due_the_next_day(rt):
    line_id = open_line(rt)
    principal = 300 * WAN
    d = draw(rt, line_id, principal, D0).drawing
    charged = {}
    day = D0
    while day <= date(2027, 1, 25):
        v = eod(rt, day)
        charged[day] = sum(x.charged_fen["interest"] for x in v.days)
        day += timedelta(days=1)
    first = expected_interest(principal, 22)  # 11-29 .. 12-20
    second = expected_interest(principal, 31)  # 12-21 .. 01-20 on the principal (compound interest is on overdue interest only)
    assert {k: v for k, v in charged.items() if v} == {date(2026, 12, 20): first, date(2027, 1, 20): second}
    # neither settlement was paid on its due day (12-21, 01-21): overdue from the next day, compound interest on it from then
    after = drawing(rt, d.id)
    assert after.overdue_interest_fen == first + second and after.interest_fen == 0
    assert after.dpd == (date(2027, 1, 25) - date(2026, 12, 21)).days  # 12-21 due, overdue from 12-22
    assert after.risk_class == "special_mention"
    compound_days = (date(2027, 1, 20) - date(2026, 12, 22)).days + 1
    assert after.compound_fen == expected_interest(first, compound_days, PENALTY)
    check_ledger(rt)


def test_a_repayment_pays_in_the_allocation_order_and_unblocks_drawing(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    d = draw(rt, line_id, 100 * WAN, D0).drawing
    eod(rt, date(2026, 12, 25))  # the first EOD closes 12-25 alone, catching the line up day by day
    interest = expected_interest(100 * WAN, 22)
    after = drawing(rt, d.id)
    assert after.overdue_interest_fen == interest and after.dpd == 4  # due 12-21, overdue 12-22 .. 12-25
    compound_accrued = 4 * interest  # fen-days on the overdue interest
    assert after.compound_fen_days == compound_accrued
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as e:
        draw(rt, line_id, WAN, date(2026, 12, 26))
    assert e.value.field == "line_id" and "overdue" in e.value.message
    assert ledger_dump(rt) == before
    res = repay(rt, line_id, interest + 5 * WAN, date(2026, 12, 26))
    assert res.allocations == {"overdue_interest": interest, "principal": 5 * WAN}
    draw(rt, line_id, WAN, date(2026, 12, 26))  # nothing overdue: drawing is allowed again
    with rt.uow.read() as s:
        assert s.get(m.CreditLine, line_id).drawn_principal_fen == 96 * WAN
    check_ledger(rt)


def test_maturity_overdue_penalty_and_the_five_categories(rt):
    line_id = open_line(rt)
    principal = 100 * WAN
    d = draw(rt, line_id, principal, D0).drawing
    res = repay(rt, line_id, principal - 10 * WAN, D0 + timedelta(days=1))  # 10万 left, never repaid
    assert res.allocations == {"principal": 90 * WAN}
    # pay every settlement on its due day until maturity
    day = D0 + timedelta(days=1)
    eod(rt, day)
    while True:
        nxt = date(day.year + (day.month == 12), day.month % 12 + 1, 21) if day.day >= 21 else day.replace(day=21)
        if nxt > date(2027, 11, 21):
            break
        eod(rt, nxt - timedelta(days=1))
        due = drawing(rt, d.id).interest_fen
        assert due > 0
        repay(rt, line_id, due, nxt)
        day = nxt
    eod(rt, date(2027, 11, 28))
    assert drawing(rt, d.id).due_principal_fen == 10 * WAN  # raised for 11-29, the maturity
    eod(rt, date(2027, 11, 29))  # not paid by the close of its due date: overdue from the next day, DPD still 0
    after = drawing(rt, d.id)
    assert (after.overdue_principal_fen, after.dpd, after.risk_class) == (10 * WAN, 0, "normal")
    assert line(rt, line_id).status == "expired"  # its last valid day was 11-28
    eod(rt, date(2027, 11, 30))
    after = drawing(rt, d.id)
    assert after.overdue_principal_fen == 10 * WAN and after.principal_fen == 0 and after.dpd == 1
    assert after.risk_class == "special_mention"
    assert after.interest_fen_days == 10 * WAN * 9  # 11-21 .. 11-29, the maturity day unpaid at its close; then penalty instead
    assert after.penalty_fen_days == 10 * WAN
    eod(rt, date(2028, 2, 28))  # 91 days past due
    after = drawing(rt, d.id)
    assert after.dpd == 91 and after.risk_class == "substandard"
    with rt.uow.read() as s:
        history = [(c.from_class, c.to_class, c.on_date) for c in s.scalars(
            select(m.ClassificationChange).where(m.ClassificationChange.drawing_id == d.id).order_by(m.ClassificationChange.id))]
        assert history == [("normal", "special_mention", date(2027, 11, 30)), ("special_mention", "substandard", date(2028, 2, 28))]
        assert s.get(m.CreditLine, line_id).risk_class == "substandard"
    # penalty: 10万 × 5.7 % / 360 per day from 11-30, charged on each 20th
    penalty = [expected_interest(10 * WAN, (date(2027, 12, 20) - date(2027, 11, 30)).days + 1, PENALTY),
               expected_interest(10 * WAN, 31, PENALTY), expected_interest(10 * WAN, 31, PENALTY)]
    assert after.penalty_fen == sum(penalty)
    check_ledger(rt)


def test_an_officer_may_classify_worse_never_better(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    d = draw(rt, line_id, 100 * WAN, D0).drawing
    eod(rt, date(2026, 12, 23))  # the first settlement overdue since 12-22: 关注
    assert drawing(rt, d.id).risk_class == "special_mention"
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as e, rt.uow.write() as s:
        svc.classify(s, drawing_id=d.id, risk_class="normal", note="客户承诺还款", on=date(2026, 12, 24), by_user=None, rules=rules(rt))
    assert e.value.field == "risk_class"
    with pytest.raises(InvalidInput) as e, rt.uow.write() as s:
        svc.classify(s, drawing_id=d.id, risk_class="bad", note="x", on=date(2026, 12, 24), by_user=None, rules=rules(rt))
    assert e.value.field == "risk_class"
    assert ledger_dump(rt) == before
    with rt.uow.write() as s:
        svc.classify(s, drawing_id=d.id, risk_class="doubtful", note="经营恶化", on=date(2026, 12, 24), by_user=None, rules=rules(rt))
    assert line(rt, line_id).risk_class == "doubtful"
    # paid up: the rules say 正常, the officer's floor keeps 可疑
    owed = drawing(rt, d.id)
    repay(rt, line_id, owed.overdue_interest_fen + owed.compound_fen + owed.penalty_fen, date(2026, 12, 24))
    eod(rt, date(2027, 1, 10))
    assert drawing(rt, d.id).risk_class == "doubtful" and drawing(rt, d.id).dpd == 0
    check_ledger(rt)


def test_a_class_recovers_one_step_after_ninety_days_at_no_days_past_due(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    d = draw(rt, line_id, 100 * WAN, D0).drawing
    eod(rt, date(2026, 12, 25))
    assert drawing(rt, d.id).risk_class == "special_mention"
    owed = drawing(rt, d.id)
    repay(rt, line_id, owed.overdue_interest_fen, date(2026, 12, 26))  # compound interest accrued is charged on 01-20
    eod(rt, date(2027, 1, 20))
    c = drawing(rt, d.id).compound_fen
    assert c > 0
    i = drawing(rt, d.id).interest_fen
    repay(rt, line_id, c + i, date(2027, 1, 21))
    for month in (2, 3):  # each settlement paid on its due day
        eod(rt, date(2027, month, 20))
        repay(rt, line_id, drawing(rt, d.id).interest_fen, date(2027, month, 21))
    eod(rt, date(2027, 3, 24))  # 89 days at DPD 0 (12-26 .. 03-24): still 关注
    assert (drawing(rt, d.id).risk_class, drawing(rt, d.id).days_current) == ("special_mention", 89)
    eod(rt, date(2027, 3, 25))  # the 90th: one step back to 正常
    assert drawing(rt, d.id).risk_class == "normal"
    assert line(rt, line_id).risk_class == "normal"
    check_ledger(rt)


# --- rejected operations change nothing --------------------------------------------------


def test_draw_above_available_is_refused_and_changes_nothing(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    eod(rt, D0)
    before = ledger_dump(rt)
    for amount in (LIMIT - 300 * WAN + 1, 200 * WAN, LIMIT, LIMIT + 1):
        with pytest.raises(Conflict) as e:
            draw(rt, line_id, amount, D0 + timedelta(days=1))
        assert e.value.field == "amount_fen"
        assert str(LIMIT - 300 * WAN) in e.value.message  # says what is available
        assert ledger_dump(rt) == before
    draw(rt, line_id, LIMIT - 300 * WAN, D0 + timedelta(days=1))  # exactly what is available is fine
    assert line(rt, line_id).drawn_principal_fen == LIMIT
    check_ledger(rt)


def test_overpayment_is_refused_and_changes_nothing(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    eod(rt, date(2026, 12, 20))
    owed = 300 * WAN + expected_interest(300 * WAN, 22)
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as e:
        repay(rt, line_id, owed + 1, date(2026, 12, 21))
    assert e.value.field == "amount_fen" and str(owed) in e.value.message
    assert ledger_dump(rt) == before
    res = repay(rt, line_id, owed, date(2026, 12, 21))
    assert sum(res.allocations.values()) == owed
    check_ledger(rt)


BAD_AMOUNTS = [-1, 0, -300 * WAN, 1.5, 100.0, True, False, Decimal("100"), "100", None, Fraction(3, 1)]


@pytest.mark.parametrize("op", ["draw", "repay"])
def test_bad_amounts_are_invalid_input_and_change_nothing(rt_sqlite, op):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 100 * WAN, D0)
    before = ledger_dump(rt)
    fn = draw if op == "draw" else repay
    for amount in BAD_AMOUNTS:
        with pytest.raises(InvalidInput) as e:
            fn(rt, line_id, amount, D0 + timedelta(days=1))
        assert e.value.field == "amount_fen", amount
        assert ledger_dump(rt) == before, amount


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"line_id": 10**9}, "NotFound", "line_id"),
        ({"line_id": "1"}, "InvalidInput", "line_id"),
        ({"line_id": True}, "InvalidInput", "line_id"),
        ({"on_date": "2026-11-30"}, "InvalidInput", "on_date"),
        ({"on_date": D0 - timedelta(days=1)}, "Conflict", "on_date"),  # before the line opened
        ({"on_date": date(2027, 11, 29)}, "Conflict", "on_date"),  # on expiry
        ({"idempotency_key": ""}, "InvalidInput", "idempotency_key"),
        ({"idempotency_key": "k" * 121}, "InvalidInput", "idempotency_key"),
        ({"idempotency_key": "a#b"}, "InvalidInput", "idempotency_key"),
        ({"on_date": date(2028, 7, 1)}, "Conflict", "on_date"),  # after the business date
    ],
)
def test_bad_draw_requests_name_the_field_and_change_nothing(rt_sqlite, kwargs, error, field):
    rt = rt_sqlite
    line_id = open_line(rt)
    before = ledger_dump(rt)
    args = {"line_id": line_id, "amount_fen": WAN, "on_date": D0 + timedelta(days=1), "idempotency_key": "k1", **kwargs}
    with pytest.raises(SanduError) as e:
        with rt.uow.write() as s:
            svc.draw(s, now=SERVICE_NOW, rules=rules(rt), **args)
    assert type(e.value).__name__ == error and e.value.field == field
    assert ledger_dump(rt) == before


def test_no_movement_dated_into_a_closed_day_and_no_end_of_day_before_the_last(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, WAN, D0)
    eod(rt, D0 + timedelta(days=2))
    before = ledger_dump(rt)
    for fn in (draw, repay):
        with pytest.raises(Conflict) as e:
            fn(rt, line_id, WAN, D0 + timedelta(days=2))
        assert e.value.field == "on_date" and str(D0 + timedelta(days=3)) in e.value.allowed
    with pytest.raises(Conflict) as e:
        eod(rt, D0 + timedelta(days=1))
    assert e.value.field == "business_date"
    with pytest.raises(Conflict) as e:  # never a future date on the real clock
        eod(rt, date(2028, 7, 1))
    assert e.value.field == "business_date"
    assert ledger_dump(rt) == before
    assert eod(rt, D0 + timedelta(days=2)).days == []  # the last date closed again: nothing to do
    assert ledger_dump(rt) == before


def test_end_of_day_catches_up_missed_dates_in_order(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    eod(rt, D0)
    v = eod(rt, date(2026, 12, 21))
    assert [x.business_date for x in v.days] == [D0 + timedelta(days=k) for k in range(1, 23)]
    assert v.last_closed_on == date(2026, 12, 21)
    assert sum(x.charged_fen["interest"] for x in v.days) == expected_interest(300 * WAN, 22)
    check_ledger(rt)


# --- idempotency -------------------------------------------------------------------------


def test_draw_with_the_same_key_and_body_is_replayed_without_new_rows(rt):
    line_id = open_line(rt)
    first = draw(rt, line_id, 120 * WAN, D0, key="client-42:draw-1")
    assert not first.replayed
    before = ledger_dump(rt)
    again = draw(rt, line_id, 120 * WAN, D0, key="client-42:draw-1")
    assert again.replayed and again.drawing.id == first.drawing.id and again.drawing.amount_fen == 120 * WAN
    assert ledger_dump(rt) == before
    for amount, on in ((121 * WAN, D0), (120 * WAN, D0 + timedelta(days=1))):
        with pytest.raises(Conflict) as e:
            draw(rt, line_id, amount, on, key="client-42:draw-1")
        assert e.value.field == "idempotency_key"
        assert ledger_dump(rt) == before
    with pytest.raises(Conflict) as e:
        repay(rt, line_id, 120 * WAN, D0, key="client-42:draw-1")
    assert e.value.field == "idempotency_key"
    assert ledger_dump(rt) == before
    check_ledger(rt)


def test_repay_with_the_same_key_and_body_is_replayed_without_new_rows(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    eod(rt, date(2026, 12, 20))
    amount = 100 * WAN
    first = repay(rt, line_id, amount, date(2026, 12, 21), key="client-42:repay-1")
    assert first.allocations == {"interest": expected_interest(300 * WAN, 22), "principal": amount - expected_interest(300 * WAN, 22)}
    before = ledger_dump(rt)
    again = repay(rt, line_id, amount, date(2026, 12, 21), key="client-42:repay-1")
    assert again.replayed and again.allocations == first.allocations and again.by_drawing == first.by_drawing
    assert ledger_dump(rt) == before
    with pytest.raises(Conflict) as e:
        repay(rt, line_id, amount + 1, date(2026, 12, 21), key="client-42:repay-1")
    assert e.value.field == "idempotency_key"
    assert ledger_dump(rt) == before


def test_end_of_day_twice_for_the_same_date_changes_nothing(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    for day in (D0, D0 + timedelta(days=1), date(2026, 12, 20)):  # incl. a settlement day
        first = eod(rt, day)
        assert first.days and first.days[-1].lines == 1
        before = ledger_dump(rt)
        assert eod(rt, day).days == []
        assert ledger_dump(rt) == before
    assert line(rt, line_id).accrued_through == date(2026, 12, 20)
    check_ledger(rt)


# --- concurrency -------------------------------------------------------------------------


def _run_threads(rt, n: int, target) -> tuple[list[Any], list[SanduError], list[BaseException]]:
    """Run `target(i)` in n threads started together; sort results, SanduErrors and anything else."""
    conns = [rt.engine.connect() for _ in range(n)]  # connect up front: no thread is late to the race
    for c in conns:
        c.close()
    barrier = threading.Barrier(n)
    results: list[Any] = []
    refused: list[SanduError] = []
    crashed: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            out = target(i)
        except SanduError as exc:
            with lock:
                refused.append(exc)
        except BaseException as exc:  # noqa: BLE001 - anything else fails the test
            with lock:
                crashed.append(exc)
        else:
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return results, refused, crashed


def test_concurrent_draws_never_exceed_the_limit(rt):
    line_id = open_line(rt)
    n, amount = 8, 100 * WAN
    results, refused, crashed = _run_threads(rt, n, lambda i: draw(rt, line_id, amount, D0, key=f"concurrent:{i}"))
    assert crashed == [], [repr(c) for c in crashed]
    fits = LIMIT // amount
    assert len(results) == fits == 4
    assert len(refused) == n - fits
    assert all(isinstance(e, Conflict) and e.field == "amount_fen" for e in refused), [e.to_dict() for e in refused]
    with rt.uow.write() as s:
        line = s.get(m.CreditLine, line_id)
        assert line.drawn_principal_fen == fits * amount <= line.limit_fen
        assert s.scalar(select(func.count()).select_from(m.Drawing).where(m.Drawing.line_id == line_id)) == fits
    check_ledger(rt)


def test_concurrent_retries_of_one_draw_disburse_once(rt):
    line_id = open_line(rt)
    results, refused, crashed = _run_threads(rt, 6, lambda i: draw(rt, line_id, 50 * WAN, D0, key="retried-request"))
    assert crashed == [] and refused == [], ([repr(c) for c in crashed], [e.to_dict() for e in refused])
    assert len(results) == 6
    assert sorted(r.replayed for r in results) == [False] + [True] * 5
    assert len({r.drawing.id for r in results}) == 1
    with rt.uow.write() as s:
        assert s.get(m.CreditLine, line_id).drawn_principal_fen == 50 * WAN
        assert s.scalar(select(func.count()).select_from(m.Drawing)) == 1
    check_ledger(rt)


def _eight_workers_drawing(rt, line_id: int, amount: int, tag: str, per_worker: int) -> int:
    """8 workers × `per_worker` draws of `amount` on one line, all at once; returns how many succeeded (the others:
    amount_fen)."""

    def worker(i: int) -> int:
        done = 0
        for k in range(per_worker):
            try:
                draw(rt, line_id, amount, D0, key=f"{tag}{i}:{k}")
                done += 1
            except Conflict as exc:
                assert exc.field == "amount_fen"
        return done

    results, refused, crashed = _run_threads(rt, 8, worker)
    assert crashed == [] and refused == [], ([repr(c) for c in crashed], refused)
    return sum(results)


def test_two_hundred_concurrent_draws_that_fit_all_succeed(rt):
    line_id = open_line(rt)
    amount = 2 * WAN + 37  # 416万 holds 207 of them: all 8 × 25 succeed
    succeeded = _eight_workers_drawing(rt, line_id, amount, "w", 25)
    assert succeeded == min(LIMIT // amount, 200) == 200
    assert line(rt, line_id).drawn_principal_fen == succeeded * amount <= LIMIT
    check_ledger(rt)


def test_eight_workers_drawing_two_hundred_times_each_stop_exactly_at_the_limit(rt):
    """8 workers × 200 draws on one line: never an overdraw, and exactly as many successes as the limit allows."""
    line_id = open_line(rt)
    amount = LIMIT // 800  # 416万 holds exactly 800 of the 1,600 tries (a line holds at most 1,000 open drawings)
    assert _eight_workers_drawing(rt, line_id, amount, "x", 200) == 800
    assert line(rt, line_id).drawn_principal_fen == LIMIT
    check_ledger(rt)


def _wait_until_blocked(rt, timeout: float = 5.0) -> None:
    """PostgreSQL: wait until another backend of this database waits on a lock; SQLite: a short pause."""
    if rt.engine.dialect.name != "postgresql":
        time.sleep(0.3)
        return
    deadline = time.monotonic() + timeout
    with rt.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)


def test_end_of_day_during_a_same_day_draw_accrues_the_drawn_principal(rt):
    """A drawing dated D commits while end of day for D runs: D's accrual includes it (EOD waits for the line)."""
    line_id = open_line(rt)
    draw_started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_draw() -> None:
        try:
            with rt.uow.write() as s:
                svc.draw(s, line_id=line_id, amount_fen=300 * WAN, on_date=D0, idempotency_key="race-draw", now=SERVICE_NOW, rules=rules(rt))
                draw_started.set()
                release.wait(timeout=30)  # hold the transaction open while end of day starts
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            draw_started.set()

    def run_eod() -> None:
        try:
            eod(rt, D0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t_draw = threading.Thread(target=slow_draw)
    t_draw.start()
    assert draw_started.wait(timeout=30)
    t_eod = threading.Thread(target=run_eod)
    t_eod.start()
    _wait_until_blocked(rt)
    release.set()
    t_draw.join(timeout=60)
    t_eod.join(timeout=60)
    assert not t_draw.is_alive() and not t_eod.is_alive()
    assert errors == [], [repr(e) for e in errors]
    d = drawing(rt, _only_drawing(rt, line_id))
    assert line(rt, line_id).accrued_through == D0
    assert d.interest_fen_days == 300 * WAN, "the day's accrual missed the drawing"
    check_ledger(rt)


def _only_drawing(rt, line_id: int) -> int:
    with rt.uow.read() as s:
        return s.scalar(select(m.Drawing.id).where(m.Drawing.line_id == line_id))


def test_concurrent_end_of_day_runs_close_a_date_once(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    eod(rt, D0)
    settle = date(2026, 12, 20)
    results, refused, crashed = _run_threads(rt, 4, lambda i: eod(rt, settle))
    assert crashed == [], [repr(c) for c in crashed]
    assert all(isinstance(e, Conflict) and e.field == "business_date" for e in refused), [repr(e) for e in refused]
    charged = sum(x.charged_fen["interest"] for r in results for x in r.days)
    assert charged == expected_interest(300 * WAN, 22)
    assert drawing(rt, _only_drawing(rt, line_id)).interest_fen == expected_interest(300 * WAN, 22)
    check_ledger(rt)


def test_a_draw_waiting_for_its_line_already_holds_its_enterprise(rt):
    """PostgreSQL: a draw locks the enterprise before the line (in one statement), as every change of what an
    enterprise may borrow does — while it waits for the line it holds the enterprise, and while it waits for the
    enterprise it holds nothing of the line (no lock cycle with a change that holds the enterprise and wants the line)."""
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writer holds the whole store")
    line_id = open_line(rt)
    with rt.uow.read() as s:
        enterprise_id = s.scalar(select(m.CreditLine.enterprise_id).where(m.CreditLine.id == line_id))

    def held(table: str, row_id: int) -> bool:
        with rt.engine.connect() as conn:
            try:
                conn.execute(text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE NOWAIT"), {"id": row_id})
                return False
            except Exception as exc:  # noqa: BLE001 - lock_not_available
                assert "lock" in str(exc).lower(), exc
                return True
            finally:
                conn.rollback()

    for first, other in (("credit_lines", "enterprises"), ("enterprises", "credit_lines")):
        holder = rt.engine.connect()
        holder.begin()
        holder.execute(text(f"SELECT id FROM {first} WHERE id = :id FOR UPDATE"), {"id": line_id if first == "credit_lines" else enterprise_id})
        results: list[Any] = []
        worker = threading.Thread(target=lambda out=results: out.append(draw(rt, line_id, WAN, D0)))
        worker.start()
        try:
            _wait_until_blocked(rt)
            assert held(other, enterprise_id if other == "enterprises" else line_id) == (other == "enterprises")
        finally:
            holder.rollback()
            holder.close()
            worker.join(timeout=60)
        assert not worker.is_alive() and len(results) == 1
    check_ledger(rt)


# statements a movement may take inside its transaction (BEGIN and COMMIT aside): PostgreSQL locks, reads and writes
# everything in one statement (`servicing.writes`); SQLite, in process, writes row by row
STATEMENTS_PER_MOVEMENT = {"postgresql": {"draw": 3, "repay": 3}, "sqlite": {"draw": 6, "repay": 6}}


def test_a_draw_and_a_repayment_take_a_few_statements_each(rt):
    from sqlalchemy import event

    line_id = open_line(rt)
    for k in range(3):  # some history first
        draw(rt, line_id, WAN + k, D0)
        repay(rt, line_id, WAN + k, D0)
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        for op, call in (("draw", svc.draw), ("repay", svc.repay)):
            seen.clear()
            with rt.uow.write() as s:
                call(s, line_id=line_id, amount_fen=3 * WAN, on_date=D0, idempotency_key=f"counted-{op}", now=SERVICE_NOW, rules=rules(rt))
            assert len(seen) <= STATEMENTS_PER_MOVEMENT[rt.engine.dialect.name][op], (op, seen)
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
    check_ledger(rt)


# --- one comprehensive limit per enterprise ---------------------------------------------------


def _s1_lines(rt) -> tuple[int, int, str]:
    """S1's two lines (project loan 9,520万 and 经营快贷 500万 = its comprehensive limit: with sales of
    2.2亿 S1 is above the 科技型中小企业 size limit of 2亿, so no 科创信用额度), the project loan reviewed by
    the 龙湾 officer and approved by the 龙湾 approver, both signed by S1's legal representative."""
    s1 = STORY_ROWS[0]
    rep, officer, approver = actor(rt, "rep-s1"), actor(rt, "officer-longwan"), actor(rt, "approver-longwan")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=s1["uscc"], name=s1["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=s1["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", signer=rep, valid_days=30, now=FIXED_NOW)
        d = orig.measure(s, uscc=s1["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech,
                         project=Project("年产2.7万吨紧固件建设项目", 13_600 * WAN, 2_600 * WAN, 7))
        orig.review_offer(s, decision_id=d.id, product="project_loan", reviewer=officer, opinion="同意", now=FIXED_NOW)
        orig.approve_offer(s, decision_id=d.id, product="project_loan", approver=approver, now=FIXED_NOW, bundle=rt.bundle)
        lines = [orig.accept_offer(s, decision_id=d.id, product=product, signer=rep, as_of=D0, now=FIXED_NOW).id
                 for product in ("project_loan", "jingying_kuaidai")]
        assert d.comprehensive_limit_fen == 10_020 * WAN
        return lines[0], lines[1], c.id


def test_a_new_decision_supersedes_the_last_and_its_offers_can_no_longer_be_signed(rt_sqlite):
    rt = rt_sqlite
    rep = actor(rt, "rep-s2")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", signer=rep, valid_days=30, now=FIXED_NOW)
        old = orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech).id
        new = orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech).id
        assert s.get(m.Decision, old).superseded_at == FIXED_NOW and s.get(m.Decision, new).superseded_at is None
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as info:
        with rt.uow.write() as s:
            orig.accept_offer(s, decision_id=old, product="jingying_kuaidai", signer=rep, as_of=D0, now=FIXED_NOW)
    assert info.value.field == "decision_id" and "superseded" in info.value.message
    assert ledger_dump(rt) == before
    with rt.uow.write() as s:
        assert orig.accept_offer(s, decision_id=new, product="jingying_kuaidai", signer=rep, as_of=D0, now=FIXED_NOW).limit_fen == LIMIT
    # a third decision, and its offer would take a second 416万 line: refused, the first line holds the limit
    with rt.uow.write() as s:
        third = orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech).id
    with pytest.raises(Conflict) as info:
        with rt.uow.write() as s:
            orig.accept_offer(s, decision_id=third, product="jingying_kuaidai", signer=rep, as_of=D0, now=FIXED_NOW)
    assert info.value.field == "product" and "at most 0 fen" in info.value.allowed


def test_the_sum_of_an_enterprises_lines_and_of_its_drawn_principal_stay_within_its_comprehensive_limit(rt_sqlite):
    rt = rt_sqlite
    project, credit, consent = _s1_lines(rt)
    draw(rt, project, 3_000 * WAN, D0)
    # A newer decision without the project: the comprehensive limit falls to the credit line alone (500万),
    # below what is drawn — so nothing more may be drawn on either line, while repayments still work.
    with rt.uow.write() as s:
        d = orig.measure(s, uscc=STORY_ROWS[0]["uscc"], consent_id=consent, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech)
        assert d.comprehensive_limit_fen == 500 * WAN
    for line_id in (project, credit):
        before = ledger_dump(rt)
        with pytest.raises(Conflict) as info:
            draw(rt, line_id, WAN, D0)
        assert info.value.field == "amount_fen" and "comprehensive limit: 0 fen left" in info.value.message
        assert ledger_dump(rt) == before
    with pytest.raises(Conflict) as info:  # a project loan (等额本息) repays early by prepayment, not by a repayment
        repay(rt, project, 1_000 * WAN, D0)
    assert info.value.field == "amount_fen" and "prepay" in info.value.message
    with rt.uow.read() as s:
        drawing_id = s.scalar(select(m.Drawing.id).where(m.Drawing.line_id == project))
    prepaid = prepay(rt, drawing_id, 2_600 * WAN, D0)
    assert (prepaid.principal_fen, prepaid.interest_fen, prepaid.schedule_version) == (2_600 * WAN, 0, 2)
    # 3,000万 − 2,600万 = 400万 drawn: 100万 of headroom, on any of the enterprise's lines
    draw(rt, credit, 100 * WAN, D0)
    with pytest.raises(Conflict):
        draw(rt, credit, 1, D0)
    check_ledger(rt)


def test_concurrent_draws_on_two_lines_never_take_the_enterprise_above_its_limit(rt):
    project, credit, consent = _s1_lines(rt)
    with rt.uow.write() as s:
        orig.measure(s, uscc=STORY_ROWS[0]["uscc"], consent_id=consent, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech)  # limit 500万
    n, amount = 8, 100 * WAN
    per_worker = 25

    def worker(i: int) -> int:
        done = 0
        for k in range(per_worker):
            try:
                draw(rt, project if (i + k) % 2 else credit, amount, D0, key=f"e:{i}:{k}")
                done += 1
            except Conflict as exc:
                assert exc.field == "amount_fen"
        return done

    results, refused, crashed = _run_threads(rt, n, worker)
    assert crashed == [] and refused == [], ([repr(c) for c in crashed], refused)
    assert sum(results) == 500 * WAN // amount == 5  # exactly what the limit allows, of 200 tries
    with rt.uow.read() as s:
        drawn = s.scalar(select(func.sum(m.CreditLine.drawn_principal_fen)).where(m.CreditLine.id.in_([project, credit])))
    assert drawn == 5 * amount
    check_ledger(rt)


# --- product settings held as data: 利随本清, allocation order, grace ------------------------------


def _set_line(rt, line_id: int, **values) -> None:
    """A product setting as the bundle would have put it on the line when it was signed."""
    with rt.uow.write() as s:
        row = s.get(m.CreditLine, line_id)
        for k, v in values.items():
            setattr(row, k, v)


def test_interest_with_principal_settles_the_interest_accrued_with_a_repayment(rt):
    line_id = open_line(rt)
    _set_line(rt, line_id, interest_with_principal=True)
    d = draw(rt, line_id, 300 * WAN, D0).drawing
    interest = expected_interest(300 * WAN, 10)
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as e:  # the settled interest is owed too, and nothing more
        repay(rt, line_id, 300 * WAN + interest + 1, D0 + timedelta(days=10))
    assert str(300 * WAN + interest) in e.value.message
    assert ledger_dump(rt) == before  # not even the settlement of the refused repayment remains
    res = repay(rt, line_id, 300 * WAN + interest, D0 + timedelta(days=10))
    assert res.interest_settled_fen == interest
    assert res.allocations == {"interest": interest, "principal": 300 * WAN}
    after = drawing(rt, d.id)
    assert (after.status, after.interest_fen_days, after.interest_fen) == ("repaid", 0, 0)
    check_ledger(rt)


def test_the_allocation_order_is_the_products(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    _set_line(rt, line_id, allocation_order="principal,interest,overdue_principal,overdue_interest,compound,penalty")
    draw(rt, line_id, 100 * WAN, D0)
    eod(rt, date(2026, 12, 20))
    interest = expected_interest(100 * WAN, 22)
    res = repay(rt, line_id, WAN, date(2026, 12, 21))
    assert res.allocations == {"principal": WAN}  # principal first, as this product says; the interest due stays
    res = repay(rt, line_id, 99 * WAN + interest, date(2026, 12, 21))
    assert res.allocations == {"principal": 99 * WAN, "interest": interest}
    check_ledger(rt)


@pytest.mark.parametrize("grace", [0, 3])
def test_a_grace_period_keeps_days_past_due_at_zero_then_charges_from_the_due_date(rt_sqlite, grace):
    rt = rt_sqlite
    line_id = open_line(rt)
    _set_line(rt, line_id, grace_days=grace)
    d = draw(rt, line_id, 100 * WAN, D0).drawing
    interest = expected_interest(100 * WAN, 22)  # charged 12-20, due 12-21
    eod(rt, date(2026, 12, 20) + timedelta(days=grace))  # the day before the last day of grace (the 20th itself without grace)
    assert (drawing(rt, d.id).interest_fen, drawing(rt, d.id).overdue_interest_fen) == (interest, 0)
    eod(rt, date(2026, 12, 21) + timedelta(days=grace))  # the last day of grace: unpaid at its close, overdue from the next day
    last = drawing(rt, d.id)
    assert (last.dpd, last.risk_class, last.overdue_interest_fen, last.interest_fen) == (0, "normal", interest, 0)
    eod(rt, date(2026, 12, 22) + timedelta(days=grace))  # grace lost: DPD counts from the due date
    after = drawing(rt, d.id)
    assert (after.dpd, after.risk_class, after.overdue_interest_fen) == (grace + 1, "special_mention", interest)
    assert after.compound_fen_days == interest * (grace + 1)  # compound interest from the day after the due date
    check_ledger(rt)


def test_a_payment_within_grace_charges_no_compound_interest(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    _set_line(rt, line_id, grace_days=3)
    d = draw(rt, line_id, 100 * WAN, D0).drawing
    eod(rt, date(2026, 12, 23))
    repay(rt, line_id, expected_interest(100 * WAN, 22), date(2026, 12, 24))  # the last day of grace
    eod(rt, date(2027, 1, 20))
    after = drawing(rt, d.id)
    assert (after.dpd, after.compound_fen, after.penalty_fen, after.overdue_interest_fen) == (0, 0, 0, 0)
    with rt.uow.read() as s:
        assert s.scalar(select(func.count()).select_from(m.ClassificationChange)) == 0
    check_ledger(rt)


# --- scheduled drawings ------------------------------------------------------------------------


def test_a_scheduled_drawing_pays_its_instalments_and_is_prepaid_with_a_new_schedule(rt_sqlite):
    rt = rt_sqlite
    s5 = STORY_ROWS[4]
    line_id = open_line(rt, s5, "diya_xinyong", approve=True)
    d = draw(rt, line_id, 1_000 * WAN, D0).drawing
    assert d.repayment_method == "按月付息到期还本" and d.schedule_version == 1
    with rt.uow.read() as s:
        plan = svc.schedule_of(s, svc.get_drawing(s, d.id))
    assert sum(i.principal_fen for i in plan) == 1_000 * WAN and plan[0].due_on == date(2026, 12, 29)
    with pytest.raises(Conflict) as e:  # nothing is due before the first instalment, and principal is prepaid, not repaid
        repay(rt, line_id, WAN, date(2026, 12, 1))
    assert "prepay" in e.value.message
    eod(rt, date(2026, 12, 28))  # the first instalment is raised for 12-29: its interest charged
    assert drawing(rt, d.id).interest_fen == plan[0].interest_fen
    with pytest.raises(Conflict) as e:  # something is due: pay it before prepaying
        prepay(rt, d.id, WAN, date(2026, 12, 29))
    assert e.value.field == "drawing_id"
    assert repay(rt, line_id, plan[0].interest_fen, date(2026, 12, 29)).allocations == {"interest": plan[0].interest_fen}
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as e:
        prepay(rt, d.id, 1_000 * WAN + 1, date(2027, 1, 8))
    assert e.value.field == "principal_fen" and str(1_000 * WAN) in e.value.allowed
    with pytest.raises(InvalidInput) as e:
        prepay(rt, d.id, 0, date(2027, 1, 8))
    assert e.value.field == "principal_fen"
    assert ledger_dump(rt) == before
    res = prepay(rt, d.id, 400 * WAN, date(2027, 1, 8))  # 10 days into the second period
    assert res.interest_fen == expected_interest(400 * WAN, 10, Fraction(plan[0].interest_fen * 12, 1_000 * WAN))  # its own days
    assert res.schedule_version == 2
    with rt.uow.read() as s:
        new = svc.schedule_of(s, svc.get_drawing(s, d.id))
    assert [i.due_on for i in new] == [i.due_on for i in plan]  # due dates kept
    assert sum(i.principal_fen for i in new if i.due_on > date(2027, 1, 8)) == 600 * WAN
    assert drawing(rt, d.id).principal_fen == 600 * WAN and line(rt, line_id).drawn_principal_fen == 600 * WAN
    check_ledger(rt)


def test_a_revolving_drawing_has_no_schedule_to_prepay(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    d = draw(rt, line_id, WAN, D0).drawing
    before = ledger_dump(rt)
    with pytest.raises(InvalidInput) as e:
        prepay(rt, d.id, WAN, D0 + timedelta(days=1))
    assert e.value.field == "drawing_id" and "随借随还" in e.value.message
    assert ledger_dump(rt) == before
