"""Tests of the pure ledger engine: interest accrual, journal, allocation."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain.errors import Conflict, InvalidInput
from sandu.ledger.allocation import DEFAULT_ORDER, allocate
from sandu.ledger.interest import (
    DailyAccrual,
    accrue,
    closing_principals,
    daily_interest_exact,
    interest_to_post_fen,
    penalty_rate,
    period_containing,
    period_interest_closed_form_fen,
    settlement_dates,
)
from sandu.ledger.journal import (
    LOAN_BUCKETS,
    MAX_POSTINGS,
    JournalEntry,
    Posting,
    balances,
    draw_entry,
    interest_posting_entry,
    loan_account,
    repayment_entry,
    trial_balance_ok,
)

D = Decimal
START = date(2026, 1, 1)


# --------------------------------------------------------------------------
# strategies and independent reference implementation
# --------------------------------------------------------------------------


@st.composite
def rates(draw: st.DrawFn) -> Decimal:
    """Decimal rates in 0.0001..0.24 with 4 to 6 decimal places."""
    places = draw(st.integers(4, 6))
    units = draw(st.integers(10 ** (places - 4), 24 * 10 ** (places - 2)))
    return Decimal(units).scaleb(-places)


bases = st.sampled_from([360, 365])


@st.composite
def event_sequences(draw: st.DrawFn, max_days: int = 120) -> tuple[list[tuple[date, int]], int]:
    """Shuffled (date, delta) events whose closing principal never goes negative."""
    days = draw(st.integers(1, max_days))
    raw = draw(st.lists(st.tuples(st.integers(0, days - 1), st.booleans(), st.integers(1, 10**10)), max_size=30))
    principal, events = 0, []
    for offset, is_draw, amount in sorted(raw, key=lambda r: r[0]):
        delta = amount if is_draw else -min(amount, principal)
        if delta:
            principal += delta
            events.append((START + timedelta(days=offset), delta))
    return draw(st.permutations(events)), days


def reference_closing(events: list[tuple[date, int]], start: date, days: int) -> list[int]:
    """Closing principal per day, by brute force."""
    return [sum(delta for when, delta in events if when <= start + timedelta(days=i)) for i in range(days)]


def round_half_up(x: Fraction) -> int:
    assert x >= 0
    return int((x + Fraction(1, 2)).__floor__())


# --------------------------------------------------------------------------
# interest: exactness properties
# --------------------------------------------------------------------------


@settings(max_examples=300)
@given(principal=st.integers(1, 10**12), rate=rates(), days=st.integers(1, 400), basis=bases)
def test_constant_principal_matches_closed_form(principal: int, rate: Decimal, days: int, basis: int) -> None:
    end = START + timedelta(days=days - 1)
    accruals = accrue([], START, end, rate, basis, opening_principal_fen=principal)
    assert len(accruals) == days
    expected = round_half_up(Fraction(principal) * Fraction(rate) * days / basis)
    assert interest_to_post_fen(accruals) == period_interest_closed_form_fen(principal, rate, days, basis) == expected


@settings(max_examples=200)
@given(seq=event_sequences(), rate=rates(), basis=bases)
def test_event_sequences_match_fraction_reference(
    seq: tuple[list[tuple[date, int]], int], rate: Decimal, basis: int
) -> None:
    events, days = seq
    end = START + timedelta(days=days - 1)
    closing = reference_closing(events, START, days)
    assert [p for _, p in closing_principals(events, START, end)] == closing
    expected = round_half_up(sum((Fraction(p) * Fraction(rate) / basis for p in closing), Fraction(0)))
    assert interest_to_post_fen(accrue(events, START, end, rate, basis)) == expected


@given(seq=event_sequences(max_days=60), rate=rates(), data=st.data())
def test_accrual_is_additive_across_split_periods(
    seq: tuple[list[tuple[date, int]], int], rate: Decimal, data: st.DataObject
) -> None:
    """Accruing in two calls (carrying the closing principal over) equals one call."""
    events, days = seq
    end = START + timedelta(days=days - 1)
    cut = START + timedelta(days=data.draw(st.integers(1, days)))  # first day of the second call
    first = accrue([e for e in events if e[0] < cut], START, cut - timedelta(days=1), rate)
    if cut > end:
        assert first == accrue(events, START, end, rate)
        return
    second = accrue([e for e in events if e[0] >= cut], cut, end, rate,
                    opening_principal_fen=first[-1].closing_principal_fen)
    assert first + second == accrue(events, START, end, rate)


def test_half_fen_boundaries_round_up_exactly() -> None:
    # 100 × 0.09 × 20 / 360 = 0.5 fen exactly.
    assert interest_to_post_fen(accrue([], START, START + timedelta(days=19), D("0.09"), 360, 100)) == 1
    # 25 × 0.1 × 73 / 365 = 0.5 fen, although each day's share does not terminate.
    accruals = accrue([], START, START + timedelta(days=72), D("0.1"), 365, 25)
    assert interest_to_post_fen(accruals) == 1
    assert sum(a.interest_fen_exact for a in accruals) != D("0.5")  # the 50-digit quotients alone drift
    assert period_interest_closed_form_fen(25, D("0.1"), 73, 365) == 1
    # Just below a half rounds down: 1 × 0.0001 × 1 / 360.
    assert period_interest_closed_form_fen(1, D("0.0001"), 1) == 0


def test_mixed_bases_sum_exactly() -> None:
    a360 = accrue([], START, START, D("0.36"), 360, 50)  # 0.05 fen
    a365 = accrue([], START, START, D("0.365"), 365, 1370)  # 1.37 fen
    assert interest_to_post_fen(a360 + a365) == 1  # 1.42 → 1
    assert interest_to_post_fen([]) == 0


# --------------------------------------------------------------------------
# interest: 算头不算尾
# --------------------------------------------------------------------------


def test_draw_and_full_repay_same_day_accrues_nothing() -> None:
    d = date(2026, 3, 5)
    accruals = accrue([(d, -1_000_000), (d, 1_000_000)], d, d + timedelta(days=3), D("0.0345"))
    assert all(a.closing_principal_fen == 0 and a.interest_fen_exact == 0 for a in accruals)
    assert interest_to_post_fen(accruals) == 0


def test_draw_day_accrues_repay_day_does_not() -> None:
    drawn, repaid = date(2026, 1, 10), date(2026, 1, 20)
    amount = 300_000_000  # 300万元
    events = [(drawn, amount), (repaid, -amount)]
    accruals = accrue(events, date(2026, 1, 1), date(2026, 1, 31), D("0.0345"), 360)
    by_day = {a.day: a for a in accruals}
    assert by_day[drawn].interest_fen_exact == D(amount) * D("0.0345") / 360 > 0
    assert by_day[repaid].interest_fen_exact == 0
    assert by_day[drawn - timedelta(days=1)].interest_fen_exact == 0
    assert sum(1 for a in accruals if a.closing_principal_fen) == 10
    assert interest_to_post_fen(accruals) == 287_500
    assert period_interest_closed_form_fen(amount, D("0.0345"), 10, 360) == 287_500


def test_daily_interest_exact_values() -> None:
    assert daily_interest_exact(360, D("0.1")) == D("0.1")
    with localcontext(prec=50):
        assert daily_interest_exact(1, D("0.1"), 365) == D("0.1") / 365
    accrual = accrue([], START, START, D("0.0345"), 360, 300_000_000)[0]
    assert accrual.numerator == D("10350000.0000")
    assert accrual == DailyAccrual(START, 300_000_000, D("0.0345"), 360, D("28750"))


def test_daily_accrual_rejects_inconsistent_value() -> None:
    with pytest.raises(AssertionError):
        DailyAccrual(START, 100, D("0.1"), 360, D("1"))


def test_closing_principals_orders_events_within_a_day() -> None:
    d = date(2026, 2, 1)
    result = closing_principals([(d + timedelta(days=1), -50), (d, 100), (d + timedelta(days=1), 20)],
                                d, d + timedelta(days=2), opening_principal_fen=5)
    assert result == [(d, 105), (d + timedelta(days=1), 75), (d + timedelta(days=2), 75)]
    # Events after `end` are ignored.
    assert closing_principals([(d + timedelta(days=9), 7)], d, d) == [(d, 0)]


def test_closing_principal_never_negative() -> None:
    with pytest.raises(AssertionError):
        closing_principals([(START, 10), (START + timedelta(days=1), -11)], START, START + timedelta(days=2))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"end": START - timedelta(days=1)}, "end"),
        ({"end": START + timedelta(days=3660)}, "end"),
        ({"events": [(START - timedelta(days=1), 10)]}, "events"),
        ({"events": [(START, 1.5)]}, "events"),
        ({"opening_principal_fen": -1}, "opening_principal_fen"),
    ],
)
def test_closing_principals_rejects_bad_input(kwargs: dict, field: str) -> None:
    args = {"events": [], "start": START, "end": START + timedelta(days=5)} | kwargs
    with pytest.raises(InvalidInput) as info:
        closing_principals(**args)
    assert info.value.field == field


def test_range_limit_is_inclusive() -> None:
    assert len(closing_principals([], START, START + timedelta(days=3659))) == 3660


@pytest.mark.parametrize(
    ("rate", "basis", "field"),
    [
        (0.0345, 360, "rate_annual"),
        (D("-0.01"), 360, "rate_annual"),
        (D("NaN"), 360, "rate_annual"),
        (D("0.0345"), 366, "basis_days"),
        (D("0.0345"), True, "basis_days"),
    ],
)
def test_accrue_rejects_bad_rate_or_basis(rate: object, basis: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        accrue([], START, START, rate, basis)  # type: ignore[arg-type]
    assert info.value.field == field


# --------------------------------------------------------------------------
# settlement calendar
# --------------------------------------------------------------------------


def test_settlement_dates_monthly_and_quarterly() -> None:
    assert settlement_dates(date(2026, 1, 1), date(2026, 4, 30), "monthly") == [
        date(2026, 1, 20), date(2026, 2, 20), date(2026, 3, 20), date(2026, 4, 20),
    ]
    assert settlement_dates(date(2026, 1, 20), date(2026, 2, 19), "monthly") == [date(2026, 1, 20)]
    assert settlement_dates(date(2026, 1, 1), date(2026, 12, 31), "quarterly") == [
        date(2026, 3, 20), date(2026, 6, 20), date(2026, 9, 20), date(2026, 12, 20),
    ]
    assert settlement_dates(date(2026, 1, 21), date(2026, 2, 19), "monthly") == []


@pytest.mark.parametrize(
    ("d", "frequency", "expected"),
    [
        (date(2026, 1, 21), "monthly", (date(2026, 1, 21), date(2026, 2, 20))),
        (date(2026, 1, 20), "monthly", (date(2025, 12, 21), date(2026, 1, 20))),
        (date(2026, 1, 1), "monthly", (date(2025, 12, 21), date(2026, 1, 20))),
        (date(2025, 12, 31), "monthly", (date(2025, 12, 21), date(2026, 1, 20))),
        (date(2026, 4, 1), "quarterly", (date(2026, 3, 21), date(2026, 6, 20))),
        (date(2026, 3, 20), "quarterly", (date(2025, 12, 21), date(2026, 3, 20))),
        (date(2026, 12, 21), "quarterly", (date(2026, 12, 21), date(2027, 3, 20))),
    ],
)
def test_period_containing_examples(d: date, frequency: str, expected: tuple[date, date]) -> None:
    assert period_containing(d, frequency) == expected


@given(
    d=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    frequency=st.sampled_from(["monthly", "quarterly"]),
    day=st.integers(1, 28),
)
def test_period_containing_properties(d: date, frequency: str, day: int) -> None:
    start, end = period_containing(d, frequency, day)
    assert start <= d <= end
    assert settlement_dates(start - timedelta(days=1), end, frequency, day) == [start - timedelta(days=1), end]
    assert period_containing(start, frequency, day) == period_containing(end, frequency, day) == (start, end)


def test_settlement_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput) as info:
        settlement_dates(START, START, "weekly")
    assert info.value.field == "frequency"
    with pytest.raises(InvalidInput) as info:
        period_containing(START, "monthly", day=31)
    assert info.value.field == "day"


# --------------------------------------------------------------------------
# penalty rate
# --------------------------------------------------------------------------


def test_penalty_rate() -> None:
    assert penalty_rate(D("0.0345"), D("0.5")) == D("0.05175")
    assert penalty_rate(D("0.04"), D("0.30")) == D("0.052")
    for bad in (D("0.29"), D("0.51"), 0.4):
        with pytest.raises(InvalidInput) as info:
            penalty_rate(D("0.04"), bad)  # type: ignore[arg-type]
        assert info.value.field == "uplift"
    with pytest.raises(InvalidInput) as info:
        penalty_rate(D("-0.04"), D("0.4"))
    assert info.value.field == "contract_rate"


# --------------------------------------------------------------------------
# journal
# --------------------------------------------------------------------------


def test_standard_entries_balance() -> None:
    d = date(2026, 1, 10)
    draw = draw_entry("L1", 300_000_000, d, "draw-1")
    assert draw.postings == (Posting("loan:L1:principal", 300_000_000), Posting("clearing:disbursement", -300_000_000))
    interest = interest_posting_entry("L1", 287_500, date(2026, 1, 20), "int-1")
    assert interest.postings == (Posting("loan:L1:interest", 287_500), Posting("income:interest", -287_500))
    repay = repayment_entry("L1", {"principal": 300_000_000, "interest": 287_500}, date(2026, 1, 20), "rep-1")
    assert repay.postings == (
        Posting("clearing:repayment", 300_287_500),
        Posting("loan:L1:interest", -287_500),
        Posting("loan:L1:principal", -300_000_000),
    )
    totals = balances([draw, interest, repay])
    assert totals["loan:L1:principal"] == totals["loan:L1:interest"] == 0
    assert trial_balance_ok(totals)


def test_repayment_entry_extra_buckets() -> None:
    allocations = {b: i + 1 for i, b in enumerate(LOAN_BUCKETS)}
    entry = repayment_entry("line-7", allocations, START, "k")
    assert [p.account for p in entry.postings[1:]] == [f"loan:line-7:{b}" for b in LOAN_BUCKETS]
    assert entry.postings[0].amount_fen == sum(allocations.values())
    assert set(LOAN_BUCKETS) == set(DEFAULT_ORDER)


def test_unbalanced_entry_raises() -> None:
    with pytest.raises(InvalidInput) as info:
        JournalEntry("k", "manual", START, (Posting("a:x", 100), Posting("b:y", -99)))
    assert info.value.field == "postings"
    assert info.value.reason == "entry does not balance: sum is 1 fen"
    assert info.value.allowed == "sum of postings = 0"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Posting("Loan:x", 1), "account"),
        (lambda: Posting("loan::x", 1), "account"),
        (lambda: Posting("a" * 121, 1), "account"),
        (lambda: Posting("loan:x", 0), "amount_fen"),
        (lambda: Posting("loan:x", 1.0), "amount_fen"),
        (lambda: JournalEntry("k", "manual", START, (Posting("a", 1),)), "postings"),
        (lambda: JournalEntry("k", "manual", START, tuple(Posting("a", (-1) ** i) for i in range(MAX_POSTINGS + 1))), "postings"),
        (lambda: JournalEntry("", "manual", START, (Posting("a", 1), Posting("b", -1))), "idempotency_key"),
        (lambda: JournalEntry("k" * 201, "manual", START, (Posting("a", 1), Posting("b", -1))), "idempotency_key"),
        (lambda: draw_entry("L1", 0, START, "k"), "amount_fen"),
        (lambda: draw_entry("L1", -5, START, "k"), "amount_fen"),
        (lambda: interest_posting_entry("L1", True, START, "k"), "amount_fen"),
        (lambda: repayment_entry("L1", {"principal": 0}, START, "k"), "amount_fen"),
        (lambda: repayment_entry("L1", {"fees": 1}, START, "k"), "allocations"),
        (lambda: repayment_entry("L1", {}, START, "k"), "allocations"),
        (lambda: draw_entry("L 1", 5, START, "k"), "line_id"),
        (lambda: loan_account("L1", "fees"), "bucket"),
    ],
)
def test_journal_rejects_malformed_input(build, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as info:
        build()
    assert info.value.field == field


def test_entry_accepts_the_most_postings_and_not_one_more() -> None:
    postings = [Posting("a", 1)] * (MAX_POSTINGS - 1) + [Posting("b", 1 - MAX_POSTINGS)]
    entry = JournalEntry("k", "manual", START, postings)  # type: ignore[arg-type]
    assert isinstance(entry.postings, tuple) and len(entry.postings) == MAX_POSTINGS
    with pytest.raises(InvalidInput, match="postings"):
        JournalEntry("k", "manual", START, [Posting("a", 1)] * MAX_POSTINGS + [Posting("b", -MAX_POSTINGS)])  # type: ignore[arg-type]


@st.composite
def entry_sets(draw: st.DrawFn) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    for i in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["draw", "interest", "repay", "manual"]))
        line = draw(st.sampled_from(["L1", "L2", "L-3"]))
        amount = draw(st.integers(1, 10**12))
        if kind == "draw":
            entries.append(draw_entry(line, amount, START, f"k{i}"))
        elif kind == "interest":
            entries.append(interest_posting_entry(line, amount, START, f"k{i}"))
        elif kind == "repay":
            buckets = draw(st.lists(st.sampled_from(LOAN_BUCKETS), min_size=1, unique=True))
            entries.append(repayment_entry(line, {b: draw(st.integers(1, 10**9)) for b in buckets}, START, f"k{i}"))
        else:
            amounts = draw(st.lists(st.integers(-(10**9), 10**9).filter(bool), min_size=1, max_size=10))
            if sum(amounts) == 0:
                continue
            postings = [Posting(f"manual:a{j}", a) for j, a in enumerate(amounts)]
            postings.append(Posting("manual:z", -sum(amounts)))
            entries.append(JournalEntry(f"k{i}", "manual", START, tuple(postings)))
    return entries


@given(entries=entry_sets())
def test_balances_always_sum_to_zero(entries: list[JournalEntry]) -> None:
    totals = balances(entries)
    assert trial_balance_ok(totals)
    assert sum(totals.values()) == 0
    assert set(totals) == {p.account for e in entries for p in e.postings}


# --------------------------------------------------------------------------
# allocation
# --------------------------------------------------------------------------


def test_allocate_respects_default_order() -> None:
    owed = {"principal": 1000, "interest": 50, "penalty": 7, "compound": 2, "overdue_interest": 20, "overdue_principal": 300}
    assert allocate(32, owed) == {"penalty": 7, "compound": 2, "overdue_interest": 20, "overdue_principal": 3}
    assert allocate(402, owed) == {"penalty": 7, "compound": 2, "overdue_interest": 20, "overdue_principal": 300, "interest": 50,
                                   "principal": 23}
    assert list(allocate(1379, owed)) == list(DEFAULT_ORDER)
    assert allocate(5, {"interest": 0, "principal": 10}) == {"principal": 5}
    assert allocate(5, {"principal": 10, "interest": 10}, order=("principal", "interest")) == {"principal": 5}


def test_allocate_overpay_raises_conflict() -> None:
    with pytest.raises(Conflict) as info:
        allocate(101, {"principal": 100})
    assert info.value.field == "amount_fen"
    assert info.value.reason == "repayment of 101 fen exceeds the 100 fen owed"
    assert info.value.allowed == "1..100 fen"
    with pytest.raises(Conflict):
        allocate(1, {})


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((0, {"principal": 10}), "amount_fen"),
        ((-1, {"principal": 10}), "amount_fen"),
        ((1.0, {"principal": 10}), "amount_fen"),
        ((1, {"fees": 10}), "outstanding"),
        ((1, {"principal": -1}), "outstanding"),
        ((1, {"principal": 10}, ("principal", "principal")), "order"),
    ],
)
def test_allocate_rejects_malformed_input(args: tuple, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        allocate(*args)
    assert info.value.field == field


@given(
    owed=st.fixed_dictionaries({}, optional={b: st.integers(0, 10**12) for b in DEFAULT_ORDER}),
    data=st.data(),
)
def test_allocate_properties(owed: dict[str, int], data: st.DataObject) -> None:
    total = sum(owed.values())
    if total == 0:
        return
    amount = data.draw(st.integers(1, total))
    result = allocate(amount, owed)
    assert sum(result.values()) == amount
    assert all(0 < paid <= owed[b] for b, paid in result.items())
    # Order: every bucket before the last one paid is paid in full.
    paid_order = [b for b in DEFAULT_ORDER if b in result]
    assert list(result) == paid_order
    for bucket in DEFAULT_ORDER[: DEFAULT_ORDER.index(paid_order[-1])]:
        assert result.get(bucket, 0) == owed.get(bucket, 0)
    with pytest.raises(Conflict):
        allocate(total + data.draw(st.integers(1, 10**6)), owed)
