"""Servicing on the double-entry ledger: draw, end-of-day accrual, repay.

Ledger invariants (balanced entries, principal = ledger balance, 0 ≤ drawn ≤
limit), exact interest to the fen, idempotency, rejected operations leaving
every row byte-identical, and concurrent draws never overdrawing the limit —
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Any

import pytest
from conftest import BUSINESS_DATE, FIXED_NOW, PII_KEY, actor, new_db_url, runtime_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from sandu.domain.errors import Conflict, InvalidInput, SanduError
from sandu.domain.project import Project
from sandu.ledger import journal as jl
from sandu.origination import service as orig
from sandu.servicing import service as svc
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m

S2 = STORY_ROWS[1]
from sandu.domain.money import FEN_PER_WAN as WAN

LIMIT = 416 * WAN
RATE = Fraction(38, 1000)  # the S2 经营快贷 rate, 3.80 %
D0 = BUSINESS_DATE  # 2026-11-29: line opened, first drawing
# Servicing calls happen "now", after every value date the tests use (the ledger refuses future dates).
SERVICE_NOW = datetime(2028, 6, 30, 12, 0, tzinfo=timezone.utc)
LEDGER_TABLES = (m.CreditLine, m.JournalEntryRow, m.PostingRow, m.Drawing, m.InterestAccrual)


# --- helpers ---------------------------------------------------------------------------


def open_line(rt, row: dict[str, Any] | None = None, product: str = "jingying_kuaidai") -> int:
    """A story enterprise's line opened on D0 by its legal representative: by default S2's
    auto-approved 经营快贷 line (416万 at 3.80 %, 360-day basis); one line per enterprise
    (its comprehensive limit is taken by it)."""
    row = row or S2
    rep = actor(rt, f"rep-{row['story'].lower()}")
    with rt.uow.write() as s:
        if s.scalar(select(m.Enterprise.id).where(m.Enterprise.uscc == row["uscc"])) is None:
            orig.register_enterprise(s, uscc=row["uscc"], name=row["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=row["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", signer=rep, valid_days=30, now=FIXED_NOW)
        d = orig.measure(s, uscc=row["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model)
        line = orig.accept_offer(s, decision_id=d.id, product=product, signer=rep, as_of=D0, now=FIXED_NOW)
        if row is S2:
            assert (line.limit_fen, line.rate_annual, line.basis_days) == (LIMIT, Decimal("0.0380"), 360)
        return line.id


def draw(rt, line_id: int, amount: Any, on: date = D0, key: str | None = None) -> svc.DrawResult:
    with rt.uow.write() as s:
        return svc.draw(s, line_id=line_id, amount_fen=amount, on_date=on, idempotency_key=key or f"draw:{line_id}:{amount}:{on}:{time.perf_counter_ns()}", now=SERVICE_NOW)


def repay(rt, line_id: int, amount: Any, on: date, key: str | None = None) -> svc.RepayResult:
    with rt.uow.write() as s:
        return svc.repay(s, line_id=line_id, amount_fen=amount, on_date=on, idempotency_key=key or f"repay:{line_id}:{amount}:{on}:{time.perf_counter_ns()}", now=SERVICE_NOW)


def eod(rt, day: date) -> dict[str, int]:
    with rt.uow.write() as s:
        return dataclasses.asdict(svc.run_eod(s, business_date=day, now=SERVICE_NOW))


def ledger_dump(rt) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the servicing tables, byte for byte (as stored)."""
    out = {}
    with rt.uow.write() as s:
        for model in LEDGER_TABLES:
            table = model.__table__
            out[table.name] = sorted((tuple(r) for r in s.execute(table.select()).all()), key=repr)
    return out


def balance(rt, account: str) -> int:
    with rt.uow.write() as s:
        return svc.account_balance(s, account)


