"""Chinese identifier validation: USCC (GB 32100-2015) and resident ID (GB 11643-1999).

Every validator returns its input *unchanged* when valid and raises
:class:`~sandu.domain.errors.InvalidInput` otherwise. Input is never repaired:
no upper-casing, no stripping of whitespace. A lowercase letter is an error that
says letters must be uppercase.

Unified Social Credit Code (统一社会信用代码), 18 characters:

* position 1: registering department, a GB 32100 code: 1–9, A, N or Y
  (letters are department codes too),
* position 2: entity type,
* positions 3–8: administrative region code (GB/T 2260): 6 digits whose first two
  are a province-level code (`PROVINCE_CODES`), or ``100000`` for a national registration,
* positions 9–17: organisation code, never all zeros (a filler, not an issued code),
* position 18: check character, ``(31 - Σ Ci·Wi mod 31) mod 31``.

Resident identity card number (公民身份号码), 18 characters:

* positions 1–6: address code, whose first two digits are a province-level code,
* positions 7–14: birth date ``YYYYMMDD`` (a real date, year 1850–2100, and not
  after ``today`` when the caller says what day it is),
* positions 15–17: sequence (odd = male), 18: ISO 7064 MOD 11-2 check.

These plausibility rules are the scalar validators' alone; the vectorized forms
below compute check characters (and `uscc_validity` the per-character checks,
calling the scalar rules on each distinct department and region) and are proven
equal to the scalar functions.

Error messages never echo a whole resident ID (it is personal data); they name
single characters and positions only.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from sandu.domain.errors import InvalidInput

__all__ = [
    "ascii_rows",
    "digit_rows",
    "rows_to_str",
    "uscc_check_chars",
    "org_code_check_chars",
    "resident_id_check_chars",
    "USCC_ALPHABET",
    "USCC_LENGTH",
    "USCC_DEPARTMENTS",
    "PROVINCE_CODES",
    "uscc_check_char",
    "validate_uscc",
    "is_valid_uscc",
    "uscc_rows_validity",
    "uscc_validity",
    "make_uscc",
    "org_code_check_char",
    "resident_id_check_char",
    "validate_resident_id",
    "is_valid_resident_id",
    "make_resident_id",
    "mask_resident_id",
    "resident_id_gender",
    "resident_id_birth_date",
]

_DIGITS = "0123456789"

# --------------------------------------------------------------------------- USCC

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 USCC characters; a character's value is its index (0–30)."""

USCC_DEPARTMENTS = "123456789ANY"
"""Registering-department codes of GB 32100 (position 1 of a USCC)."""

PROVINCE_CODES = frozenset(
    ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
     "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
     "71", "81", "82"]
)
"""GB/T 2260 province-level codes: the first two digits of a region or address code."""

_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_LENGTH = 18
USCC_VERDICTS_KEPT = 4096  # valid-or-not verdicts of recent USCCs kept by validate_uscc (about 0.6 MB)
_USCC_REGION = slice(2, 8)
_USCC_ORG = slice(8, 17)
_NATIONAL_REGION = "100000"
_USCC_ALLOWED = (
    "18 characters from 0-9 and uppercase A-H J-N P-R T U W-Y (no I, O, Z, S, V); "
    "position 1 a registering department 1-9, A, N or Y; positions 3-8 a GB/T 2260 region "
    "(province-level first two digits) or 100000; positions 9-17 not all 0; "
    "last character the GB 32100 check character"
)
_PROVINCES_TEXT = "11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82"

# GB 11714 organisation code check (positions 9–17 of many USCCs).
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET = _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_VALUE = {ch: i for i, ch in enumerate(_ORG_ALPHABET)}

# ------------------------------------------------------------------ resident ID

_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK_CHARS = "10X98765432"
_RID_LENGTH = 18
_RID_MIN_YEAR = 1850
_RID_MAX_YEAR = 2100
_RID_ALLOWED = (
    "18 characters: 6-digit address starting with a province-level code, real birth date "
    "YYYYMMDD (year 1850-2100, not in the future), 3-digit sequence, check digit 0-9 or "
    "uppercase X (ISO 7064 MOD 11-2)"
)


