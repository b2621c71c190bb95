"""Allocation of a repayment across the buckets a borrower owes (还款冲抵顺序).

Pure: amounts are integer fen. A repayment pays each bucket in `order`, in
full up to its outstanding amount, before the next one. The default order
pays penalty interest first, then overdue interest, overdue principal,
current interest and finally current principal.

A repayment may not exceed the total owed (`Conflict`); callers decide what
to do with any surplus before calling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeGuard

from sandu.domain.errors import Conflict, InvalidInput, shorten, show
from sandu.ledger.journal import LOAN_BUCKETS

__all__ = ["DEFAULT_ORDER", "allocate"]

# The receivable buckets in DOMAIN.md's default allocation order; the journal lists them in the same order.
DEFAULT_ORDER: tuple[str, ...] = LOAN_BUCKETS


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_order(order: Sequence[str]) -> tuple[str, ...]:
    # A sequence, so that the order is the caller's: a set would pay buckets in hash order.
    if not isinstance(order, (list, tuple)) or not all(isinstance(b, str) and b for b in order):
        raise InvalidInput("order", "order must be a list or tuple of bucket names", "e.g. DEFAULT_ORDER")
    buckets = tuple(order)
    if len(set(buckets)) != len(buckets):
        raise InvalidInput("order", f"order repeats a bucket: {shorten(str(buckets))}", "each bucket at most once")
    return buckets


def _check_outstanding(outstanding: Mapping[str, int], order: tuple[str, ...]) -> None:
    if not isinstance(outstanding, Mapping):
        raise InvalidInput("outstanding", "outstanding must map bucket names to fen", "Mapping[str, int]")
    unknown = sorted(str(b) for b in outstanding if b not in order)
    if unknown:
        raise InvalidInput("outstanding", f"unknown bucket(s) {shorten(', '.join(unknown))}", ", ".join(order))
    for bucket, owed in outstanding.items():
        if not _is_int(owed) or owed < 0:
            raise InvalidInput("outstanding", f"{shorten(str(bucket))} owes {show(owed)}", "int >= 0 fen")


def allocate(
    amount_fen: int, outstanding: Mapping[str, int], order: Sequence[str] = DEFAULT_ORDER
) -> dict[str, int]:
    """Split `amount_fen` across buckets in `order`, each up to what it owes.

    Returns the non-zero allocations in `order` order; they sum to
    `amount_fen`. Buckets in `order` missing from `outstanding` owe nothing.
    """
    if not _is_int(amount_fen) or amount_fen <= 0:
        raise InvalidInput("amount_fen", f"repayment must be a positive int in fen, got {show(amount_fen)}",
                           "int >= 1 fen")
    buckets = _check_order(order)
    _check_outstanding(outstanding, buckets)
    total = sum(outstanding.values())
    if amount_fen > total:
        allowed = f"1..{total} fen" if total > 0 else "nothing is owed"
        raise Conflict("amount_fen", f"repayment of {amount_fen} fen exceeds the {total} fen owed", allowed)
    allocations: dict[str, int] = {}
    remaining = amount_fen
    for bucket in buckets:
        paid = min(remaining, outstanding.get(bucket, 0))
        if paid > 0:
            allocations[bucket] = paid
            remaining -= paid
    if sum(allocations.values()) != amount_fen:
        raise AssertionError(f"allocated {sum(allocations.values())} fen of {amount_fen}")
    return allocations