def check_ledger(rt) -> None:
    """The invariants that must hold after any sequence of operations."""
    with rt.uow.write() as s:
        unbalanced = s.execute(
            select(m.PostingRow.entry_id, func.sum(m.PostingRow.amount_fen)).group_by(m.PostingRow.entry_id).having(func.sum(m.PostingRow.amount_fen) != 0)
        ).all()
        assert unbalanced == [], f"entries that do not balance: {unbalanced}"
        assert int(s.scalar(select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0)))) == 0
        lonely = s.scalar(
            select(func.count()).select_from(m.JournalEntryRow).where(~m.JournalEntryRow.id.in_(select(m.PostingRow.entry_id)))
        )
        assert lonely == 0, "journal entries without postings"
        for line in s.scalars(select(m.CreditLine)):
            principal = svc.account_balance(s, jl.loan_account(str(line.id), "principal"))
            assert principal == line.drawn_principal_fen, f"line {line.id}: ledger {principal} ≠ drawn {line.drawn_principal_fen}"
            assert 0 <= line.drawn_principal_fen <= line.limit_fen
            assert svc.account_balance(s, jl.loan_account(str(line.id), "interest")) >= 0
            drawn = s.scalar(select(func.coalesce(func.sum(m.Drawing.amount_fen), 0)).where(m.Drawing.line_id == line.id))
            repaid = -int(
                s.scalar(
                    select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0))
                    .join(m.JournalEntryRow, m.JournalEntryRow.id == m.PostingRow.entry_id)
                    .where(m.JournalEntryRow.kind == "repayment", m.PostingRow.account == jl.loan_account(str(line.id), "principal"))
                )
            )
            assert int(drawn) - repaid == line.drawn_principal_fen


def round_half_up(x: Fraction) -> int:
    assert x >= 0
    return floor(x + Fraction(1, 2))


def expected_interest(principal: int, days: int, rate: Fraction = RATE, basis: int = 360) -> int:
    return round_half_up(principal * rate * days / basis)


# --- the life of a drawing ---------------------------------------------------------------


@pytest.mark.parametrize("with_eod", [True, False], ids=["eod-every-day", "accrued-on-repay"])
def test_draw_accrue_repay_charges_exact_interest(rt, with_eod):
    line_id = open_line(rt)
    principal, days = 300 * WAN, 10
    result = draw(rt, line_id, principal, D0)
    assert not result.replayed and result.drawing.amount_fen == principal
    assert result.drawing.maturity_on == date(2027, 11, 29)  # 12 months, capped at the line's expiry
    if with_eod:
        for k in range(days):
            summary = eod(rt, D0 + timedelta(days=k))
            assert summary["days_accrued"] == 1 and summary["interest_posted_fen"] == 0  # no 20th in between
    repay_day = D0 + timedelta(days=days)  # interest runs D0 .. repay_day − 1 (算头不算尾)
    interest = expected_interest(principal, days)
    assert interest == 316_667  # 300万 × 3.8 % × 10 / 360 = 316,666.67 fen
    with rt.uow.write() as s:
        accruals = list(s.scalars(select(m.InterestAccrual).where(m.InterestAccrual.line_id == line_id).order_by(m.InterestAccrual.day)))
        if with_eod:
            assert [a.day for a in accruals] == [D0 + timedelta(days=k) for k in range(days)]
            assert all(a.closing_principal_fen == principal and a.posted_entry_id is None for a in accruals)
            # 31,666.666… fen a day, kept to 50 significant digits, never rounded to the fen
            assert all(abs(Fraction(a.interest_exact) - principal * RATE / 360) < Fraction(1, 10**40) for a in accruals)
        else:
            assert accruals == []
    res = repay(rt, line_id, principal + interest, repay_day)
    assert res.interest_posted_fen == interest
    assert res.allocations == {"interest": interest, "principal": principal}
    assert not res.replayed
    with rt.uow.write() as s:
        line = s.get(m.CreditLine, line_id)
        assert line.drawn_principal_fen == 0 and line.accrued_through == repay_day - timedelta(days=1)
        accruals = list(s.scalars(select(m.InterestAccrual).where(m.InterestAccrual.line_id == line_id)))
        assert len(accruals) == days and all(a.posted_entry_id is not None for a in accruals)
        view = svc.line_view(s, line_id, D0)
        assert view.available_fen == LIMIT and view.interest_posted_fen == 0 and view.interest_accrued_fen == 0
    assert balance(rt, jl.INTEREST_INCOME_ACCOUNT) == -interest
    assert balance(rt, jl.loan_account(str(line_id), "interest")) == 0
    assert balance(rt, jl.DISBURSEMENT_ACCOUNT) == -principal
    assert balance(rt, jl.REPAYMENT_ACCOUNT) == principal + interest
    check_ledger(rt)


