"""Tests for sandu.domain.ids: USCC and resident ID validation, building, masking."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput
from sandu.domain.ids import (
    PROVINCE_CODES,
    USCC_ALPHABET,
    USCC_DEPARTMENTS,
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
# GB 32100 departments and GB/T 2260 province-level codes, written out here independently of ids.py
DEPARTMENTS = "123456789ANY"
PROVINCES = ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
             "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82"]
NOT_PROVINCES = sorted({f"{n:02d}" for n in range(100)} - set(PROVINCES))
department_char = st.sampled_from(DEPARTMENTS)
regions = st.one_of(
    st.builds(lambda p, rest: p + rest, st.sampled_from(PROVINCES), st.text(DIGITS, min_size=4, max_size=4)),
    st.just("100000"),
)
addresses = st.builds(lambda p, rest: p + rest, st.sampled_from(PROVINCES), st.text(DIGITS, min_size=4, max_size=4))
org_codes = st.text(USCC_ALPHABET, min_size=9, max_size=9).filter(lambda s: s != "0" * 9)


@st.composite
def valid_usccs(draw: st.DrawFn) -> str:
    """A valid USCC: a department code, any entity char, a plausible region, a non-zero organisation code, check char."""
    first17 = draw(department_char) + draw(alphabet_char) + draw(regions) + draw(org_codes)
    return first17 + uscc_check_char(first17)


@st.composite
def valid_resident_ids(draw: st.DrawFn) -> str:
    """A valid resident ID built independently of make_resident_id."""
    birth = draw(st.dates(min_value=dt.date(1850, 1, 1), max_value=dt.date(2100, 12, 31)))
    first17 = draw(addresses) + birth.strftime("%Y%m%d") + draw(st.text(DIGITS, min_size=3, max_size=3))
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


@given(department_char, alphabet_char, regions, org_codes)
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


def test_a_uscc_judged_before_is_judged_again_the_same_and_each_refusal_names_its_field() -> None:
    """validate_uscc remembers its verdicts on recent USCCs: a remembered one is still refused with its reason, on
    the field each call names, and one forgotten (more than USCC_VERDICTS_KEPT later) is judged afresh."""
    from sandu.domain.ids import USCC_VERDICTS_KEPT

    good, bad = PUBLISHED_USCCS[0], "91350100M000100Y4K"
    for _ in range(2):
        assert validate_uscc(good, field="a") == good and is_valid_uscc(good)
        for field in ("x", "y"):
            with pytest.raises(InvalidInput) as exc:
                validate_uscc(bad, field=field)
            assert exc.value.field == field and "check character is 'K', expected '3'" in exc.value.message
        assert not is_valid_uscc(bad)
    others = [make_uscc("9", "1", "350100", f"{k:09d}") for k in range(1, USCC_VERDICTS_KEPT + 2)]
    assert all(validate_uscc(u) == u for u in others)
    assert validate_uscc(good) == good and not is_valid_uscc(bad)

    class Code(str):
        pass

    assert validate_uscc(Code(good)) == good and not is_valid_uscc(Code(bad))


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
    addresses,
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


# --- plausibility: department, region, organisation code, address, birth not in the future --


def with_check(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def rid_with_check(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def test_the_code_lists_are_gb_32100_and_gb_t_2260():
    assert USCC_DEPARTMENTS == DEPARTMENTS
    assert PROVINCE_CODES == frozenset(PROVINCES) and len(PROVINCES) == 34


def test_an_all_zero_placeholder_is_not_a_uscc() -> None:
    assert uscc_check_char("0" * 17) == "0"  # the placeholder's check character happens to be right
    err = raises_invalid(validate_uscc, "0" * 18)
    assert "registering department '0' is not a GB 32100 department code (1-9, A, N, Y)" in err.message
    assert not is_valid_uscc("0" * 18)


@pytest.mark.parametrize("dept", list(DEPARTMENTS))
def test_every_department_code_is_accepted(dept: str) -> None:
    assert is_valid_uscc(with_check(dept + "1330302MA2H8TQ3X"))


@pytest.mark.parametrize("dept", [c for c in USCC_ALPHABET if c not in DEPARTMENTS])
def test_other_characters_are_not_department_codes(dept: str) -> None:
    err = raises_invalid(validate_uscc, with_check(dept + "1330302MA2H8TQ3X"), field="borrower")
    assert err.field == "borrower"
    assert err.reason == f"registering department {dept!r} is not a GB 32100 department code (1-9, A, N, Y)"
    assert "position 1 a registering department 1-9, A, N or Y" in err.allowed


@pytest.mark.parametrize("province", PROVINCES)
def test_every_province_level_region_is_accepted(province: str) -> None:
    assert is_valid_uscc(with_check("91" + province + "0000" + "MA2H8TQ3X"))
    assert is_valid_uscc(with_check("91" + province + "9999" + "MA2H8TQ3X"))


@pytest.mark.parametrize("prefix", NOT_PROVINCES)
def test_regions_outside_the_provinces_are_refused(prefix: str) -> None:
    region = prefix + "0302"
    err = raises_invalid(validate_uscc, with_check("91" + region + "MA2H8TQ3X"))
    assert err.reason == (
        f"region code {region!r} does not start with a province-level code "
        "(11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82) and is not 100000"
    )


@pytest.mark.parametrize(("region", "ok"), [("100000", True), ("100001", False), ("100100", False), ("000000", False), ("110000", True)])
def test_the_national_region_is_exactly_100000(region: str, ok: bool) -> None:
    assert is_valid_uscc(with_check("91" + region + "MA2H8TQ3X")) is ok


@pytest.mark.parametrize(("org", "ok"), [("000000000", False), ("000000001", True), ("100000000", True), ("00000000X", True), ("0000A0000", True)])
def test_the_organisation_code_is_not_all_zeros(org: str, ok: bool) -> None:
    code = with_check("91330302" + org)
    assert is_valid_uscc(code) is ok
    if not ok:
        assert raises_invalid(validate_uscc, code).reason == "organisation code is all zeros (a filler, not an issued code)"


def test_the_first_broken_rule_is_named():
    assert "registering department" in raises_invalid(validate_uscc, with_check("0" + "1000000" + "000000000")).reason
    assert "region code '000000'" in raises_invalid(validate_uscc, with_check("9" + "1000000" + "000000000")).reason
    assert "organisation code" in raises_invalid(validate_uscc, with_check("9" + "1330302" + "000000000")).reason
    # and the check character only after the code is plausible
    assert "check character" in raises_invalid(validate_uscc, "91330302MA2H8TQ3X" + ("0" if uscc_check_char("91330302MA2H8TQ3X") != "0" else "1")).reason


@pytest.mark.parametrize(
    ("args", "field", "allowed"),
    [
        (("0", "1", "330302", "MA2H8TQ3X"), "department", "1-9, A, N or Y"),
        (("B", "1", "330302", "MA2H8TQ3X"), "department", "1-9, A, N or Y"),
        (("9", "1", "993302", "MA2H8TQ3X"), "region6", "6 digits starting with 11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82, or 100000"),
        (("9", "1", "330302", "000000000"), "org9", "9 USCC characters (0-9, A-H J-N P-R T U W-Y), not all 0"),
    ],
)
def test_make_uscc_refuses_implausible_parts(args: tuple[str, str, str, str], field: str, allowed: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make_uscc(*args)
    assert info.value.field == field and info.value.allowed == allowed
    assert info.value.reason == {
        "department": f"registering department {args[0]!r} is not a GB 32100 department code (1-9, A, N, Y)",
        "region6": f"region code {args[2]!r} does not start with a province-level code (11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82) and is not 100000",
        "org9": "organisation code is all zeros (a filler, not an issued code)",
    }[field]


def test_make_uscc_accepts_the_national_region():
    assert validate_uscc(make_uscc("9", "1", "100000", "MA2H8TQ3X")) == make_uscc("9", "1", "100000", "MA2H8TQ3X")


@pytest.mark.parametrize("province", PROVINCES)
def test_resident_ids_of_every_province_pass(province: str) -> None:
    assert is_valid_resident_id(rid_with_check(province + "0101" + "19800101" + "123"))


@pytest.mark.parametrize("prefix", NOT_PROVINCES)
def test_resident_id_addresses_outside_the_provinces_are_refused(prefix: str) -> None:
    err = raises_invalid(validate_resident_id, rid_with_check(prefix + "0101" + "19800101" + "123"), field="signer_id")
    assert err.field == "signer_id"
    assert err.reason == "address code (positions 1-2) is not a GB/T 2260 province-level code (11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)"
    assert "address starting with a province-level code" in err.allowed


def test_make_resident_id_refuses_an_address_outside_the_provinces():
    with pytest.raises(InvalidInput) as info:
        make_resident_id("000000", dt.date(1980, 1, 1), "001")
    assert info.value.field == "address6" and "province-level" in info.value.reason
    assert info.value.allowed == "6 digits starting with a province-level code (11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)"


TODAY = dt.date(2026, 11, 29)


@pytest.mark.parametrize(
    ("born", "ok"),
    [(TODAY, True), (TODAY - dt.timedelta(days=1), True), (TODAY + dt.timedelta(days=1), False), (dt.date(2100, 12, 31), False), (dt.date(1850, 1, 1), True)],
)
def test_with_today_a_birth_date_in_the_future_is_refused(born: dt.date, ok: bool) -> None:
    rid = make_resident_id("330302", born, "021")
    assert is_valid_resident_id(rid, today=TODAY) is ok
    assert is_valid_resident_id(rid)  # without today only the year range applies
    if not ok:
        err = raises_invalid(validate_resident_id, rid, field="legal_rep_id", today=TODAY)
        assert err.field == "legal_rep_id"
        assert err.reason == "birth date (positions 7-14) is after today (2026-11-29); nobody is born in the future"
        assert born.strftime("%Y%m%d") not in err.message  # personal data is not echoed
        assert "not in the future" in err.allowed
    else:
        assert validate_resident_id(rid, today=TODAY) is rid


@pytest.mark.parametrize(("today", "kind"), [(dt.datetime(2026, 11, 29, 9, 30), "datetime"), ("2026-11-29", "str"), (20261129, "int")])
def test_today_must_be_a_date(today: object, kind: str) -> None:
    with pytest.raises(TypeError) as e:
        validate_resident_id("11010519491231002X", today=today)  # type: ignore[arg-type]
    assert str(e.value) == f"today must be a datetime.date or None, got {kind}"


@settings(max_examples=100)
@given(valid_resident_ids(), st.dates(min_value=dt.date(1850, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_a_resident_id_is_valid_on_a_day_exactly_when_its_holder_is_born_by_then(rid: str, today: dt.date) -> None:
    assert is_valid_resident_id(rid, today=today) is (resident_id_birth_date(rid) <= today)


# --- every error names its field, says why and what is allowed (user-facing text) -------

USCC_ALLOWED = (
    "18 characters from 0-9 and uppercase A-H J-N P-R T U W-Y (no I, O, Z, S, V); "
    "position 1 a registering department 1-9, A, N or Y; positions 3-8 a GB/T 2260 region "
    "(province-level first two digits) or 100000; positions 9-17 not all 0; "
    "last character the GB 32100 check character"
)
RID_ALLOWED = (
    "18 characters: 6-digit address starting with a province-level code, real birth date "
    "YYYYMMDD (year 1850-2100, not in the future), 3-digit sequence, check digit 0-9 or "
    "uppercase X (ISO 7064 MOD 11-2)"
)
USCC_PART = "USCC characters (0-9, A-H J-N P-R T U W-Y)"
BIRTH_ALLOWED = "a datetime.date with year 1850..2100"
ORG_ALLOWED = "8 characters from 0-9 and uppercase A-Z"

ERROR_CASES = [
    (uscc_check_char, (5,), {}, "uscc", "must be a string, got int", USCC_ALLOWED),
    (uscc_check_char, ("123",), {"field": "f"}, "f", "must be 17 characters, got 3", "the first 17 characters of a USCC"),
    (uscc_check_char, ("9135010OM000100Y4",), {}, "uscc", "character 'O' at position 8 is not allowed; see allowed characters", USCC_ALLOWED),
    (uscc_check_char, ("91350100m000100Y4",), {}, "uscc", "character 'm' at position 9 is lowercase; letters must be uppercase", USCC_ALLOWED),
    (validate_uscc, (None,), {}, "uscc", "must be a string, got NoneType", USCC_ALLOWED),
    (validate_uscc, ("1" * 17,), {}, "uscc", "must be 18 characters, got 17", USCC_ALLOWED),
    (validate_uscc, ("91350100I000100Y43",), {}, "uscc", "character 'I' at position 9 is not allowed; letters I, O, Z, S, V and symbols are not used", USCC_ALLOWED),
    (validate_uscc, ("91A50100M000100Y43",), {}, "uscc", "character 'A' at position 3 is not allowed; the region code (positions 3-8) must be 6 digits", USCC_ALLOWED),
    (validate_uscc, ("9135010AM000100Y43",), {}, "uscc", "character 'A' at position 8 is not allowed; the region code (positions 3-8) must be 6 digits", USCC_ALLOWED),
    (validate_uscc, ("913501a0M000100Y43",), {}, "uscc", "character 'a' at position 7 is lowercase; letters must be uppercase", USCC_ALLOWED),
    (validate_uscc, ("91350100M000100Y4K",), {"field": "u"}, "u", "check character is 'K', expected '3'", USCC_ALLOWED),
    (make_uscc, ("", "1", "110000", "600037341"), {}, "department", "must be 1 characters, got 0", f"1 {USCC_PART}"),
    (make_uscc, ("9", 5, "110000", "600037341"), {}, "entity_type", "must be a string, got int", f"1 {USCC_PART}"),
    (make_uscc, ("9", "1", "11000A", "600037341"), {}, "region6", "character 'A' at position 6 is not allowed; must be digits", "6 digits"),
    (make_uscc, ("9", "1", "110000", "60003734i"), {}, "org9", f"character 'i' at position 9 is not allowed; must be {USCC_PART}", f"9 {USCC_PART}"),
    (make_uscc, ("9", "1", "110000", "60003734"), {}, "org9", "must be 9 characters, got 8", f"9 {USCC_PART}"),
    (org_code_check_char, (5,), {}, "org_code", "must be a string, got int", ORG_ALLOWED),
    (org_code_check_char, ("M000100",), {}, "org_code", "must be 8 characters, got 7", ORG_ALLOWED),
    (org_code_check_char, ("M00010-Y",), {}, "org_code", "character '-' at position 7 is not allowed; must be 0-9 or A-Z", ORG_ALLOWED),
    (org_code_check_char, ("m000100Y",), {"field": "org"}, "org", "character 'm' at position 1 is lowercase; letters must be uppercase", ORG_ALLOWED),
    (resident_id_check_char, (None,), {}, "resident_id", "must be a string, got NoneType", RID_ALLOWED),
    (resident_id_check_char, ("123",), {"field": "r"}, "r", "must be 17 characters, got 3", "the first 17 digits of a resident ID"),
    (resident_id_check_char, ("1101051949123100X",), {}, "resident_id", "character 'X' at position 17 is not allowed; positions 1-17 must be digits", RID_ALLOWED),
    (validate_resident_id, (None,), {}, "resident_id", "must be a string, got NoneType", RID_ALLOWED),
    (validate_resident_id, ("1101051949123100",), {}, "resident_id", "must be 18 characters, got 16", RID_ALLOWED),
    (validate_resident_id, ("1101051949123100X2",), {}, "resident_id", "character 'X' at position 17 is not allowed; positions 1-17 must be digits", RID_ALLOWED),
    (validate_resident_id, ("11010519491231002x",), {}, "resident_id", "check character must be uppercase 'X', got lowercase 'x'", RID_ALLOWED),
    (validate_resident_id, ("11010519491231002Y",), {}, "resident_id", "character 'Y' at position 18 is not allowed; must be a digit or 'X'", RID_ALLOWED),
    (validate_resident_id, ("110105184912310021",), {}, "resident_id", "birth year 1849 is outside 1850..2100", RID_ALLOWED),
    (validate_resident_id, ("110105210101010021",), {}, "resident_id", "birth year 2101 is outside 1850..2100", RID_ALLOWED),
    (validate_resident_id, ("110105194902300021",), {"field": "x"}, "x", "birth date (positions 7-14) is not a real calendar date", RID_ALLOWED),
    (validate_resident_id, ("110105194912310021",), {}, "resident_id", "check character is '1', expected 'X'", RID_ALLOWED),
    (validate_resident_id, ("110105194912310029",), {}, "resident_id", "check character is '9', expected 'X'", RID_ALLOWED),
    (make_resident_id, (110105, dt.date(1990, 1, 1), "001"), {}, "address6", "must be a string, got int", "6 digits"),
    (make_resident_id, ("11010", dt.date(1990, 1, 1), "001"), {}, "address6", "must be 6 characters, got 5", "6 digits"),
    (make_resident_id, ("11010X", dt.date(1990, 1, 1), "001"), {}, "address6", "character 'X' at position 6 is not allowed; must be digits", "6 digits"),
    (make_resident_id, ("110105", dt.datetime(1990, 1, 1), "001"), {}, "birth", "must be a datetime.date, got datetime", BIRTH_ALLOWED),
    (make_resident_id, ("110105", "1990-01-01", "001"), {}, "birth", "must be a datetime.date, got str", BIRTH_ALLOWED),
    (make_resident_id, ("110105", dt.date(1849, 12, 31), "001"), {}, "birth", "birth year 1849 is outside 1850..2100", BIRTH_ALLOWED),
    (make_resident_id, ("110105", dt.date(2101, 1, 1), "001"), {}, "birth", "birth year 2101 is outside 1850..2100", BIRTH_ALLOWED),
    (make_resident_id, ("110105", dt.date(1990, 1, 1), "1234"), {}, "sequence3", "must be 3 characters, got 4", "3 digits"),
    (make_resident_id, ("110105", dt.date(1990, 1, 1), "0a1"), {}, "sequence3", "character 'a' at position 2 is not allowed; must be digits", "3 digits"),
    (mask_resident_id, (5,), {}, "resident_id", "must be a string, got int", "a string"),
    (mask_resident_id, (None,), {"field": "signer_id"}, "signer_id", "must be a string, got NoneType", "a string"),
    (resident_id_gender, ("110105194912310021",), {}, "resident_id", "check character is '1', expected 'X'", RID_ALLOWED),
    (resident_id_gender, ("110105194912310021",), {"field": "g"}, "g", "check character is '1', expected 'X'", RID_ALLOWED),
    (resident_id_birth_date, ("110105194912310021",), {}, "resident_id", "check character is '1', expected 'X'", RID_ALLOWED),
    (resident_id_birth_date, ("110105194912310021",), {"field": "b"}, "b", "check character is '1', expected 'X'", RID_ALLOWED),
    (digit_rows, (np.array([-1]), 8), {}, "numbers", "must fit in 8 decimal digits", "0..99999999"),
    (digit_rows, (np.array([5, 10**3]), 3), {}, "numbers", "must fit in 3 decimal digits", "0..999"),
    (uscc_check_chars, (ascii_rows(["9135010OM000100Y4"], 17),), {}, "uscc", "contains a character outside the alphabet", USCC_ALLOWED),
    (org_code_check_chars, (ascii_rows(["M00010-Y"], 8),), {}, "org_code", "contains a character outside the alphabet", "0-9 and uppercase A-Z"),
    (resident_id_check_chars, (ascii_rows(["1101051949123100X"], 17),), {}, "resident_id", "contains a character outside the alphabet", RID_ALLOWED),
]


@pytest.mark.parametrize(("func", "args", "kwargs", "field", "reason", "allowed"), ERROR_CASES)
def test_errors_name_the_field_the_reason_and_what_is_allowed(func, args, kwargs, field, reason, allowed) -> None:
    with pytest.raises(InvalidInput) as info:
        func(*args, **kwargs)
    e = info.value
    assert (e.field, e.reason, e.allowed) == (field, reason, allowed)
    assert e.message == f"{field}: {reason} (allowed: {allowed})"


def test_digit_rows_are_exact_for_wide_numbers():
    big = 123_456_789_012_345_678  # beyond float precision: the digits come from integer division
    assert list(rows_to_str(digit_rows(np.array([big, 0]), 18))) == ["123456789012345678", "000000000000000000"]
    assert list(rows_to_str(digit_rows([7, 999], 3))) == ["007", "999"]


def test_rows_to_str_reads_any_integer_array_as_bytes():
    assert list(rows_to_str(np.array([[49, 50], [65, 89]], dtype=np.int64))) == ["12", "AY"]
    assert list(rows_to_str(ascii_rows(["91", "Y0"], 2))) == ["91", "Y0"]


def test_vector_check_forms_reject_a_bad_character_anywhere_in_any_row():
    good = "91350100M000100Y4"
    for i in range(17):
        bad = good[:i] + "O" + good[i + 1 :]
        with pytest.raises(InvalidInput):
            uscc_check_chars(ascii_rows([good, bad], 17))
    assert rows_to_str(uscc_check_chars(ascii_rows([good, "00000000000000000"], 17))[:, None]).tolist() == ["3", "0"]
    with pytest.raises(InvalidInput):
        resident_id_check_chars(ascii_rows(["11010519491231002", "1101051949123100/"], 17))
    with pytest.raises(InvalidInput):
        org_code_check_chars(ascii_rows(["60003734", "6000373a"], 8))
