"""Replay trusts a stored profile only when it hashes to what the decision recorded.

On a real store: measure, then alter the stored snapshot (one field, as a faulty
migration or a hand edit would) and ask for a replay.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import BUSINESS_DATE, FIXED_NOW, PII_KEY, actor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm.attributes import flag_modified

from sandu.domain.errors import SanduError
from sandu.origination import service as orig
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import ProfileIntegrityError
from sandu.store import models as m

S2 = STORY_ROWS[1]


def measured_decision(rt) -> str:
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=actor(rt, "rep-s2"), pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(
            s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", signer=actor(rt, "rep-s2"), valid_days=30, now=FIXED_NOW
        )
        return orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=BUSINESS_DATE, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech).id


def store_snapshot(rt, decision_id: str, edit) -> None:
    with rt.uow.write() as s:
        prof = s.get(m.Profile, s.get(m.Decision, decision_id).profile_sha256)
        snapshot = copy.deepcopy(prof.snapshot)
        edit(snapshot)
        prof.snapshot = snapshot
        flag_modified(prof, "snapshot")  # written even when it compares equal (False == 0)


def replay(rt, decision_id: str):
    with rt.uow.write() as s:
        return orig.replay(s, decision_id, rt.bundle, rt.model, rt.tech)


def _set(path: tuple[Any, ...], value: Any):
    def edit(snapshot: dict[str, Any]) -> None:
        holder = snapshot
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("features", "revenue_fen"), 1, "sha256"),
        (("features", "tax_credit_grade"), "A" if S2["tax_credit_grade"] != "A" else "B", "sha256"),
        (("quality_flags",), ["tax:not_read"], "sha256"),
        (("collateral",), [{"id": "X", "kind": "residential", "appraised_value_fen": 1, "secured_debt_fen": 0}], "sha256"),
        (("as_of",), "2026-11-28", "sha256"),
        (("schema",), "profile-v0", "schema"),
        (("as_of",), "28/11/2026", "as_of"),
    ],
)
def test_replay_refuses_a_stored_profile_with_one_field_edited(rt_sqlite, path, value, field) -> None:
    rt = rt_sqlite
    did = measured_decision(rt)
    replay(rt, did)  # untouched, it replays
    store_snapshot(rt, did, _set(path, value))
    with pytest.raises(ProfileIntegrityError) as e:
        replay(rt, did)
    assert e.value.field == field
    assert not isinstance(e.value, SanduError)  # an integrity failure of the store, not a user error


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["revenue_fen", "rd_ratio", "certifications", "headcount", "utility_arrears"]), value=st.integers(-5, 5) | st.none())
def test_replay_refuses_any_single_feature_edit(rt_sqlite, key, value) -> None:
    rt = rt_sqlite
    with rt.uow.write() as s:
        did = s.scalar(m.Decision.__table__.select().with_only_columns(m.Decision.id).limit(1))
    if did is None:
        did = measured_decision(rt)
    with rt.uow.write() as s:
        prof = s.get(m.Profile, s.get(m.Decision, did).profile_sha256)
        original = copy.deepcopy(prof.snapshot)
    if original["features"].get(key) == value and type(original["features"].get(key)) is type(value):
        return
    store_snapshot(rt, did, _set(("features", key), value))
    try:
        with pytest.raises(ProfileIntegrityError) as e:
            replay(rt, did)
        assert e.value.field == "sha256" and "not the expected" in str(e.value)
    finally:
        store_snapshot(rt, did, lambda snap: snap.update(original))
    replay(rt, did)  # restored, it replays again
