"""Boundaries and error messages of `sandu.ledger.allocation`.

Complements `test_ledger_engine.py`: partial buckets at their exact edges,
custom orders, the repayment equal to and one fen over what is owed, and the
exact message a user sees for each rejection.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandu.domain.errors import MAX_SHOWN_CHARS, Conflict, FieldError, InvalidInput
from sandu.ledger.allocation import DEFAULT_ORDER, allocate

OWED = {"penalty": 7, "overdue_interest": 20, "overdue_principal": 300, "interest": 50, "principal": 1000}
ORDER_ALLOWED = "penalty, compound, overdue_interest, overdue_principal, interest, principal"


def rejected(kind: type[FieldError], call: Callable[[], object], field: str, reason: str, allowed: str | None) -> None:
    with pytest.raises(kind) as info:
        call()
    assert type(info.value) is kind
    assert (info.value.field, info.value.reason, info.value.allowed) == (field, reason, allowed)


def test_default_order_is_the_documented_one() -> None:
    assert DEFAULT_ORDER == ("penalty", "compound", "overdue_interest", "overdue_principal", "interest", "principal")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (1, {"penalty": 1}),
        (6, {"penalty": 6}),
        (7, {"penalty": 7}),  # exactly the first bucket: nothing spills over
        (8, {"penalty": 7, "overdue_interest": 1}),
        (27, {"penalty": 7, "overdue_interest": 20}),
        (28, {"penalty": 7, "overdue_interest": 20, "overdue_principal": 1}),
        (327, {"penalty": 7, "overdue_interest": 20, "overdue_principal": 300}),
        (377, {"penalty": 7, "overdue_interest": 20, "overdue_principal": 300, "interest": 50}),
        (378, {"penalty": 7, "overdue_interest": 20, "overdue_principal": 300, "interest": 50, "principal": 1}),
        (1377, OWED),  # exactly everything owed
    ],
)
def test_partial_buckets_at_their_edges(amount: int, expected: dict[str, int]) -> None:
    result = allocate(amount, OWED)
    assert result == expected
    assert list(result) == [b for b in DEFAULT_ORDER if b in expected]


def test_custom_order_and_missing_buckets() -> None:
    order = ["principal", "interest"]
    assert allocate(12, {"interest": 5, "principal": 10}, order) == {"principal": 10, "interest": 2}
    assert list(allocate(12, {"interest": 5, "principal": 10}, order)) == ["principal", "interest"]
    assert allocate(3, {"interest": 5}, ("principal", "interest")) == {"interest": 3}
    # A generic order need not name the journal's buckets.
    assert allocate(4, {"b": 3, "a": 3}, ("b", "a")) == {"b": 3, "a": 1}
    # A bucket owing 0 is skipped, not listed with 0.
    assert allocate(5, {"penalty": 0, "interest": 0, "principal": 10}) == {"principal": 5}


def test_repayment_equal_to_or_over_what_is_owed() -> None:
    assert allocate(1, {"principal": 1}) == {"principal": 1}
    rejected(Conflict, lambda: allocate(2, {"principal": 1}), "amount_fen",
             "repayment of 2 fen exceeds the 1 fen owed", "1..1 fen")
    rejected(Conflict, lambda: allocate(1378, OWED), "amount_fen",
             "repayment of 1378 fen exceeds the 1377 fen owed", "1..1377 fen")
    rejected(Conflict, lambda: allocate(1, {}), "amount_fen", "repayment of 1 fen exceeds the 0 fen owed", "nothing is owed")
    rejected(Conflict, lambda: allocate(5, {"principal": 0}), "amount_fen",
             "repayment of 5 fen exceeds the 0 fen owed", "nothing is owed")


@pytest.mark.parametrize("amount", [0, -1, 1.0, True, "5", None])
def test_amount_must_be_a_positive_int(amount: object) -> None:
    rejected(InvalidInput, lambda: allocate(amount, {"principal": 10}), "amount_fen",  # type: ignore[arg-type]
             f"repayment must be a positive int in fen, got {amount!r}", "int >= 1 fen")


@pytest.mark.parametrize(
    "order",
    ["principal", {"principal", "interest"}, ("principal", ""), ("principal", 5), None, 5, iter(("principal",))],
)
def test_order_must_be_a_list_or_tuple_of_names(order: object) -> None:
    rejected(InvalidInput, lambda: allocate(1, {"principal": 10}, order), "order",  # type: ignore[arg-type]
             "order must be a list or tuple of bucket names", "e.g. DEFAULT_ORDER")


def test_order_must_not_repeat_a_bucket() -> None:
    rejected(InvalidInput, lambda: allocate(1, {"principal": 10}, ("principal", "interest", "principal")), "order",
             "order repeats a bucket: ('principal', 'interest', 'principal')", "each bucket at most once")


def test_outstanding_must_map_known_buckets_to_fen() -> None:
    rejected(InvalidInput, lambda: allocate(1, [("principal", 10)]), "outstanding",  # type: ignore[arg-type]
             "outstanding must map bucket names to fen", "Mapping[str, int]")
    rejected(InvalidInput, lambda: allocate(1, {"zz": 1, "principal": 10, "fees": 2}), "outstanding",
             "unknown bucket(s) fees, zz", ORDER_ALLOWED)
    rejected(InvalidInput, lambda: allocate(1, {"penalty": 10}, ("interest", "principal")), "outstanding",
             "unknown bucket(s) penalty", "interest, principal")
    rejected(InvalidInput, lambda: allocate(1, {None: 10}), "outstanding", "unknown bucket(s) None", ORDER_ALLOWED)  # type: ignore[dict-item]
    for owed in (-1, 1.0, True, None, "10"):
        rejected(InvalidInput, lambda o=owed: allocate(1, {"interest": 5, "principal": o}), "outstanding",  # type: ignore[misc]
                 f"principal owes {owed!r}", "int >= 0 fen")


def test_errors_echo_at_most_a_short_part_of_bad_input() -> None:
    long_text = "x" * 10_000
    calls = [
        lambda: allocate(long_text, {"principal": 1}),
        lambda: allocate(1, {long_text: 1}),
        lambda: allocate(1, {"principal": long_text}),
        lambda: allocate(1, {"principal": 1}, (long_text, long_text)),
    ]
    for call in calls:
        with pytest.raises(InvalidInput) as info:
            call()  # type: ignore[no-untyped-call]
        assert "x" * MAX_SHOWN_CHARS not in info.value.message, info.value.message


@given(
    owed=st.fixed_dictionaries({}, optional={b: st.integers(0, 10**12) for b in DEFAULT_ORDER}),
    order=st.permutations(DEFAULT_ORDER),
    data=st.data(),
)
def test_any_order_pays_each_bucket_in_full_before_the_next(owed: dict[str, int], order: list[str], data: st.DataObject) -> None:
    total = sum(owed.values())
    amount = data.draw(st.integers(1, max(total, 1)))
    if total == 0:
        with pytest.raises(Conflict):
            allocate(amount, owed, order)
        return
    result = allocate(amount, owed, order)
    assert sum(result.values()) == amount
    # Walk the order: full buckets, then at most one partial one, then nothing.
    remaining = amount
    for bucket in order:
        due = owed.get(bucket, 0)
        assert result.get(bucket, 0) == min(due, remaining)
        remaining -= result.get(bucket, 0)
    assert list(result) == [b for b in order if result.get(b)]
