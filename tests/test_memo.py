"""`KeysReadMemo`: a function of a features dict is kept by what it read of them, and only that."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.domain import memo
from sandu.domain.memo import KeysReadMemo
from sandu.origination import counterfactual as cf
from sandu.origination import service as orig
from sandu.policy.bundle import load_bundle
from sandu.scoring.risk import load_model
from sandu.scoring.risk import score as risk_score
from sandu.scoring.tech import evaluate_tech
from sandu.scoring.tech_config import load_tech_config
from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.profile import CheckedSources, build_profile

AS_OF = date(2026, 10, 31)
KEYS = ("a", "b", "c", "d")


def branching(f: dict) -> tuple:
    """Reads `a`; then `b` or `c` by what `a` holds; `d` only when `c` is there and true — a different set of keys read
    depending on the values, as the tech evaluation's rules do."""
    a = f.get("a")
    if a is None or a is False:
        return ("no a", "c" in f and f.get("c") and f.get("d"))
    if isinstance(a, int) and not isinstance(a, bool) and a > 1:
        return ("big a", repr(a), repr(f.get("b")))
    return ("small a", repr(a), repr(f.get("c")))


values = st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from([1.0, 2.0, float("nan"), Decimal("1"), Decimal("1.0"), "1", [1], [1.0]])
features = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS))


@settings(max_examples=300, deadline=None)
@given(st.lists(features, min_size=1, max_size=12))
def test_a_kept_result_is_always_the_one_the_function_gives(seq):
    calls = []
    kept = KeysReadMemo(lambda f: calls.append(1) or branching(f))
    for f in seq:
        assert kept(f) == branching(f), f
    assert kept.calls == len(seq) and kept.evaluations == len(calls) <= len(seq)


def test_features_that_differ_only_where_it_did_not_read_are_not_evaluated_again():
    kept = KeysReadMemo(branching)
    assert kept({"a": 2, "b": 1, "c": 5}) == ("big a", "2", "1")
    assert kept({"a": 2, "b": 1, "c": 6, "d": 7}) == ("big a", "2", "1")  # c and d are not read when a > 1
    assert kept.evaluations == 1
    assert kept({"a": 2, "b": 2}) == ("big a", "2", "2")  # b is read: changed, evaluated again
    assert kept.evaluations == 2


@pytest.mark.parametrize("first, second", [
    ({"a": 1}, {"a": True}),  # 1 and True are equal in Python and told apart here
    ({"a": 1}, {"a": 1.0}),
    ({"a": Decimal("1")}, {"a": Decimal("1.0")}),
    ({"a": None}, {}),  # a key holding None, and a key absent
    ({"a": 2, "b": None}, {"a": 2}),
    ({"a": 2, "b": [1]}, {"a": 2, "b": [1.0]}),
])
def test_answers_are_told_apart_by_type_and_presence(first, second):
    kept = KeysReadMemo(lambda f: ("a" in f, repr(f.get("a")), repr(f.get("b"))))
    kept(first)
    kept(second)
    assert kept.evaluations == 2


def test_a_nan_read_is_the_same_answer_when_its_text_is():
    kept = KeysReadMemo(lambda f: repr(f.get("a")))
    kept({"a": float("nan")})
    assert kept({"a": float("nan")}) == "nan" and kept.evaluations == 1


@pytest.mark.parametrize("look", [list, len, lambda f: f.items(), lambda f: f.keys(), lambda f: f.values(), dict, lambda f: {**f},
                                  lambda f: f.copy(), lambda f: f == {}, lambda f: f != {}, lambda f: [k for k in f], reversed, repr, str,
                                  lambda f: f"{f}", lambda f: f | {}, lambda f: {} | f])
def test_a_call_that_looked_at_the_whole_features_is_not_kept(look):
    kept = KeysReadMemo(lambda f: (f.get("a"), look(f)) and f.get("a"))
    assert kept({"a": 1, "b": 2}) == 1
    assert kept({"a": 1, "b": 3}) == 1
    assert kept.evaluations == 2 and kept.kept == []


@pytest.mark.parametrize("change", [lambda f: f.__setitem__("a", 1), lambda f: f.pop("a"), lambda f: f.update(a=1), lambda f: f.setdefault("z", 1),
                                    lambda f: f.clear(), lambda f: f.__delitem__("a"), lambda f: f.popitem()])
def test_a_function_that_changes_the_features_is_refused_and_they_are_left_as_they_were(change):
    given_features = {"a": 0}
    with pytest.raises(TypeError, match="must not change"):
        KeysReadMemo(change)(given_features)
    assert given_features == {"a": 0}


def test_at_most_max_kept_results_are_kept_and_the_rest_evaluated(monkeypatch):
    monkeypatch.setattr(memo, "MAX_KEPT", 3)
    kept = KeysReadMemo(lambda f: f.get("a"))
    for a in range(5):
        assert kept({"a": a}) == a
    assert len(kept.kept) == 3
    assert kept({"a": 4}) == 4 and kept.evaluations == 6  # not kept: evaluated again
    assert kept({"a": 2}) == 2 and kept.evaluations == 6


@pytest.fixture(scope="module")
def enterprises():
    """(normalized source payloads, profile) of simulated enterprises."""
    table = generate(120, 3, AS_OF)
    out = []
    for i in range(120):
        payloads = source_payloads(row(table, i), AS_OF)
        checked = CheckedSources(AS_OF, payloads)  # as a measurement checks them: its search's levers change these
        out.append((checked.reads(), checked.profile(row(table, i)["uscc"])))
    return out


def test_the_tech_evaluation_and_the_risk_score_kept_equal_them_computed_for_every_lever_tried(enterprises):
    """For simulated enterprises and each lever of the counterfactual search at a few steps: the evaluations a
    measurement keeps (`KeptScores`) equal the ones computed afresh, and some were not computed again."""
    model, tech_config = load_model(), load_tech_config()
    evaluations = calls = 0
    for payloads, profile in enterprises[:40]:
        kept = orig.KeptScores.of(model, tech_config)
        tried = [profile] + [build_profile(profile.uscc, AS_OF, lever.change(payloads, step, None))
                             for lever in cf.LEVERS if lever.applies(payloads) for step in (1, 32, cf.GRID_STEPS)]
        for p in tried:
            assert kept.tech(p.features).to_json() == evaluate_tech(p.features, tech_config).to_json()
            assert kept.risk(p.features).to_json() == risk_score(model, p.features).to_json()
        evaluations += kept.tech.evaluations + kept.risk.evaluations
        calls += kept.tech.calls + kept.risk.calls
    assert evaluations < calls * 0.8, (evaluations, calls)


def test_a_measurement_decides_as_without_keeping(enterprises):
    """score_and_decide with a `KeptScores` records what it records without one."""
    model, tech_config, bundle = load_model(), load_tech_config(), load_bundle()
    for _payloads, profile in enterprises:
        app = orig.Application(True, 500 * 1_000_000)
        assert orig.score_and_decide(profile, app, bundle, model, tech_config, AS_OF, orig.KeptScores.of(model, tech_config)) == \
            orig.score_and_decide(profile, app, bundle, model, tech_config, AS_OF)
