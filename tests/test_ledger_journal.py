"""Boundaries and error messages of `sandu.ledger.journal`.

Complements `test_ledger_engine.py`: account and key lengths on both sides of
their limits, account and kind patterns, posting counts, balancing, balances
that do not net to zero, and the exact message a user sees for each rejection.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandu.domain.errors import MAX_SHOWN_CHARS, InvalidInput, show
from sandu.ledger import journal as journal_module
from sandu.ledger.journal import (
    CHARGE_KINDS,
    INCOME_ACCOUNTS,
    LOAN_BUCKETS,
    MAX_POSTINGS,
    JournalEntry,
    Posting,
    balances,
    charge_entry,
    draw_entry,
    interest_posting_entry,
    loan_account,
    overdue_entry,
    repayment_entry,
    repayments_entry,
    trial_balance_ok,
)

START = date(2026, 1, 1)
TWO = (Posting("a", 1), Posting("b", -1))
ACCOUNT_ALLOWED = "[a-z_]+(:[A-Za-z0-9_-]+)*, at most 120 chars"
BUCKETS_ALLOWED = "penalty, compound, overdue_interest, overdue_principal, interest, principal"


def invalid(call: Callable[[], object], field: str, reason: str, allowed: str | None) -> InvalidInput:
    """Run `call`, expect InvalidInput, and check exactly what the user is told."""
    with pytest.raises(InvalidInput) as info:
        call()
    error = info.value
    assert (error.field, error.reason, error.allowed) == (field, reason, allowed)
    return error


# --------------------------------------------------------------------------
# Posting
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account",
    ["a", "loan:L-001:principal", "income:interest", "x_y:A_b-9", "a" * 120, "loan:" + "A" * 115, "_", "a:-"],
)
def test_well_formed_accounts(account: str) -> None:
    assert (Posting(account, -3).account, Posting(account, -3).amount_fen) == (account, -3)


@pytest.mark.parametrize(
    "account",
    ["", "a" * 121, "loan:" + "A" * 116, "Loan:x", "loan::x", "loan:", ":x", "loan:x y", "1loan", "loan-x:y", "loan:é"],
)
def test_malformed_accounts(account: str) -> None:
    invalid(lambda: Posting(account, 1), "account", f"malformed account {show(account)}", ACCOUNT_ALLOWED)


@pytest.mark.parametrize("account", [None, 5, b"loan"])
def test_account_must_be_text(account: object) -> None:
    invalid(lambda: Posting(account, 1), "account", f"malformed account {account!r}", ACCOUNT_ALLOWED)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [0, 1.0, True, False, "1", None])
def test_posting_amount_must_be_non_zero_int(amount: object) -> None:
    invalid(lambda: Posting("a", amount), "amount_fen", f"posting amount must be a non-zero int, got {amount!r}",  # type: ignore[arg-type]
            "int != 0 (debit > 0, credit < 0)")


# --------------------------------------------------------------------------
# JournalEntry header
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k", "k" * 200, "c:17:abc#interest"])
def test_idempotency_key_up_to_200_chars(key: str) -> None:
    assert JournalEntry(key, "manual", START, TWO).idempotency_key == key


@pytest.mark.parametrize("key", ["", "k" * 201, None, 7])
def test_idempotency_key_rejected(key: object) -> None:
    invalid(lambda: JournalEntry(key, "manual", START, TWO), "idempotency_key",  # type: ignore[arg-type]
            f"malformed idempotency key {show(key)}", "non-empty string of at most 200 chars")


@pytest.mark.parametrize("kind", ["draw", "manual_adjustment", "_", "x"])
def test_kind_accepted(kind: str) -> None:
    assert JournalEntry("k", kind, START, TWO).kind == kind


@pytest.mark.parametrize("kind", ["", "Draw", "draw-1", "draw ", "drawé", None, 5])
def test_kind_rejected(kind: object) -> None:
    invalid(lambda: JournalEntry("k", kind, START, TWO), "kind", f"malformed entry kind {kind!r}", "[a-z_]+")  # type: ignore[arg-type]


@pytest.mark.parametrize("when", [datetime(2026, 1, 1), "2026-01-01", None])
def test_effective_date_must_be_a_date(when: object) -> None:
    invalid(lambda: JournalEntry("k", "manual", when, TWO), "effective_date",  # type: ignore[arg-type]
            f"expected a date, got {when!r}", "datetime.date")


def test_memo() -> None:
    assert JournalEntry("k", "manual", START, TWO).memo == ""
    assert JournalEntry("k", "manual", START, TWO, memo="月末调整").memo == "月末调整"
    invalid(lambda: JournalEntry("k", "manual", START, TWO, memo=5), "memo", "memo must be a string, got int", None)  # type: ignore[arg-type]
    invalid(lambda: JournalEntry("k", "manual", START, TWO, memo=None), "memo", "memo must be a string, got NoneType", None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# JournalEntry postings
# --------------------------------------------------------------------------


@pytest.mark.parametrize("postings", ["ab", b"ab", 5, None])
def test_postings_must_be_a_collection(postings: object) -> None:
    invalid(lambda: JournalEntry("k", "manual", START, postings), "postings",  # type: ignore[arg-type]
            "postings must be a sequence of Posting", "tuple[Posting, ...]")


def test_every_posting_must_be_a_posting() -> None:
    invalid(lambda: JournalEntry("k", "manual", START, (Posting("a", 1), ("b", -1))), "postings",  # type: ignore[arg-type]
            "every posting must be a Posting", "tuple[Posting, ...]")


@pytest.mark.parametrize("count", [0, 1, MAX_POSTINGS + 1, MAX_POSTINGS + 2])
def test_posting_count_outside_2_to_64(count: int) -> None:
    postings = tuple(Posting("a", (-1) ** i) for i in range(count))  # the count is checked before the balance
    invalid(lambda: JournalEntry("k", "manual", START, postings), "postings",
            f"entry has {count} postings", f"2..{MAX_POSTINGS} postings")


@pytest.mark.parametrize("count", [2, 3, MAX_POSTINGS - 1, MAX_POSTINGS])
def test_posting_count_inside_2_to_64(count: int) -> None:
    postings = [Posting("a", 1) for _ in range(count - 1)] + [Posting("z", -(count - 1))]
    entry = JournalEntry("k", "manual", START, (p for p in postings))  # type: ignore[arg-type]
    assert entry.postings == tuple(postings)


@pytest.mark.parametrize(("last", "total"), [(-99, 1), (-101, -1), (-100 + 10**12, 10**12)])
def test_unbalanced_entry_names_the_difference(last: int, total: int) -> None:
    invalid(lambda: JournalEntry("k", "manual", START, (Posting("a", 100), Posting("b", last))), "postings",
            f"entry does not balance: sum is {total} fen", "sum of postings = 0")


# --------------------------------------------------------------------------
# balances
# --------------------------------------------------------------------------


def test_balances_are_signed_and_sorted() -> None:
    entries = [
        draw_entry("L2", 500, START, "d1"),
        draw_entry("L1", 300, START, "d2"),
        interest_posting_entry("L1", 7, START, "i1"),
        repayment_entry("L1", {"interest": 7, "principal": 100}, START, "r1"),
    ]
    totals = balances(entries)
    assert totals == {
        "clearing:disbursement": -800,
        "clearing:repayment": 107,
        "income:interest": -7,
        "loan:L1:interest": 0,
        "loan:L1:principal": 200,
        "loan:L2:principal": 500,
    }
    assert list(totals) == sorted(totals)
    assert trial_balance_ok(totals)
    assert balances(iter(entries)) == totals
    assert balances([]) == {}


def test_trial_balance_detects_any_imbalance() -> None:
    assert trial_balance_ok({})
    assert not trial_balance_ok({"a": 1})
    assert not trial_balance_ok({"a": 5, "b": -4})
    assert trial_balance_ok({"a": 5, "b": -5, "c": 0})


def test_balances_reject_non_entries() -> None:
    entry = draw_entry("L1", 5, START, "k")
    invalid(lambda: balances([entry, "x"]), "entries", "expected JournalEntry, got str", None)  # type: ignore[list-item]
    invalid(lambda: balances(5), "entries", "expected JournalEntry records, got int", None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# standard entries
# --------------------------------------------------------------------------


def test_standard_entry_headers() -> None:
    draw = draw_entry("L1", 5, date(2026, 2, 3), "k-draw")
    assert (draw.idempotency_key, draw.kind, draw.effective_date, draw.memo) == ("k-draw", "draw", date(2026, 2, 3), "")
    interest = interest_posting_entry("L1", 5, date(2026, 2, 20), "k-int")
    assert (interest.idempotency_key, interest.kind, interest.effective_date) == ("k-int", "interest", date(2026, 2, 20))
    repay = repayment_entry("L1", {"penalty": 1}, date(2026, 2, 21), "k-rep")
    assert (repay.idempotency_key, repay.kind, repay.effective_date) == ("k-rep", "repayment", date(2026, 2, 21))
    assert repay.postings == (Posting("clearing:repayment", 1), Posting("loan:L1:penalty", -1))


@pytest.mark.parametrize("amount", [0, -5, True, 1.0, None])
def test_standard_entries_need_a_positive_int(amount: object) -> None:
    reason = f"amount must be a positive int in fen, got {amount!r}"
    invalid(lambda: draw_entry("L1", amount, START, "k"), "amount_fen", reason, "int >= 1 fen")  # type: ignore[arg-type]
    invalid(lambda: interest_posting_entry("L1", amount, START, "k"), "amount_fen", reason, "int >= 1 fen")  # type: ignore[arg-type]
    invalid(lambda: repayment_entry("L1", {"interest": 3, "principal": amount}, START, "k"), "amount_fen", reason, "int >= 1 fen")


def test_smallest_standard_entries() -> None:
    assert draw_entry("L1", 1, START, "k").postings == (Posting("loan:L1:principal", 1), Posting("clearing:disbursement", -1))
    assert interest_posting_entry("L1", 1, START, "k").postings == (Posting("loan:L1:interest", 1), Posting("income:interest", -1))


def test_loan_account() -> None:
    assert [loan_account("A-b_9", b) for b in LOAN_BUCKETS] == [f"loan:A-b_9:{b}" for b in LOAN_BUCKETS]
    for line_id in ("", "L 1", "L:1", "L1\n", None, 7):
        invalid(lambda x=line_id: loan_account(x, "principal"), "line_id",  # type: ignore[misc]
                f"malformed credit line id {line_id!r}", "[A-Za-z0-9_-]+")
    for bucket in ("fees", "Principal", "", None):
        invalid(lambda b=bucket: loan_account("L1", b), "bucket", f"unknown bucket {bucket!r}", BUCKETS_ALLOWED)  # type: ignore[misc]
    invalid(lambda: draw_entry("L 1", 5, START, "k"), "line_id", "malformed credit line id 'L 1'", "[A-Za-z0-9_-]+")
    invalid(lambda: interest_posting_entry("L 1", 5, START, "k"), "line_id", "malformed credit line id 'L 1'", "[A-Za-z0-9_-]+")
    invalid(lambda: repayment_entry("L 1", {"principal": 5}, START, "k"), "line_id", "malformed credit line id 'L 1'",
            "[A-Za-z0-9_-]+")


def test_repayment_entry_rejections() -> None:
    needs = "a repayment needs at least one bucket"
    invalid(lambda: repayment_entry("L1", {}, START, "k"), "allocations", needs, BUCKETS_ALLOWED)
    invalid(lambda: repayment_entry("L1", [("principal", 5)], START, "k"), "allocations", needs, BUCKETS_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: repayment_entry("L1", None, START, "k"), "allocations", needs, BUCKETS_ALLOWED)  # type: ignore[arg-type]
    invalid(lambda: repayment_entry("L1", {"zz": 1, "principal": 5, "fees": 2}, START, "k"), "allocations",
            "unknown bucket(s) fees, zz", BUCKETS_ALLOWED)
    invalid(lambda: repayment_entry("L1", {3: 1}, START, "k"), "allocations", "unknown bucket(s) 3", BUCKETS_ALLOWED)  # type: ignore[dict-item]


@given(allocations=st.dictionaries(st.sampled_from(LOAN_BUCKETS), st.integers(1, 10**12), min_size=1))
def test_repayment_entry_credits_each_bucket_in_order(allocations: dict[str, int]) -> None:
    entry = repayment_entry("L1", allocations, START, "k")
    assert entry.postings[0] == Posting("clearing:repayment", sum(allocations.values()))
    assert list(entry.postings[1:]) == [Posting(f"loan:L1:{b}", -allocations[b]) for b in LOAN_BUCKETS if b in allocations]


# --------------------------------------------------------------------------
# errors never echo long input
# --------------------------------------------------------------------------


def test_errors_echo_at_most_a_short_part_of_bad_input() -> None:
    long_text = "x" * 10_000
    calls = [
        lambda: Posting(long_text, 1),
        lambda: Posting("a", long_text),
        lambda: JournalEntry(long_text, "manual", START, TWO),
        lambda: JournalEntry("k", long_text + "!", START, TWO),
        lambda: JournalEntry("k", "manual", long_text, TWO),
        lambda: draw_entry("L1", long_text, START, "k"),
        lambda: loan_account(long_text + "!", "principal"),
        lambda: loan_account("L1", long_text),
        lambda: repayment_entry("L1", {long_text: 1}, START, "k"),
    ]
    for call in calls:
        with pytest.raises(InvalidInput) as info:
            call()  # type: ignore[no-untyped-call]
        assert "x" * MAX_SHOWN_CHARS not in info.value.message, info.value.message


# --------------------------------------------------------------------------
# charge_entry, overdue_entry, repayments_entry: batch entries across loans
# --------------------------------------------------------------------------

OWNER_IDS = st.from_regex(r"[A-Za-z0-9_\-]{1,12}", fullmatch=True)
AMOUNT_ALLOWED = "int >= 1 fen"
MOVES_ALLOWED = "(principal, interest) fen, each >= 0, not both 0"


def test_the_new_constants() -> None:
    assert MAX_POSTINGS == 2001
    assert CHARGE_KINDS == ("interest", "penalty", "compound")
    assert INCOME_ACCOUNTS == {"interest": "income:interest", "penalty": "income:penalty", "compound": "income:compound"}
    assert LOAN_BUCKETS == ("penalty", "compound", "overdue_interest", "overdue_principal", "interest", "principal")
    assert set(CHARGE_KINDS) <= set(LOAN_BUCKETS)  # each kind is receivable in the bucket of its name
    assert loan_account("L1", "compound") == "loan:L1:compound"
    assert {"CHARGE_KINDS", "INCOME_ACCOUNTS", "charge_entry", "overdue_entry", "repayments_entry"} <= set(journal_module.__all__)


@pytest.mark.parametrize("kind", CHARGE_KINDS)
def test_charge_entry_debits_each_loan_and_credits_the_total_to_income(kind: str) -> None:
    entry = charge_entry(kind, {"L1-1": 5, "L2-3": 7, "L1-2": 1}, date(2026, 3, 20), f"eod:2026-03-20:{kind}")
    assert (entry.idempotency_key, entry.kind, entry.effective_date, entry.memo) == (
        f"eod:2026-03-20:{kind}", kind, date(2026, 3, 20), "")
    assert entry.postings == (
        Posting(f"loan:L1-1:{kind}", 5),
        Posting(f"loan:L2-3:{kind}", 7),
        Posting(f"loan:L1-2:{kind}", 1),  # loans in the mapping's order, not sorted
        Posting(f"income:{kind}", -13),
    )
    assert sum(p.amount_fen for p in entry.postings) == 0


def test_smallest_charge_entry() -> None:
    assert charge_entry("penalty", {"L1": 1}, START, "k").postings == (Posting("loan:L1:penalty", 1), Posting("income:penalty", -1))


@given(kind=st.sampled_from(CHARGE_KINDS), amounts=st.dictionaries(OWNER_IDS, st.integers(1, 10**15), min_size=1, max_size=30))
def test_charge_entry_balances_for_any_loans(kind: str, amounts: dict[str, int]) -> None:
    entry = charge_entry(kind, amounts, START, "k")
    assert list(entry.postings[:-1]) == [Posting(f"loan:{owner}:{kind}", fen) for owner, fen in amounts.items()]
    assert entry.postings[-1] == Posting(INCOME_ACCOUNTS[kind], -sum(amounts.values()))
    totals = balances([entry])
    assert trial_balance_ok(totals) and totals[f"income:{kind}"] == -sum(amounts.values())
    assert all(totals[f"loan:{owner}:{kind}"] == fen for owner, fen in amounts.items())


@pytest.mark.parametrize("kind", ["principal", "overdue_interest", "overdue_principal", "fees", "Interest", "", None, 1])
def test_charge_entry_refuses_other_kinds(kind: object) -> None:
    invalid(lambda: charge_entry(kind, {"L1": 5}, START, "k"), "kind",  # type: ignore[arg-type]
            f"unknown kind of interest {kind!r}", "interest, penalty, compound")


@pytest.mark.parametrize("amounts", [{}, None, [("L1", 5)], 5, "L1"])
def test_charge_entry_needs_a_mapping_of_at_least_one_loan(amounts: object) -> None:
    invalid(lambda: charge_entry("interest", amounts, START, "k"), "amounts",  # type: ignore[arg-type]
            "needs at least one loan", "a mapping of loan id to fen")


@pytest.mark.parametrize("amount", [0, -1, -5, True, False, 1.0, "5", None])
def test_charge_entry_refuses_an_amount_that_is_not_a_positive_int(amount: object) -> None:
    invalid(lambda: charge_entry("penalty", {"L1": 3, "L2": amount}, START, "k"), "amount_fen",  # type: ignore[dict-item]
            f"amount must be a positive int in fen, got {amount!r}", AMOUNT_ALLOWED)


def test_charge_entry_refuses_a_malformed_loan_id_and_a_bad_header() -> None:
    invalid(lambda: charge_entry("interest", {"L1": 3, "L 2": 4}, START, "k"), "line_id",
            "malformed credit line id 'L 2'", "[A-Za-z0-9_-]+")
    invalid(lambda: charge_entry("interest", {7: 3}, START, "k"), "line_id", "malformed credit line id 7", "[A-Za-z0-9_-]+")  # type: ignore[dict-item]
    invalid(lambda: charge_entry("interest", {"L1": 3}, START, ""), "idempotency_key",
            "malformed idempotency key ''", "non-empty string of at most 200 chars")
    invalid(lambda: charge_entry("interest", {"L1": 3}, datetime(2026, 1, 1), "k"), "effective_date",  # type: ignore[arg-type]
            "expected a date, got datetime.datetime(2026, 1, 1, 0, 0)", "datetime.date")


def test_charge_entry_to_2000_loans_is_the_largest_entry() -> None:
    amounts = {f"L{i}": i + 1 for i in range(MAX_POSTINGS - 1)}
    entry = charge_entry("interest", amounts, START, "k")
    assert len(entry.postings) == MAX_POSTINGS == 2001
    assert entry.postings[-1] == Posting("income:interest", -sum(range(1, MAX_POSTINGS)))
    amounts["one-more"] = 1
    invalid(lambda: charge_entry("interest", amounts, START, "k"), "postings",
            f"entry has {MAX_POSTINGS + 1} postings", f"2..{MAX_POSTINGS} postings")


# -- overdue_entry ------------------------------------------------------------


def test_overdue_entry_moves_principal_and_interest_to_their_overdue_buckets() -> None:
    entry = overdue_entry({"L1-1": (1000, 30), "L2-1": (0, 8), "L3-1": (500, 0)}, date(2026, 4, 21), "eod:overdue")
    assert (entry.idempotency_key, entry.kind, entry.effective_date) == ("eod:overdue", "overdue", date(2026, 4, 21))
    assert entry.postings == (
        Posting("loan:L1-1:overdue_principal", 1000),
        Posting("loan:L1-1:principal", -1000),
        Posting("loan:L1-1:overdue_interest", 30),
        Posting("loan:L1-1:interest", -30),
        Posting("loan:L2-1:overdue_interest", 8),  # the zero principal part is left out
        Posting("loan:L2-1:interest", -8),
        Posting("loan:L3-1:overdue_principal", 500),  # the zero interest part is left out
        Posting("loan:L3-1:principal", -500),
    )


@pytest.mark.parametrize(("pair", "postings"), [
    ((1, 0), (Posting("loan:L1:overdue_principal", 1), Posting("loan:L1:principal", -1))),
    ((0, 1), (Posting("loan:L1:overdue_interest", 1), Posting("loan:L1:interest", -1))),
])
def test_smallest_overdue_entries(pair: tuple[int, int], postings: tuple[Posting, ...]) -> None:
    assert overdue_entry({"L1": pair}, START, "k").postings == postings


@given(moves=st.dictionaries(
    OWNER_IDS, st.tuples(st.integers(0, 10**15), st.integers(0, 10**15)).filter(lambda p: p != (0, 0)), min_size=1, max_size=30))
def test_overdue_entry_balances_and_keeps_each_loans_total(moves: dict[str, tuple[int, int]]) -> None:
    entry = overdue_entry(moves, START, "k")
    totals = balances([entry])
    assert trial_balance_ok(totals)
    assert len(entry.postings) == 2 * sum(1 for pair in moves.values() for part in pair if part)
    for owner, (principal, interest) in moves.items():
        assert totals.get(f"loan:{owner}:overdue_principal", 0) == principal
        assert totals.get(f"loan:{owner}:principal", 0) == -principal
        assert totals.get(f"loan:{owner}:overdue_interest", 0) == interest
        assert totals.get(f"loan:{owner}:interest", 0) == -interest
    assert all(p.amount_fen != 0 for p in entry.postings)
    assert {a.split(":")[0] for a in totals} == {"loan"}  # nothing leaves the loans: no income, no clearing


@pytest.mark.parametrize("moves", [{}, None, [("L1", (1, 2))], 5])
def test_overdue_entry_needs_a_mapping_of_at_least_one_loan(moves: object) -> None:
    invalid(lambda: overdue_entry(moves, START, "k"), "moves",  # type: ignore[arg-type]
            "needs at least one loan", "a mapping of loan id to (principal, interest) fen")


@pytest.mark.parametrize("pair", [(0, 0), (-1, 5), (5, -1), (-1, 1), [1, 2], (1,), (1, 2, 3), (True, 1), (1, False),
                                  (1.0, 2), (1, "2"), None, 5, ()])
def test_overdue_entry_refuses_a_move_that_is_not_two_non_negative_ints(pair: object) -> None:
    invalid(lambda: overdue_entry({"L1": (1, 1), "L2": pair}, START, "k"), "moves",  # type: ignore[dict-item]
            f"loan L2 moves {pair!r}", MOVES_ALLOWED)


def test_overdue_entry_refuses_a_malformed_loan_id_and_names_a_long_one_shortly() -> None:
    invalid(lambda: overdue_entry({"L 1": (1, 0)}, START, "k"), "line_id", "malformed credit line id 'L 1'", "[A-Za-z0-9_-]+")
    error = invalid(lambda: overdue_entry({"L" * 500: (0, 0)}, START, "k"), "moves",
                    f"loan {'L' * (MAX_SHOWN_CHARS - 3)}... moves (0, 0)", MOVES_ALLOWED)
    assert "L" * MAX_SHOWN_CHARS not in error.message


def test_overdue_entry_posting_bound_on_both_sides() -> None:
    both = {f"L{i}": (2, 1) for i in range((MAX_POSTINGS - 1) // 4)}  # four postings each: 2000
    assert len(overdue_entry(both, START, "k").postings) == MAX_POSTINGS - 1
    one_more = {**both, "X": (0, 1)}
    invalid(lambda: overdue_entry(one_more, START, "k"), "postings", f"entry has {MAX_POSTINGS + 1} postings", f"2..{MAX_POSTINGS} postings")


# -- repayments_entry ---------------------------------------------------------


def test_repayments_entry_debits_the_total_and_credits_each_loans_buckets() -> None:
    allocations = {
        "L2-1": {"principal": 100, "penalty": 3, "compound": 1},
        "L1-1": {"overdue_principal": 40, "overdue_interest": 2, "interest": 9},
    }
    entry = repayments_entry(allocations, date(2026, 5, 6), "rep:77")
    assert (entry.idempotency_key, entry.kind, entry.effective_date) == ("rep:77", "repayment", date(2026, 5, 6))
    assert entry.postings == (
        Posting("clearing:repayment", 155),
        Posting("loan:L2-1:penalty", -3),  # loans in the mapping's order, buckets in LOAN_BUCKETS order
        Posting("loan:L2-1:compound", -1),
        Posting("loan:L2-1:principal", -100),
        Posting("loan:L1-1:overdue_interest", -2),
        Posting("loan:L1-1:overdue_principal", -40),
        Posting("loan:L1-1:interest", -9),
    )


def test_repayments_entry_of_one_loan_is_repayment_entry() -> None:
    buckets = {"interest": 7, "principal": 100, "compound": 2}
    assert repayments_entry({"L1": buckets}, START, "k") == repayment_entry("L1", buckets, START, "k")
    assert repayments_entry({"L1": {"compound": 1}}, START, "k").postings == (
        Posting("clearing:repayment", 1), Posting("loan:L1:compound", -1))


@given(allocations=st.dictionaries(
    OWNER_IDS, st.dictionaries(st.sampled_from(LOAN_BUCKETS), st.integers(1, 10**12), min_size=1), min_size=1, max_size=20))
def test_repayments_entry_balances_for_any_loans(allocations: dict[str, dict[str, int]]) -> None:
    entry = repayments_entry(allocations, START, "k")
    total = sum(sum(b.values()) for b in allocations.values())
    assert entry.postings[0] == Posting("clearing:repayment", total)
    assert list(entry.postings[1:]) == [
        Posting(f"loan:{owner}:{bucket}", -buckets[bucket])
        for owner, buckets in allocations.items() for bucket in LOAN_BUCKETS if bucket in buckets
    ]
    assert trial_balance_ok(balances([entry]))


@pytest.mark.parametrize("allocations", [{}, None, [("L1", {"principal": 5})], 5])
def test_repayments_entry_needs_a_mapping_of_at_least_one_loan(allocations: object) -> None:
    invalid(lambda: repayments_entry(allocations, START, "k"), "allocations",  # type: ignore[arg-type]
            "a repayment needs at least one loan", "a mapping of loan id to bucket amounts")


def test_repayments_entry_refusals_of_a_loans_buckets() -> None:
    ok = {"principal": 5}
    invalid(lambda: repayments_entry({"L1": ok, "L2": {}}, START, "k"), "allocations",
            "a repayment needs at least one bucket", BUCKETS_ALLOWED)
    invalid(lambda: repayments_entry({"L1": ok, "L2": None}, START, "k"), "allocations",  # type: ignore[dict-item]
            "a repayment needs at least one bucket", BUCKETS_ALLOWED)
    invalid(lambda: repayments_entry({"L1": ok, "L2": {"principal": 1, "fees": 2}}, START, "k"), "allocations",
            "unknown bucket(s) fees", BUCKETS_ALLOWED)
    invalid(lambda: repayments_entry({"L1": {"Compound": 1}}, START, "k"), "allocations", "unknown bucket(s) Compound", BUCKETS_ALLOWED)
    invalid(lambda: repayments_entry({"L 1": ok}, START, "k"), "line_id", "malformed credit line id 'L 1'", "[A-Za-z0-9_-]+")
    for amount in (0, -1, True, 1.0):
        invalid(lambda a=amount: repayments_entry({"L1": ok, "L2": {"compound": a}}, START, "k"), "amount_fen",  # type: ignore[misc]
                f"amount must be a positive int in fen, got {amount!r}", AMOUNT_ALLOWED)
    invalid(lambda: repayments_entry({"L1": ok}, START, "k" * 201), "idempotency_key",
            f"malformed idempotency key {show('k' * 201)}", "non-empty string of at most 200 chars")


def test_repayments_entry_posting_bound_on_both_sides() -> None:
    allocations = {f"L{i}": {"principal": 1} for i in range(MAX_POSTINGS - 1)}
    entry = repayments_entry(allocations, START, "k")
    assert len(entry.postings) == MAX_POSTINGS and entry.postings[0] == Posting("clearing:repayment", MAX_POSTINGS - 1)
    allocations["L0"] = {"principal": 1, "interest": 1}  # one more credit, no new loan
    invalid(lambda: repayments_entry(allocations, START, "k"), "postings",
            f"entry has {MAX_POSTINGS + 1} postings", f"2..{MAX_POSTINGS} postings")


def test_batch_entries_net_to_the_loans_balances() -> None:
    """A drawing, a day's interest, a due date missed, penalty and compound, then a repayment of everything."""
    entries = [
        draw_entry("L1-1", 100_000, START, "d1"),
        draw_entry("L1-2", 50_000, START, "d2"),
        charge_entry("interest", {"L1-1": 30, "L1-2": 15}, START, "i"),
        overdue_entry({"L1-1": (100_000, 30), "L1-2": (0, 15)}, START, "o"),
        charge_entry("penalty", {"L1-1": 50}, START, "p"),
        charge_entry("compound", {"L1-1": 1, "L1-2": 1}, START, "c"),
        repayments_entry({"L1-1": {"penalty": 50, "compound": 1, "overdue_interest": 30, "overdue_principal": 100_000},
                          "L1-2": {"compound": 1, "overdue_interest": 15, "principal": 50_000}}, START, "r"),
    ]
    totals = balances(entries)
    assert trial_balance_ok(totals)
    assert {a: v for a, v in totals.items() if a.startswith("loan:") and v} == {}
    assert totals["income:interest"] == -45 and totals["income:penalty"] == -50 and totals["income:compound"] == -2
    assert totals["clearing:repayment"] == 150_097 and totals["clearing:disbursement"] == -150_000


def test_batch_errors_echo_at_most_a_short_part_of_bad_input() -> None:
    long_text = "x" * 10_000
    calls = [
        lambda: charge_entry(long_text, {"L1": 1}, START, "k"),
        lambda: charge_entry("interest", {"L1": long_text}, START, "k"),
        lambda: charge_entry("interest", {long_text + "!": 1}, START, "k"),
        lambda: overdue_entry({"L1": (long_text, 1)}, START, "k"),
        lambda: overdue_entry({long_text: (0, 0)}, START, "k"),
        lambda: repayments_entry({"L1": {long_text: 1}}, START, "k"),
    ]
    for call in calls:
        with pytest.raises(InvalidInput) as info:
            call()  # type: ignore[no-untyped-call]
        assert "x" * MAX_SHOWN_CHARS not in info.value.message, info.value.message
