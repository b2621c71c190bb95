"""Post-loan early warning (issue 12): the bundle's [[early_warning]] rules over refreshed sources and the ledger raise
alerts with their evidence; an officer proposes the rule's action, another person within their authority approves,
and only then is the line frozen or its limit reduced — every step recorded, on SQLite and PostgreSQL, over HTTP."""

from __future__ import annotations

import copy
import os
import subprocess
import tomllib
from datetime import date, datetime, timezone
from decimal import Decimal
from fractions import Fraction
from importlib import resources

import httpx
import pytest
from conftest import TEST_PASSWORD, CommitFails, actor, login, runtime_on, serve
from hypothesis import given
from hypothesis import strategies as st
from servicing_support import LIMIT, S2, open_line
from sqlalchemy import func, select, text, update

from sandu.api.app import create_app
from sandu.domain.errors import Conflict, InvalidInput, NotPermitted
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.origination import actions as orig_actions
from sandu.policy.bundle import EarlyWarningRule, PolicyError, bundle_from_document, load_bundle, parse_bundle
from sandu.policy.warning import DrawingFacts, LineFacts, ProfileFacts, evaluate, reduced_limit_fen
from sandu.security import actions as security
from sandu.servicing import actions as servicing
from sandu.servicing import alert_actions as alerts
from sandu.store import models as m

API = "/api/v1"
DAY = datetime(2026, 11, 29, 9, 31, tzinfo=timezone.utc)  # a minute after the lines' measurement (FIXED_NOW), the same business date
BUNDLE = load_bundle()


# --- the engine ---------------------------------------------------------------------------------------------------


def rule(**kw) -> EarlyWarningRule:
    base = {"id": "r", "watch": "drop", "feature": "revenue_fen", "threshold": "0.30", "severity": "high", "action": "freeze", "description": "d"}
    return EarlyWarningRule.model_validate({**base, **kw})


def facts(before: dict | None, after: dict | None, drawing: DrawingFacts | None = None) -> LineFacts:
    prev = None if before is None else ProfileFacts("a" * 64, date(2026, 10, 31), before)
    cur = None if after is None else ProfileFacts("b" * 64, date(2026, 11, 29), after)
    return LineFacts(7, date(2026, 11, 29), prev, cur, drawing)


@pytest.mark.parametrize(("watch", "feature", "threshold", "before", "after", "raised"), [
    ("drop", "revenue_fen", "0.30", 1000, 700, True),  # exactly 30 % down: the boundary raises
    ("drop", "revenue_fen", "0.30", 1000, 701, False),
    ("drop", "revenue_fen", "0.30", 1000, 0, True),
    ("drop", "revenue_fen", "0.30", 0, 0, False),  # nothing before: no drop to measure
    ("drop", "revenue_fen", "1", 1000, 0, True),
    ("drop", "revenue_fen", "1", 1000, 1, False),
    ("rise", "overdue_count_24m", "1", 2, 3, True),
    ("rise", "overdue_count_24m", "1", 2, 2, False),
    ("rise", "overdue_count_24m", "2", 2, 4, True),
    ("rise", "overdue_count_24m", "2", 2, 3, False),
    ("rise", "court_enforcements", "1", 0, 1, True),
    ("rise", "court_enforcements", "1", 1, 1, False),
    ("at_most", "electricity_growth", "-0.40", 0.1, -0.4, True),
    ("at_most", "electricity_growth", "-0.40", 0.1, -0.399999, False),
    ("at_least", "max_overdue_days_24m", "30", 0, 30, True),
    ("at_least", "max_overdue_days_24m", "30", 0, 29, False),
])
def test_each_kind_of_rule_at_its_boundary_on_both_sides(watch, feature, threshold, before, after, raised):
    r = rule(watch=watch, feature=feature, threshold=threshold, action="review")
    found = evaluate((r,), facts({feature: before}, {feature: after}))
    assert bool(found) == raised
    if raised:
        ev = found[0].evidence
        assert ev["threshold"] == threshold and ev["after"] == after and ev["after_profile"] == "b" * 64 and ev["after_as_of"] == "2026-11-29"
        assert found[0].evidence_key == "b" * 64
        if watch in ("drop", "rise"):
            assert ev["before"] == before and ev["before_as_of"] == "2026-10-31" and ev["before_profile"] == "a" * 64


def _bureau(enforcements: int | None) -> dict:
    payload = {"as_of": "2026-11-20", "loans_outstanding_fen": 0, "secured_debt_fen": 0, "overdue_count_24m": 0, "max_overdue_days_24m": 0,
               "queries_3m": 0}
    return {"credit_bureau": payload if enforcements is None else {**payload, "court_enforcements": enforcements}}


@pytest.mark.parametrize(("before", "after", "raised"), [(0, 1, True), (1, 1, False), (2, 1, False), (None, 1, False), (0, None, False)])
def test_a_new_court_enforcement_on_the_credit_report_raises_the_default_rule(before, after, raised):
    """The bundle's 新增被执行 rule over features built from real bureau payloads: a case more than the report before
    raises it (freeze proposed); a report that says nothing of public records is not evidence either way."""
    from sandu.sources.profile import build_profile

    snapshot = {k: build_profile(S2["uscc"], date(2026, 11, 20), _bureau(v)).features for k, v in (("before", before), ("after", after))}
    assert ("court_enforcements" in snapshot["after"]) == (after is not None)
    court = [r for r in BUNDLE.early_warning if r.id == "court_enforcement"]
    found = evaluate(court, facts(snapshot["before"], snapshot["after"]))
    assert [(a.rule_id, a.action) for a in found] == ([("court_enforcement", "freeze")] if raised else [])


