"""Money as integer fen (分), interest rates as ``Decimal``. Never ``float``.

1 元 = 100 fen, 1 万元 = 1,000,000 fen, 1 亿元 = 10,000,000,000 fen.

* Amounts are plain ``int`` fen everywhere in the domain. :func:`require_fen`
  guards boundaries; :func:`yuan_to_fen` / :func:`wan_to_fen` convert user input
  exactly, rejecting floats and anything finer than one fen.
* Conversions accept a sign; positivity is the job of :func:`require_fen`.
* Formatting rounds ``ROUND_HALF_UP`` for display only; the stored amount never
  changes.
* Rates are fractions (``Decimal("0.0345")`` = 3.45 % a year), within 0..1.

Every bad input raises :class:`~sandu.domain.errors.InvalidInput` naming the field.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, localcontext

from sandu.domain.errors import InvalidInput, show

__all__ = [
    "FEN_PER_YUAN",
    "FEN_PER_WAN",
    "FEN_PER_YI",
    "MAX_AMOUNT_FEN",
    "require_fen",
    "yuan_to_fen",
    "wan_to_fen",
    "format_yuan",
    "format_wan",
    "format_capital",
    "format_cn",
    "round_half_up_fen",
    "parse_rate",
    "format_rate_pct",
    "bp",
]

FEN_PER_YUAN = 100
FEN_PER_WAN = 1_000_000
FEN_PER_YI = 10_000_000_000
# The largest amount sandu accepts anywhere (10 trillion yuan): far above any credit line,
# far below a signed 64-bit column. Requests, engines and the store share this one bound.
MAX_AMOUNT_FEN = 10**15

_FEN_EXP_YUAN = 2  # fen = yuan * 10**2
_FEN_EXP_WAN = 6  # fen = wan * 10**6
_MAX_FEN_DIGITS = 30  # sanity bound on any converted amount (≈ 10**28 yuan)
_MAX_TEXT_LENGTH = 40
_MAX_PLACES = 10
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_PLAIN_RATE = re.compile(r"[0-9]+(?:\.[0-9]+)?%?")


# ------------------------------------------------------------------- helpers


def _is_int(value: object) -> bool:
    """True for ``int`` values but not ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def _require_int(value: object, field: str, allowed: str) -> int:
    """Return ``value`` if it is an ``int`` (not ``bool``); raise otherwise."""
    if not _is_int(value):
        raise InvalidInput(field, f"must be an integer, got {show(value)}", allowed)
    return value  # type: ignore[return-value]


def _require_finite_decimal(value: object, field: str, allowed: str) -> Decimal:
    """Return ``value`` if it is a finite ``Decimal``; raise otherwise."""
    if not isinstance(value, Decimal):
        raise InvalidInput(field, f"must be a Decimal, got {show(value)}", allowed)
    if not value.is_finite():
        raise InvalidInput(field, f"must be a finite number, got {value}", allowed)
    return value


def _require_places(places: object) -> int:
    """Validate a number of decimal places for display."""
    allowed = f"an integer 0..{_MAX_PLACES}"
    count = _require_int(places, "places", allowed)
    if not 0 <= count <= _MAX_PLACES:
        raise InvalidInput("places", f"must be between 0 and {_MAX_PLACES}, got {count}", allowed)
    return count


def _reject_float(value: object, field: str, allowed: str) -> None:
    """Floats are never accepted for money or rates: they are inexact."""
    if isinstance(value, float):
        raise InvalidInput(
            field, f"floats are not accepted (inexact), got {show(value)}; pass a string or Decimal", allowed
        )


# ---------------------------------------------------------------- require_fen