# ------------------------------------------------------------------- helpers


def _require_str(value: object, field: str, allowed: str) -> str:
    """Return ``value`` if it is a ``str``; otherwise raise ``InvalidInput``."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}", allowed)
    return value


def _require_length(value: str, length: int, field: str, allowed: str) -> None:
    """Raise unless ``value`` has exactly ``length`` characters."""
    if len(value) != length:
        raise InvalidInput(field, f"must be {length} characters, got {len(value)}", allowed)


def _char_error(
    ch: str, position: int, charset: str, field: str, allowed: str, *, what: str
) -> InvalidInput:
    """Build the error for character ``ch`` (not in ``charset``) at 1-based ``position``."""
    if ch.islower() and ch.upper() in charset:
        reason = f"character {ch!r} at position {position} is lowercase; letters must be uppercase"
    else:
        reason = f"character {ch!r} at position {position} is not allowed; {what}"
    return InvalidInput(field, reason, allowed)


def _require_chars(
    value: str, charset: str, field: str, allowed: str, *, what: str, start: int = 1
) -> None:
    """Raise for the first character of ``value`` not in ``charset``.

    ``start`` is the 1-based position of ``value[0]`` in the whole identifier.
    """
    for offset, ch in enumerate(value):
        if ch not in charset:
            raise _char_error(ch, start + offset, charset, field, allowed, what=what)


# ---------------------------------------------------------------------- USCC


def uscc_check_char(first17: str, *, field: str = "uscc") -> str:
    """Return the GB 32100 check character for the first 17 USCC characters."""
    _require_str(first17, field, _USCC_ALLOWED)
    _require_length(first17, USCC_LENGTH - 1, field, "the first 17 characters of a USCC")
    _require_chars(first17, USCC_ALPHABET, field, _USCC_ALLOWED, what="see allowed characters")
    return _uscc_check(first17)


def _uscc_check(first17: str) -> str:
    """The check character of 17 alphabet characters (already validated)."""
    total = sum(_USCC_VALUE[first17[i]] * w for i, w in enumerate(_USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _require_uscc_region(value: str, field: str) -> None:
    """Raise unless positions 3–8 (the region code) are digits."""
    region_start = _USCC_REGION.start + 1
    _require_chars(
        value[_USCC_REGION], _DIGITS, field, _USCC_ALLOWED,
        what="the region code (positions 3-8) must be 6 digits", start=region_start,
    )


def _department_problem(department: str) -> str | None:
    """Why ``department`` (one alphabet character) is not a GB 32100 department code, or None."""
    if department in USCC_DEPARTMENTS:
        return None
    return f"registering department {department!r} is not a GB 32100 department code (1-9, A, N, Y)"


def _region_problem(region6: str) -> str | None:
    """Why six digits are not a plausible GB/T 2260 region, or None."""
    if region6 == _NATIONAL_REGION or region6[:2] in PROVINCE_CODES:
        return None
    return f"region code {region6!r} does not start with a province-level code ({_PROVINCES_TEXT}) and is not 100000"


def _org_problem(org9: str) -> str | None:
    """Why nine characters are not an organisation code, or None."""
    if org9.strip("0"):
        return None
    return "organisation code is all zeros (a filler, not an issued code)"


def validate_uscc(value: object, *, field: str = "uscc") -> str:
    """Return ``value`` unchanged if it is a valid USCC; raise ``InvalidInput`` otherwise.

    Checks length, alphabet, the department code, the region (digits, a province-level
    code or national), an organisation code that is not all zeros, and the check character.
    """
    if type(value) is str and len(value) == USCC_LENGTH and _valid_uscc_text(value):
        return value
    return _check_uscc(value, field)


@lru_cache(maxsize=USCC_VERDICTS_KEPT)
def _valid_uscc_text(text: str) -> bool:
    """Whether an 18-character string is a valid USCC, remembered for the most recent USCC_VERDICTS_KEPT: a measurement
    checks its enterprise's USCC some ten times (the path, each source's answer, the store's lookup)."""
    try:
        _check_uscc(text, "uscc")
    except InvalidInput:
        return False
    return True


