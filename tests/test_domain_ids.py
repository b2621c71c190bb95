"""Tests for sandu.domain.ids: USCC and resident ID validation, building, masking."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput
from sandu.domain.ids import (
    USCC_ALPHABET,
    ascii_rows,
    digit_rows,
    is_valid_resident_id,
    is_valid_uscc,
    make_resident_id,
    make_uscc,
    mask_resident_id,
    org_code_check_char,
    org_code_check_chars,
    resident_id_birth_date,
    resident_id_check_char,
    resident_id_check_chars,
    resident_id_gender,
    rows_to_str,
    uscc_check_char,
    uscc_check_chars,
    validate_resident_id,
    validate_uscc,
)

DIGITS = "0123456789"
PUBLISHED_USCCS = ["91350100M000100Y43", "91110000600037341L"]
PUBLISHED_RESIDENT_IDS = ["11010519491231002X", "440524188001010014"]

# ------------------------------------------------------------------ strategies

alphabet_char = st.sampled_from(USCC_ALPHABET)


@st.composite
def valid_usccs(draw: st.DrawFn) -> str:
    """A valid USCC: any department/entity char, 6 digits, 9 alphabet chars, check char."""
    first17 = (
        draw(alphabet_char)
        + draw(alphabet_char)
        + draw(st.text(DIGITS, min_size=6, max_size=6))
        + draw(st.text(USCC_ALPHABET, min_size=9, max_size=9))
    )
    return first17 + uscc_check_char(first17)


@st.composite
def valid_resident_ids(draw: st.DrawFn) -> str:
    """A valid resident ID built independently of make_resident_id."""
    birth = draw(st.dates(min_value=dt.date(1850, 1, 1), max_value=dt.date(2100, 12, 31)))
    first17 = (
        draw(st.text(DIGITS, min_size=6, max_size=6))
        + birth.strftime("%Y%m%d")
        + draw(st.text(DIGITS, min_size=3, max_size=3))
    )
    return first17 + resident_id_check_char(first17)


def single_substitutions(value: str, charset: str) -> list[str]:
    """Every string differing from ``value`` in exactly one position, using ``charset``."""
    return [
        value[:i] + ch + value[i + 1 :]
        for i in range(len(value))
        for ch in charset
        if ch != value[i]
    ]


def raises_invalid(func, value, **kwargs) -> InvalidInput:
    """Call ``func`` expecting InvalidInput; return it."""
    with pytest.raises(InvalidInput) as info:
        func(value, **kwargs)
    return info.value


# ------------------------------------------------------------------ USCC


@pytest.mark.parametrize("code", PUBLISHED_USCCS)
def test_published_usccs_pass(code: str) -> None:
    assert validate_uscc(code) is code
    assert is_valid_uscc(code)
    assert uscc_check_char(code[:17]) == code[17]


@given(valid_usccs())
def test_generated_usccs_pass(code: str) -> None:
    assert validate_uscc(code) == code
    assert is_valid_uscc(code)


@settings(max_examples=60)
@given(valid_usccs())
def test_every_single_substitution_fails_uscc(code: str) -> None:
    for mutated in single_substitutions(code, USCC_ALPHABET):
        assert not is_valid_uscc(mutated), mutated
        with pytest.raises(InvalidInput):
            validate_uscc(mutated)


@settings(max_examples=60)
@given(valid_usccs())
def test_region_digit_substitution_fails_uscc(code: str) -> None:
    for pos in range(2, 8):
        for digit in DIGITS.replace(code[pos], ""):
            assert not is_valid_uscc(code[:pos] + digit + code[pos + 1 :])


@given(alphabet_char, alphabet_char, st.text(DIGITS, min_size=6, max_size=6),
       st.text(USCC_ALPHABET, min_size=9, max_size=9))
def test_make_uscc_builds_valid_codes(dept: str, kind: str, region: str, org: str) -> None:
    code = make_uscc(dept, kind, region, org)
    assert code[:17] == dept + kind + region + org
    assert validate_uscc(code) == code


@pytest.mark.parametrize("dept", ["A", "N", "Y", "1", "5", "9"])
def test_letter_department_codes_accepted(dept: str) -> None:
    assert is_valid_uscc(make_uscc(dept, "1", "110000", "600037341"))


def test_make_uscc_reproduces_published_vectors() -> None:
    assert make_uscc("9", "1", "350100", "M000100Y4") == "91350100M000100Y43"
    assert make_uscc("9", "1", "110000", "600037341") == "91110000600037341L"


def test_uscc_wrong_length() -> None:
    err = raises_invalid(validate_uscc, "91350100M000100Y4")
    assert err.field == "uscc"
    assert "must be 18 characters, got 17" in err.message
    assert err.allowed


def test_uscc_lowercase_is_error_not_fixed() -> None:
    err = raises_invalid(validate_uscc, "91350100m000100Y43")
    assert err.field == "uscc"
    assert "'m' at position 9" in err.message
    assert "uppercase" in err.message


@pytest.mark.parametrize("bad", ["I", "O", "Z", "S", "V"])
def test_uscc_excluded_letters(bad: str) -> None:
    code = "91350100" + bad + "000100Y43"
    err = raises_invalid(validate_uscc, code, field="borrower_uscc")
    assert err.field == "borrower_uscc"
    assert f"character '{bad}' at position 9 is not allowed" in err.message


def test_uscc_region_must_be_digits() -> None:
    first17 = "91A50100M000100Y4"
    code = first17 + uscc_check_char(first17)  # check char right, region wrong
    err = raises_invalid(validate_uscc, code)
    assert "position 3" in err.message
    assert "region code" in err.message


def test_uscc_bad_check_char() -> None:
    err = raises_invalid(validate_uscc, "91350100M000100Y4K")
    assert "check character is 'K', expected '3'" in err.message


def test_uscc_whitespace_not_stripped() -> None:
    assert not is_valid_uscc(" 91350100M000100Y43")
    assert not is_valid_uscc("91350100M000100Y43\n")


@pytest.mark.parametrize("value", [None, 91110000600037341, b"91110000600037341L", ["91110000600037341L"]])
def test_uscc_non_string(value: object) -> None:
    err = raises_invalid(validate_uscc, value)
    assert "must be a string" in err.message
    assert not is_valid_uscc(value)


def test_make_uscc_validates_parts() -> None:
    with pytest.raises(InvalidInput) as info:
        make_uscc("9", "1", "11000A", "600037341")
    assert info.value.field == "region6"
    with pytest.raises(InvalidInput) as info:
        make_uscc("9", "1", "110000", "60003734")
    assert info.value.field == "org9"
    assert "must be 9 characters, got 8" in info.value.message
    with pytest.raises(InvalidInput) as info:
        make_uscc("I", "1", "110000", "600037341")
    assert info.value.field == "department"


def test_org_code_check_char() -> None:
    assert org_code_check_char("M000100Y") == "4"  # from 91350100M000100Y43
    assert org_code_check_char("60003734") == "1"  # from 91110000600037341L
    assert org_code_check_char("10000000") == "8"  # Σ = 1·3 = 3 → 11 − 3 = 8


def test_org_code_check_char_x_and_zero() -> None:
    assert org_code_check_char("40000000") == "X"  # Σ = 4·3 = 12 ≡ 1 → 10 → 'X'
    assert org_code_check_char("B0000000") == "0"  # Σ = 11·3 = 33 ≡ 0 → 11 → '0'
    assert org_code_check_char("00000000") == "0"


def test_org_code_check_char_rejects_bad_input() -> None:
    err = raises_invalid(org_code_check_char, "m000100Y")
    assert err.field == "org_code"
    assert "uppercase" in err.message
    assert "got 7" in raises_invalid(org_code_check_char, "M000100").message


# ----------------------------------------------------------------- resident ID


@pytest.mark.parametrize("rid", PUBLISHED_RESIDENT_IDS)
def test_published_resident_ids_pass(rid: str) -> None:
    assert validate_resident_id(rid) is rid
    assert is_valid_resident_id(rid)


@given(valid_resident_ids())
def test_generated_resident_ids_pass(rid: str) -> None:
    assert validate_resident_id(rid) == rid


@settings(max_examples=100)
@given(valid_resident_ids())
def test_every_single_change_fails_resident_id(rid: str) -> None:
    for mutated in single_substitutions(rid, DIGITS + "X"):
        assert not is_valid_resident_id(mutated), mutated


@given(
    st.text(DIGITS, min_size=6, max_size=6),
    st.dates(min_value=dt.date(1850, 1, 1), max_value=dt.date(2100, 12, 31)),
    st.text(DIGITS, min_size=3, max_size=3),
)
def test_make_resident_id_round_trip(address: str, birth: dt.date, seq: str) -> None:
    rid = make_resident_id(address, birth, seq)
    assert validate_resident_id(rid) == rid
    assert rid[:6] == address and rid[14:17] == seq
    assert resident_id_birth_date(rid) == birth
    assert resident_id_gender(rid) == ("M" if int(seq[2]) % 2 else "F")


def test_published_resident_id_details() -> None:
    assert resident_id_birth_date("11010519491231002X") == dt.date(1949, 12, 31)
    assert resident_id_gender("11010519491231002X") == "F"  # sequence 002 is even
    assert resident_id_birth_date("440524188001010014") == dt.date(1880, 1, 1)
    assert resident_id_gender("440524188001010014") == "M"  # sequence 001 is odd


def test_resident_id_lowercase_x_is_error() -> None:
    err = raises_invalid(validate_resident_id, "11010519491231002x")
    assert err.field == "resident_id"
    assert "uppercase 'X'" in err.message


def test_resident_id_wrong_length() -> None:
    err = raises_invalid(validate_resident_id, "11010519491231002", field="guarantor_id")
    assert err.field == "guarantor_id"
    assert "must be 18 characters, got 17" in err.message


def test_resident_id_impossible_date() -> None:
    first17 = "11010519490230002"  # 30 February
    err = raises_invalid(validate_resident_id, first17 + resident_id_check_char(first17))
    assert "not a real calendar date" in err.message
    assert "19490230" not in err.message  # personal data is not echoed


def test_resident_id_year_out_of_range() -> None:
    first17 = "11010518491231002"
    err = raises_invalid(validate_resident_id, first17 + resident_id_check_char(first17))
    assert "birth year 1849" in err.message


def test_resident_id_bad_check_char() -> None:
    err = raises_invalid(validate_resident_id, "110105194912310021")
    assert "check character is '1', expected 'X'" in err.message


def test_resident_id_letter_in_body() -> None:
    err = raises_invalid(validate_resident_id, "1101051949123100X2")
    assert "character 'X' at position 17 is not allowed" in err.message


def test_resident_id_unicode_digits_rejected() -> None:
    assert not is_valid_resident_id("１１0105194912310021")  # full-width digits
    assert not is_valid_resident_id("٣10105194912310021")


@pytest.mark.parametrize("value", [None, 11010519491231002, b"11010519491231002X"])
def test_resident_id_non_string(value: object) -> None:
    assert "must be a string" in raises_invalid(validate_resident_id, value).message


def test_make_resident_id_validates_parts() -> None:
    with pytest.raises(InvalidInput) as info:
        make_resident_id("11010", dt.date(1990, 1, 1), "001")
    assert info.value.field == "address6"
    with pytest.raises(InvalidInput) as info:
        make_resident_id("110105", dt.date(1849, 12, 31), "001")
    assert info.value.field == "birth"
    with pytest.raises(InvalidInput) as info:
        make_resident_id("110105", "19900101", "001")  # type: ignore[arg-type]
    assert info.value.field == "birth"
    with pytest.raises(InvalidInput) as info:
        make_resident_id("110105", dt.date(1990, 1, 1), "01a")
    assert info.value.field == "sequence3"


def test_gender_and_birth_date_require_valid_id() -> None:
    with pytest.raises(InvalidInput):
        resident_id_gender("110105194912310021")
    with pytest.raises(InvalidInput):
        resident_id_birth_date("11010519491231002x")


# --------------------------------------------------------------------- masking


def test_mask_published_vector() -> None:
    assert mask_resident_id("11010519491231002X") == "110105********002X"
    assert mask_resident_id("440524188001010014") == "440524********0014"


@pytest.mark.parametrize("value", ["", "1", "11010519491231002", "11010519491231002X1", "x" * 40])
def test_mask_hides_everything_on_wrong_length(value: str) -> None:
    assert mask_resident_id(value) == "*" * len(value)


@given(valid_resident_ids())
def test_mask_never_reveals_birth_date(rid: str) -> None:
    masked = mask_resident_id(rid)
    assert len(masked) == 18
    assert masked[6:14] == "********"
    assert masked[:6] == rid[:6] and masked[14:] == rid[14:]


@given(st.text(max_size=40).filter(lambda s: len(s) != 18))
def test_mask_reveals_nothing_when_not_18(value: str) -> None:
    assert set(mask_resident_id(value)) <= {"*"}


# --- vector forms equal the scalar rules ------------------------------------------------

_USCC17 = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)
_ORG8 = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=8, max_size=8)
_DIGITS17 = st.text(alphabet="0123456789", min_size=17, max_size=17)


@given(st.lists(_USCC17, min_size=1, max_size=50))
def test_vector_uscc_check_equals_scalar(codes):
    got = rows_to_str(uscc_check_chars(ascii_rows(codes, 17))[:, None])
    assert list(got) == [uscc_check_char(c) for c in codes]


@given(st.lists(_ORG8, min_size=1, max_size=50))
def test_vector_org_code_check_equals_scalar(codes):
    got = rows_to_str(org_code_check_chars(ascii_rows(codes, 8))[:, None])
    assert list(got) == [org_code_check_char(c) for c in codes]


@given(st.lists(_DIGITS17, min_size=1, max_size=50))
def test_vector_resident_id_check_equals_scalar(codes):
    got = rows_to_str(resident_id_check_chars(ascii_rows(codes, 17))[:, None])
    assert list(got) == [resident_id_check_char(c) for c in codes]


@given(st.lists(st.integers(0, 10**8 - 1), min_size=1, max_size=50))
def test_digit_rows_zero_pad(numbers):
    assert list(rows_to_str(digit_rows(np.array(numbers), 8))) == [f"{x:08d}" for x in numbers]


def test_vector_forms_refuse_characters_outside_the_alphabet():
    with pytest.raises(InvalidInput) as e:
        uscc_check_chars(ascii_rows(["9135010OM000100Y4"], 17))  # letter O is not in the USCC alphabet
    assert e.value.field == "uscc"
    with pytest.raises(InvalidInput):
        digit_rows(np.array([10**8]), 8)