def require_fen(
    value: object, *, field: str = "amount_fen", allow_zero: bool = False, max_fen: int | None = None
) -> int:
    """Return ``value`` if it is an ``int`` amount of fen within bounds; raise otherwise.

    Only ``int`` is accepted: not ``bool``, ``float`` (even ``3.0``), ``Decimal`` or ``str``.
    The amount must be positive (or zero if ``allow_zero``) and at most ``max_fen``.
    """
    allowed = _fen_allowed(allow_zero, max_fen)
    if not _is_int(value):
        raise InvalidInput(field, f"must be a whole number of fen (integer), got {show(value)}", allowed)
    amount: int = value  # type: ignore[assignment]
    if amount < 0 or (amount == 0 and not allow_zero):
        word = "non-negative" if allow_zero else "positive"
        raise InvalidInput(field, f"must be {word}, got {amount}", allowed)
    if max_fen is not None and amount > max_fen:
        raise InvalidInput(field, f"must be at most {max_fen} fen ({format_yuan(max_fen)}), got {amount}", allowed)
    return amount


def _fen_allowed(allow_zero: bool, max_fen: int | None) -> str:
    """Describe the accepted fen range for error messages."""
    low = "0" if allow_zero else "1"
    high = f"..{max_fen}" if max_fen is not None else " or more"
    return f"integer fen {low}{high}"


# ---------------------------------------------------------------- conversions


def _parse_plain_number(text: str, field: str, allowed: str) -> Decimal:
    """Parse a plain decimal string such as ``"300.50"`` or ``"-12"`` exactly."""
    if len(text) > _MAX_TEXT_LENGTH:
        raise InvalidInput(field, f"is too long ({len(text)} characters)", allowed)
    if "," in text or "，" in text:
        raise InvalidInput(field, f"thousands separators (',') are not accepted, got {show(text)}", allowed)
    if text != text.strip():
        raise InvalidInput(field, f"must not contain surrounding whitespace, got {show(text)}", allowed)
    if not _PLAIN_NUMBER.fullmatch(text):
        raise InvalidInput(field, f"must be a plain decimal number like '300.50', got {show(text)}", allowed)
    return Decimal(text)


def _to_decimal(value: object, field: str, allowed: str) -> Decimal:
    """Turn accepted money input (``str``, ``Decimal``, ``int``) into an exact ``Decimal``."""
    _reject_float(value, field, allowed)
    if isinstance(value, str):
        return _parse_plain_number(value, field, allowed)
    if _is_int(value):
        return Decimal(value)  # type: ignore[arg-type]
    if isinstance(value, Decimal):
        return _require_finite_decimal(value, field, allowed)
    raise InvalidInput(field, f"must be a string, Decimal or integer, got {show(value)}", allowed)


def _decimal_to_fen(amount: Decimal, scale_exp: int, shown: str, field: str, allowed: str) -> int:
    """Exactly convert ``amount`` (in units of ``10**scale_exp`` fen) to int fen.

    Uses integer arithmetic on the Decimal's digits, so no context rounding occurs.
    ``shown`` is the caller's input as it should appear in error messages.
    """
    sign, digits, exponent = amount.as_tuple()
    coefficient = int("".join(map(str, digits)))
    shift = int(exponent) + scale_exp
    if coefficient == 0:
        return 0
    if len(digits) + shift > _MAX_FEN_DIGITS:
        raise InvalidInput(field, f"is too large, got {shown}", allowed)
    fen: int
    if shift >= 0:
        fen = coefficient * 10**shift
    elif -shift > len(digits) or coefficient % 10**-shift:
        raise InvalidInput(field, f"has a fraction smaller than 1 fen (fractional fen), got {shown}", allowed)
    else:
        fen = coefficient // 10**-shift
    return -fen if sign else fen


def yuan_to_fen(value: str | Decimal | int, *, field: str = "amount_yuan") -> int:
    """Convert an amount in 元 to int fen exactly.

    Accepts ``str`` (plain: ``"300.50"``, ``"-12"``; no commas, spaces or symbols),
    ``Decimal`` or ``int``. Rejects floats and anything finer than 1 fen
    (more than 2 significant decimal places).
    """
    allowed = "a string like '300.50', a Decimal or an int, with at most 2 decimal places"
    amount = _to_decimal(value, field, allowed)
    return _decimal_to_fen(amount, _FEN_EXP_YUAN, show(value), field, allowed)


