"""The application workflow (issue 10): the state machine's one table, legal and illegal transitions (also over random
sequences of actions), every transition recorded with its time, actor and reason; the approval-authority matrix as
bundle data, enforced with the person's own authority (both boundaries); the referral queue per sub-branch with ages;
human review of an automated decline (PIPL art. 24); expiry by end of day; measurement → first drawing; the
annualized rate and the 普惠型小微 flag on lines; the first drawing's one statement."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import BUSINESS_DATE, FIXED_NOW, PII_KEY, TEST_PASSWORD, actor, known_to_decline
from hypothesis import given, settings
from hypothesis import strategies as st
from servicing_support import SERVICE_NOW, eod
from sqlalchemy import event, func, select

from sandu.domain.enums import ApplicationState, Role
from sandu.domain.errors import Conflict, InvalidInput, NotFound, NotPermitted, SanduError
from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.origination import actions, workflow
from sandu.origination import service as orig
from sandu.origination.states import FIRST_DRAW_FROM, QUEUED, TRANSITIONS, AppAction, allowed_actions, next_state
from sandu.policy.bundle import PolicyError, check_bundle_file, load_bundle, parse_bundle
from sandu.security import actions as security
from sandu.security.actor import Actor
from sandu.servicing import actions as servicing
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m

S1, S2, S4, S5 = STORY_ROWS[0], STORY_ROWS[1], STORY_ROWS[3], STORY_ROWS[4]
ST = ApplicationState
RAW = (Path(load_bundle.__code__.co_filename).parent / "bundles" / "default.toml").read_bytes()
_BODY = "87654321"
OUTSIDER_USCC = make_uscc("9", "1", "330302", _BODY + org_code_check_char(_BODY))  # unknown to the registry: declined, sub-branch 鹿城
OUTSIDER_REP = make_resident_id("330302", date(1981, 2, 3), "135")
WORKFLOW_TABLES = (m.Application, m.ApplicationTransition, m.HumanReview, m.Decision, m.Offer, m.CreditLine, m.AuditRecord)


# --- the table ---------------------------------------------------------------------------------------------------


def test_every_pair_of_state_and_action_is_either_in_the_table_or_refused_naming_the_state():
    for action, moves in TRANSITIONS.items():
        for state in ST:
            if state in moves:
                assert next_state(state, action) == moves[state]
            else:
                with pytest.raises(Conflict) as e:
                    next_state(state, action, 7)
                assert e.value.field == "application" and f"application 7 is {state}: it cannot {action}" in e.value.message
                assert all(s in e.value.allowed for s in moves), e.value.allowed


def test_the_table_reaches_every_state_and_only_withdrawn_and_expired_are_closed():
    reached, frontier = {ST.DRAFT}, [ST.DRAFT]
    while frontier:
        s = frontier.pop()
        for a in allowed_actions(s):
            after = next_state(s, a)
            if after not in reached:
                reached.add(after)
                frontier.append(after)
    assert reached == set(ST)
    assert [s for s in ST if not allowed_actions(s)] == [ST.WITHDRAWN, ST.EXPIRED]
    assert FIRST_DRAW_FROM == {ST.ACCEPTED} and QUEUED == {ST.REFERRED, ST.PARTIALLY_APPROVED}
    assert ST.ASSESSED not in TRANSITIONS[AppAction.WITHDRAW] and ST.ACCEPTED not in TRANSITIONS[AppAction.WITHDRAW]  # signed: a contract


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(AppAction)), max_size=40))
def test_random_sequences_of_actions_follow_the_table(actions_seq):
    """A model of the table: a legal action moves to the table's state, an illegal one is refused and changes nothing."""
    state = ST.DRAFT
    for a in actions_seq:
        legal = state in TRANSITIONS[a]
        try:
            after = next_state(state, a)
        except Conflict:
            assert not legal
            continue
        assert legal and after == TRANSITIONS[a][state]
        state = after
    assert state in ST


# --- the approval-authority matrix (bundle data) -----------------------------------------------------------------


def _bundle_with(rows: str) -> bytes:
    head, _, _ = RAW.partition(b"\n# \xe5\x88\x86\xe7\xba\xa7\xe5\xae\xa1\xe6\x89\xb9")  # cut at "# 分级审批"
    assert head != RAW, "the default bundle ends with its approval-authority matrix"
    return head + b"\n" + rows.encode()


