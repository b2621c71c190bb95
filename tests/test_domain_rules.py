"""Small domain rules, each on both sides of its boundary: whole numbers on the wire,
ISO dates, "never after the business date", identifier shapes, refusals and limits."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from sandu.domain.dates import parse_iso_date, require_not_future
from sandu.domain.errors import Busy, Conflict, NotAuthenticated, NotPermitted, ReauthenticationRequired, TooManyRequests
from sandu.domain.keys import MAX_ROW_ID, is_row_id, is_uuid
from sandu.domain.numbers import MAX_DIGITS, whole_number

NOON_BEIJING = datetime(2026, 11, 29, 4, 0, tzinfo=timezone.utc)  # 12:00 in Beijing, 2026-11-29


@pytest.mark.parametrize(("value", "expected"), [(7, 7), (0, 0), (-3, -3), (Decimal("202.0"), 202), (Decimal("2E+2"), 200), (Decimal("-1.000"), -1),
                                                 ("7", "7"), (None, None), (True, True)])
def test_whole_numbers_pass_as_ints_and_everything_else_untouched(value, expected):
    out = whole_number(value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(("value", "reason"), [
    (1.0, "binary fraction, got 1.0"), (Decimal("202.5"), "must be a whole number, got Decimal('202.5')"),
    (Decimal("NaN"), f"at most {MAX_DIGITS} digits"), (Decimal("Infinity"), f"at most {MAX_DIGITS} digits"),
    (Decimal(f"1E+{MAX_DIGITS + 1}"), f"at most {MAX_DIGITS} digits"), (Decimal("0.5"), "must be a whole number"),
])
def test_fractions_floats_and_huge_numbers_are_refused(value, reason):
    with pytest.raises(ValueError) as info:
        whole_number(value)
    assert reason in str(info.value)


def test_the_largest_whole_number_allowed_passes():
    assert whole_number(Decimal(f"1E+{MAX_DIGITS}")) == 10**MAX_DIGITS


@pytest.mark.parametrize("text", ["2026-11-29", "2024-02-29", "0001-01-01", "9999-12-31"])
def test_iso_dates_parse(text):
    assert parse_iso_date(text) == date.fromisoformat(text)


@pytest.mark.parametrize(("value", "reason"), [
    (0, "YYYY-MM-DD, got 0"), (20261129, "YYYY-MM-DD"), ("20261129", "YYYY-MM-DD"), ("2026-11-29T00:00:00", "YYYY-MM-DD"),
    ("2026-1-9", "YYYY-MM-DD"), ("2026-02-30", "2026-02-30 is not a calendar date"), ("2023-02-29", "is not a calendar date"),
    (date(2026, 11, 29), "YYYY-MM-DD"), (" 2026-11-29", "YYYY-MM-DD"), ("２０２６-11-29", "YYYY-MM-DD"),
])
def test_anything_but_an_iso_date_is_refused(value, reason):
    with pytest.raises(ValueError) as info:
        parse_iso_date(value)
    assert reason in str(info.value)


def test_never_after_the_business_date_is_a_beijing_date():
    assert require_not_future(date(2026, 11, 29), NOON_BEIJING, "on_date") == date(2026, 11, 29)
    assert require_not_future(date(2026, 11, 28), NOON_BEIJING, "on_date") == date(2026, 11, 28)
    with pytest.raises(Conflict) as info:
        require_not_future(date(2026, 11, 30), NOON_BEIJING, "on_date")
    e = info.value
    assert (e.field, e.http_status, e.allowed) == ("on_date", 409, "2026-11-29 or earlier")
    assert e.message == "on_date: 2026-11-30 is after the business date 2026-11-29 (allowed: 2026-11-29 or earlier)"
    late_utc = datetime(2026, 11, 29, 16, 30, tzinfo=timezone.utc)  # already 2026-11-30 in Beijing
    assert require_not_future(date(2026, 11, 30), late_utc, "business_date") == date(2026, 11, 30)


@pytest.mark.parametrize(("value", "ok"), [
    ("00000000-0000-0000-0000-000000000000", True), ("0123abcd-4567-89ef-0123-456789abcdef", True),
    ("0123ABCD-4567-89EF-0123-456789ABCDEF", False), ("0123abcd-4567-89ef-0123-456789abcde", False),
    ("0123abcd-4567-89ef-0123-456789abcdef0", False), ("0123abcd4567-89ef-0123-456789abcdef", False), ("", False), (None, False), (5, False),
    ("0123abcd-4567-89ef-0123-456789abcdeg", False),
])
def test_uuid_shape(value, ok):
    assert is_uuid(value) is ok


@pytest.mark.parametrize(("value", "ok"), [(1, True), (MAX_ROW_ID, True), (0, False), (MAX_ROW_ID + 1, False), (-1, False), (True, False),
                                           ("1", False), (1.0, False)])
def test_row_id_bounds(value, ok):
    assert is_row_id(value) is ok
    assert MAX_ROW_ID == 2**31 - 1


def test_a_refusal_names_its_rule_and_reads_well_with_or_without_a_field():
    e = NotPermitted(None, "you reviewed this offer", "another officer", rule="maker_checker.reviewer")
    assert (e.field, e.rule, e.allowed, e.http_status, e.code) == (None, "maker_checker.reviewer", "another officer", 403, "not_permitted")
    assert str(e) == e.message == "you reviewed this offer (allowed: another officer) [rule maker_checker.reviewer]"
    f = NotPermitted("uscc", "names another person")
    assert (f.field, f.rule, f.message) == ("uscc", None, "uscc: names another person")
    assert NotPermitted(None, "no").message == "no"


def test_limits_and_identities_say_when_to_come_back():
    t = TooManyRequests("slow down", 7)
    assert (t.retry_after_s, t.http_status, t.code, t.message) == (7, 429, "too_many_requests", "slow down")
    assert TooManyRequests("x", 0).retry_after_s == 1 and TooManyRequests("x", -5).retry_after_s == 1
    assert (Busy("busy").retry_after_s, Busy.http_status, Busy.code) == (1, 503, "busy")
    assert (NotAuthenticated("who?").http_status, NotAuthenticated.code, NotAuthenticated("x").retry_after_s) == (401, "not_authenticated", None)
    assert issubclass(ReauthenticationRequired, NotAuthenticated) and ReauthenticationRequired.code == "reauthentication_required"