def wan_to_fen(value: str | Decimal | int, *, field: str = "amount_wan") -> int:
    """Convert an amount in 万元 to int fen exactly (1 万元 = 1,000,000 fen).

    Same input rules as :func:`yuan_to_fen`; at most 6 significant decimal places.
    """
    allowed = "a string like '300.5', a Decimal or an int, with at most 6 decimal places (1 fen)"
    amount = _to_decimal(value, field, allowed)
    return _decimal_to_fen(amount, _FEN_EXP_WAN, show(value), field, allowed)


def round_half_up_fen(amount: Decimal, *, field: str = "amount_fen") -> int:
    """Round a ``Decimal`` amount *in fen* to int fen, halves away from zero.

    ``Decimal("2.5")`` → 3, ``Decimal("-2.5")`` → -3, ``Decimal("2.4999")`` → 2.
    ``int`` input is returned unchanged; floats are rejected.
    """
    allowed = "a finite Decimal amount in fen"
    _reject_float(amount, field, allowed)
    if _is_int(amount):
        return amount  # type: ignore[return-value]
    value = _require_finite_decimal(amount, field, allowed)
    if value.adjusted() >= _MAX_FEN_DIGITS:
        raise InvalidInput(field, f"is too large, got {show(value)}", allowed)
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))  # exact, whatever the context precision


# ----------------------------------------------------------------- formatting


def _scaled(fen: int, unit_fen: int, places: int) -> str:
    """``fen / unit_fen`` rounded half-up to ``places``, with thousands separators."""
    with localcontext() as ctx:
        ctx.prec = len(str(abs(fen))) + places + 12
        value = (Decimal(fen) / unit_fen).quantize(Decimal(10) ** -places, rounding=ROUND_HALF_UP)
    if value == 0:
        value = abs(value)  # never show "-0.00"
    return f"{value:,.{places}f}"


def _require_fen_int(fen: object, field: str = "fen") -> int:
    """Formatting accepts only int fen (any sign)."""
    return _require_int(fen, field, "an integer amount of fen")


def format_yuan(fen: int) -> str:
    """Format int fen as ``"¥3,000,000.00"``; negatives as ``"-¥12.34"``."""
    amount = _require_fen_int(fen)
    sign = "-" if amount < 0 else ""
    yuan, cents = divmod(abs(amount), FEN_PER_YUAN)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def format_wan(fen: int, places: int = 2) -> str:
    """Format int fen in 万元 as ``"300.00万"`` (half-up, display only).

    Amounts of 1 亿 or more are still shown in 万 (``"12,000.00万"``).
    """
    return _scaled(_require_fen_int(fen), FEN_PER_WAN, _require_places(places)) + "万"


def format_cn(fen: int) -> str:
    """Format in the largest fitting Chinese unit: ``"1.20亿"``, ``"300.00万"``, ``"12.34元"``."""
    amount = _require_fen_int(fen)
    if abs(amount) >= FEN_PER_YI:
        return _scaled(amount, FEN_PER_YI, 2) + "亿"
    if abs(amount) >= FEN_PER_WAN:
        return _scaled(amount, FEN_PER_WAN, 2) + "万"
    return _scaled(amount, FEN_PER_YUAN, 2) + "元"


_CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_CAPITAL_PLACES = ((1000, "仟"), (100, "佰"), (10, "拾"), (1, ""))
_CAPITAL_GROUPS = ("", "万", "亿", "万亿")  # 4 digits each: up to 9,999万亿 元 (MAX_AMOUNT_FEN is 10 万亿元 fen)


def _capital_group(n: int) -> str:
    """1..9999 in capitals, zeros inside read once (壹仟零伍), trailing zeros silent (壹仟)."""
    out, zero = "", False
    for place, unit in _CAPITAL_PLACES:
        digit = n // place % 10
        if digit == 0:
            zero = zero or bool(out)
        else:
            out += ("零" if zero else "") + _CAPITAL_DIGITS[digit] + unit
            zero = False
    return out


