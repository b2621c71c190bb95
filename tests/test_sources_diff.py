"""The readable difference between two profile snapshots (what `sandu sources refresh` prints)."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.diff import diff_profiles
from sandu.sources.profile import build_profile

AS_OF = date(2026, 10, 31)
TABLE = generate(30, 5, AS_OF)


def _payloads(i: int) -> dict:
    return source_payloads(row(TABLE, i), AS_OF)


def _profile(payloads: dict, uscc: str | None = None, unavailable=frozenset()):
    return build_profile(uscc or row(TABLE, 0)["uscc"], AS_OF, payloads, unavailable)


def test_the_same_data_has_no_difference():
    p = _profile(_payloads(0))
    assert diff_profiles(p, _profile(_payloads(0))) == []


def test_changed_numbers_carry_their_delta_and_relative_change_in_words():
    before = _payloads(0)
    after = copy.deepcopy(before)
    after["tax"]["years"][-1]["revenue_fen"] = before["tax"]["years"][-1]["revenue_fen"] * 9 // 10
    after["credit_bureau"]["overdue_count_24m"] = before["credit_bureau"]["overdue_count_24m"] + 2
    changes = {c.name: c for c in diff_profiles(_profile(before), _profile(after))}
    rev = changes["revenue_fen"]
    assert rev.kind == "changed" and rev.delta == after["tax"]["years"][-1]["revenue_fen"] - before["tax"]["years"][-1]["revenue_fen"]
    assert rev.relative == pytest.approx(-0.1, abs=1e-5)
    assert rev.text().startswith("feature revenue_fen: ") and "→" in rev.text() and "-10.0%" in rev.text() and "万" in rev.text()
    od = changes["overdue_count_24m"]
    assert od.delta == 2 and od.text().endswith("(+2" + (f", {od.relative:+.1%})" if od.relative is not None else ")"))
    assert "revenue_growth" in changes and "rd_ratio" in changes  # derived features follow


def test_a_source_that_went_silent_shows_as_cleared_features_and_a_raised_flag():
    before = _profile(_payloads(0))
    payloads = _payloads(0)
    del payloads["credit_bureau"]
    after = _profile(payloads, unavailable={"credit_bureau"})
    changes = diff_profiles(before, after)
    flags = [c for c in changes if c.what == "flag"]
    assert [c.name for c in flags] == ["credit_bureau:unavailable"] and flags[0].text() == "flag credit_bureau:unavailable: raised"
    gone = {c.name for c in changes if c.kind == "removed" and c.what == "feature"}
    assert {"overdue_count_24m", "queries_3m", "loans_outstanding_fen"} <= gone


def test_certifications_and_collateral_differences_are_itemised():
    before = _payloads(0)
    after = copy.deepcopy(before)
    after["ip"]["certifications"] = [*before["ip"]["certifications"], "专精特新"]
    after["collateral"]["assets"] = [{"id": "C9", "kind": "residential", "appraised_value_fen": 100_000_000, "secured_debt_fen": 0}]
    changes = diff_profiles(_profile(before), _profile(after))
    names = {(c.what, c.name, c.kind) for c in changes}
    if "专精特新" not in before["ip"]["certifications"]:
        assert ("feature", "certifications[专精特新]", "added") in names
    assert ("collateral", "C9", "added") in names
    assert all(("collateral", a["id"], "removed") in names for a in before["collateral"]["assets"])
    assert any(c.text() == "collateral C9: new, appraised_value_fen 100.00万, kind 'residential', secured_debt_fen 0.00元" for c in changes)


def test_two_enterprises_are_not_compared():
    with pytest.raises(ValueError, match="two enterprises"):
        diff_profiles(_profile(_payloads(0)), _profile(_payloads(1), uscc=row(TABLE, 1)["uscc"]))


@given(st.integers(0, 29), st.integers(0, 29))
@settings(max_examples=60, deadline=None)
def test_any_two_snapshots_diff_both_ways_symmetrically(i, j):
    uscc = row(TABLE, 0)["uscc"]
    a, b = _profile(_payloads(i), uscc), _profile(_payloads(j), uscc)
    forward, backward = diff_profiles(a, b), diff_profiles(b, a)
    assert len(forward) == len(backward)
    assert {(c.what, c.name) for c in forward} == {(c.what, c.name) for c in backward}
    flip = {"added": "removed", "removed": "added", "changed": "changed"}
    assert {(c.name, flip[c.kind]) for c in forward} == {(c.name, c.kind) for c in backward}
    assert all(c.text() for c in forward)
    assert (forward == []) == (a.sha256 == b.sha256)