def test_the_default_matrix_loads_and_most_specific_row_wins():
    b = load_bundle()
    assert b.version == "2026.12.11"
    assert b.approval_limit("officer", "jingying_kuaidai") == 500 * WAN == b.approval_limit("officer", "project_loan")
    assert b.approval_limit("approver", "project_loan") == 10_000 * WAN and b.approval_limit("approver", "wangdaitong") == 20_000 * WAN
    assert b.approval_limit("risk", "wangdaitong") is None


@pytest.mark.parametrize(("rows", "path", "reason"), [
    ('[[approval_authority]]\nrole = "officer"\nproduct = "*"\nmax_fen = 1\ncolour = "red"\n', "approval_authority[0].colour",
     "unknown key (allowed: role, product, max_fen)"),
    ('[[approval_authority]]\nproduct = "*"\nmax_fen = 1\n', "approval_authority[0].role", "missing"),
    ('[[approval_authority]]\nrole = "officer"\nproduct = "*"\nmax_fen = -1\n', "approval_authority[0].max_fen", "greater than or equal to 0"),
    ('[[approval_authority]]\nrole = "king"\nproduct = "*"\nmax_fen = 1\n', "approval_authority[0].role", "'officer' or 'approver'"),
    ('[[approval_authority]]\nrole = "officer"\nproduct = "gold_loan"\nmax_fen = 1\n', "approval_authority[0].product", "not a product"),
    ('[[approval_authority]]\nrole = "officer"\nproduct = "*"\nmax_fen = 1\n\n[[approval_authority]]\nrole = "officer"\nproduct = "*"\nmax_fen = 2\n',
     "approval_authority[1].product", "already given"),
    ('[[approval_authority]]\nrole = "officer"\nproduct = "*"\nmax_fen = 1.5\n', "approval_authority[0].max_fen", "valid integer"),
])
def test_a_bad_matrix_is_refused_at_load_with_file_line_and_reason(tmp_path, rows, path, reason):
    raw = _bundle_with(rows)
    with pytest.raises(PolicyError) as e:
        parse_bundle(raw)
    assert e.value.path == path and reason in e.value.reason, str(e.value)
    f = tmp_path / "bad.toml"
    f.write_bytes(raw)
    bundle, problems = check_bundle_file(f)
    assert bundle is None
    line, key, why = problems[0]
    text = raw.decode().splitlines()
    assert key == path and reason in why and line is not None
    leaf = path.rsplit(".", 1)[1]
    assert text[line - 1].startswith(leaf if leaf != "role" or "role" in text[line - 1] else "[[approval_authority]]"), (line, text[line - 1])


def test_a_bundle_without_a_matrix_is_refused():
    with pytest.raises(PolicyError) as e:
        parse_bundle(_bundle_with(""))
    assert e.value.path == "approval_authority" and e.value.reason == "missing"


def _approver(authority_fen: int, role: Role = Role.APPROVER) -> Actor:
    return Actor(user_id=999, username="x", role=role, branch="龙湾", authority_fen=authority_fen)


def _rule(bundle, who: Actor, product: str, amount: int) -> str | None:
    try:
        orig.check_authority(bundle, who, product, amount)
    except NotPermitted as e:
        return e.rule
    return None


def test_the_smaller_of_own_authority_and_matrix_binds_on_both_sides_of_each_boundary():
    b = load_bundle()
    officer = _approver(500 * WAN, Role.OFFICER)  # own 500万 = the matrix's 500万: the person's own rule is named
    assert _rule(b, officer, "wangdaitong", 500 * WAN) is None
    assert _rule(b, officer, "wangdaitong", 500 * WAN + 1) == "approval.authority"
    approver = _approver(20_000 * WAN)  # own 2亿; the matrix gives a project loan 1亿 and anything else 2亿
    assert _rule(b, approver, "project_loan", 10_000 * WAN) is None
    assert _rule(b, approver, "project_loan", 10_000 * WAN + 1) == "approval.matrix"
    assert _rule(b, approver, "wangdaitong", 20_000 * WAN) is None
    assert _rule(b, approver, "wangdaitong", 20_000 * WAN + 1) == "approval.authority"
    junior = _approver(3_000 * WAN)  # own 3,000万 below the matrix: own binds
    assert _rule(b, junior, "project_loan", 3_000 * WAN) is None
    assert _rule(b, junior, "project_loan", 3_000 * WAN + 1) == "approval.authority"
    no_officers = parse_bundle(_bundle_with('[[approval_authority]]\nrole = "approver"\nproduct = "*"\nmax_fen = 1\n'))
    assert _rule(no_officers, officer, "wangdaitong", 1) == "approval.matrix"  # the matrix gives officers nothing


# --- helpers on a seeded store -----------------------------------------------------------------------------------