@pytest.mark.parametrize(("dpd", "raised"), [(31, True), (30, False), (0, False)])
def test_days_past_due_here_above_the_threshold(dpd, raised):
    r = rule(id="dpd", watch="dpd_above", feature=None, threshold="30")
    d = DrawingFacts(drawing_id=4, dpd=dpd, oldest_due_on=date(2026, 10, 20))
    found = evaluate((r,), facts(None, None, d))
    assert bool(found) == raised
    if raised:
        assert found[0].evidence == {"rule": "dpd", "watch": "dpd_above", "threshold": "30", "drawing_id": 4, "dpd": 31,
                                     "oldest_due_on": "2026-10-20", "scanned_on": "2026-11-29"}
        assert found[0].evidence_key == "drawing:4:2026-10-20"


def test_what_is_not_evidenced_raises_nothing():
    r, ratio = rule(), rule(id="e", watch="at_most", feature="electricity_growth", threshold="-0.4", action="review")
    assert evaluate((r,), facts(None, {"revenue_fen": 1})) == []  # the first snapshot: nothing to compare
    assert evaluate((r,), facts({"revenue_fen": 1000}, {})) == []  # absent now
    assert evaluate((r,), facts({}, {"revenue_fen": 1})) == []  # absent before
    assert evaluate((r,), facts({"revenue_fen": "1000"}, {"revenue_fen": 1})) == []  # not a number
    assert evaluate((r, ratio), facts({"revenue_fen": 1000}, {"revenue_fen": 1, "electricity_growth": None})) != []
    same = LineFacts(1, date(2026, 11, 29), ProfileFacts("c" * 64, date(2026, 11, 29), {"revenue_fen": 1000}),
                     ProfileFacts("c" * 64, date(2026, 11, 29), {"revenue_fen": 1000}))
    assert evaluate((r,), same) == []


@given(before=st.integers(1, 10**13), after=st.integers(0, 10**13), pct=st.integers(1, 100))
def test_a_drop_raises_exactly_when_the_fraction_fallen_reaches_the_threshold(before, after, pct):
    r = rule(threshold=str(Decimal(pct) / 100))
    expected = Fraction(before - after, before) >= Fraction(pct, 100)  # an independent, exact model
    assert bool(evaluate((r,), facts({"revenue_fen": before}, {"revenue_fen": after}))) == expected


@given(before=st.integers(0, 10**6), after=st.integers(0, 10**6), n=st.integers(1, 50))
def test_a_rise_raises_exactly_when_the_count_grew_by_the_threshold(before, after, n):
    r = rule(watch="rise", feature="overdue_count_24m", threshold=str(n), action="review")
    assert bool(evaluate((r,), facts({"overdue_count_24m": before}, {"overdue_count_24m": after}))) == (after - before >= n)


@given(limit=st.integers(1, 10**12), drawn_share=st.fractions(0, 1), keep=st.integers(1, 99), unit=st.sampled_from([1, 100, WAN]))
def test_a_reduced_limit_keeps_its_share_rounded_down_never_below_what_is_drawn(limit, drawn_share, keep, unit):
    drawn = int(limit * drawn_share)
    got = reduced_limit_fen(limit, drawn, Decimal(keep) / 100, unit)
    share = limit * keep // 100 // unit * unit
    assert got == max(share, drawn) and drawn <= got <= limit


def _bundle(extra: str) -> bytes:
    raw = resources.files("sandu.policy.bundles").joinpath("default.toml").read_bytes()
    head, _, tail = raw.partition(b"\n# \xe8\xb4\xb7\xe5\x90\x8e\xe9\xa2\x84\xe8\xad\xa6")  # cut at "# 贷后预警"
    assert tail, "the default bundle has its early-warning rules"
    _, _, rest = tail.partition(b"\n# \xe5\x88\x86\xe7\xba\xa7\xe5\xae\xa1\xe6\x89\xb9")  # resume at "# 分级审批"
    return head + b"\n" + extra.encode() + b"\n# \xe5\x88\x86\xe7\xba\xa7\xe5\xae\xa1\xe6\x89\xb9" + rest


def refused(raw: bytes) -> tuple[str, str]:
    with pytest.raises(PolicyError) as e:
        parse_bundle(raw)
    return e.value.path, e.value.reason


GOOD = 'id = "x"\nwatch = "drop"\nfeature = "revenue_fen"\nthreshold = "0.30"\nseverity = "high"\naction = "freeze"\ndescription = "d"\n'


