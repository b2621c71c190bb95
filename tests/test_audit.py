"""The audit trail: every change is on it, in the same transaction; and any tampering with
the stored chain — an edited field, a deleted, swapped or forged record — is found by
`sandu audit verify`, which names the first broken link."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cli_support import sandu
from conftest import BUSINESS_DATE, TEST_SECRET, actor, runtime_on
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from sandu.audit import actions as audit
from sandu.audit import service as state
from sandu.audit.chain import FIELDS, GENESIS, record_sha256, verify
from sandu.demo.stories import replay_all
from sandu.origination import actions as orig
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m

S2 = STORY_ROWS[1]
MUTATIONS = 100
EDITABLE = ("at", "actor_user_id", "actor_role", "action", "object_type", "object_id", "request_id", "before_sha256", "after_sha256",
            "prev_sha256", "sha256")


@pytest.fixture(scope="module")
def trail(tmp_path_factory, sqlite_template):
    """A store whose trail holds the five stories (a few dozen records), and its records."""
    path = tmp_path_factory.mktemp("audit") / "sandu.db"
    shutil.copyfile(sqlite_template, path)
    rt = runtime_on(f"sqlite:///{path}")
    assert all(o.ok for o in replay_all(rt, BUSINESS_DATE))
    with rt.uow.read() as s:
        records = [{**{k: getattr(r, k) for k in FIELDS}, "sha256": r.sha256} for r in s.scalars(select(m.AuditRecord).order_by(m.AuditRecord.seq))]
        head = (s.get(m.AuditHead, 1).seq, s.get(m.AuditHead, 1).sha256)
    rt.engine.dispose()
    return path, records, head


def test_every_change_of_the_stories_is_on_the_chain_and_the_chain_is_intact(trail):
    path, records, head = trail
    assert len(records) >= 30 and head == (records[-1]["seq"], records[-1]["sha256"])
    actions = {r["action"] for r in records}
    assert {"enterprise.register", "consent.grant", "decision.record", "offer.review", "offer.approve", "line.open", "line.draw",
            "line.repay"} <= actions
    assert records[0]["prev_sha256"] == GENESIS
    # every act of a person names them; only the seeding of users and the end of day are the system's
    assert all(r["actor_user_id"] is not None for r in records if r["action"] not in ("user.create", "eod.batch", "eod.close") or r["actor_role"] == "applicant")
    rt = runtime_on(f"sqlite:///{path}")
    verdict = audit.verify(rt)
    rt.engine.dispose()
    assert verdict.ok and verdict.checked == len(records)


def _mutate(records: list[dict], rng: random.Random) -> tuple[list[dict], str, set[int]]:
    """A copy of `records` tampered with one way; returns (records, what, where the chain must break)."""
    out = [dict(r) for r in records]
    n = len(out)
    kind = rng.choice(("edit", "delete", "swap", "insert"))
    i = rng.randrange(n)
    if kind == "edit":
        field = rng.choice(EDITABLE)
        value = out[i][field]
        out[i][field] = (value + 1) if isinstance(value, int) else ("x" if value is None else (str(value)[:-1] + ("0" if str(value)[-1:] != "0" else "1")))
        return out, f"edit {field} of {i + 1}", {i + 1}
    if kind == "delete":
        del out[i]
        return out, f"delete {i + 1}", {i + 1}
    if kind == "swap":
        j = rng.choice([k for k in range(n) if k != i])
        i, j = min(i, j), max(i, j)
        for field in (*EDITABLE,):
            out[i][field], out[j][field] = out[j][field], out[i][field]
        return out, f"swap {i + 1} and {j + 1}", {i + 1}
    forged = {**out[i], "action": "user.create", "object_id": "999", "actor_user_id": 1, "prev_sha256": out[i - 1]["sha256"] if i else GENESIS}
    forged["sha256"] = record_sha256(forged)  # a well-made forgery: its own hash and its link are right
    out.insert(i, forged)
    for k in range(i + 1, len(out)):
        out[k]["seq"] += 1  # and the ones after it renumbered
    return out, f"insert before {i + 1}", {i + 1, i + 2}


def test_one_hundred_random_tamperings_are_each_found_at_the_first_broken_link(trail):
    _path, records, head = trail
    rng = random.Random(20261129)
    for _ in range(MUTATIONS):
        tampered, what, expected = _mutate(records, rng)
        verdict = verify(tampered, *head)
        assert not verdict.ok, what
        assert verdict.broken_seq in expected, f"{what}: broken at {verdict.broken_seq} ({verdict.reason})"
        assert f"record {verdict.broken_seq}" in verdict.text()


SANDU = str(Path(sys.executable).with_name("sandu"))


@pytest.mark.parametrize(
    ("sql", "broken"),
    [
        ("UPDATE audit_log SET object_id = 'forged' WHERE seq = 5", 5),
        ("DELETE FROM audit_log WHERE seq = 7", 7),
        ("UPDATE audit_log SET action = action || '.x' WHERE seq = 4", 4),
        ("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)", None),  # cut at the end: the head catches it
    ],
)
def test_sandu_audit_verify_names_the_first_broken_link_in_a_tampered_store(trail, tmp_path, sql, broken):
    path, records, _head = trail
    copy = tmp_path / "tampered.db"
    shutil.copyfile(path, copy)
    env = {**os.environ, "SANDU_DATABASE_URL": f"sqlite:///{copy}", "SANDU_SECRET_KEY": TEST_SECRET}
    ok = sandu(["audit", "verify"], env=env)  # the untouched copy in this process (tests/cli_support.py); the tampered one in a real one
    assert ok.returncode == 0 and "intact" in ok.stdout
    import sqlite3

    with sqlite3.connect(copy) as conn:
        conn.execute(sql)
    bad = subprocess.run([SANDU, "audit", "verify"], capture_output=True, text=True, env=env, timeout=120)
    expected = broken if broken is not None else len(records)
    assert bad.returncode == 1 and f"broken at record {expected}" in bad.stderr, bad.stdout + bad.stderr


def test_a_refused_change_leaves_no_audit_record(sqlite_url):
    rt = runtime_on(sqlite_url)
    try:
        before = audit.head(rt)
        with pytest.raises(Exception):  # noqa: B017 - any refusal
            orig.register(rt, actor(rt, "rep-s2"), uscc=STORY_ROWS[0]["uscc"], name="x")  # S1 belongs to another person
        assert audit.head(rt) == before
        orig.register(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], name=S2["name"])
        seq, _ = audit.head(rt)
        assert seq == before[0] + 1
        with rt.engine.connect() as conn:
            row = conn.execute(text("SELECT action, object_id, actor_user_id FROM audit_log WHERE seq = :s"), {"s": seq}).one()
        assert row == ("enterprise.register", S2["uscc"], actor(rt, "rep-s2").user_id)
    finally:
        rt.engine.dispose()


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text() | st.decimals(allow_nan=False) | st.dates(),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(result=_JSON, application=_JSON, versions=st.dictionaries(st.text(max_size=6), _JSON, max_size=4), ahead=st.sets(
    st.sampled_from(["result", "application", "model_versions", "outcome", "decided_at"]), min_size=1))
def test_a_row_state_hashed_with_columns_encoded_ahead_is_the_same_hash(result, application, versions, ahead):
    decision = m.Decision(id="d-1", enterprise_id=7, profile_sha256="p" * 64, policy_version="v", policy_sha256="s" * 64, model_versions=versions,
                          application=application, outcome="approve", comprehensive_limit_fen=12_345, result=result, as_of=date(2026, 10, 31),
                          decided_at=datetime(2026, 10, 31, 9, 30, tzinfo=timezone.utc), initiated_by=None, superseded_at=None)
    whole = state.state_sha256(decision)
    assert state.state_sha256(decision, {c: state.state_json(getattr(decision, c)) for c in ahead}) == whole
    assert state.state_sha256(decision, {"result": state.state_json({"changed": result})}) != whole  # the parts are hashed, not ignored
    with pytest.raises(AssertionError, match="not its columns"):
        state.state_sha256(decision, {"no_such_column": "1"})


_STORABLE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                         lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=16)


@settings(max_examples=300, deadline=None)
@given(_STORABLE)
def test_a_value_json_holds_as_it_is_is_stored_as_its_state_text_and_reads_back_equal(value):
    """`stored_state_json`: one text for the column and for the row's hash (a measurement's big columns are encoded once)."""
    text = state.stored_state_json(value)
    assert text == state.state_json(value)
    assert json.loads(text) == value


@pytest.mark.parametrize("value", [{"a": Decimal("1.5")}, [date(2026, 10, 31)], {"at": datetime(2026, 10, 31, tzinfo=timezone.utc)}, {1: "x"}.keys(),
                                   {"s": {1, 2}}])
def test_a_value_json_has_no_form_for_is_refused_not_stored_as_text(value):
    with pytest.raises(TypeError):
        state.stored_state_json(value)
