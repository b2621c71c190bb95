"""Tech evaluation (科创评价) on the published MOST indicators, and the risk scorecard artifact."""

from __future__ import annotations

import copy
import json
import math
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.scoring.risk import (
    CHALLENGER_MODEL,
    MAX_LOGIT,
    MAX_MAP_ENTRIES,
    MAX_NAME_LENGTH,
    MAX_TERMS,
    PD_PLACES,
    ModelError,
    RiskModel,
    RiskScore,
    Term,
    load_model,
    model_from_json,
    score,
)
from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.profile import build_profile, canonical_sha256


def test_risk_model_artifact_scores_without_training_libraries():
    m = load_model(CHALLENGER_MODEL)
    assert len(m.sha256) == 64 and m.label == "risk-expert@0.1.0"
    good = score(m, {"overdue_count_24m": 0, "tax_credit_grade": "A", "revenue_growth": 0.2, "cit_margin": 0.03, "debt_to_revenue": 0.05})
    bad = score(m, {"overdue_count_24m": 4, "tax_credit_grade": "D", "revenue_growth": -0.3, "cit_margin": 0.0, "debt_to_revenue": 1.2, "utility_arrears": True})
    assert 0 < good.pd < bad.pd < 1
    assert good.points > bad.points
    assert bad.reasons[0].startswith(("OVERDUE_HISTORY", "TAX_GRADE", "LEVERAGE", "REVENUE_TREND"))
    assert len(bad.reasons) == 4
    assert not any(r.startswith("OVERDUE_HISTORY") for r in good.reasons)


def test_points_follow_pdo_scale():
    m = load_model(CHALLENGER_MODEL)
    s = score(m, {})
    odds = (1 - s.pd) / s.pd
    assert s.points == round(600 + 20 / math.log(2) * math.log(odds / 50))


