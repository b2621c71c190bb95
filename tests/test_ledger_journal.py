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

START = date(2026, 1, 1)
TWO = (Posting("a", 1), Posting("b", -1))
ACCOUNT_ALLOWED = "[a-z_]+(:[A-Za-z0-9_-]+)*, at most 120 chars"
BUCKETS_ALLOWED = "penalty, overdue_interest, overdue_principal, interest, principal"


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
