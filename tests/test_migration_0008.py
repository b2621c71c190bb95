"""Migration 0008 adds applications, their transitions and human reviews, and the annualized rate and 普惠型小微 flag
on lines. On SQLite and PostgreSQL: a store written by today's services is taken back to 0007 (the workflow's tables
and columns go) and up again — the backfill gives each enterprise's applications the states their decisions, offers
and lines tell, with transitions from which measurement → first drawing is reported, and the services go on."""

from __future__ import annotations

from datetime import date, timedelta

from conftest import AS_OF, FIXED_NOW, SEED, TEST_PASSWORD, TEST_SETTINGS, Clock, known_to_decline
from sqlalchemy import inspect, select, text

from sandu.demo.seed import seed_universe
from sandu.demo.users import demo_specs
from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.origination import actions, workflow
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.security import actions as security
from sandu.servicing import actions as servicing
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m
from sandu.store.db import make_engine
from sandu.store.migrate import current_revision, downgrade, head_revision, upgrade

S2, S3, S4, S5 = STORY_ROWS[1], STORY_ROWS[2], STORY_ROWS[3], STORY_ROWS[4]
_BODY = "55555555"
OUTSIDER = {"uscc": make_uscc("9", "1", "330302", _BODY + org_code_check_char(_BODY)), "name": "温州迁移测试有限公司", "username": "outsider-08"}
WORKFLOW_TABLES = {"applications", "application_transitions", "human_reviews"}


def _as(rt, username):
    return security.actor_by_username(rt, username)


def _consent(rt, who, uscc):
    return actions.grant_consent(rt, who, uscc=uscc, scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=30, bureau_authorization=True).id


def test_applications_are_backfilled_from_what_the_store_tells_down_and_up_again(empty_db_url):
    engine = make_engine(empty_db_url, TEST_SETTINGS)
    assert upgrade(engine) == head_revision(engine)
    clock = Clock(FIXED_NOW)
    rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model(), settings=TEST_SETTINGS, clock=clock)
    seed_universe(rt.uow, 40, SEED, AS_OF)
    known_to_decline(rt, OUTSIDER["uscc"], OUTSIDER["name"], make_resident_id("330302", date(1979, 9, 9), "357"))
    for spec in demo_specs():
        security.create_user(rt, None, username=spec.username, password=TEST_PASSWORD, role=spec.role, branch=spec.branch,
                             authority_fen=spec.authority_fen, resident_id=spec.resident_id)
    security.create_user(rt, None, username=OUTSIDER["username"], password=TEST_PASSWORD, role="applicant",
                         resident_id=make_resident_id("330302", date(1979, 9, 9), "357"))
    rep2, rep4, rep5, rep3, out = (_as(rt, u) for u in ("rep-s2", "rep-s4", "rep-s5", "rep-s3", OUTSIDER["username"]))
    for who, row in ((rep2, S2), (rep3, S3), (rep4, S4), (rep5, S5), (out, OUTSIDER)):
        actions.register(rt, who, uscc=row["uscc"], name=row["name"])
    d2 = actions.measure(rt, rep2, uscc=S2["uscc"], consent_id=_consent(rt, rep2, S2["uscc"]))
    line = actions.accept_offer(rt, rep2, decision_id=d2.id, product="jingying_kuaidai")
    clock.value = FIXED_NOW + timedelta(hours=3)
    servicing.draw(rt, rep2, line_id=line.id, amount_fen=10 * WAN, idempotency_key="m08")
    d2b = actions.measure(rt, rep2, uscc=S2["uscc"], consent_id=_consent(rt, rep2, S2["uscc"]))  # after signing: a new application
    _consent(rt, rep4, S4["uscc"])  # authorized, never measured
    d5 = actions.measure(rt, rep5, uscc=S5["uscc"], consent_id=_consent(rt, rep5, S5["uscc"]))
    dx = actions.measure(rt, out, uscc=OUTSIDER["uscc"], consent_id=_consent(rt, out, OUTSIDER["uscc"]))
    actions.request_human_review(rt, out, decision_id=dx.id, reason="请复核")
    before = {a: actions.get_application(rt, a).state for a in (d2.application_id, d2b.application_id, d5.application_id)}
    assert before == {d2.application_id: "active", d2b.application_id: "approved", d5.application_id: before[d5.application_id]}
    assert before[d5.application_id] in ("referred", "partially_approved")

    assert downgrade(engine, "0007") == "0007" == current_revision(engine)
    insp = inspect(engine)
    assert not WORKFLOW_TABLES & set(insp.get_table_names())
    assert not {"application_id", "annualized_rate", "inclusive_small_micro"} & {c["name"] for c in insp.get_columns("credit_lines")}
    assert "application_id" not in {c["name"] for c in insp.get_columns("decisions")}

    assert upgrade(engine) == head_revision(engine) == current_revision(engine)
    with rt.uow.read() as s:
        ents = {e.uscc: e.id for e in s.scalars(select(m.Enterprise))}
        apps = {}
        for uscc, ent_id in ents.items():
            apps[uscc] = [(a.state, a.decision_id) for a in s.scalars(select(m.Application).where(m.Application.enterprise_id == ent_id)
                                                                       .order_by(m.Application.id))]
        assert apps[S2["uscc"]] == [("active", d2.id), ("approved", d2b.id)]  # split at the signature
        assert apps[S3["uscc"]] == [("draft", None)] and apps[S4["uscc"]] == [("authorized", None)]
        assert apps[S5["uscc"]] == [(before[d5.application_id], d5.id)]
        assert apps[OUTSIDER["uscc"]] == [("declined", dx.id)]  # the review went with its table (the downgrade says so)
        line_row = s.get(m.CreditLine, line.id)
        assert str(line_row.annualized_rate) == line.annualized_rate and line_row.inclusive_small_micro == line.inclusive_small_micro
        s2_app = s.scalar(select(m.Application).where(m.Application.decision_id == d2.id))
        assert line_row.application_id == s2_app.id and s.get(m.Decision, d2.id).application_id == s2_app.id
        [fig] = workflow.measurement_to_first_drawing(s, application_id=s2_app.id)
        assert fig.seconds == 3 * 3600.0  # decided at FIXED_NOW, first drawn three hours later
        queued = s.scalar(select(m.Application).where(m.Application.decision_id == d5.id))
        assert queued.queued_at == d5.decided_at and queued.valid_through == d5.as_of + timedelta(days=30)
        assert s.scalar(text("SELECT COUNT(*) FROM application_transitions WHERE action = 'migrated'")) == 2 * 4 + 2
    # the services go on: the declined outsider asks again (its review is gone), S2's new application is signed
    view = actions.request_human_review(rt, out, decision_id=dx.id, reason="再次请求复核")
    assert view.state == "referred" and view.human_review.status == "requested"
    with rt.uow.read() as s:
        new_app = s.scalar(select(m.Application.id).where(m.Application.decision_id == d2b.id))
    assert actions.get_application(rt, new_app).allowed_actions
    assert downgrade(engine, "0007") == "0007" and upgrade(engine) == head_revision(engine)
    engine.dispose()