@pytest.mark.parametrize(("edit", "path", "reason"), [
    (GOOD + 'colour = "red"\n', "early_warning[0].colour", "unknown key"),
    (GOOD.replace('watch = "drop"\n', ""), "early_warning[0].watch", "missing"),
    (GOOD.replace('"drop"', '"fall"'), "early_warning[0].watch", "'drop'"),
    (GOOD.replace('"revenue_fen"', '"revenue"'), "early_warning[0].feature", "not a numeric profile feature"),
    (GOOD.replace('"revenue_fen"', '"rd_ratio"'), "early_warning[0].feature", "is a ratio"),
    (GOOD.replace('"0.30"', '"1.5"'), "early_warning[0].threshold", "within 0..1"),
    (GOOD.replace('"0.30"', '"0"'), "early_warning[0].threshold", "within 0..1"),
    (GOOD.replace('"0.30"', "0.3"), "early_warning[0].threshold", "decimal string"),
    (GOOD.replace('"high"', '"severe"'), "early_warning[0].severity", "'low'"),
    (GOOD.replace('"freeze"', '"close"'), "early_warning[0].action", "'review'"),
    (GOOD.replace('"freeze"', '"reduce_limit"'), "early_warning[0].reduce_to", "missing"),
    (GOOD.replace('"freeze"', '"reduce_limit"') + 'reduce_to = "1"\n', "early_warning[0].reduce_to", "within 0..1 exclusive"),
    (GOOD + 'reduce_to = "0.5"\n', "early_warning[0].reduce_to", "must be left out"),
    (GOOD.replace('"drop"', '"rise"').replace('"revenue_fen"', '"overdue_count_24m"').replace('"0.30"', '"0.5"'), "early_warning[0].threshold",
     "whole count"),
    (GOOD.replace('"drop"', '"rise"'), "early_warning[0].feature", "a rise compares a count"),
    (GOOD.replace('"drop"', '"dpd_above"').replace('"0.30"', '"30"'), "early_warning[0].feature", "must be left out"),
    (GOOD.replace('"drop"', '"dpd_above"').replace('feature = "revenue_fen"\n', "").replace('"0.30"', '"30.5"'), "early_warning[0].threshold",
     "whole days"),
    (GOOD + "\n[[early_warning]]\n" + GOOD, "early_warning[1].id", "already the id of early_warning[0]"),
])
def test_a_bad_rule_is_refused_at_load_naming_its_key(edit, path, reason):
    got_path, got_reason = refused(_bundle("[[early_warning]]\n" + edit))
    assert got_path == path and reason in got_reason, (got_path, got_reason)


def test_the_default_rules_load_and_a_bundle_without_rules_raises_nothing():
    assert [r.id for r in BUNDLE.early_warning] == ["revenue_collapse", "invoice_drop", "headcount_drop", "utilities_collapse",
                                                    "bureau_overdue_elsewhere", "court_enforcement", "social_insurance_arrears", "dpd_here"]
    assert refused(_bundle("")) == ("early_warning", "missing")
    doc = tomllib.loads(_bundle("").decode())
    assert bundle_from_document({**doc, "early_warning": []}, "x").early_warning == ()
    assert parse_bundle(_bundle("[[early_warning]]\n" + GOOD)).early_warning[0].threshold == Decimal("0.30")


# --- the test, over HTTP, on SQLite and PostgreSQL --------------------------------------------------------


def collapse_revenue(rt, uscc: str, keep: Fraction) -> tuple[int, int]:
    """The tax bureau now reports the latest year's revenue at `keep` of what it was: (before, after)."""
    with rt.uow.write() as s:
        rec = s.scalar(select(m.SourceRecord).where(m.SourceRecord.uscc == uscc, m.SourceRecord.source == "tax"))
        payload = copy.deepcopy(rec.payload)
        before = payload["years"][-1]["revenue_fen"]
        payload["years"][-1]["revenue_fen"] = after = int(before * keep)
        s.execute(update(m.SourceRecord).where(m.SourceRecord.uscc == uscc, m.SourceRecord.source == "tax").values(payload=payload))
    return before, after


