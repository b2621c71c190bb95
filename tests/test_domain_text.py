"""Free-text rules: the validator and the documented pattern say the same thing."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput
from sandu.domain.text import MAX_NAME_LENGTH, PLAIN_TEXT_PATTERN, REFUSED_RANGES, plain_text

PATTERN = re.compile(PLAIN_TEXT_PATTERN)
REFUSED = {"Cc", "Cf", "Co", "Zl", "Zp"}


def test_refused_ranges_are_this_pythons_unicode_categories():
    ranges, start = [], None
    for cp in range(0x110000):
        refused = unicodedata.category(chr(cp)) in REFUSED
        if refused and start is None:
            start = cp
        elif not refused and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    assert tuple(ranges) == REFUSED_RANGES


@pytest.mark.parametrize("name", ["温州瓯正阀门有限公司", "A", "Wenzhou Valve Co., Ltd.", "乐清华创(电子)科技·有限公司", "x" * MAX_NAME_LENGTH])
def test_ordinary_names_pass(name):
    assert plain_text(name, "name") == name
    assert PATTERN.fullmatch(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a\x00b", "U+0000"), ("a\x01", "U+0001"), ("a\x1bb", "U+001B"), ("a\r\nb", "U+000D"), ("a\u200bb", "U+200B"),
        ("a\u202eb", "U+202E"), ("\ufeffa", "U+FEFF"), ("a\u2028b", "U+2028"), ("a\u2029b", "U+2029"), ("a\x7fb", "U+007F"),
        ("a\x85b", "U+0085"), ("a\ue000b", "U+E000"), ("a\U000e0041b", "U+E0041"), ("a\ud800b", "U+D800"),
        (" a", "white space"), ("a ", "white space"), ("\u3000公司", "white space"), ("", "empty"), ("x" * (MAX_NAME_LENGTH + 1), "more than"),
    ],
)
def test_refused_text_names_the_field_and_the_reason(name, reason):
    with pytest.raises(InvalidInput) as info:
        plain_text(name, "name")
    assert info.value.field == "name" and reason in info.value.message
    assert len(info.value.message) < 300  # never echoes the input back


def test_non_text_is_refused_with_a_short_echo():
    with pytest.raises(InvalidInput) as info:
        plain_text(["x" * 10_000], "name")
    assert len(info.value.message) < 300


@settings(max_examples=400)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12))
def test_the_pattern_and_the_validator_agree(text):
    try:
        plain_text(text, "name")
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == bool(PATTERN.fullmatch(text))
