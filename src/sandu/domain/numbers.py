"""Whole numbers as they arrive on the wire.

JSON has one number type: `202` and `202.0` are the same number, and JSON Schema
calls both an integer. sandu reads JSON numbers with a fraction as exact
`Decimal`s (never binary floats), so `whole_number` can accept `202.0` as 202
exactly and refuse `202.5` — and a float, which may already have lost digits,
is refused outright.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic_core import PydanticCustomError

from sandu.domain.errors import show

MAX_DIGITS = 30  # far above any amount sandu accepts; refuses 1e400 before it becomes an int


def whole_number(value: object) -> object:
    """`value` as an int when it is an exact whole number (an int, or a finite integral
    Decimal); other values pass through unchanged for the caller's type check, except
    floats and fractional decimals, which raise ValueError with the reason."""
    if isinstance(value, float):
        raise ValueError(f"must be a whole number written without a binary fraction, got {show(value)}")
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > MAX_DIGITS:
            raise ValueError(f"must be a whole number of at most {MAX_DIGITS} digits, got {show(value)}")
        if value != value.to_integral_value():
            raise ValueError(f"must be a whole number, got {show(value)}")
        return int(value)
    return value


def decimal_string(example: str) -> Callable[[Any], Decimal]:
    """A pydantic before-validator reading a config file's decimal string (``"0.30"``) into a finite
    `Decimal`; a number, a bool or text that is not a finite decimal is refused, quoting `example`."""

    def read(value: Any) -> Decimal:
        if not isinstance(value, str):
            raise PydanticCustomError("decimal_string", f'must be a decimal string like "{example}", got {{got}}', {"got": show(value)})
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise PydanticCustomError("decimal_string", "{got} is not a decimal number", {"got": show(value)}) from None
        if not number.is_finite():
            raise PydanticCustomError("decimal_string", "must be a finite decimal number, got {got}", {"got": show(value)})
        return number

    return read