def test_interest_is_posted_on_the_20th_and_the_rest_on_repayment(rt):
    line_id = open_line(rt)
    principal = 300 * WAN
    draw(rt, line_id, principal, D0)
    posted = {}
    day = D0
    while day <= date(2026, 12, 25):
        posted[day] = eod(rt, day)["interest_posted_fen"]
        day += timedelta(days=1)
    first = expected_interest(principal, 22)  # 11-29 .. 12-20
    assert {d: v for d, v in posted.items() if v} == {date(2026, 12, 20): first}
    assert balance(rt, jl.loan_account(str(line_id), "interest")) == first
    second = expected_interest(principal, 5)  # 12-21 .. 12-25, rounded on its own
    res = repay(rt, line_id, principal + first + second, date(2026, 12, 26))
    assert res.interest_posted_fen == second
    assert res.allocations == {"interest": first + second, "principal": principal}
    assert balance(rt, jl.INTEREST_INCOME_ACCOUNT) == -(first + second)
    check_ledger(rt)


def test_draw_and_full_repayment_on_the_same_day_accrue_nothing(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    res = repay(rt, line_id, 300 * WAN, D0)
    assert res.allocations == {"principal": 300 * WAN} and res.interest_posted_fen == 0
    for k in range(25):  # through a settlement day
        eod(rt, D0 + timedelta(days=k))
    with rt.uow.write() as s:
        exact = s.scalars(select(m.InterestAccrual.interest_exact).where(m.InterestAccrual.line_id == line_id)).all()
        assert sum(exact, Decimal(0)) == 0
        assert s.scalar(select(func.count()).select_from(m.JournalEntryRow).where(m.JournalEntryRow.kind == "interest")) == 0
    assert balance(rt, jl.INTEREST_INCOME_ACCOUNT) == 0
    # Nothing is owed: any further repayment is an overpayment.
    with pytest.raises(Conflict) as e:
        repay(rt, line_id, 1, D0 + timedelta(days=30))
    assert e.value.field == "amount_fen"
    check_ledger(rt)


def test_partial_repayment_pays_interest_first_then_principal(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    interest = expected_interest(300 * WAN, 3)
    res = repay(rt, line_id, interest + 1_000, D0 + timedelta(days=3))
    assert res.allocations == {"interest": interest, "principal": 1_000}
    # Then the principal is smaller from that day on.
    res = repay(rt, line_id, 299 * WAN, D0 + timedelta(days=5))
    rest = 300 * WAN - 1_000 - 299 * WAN
    interest2 = round_half_up((300 * WAN - 1_000) * RATE * 2 / 360)
    assert res.allocations == {"interest": interest2, "principal": 299 * WAN - interest2}
    with rt.uow.write() as s:
        assert s.get(m.CreditLine, line_id).drawn_principal_fen == rest + interest2
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
    # Exactly what is available is fine.
    draw(rt, line_id, LIMIT - 300 * WAN, D0 + timedelta(days=1))
    with rt.uow.write() as s:
        assert s.get(m.CreditLine, line_id).drawn_principal_fen == LIMIT
    check_ledger(rt)


def test_overpayment_is_refused_and_changes_nothing(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    owed = 300 * WAN + expected_interest(300 * WAN, 7)
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as e:
        repay(rt, line_id, owed + 1, D0 + timedelta(days=7))
    assert e.value.field == "amount_fen" and str(owed) in e.value.message
    assert ledger_dump(rt) == before  # not even the accruals of the refused repayment remain
    res = repay(rt, line_id, owed, D0 + timedelta(days=7))
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
            svc.draw(s, now=SERVICE_NOW, **args)
    assert type(e.value).__name__ == error and e.value.field == field
    assert ledger_dump(rt) == before


def test_no_drawing_or_repayment_dated_into_an_accrued_day(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, WAN, D0)
    eod(rt, D0 + timedelta(days=2))
    before = ledger_dump(rt)
    for fn in (draw, repay):
        with pytest.raises(Conflict) as e:
            fn(rt, line_id, WAN, D0 + timedelta(days=2))
        assert e.value.field == "on_date"
    assert ledger_dump(rt) == before


def test_drawing_is_blocked_while_settled_interest_is_unpaid(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 100 * WAN, D0)
    for k in range(22):  # through 12-20, the settlement day
        eod(rt, D0 + timedelta(days=k))
    interest = expected_interest(100 * WAN, 22)
    assert balance(rt, jl.loan_account(str(line_id), "interest")) == interest
    before = ledger_dump(rt)
    with pytest.raises(Conflict) as e:
        draw(rt, line_id, WAN, date(2026, 12, 21))
    assert e.value.field == "line_id" and "arrears" in e.value.message
    assert ledger_dump(rt) == before
    res = repay(rt, line_id, interest, date(2026, 12, 21))
    assert res.allocations == {"interest": interest}
    draw(rt, line_id, WAN, date(2026, 12, 21))
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
    # Same key, different request: refused, nothing changes.
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
    amount = 100 * WAN
    first = repay(rt, line_id, amount, D0 + timedelta(days=10), key="client-42:repay-1")
    before = ledger_dump(rt)
    again = repay(rt, line_id, amount, D0 + timedelta(days=10), key="client-42:repay-1")
    assert again.replayed and again.allocations == first.allocations
    assert ledger_dump(rt) == before
    with pytest.raises(Conflict) as e:
        repay(rt, line_id, amount + 1, D0 + timedelta(days=10), key="client-42:repay-1")
    assert e.value.field == "idempotency_key"
    assert ledger_dump(rt) == before


def test_replayed_repayment_reports_the_same_interest_as_the_original(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    first = repay(rt, line_id, 100 * WAN, D0 + timedelta(days=10), key="k-repay")
    again = repay(rt, line_id, 100 * WAN, D0 + timedelta(days=10), key="k-repay")
    assert first.interest_posted_fen == expected_interest(300 * WAN, 10)
    assert again.interest_posted_fen == first.interest_posted_fen


def test_end_of_day_twice_for_the_same_date_changes_nothing(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    for day in (D0, D0 + timedelta(days=1), date(2026, 12, 20)):  # incl. a settlement day with a posting
        first = eod(rt, day)
        assert first["days_accrued"] >= 1
        before = ledger_dump(rt)
        second = eod(rt, day)
        assert second["days_accrued"] == 0 and second["interest_posted_fen"] == 0
        assert ledger_dump(rt) == before
    # An older date after a newer one changes nothing either.
    before = ledger_dump(rt)
    eod(rt, D0 + timedelta(days=3))
    assert ledger_dump(rt) == before
    assert balance(rt, jl.loan_account(str(line_id), "interest")) == expected_interest(300 * WAN, 22)
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
    """A drawing dated D commits while end-of-day for D runs: D's closing principal must include it."""
    line_id = open_line(rt)
    draw_started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_draw() -> None:
        try:
            with rt.uow.write() as s:
                svc.draw(s, line_id=line_id, amount_fen=300 * WAN, on_date=D0, idempotency_key="race-draw", now=SERVICE_NOW)
                draw_started.set()
                release.wait(timeout=30)  # hold the transaction open while EOD starts
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
    with rt.uow.write() as s:
        line = s.get(m.CreditLine, line_id)
        acc = s.get(m.InterestAccrual, (line_id, D0))
        assert line.drawn_principal_fen == 300 * WAN
        assert line.accrued_through == D0
        assert acc is not None and acc.closing_principal_fen == 300 * WAN, "the day's accrual missed the drawing"
    # Repaying on D0+1 must charge the one day of interest.
    res = repay(rt, line_id, 300 * WAN + expected_interest(300 * WAN, 1), D0 + timedelta(days=1))
    assert res.interest_posted_fen == expected_interest(300 * WAN, 1)
    check_ledger(rt)


def test_concurrent_end_of_day_runs_for_one_date_post_once(rt):
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, D0)
    settle = date(2026, 12, 20)
    results, refused, crashed = _run_threads(rt, 4, lambda i: eod(rt, settle))
    assert crashed == [] and refused == [], [repr(c) for c in crashed] + [repr(e) for e in refused]
    assert sorted(r["interest_posted_fen"] for r in results) == [0, 0, 0, expected_interest(300 * WAN, 22)]
    assert balance(rt, jl.loan_account(str(line_id), "interest")) == expected_interest(300 * WAN, 22)
    check_ledger(rt)


# --- random sequences keep the invariants (model-based, SQLite) --------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["draw", "repay", "repay_all"]),
        st.integers(min_value=0, max_value=9),  # days after the previous operation
        st.integers(min_value=1, max_value=LIMIT + WAN),
    ),
    min_size=1,
    max_size=10,
)


class LineModel:
    """An independent model of one line: principal per day, interest in Fractions,
    posted (rounded half-up once) on every 20th and on repayment."""

    def __init__(self) -> None:
        self.principal = 0
        self.closing: dict[date, int] = {}
        self.accrued_through = D0 - timedelta(days=1)
        self.unposted = Fraction(0)
        self.postings: list[tuple[date, int]] = []
        self.paid = 0

    def closing_on(self, day: date) -> int:
        known = [d for d in self.closing if d <= day]
        return self.closing[max(known)] if known else 0

    def post(self, day: date) -> int:
        amount = round_half_up(self.unposted)
        if amount > 0:
            self.postings.append((day, amount))
            self.unposted = Fraction(0)
        return amount

    def catch_up(self, through: date) -> None:
        day = self.accrued_through + timedelta(days=1)
        while day <= through:
            self.unposted += Fraction(self.closing_on(day)) * RATE / 360
            if day.day == 20:
                self.post(day)
            day += timedelta(days=1)
        self.accrued_through = max(self.accrued_through, through)

    @property
    def interest_due(self) -> int:
        return sum(a for _, a in self.postings) - self.paid

    def arrears(self, on: date) -> int:
        last_20th = date(on.year, on.month, 20) if on.day > 20 else (on.replace(day=1) - timedelta(days=1)).replace(day=20)
        due = sum(a for d, a in self.postings if d <= last_20th)
        return max(0, due - self.paid)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_random_draws_and_repayments_keep_the_ledger_invariants(tmp_path, sqlite_template, ops):
    url = next(new_db_url("sqlite", tmp_path, False, str(sqlite_template)))  # a fresh store for every example
    rt = runtime_on(url)
    try:
        _random_ops(rt, ops)
    finally:
        rt.engine.dispose()


def _random_ops(rt, ops) -> None:
    line_id = open_line(rt)
    model = LineModel()
    on = D0
    for n, (kind, gap, amount) in enumerate(ops):
        on += timedelta(days=gap)
        key = f"hyp-{line_id}-{n}"
        after = copy.deepcopy(model)  # what the model becomes if the operation succeeds
        after.catch_up(on - timedelta(days=1))
        if kind == "draw":
            ok = amount <= LIMIT - model.principal and after.arrears(on) == 0
            before = None if ok else ledger_dump(rt)
            try:
                draw(rt, line_id, amount, on, key=key)
            except Conflict:
                assert not ok, f"draw of {amount} on {on} refused with {model.principal} drawn"
                assert ledger_dump(rt) == before
                continue
            assert ok, f"draw of {amount} on {on} accepted (drawn {model.principal}, arrears {after.arrears(on)})"
            after.principal += amount
        else:
            owed = after.interest_due + round_half_up(after.unposted) + after.principal
            if kind == "repay_all":
                amount = max(owed, 1)
            if amount > owed:
                before = ledger_dump(rt)
                with pytest.raises(Conflict):
                    repay(rt, line_id, amount, on, key=key)
                assert ledger_dump(rt) == before
                continue
            res = repay(rt, line_id, amount, on, key=key)
            assert res.interest_posted_fen == after.post(on)
            to_interest = min(amount, after.interest_due)
            to_principal = amount - to_interest
            assert res.allocations == {k: v for k, v in (("interest", to_interest), ("principal", to_principal)) if v}
            after.paid += to_interest
            after.principal -= to_principal
        after.closing[on] = after.principal
        model = after
        with rt.uow.write() as s:
            line = s.get(m.CreditLine, line_id)
            assert line.drawn_principal_fen == model.principal
            assert 0 <= line.drawn_principal_fen <= line.limit_fen
            assert svc.account_balance(s, jl.loan_account(str(line_id), "interest")) == model.interest_due
    check_ledger(rt)


def test_unpaid_interest_of_the_current_period_does_not_block_drawing(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 100 * WAN, D0)
    for k in range(22):  # through 12-20: the first period's interest is settled
        eod(rt, D0 + timedelta(days=k))
    settled = expected_interest(100 * WAN, 22)
    repay(rt, line_id, settled, date(2026, 12, 21))  # paid in full: nothing in arrears
    assert balance(rt, jl.loan_account(str(line_id), "interest")) == 0
    # A 1-fen repayment on 01-05 posts the interest of 12-21 .. 01-04 (due on 01-20) and pays 1 fen of it.
    res = repay(rt, line_id, 1, date(2027, 1, 5))
    assert res.interest_posted_fen == expected_interest(100 * WAN, 15)
    assert balance(rt, jl.loan_account(str(line_id), "interest")) == expected_interest(100 * WAN, 15) - 1
    # That interest is not due before the 20th: drawing on 01-06 must be allowed.
    result = draw(rt, line_id, WAN, date(2027, 1, 6))
    assert result.drawing.amount_fen == WAN
    check_ledger(rt)


# --- one comprehensive limit per enterprise ---------------------------------------------------


def _s1_lines(rt) -> tuple[int, int, str]:
    """S1's two lines (project loan 9,520万 and 科创信用额度 2,420万 = its comprehensive limit),
    reviewed by the 龙湾 officer, approved by the 龙湾 approver, signed by S1's legal representative."""
    s1 = STORY_ROWS[0]
    rep, officer, approver = actor(rt, "rep-s1"), actor(rt, "officer-longwan"), actor(rt, "approver-longwan")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=s1["uscc"], name=s1["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=s1["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", signer=rep, valid_days=30, now=FIXED_NOW)
        d = orig.measure(s, uscc=s1["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model,
                         project=Project("年产2.7万吨紧固件建设项目", 13_600 * WAN, 1_800 * WAN, 7))
        lines = []
        for product in ("project_loan", "keji_xinyong"):
            orig.review_offer(s, decision_id=d.id, product=product, reviewer=officer, opinion="同意", now=FIXED_NOW)
            orig.approve_offer(s, decision_id=d.id, product=product, approver=approver, now=FIXED_NOW)
            lines.append(orig.accept_offer(s, decision_id=d.id, product=product, signer=rep, as_of=D0, now=FIXED_NOW).id)
        assert d.comprehensive_limit_fen == 11_940 * WAN
        return lines[0], lines[1], c.id


def test_a_new_decision_supersedes_the_last_and_its_offers_can_no_longer_be_signed(rt_sqlite):
    rt = rt_sqlite
    rep = actor(rt, "rep-s2")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", signer=rep, valid_days=30, now=FIXED_NOW)
        old = orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model).id
        new = orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model).id
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
        third = orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model).id
    with pytest.raises(Conflict) as info:
        with rt.uow.write() as s:
            orig.accept_offer(s, decision_id=third, product="jingying_kuaidai", signer=rep, as_of=D0, now=FIXED_NOW)
    assert info.value.field == "product" and "at most 0 fen" in info.value.allowed


def test_the_sum_of_an_enterprises_lines_and_of_its_drawn_principal_stay_within_its_comprehensive_limit(rt_sqlite):
    rt = rt_sqlite
    project, credit, consent = _s1_lines(rt)
    draw(rt, project, 3_000 * WAN, D0)
    # A newer decision without the project: the comprehensive limit falls to the credit line alone (2,420万),
    # below what is drawn — so nothing more may be drawn on either line, while repayments still work.
    with rt.uow.write() as s:
        d = orig.measure(s, uscc=STORY_ROWS[0]["uscc"], consent_id=consent, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model)
        assert d.comprehensive_limit_fen == 2_420 * WAN
    for line in (project, credit):
        before = ledger_dump(rt)
        with pytest.raises(Conflict) as info:
            draw(rt, line, WAN, D0)
        assert info.value.field == "amount_fen" and "comprehensive limit: 0 fen left" in info.value.message
        assert ledger_dump(rt) == before
    repay(rt, project, 1_000 * WAN, D0)
    # 3,000万 − 1,000万 = 2,000万 drawn: 420万 of headroom, on any of the enterprise's lines
    draw(rt, credit, 420 * WAN, D0)
    with pytest.raises(Conflict):
        draw(rt, credit, 1, D0)
    check_ledger(rt)


def test_concurrent_draws_on_two_lines_never_take_the_enterprise_above_its_limit(rt):
    project, credit, consent = _s1_lines(rt)
    with rt.uow.write() as s:
        orig.measure(s, uscc=STORY_ROWS[0]["uscc"], consent_id=consent, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model)  # limit 2,420万
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
    assert sum(results) == 2_420 * WAN // amount == 24  # exactly what the limit allows, of 200 tries
    with rt.uow.read() as s:
        drawn = s.scalar(select(func.sum(m.CreditLine.drawn_principal_fen)).where(m.CreditLine.id.in_([project, credit])))
    assert drawn == 24 * amount
    check_ledger(rt)
