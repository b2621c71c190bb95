"""A measurement's write path (Core statements, one per table) on SQLite and PostgreSQL: the decision, its offers and
the application's moves are stored as the ORM would have stored them, the answer is built from what was written and
equals the decision read back, and the audit record of the decision hashes the stored row on an intact chain."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import actor
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import StatementError

from sandu.audit import service as audit
from sandu.demo.users import story_applicant
from sandu.domain.enums import Outcome
from sandu.origination import actions as orig
from sandu.origination import service as svc
from sandu.origination import workflow
from sandu.origination.states import OUTCOME_ACTION
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m
from sandu.store.db import (
    _insert_ignoring,
    attach_written,
    encode_json,
    get_row,
    insert_if_absent,
    insert_rows,
    make_engine,
    row_values,
    set_columns,
    update_row,
)


def _measured_twice(rt, row) -> tuple[list, str]:
    """Register, consent and measure `row` twice (the second supersedes the first): (the two views, the application)."""
    rep = actor(rt, story_applicant(row["story"]))
    orig.register(rt, rep, uscc=row["uscc"], name=row["name"])
    cid = orig.grant_consent(rt, rep, uscc=row["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=30,
                             bureau_authorization=True).id
    views = [orig.measure(rt, rep, uscc=row["uscc"], consent_id=cid) for _ in range(2)]
    return views, cid


@pytest.mark.parametrize("row", STORY_ROWS, ids=[r["story"] for r in STORY_ROWS])
def test_the_answer_of_a_measurement_is_the_decision_as_stored(rt, row):
    views, _ = _measured_twice(rt, row)
    for view in views:
        assert orig.get_decision(rt, view.id).model_dump() == view.model_dump()  # built from what was written = read back
    first, second = views
    with rt.uow.read() as s:
        old, new = svc.get_decision(s, first.id), svc.get_decision(s, second.id)
        assert old.superseded_at is not None and new.superseded_at is None
        ent = s.get(m.Enterprise, new.enterprise_id)
        assert ent.live_decision_id == new.id
        assert set(new.timings_ms) == {"read_sources_ms", "score_and_policy_ms", "record_ms", "total_ms"} and new.timings_ms["record_ms"] > 0
        offers = svc.offers_of(s, new.id)
        assert [(o.product, o.limit_fen, o.approved_fen, str(o.rate_annual)) for o in offers] == [
            (o["product"], o["limit_fen"], o["approved_fen"], o["rate_annual"]) for o in new.result["offers"]]
        assert all(o.status == ("offered" if o.approved_fen > 0 else "referred") and o.reviewed_by is None and o.approved_by is None
                   for o in offers)
        app = s.get(m.Application, new.application_id)
        assert app.decision_id == new.id and app.valid_through is not None
        moves = list(s.scalars(select(m.ApplicationTransition).where(m.ApplicationTransition.application_id == app.id)
                               .order_by(m.ApplicationTransition.id)))
        # open → authorize, then for each decision: assess, then its outcome; each row starts where the one before ended
        assert [t.action for t in moves[-2:]] == ["assess", OUTCOME_ACTION[Outcome(new.outcome)].value] and moves[-1].to_state == app.state
        assert all(b.from_state == a.to_state for a, b in zip(moves, moves[1:], strict=False))
        assert [t.decision_id for t in moves[-4:]] == [first.id, first.id, second.id, second.id]
        assert (app.queued_at is not None) == (app.state in ("referred", "partially_approved"))
        # the audit record of each decision hashes its row as stored (timings and application included)
        noted = {r.object_id: r.after_sha256 for r in s.scalars(select(m.AuditRecord).where(m.AuditRecord.action == "decision.record"))}
        assert noted[new.id] == audit.state_sha256(new)
        s.refresh(old)
        assert noted[old.id] != audit.state_sha256(old)  # superseded since: the record keeps the state it had when written
        assert audit.verify_chain(s).ok


def test_row_values_writes_only_a_fully_set_new_object(rt):
    with rt.uow.write() as s:
        assert row_values(m.AuditHead(id=2, seq=0, sha256="0" * 64)) == {"id": 2, "seq": 0, "sha256": "0" * 64}
        with pytest.raises(AssertionError, match="columns not set: sha256"):
            row_values(m.AuditHead(id=2, seq=0))
        head = s.get(m.AuditHead, audit.HEAD_ID)
        with pytest.raises(AssertionError, match="only an object no session holds"):
            row_values(head)


def test_an_attached_row_is_stored_as_written_and_set_columns_updates_one_row(rt):
    with rt.uow.write() as s:
        user = s.scalars(select(m.User).order_by(m.User.id).limit(1)).one()
        written = m.ConsentText(sha256="a" * 64, text="written with Core")
        insert_rows(s, m.ConsentText, [row_values(written)])
        attach_written(s, written)
        assert s.get(m.ConsentText, "a" * 64) is written and not s.dirty and not s.new  # no INSERT or UPDATE follows
        set_columns(s, user, branch="永嘉")
        assert user.branch == "永嘉" and user not in s.dirty
    with rt.uow.read() as s:
        assert s.get(m.ConsentText, "a" * 64).text == "written with Core"
        assert s.get(m.User, user.id).branch == "永嘉"
    with rt.uow.write() as s:
        gone = m.ConsentText(sha256="b" * 64, text="never written")
        attach_written(s, gone)  # claims a row that is not there: updating it finds no row
        with pytest.raises(AssertionError, match="exactly one row updated"):
            set_columns(s, gone, text="x")


def test_update_row_flushes_first_and_gives_a_held_object_its_stored_values(rt):
    with rt.uow.write() as s:
        user = s.scalars(select(m.User).order_by(m.User.id).limit(1)).one()
        user.branch = "瓯海"  # a pending change: flushed before the UPDATE, as an ORM-enabled UPDATE would
        assert update_row(s, m.User, (user.id,), authority_fen=123_456_00) == 1
        assert user.authority_fen == 123_456_00 and user not in s.dirty
        assert update_row(s, m.User, (10**9,), authority_fen=1) == 0  # no such row: nothing updated
        with pytest.raises(AssertionError, match="not the key"):
            update_row(s, m.User, (user.id,), id=5)
        with pytest.raises(AssertionError, match="not the key"):
            set_columns(s, user, no_such_column=1)
    with rt.uow.read() as s:
        stored = s.get(m.User, user.id)
        assert (stored.branch, stored.authority_fen) == ("瓯海", 123_456_00)


def test_a_new_decision_supersedes_a_pending_human_review_also_one_the_session_holds(rt):
    row = STORY_ROWS[1]
    (first, second), _ = _measured_twice(rt, row)
    with rt.uow.write() as s:
        app_id = s.get(m.Decision, second.id).application_id
        held = m.HumanReview(application_id=app_id, decision_id=first.id, status="requested", requested_by=None, requested_at=first.decided_at,
                             reason="a person, please")
        s.add(held)
        s.flush()
        other = s.scalars(select(m.HumanReview).where(m.HumanReview.application_id != app_id)).all()
        workflow._supersede_reviews(s, app_id)
        assert held.status == "superseded" and held not in s.dirty
    with rt.uow.read() as s:
        assert s.get(m.HumanReview, held.id).status == "superseded"
        assert all(s.get(m.HumanReview, r.id).status == r.status for r in other)  # another application's reviews stay as they were


def test_get_row_answers_as_session_get(rt):
    row = STORY_ROWS[0]
    orig.register(rt, actor(rt, story_applicant(row["story"])), uscc=row["uscc"], name=row["name"])  # a membership
    with rt.uow.write() as s:
        user = s.scalars(select(m.User).order_by(m.User.id).limit(1)).one()
        user_id = user.id
        user.branch = "龙湾"  # held and changed, not flushed: the session's own object is the answer
        assert get_row(s, m.User, (user_id,)) is user and user.branch == "龙湾"
        assert get_row(s, m.User, (10**9,)) is None
        member = s.scalars(select(m.Membership).limit(1)).one()
        key = (member.user_id, member.enterprise_id)
        s.expunge(member)
        loaded = get_row(s, m.Membership, key)
        assert loaded is not member and (loaded.user_id, loaded.enterprise_id, loaded.relation) == (*key, member.relation)
        assert s.get(m.Membership, key) is loaded  # loaded into the session, as session.get would


def test_insert_if_absent_stores_what_the_orm_stores_and_a_second_insert_of_the_key_changes_nothing(rt):
    (view, _), cid = _measured_twice(rt, STORY_ROWS[1])
    with rt.uow.write() as s:
        stored = s.get(m.Profile, view.profile_sha256)
        row = {"sha256": "c" * 64, "enterprise_id": stored.enterprise_id, "consent_id": cid, "as_of": stored.as_of,
               "snapshot": {"features": {"营收": 1.5, "n": 3}, "flags": ["a"], "none": None}, "created_at": stored.created_at}
        s.add(m.Profile(**{**row, "sha256": "d" * 64}))  # the same values through the ORM, under another key
        s.flush()
        insert_if_absent(s, m.Profile, key="sha256", row=row)
        insert_if_absent(s, m.Profile, key="sha256", row={**row, "snapshot": {"other": True}})  # the key is there: nothing happens
    with rt.uow.read() as s:
        raw = {r[0]: tuple(r[1:]) for r in s.connection().exec_driver_sql(
            "SELECT sha256, enterprise_id, consent_id, as_of, CAST(snapshot AS TEXT), created_at FROM profiles WHERE sha256 IN ('" + "c" * 64 + "', '"
            + "d" * 64 + "')")}
        assert raw["c" * 64] == raw["d" * 64]  # byte for byte as the ORM writes it
        assert s.get(m.Profile, "c" * 64).snapshot == row["snapshot"]


def test_concurrent_writers_of_the_same_content_all_succeed_and_store_it_once(rt):
    """The reason for ON CONFLICT DO NOTHING: writers of one content-addressed row at once (on PostgreSQL each holding its
    transaction open a moment after inserting, so the others meet the uncommitted row) all commit, and the row is stored once."""
    row = {"sha256": "e" * 64, "text": "同一份授权书文本"}
    writers, barrier, outcomes = 6, threading.Barrier(6), []

    def write() -> None:
        try:
            barrier.wait(timeout=30)
            with rt.uow.write() as s:
                insert_if_absent(s, m.ConsentText, key="sha256", row=row)
                time.sleep(0.05)
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes == ["ok"] * writers
    with rt.uow.read() as s:
        assert s.scalars(select(m.ConsentText).where(m.ConsentText.sha256 == row["sha256"])).all()[0].text == row["text"]
        assert len(s.scalars(select(m.ConsentText.sha256).where(m.ConsentText.sha256 == row["sha256"])).all()) == 1


@pytest.mark.parametrize("model, key", [(m.Profile, "sha256"), (m.ConsentText, "sha256"), (m.EodRun, "business_date")])
@pytest.mark.parametrize("dialect", [SQLiteDialect_pysqlite, PGDialect_psycopg], ids=["sqlite", "postgresql"])
def test_insert_if_absent_runs_the_dialects_own_statement_compiled_once(dialect, model, key):
    """The cached text statement renders as the dialect's INSERT … ON CONFLICT DO NOTHING, PostgreSQL's casts after each
    parameter included (once: the text is rendered without them, its typed parameters add them)."""
    columns = tuple(c.name for c in model.__table__.c)
    own = (sqlite_insert if dialect is SQLiteDialect_pysqlite else pg_insert)(model.__table__).values(
        {c: bindparam(c) for c in columns}).on_conflict_do_nothing(index_elements=[key])
    cached = _insert_ignoring(dialect, model.__table__, key, columns)
    assert str(cached.compile(dialect=dialect())) == str(own.compile(dialect=dialect()))
    assert _insert_ignoring(dialect, model.__table__, key, columns) is cached


def test_json_encoded_before_the_write_is_stored_as_the_column_would_have_encoded_it(rt):
    """The decision's result, the profile's snapshot and the kept payloads are encoded before the write transaction
    (`encode_json`; the decision's big columns as the audit state's text, `stored_state_json`): they read back as that
    value, and on SQLite, where the driver gives the text, the decision's is the one its audit hash reads."""
    views, cid = _measured_twice(rt, STORY_ROWS[1])
    with rt.engine.connect() as conn:
        result, versions, application, sha = conn.execute(text("SELECT result, model_versions, application, profile_sha256 FROM decisions WHERE id = :id"),
                                                          {"id": views[1].id}).one()
        snapshot = conn.execute(text("SELECT snapshot FROM profiles WHERE sha256 = :s"), {"s": sha}).scalar_one()
        payloads = conn.execute(text("SELECT payload FROM source_payloads WHERE consent_id = :c"), {"c": cid}).scalars().all()
    with rt.uow.read() as s:
        d = svc.get_decision(s, views[1].id)
        stored = {"result": d.result, "model_versions": d.model_versions, "application": d.application,
                  "snapshot": s.get(m.Profile, sha).snapshot}
        kept = s.scalars(select(m.SourcePayload.payload).where(m.SourcePayload.consent_id == cid)).all()
    raw = {"result": result, "model_versions": versions, "application": application, "snapshot": snapshot}
    for column, value in stored.items():
        text_ = raw[column] if isinstance(raw[column], str) else json.dumps(raw[column])  # PostgreSQL's driver reads JSON as values
        assert json.loads(text_) == value and isinstance(value, dict), column  # a document, not a string holding one
        if isinstance(raw[column], str) and column != "snapshot":
            assert raw[column] == audit.stored_state_json(value) == audit.state_json(value), column  # encoded once, for both
    assert payloads and len(kept) == len(payloads) and all(isinstance(p, dict) for p in kept)


def test_an_engine_not_made_by_make_engine_refuses_json_encoded_ahead(tmp_path):
    from sqlalchemy import JSON, Column, Integer, MetaData, Table, create_engine, insert

    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("doc", JSON))
    plain, ours = create_engine(f"sqlite:///{tmp_path / 'plain.db'}"), make_engine(f"sqlite:///{tmp_path / 'ours.db'}")
    for engine in (plain, ours):
        table.metadata.create_all(engine)
    with pytest.raises(StatementError, match="not JSON serializable"), plain.begin() as conn:  # refused, not stored as a JSON string
        conn.execute(insert(table), {"doc": encode_json({"a": 1})})
    with ours.begin() as conn:
        conn.execute(insert(table), [{"doc": encode_json({"a": [1, "二"]})}, {"doc": {"a": [1, "二"]}}, {"doc": "text"}])
    with ours.connect() as conn:
        assert conn.execute(text("SELECT doc FROM t ORDER BY id")).scalars().all() == [json.dumps({"a": [1, "二"]})] * 2 + ['"text"']
        assert conn.execute(select(table.c.doc).order_by(table.c.id)).scalars().all() == [{"a": [1, "二"]}] * 2 + ["text"]
    plain.dispose()
    ours.dispose()