def format_capital(fen: int) -> str:
    """人民币大写 of a non-negative amount, as a bank's forms write it: ``"叁佰万元整"``, ``"壹仟贰佰叁拾肆元伍角整"``,
    ``"壹佰元零伍分"``, ``"壹亿零壹万元整"``, ``"零元整"``. A group of zeros between non-zero digits reads 零 once."""
    amount = _require_fen_int(fen)
    if amount < 0:
        raise InvalidInput("fen", f"大写 is written for amounts of 0 or more, got {amount}", "0 or more fen")
    yuan, jiao, fen_digit = amount // 100, amount // 10 % 10, amount % 10
    groups = []
    rest = yuan
    while rest:
        groups.append(rest % 10_000)
        rest //= 10_000
    assert len(groups) <= len(_CAPITAL_GROUPS), "amounts are bounded by MAX_AMOUNT_FEN"
    out, gap = "", False
    for k in reversed(range(len(groups))):
        g = groups[k]
        if g == 0:
            gap = gap or bool(out)
            continue
        if out and (gap or g < 1000):
            out += "零"
        out += _capital_group(g) + _CAPITAL_GROUPS[k]
        gap = False
    if yuan:
        out += "元"
    if jiao == 0 and fen_digit == 0:
        return (out or "零元") + "整"
    if jiao:
        out += _CAPITAL_DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    return out + (_CAPITAL_DIGITS[fen_digit] + "分" if fen_digit else "整")


# ---------------------------------------------------------------------- rates


def _parse_rate_text(text: str, field: str, allowed: str) -> Decimal:
    """Parse ``"0.0345"`` or ``"3.45%"`` into a fraction."""
    if len(text) > _MAX_TEXT_LENGTH:
        raise InvalidInput(field, f"is too long ({len(text)} characters)", allowed)
    if text.startswith("-"):
        raise InvalidInput(field, f"must not be negative, got {show(text)}", allowed)
    if not _PLAIN_RATE.fullmatch(text):
        raise InvalidInput(field, f"must look like '0.0345' or '3.45%', got {show(text)}", allowed)
    if text.endswith("%"):
        return Decimal(text[:-1]).scaleb(-2)
    return Decimal(text)


def _require_rate_range(rate: Decimal, field: str, allowed: str) -> Decimal:
    """Raise unless ``0 <= rate <= 1``."""
    if rate < 0:
        raise InvalidInput(field, f"must not be negative, got {rate}", allowed)
    if rate > 1:
        raise InvalidInput(field, f"must be at most 1 (100%), got {rate}; write percentages as '3.45%'", allowed)
    return rate


def parse_rate(value: str | Decimal, *, field: str = "rate_annual") -> Decimal:
    """Parse a rate given as a fraction (``"0.0345"``) or percent (``"3.45%"``).

    Returns a ``Decimal`` fraction in 0..1. Rejects floats, ints, negatives and > 100 %.
    """
    allowed = "a fraction 0..1 like '0.0345', a percent like '3.45%', or a Decimal"
    _reject_float(value, field, allowed)
    if isinstance(value, str):
        rate = _parse_rate_text(value, field, allowed)
    elif isinstance(value, Decimal):
        rate = _require_finite_decimal(value, field, allowed)
    else:
        raise InvalidInput(field, f"must be a string or Decimal, got {show(value)}", allowed)
    return _require_rate_range(rate, field, allowed)


def format_rate_pct(rate: Decimal, places: int = 2) -> str:
    """Format a fractional rate as a percent: ``Decimal("0.0345")`` → ``"3.45%"`` (half-up)."""
    value = _require_finite_decimal(rate, "rate", "a finite Decimal fraction")
    count = _require_places(places)
    with localcontext() as ctx:
        ctx.prec = max(28, value.adjusted() + count + 12)
        pct = value.scaleb(2).quantize(Decimal(10) ** -count, rounding=ROUND_HALF_UP)
    if pct == 0:
        pct = abs(pct)
    return f"{pct:.{count}f}%"


def bp(n: int) -> Decimal:
    """Basis points as a fraction: ``bp(25)`` → ``Decimal("0.0025")``."""
    count = _require_int(n, "bp", "an integer number of basis points")
    return Decimal(count) / 10_000
