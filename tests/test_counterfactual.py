"""Counterfactuals: for a decline or a limit below the request, the smallest change in one of the
applicant's levers that changes the outcome — found by the engine that decided, and minimal."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from conftest import BUSINESS_DATE, FIXED_NOW, actor
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_origination import S2, S4, WAN, consent, measure, register

from sandu.demo.users import story_applicant
from sandu.domain.enums import Outcome
from sandu.intake.outcome import ReadOutcome
from sandu.origination import actions
from sandu.origination import counterfactual as cf
from sandu.origination import service as orig
from sandu.policy.kernel import Application
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import CheckedSources, build_profile
from sandu.sources.schemas import validate
from sandu.store import models as m


def _decide(rt, app):
    return lambda p: orig.score_and_decide(p, app, rt.bundle, rt.model, rt.tech, BUSINESS_DATE)[1]


def _prepared(rt, row, cid, requested_fen):
    with rt.uow.read() as s:
        return orig.prepare_measurement(s, uscc=row["uscc"], consent_id=cid, as_of=BUSINESS_DATE, now=FIXED_NOW, bundle=rt.bundle,
                                        requested_fen=requested_fen)


def test_a_limit_below_the_request_gets_the_smallest_change_of_each_lever_that_reaches_it(rt_sqlite):
    rt = rt_sqlite
    register(rt, S4)
    cid = consent(rt, S4)
    today = actions.get_decision(rt, measure(rt, S4, cid)).comprehensive_limit_fen
    asked = today + 300 * WAN
    v = actions.get_decision(rt, measure(rt, S4, cid, requested_fen=asked))
    assert v.comprehensive_limit_fen == today < asked and v.counterfactuals
    by = {c.lever: c for c in v.counterfactuals}
    coll = by["collateral"]  # an unencumbered property is the lever that reaches it
    assert coll.reaches_goal and coll.limit_fen >= asked and coll.before == 0 and coll.after > 0
    assert coll.text == f"若提供评估价值 {cf.format_cn(coll.after)} 的厂房抵押，额度可提高至 {cf.format_cn(coll.limit_fen)}"
    prepared = _prepared(rt, S4, cid, asked)
    decide = _decide(rt, prepared.application)
    normalized = {s: None if p is None else validate(s, p, BUSINESS_DATE)[0] for s, p in prepared.payloads.items()}
    step = next(k for k in range(cf.GRID_STEPS + 1) if cf._collateral_fen(k, asked) == coll.after)  # the step it found
    below = decide(build_profile(S4["uscc"], BUSINESS_DATE, cf._offer_collateral(normalized, step - 1, asked), prepared.unavailable))
    assert below.comprehensive_limit_fen < asked  # one grid step less does not reach it: the change is the smallest
    for c in v.counterfactuals:
        assert c.limit_fen > today and (c.reaches_goal == (c.limit_fen >= asked)), c
        assert c.after > c.before and c.text.startswith("若")
    with rt.uow.read() as s:
        stored = s.scalars(select(m.Decision).order_by(m.Decision.decided_at.desc(), m.Decision.id)).all()
        assert any(d.result.get("counterfactuals") for d in stored)


def test_a_limit_that_meets_the_request_or_no_request_has_no_counterfactuals(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    cid = consent(rt, S2)
    assert actions.get_decision(rt, measure(rt, S2, cid)).counterfactuals == []
    limit = actions.get_decision(rt, measure(rt, S2, cid)).comprehensive_limit_fen
    assert actions.get_decision(rt, measure(rt, S2, cid, requested_fen=limit)).counterfactuals == []  # exactly met: nothing to change
    one_more = actions.get_decision(rt, measure(rt, S2, cid, requested_fen=limit + 1))
    # S2 is not a customer (no secured lever) and not a tech firm; a little more R&D moves its risk grade B → A (multiplier 8 → 9)
    assert [c.lever for c in one_more.counterfactuals] == ["rd_ratio", "tax", "guarantee"]
    rd, tax, guarantee = one_more.counterfactuals
    # the smallest guarantee on the grid: 1/64 of the request in whole 万 (6万) backs a 担保快贷 of 6万 ÷ 0.80 = 7万
    assert guarantee.reaches_goal and (guarantee.before, guarantee.after) == (0, 6 * WAN) and guarantee.limit_fen == limit + 7 * WAN
    assert guarantee.text == f"若提供融资担保公司担保 6.00万，额度可提高至 {cf.format_cn(limit + 7 * WAN)}"
    assert rd.reaches_goal and rd.limit_fen == 468 * WAN and rd.text == "若研发投入占比由 1.2% 提高到 1.5%，额度可提高至 468.00万"
    # one grid step of tax (1/64 of +50 %) lifts the quick measure past it
    assert tax.reaches_goal and tax.limit_fen > limit and tax.after == int(tax.before * (1 + 0.5 / cf.GRID_STEPS))
    far = [c for c in actions.get_decision(rt, measure(rt, S2, cid, requested_fen=800 * WAN)).counterfactuals if c.lever == "tax"]
    assert not far[0].reaches_goal and far[0].limit_fen == rt.bundle.credit.quick_max_fen and far[0].after == int(far[0].before * 1.5)
    assert far[0].text == "若年纳税由 52.00万 提高到 78.00万，额度可提高至 500.00万（单项调整的上限，仍低于申请额度）"


def test_a_decline_is_searched_for_any_offer_and_the_levers_stay_within_a_year(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    cid = consent(rt, S2)
    prepared = _prepared(rt, S2, cid, None)
    app = Application(False, None)
    normalized = {s: None if p is None else validate(s, p, BUSINESS_DATE)[0] for s, p in prepared.payloads.items()}
    low_tax = cf._with_latest(normalized, lambda y: y.update(vat_fen=1 * WAN, cit_fen=1 * WAN))  # 2万 of tax: below 3万, declined
    low_tax["credit_bureau"] = {**low_tax["credit_bureau"], "loans_outstanding_fen": 0}  # no debt to deduct: the tax alone decides
    decide = _decide(rt, app)
    declined = decide(build_profile(S2["uscc"], BUSINESS_DATE, low_tax, prepared.unavailable))
    assert declined.outcome == Outcome.DECLINE
    found = cf.counterfactuals(S2["uscc"], CheckedSources(BUSINESS_DATE, low_tax, prepared.unavailable), app, declined, decide)
    tax = next(c for c in found if c.lever == "tax")
    assert tax.reaches_goal and tax.before == 2 * WAN and 3 * WAN <= tax.after <= 3 * WAN + 2 * WAN // cf.GRID_STEPS * 2
    assert tax.text.startswith("若年纳税由 2.00万 提高到 ")
    for c in found:
        if c.lever == "rd_ratio":
            assert c.after - c.before <= cf.MAX_RD_POINTS + cf.RATIO_QUANTUM
        if c.lever == "tech_staff":
            assert c.after <= normalized["social_insurance"]["headcount"]


def test_a_lever_whose_source_did_not_answer_is_not_tried_and_the_others_are(rt_sqlite):
    """The collateral registry asked and not answering (a timeout): what is pledged already is not known, so no property is
    suggested — and the search neither fails (a profile cannot both lack and hold a source) nor stops trying the other levers."""
    rt = rt_sqlite
    register(rt, S4)
    cid = consent(rt, S4)
    asked = actions.get_decision(rt, measure(rt, S4, cid)).comprehensive_limit_fen + 300 * WAN
    prepared = _prepared(rt, S4, cid, asked)
    decide = _decide(rt, prepared.application)
    found = {}
    for gone in ((), ("collateral",)):
        payloads = {s: p for s, p in prepared.payloads.items() if s not in gone}
        unavailable = frozenset(prepared.unavailable | set(gone))
        short = decide(build_profile(S4["uscc"], BUSINESS_DATE, payloads, unavailable))
        assert short.comprehensive_limit_fen < asked
        found[gone] = {c.lever for c in cf.counterfactuals(S4["uscc"], CheckedSources(BUSINESS_DATE, payloads, unavailable), prepared.application, short, decide)}
    assert "collateral" in found[()] and found[("collateral",)] == found[()] - {"collateral"}
    # S2 declined for its tax: with the registry silent the tax lever is still searched, and found
    register(rt, S2)
    prepared = _prepared(rt, S2, consent(rt, S2), None)
    app = Application(False, None)
    normalized = {s: None if p is None else validate(s, p, BUSINESS_DATE)[0] for s, p in prepared.payloads.items() if s != "collateral"}
    low_tax = cf._with_latest(normalized, lambda y: y.update(vat_fen=1 * WAN, cit_fen=1 * WAN))
    low_tax["credit_bureau"] = {**low_tax["credit_bureau"], "loans_outstanding_fen": 0}
    unavailable = frozenset(prepared.unavailable | {"collateral"})
    declined = _decide(rt, app)(build_profile(S2["uscc"], BUSINESS_DATE, low_tax, unavailable))
    assert declined.outcome == Outcome.DECLINE
    levers = {c.lever: c for c in cf.counterfactuals(S2["uscc"], CheckedSources(BUSINESS_DATE, low_tax, unavailable), app, declined, _decide(rt, app))}
    assert levers["tax"].reaches_goal and "collateral" not in levers


def test_the_search_decides_as_the_record_does_on_any_application(rt_sqlite):
    """Each evaluation of the search (`deciding`: no challenger, no explanation, no terms; one scoring for the applications
    of a guarantee's search) reaches the outcome and the comprehensive limit that `score_and_decide` records — for
    profiles approved, short of a request and declined, on any request, guarantee and account."""
    rt = rt_sqlite
    profiles = []
    for row in (S2, S4):
        register(rt, row)
        prepared = _prepared(rt, row, consent(rt, row), None)
        normalized = {s: None if p is None else validate(s, p, BUSINESS_DATE)[0] for s, p in prepared.payloads.items()}
        low_tax = cf._with_latest(normalized, lambda y: y.update(vat_fen=1 * WAN, cit_fen=1 * WAN))
        for payloads in (prepared.payloads, low_tax):
            profiles.append(build_profile(row["uscc"], BUSINESS_DATE, payloads, prepared.unavailable))
    decisions = [orig.deciding(p, rt.bundle, rt.model, rt.tech, BUSINESS_DATE) for p in profiles]
    seen = set()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(st.integers(0, len(profiles) - 1), st.booleans(), st.none() | st.integers(1, 2_000 * WAN), st.none() | st.integers(0, 1_500 * WAN))
    def same(k, account, requested_fen, guarantee_fen):
        app = Application(account, requested_fen, None, guarantee_fen)
        full = orig.score_and_decide(profiles[k], app, rt.bundle, rt.model, rt.tech, BUSINESS_DATE)[1]
        lean = decisions[k](app)
        assert (lean.outcome, lean.comprehensive_limit_fen) == (full.outcome, full.comprehensive_limit_fen)
        seen.add(full.outcome)

    same()
    assert {Outcome.DECLINE, Outcome.APPROVE} <= seen  # the examples reached both sides of the search's goal


class _Failing:
    """An adapter whose source answers with an error at once."""

    name = "failing"

    def read(self, source: str, uscc: str, as_of: date, timeout_s: float) -> ReadOutcome:
        return ReadOutcome(source, self.name, "error", reason="the test source failed")


def test_a_measurement_short_of_its_request_while_the_collateral_registry_fails_is_answered_with_the_other_levers(rt_sqlite):
    rt = replace(rt_sqlite, adapters={**rt_sqlite.adapters, "collateral": _Failing()})
    register(rt, S2)
    cid = consent(rt, S2)
    rep = actor(rt, "rep-s2")
    limit = actions.measure(rt, rep, uscc=S2["uscc"], consent_id=cid).comprehensive_limit_fen
    v = actions.measure(rt, rep, uscc=S2["uscc"], consent_id=cid, requested_fen=limit + 1)
    assert v.comprehensive_limit_fen == limit and "collateral:unavailable" in v.quality_flags
    assert "collateral" not in {c.lever for c in v.counterfactuals} and {"rd_ratio", "tax"} <= {c.lever for c in v.counterfactuals}


def test_a_measurement_is_answered_whichever_one_source_fails_on_any_request(rt_sqlite):
    """Every story, every source failing in turn (the rest answering), with no request and with one far above any limit
    (so that the counterfactual search runs on what is left): answered every time, the source flagged as a gap, no
    lever of it suggested."""
    rt = rt_sqlite
    consents = {}
    for row in STORY_ROWS:
        register(rt, row)
        consents[row["uscc"]] = consent(rt, row)
    for source in ALL_SOURCES:
        of_source = {lever.name for lever in cf.LEVERS if lever.source == source}
        failing = replace(rt, adapters={**rt.adapters, source: _Failing()})
        for row in STORY_ROWS:
            who = actor(failing, story_applicant(row["story"]))
            for requested_fen in (None, 5_000 * WAN):
                v = actions.measure(failing, who, uscc=row["uscc"], consent_id=consents[row["uscc"]], requested_fen=requested_fen)
                assert f"{source}:unavailable" in v.quality_flags, (source, row["story"])
                assert not of_source & {c.lever for c in v.counterfactuals}, (source, row["story"], v.counterfactuals)


def test_a_search_scores_each_distinct_profile_once_and_decides_each_as_deciding_does(rt_sqlite, monkeypatch):
    """`searching`: profiles with the same features and flags are scored once — the policy still reads each one's own
    collateral and application — and profiles whose flags alone differ are scored apart."""
    rt = rt_sqlite
    register(rt, S4)
    prepared = _prepared(rt, S4, consent(rt, S4), None)
    base = build_profile(S4["uscc"], BUSINESS_DATE, prepared.payloads, prepared.unavailable)
    payloads = {s: p for s, p in prepared.payloads.items() if s != "utilities"}
    gap = build_profile(S4["uscc"], BUSINESS_DATE, payloads, prepared.unavailable | {"utilities"})  # other flags, fewer features
    normalized = {s: None if p is None else validate(s, p, BUSINESS_DATE)[0] for s, p in prepared.payloads.items()}
    pledged = build_profile(S4["uscc"], BUSINESS_DATE, cf._offer_collateral(normalized, cf.GRID_STEPS, 2_000 * WAN), prepared.unavailable)
    assert pledged.features == base.features and pledged.collateral != base.collateral
    flagged = replace(base, quality_flags=(*base.quality_flags, "utilities:unavailable"))  # the same features, a flag more
    tried = [(app, profile) for app in (Application(False, None), Application(True, 2_000 * WAN), Application(True, 2_000 * WAN, None, 300 * WAN))
             for profile in (base, pledged, gap, flagged, base)]
    full = [orig.score_and_decide(profile, app, rt.bundle, rt.model, rt.tech, BUSINESS_DATE)[1] for app, profile in tried]
    assert full[6].comprehensive_limit_fen > full[5].comprehensive_limit_fen  # the property pledged raises the limit asked for
    scorings = []
    scored = orig._scored
    monkeypatch.setattr(orig, "_scored", lambda *a, **k: scorings.append(a[0]) or scored(*a, **k))
    search = orig.searching(rt.bundle, rt.model, rt.tech, BUSINESS_DATE)
    lean = [search(profile)(app) for app, profile in tried]
    assert [(d.outcome, d.comprehensive_limit_fen) for d in lean] == [(d.outcome, d.comprehensive_limit_fen) for d in full]
    assert scorings == [base, gap, flagged]  # base (and pledged with it) once; a profile of other features, or of other flags, apart


def test_the_search_tries_unhashed_profiles_and_only_a_hashed_one_is_recorded(rt_sqlite):
    """The profiles the search tries carry no hash (sha256 ""): a draft of one is refused — a decision and its profile
    row are keyed by the hash that replay checks."""
    rt = rt_sqlite
    register(rt, S4)
    cid = consent(rt, S4)
    prepared = _prepared(rt, S4, cid, 10**12)  # far above any limit: searched
    computed = orig.compute_measurement(prepared, BUSINESS_DATE, rt.bundle, rt.model, rt.tech)
    assert computed.counterfactuals and len(computed.profile.sha256) == 64
    draft = dict(as_of=BUSINESS_DATE, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech)
    assert orig.draft_decision(prepared, computed, **draft).decision.profile_sha256 == computed.profile.sha256
    unhashed = replace(computed, profile=replace(computed.profile, sha256=""))
    with pytest.raises(AssertionError, match="a recorded profile is hashed"):
        orig.draft_decision(prepared, unhashed, **draft)