def _error(r: httpx.Response, status: int, field: str | None = None, rule_name: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["field"] == field and body["rule"] == rule_name, body
    return body


def test_an_injected_revenue_collapse_raises_the_alert_and_once_approved_freezes_drawing(db_url):
    rt = runtime_on(db_url)
    rt.clock.value = DAY
    line_id = open_line(rt)
    try:
        for base in serve(create_app(rt)):
            with httpx.Client(base_url=base, timeout=30) as c:
                rep, officer, approver = login(c, "rep-s2"), login(c, "officer-yongjia"), login(c, "approver-yongjia")
                refresh = f"{API}/enterprises/{S2['uscc']}/refresh"
                assert c.post(refresh, json={}, headers=officer).json()["alerts_raised"] == []  # nothing changed
                before, after = collapse_revenue(rt, S2["uscc"], Fraction(6, 10))
                r = c.post(refresh, json={}, headers=officer)
                assert r.status_code == 200, r.text
                [alert_id] = r.json()["alerts_raised"]
                a = c.get(f"{API}/alerts/{alert_id}", headers=officer).json()
                assert (a["rule_id"], a["severity"], a["rule_action"], a["status"], a["line_id"]) == ("revenue_collapse", "high", "freeze", "raised", line_id)
                ev = a["evidence"]
                assert (ev["feature"], ev["before"], ev["after"], ev["threshold"], ev["drop"]) == ("revenue_fen", before, after, "0.30", "0.4000")
                assert ev["after_profile"] == r.json()["profile_sha256"] and ev["before_profile"] == r.json()["previous_sha256"]
                assert ev["after_as_of"] == "2026-11-29" and a["policy_version"] == BUNDLE.label
                assert a["allowed_actions"] == ["acknowledge", "propose", "dismiss"] and [s["action"] for s in a["steps"]] == ["raise"]
                # the same evidence again raises nothing new: one open alert per rule and line
                assert c.post(refresh, json={}, headers=officer).json()["alerts_raised"] == []

                draw = f"{API}/lines/{line_id}/draws"
                assert c.post(draw, json={"amount_fen": 10 * WAN, "idempotency_key": "before-proposal"}, headers=rep).status_code == 201
                p = c.post(f"{API}/alerts/{alert_id}/propose", json={"note": "营收下降四成，建议冻结"}, headers=officer)
                assert p.status_code == 200, p.text
                assert (p.json()["status"], p.json()["proposed_action"], p.json()["line_status"]) == ("proposed", "freeze", "active")
                assert c.post(draw, json={"amount_fen": 10 * WAN, "idempotency_key": "before-approval"}, headers=rep).status_code == 201
                body = _error(c.post(f"{API}/alerts/{alert_id}/approve", headers=officer), 403, rule_name="maker_checker.proposer")
                assert "proposed" in body["message"]
                assert c.get(f"{API}/alerts/{alert_id}", headers=officer).json()["status"] == "proposed"
                ok = c.post(f"{API}/alerts/{alert_id}/approve", json={"note": "同意冻结"}, headers=approver)
                assert ok.status_code == 200, ok.text
                assert (ok.json()["status"], ok.json()["line_status"]) == ("done", "frozen")
                assert [s["action"] for s in ok.json()["steps"]] == ["raise", "propose", "approve", "done"]
                assert [s["actor_role"] for s in ok.json()["steps"]][1:] == ["officer", "approver", "approver"]
                body = _error(c.post(draw, json={"amount_fen": 10 * WAN, "idempotency_key": "after-approval"}, headers=rep), 409, "line_id")
                assert "frozen" in body["message"]
                assert c.get(f"{API}/lines/{line_id}", headers=rep).json()["status"] == "frozen"
                listed = c.get(f"{API}/alerts", params={"status": "done"}, headers=approver).json()
                assert [x["id"] for x in listed["alerts"]] == [alert_id] and listed["next_after_id"] is None
                assert c.get(f"{API}/alerts", headers=approver).json()["alerts"] == []  # no longer open
    finally:
        with rt.uow.read() as s:
            trail = [tuple(r) for r in s.execute(select(m.AuditRecord.action, m.AuditRecord.object_id).where(
                m.AuditRecord.action.in_(["alert.raise", "alert.propose", "alert.approve", "line.freeze"])).order_by(m.AuditRecord.seq))]
        rt.engine.dispose()
    assert trail == [("alert.raise", str(alert_id)), ("alert.propose", str(alert_id)), ("line.freeze", str(line_id)), ("alert.approve", str(alert_id))]


# --- the life of an alert, on the services ------------------------------------------------------------------------


def _raise_revenue_alert(rt) -> tuple[int, int]:
    rt.clock.value = DAY
    line_id = open_line(rt)
    collapse_revenue(rt, S2["uscc"], Fraction(1, 2))
    view = orig_actions.refresh_sources(rt, actor(rt, "officer-yongjia"), uscc=S2["uscc"])
    [alert_id] = view.alerts_raised
    return line_id, alert_id


def test_an_alert_step_is_acknowledged_only_once_committed(db_url):
    """With every commit failing, no alert route answers 2xx and neither the alert nor the line changes; once commits
    work, the same steps succeed and a read right after sees them (SQLite and PostgreSQL, over a real server)."""
    rt = runtime_on(db_url)
    _, alert_id = _raise_revenue_alert(rt)
    try:
        for base in serve(create_app(rt)):
            with httpx.Client(base_url=base, timeout=30) as c:
                officer, approver = login(c, "officer-yongjia"), login(c, "approver-yongjia")
                alert = f"{API}/alerts/{alert_id}"

                def seen(c=c, alert=alert, officer=officer) -> tuple:
                    a = c.get(alert, headers=officer).json()
                    return a["status"], a["line_status"], [s["action"] for s in a["steps"]]

                steps = [("acknowledge", {"note": "已知悉"}, officer), ("propose", {"note": "建议冻结"}, officer),
                         ("dismiss", {"note": "误报"}, officer)]
                for path, body, who in steps:
                    with CommitFails(rt.engine):
                        assert c.post(f"{alert}/{path}", json=body, headers=who).status_code == 500
                    assert seen() == ("raised", "active", ["raise"])
                assert c.post(f"{alert}/propose", json={"note": "建议冻结"}, headers=officer).status_code == 200
                assert seen() == ("proposed", "active", ["raise", "propose"])
                for path in ("reject", "approve"):
                    with CommitFails(rt.engine):
                        assert c.post(f"{alert}/{path}", json={"note": "同意"}, headers=approver).status_code == 500
                    assert seen() == ("proposed", "active", ["raise", "propose"])  # nor is the line frozen
                assert c.post(f"{alert}/approve", json={"note": "同意"}, headers=approver).status_code == 200
                assert seen() == ("done", "frozen", ["raise", "propose", "approve", "done"])
    finally:
        rt.engine.dispose()


def test_a_refresh_and_the_alerts_it_raises_are_committed_together(rt, monkeypatch):
    """A scan that fails after the refresh wrote its snapshot rolls the snapshot and its read log back with it: the
    error reaches the caller and nothing of the refresh is kept; run again, both are committed."""
    from sandu.servicing import alerts as alert_service

    rt.clock.value = DAY
    open_line(rt)
    collapse_revenue(rt, S2["uscc"], Fraction(1, 2))

    def counts() -> tuple[int, int, int]:
        with rt.uow.read() as s:
            return tuple(s.scalar(select(func.count()).select_from(t)) for t in (m.Profile, m.SourceRead, m.Alert))

    before = counts()

    def broken(*args, **kwargs):
        raise RuntimeError("the scan broke")

    with monkeypatch.context() as p:
        p.setattr(alert_service, "scan_line", broken)
        with pytest.raises(RuntimeError, match="the scan broke"):
            orig_actions.refresh_sources(rt, actor(rt, "officer-yongjia"), uscc=S2["uscc"])
    assert counts() == before
    view = orig_actions.refresh_sources(rt, actor(rt, "officer-yongjia"), uscc=S2["uscc"])
    profiles, reads, raised = counts()
    assert len(view.alerts_raised) == 1 and raised == before[2] + 1 and profiles == before[0] + 1 and reads > before[1]


def test_a_refresh_scans_its_enterprise_page_by_page(rt_sqlite, monkeypatch):
    """A page of one line: the scan goes on to the next page (empty) and reports the line and its alert once."""
    from sandu.servicing import alerts as alert_service

    monkeypatch.setattr(alert_service, "MAX_SCAN_BATCH", 1)
    line_id, alert_id = _raise_revenue_alert(rt_sqlite)
    assert alerts.get_alert(rt_sqlite, alert_id).line_id == line_id


def test_an_erasure_keeps_the_alerts_and_says_why(rt_sqlite):
    """An alert's evidence holds values of the snapshots it compared; an erasure request keeps it with the line (a
    post-loan risk record) and says so, counting the enterprise's alerts."""
    rt = rt_sqlite
    _raise_revenue_alert(rt)
    out = orig_actions.erase_enterprise(rt, actor(rt, "ops"), uscc=S2["uscc"], reason="申请人书面申请 2026-11-30 第13号")
    kept = {k.what: k for k in out.kept}
    alerts_kept = kept["post-loan early-warning alerts with their evidence and steps"]
    assert alerts_kept.rows == 1 and "贷后管理" in alerts_kept.why


def test_reject_then_reduce_the_limit_within_authority_and_dismissals_need_a_reason(rt_sqlite):
    rt = rt_sqlite
    line_id, alert_id = _raise_revenue_alert(rt)
    officer, approver = actor(rt, "officer-yongjia"), actor(rt, "approver-yongjia")
    security.create_user(rt, None, username="officer-yongjia-2", password=TEST_PASSWORD, role="officer", branch="永嘉", authority_fen=100 * WAN)
    junior = actor(rt, "officer-yongjia-2")
    alerts.acknowledge(rt, officer, alert_id=alert_id)
    with pytest.raises(Conflict) as e:
        alerts.acknowledge(rt, officer, alert_id=alert_id)
    assert e.value.field == "alert_id" and "acknowledged" in e.value.reason
    with pytest.raises(InvalidInput) as e:
        alerts.propose(rt, officer, alert_id=alert_id, action="review", limit_fen=WAN)
    assert e.value.field == "limit_fen"
    with pytest.raises(InvalidInput) as e:
        alerts.propose(rt, officer, alert_id=alert_id, action="close")
    assert e.value.field == "action"
    with pytest.raises(Conflict) as e:
        alerts.propose(rt, officer, alert_id=alert_id, action="reduce_limit", limit_fen=LIMIT)
    assert e.value.field == "limit_fen"
    v = alerts.propose(rt, officer, alert_id=alert_id, action="reduce_limit", limit_fen=LIMIT - 1)  # the boundary below the limit
    assert (v.status, v.proposed_limit_fen) == ("proposed", LIMIT - 1)
    with pytest.raises(InvalidInput) as e:
        alerts.reject(rt, approver, alert_id=alert_id, note="")
    assert e.value.field == "note"
    assert alerts.reject(rt, approver, alert_id=alert_id, note="幅度不够").status == "rejected"
    with pytest.raises(InvalidInput) as e:  # revenue_collapse proposes a freeze: it keeps no share of the limit, so one must be named
        alerts.propose(rt, officer, alert_id=alert_id, action="reduce_limit")
    assert e.value.field == "limit_fen" and "revenue_collapse" in e.value.reason
    v = alerts.propose(rt, officer, alert_id=alert_id, action="reduce_limit", limit_fen=LIMIT // 2, note="减半")
    assert v.proposed_limit_fen == LIMIT // 2 and v.decided_by is None
    with pytest.raises(NotPermitted) as e:  # 416万 exceeds the junior officer's own 100万 authority
        alerts.approve(rt, junior, alert_id=alert_id)
    assert e.value.rule == "approval.authority" and e.value.reason == f"the limit of line {line_id} of {LIMIT} fen exceeds your approval authority of {100 * WAN} fen"
    v = alerts.approve(rt, approver, alert_id=alert_id)
    assert (v.status, v.line_status, v.line_limit_fen) == ("done", "active", LIMIT // 2)
    assert servicing.get_line(rt, line_id).limit_fen == LIMIT // 2
    with pytest.raises(Conflict):
        alerts.dismiss(rt, officer, alert_id=alert_id, note="已处理")  # done is closed
    with rt.uow.read() as s:
        steps = [(x.action, x.from_status, x.to_status, x.actor_role) for x in s.scalars(select(m.AlertStep).where(m.AlertStep.alert_id == alert_id)
                                                                                      .order_by(m.AlertStep.id))]
    assert steps == [("raise", None, "raised", "officer"), ("acknowledge", "raised", "acknowledged", "officer"),
                     ("propose", "acknowledged", "proposed", "officer"), ("reject", "proposed", "rejected", "approver"),
                     ("propose", "rejected", "proposed", "officer"), ("approve", "proposed", "approved", "approver"),
                     ("done", "approved", "done", "approver")]


def test_a_dismissed_alert_is_not_raised_again_on_the_same_evidence_but_on_new_evidence(rt_sqlite):
    rt = rt_sqlite
    _line_id, alert_id = _raise_revenue_alert(rt)
    officer = actor(rt, "officer-yongjia")
    with pytest.raises(InvalidInput):
        alerts.dismiss(rt, officer, alert_id=alert_id, note=" 空格 ")
    assert alerts.dismiss(rt, officer, alert_id=alert_id, note="一次性因素").status == "dismissed"
    assert alerts.scan(rt, actor(rt, "ops")).raised == 0  # the same two snapshots: the same evidence
    collapse_revenue(rt, S2["uscc"], Fraction(1, 2))
    again = orig_actions.refresh_sources(rt, officer, uscc=S2["uscc"])
    assert len(again.alerts_raised) == 1 and again.alerts_raised != [alert_id]


def test_the_scan_command_raises_days_past_due_here_once_per_episode(rt_sqlite):
    rt = rt_sqlite
    rt.clock.value = DAY
    line_id = open_line(rt)
    servicing.draw(rt, actor(rt, "rep-s2"), line_id=line_id, amount_fen=50 * WAN, idempotency_key="dpd")
    with rt.uow.write() as s:  # the ledger's ageing, as end of day would have left it 31 days after a missed due date
        s.execute(text("UPDATE drawings SET dpd = 31, oldest_due_on = '2026-10-29' WHERE line_id = :l"), {"l": line_id})
    first = alerts.scan(rt, actor(rt, "ops"))
    assert (first.as_of, first.lines, first.raised, first.by_rule) == (date(2026, 11, 29), 1, 1, {"dpd_here": 1})
    assert alerts.scan(rt, actor(rt, "ops"), batch=1).raised == 0  # still open: not raised twice
    page = alerts.list_alerts(rt, actor(rt, "approver-yongjia"))
    [a] = page.alerts
    assert (a.rule_id, a.severity, a.rule_action, a.evidence["dpd"], a.evidence["oldest_due_on"]) == ("dpd_here", "critical", "freeze", 31,
                                                                                                       "2026-10-29")
    with rt.uow.write() as s:
        s.execute(text("UPDATE drawings SET dpd = 30 WHERE line_id = :l"), {"l": line_id})
    alerts.dismiss(rt, actor(rt, "officer-yongjia"), alert_id=a.id, note="已还款")
    assert alerts.scan(rt, actor(rt, "ops")).raised == 0  # 30 days is not above 30
    with pytest.raises(InvalidInput) as e:
        alerts.scan(rt, actor(rt, "ops"), batch=0)
    assert e.value.field == "batch"


def _writes(rt) -> float:
    return rt.metrics.registry.get_sample_value("sandu_store_write_held_seconds_count") or 0.0


def test_the_daily_scan_screens_in_a_read_and_holds_the_writer_only_for_a_page_that_raises(rt_sqlite):
    """A page of a thousand lines takes up to a second to read and evaluate: the scan does it in a read, and takes
    the store's writer (which every measurement and draw of every process waits for) only for the lines found."""
    rt = rt_sqlite
    rt.clock.value = DAY
    line_id = open_line(rt)
    servicing.draw(rt, actor(rt, "rep-s2"), line_id=line_id, amount_fen=50 * WAN, idempotency_key="dpd")
    ops = actor(rt, "ops")
    before = _writes(rt)
    assert alerts.scan(rt, ops, batch=1).raised == 0 and _writes(rt) == before  # two pages, nothing found: no write at all
    with rt.uow.write() as s:
        s.execute(text("UPDATE drawings SET dpd = 31, oldest_due_on = '2026-10-29' WHERE line_id = :l"), {"l": line_id})
    before = _writes(rt)
    assert alerts.scan(rt, ops, batch=1).raised == 1 and _writes(rt) == before + 1  # the page that raises, only
    before = _writes(rt)
    assert alerts.scan(rt, ops).raised == 0 and _writes(rt) == before  # raised already: screened out


def test_the_database_holds_one_open_alert_per_rule_and_line(rt):
    line_id, alert_id = _raise_revenue_alert(rt)
    with pytest.raises(Exception, match="uq_alert|UNIQUE|unique"):
        with rt.uow.write() as s:
            a = s.get(m.Alert, alert_id)
            s.add(m.Alert(line_id=line_id, enterprise_id=a.enterprise_id, branch=a.branch, rule_id=a.rule_id, severity="high", status="raised",
                          rule_action="freeze", summary="x", evidence={}, evidence_key="other", policy_version="p", as_of=a.as_of,
                          raised_at=a.raised_at, updated_at=a.updated_at))
    with pytest.raises(Exception, match="ck_alert_four_eyes|CHECK"):
        with rt.uow.write() as s:
            s.execute(text("UPDATE alerts SET proposed_by = 1, decided_by = 1 WHERE id = :a"), {"a": alert_id})


# --- the API's refusals -----------------------------------------------------------------------------------------


def test_only_the_lines_sub_branch_works_its_alerts_and_bad_input_names_the_field(rt_sqlite):
    rt = rt_sqlite
    _line_id, alert_id = _raise_revenue_alert(rt)
    for base in serve(create_app(rt)):
        with httpx.Client(base_url=base, timeout=30) as c:
            officer, foreign, risk = login(c, "officer-yongjia"), login(c, "officer-yueqing"), login(c, "risk")
            _error(c.get(f"{API}/alerts/{alert_id}", headers=foreign), 404, "alert_id")
            _error(c.post(f"{API}/alerts/{alert_id}/propose", json={}, headers=foreign), 404, "alert_id")
            _error(c.get(f"{API}/alerts", headers=risk), 403, rule_name="authz.alerts.list")
            _error(c.get(f"{API}/alerts", params={"branch": "乐清"}, headers=officer), 403, "branch", "alerts.branch")
            _error(c.post(f"{API}/alerts/{alert_id}/propose", json={}, headers=login(c, "approver-yongjia")), 403, rule_name="authz.alerts.propose")
            _error(c.get(f"{API}/alerts/0", headers=officer), 422, "alert_id")
            _error(c.get(f"{API}/alerts", params={"status": "closed"}, headers=officer), 422, "status")
            _error(c.get(f"{API}/alerts", params={"limit": 201}, headers=officer), 422, "limit")
            _error(c.post(f"{API}/alerts/{alert_id}/propose", json={"action": "close"}, headers=officer), 422, "action")
            _error(c.post(f"{API}/alerts/{alert_id}/propose", json={"action": "reduce_limit", "limit_fen": -1}, headers=officer), 422, "limit_fen")
            _error(c.post(f"{API}/alerts/{alert_id}/propose", json={"colour": "red"}, headers=officer), 422, "colour")
            _error(c.post(f"{API}/alerts/{alert_id}/dismiss", json={}, headers=officer), 422, "note")
            _error(c.post(f"{API}/alerts/{alert_id}/approve", headers=officer), 409, "alert_id")  # nothing proposed yet
            assert c.get(f"{API}/alerts/{alert_id}", headers=officer).json()["status"] == "raised"  # nothing changed
            r = c.get(f"{API}/alerts", params={"limit": 1}, headers=officer).json()
            assert [a["id"] for a in r["alerts"]] == [alert_id] and r["next_after_id"] is None


# --- the command line ---------------------------------------------------------------------------------------------


def test_the_command_line_works_an_alert_as_the_people_who_sign_in(rt_sqlite):
    from cli_support import sandu
    from conftest import TEST_SECRET
    from test_cli import SANDU

    rt = rt_sqlite
    line_id, alert_id = _raise_revenue_alert(rt)
    env = {"SANDU_DATABASE_URL": str(rt.engine.url), "SANDU_SECRET_KEY": TEST_SECRET, "SANDU_PASSWORD": TEST_PASSWORD}
    r = sandu(["alerts", "list"], env=env)
    assert r.returncode == 0 and "revenue_collapse" in r.stdout and "永嘉" in r.stdout, r.stdout + r.stderr
    r = sandu(["alerts", "propose", str(alert_id), "--user", "officer-yongjia", "--action", "close"], env=env)
    assert r.returncode == 2 and "action" in r.stderr and "review, freeze, reduce_limit" in r.stderr, r.stderr
    r = sandu(["alerts", "propose", str(alert_id), "--user", "approver-yongjia"], env=env)
    assert r.returncode == 2 and "approver may not do alerts.propose" in r.stderr, r.stderr
    r = sandu(["alerts", "propose", str(alert_id), "--user", "officer-yueqing"], env=env)  # another sub-branch's alert: as if it did not exist
    assert r.returncode == 2 and f"alert {alert_id} does not exist" in r.stderr, r.stderr
    r = sandu(["alerts", "propose", str(alert_id), "--user", "officer-yongjia", "--note", "建议冻结"], env=env)
    assert r.returncode == 0 and "proposed: freeze" in r.stdout, r.stdout + r.stderr
    r = sandu(["alerts", "approve", str(alert_id), "--user", "officer-yongjia"], env=env)
    assert r.returncode == 2 and "you proposed this action" in r.stderr, r.stderr
    r = sandu(["alerts", "approve", str(alert_id), "--user", "approver-yongjia"], env={**env, "SANDU_PASSWORD": "wrong password"})
    assert r.returncode == 2 and servicing.get_line(rt, line_id).status == "active", r.stderr
    r = sandu(["alerts", "approve", str(alert_id), "--user", "approver-yongjia", "--note", "同意"], env=env)
    assert r.returncode == 0 and "done" in r.stdout and "line frozen" in r.stdout, r.stdout + r.stderr
    assert servicing.get_line(rt, line_id).status == "frozen"
    r = sandu(["alerts", "show", str(alert_id)], env=env)
    assert r.returncode == 0 and all(f" {a} " in r.stdout for a in ("raise", "propose", "approve", "done")), r.stdout
    done = subprocess.run([SANDU, "alerts", "scan"], capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert done.returncode == 0 and "scanned 1 open lines" in done.stdout and "0 alerts raised" in done.stdout, done.stdout + done.stderr


def test_a_tampered_snapshot_is_reported_and_the_scan_goes_on(rt_sqlite):
    rt = rt_sqlite
    line_id, alert_id = _raise_revenue_alert(rt)
    alerts.dismiss(rt, actor(rt, "officer-yongjia"), alert_id=alert_id, note="核实中")
    with rt.uow.write() as s:
        p = s.scalars(select(m.Profile).order_by(m.Profile.created_at.desc()).limit(1)).one()
        snapshot = copy.deepcopy(p.snapshot)
        snapshot["features"]["revenue_fen"] = 1
        s.execute(update(m.Profile).where(m.Profile.sha256 == p.sha256).values(snapshot=snapshot))
    v = alerts.scan(rt, actor(rt, "ops"))
    assert v.lines == 1 and v.raised == 0 and list(v.refused) == [str(line_id)] and "sha256" in v.refused[str(line_id)]


# --- the staff console ------------------------------------------------------------------------------------------


def _console(c: httpx.Client, username: str) -> str:
    """Log `username` in to the staff console (its cookies kept by the client); the session's CSRF token."""
    c.cookies.clear()
    r = c.post("/console/login", data={"username": username, "password": TEST_PASSWORD})
    assert r.status_code == 303 and "/console/login" not in r.headers["location"], r.text[:500]
    return c.cookies["sandu_csrf"]


def test_the_console_lists_the_alerts_and_works_one_through_its_life(rt_sqlite):
    rt = rt_sqlite
    line_id, alert_id = _raise_revenue_alert(rt)
    for base in serve(create_app(rt)):
        with httpx.Client(base_url=base, timeout=30) as c:
            csrf = _console(c, "officer-yongjia")
            page = c.get("/console/alerts")
            assert page.status_code == 200 and f'data-alert="{alert_id}"' in page.text and "revenue_collapse" in page.text
            detail = c.get(f"/console/alerts/{alert_id}")
            assert detail.status_code == 200 and 'data-status="raised"' in detail.text and 'data-action="propose"' in detail.text
            bad = c.post(f"/console/alerts/{alert_id}/propose", data={"action": "reduce_limit", "limit_wan": "9999", "csrf": csrf})
            assert bad.status_code == 409 and 'id="error-propose"' in bad.text and 'data-field="limit_wan"' in bad.text
            r = c.post(f"/console/alerts/{alert_id}/propose", data={"action": "freeze", "note": "建议冻结", "csrf": csrf})
            assert r.status_code == 303, r.text[:500]
            refused = c.post(f"/console/alerts/{alert_id}/approve", data={"csrf": csrf})
            assert refused.status_code == 403 and 'data-rule="maker_checker.proposer"' in refused.text
            assert servicing.get_line(rt, line_id).status == "active"
            csrf = _console(c, "approver-yongjia")
            assert 'data-action="propose"' not in c.get(f"/console/alerts/{alert_id}").text  # an approver does not propose
            assert c.post(f"/console/alerts/{alert_id}/approve", data={"csrf": "forged"}).status_code == 403
            r = c.post(f"/console/alerts/{alert_id}/approve", data={"csrf": csrf}, follow_redirects=True)
            assert r.status_code == 200 and 'data-status="done"' in r.text and 'data-step="done"' in r.text
            assert servicing.get_line(rt, line_id).status == "frozen"
            csrf = _console(c, "officer-yongjia")  # the line's own actions share the console's form handling
            bad = c.post(f"/console/lines/{line_id}/reduce", data={"limit_wan": "9999", "csrf": csrf})
            assert bad.status_code == 409 and 'id="error-reduce"' in bad.text and 'data-field="limit_wan"' in bad.text
            r = c.post(f"/console/lines/{line_id}/unfreeze", data={"csrf": csrf})
            assert r.status_code == 303 and r.headers["location"] == f"/console/lines/{line_id}?done=unfreeze"
            assert servicing.get_line(rt, line_id).status == "active"
            _console(c, "officer-yueqing")
            assert c.get(f"/console/alerts/{alert_id}").status_code == 404  # another sub-branch's alert
            assert f'data-alert="{alert_id}"' not in c.get("/console/alerts", params={"status": "done"}).text