def _check_uscc(value: object, field: str) -> str:
    """`validate_uscc`'s checks, in order, each raising ``InvalidInput`` on `field` with its reason."""
    text = _require_str(value, field, _USCC_ALLOWED)
    _require_length(text, USCC_LENGTH, field, _USCC_ALLOWED)
    _require_chars(text, USCC_ALPHABET, field, _USCC_ALLOWED, what="letters I, O, Z, S, V and symbols are not used")
    _require_uscc_region(text, field)
    problem = _department_problem(text[0]) or _region_problem(text[_USCC_REGION]) or _org_problem(text[_USCC_ORG])
    if problem is not None:
        raise InvalidInput(field, problem, _USCC_ALLOWED)
    expected = _uscc_check(text[:-1])
    if text[-1] != expected:
        raise InvalidInput(field, f"check character is {text[-1]!r}, expected {expected!r}", _USCC_ALLOWED)
    return text


def is_valid_uscc(value: object) -> bool:
    """Return whether ``value`` is a valid USCC (never raises)."""
    try:
        validate_uscc(value)
    except InvalidInput:
        return False
    return True


def _require_uscc_part(value: object, length: int, charset: str, field: str, what: str) -> str:
    """Validate one component passed to :func:`make_uscc`."""
    allowed = f"{length} {what}"
    text = _require_str(value, field, allowed)
    _require_length(text, length, field, allowed)
    _require_chars(text, charset, field, allowed, what=f"must be {what}")
    return text


def make_uscc(department: str, entity_type: str, region6: str, org9: str) -> str:
    """Build a valid USCC from its parts by appending the check character.

    Each part is validated; errors name the parameter (e.g. ``region6``).
    """
    uscc_chars = "USCC characters (0-9, A-H J-N P-R T U W-Y)"
    parts = (
        _require_uscc_part(department, 1, USCC_ALPHABET, "department", uscc_chars),
        _require_uscc_part(entity_type, 1, USCC_ALPHABET, "entity_type", uscc_chars),
        _require_uscc_part(region6, 6, _DIGITS, "region6", "digits"),
        _require_uscc_part(org9, 9, USCC_ALPHABET, "org9", uscc_chars),
    )
    for name, problem, allowed in (
        ("department", _department_problem(parts[0]), "1-9, A, N or Y"),
        ("region6", _region_problem(parts[2]), f"6 digits starting with {_PROVINCES_TEXT}, or 100000"),
        ("org9", _org_problem(parts[3]), f"9 {uscc_chars}, not all 0"),
    ):
        if problem is not None:
            raise InvalidInput(name, problem, allowed)
    first17 = "".join(parts)
    return first17 + uscc_check_char(first17)


