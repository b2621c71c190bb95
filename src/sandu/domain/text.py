"""Free text a user may send (names, officer notes): what is allowed, once.

A name is printable text: no NUL, no control characters (C0, DEL, C1), no
format characters that hide or reorder what a reader sees (bidi overrides and
isolates, zero-width characters, the BOM, soft hyphen), no line or paragraph
separators, no surrogates or private-use characters, and no leading or
trailing white space (a user's typo is refused with a reason, never fixed
silently). Chinese, Latin and the punctuation of company names are allowed.

`PLAIN_TEXT_PATTERN` states the same rule as a regular expression for the
OpenAPI document; a property test proves the two agree.
"""

from __future__ import annotations

import unicodedata

from sandu.domain.errors import InvalidInput, show

MAX_NAME_LENGTH = 120  # a registered company or project name, in characters

# Unicode categories refused anywhere in a text field.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
# The code points of those categories (but surrogates, which no UTF-8 text carries) as
# ranges, for the regular expression; `tests/test_domain_text.py` recomputes them from
# this Python's Unicode database.
REFUSED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD),
    (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x2028, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xE000, 0xF8FF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
)


def _char(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)


_REFUSED_CLASS = "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in REFUSED_RANGES)
# No refused character anywhere, and neither end white space.
PLAIN_TEXT_PATTERN = rf"^[^{_REFUSED_CLASS}\s](?:[^{_REFUSED_CLASS}]*[^{_REFUSED_CLASS}\s])?$"


def plain_text(value: object, field: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """`value` unchanged if it is allowed free text of 1..max_length characters;
    else `InvalidInput` naming the field, the first offending position and the rule."""
    allowed = f"1..{max_length} printable characters, no control or invisible characters, no leading or trailing spaces"
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {show(value)}", allowed)
    if not value:
        raise InvalidInput(field, "must not be empty", allowed)
    if len(value) > max_length:
        raise InvalidInput(field, f"has {len(value)} characters, more than {max_length}", allowed)
    for position, ch in enumerate(value, start=1):
        what = _REFUSED_CATEGORIES.get(unicodedata.category(ch))
        if what is not None:
            raise InvalidInput(field, f"contains {what} (U+{ord(ch):04X}) at position {position}", allowed)
    if value[0].isspace() or value[-1].isspace():
        raise InvalidInput(field, "starts or ends with white space", allowed)
    return value