def test_risk_score_ranks_the_hidden_truth_of_the_universe():
    """On the simulated universe the expert scorecard must rank default better than chance."""
    as_of = date(2026, 10, 31)
    table = generate(4000, 11, as_of)
    m = load_model(CHALLENGER_MODEL)
    pds = np.array([score(m, build_profile(r["uscc"], as_of, source_payloads(r, as_of)).features).pd for r in (row(table, i) for i in range(4000))])
    y = table["default_12m"]
    # AUC by the rank-sum formula
    ranks = pds.argsort().argsort() + 1
    n1, n0 = y.sum(), (~y).sum()
    auc = (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    print(f"expert scorecard AUC on 4,000 simulated enterprises: {auc:.3f}")
    assert auc > 0.70, auc


# --- the model artifact is validated: ModelError names the key path and the reason ------

SHIPPED = json.loads(resources.files("sandu.scoring.models").joinpath("risk_expert_v0.json").read_text(encoding="utf-8"))


def shipped() -> dict[str, Any]:
    return copy.deepcopy(SHIPPED)


def model_error(data: Any) -> ModelError:
    with pytest.raises(ModelError) as e:
        model_from_json(data)
    assert isinstance(e.value, ValueError)
    assert str(e.value) == f"risk model {e.value.path}: {e.value.reason}"
    assert len(str(e.value)) < 400
    return e.value


def edited(path: tuple[Any, ...], value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    data = shipped()
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    if delete:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return data


def test_the_shipped_model_reads_as_written():
    m = load_model(CHALLENGER_MODEL)
    assert (m.name, m.version, m.intercept, m.base_score, m.base_odds, m.pdo) == ("risk-expert", "0.1.0", -4.3, 600.0, 50.0, 20.0)
    assert m.sha256 == canonical_sha256(SHIPPED) and m.label == "risk-expert@0.1.0"
    first, grade, arrears = m.terms[0], m.terms[1], m.terms[6]
    assert first == Term("overdue_count_24m", "clip", 0.55, 1.0, 0.0, 0.0, 5.0, None, SHIPPED["terms"][0]["reason"])
    assert grade.mapping == {"A": 0.0, "B": 0.6, "M": 1.0, "C": 1.6, "D": 2.4} and (grade.lo, grade.hi) == (-math.inf, math.inf)
    assert arrears.transform == "bool" and arrears.mapping is None
    assert all(isinstance(x, float) for t in m.terms for x in (t.coef, t.missing, t.reference, t.lo, t.hi))
    assert model_from_json(shipped()).sha256 == m.sha256
    assert model_from_json(edited(("intercept",), -4.2)).sha256 != m.sha256


def test_a_reason_defaults_to_the_feature_name():
    data = edited(("terms", 0, "reason"), delete=True)
    assert model_from_json(data).terms[0].reason == "overdue_count_24m"


def test_a_description_is_allowed_and_other_keys_are_not():
    assert model_from_json(edited(("description",), delete=True)).name == "risk-expert"
    e = model_error({**shipped(), "comment": "x"})
    assert e.path == "model" and "has unknown key 'comment' (allowed: description, intercept, name, points, terms, version)" in e.reason


@pytest.mark.parametrize("data", [None, [], "model", 3])
def test_a_model_that_is_not_an_object_is_refused(data: Any) -> None:
    e = model_error(data)
    assert e.path == "model" and e.reason.startswith("must be an object, got ")


@pytest.mark.parametrize("key", ["name", "version", "intercept", "terms", "points"])
def test_a_missing_top_level_key_is_named(key: str) -> None:
    e = model_error(edited((key,), delete=True))
    assert (e.path, e.reason) == (key, "is missing")


@pytest.mark.parametrize("key", ["base_score", "base_odds", "pdo"])
def test_a_missing_points_key_is_named(key: str) -> None:
    e = model_error(edited(("points", key), delete=True))
    assert (e.path, e.reason) == (f"points.{key}", "is missing")


@pytest.mark.parametrize("key", ["feature", "transform", "coef", "missing", "reference"])
def test_a_missing_term_key_is_named(key: str) -> None:
    e = model_error(edited(("terms", 2, key), delete=True))
    assert (e.path, e.reason) == (f"terms[2].{key}", "is missing")


def test_unknown_keys_of_terms_and_points_are_refused():
    e = model_error(edited(("terms", 3, "coeff"), 1))
    assert e.path == "terms[3]" and "unknown key 'coeff'" in e.reason
    e = model_error(edited(("points", "scale"), 1))
    assert e.path == "points" and "unknown key 'scale'" in e.reason
    e = model_error(edited(("points",), [600, 50, 20]))
    assert e.path == "points" and "must be an object" in e.reason
    e = model_error(edited(("terms", 1), "tax"))
    assert e.path == "terms[1]" and "must be an object, got 'tax'" in e.reason


@pytest.mark.parametrize(("terms", "says"), [([], "got 0 terms"), ("x", "got 'x'"), ({"a": 1}, "got {'a': 1}"), (None, "got None")])
def test_terms_must_be_a_list_of_1_to_200(terms: Any, says: str) -> None:
    e = model_error(edited(("terms",), terms))
    assert e.path == "terms" and e.reason == f"must be a list of 1..{MAX_TERMS} terms, {says}"


def test_at_most_200_terms():
    term = SHIPPED["terms"][0]
    assert len(model_from_json(edited(("terms",), [term] * MAX_TERMS)).terms) == MAX_TERMS == 200
    e = model_error(edited(("terms",), [term] * (MAX_TERMS + 1)))
    assert "got 201 terms" in e.reason


@pytest.mark.parametrize("transform", ["log", "CLIP", "", None, 1])
def test_an_unknown_transform_is_refused(transform: Any) -> None:
    e = model_error(edited(("terms", 0, "transform"), transform))
    assert e.path == "terms[0].transform" and e.reason == f"unknown transform {transform!r} (allowed: clip, map, bool)"


def test_map_terms_need_a_mapping_and_others_have_none():
    e = model_error(edited(("terms", 1, "map"), delete=True))
    assert (e.path, e.reason) == ("terms[1].map", "is missing: a map term needs its mapping")
    e = model_error(edited(("terms", 0, "map"), {"A": 1}))
    assert e.path == "terms[0].map" and e.reason == "only a map term has a mapping, this one is 'clip'"
    e = model_error(edited(("terms", 6, "map"), {"A": 1}))
    assert e.path == "terms[6].map" and "this one is 'bool'" in e.reason


@pytest.mark.parametrize(("mapping", "says"), [({}, "must be a non-empty object"), ([["A", 0]], "must be a non-empty object"), ("A", "category")])
def test_a_mapping_is_a_non_empty_object(mapping: Any, says: str) -> None:
    e = model_error(edited(("terms", 1, "map"), mapping))
    assert e.path == "terms[1].map" and says in e.reason and e.reason.endswith(f"got {mapping!r}")


def test_a_mapping_has_at_most_100_categories_of_numbers():
    ok = {f"k{i}": 0 for i in range(MAX_MAP_ENTRIES)}
    assert len(model_from_json(edited(("terms", 1, "map"), ok)).terms[1].mapping) == MAX_MAP_ENTRIES == 100
    e = model_error(edited(("terms", 1, "map"), {**ok, "extra": 0}))
    assert e.path == "terms[1].map" and e.reason == "has 101 categories, more than 100"
    e = model_error(edited(("terms", 1, "map", "B"), "0.6"))
    assert e.path == "terms[1].map.B" and e.reason == "must be a number, got '0.6'"


@pytest.mark.parametrize("key", ["lo", "hi"])
def test_clip_terms_need_both_bounds(key: str) -> None:
    e = model_error(edited(("terms", 0, key), delete=True))
    assert (e.path, e.reason) == (f"terms[0].{key}", "is missing: a clip term needs its bounds lo < hi")


@pytest.mark.parametrize(("lo", "hi", "ok"), [(0, 5, True), (4.999, 5, True), (5, 5, False), (6, 5, False)])
def test_clip_bounds_must_be_increasing(lo: float, hi: float, ok: bool) -> None:
    data = edited(("terms", 0, "lo"), lo)
    data["terms"][0]["hi"] = hi
    if ok:
        assert (model_from_json(data).terms[0].lo, model_from_json(data).terms[0].hi) == (lo, hi)
    else:
        e = model_error(data)
        assert e.path == "terms[0].hi" and e.reason == f"must be above lo ({lo:g}), got {hi:g}"


@pytest.mark.parametrize(("term", "key"), [(1, "lo"), (6, "hi")])
def test_only_clip_terms_have_bounds(term: int, key: str) -> None:
    e = model_error(edited(("terms", term, key), 1))
    assert e.path == f"terms[{term}].{key}" and "only a clip term has bounds" in e.reason


@pytest.mark.parametrize(
    ("path", "value", "where", "says"),
    [
        (("intercept",), "x", "intercept", "must be a number, got 'x'"),
        (("intercept",), True, "intercept", "must be a number, got True"),
        (("intercept",), None, "intercept", "must be a number, got None"),
        (("intercept",), math.nan, "intercept", "must be a finite number, got nan"),
        (("terms", 0, "coef"), math.inf, "terms[0].coef", "must be a finite number, got inf"),
        (("terms", 0, "missing"), -math.inf, "terms[0].missing", "must be a finite number, got -inf"),
        (("terms", 0, "reference"), 1e16, "terms[0].reference", "must be within ±1e+15, got 1e+16"),
        (("terms", 0, "lo"), -(10**15) - 1, "terms[0].lo", "must be within ±1e+15, got -1000000000000001"),
        (("terms", 0, "hi"), 10**400, "terms[0].hi", "must be within ±1e+15, got 1" + "0" * 46 + "..."),
        (("points", "base_score"), "600", "points.base_score", "must be a number, got '600'"),
        (("points", "base_odds"), 0, "points.base_odds", "must be positive, got 0"),
        (("points", "base_odds"), -1.5, "points.base_odds", "must be positive, got -1.5"),
        (("points", "pdo"), 0.0, "points.pdo", "must be positive, got 0.0"),
    ],
)
def test_numbers_must_be_finite_and_bounded(path: tuple[Any, ...], value: Any, where: str, says: str) -> None:
    e = model_error(edited(path, value))
    assert (e.path, e.reason) == (where, says)


def test_numbers_at_the_bound_and_small_positives_are_accepted():
    data = edited(("terms", 0, "reference"), 10**15)
    data["terms"][0]["missing"] = -1e15
    data["points"]["base_odds"] = 1e-9
    data["points"]["pdo"] = 1
    data["points"]["base_score"] = -5
    m = model_from_json(data)
    assert (m.terms[0].reference, m.terms[0].missing, m.base_odds, m.pdo, m.base_score) == (1e15, -1e15, 1e-9, 1.0, -5.0)


@pytest.mark.parametrize(
    ("path", "value"),
    [(("name",), ""), (("name",), 5), (("version",), None), (("version",), "v" * 201), (("terms", 0, "feature"), ""), (("terms", 0, "reason"), ["x"])],
)
def test_names_and_reasons_are_text(path: tuple[Any, ...], value: Any) -> None:
    e = model_error(edited(path, value))
    assert e.path == (path[0] if len(path) == 1 else f"terms[0].{path[-1]}")
    assert e.reason.startswith(f"must be text of 1..{MAX_NAME_LENGTH} characters, got {repr(value)[:10]}")


def test_text_of_the_longest_length_is_accepted():
    assert model_from_json(edited(("version",), "v" * MAX_NAME_LENGTH)).version == "v" * 200


# --- scoring: any features, a PD strictly within (0, 1) ---------------------------------

MODEL = load_model(CHALLENGER_MODEL)
CLIP_TERMS = [t for t in MODEL.terms if t.transform == "clip"]

feature_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400), st.floats(), st.text(max_size=4),
    st.sampled_from(["A", "B", "M", "C", "D", "E"]), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
any_features = st.dictionaries(st.sampled_from([t.feature for t in MODEL.terms] + ["other", ""]), feature_values, max_size=12)


def expected_value(term: Term, raw: Any) -> float:
    """The documented transform, restated independently of `Term.value`."""
    if term.transform == "bool":
        return {True: 1.0, False: 0.0}[raw] if type(raw) is bool else term.missing
    if term.transform == "map":
        return term.mapping[raw] if type(raw) is str and raw in term.mapping else term.missing
    if type(raw) not in (int, float) or raw != raw:
        return term.missing
    return term.lo if raw <= term.lo else term.hi if raw >= term.hi else float(raw)


@settings(max_examples=300, deadline=None)
@given(any_features, st.integers(0, 8))
def test_any_features_give_a_pd_within_0_1_points_and_reasons_by_impact(features: dict[str, Any], max_reasons: int) -> None:
    s = score(MODEL, features, max_reasons)
    assert 0 < s.pd < 1 and math.isfinite(s.pd)
    assert type(s.points) is int
    values = [(t, expected_value(t, features.get(t.feature))) for t in MODEL.terms]
    logit = MODEL.intercept + sum(t.coef * v for t, v in values)
    assert s.pd == pytest.approx(1 / (1 + math.exp(-logit)), rel=1e-12)
    impact = {t.reason: t.coef * (v - t.reference) for t, v in values}
    adverse = [r for r in sorted(impact, key=lambda r: -impact[r]) if impact[r] > 1e-9]
    assert len(s.reasons) <= max_reasons and set(s.reasons) <= set(impact)
    assert list(s.reasons) == adverse[:max_reasons]
    assert [impact[r] for r in s.reasons] == sorted((impact[r] for r in s.reasons), reverse=True)


@settings(max_examples=300, deadline=None)
@given(any_features, st.sampled_from(CLIP_TERMS), st.integers(-(10**20), 10**20) | st.floats(-1e300, 1e300), st.floats(0, 1e300) | st.integers(0, 10**20))
def test_raising_a_clip_feature_moves_the_pd_with_its_coefficient(features: dict[str, Any], term: Term, x: float, up: float) -> None:
    low = score(MODEL, {**features, term.feature: x}).pd
    high = score(MODEL, {**features, term.feature: x + up}).pd
    if term.coef > 0:
        assert high >= low
    else:
        assert high <= low


@pytest.mark.parametrize(
    ("raw", "value"),
    [(None, 1.0), (-1, 0.0), (0, 0.0), (2, 2.0), (2.5, 2.5), (5, 5.0), (6, 5.0), (10**400, 5.0), (-(10**400), 0.0), (math.inf, 5.0),
     (-math.inf, 0.0), (math.nan, 1.0), (True, 1.0), (False, 1.0), ("3", 1.0), ([3], 1.0)],
)
def test_a_clip_term_holds_numbers_within_its_bounds(raw: Any, value: float) -> None:
    term = MODEL.terms[0]  # overdue_count_24m: clip 0..5, missing 1
    assert term.value(raw) == value and type(term.value(raw)) is float


@pytest.mark.parametrize(("raw", "value"), [("A", 0.0), ("D", 2.4), ("E", 1.5), ("a", 1.5), (None, 1.5), (1, 1.5), (["A"], 1.5), ({"A": 0}, 1.5)])
def test_a_map_term_looks_up_text(raw: Any, value: float) -> None:
    assert MODEL.terms[1].value(raw) == value


@pytest.mark.parametrize(("raw", "value"), [(True, 1.0), (False, 0.0), (None, 0.5), (1, 0.5), (0, 0.5), ("yes", 0.5), ([], 0.5)])
def test_a_bool_term_takes_only_yes_or_no(raw: Any, value: float) -> None:
    assert MODEL.terms[6].value(raw) == value


def one_term_model(intercept: float, coef: float = 1.0, reference: float = 0.0) -> RiskModel:
    return model_from_json({
        "name": "t", "version": "1", "intercept": intercept,
        "terms": [{"feature": "x", "transform": "clip", "lo": -1e6, "hi": 1e6, "coef": coef, "missing": 0, "reference": reference, "reason": "X"}],
        "points": {"base_score": 600, "base_odds": 50, "pdo": 20},
    })


def test_log_odds_are_held_within_30_so_the_pd_never_reaches_0_or_1():
    assert MAX_LOGIT == 30.0
    top, bottom = 1 / (1 + math.exp(-30.0)), 1 / (1 + math.exp(30.0))
    assert score(one_term_model(0), {"x": 1e6}).pd == top < 1
    assert score(one_term_model(0), {"x": -1e6}).pd == bottom > 0
    assert score(one_term_model(29.5), {}).pd == 1 / (1 + math.exp(-29.5))
    assert score(one_term_model(-29.5), {}).pd == 1 / (1 + math.exp(29.5))
    assert score(one_term_model(0), {"x": 30.5}).pd == top and score(one_term_model(0), {"x": -30.5}).pd == bottom
    assert score(one_term_model(0), {"x": -1e6}).points == round(600 + 20 / math.log(2) * math.log(math.exp(30) / 50))


def test_a_reason_needs_an_impact_above_1e_9():
    m = one_term_model(0, coef=1.0, reference=0.0)
    assert score(m, {"x": 1e-9}).reasons == ()
    assert score(m, {"x": 2e-9}).reasons == ("X",)
    assert score(m, {"x": 0.5}).reasons == ("X",)
    assert score(m, {"x": 0}).reasons == () and score(m, {"x": -1}).reasons == ()
    assert score(one_term_model(0, coef=-1.0), {"x": -0.5}).reasons == ("X",)


def test_at_most_max_reasons_worst_first():
    bad = {"overdue_count_24m": 5, "tax_credit_grade": "D", "revenue_growth": -0.5, "cit_margin": 0, "debt_to_revenue": 1.5,
           "si_arrears_months": 5, "utility_arrears": True, "electricity_growth": -0.5}
    all_reasons = score(MODEL, bad, MAX_TERMS).reasons  # impacts 2.75, 2.4, 2.32, 2.0, 1.43, 0.8, 0.72, 0.5
    assert [r.split(":")[0] for r in all_reasons] == [
        "OVERDUE_HISTORY", "TAX_GRADE", "LEVERAGE", "SOCIAL_INSURANCE_ARREARS", "REVENUE_TREND", "UTILITY_ARREARS", "ACTIVITY_TREND", "PROFITABILITY",
    ]
    assert score(MODEL, bad).reasons == all_reasons[:4]
    assert score(MODEL, bad, 1).reasons == all_reasons[:1]
    assert score(MODEL, bad, 0).reasons == ()


@pytest.mark.parametrize("n", [-1, MAX_TERMS + 1, 2.0, True, "4", None])
def test_max_reasons_is_a_count(n: Any) -> None:
    with pytest.raises(ValueError) as e:
        score(MODEL, {}, n)
    assert str(e.value) == f"max_reasons must be an integer 0..200, got {n!r}"


# --- the one PD rounding rule: half-up at 6 places, on the shortest decimal of the float --


@pytest.mark.parametrize(
    ("pd", "rounded"),
    [
        (0.0000005, "0.000001"),  # exactly half: up
        (0.00000049999, "0.000000"),
        (0.0000015, "0.000002"),  # half-even would give 0.000002 too; the next one tells them apart
        (0.0000025, "0.000003"),  # half-up, not half-even (0.000002)
        (0.1234565, "0.123457"),  # the binary float is 0.12345649999…; its shortest decimal is what counts
        (0.9999995, "1.000000"),
        (0.9999994999, "0.999999"),
        (0.05, "0.050000"),
    ],
)
def test_pd_rounding_is_half_up_at_6_places(pd: float, rounded: str) -> None:
    s = RiskScore(pd=pd, points=0, reasons=())
    assert s.pd_rounded == Decimal(rounded) and str(s.pd_rounded) == rounded
    assert s.to_json() == {"pd": float(Decimal(rounded)), "points": 0, "reasons": []}
    assert PD_PLACES == Decimal("0.000001")


def test_a_score_serialises_its_rounded_pd():
    s = RiskScore(pd=0.0123456789, points=612, reasons=("A", "B"))
    assert s.to_json() == {"pd": 0.012346, "points": 612, "reasons": ["A", "B"]}