def org_code_check_char(first8: str, *, field: str = "org_code") -> str:
    """Return the GB 11714 organisation-code check character for 8 characters.

    Values: digits 0–9, letters A–Z 10–35; ``C9 = 11 - (Σ Ci·Wi mod 11)`` with
    10 written as ``'X'`` and 11 as ``'0'``.
    """
    allowed = "8 characters from 0-9 and uppercase A-Z"
    _require_str(first8, field, allowed)
    _require_length(first8, len(_ORG_WEIGHTS), field, allowed)
    _require_chars(first8, _ORG_ALPHABET, field, allowed, what="must be 0-9 or A-Z")
    total = sum(_ORG_VALUE[first8[i]] * w for i, w in enumerate(_ORG_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


# --------------------------------------------------------------- resident ID


def resident_id_check_char(first17: str, *, field: str = "resident_id") -> str:
    """Return the ISO 7064 MOD 11-2 check character for the first 17 digits."""
    _require_str(first17, field, _RID_ALLOWED)
    _require_length(first17, _RID_LENGTH - 1, field, "the first 17 digits of a resident ID")
    _require_chars(first17, _DIGITS, field, _RID_ALLOWED, what="positions 1-17 must be digits")
    return _rid_check(first17)


def _rid_check(first17: str) -> str:
    """The MOD 11-2 check character of 17 digits (already validated)."""
    total = sum(int(first17[i]) * w for i, w in enumerate(_RID_WEIGHTS))
    return _RID_CHECK_CHARS[total % 11]


def _require_rid_check_position(ch: str, field: str) -> None:
    """Raise unless the 18th character is a digit or uppercase ``'X'``."""
    if ch == "x":
        raise InvalidInput(field, "check character must be uppercase 'X', got lowercase 'x'", _RID_ALLOWED)
    if ch not in _RID_CHECK_CHARS:  # the digits and X
        raise InvalidInput(
            field, f"character {ch!r} at position 18 is not allowed; must be a digit or 'X'", _RID_ALLOWED
        )


def _require_birth_year(year: int, field: str, allowed: str) -> None:
    """Raise unless ``year`` is within the accepted range."""
    if not _RID_MIN_YEAR <= year <= _RID_MAX_YEAR:
        raise InvalidInput(
            field, f"birth year {year} is outside {_RID_MIN_YEAR}..{_RID_MAX_YEAR}", allowed
        )


def _parse_birth_date(value: str, field: str) -> _dt.date:
    """Parse positions 7–14 (already known to be digits) as a real calendar date."""
    digits = value[6:14]
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    _require_birth_year(year, field, _RID_ALLOWED)
    try:
        return _dt.date(year, month, day)
    except ValueError:
        raise InvalidInput(
            field, "birth date (positions 7-14) is not a real calendar date", _RID_ALLOWED
        ) from None


def _require_today(today: object) -> _dt.date | None:
    """``today`` is None or a ``datetime.date`` (not a datetime): the caller's business date."""
    if today is not None and (not isinstance(today, _dt.date) or isinstance(today, _dt.datetime)):
        raise TypeError(f"today must be a datetime.date or None, got {type(today).__name__}")
    return today


def _require_province(address6: str, field: str, allowed: str) -> None:
    """Raise unless the first two digits of an address code are a province-level code."""
    if address6[:2] not in PROVINCE_CODES:
        raise InvalidInput(
            field, f"address code (positions 1-2) is not a GB/T 2260 province-level code ({_PROVINCES_TEXT})", allowed
        )


def validate_resident_id(value: object, *, field: str = "resident_id", today: _dt.date | None = None) -> str:
    """Return ``value`` unchanged if it is a valid resident ID; raise ``InvalidInput`` otherwise.

    With ``today`` (the business date), a birth date after it is refused too."""
    day = _require_today(today)
    text = _require_str(value, field, _RID_ALLOWED)
    _require_length(text, _RID_LENGTH, field, _RID_ALLOWED)
    _require_chars(text[:-1], _DIGITS, field, _RID_ALLOWED, what="positions 1-17 must be digits")
    _require_rid_check_position(text[-1], field)
    _require_province(text, field, _RID_ALLOWED)
    born = _parse_birth_date(text, field)
    if day is not None and born > day:
        raise InvalidInput(field, f"birth date (positions 7-14) is after today ({day.isoformat()}); nobody is born in the future", _RID_ALLOWED)
    expected = _rid_check(text[:-1])
    if text[-1] != expected:
        raise InvalidInput(field, f"check character is {text[-1]!r}, expected {expected!r}", _RID_ALLOWED)
    return text


def is_valid_resident_id(value: object, *, today: _dt.date | None = None) -> bool:
    """Return whether ``value`` is a valid resident ID (never raises on ``value``)."""
    try:
        validate_resident_id(value, today=today)
    except InvalidInput:
        return False
    return True


def _require_birth(birth: object, field: str) -> _dt.date:
    """Validate the ``birth`` argument of :func:`make_resident_id`."""
    allowed = f"a datetime.date with year {_RID_MIN_YEAR}..{_RID_MAX_YEAR}"
    if not isinstance(birth, _dt.date) or isinstance(birth, _dt.datetime):
        raise InvalidInput(field, f"must be a datetime.date, got {type(birth).__name__}", allowed)
    _require_birth_year(birth.year, field, allowed)
    return birth


def _require_digits(value: object, length: int, field: str) -> str:
    """Validate a fixed-length string of ASCII digits."""
    allowed = f"{length} digits"
    text = _require_str(value, field, allowed)
    _require_length(text, length, field, allowed)
    _require_chars(text, _DIGITS, field, allowed, what="must be digits")
    return text


def make_resident_id(address6: str, birth: _dt.date, sequence3: str) -> str:
    """Build a valid resident ID from address code, birth date and sequence."""
    address = _require_digits(address6, 6, "address6")
    _require_province(address, "address6", f"6 digits starting with a province-level code ({_PROVINCES_TEXT})")
    born = _require_birth(birth, "birth")
    sequence = _require_digits(sequence3, 3, "sequence3")
    first17 = f"{address}{born:%Y%m%d}{sequence}"
    return first17 + resident_id_check_char(first17)


def mask_resident_id(value: str, *, field: str = "resident_id") -> str:
    """Mask a resident ID as first 6 + ``'********'`` + last 4 (e.g. ``110105********002X``).

    Anything that is not exactly 18 characters is masked completely
    (``'*' * len(value)``). The check digit is not verified: masking is for display.
    """
    text = _require_str(value, field, "a string")
    if len(text) != _RID_LENGTH:
        return "*" * len(text)
    return text[:6] + "*" * 8 + text[-4:]


def resident_id_gender(value: object, *, field: str = "resident_id") -> str:
    """Return ``'M'`` (odd sequence) or ``'F'`` (even sequence) for a valid resident ID."""
    text = validate_resident_id(value, field=field)
    return "M" if int(text[16]) % 2 == 1 else "F"


def resident_id_birth_date(value: object, *, field: str = "resident_id") -> _dt.date:
    """Return the birth date encoded in a valid resident ID."""
    text = validate_resident_id(value, field=field)
    return _dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))