def _counts(rt) -> dict[str, int]:
    with rt.uow.read() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in WORKFLOW_TABLES}


def _register(rt, row) -> None:
    rep = actor(rt, f"rep-{row['story'].lower()}") if row.get("story") else actor(rt, row["username"])
    actions.register(rt, rep, uscc=row["uscc"], name=row["name"])


def _measure(rt, row, **kw) -> Any:
    rep = actor(rt, f"rep-{row['story'].lower()}") if row.get("story") else actor(rt, row["username"])
    c = actions.grant_consent(rt, rep, uscc=row["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=30,
                              bureau_authorization=True)
    return actions.measure(rt, rep, uscc=row["uscc"], consent_id=c.id, **kw)


def _app(rt, application_id: int):
    return actions.get_application(rt, application_id)


def _outsider(rt) -> dict[str, Any]:
    """An enterprise of 鹿城 the sources know and the policy declines."""
    known_to_decline(rt, OUTSIDER_USCC, "温州复核科技有限公司", OUTSIDER_REP)
    security.create_user(rt, None, username="outsider-wf", password=TEST_PASSWORD, role="applicant", resident_id=OUTSIDER_REP)
    for name, role in (("officer-lucheng", "officer"), ("approver-lucheng", "approver")):
        security.create_user(rt, None, username=name, password=TEST_PASSWORD, role=role, branch="鹿城", authority_fen=500 * WAN)
    return {"uscc": OUTSIDER_USCC, "name": "温州复核科技有限公司", "username": "outsider-wf"}


# --- the happy path, every transition recorded -------------------------------------------------------------------


def test_register_consent_measure_sign_draw_records_each_transition_and_the_time_to_first_drawing(rt):
    rep = actor(rt, "rep-s2")
    _register(rt, S2)
    with rt.uow.read() as s:
        app_id = s.scalar(select(m.Application.id))
    assert _app(rt, app_id).state == ST.DRAFT
    d = _measure(rt, S2, requested_fen=300 * WAN)
    assert d.application_id == app_id and d.outcome == "approve"
    view = _app(rt, app_id)
    assert (view.state, view.decision_id, view.requested_fen, view.decision_ids) == (ST.APPROVED, d.id, 300 * WAN, [d.id])
    assert view.valid_through == d.as_of + timedelta(days=orig.DECISION_VALID_DAYS) and view.queued_at is None
    assert view.first_drawn_at is None and view.measurement_to_first_drawing_s is None
    rt.clock.value = FIXED_NOW + timedelta(hours=1)
    line = actions.accept_offer(rt, rep, decision_id=d.id, product="jingying_kuaidai")
    terms = next(o for o in d.offers if o.product == "jingying_kuaidai")
    assert line.annualized_rate == terms.annualized_rate and line.inclusive_small_micro == d.inclusive_small_micro is not None
    assert line.application_id == app_id
    rt.clock.value = FIXED_NOW + timedelta(hours=2)
    servicing.draw(rt, rep, line_id=line.id, amount_fen=10 * WAN, idempotency_key="wf-first")
    servicing.draw(rt, rep, line_id=line.id, amount_fen=10 * WAN, idempotency_key="wf-second")  # not a transition
    view = _app(rt, app_id)
    steps = [(t.from_state, t.to_state, t.action) for t in view.transitions]
    assert steps == [(None, ST.DRAFT, "open"), (ST.DRAFT, ST.AUTHORIZED, "authorize"), (ST.AUTHORIZED, ST.ASSESSED, "assess"),
                     (ST.ASSESSED, ST.APPROVED, "auto_approve"), (ST.APPROVED, ST.ACCEPTED, "accept"), (ST.ACCEPTED, ST.ACTIVE, "first_draw")]
    by = {t.action: t for t in view.transitions}
    assert by["auto_approve"].actor_user_id is None and by["auto_approve"].actor_role == "system:policy" and "auto_approve_max_fen" in by["auto_approve"].reason
    assert by["accept"].actor_user_id == rep.user_id and by["first_draw"].actor_user_id == rep.user_id and "first drawing" in by["first_draw"].reason
    assert all(t.at.tzinfo is not None and t.at.utcoffset() == timedelta(0) for t in view.transitions)
    assert (view.state, view.measured_at, view.first_drawn_at) == (ST.ACTIVE, FIXED_NOW, FIXED_NOW + timedelta(hours=2))
    assert view.measurement_to_first_drawing_s == 7200.0
    with rt.uow.read() as s:  # the analytics' query: the same figure, by sub-branch
        [fig] = workflow.measurement_to_first_drawing(s, branch=S2["district"] if "district" in S2 else view.branch)
        assert (fig.application_id, fig.seconds) == (app_id, 7200.0)
        assert workflow.measurement_to_first_drawing(s, drawn_since=FIXED_NOW + timedelta(hours=3)) == []
    # a new measurement after signing opens a new application; the signed one stays active
    d2 = _measure(rt, S2)
    assert d2.application_id != app_id and _app(rt, d2.application_id).state == ST.APPROVED and _app(rt, app_id).state == ST.ACTIVE


def test_a_first_drawing_takes_one_more_statement_on_postgresql_and_later_ones_none(rt):
    rep = actor(rt, "rep-s2")
    _register(rt, S2)
    d = _measure(rt, S2)
    line = actions.accept_offer(rt, rep, decision_id=d.id, product="jingying_kuaidai")
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(statement)

    from sandu.servicing import service as svc
    from sandu.servicing.close import class_rules

    limits = {"postgresql": (3 + 1, 3), "sqlite": (6 + 2, 6)}[rt.engine.dialect.name]  # test_servicing's counts, + the hook on the first
    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        for k, most in enumerate(limits):
            seen.clear()
            with rt.uow.write() as s:
                svc.draw(s, line_id=line.id, amount_fen=WAN, on_date=None, idempotency_key=f"n{k}", now=rt.now(), rules=class_rules(rt.bundle.classification),
                         drawn_by=rep.user_id)
            assert len(seen) <= most, (k, seen)
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
    assert _app(rt, d.application_id).state == ST.ACTIVE


# --- referral, maker-checker, matrix through approve -------------------------------------------------------------


def test_referred_offers_wait_in_the_queue_then_approval_moves_the_application(rt_sqlite):
    rt = rt_sqlite
    _register(rt, S5)
    d = _measure(rt, S5)
    assert d.outcome in ("refer", "partial")
    view = _app(rt, d.application_id)
    assert view.state in QUEUED and view.queued_at == FIXED_NOW
    cangnan = actor(rt, "officer-cangnan")
    rt.clock.value = FIXED_NOW + timedelta(hours=50)
    page = actions.referrals(rt, cangnan)
    assert page.branch == cangnan.branch and page.total == 1
    [r] = page.referrals
    assert (r.application_id, r.age_hours, r.age_days, r.human_review, r.decision_id) == (d.application_id, 50, 2, False, d.id)
    assert r.products == [o.product for o in d.offers if o.referred_fen] and r.referred_fen == sum(o.referred_fen for o in d.offers) > 0
    assert actions.referrals(rt, actor(rt, "officer-longwan")).total == 0  # another sub-branch's queue holds nothing of it
    with pytest.raises(NotPermitted) as e:
        actions.referrals(rt, actor(rt, "officer-longwan"), branch=cangnan.branch)
    assert e.value.rule == "referrals.branch"
    assert actions.referrals(rt, actor(rt, "admin"), branch=cangnan.branch).total == 1
    for o in (o for o in d.offers if o.referred_fen):
        actions.review_offer(rt, cangnan, decision_id=d.id, product=o.product, opinion="押品足值，同意")
        actions.approve_offer(rt, actor(rt, "approver-cangnan"), decision_id=d.id, product=o.product)
    view = _app(rt, d.application_id)
    assert view.state == ST.APPROVED and view.queued_at is None and view.transitions[-1].action == "approve"
    assert view.transitions[-1].actor_user_id == actor(rt, "approver-cangnan").user_id
    assert actions.referrals(rt, cangnan).total == 0


def test_approval_beyond_the_matrix_is_refused_and_stores_nothing_at_the_boundary(rt_sqlite):
    """S1's project loan of 9,520万, approved by 龙湾's approver (own authority 2亿) under a matrix of exactly 9,520万 and of 1 fen less."""
    rt = rt_sqlite
    _register(rt, S1)
    from sandu.domain.project import Project

    d = _measure(rt, S1, project=Project("年产2.7万吨紧固件建设项目", 13_600 * WAN, 2_600 * WAN, 7))
    project = next(o for o in d.offers if o.product == "project_loan")
    assert project.referred_fen == project.limit_fen == 9_520 * WAN
    actions.review_offer(rt, actor(rt, "officer-longwan"), decision_id=d.id, product="project_loan", opinion="同意")
    approver = actor(rt, "approver-longwan")
    for max_fen, refused in ((project.limit_fen - 1, True), (project.limit_fen, False)):
        bundle = parse_bundle(_bundle_with(f'[[approval_authority]]\nrole = "approver"\nproduct = "*"\nmax_fen = {max_fen}\n'))
        before = _counts(rt)
        if refused:
            with pytest.raises(NotPermitted) as e:
                with rt.uow.write() as s:
                    orig.approve_offer(s, decision_id=d.id, product="project_loan", approver=approver, now=FIXED_NOW, bundle=bundle)
            assert e.value.rule == "approval.matrix" and str(max_fen) in e.value.message
            assert _counts(rt) == before and _app(rt, d.application_id).state == ST.PARTIALLY_APPROVED
        else:
            with rt.uow.write() as s:
                orig.approve_offer(s, decision_id=d.id, product="project_loan", approver=approver, now=FIXED_NOW, bundle=bundle)
            assert _app(rt, d.application_id).state == ST.APPROVED


def test_an_officer_declines_a_referred_application_once_with_a_reason_and_not_one_they_initiated(rt_sqlite):
    """拒绝 (`reject`): referred → declined, recorded with the officer and the reason; a partially approved application,
    an empty reason, the initiator and a pending human review are refused and change nothing."""
    rt = rt_sqlite
    _register(rt, S5)
    d = _measure(rt, S5)
    assert d.outcome == "refer" and _app(rt, d.application_id).state == ST.REFERRED
    officer = actor(rt, "officer-cangnan")
    before = _counts(rt)
    for who, reason, error, what in ((officer, "", InvalidInput, "reason"), (officer, "拒\u202e绝", InvalidInput, "reason")):
        with pytest.raises(error) as e:
            actions.reject_application(rt, who, application_id=d.application_id, reason=reason)
        assert e.value.field == what
        assert _counts(rt) == before
    with rt.uow.write() as s:  # as if the officer had measured it for the customer
        s.get(m.Decision, d.id).initiated_by = officer.user_id
    before = _counts(rt)
    with pytest.raises(NotPermitted) as e:
        actions.reject_application(rt, officer, application_id=d.application_id, reason="经营风险较高")
    assert e.value.rule == "maker_checker.initiator" and _counts(rt) == before
    view = actions.reject_application(rt, actor(rt, "approver-cangnan"), application_id=d.application_id, reason="押品估值存疑")
    assert view.state == ST.DECLINED and view.queued_at is None
    last = view.transitions[-1]
    assert (last.from_state, last.to_state, last.action, last.actor_user_id) == (ST.REFERRED, ST.DECLINED, "reject", actor(rt, "approver-cangnan").user_id)
    assert "押品估值存疑" in last.reason and actions.referrals(rt, officer).total == 0
    with pytest.raises(Conflict) as e:  # once
        actions.reject_application(rt, officer, application_id=d.application_id, reason="再次拒绝")
    assert e.value.field == "application" and "declined" in e.value.message
    _register(rt, S4)
    d4 = _measure(rt, S4)
    assert d4.outcome == "partial"
    with pytest.raises(Conflict):  # its approved part stays the applicant's
        actions.reject_application(rt, actor(rt, "officer-longwan"), application_id=d4.application_id, reason="拒绝")


def test_a_referred_human_review_is_decided_by_its_own_review_not_declined(rt_sqlite):
    rt = rt_sqlite
    row = _outsider(rt)
    _register(rt, row)
    d = _measure(rt, row)
    actions.request_human_review(rt, actor(rt, "outsider-wf"), decision_id=d.id, reason="请人工复核")
    before = _counts(rt)
    with pytest.raises(Conflict) as e:
        actions.reject_application(rt, actor(rt, "officer-lucheng"), application_id=d.application_id, reason="维持")
    assert "human review" in e.value.message and _counts(rt) == before


# --- withdrawal and expiry ---------------------------------------------------------------------------------------


def test_withdrawal_by_the_legal_representative_only_and_never_after_signing(rt_sqlite):
    rt = rt_sqlite
    _register(rt, S2)
    d = _measure(rt, S2)
    rep = actor(rt, "rep-s2")
    security.create_user(rt, None, username="delegate-s2", password=TEST_PASSWORD, role="applicant",
                         resident_id=make_resident_id("330302", date(1985, 3, 3), "247"))
    security.add_delegate(rt, rep, uscc=S2["uscc"], username="delegate-s2")
    before = _counts(rt)
    with pytest.raises(NotPermitted) as e:
        actions.withdraw_application(rt, actor(rt, "delegate-s2"), application_id=d.application_id, reason="不需要了")
    assert e.value.rule == "origination.withdraw.legal_rep" and _counts(rt) == before
    with pytest.raises(InvalidInput) as e:
        actions.withdraw_application(rt, rep, application_id=d.application_id, reason="")
    assert e.value.field == "reason" and _counts(rt) == before
    view = actions.withdraw_application(rt, rep, application_id=d.application_id, reason="资金需求已满足")
    assert view.state == ST.WITHDRAWN and view.allowed_actions == [] and view.transitions[-1].reason == "资金需求已满足"
    with pytest.raises(Conflict) as e:
        actions.withdraw_application(rt, rep, application_id=d.application_id, reason="again")
    assert "is withdrawn" in e.value.message
    with pytest.raises(Conflict) as e:  # a withdrawn application is not signed
        actions.accept_offer(rt, rep, decision_id=d.id, product="jingying_kuaidai")
    assert "is withdrawn: it cannot accept" in e.value.message
    assert _counts(rt)["credit_lines"] == 0
    d2 = _measure(rt, S2)  # a new measurement: a new application
    line = actions.accept_offer(rt, rep, decision_id=d2.id, product="jingying_kuaidai")
    with pytest.raises(Conflict):
        actions.withdraw_application(rt, rep, application_id=line.application_id, reason="签了又不要")
    with pytest.raises(NotFound):
        actions.get_application(rt, 10**9)


def test_end_of_day_expires_an_unsigned_decision_the_day_after_its_last_valid_day(rt):
    _register(rt, S2)
    d = _measure(rt, S2)
    last_valid = d.as_of + timedelta(days=orig.DECISION_VALID_DAYS)
    assert eod(rt, last_valid - timedelta(days=1)).applications_expired == 0
    assert _app(rt, d.application_id).state == ST.APPROVED
    out = eod(rt, last_valid)  # the last day it could be signed is closed: from the next business date it cannot
    assert out.applications_expired == 1
    view = _app(rt, d.application_id)
    assert view.state == ST.EXPIRED and view.transitions[-1].actor_role == "system:eod" and str(last_valid) in view.transitions[-1].reason
    assert eod(rt, last_valid + timedelta(days=1)).applications_expired == 0  # once


def test_expiry_moves_every_due_decided_application_in_batches_and_nothing_else(rt, monkeypatch):
    """End of day's expiry, set-based: every decided state whose last valid day is on or before the closed date is
    expired (the day after it is not), with its transition (from its own state, the day in the reason, the decision,
    the job), its queue time cleared; other states and later days are left alone; batches of EXPIRY_BATCH, one audit
    note each, until a batch comes back short."""
    monkeypatch.setattr(workflow, "EXPIRY_BATCH", 3)
    through, now = date(2026, 11, 20), FIXED_NOW
    plan = [(state, valid_through) for state in (*sorted(TRANSITIONS[AppAction.EXPIRE]), ST.DRAFT, ST.AUTHORIZED, ST.ACCEPTED, ST.ACTIVE)
            for valid_through in (through - timedelta(days=9), through, through + timedelta(days=1), None)]
    with rt.uow.write() as s:
        ids = []
        for k, (state, valid_through) in enumerate(plan):
            ent = m.Enterprise(uscc=f"X{k:017d}", name=f"到期{k}", district=None, industry=None,
                               has_bank_account=True, branch="lucheng", legal_rep_id_masked="3303**********0000", legal_rep_id_hmac=None,
                               registered_at=now, registered_by=None)
            s.add(ent)
            s.flush()
            app = m.Application(enterprise_id=ent.id, branch="lucheng", state=state.value, requested_fen=None, decision_id=None,
                                valid_through=valid_through, queued_at=now if state in QUEUED else None, created_at=now, updated_at=now)
            s.add(app)
            s.flush()
            ids.append(app.id)
    due = [i for i, (state, valid_through) in zip(ids, plan, strict=True)
           if state in TRANSITIONS[AppAction.EXPIRE] and valid_through is not None and valid_through <= through]
    assert len(due) == 2 * len(TRANSITIONS[AppAction.EXPIRE]) and len(due) % 3 != 0  # the last batch comes back short
    with rt.uow.read() as s:
        notes_before = s.scalar(select(func.count()).select_from(m.AuditRecord).where(m.AuditRecord.action == "applications.expire"))
    assert servicing.expire_applications(rt, Actor.system("eod"), through) == len(due)
    with rt.uow.read() as s:
        apps = {a.id: a for a in s.scalars(select(m.Application).where(m.Application.id.in_(ids)))}
        moves = s.scalars(select(m.ApplicationTransition).where(m.ApplicationTransition.application_id.in_(ids))
                          .order_by(m.ApplicationTransition.id)).all()
        notes = s.scalar(select(func.count()).select_from(m.AuditRecord).where(m.AuditRecord.action == "applications.expire")) - notes_before
        for app_id, (state, valid_through) in zip(ids, plan, strict=True):
            app = apps[app_id]
            if app_id in due:
                assert app.state == ST.EXPIRED and app.queued_at is None and app.updated_at == now, (state, valid_through)
            else:
                assert app.state == state and app.updated_at == now and (app.queued_at is not None) == (state in QUEUED), (state, valid_through)
        assert [t.application_id for t in moves] == due  # one each, in the order of their ids
        plan_of = dict(zip(ids, plan, strict=True))
        for t in moves:
            state, valid_through = plan_of[t.application_id]
            assert (t.from_state, t.to_state, t.action, t.at) == (state.value, "expired", "expire", now)
            assert t.actor_user_id is None and t.actor_role == "system:eod" and t.decision_id is None and str(valid_through) in t.reason
    assert notes == -(-len(due) // 3)
    assert servicing.expire_applications(rt, Actor.system("eod"), through) == 0  # once


# --- human review of an automated decline (PIPL art. 24) ---------------------------------------------------------


def test_human_review_lands_in_the_queue_once_and_is_decided_by_two_people(rt):
    row = _outsider(rt)
    _register(rt, row)
    d = _measure(rt, row)
    assert d.outcome == "decline" and _app(rt, d.application_id).state == ST.DECLINED
    rep, officer, approver = actor(rt, "outsider-wf"), actor(rt, "officer-lucheng"), actor(rt, "approver-lucheng")
    before = _counts(rt)
    for who, reason, error, what in (
        (rep, "x" * 1001, InvalidInput, "reason"),
        (rep, "", InvalidInput, "reason"),
        (actor(rt, "rep-s2"), "请复核", NotPermitted, "origination.human_review.legal_rep"),
    ):
        with pytest.raises(error) as e:
            actions.request_human_review(rt, who, decision_id=d.id, reason=reason)
        assert what in (e.value.field, getattr(e.value, "rule", None)), e.value
        assert _counts(rt) == before
    view = actions.request_human_review(rt, rep, decision_id=d.id, reason="我司新获发明专利，请人工复核")
    assert view.state == ST.REFERRED and view.human_review.status == "requested" and view.human_review.decision_id == d.id
    with pytest.raises(Conflict) as e:  # once per decision
        actions.request_human_review(rt, rep, decision_id=d.id, reason="再次申请")
    assert "already requested" in e.value.message
    page = actions.referrals(rt, officer)
    [r] = page.referrals
    assert r.human_review and r.decision_id == d.id and r.outcome == "decline" and r.reasons == d.reasons and r.human_review_status == "requested"
    with pytest.raises(Conflict):  # decided before an officer reviewed it
        actions.decide_human_review(rt, approver, decision_id=d.id)
    with pytest.raises(InvalidInput):
        actions.review_human_review(rt, officer, decision_id=d.id, outcome="maybe", opinion="x")
    with pytest.raises(NotPermitted) as e:  # the applicant does not review their own request
        actions.review_human_review(rt, rep, decision_id=d.id, outcome="upheld", opinion="x")
    assert e.value.rule == "maker_checker.initiator"
    actions.review_human_review(rt, officer, decision_id=d.id, outcome="upheld", opinion="无纳税记录，维持原决定")
    with pytest.raises(NotPermitted) as e:
        actions.decide_human_review(rt, officer, decision_id=d.id)
    assert e.value.rule == "maker_checker.reviewer"
    view = actions.decide_human_review(rt, approver, decision_id=d.id)
    assert view.state == ST.DECLINED and view.human_review.status == "upheld" and view.human_review.proposed_outcome == "upheld"
    assert [t.action for t in view.transitions][-2:] == ["request_review", "uphold"]
    assert actions.referrals(rt, officer).total == 0
    with pytest.raises(Conflict):  # still once per decision, also after it was decided
        actions.request_human_review(rt, rep, decision_id=d.id, reason="再次申请")


def test_a_human_review_may_refer_for_a_new_assessment_and_only_a_decline_can_be_reviewed(rt_sqlite):
    rt = rt_sqlite
    row = _outsider(rt)
    _register(rt, row)
    d = _measure(rt, row)
    rep = actor(rt, "outsider-wf")
    actions.request_human_review(rt, rep, decision_id=d.id, reason="数据有误，请复核")
    assert eod(rt, d.as_of + timedelta(days=45)).applications_expired == 0  # a pending review waits for its person
    actions.review_human_review(rt, actor(rt, "officer-lucheng"), decision_id=d.id, outcome="reassess", opinion="税务数据待更新，重新测额")
    view = actions.decide_human_review(rt, actor(rt, "approver-lucheng"), decision_id=d.id)
    assert view.state == ST.AUTHORIZED and view.human_review.status == "reassess"
    again = _measure(rt, row)
    assert again.application_id == d.application_id and _app(rt, d.application_id).decision_ids == [d.id, again.id]
    # S2 is approved: nothing automated refused it
    _register(rt, S2)
    d2 = _measure(rt, S2)
    before = _counts(rt)
    with pytest.raises(Conflict) as e:
        actions.request_human_review(rt, actor(rt, "rep-s2"), decision_id=d2.id, reason="请复核")
    assert "not a decline" in e.value.message and _counts(rt) == before


def test_a_new_measurement_supersedes_a_pending_human_review(rt_sqlite):
    rt = rt_sqlite
    row = _outsider(rt)
    _register(rt, row)
    d = _measure(rt, row)
    actions.request_human_review(rt, actor(rt, "outsider-wf"), decision_id=d.id, reason="请复核")
    with pytest.raises(Conflict):  # referred for the review: the table allows a new assessment, not a second request
        actions.request_human_review(rt, actor(rt, "outsider-wf"), decision_id=d.id, reason="请复核")
    d2 = _measure(rt, row)
    view = _app(rt, d2.application_id)
    assert view.state == ST.DECLINED and view.human_review.status == "superseded"
    with pytest.raises(Conflict):
        actions.review_human_review(rt, actor(rt, "officer-lucheng"), decision_id=d.id, outcome="upheld", opinion="x")


def test_queue_pages_are_bounded_and_oldest_first(rt_sqlite):
    rt = rt_sqlite
    ids = []
    for k, row in enumerate((S5, S4)):
        rt.clock.value = FIXED_NOW + timedelta(minutes=k)
        _register(rt, row)
        ids.append(_measure(rt, row).application_id)
    admin = actor(rt, "admin")
    everyone = actions.referrals(rt, admin)
    queued = [r.application_id for r in everyone.referrals]
    assert everyone.branch is None and queued == [i for i in ids if _app(rt, i).state in QUEUED]
    first = actions.referrals(rt, admin, limit=1)
    assert len(first.referrals) == 1 and first.next_offset == (1 if first.total > 1 else None)
    for bad in ({"limit": 0}, {"limit": workflow.MAX_REFERRAL_PAGE + 1}, {"offset": -1}, {"offset": workflow.MAX_REFERRAL_OFFSET + 1}):
        with pytest.raises(InvalidInput) as e:
            actions.referrals(rt, admin, **bad)
        assert e.value.field == next(iter(bad))
    with pytest.raises(SanduError):
        actions.referrals(rt, actor(rt, "risk"))


def test_registration_and_consent_open_and_authorize_an_application_by_the_service_layer(rt_sqlite):
    rt = rt_sqlite
    rep = actor(rt, "rep-s2")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        app = s.scalar(select(m.Application))
        assert app.state == "draft"
        orig.grant_consent(s, uscc=S2["uscc"], scopes=["tax", "credit_bureau"], bureau_authorization=True, purpose="credit_measurement",
                           signer=rep, valid_days=30, now=FIXED_NOW)
        orig.grant_consent(s, uscc=S2["uscc"], scopes=["tax", "credit_bureau"], bureau_authorization=True, purpose="credit_measurement",
                           signer=rep, valid_days=30, now=FIXED_NOW)  # a second consent changes nothing
        assert s.scalar(select(func.count()).select_from(m.Application)) == 1
        assert [t.action for t in workflow.transitions_of(s, app.id)] == ["open", "authorize"]
        d = orig.measure(s, uscc=S2["uscc"], consent_id=s.scalar(select(m.Consent.id).limit(1)), as_of=BUSINESS_DATE, now=FIXED_NOW, bundle=rt.bundle,
                         model=rt.model, tech=rt.tech, initiated_by=actor(rt, "officer-yongjia").user_id)
        assert d.application_id == app.id
        assess = workflow.transitions_of(s, app.id)[2]
        assert (assess.action, assess.actor_user_id, assess.actor_role) == ("assess", actor(rt, "officer-yongjia").user_id, "officer")


def test_eod_returns_the_count_and_the_view_documents_it():
    from sandu.servicing.views import EodView, LineView

    assert "applications_expired" in EodView.model_fields
    assert "null" in LineView.__doc__ and "not recorded" in LineView.__doc__
    assert SERVICE_NOW > FIXED_NOW