# ------------------------------------------------------------ vectorized forms
# The same check rules over many codes at once (the synthetic universe, batch
# work). Codes are 2-D uint8 arrays of ASCII bytes, one row per code; the tests
# prove every function here equal to its scalar form above.


def ascii_rows(values: Sequence[str] | np.ndarray, width: int) -> np.ndarray:
    """Fixed-width ASCII strings → an (n, width) uint8 array."""
    arr = np.asarray(values, dtype=f"S{width}")
    return arr.view(np.uint8).reshape(len(arr), width)


def digit_rows(numbers: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers → their zero-padded decimal digits as (n, width) ASCII."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if (numbers < 0).any() or (numbers >= 10**width).any():
        raise InvalidInput("numbers", f"must fit in {width} decimal digits", f"0..{10**width - 1}")
    powers = 10 ** np.arange(width - 1, -1, -1)  # int64
    return ((numbers[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def rows_to_str(rows: np.ndarray) -> np.ndarray:
    """(n, width) ASCII bytes → an array of Python-ready str."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    return rows.view(f"S{rows.shape[1]}").ravel().astype(f"U{rows.shape[1]}")


# byte → character value (-1 outside the alphabet), weights and check characters as arrays
_USCC_TABLE = np.array([_USCC_VALUE.get(chr(b), -1) for b in range(256)], dtype=np.int64)
_USCC_TABLE_INT8 = _USCC_TABLE.astype(np.int8)  # the same values (-1..30), an eighth of the memory to read
_ORG_TABLE = np.array([_ORG_VALUE.get(chr(b), -1) for b in range(256)], dtype=np.int64)
_RID_TABLE = np.array([_DIGITS.find(chr(b)) for b in range(256)], dtype=np.int64)
_USCC_WEIGHT_ARRAY = np.array(_USCC_WEIGHTS, dtype=np.int64)
_ORG_WEIGHT_ARRAY = np.array(_ORG_WEIGHTS, dtype=np.int64)
_RID_WEIGHT_ARRAY = np.array(_RID_WEIGHTS, dtype=np.int64)
_USCC_CHECK_BYTES = np.frombuffer(USCC_ALPHABET.encode("ascii"), dtype=np.uint8)
_ORG_CHECK_BYTES = np.frombuffer(b"?123456789X0", dtype=np.uint8)  # indexed by 11 - (x mod 11), which is 1..11
_RID_CHECK_BYTES = np.frombuffer(_RID_CHECK_CHARS.encode("ascii"), dtype=np.uint8)


def _values(rows: np.ndarray, table: np.ndarray, field: str, allowed: str) -> np.ndarray:
    values = table[rows]
    if (values < 0).any():
        raise InvalidInput(field, "contains a character outside the alphabet", allowed)
    return values


def uscc_check_chars(first17: np.ndarray) -> np.ndarray:
    """Vector form of :func:`uscc_check_char`: (n, 17) ASCII → (n,) ASCII check bytes."""
    total = _values(first17, _USCC_TABLE, "uscc", _USCC_ALLOWED) @ _USCC_WEIGHT_ARRAY
    return _USCC_CHECK_BYTES[(31 - total % 31) % 31]


def org_code_check_chars(first8: np.ndarray) -> np.ndarray:
    """Vector form of :func:`org_code_check_char`: (n, 8) ASCII → (n,) ASCII check bytes."""
    total = _values(first8, _ORG_TABLE, "org_code", "0-9 and uppercase A-Z") @ _ORG_WEIGHT_ARRAY
    return _ORG_CHECK_BYTES[11 - total % 11]


def resident_id_check_chars(first17: np.ndarray) -> np.ndarray:
    """Vector form of :func:`resident_id_check_char`: (n, 17) ASCII → (n,) ASCII check bytes."""
    total = _values(first17, _RID_TABLE, "resident_id", _RID_ALLOWED) @ _RID_WEIGHT_ARRAY
    return _RID_CHECK_BYTES[total % 11]


def uscc_validity(values: Sequence[object]) -> np.ndarray:
    """Vector form of :func:`is_valid_uscc`: one bool per value, never raising.

    Length, alphabet, the region's digits and the check character are checked on
    all values at once; the plausibility rules stay the scalar validator's: they run
    on each distinct department and region code, and on the organisation codes that
    are all zero characters."""
    n = len(values)
    valid = np.zeros(n, dtype=bool)
    if n == 0:
        return valid
    # numpy drops a text's trailing NULs: a text holding one (never valid) is read as empty
    texts = np.array([v if type(v) is str and "\x00" not in v else "" for v in values] + ["_" * USCC_LENGTH], dtype=str)[:n]  # ≥ 18 wide
    points = texts.view(np.uint32).reshape(n, -1)  # code points, zero-padded
    shaped = np.flatnonzero((np.char.str_len(texts) == USCC_LENGTH) & (points[:, :USCC_LENGTH] < 128).all(axis=1))
    valid[shaped] = uscc_rows_validity(points[shaped, :USCC_LENGTH].astype(np.uint8))
    return valid


def uscc_rows_validity(rows: np.ndarray) -> np.ndarray:
    """`uscc_validity` of texts of 18 ASCII characters, given as an (n, 18) array of their bytes."""
    assert rows.ndim == 2 and rows.shape[1] == USCC_LENGTH and rows.dtype == np.uint8, "18 ASCII bytes a row"
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    char_values = _USCC_TABLE_INT8[rows]
    ok = (char_values >= 0).all(axis=1)
    region = rows[:, _USCC_REGION]
    ok &= ((region >= ord("0")) & (region <= ord("9"))).all(axis=1)
    ok &= ((31 - (np.where(char_values[:, :-1] >= 0, char_values[:, :-1], 0) @ _USCC_WEIGHT_ARRAY) % 31) % 31) == char_values[:, -1]
    departments = rows[:, 0]
    ok &= ~np.isin(departments, [code for code in np.unique(departments[ok]) if _department_problem(chr(code)) is not None])
    regions = (region.astype(np.int64) - ord("0")) @ (10 ** np.arange(5, -1, -1))  # six digits as a number (where they are digits)
    ok &= ~np.isin(regions, [code for code in np.unique(regions[ok]) if _region_problem(f"{code:06d}") is not None])
    zeros = ok & (rows[:, _USCC_ORG] == ord("0")).all(axis=1)
    for i in np.flatnonzero(zeros):
        ok[i] = _org_problem(rows[i, _USCC_ORG].tobytes().decode("ascii")) is None
    return ok
