"""Retention and erasure (PIPL): raw payloads are kept until their source's retention date and then
purged; an erasure stops reads, removes what the law does not require the bank to keep, and records
what it kept and why. Snapshots and decisions stay (a decision replays after the purge)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import FIXED_NOW, TEST_SECRET, actor
from sqlalchemy import func, select
from test_origination import S2, consent, register

from sandu.domain.errors import ConsentDenied, InvalidInput
from sandu.origination import actions
from sandu.origination import service as orig
from sandu.runtime import Runtime
from sandu.store import models as m


def _count(rt, model, **where) -> int:
    with rt.uow.read() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


def _rt(rt, days: int = 90, **per_source: int):
    return replace(rt, settings=rt.settings.model_copy(update={"sources_retention_days": days, "source_retention_days": per_source}))


def test_payloads_are_kept_until_their_sources_retention_date_then_purged(rt_sqlite):
    rt = _rt(rt_sqlite, 90, credit_bureau=30, utilities=0)
    register(rt, S2)
    cid = consent(rt, S2)
    v = actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    with rt.uow.read() as s:
        kept = {p.source: (p.keep_until, p.payload_sha256) for p in s.scalars(select(m.SourcePayload))}
        reads = {r.source: r.payload_sha256 for r in s.scalars(select(m.SourceRead).where(m.SourceRead.consent_id == cid))}
    assert "utilities" not in kept  # retention 0: not kept
    assert kept["credit_bureau"][0] == FIXED_NOW + timedelta(days=30) and kept["tax"][0] == FIXED_NOW + timedelta(days=90)
    assert all(sha == reads[s] for s, (_, sha) in kept.items())  # the log's hash is the payload's
    # the day before the bureau's date nothing goes; on it the bureau's payload goes, the rest stay
    assert actions.purge_payloads(rt.with_clock(lambda: FIXED_NOW + timedelta(days=30) - timedelta(seconds=1)), actor(rt, "ops"))["deleted"] == {}
    done = actions.purge_payloads(rt.with_clock(lambda: FIXED_NOW + timedelta(days=30)), actor(rt, "ops"))
    assert done == {"deleted": {"credit_bureau": 1}, "left": 0, "snapshots": 0, "snapshots_left": 0}
    assert _count(rt, m.SourcePayload) == len(kept) - 1
    actions.purge_payloads(rt.with_clock(lambda: FIXED_NOW + timedelta(days=91)), actor(rt, "ops"))
    assert _count(rt, m.SourcePayload) == 0
    with rt.uow.read() as s:  # the decision still replays from its snapshot
        assert orig.replay(s, v.id, rt.bundle, rt.model, rt.tech).outcome == v.outcome


def test_a_purge_deletes_a_chunk_per_write_up_to_its_bound_and_says_what_is_left(rt_sqlite, monkeypatch):
    """The store's writer is held for one chunk at a time (a backlog of 100,000 rows in one transaction held it for
    seconds); each chunk is on the audit trail; the bound of one run stays, and what it left is counted."""
    rt = _rt(rt_sqlite, 30)
    register(rt, S2)
    cid = consent(rt, S2)
    for _ in range(3):
        actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    due = _count(rt, m.SourcePayload)
    assert due >= 12, due  # three measurements' payloads
    from sandu.origination import privacy

    monkeypatch.setattr(privacy, "PURGE_CHUNK_ROWS", 4)
    monkeypatch.setattr(privacy, "MAX_PURGE_ROWS", 10)
    writes: list[float] = []
    rt.uow.on_write = lambda waited_s, held_s: writes.append(held_s)
    later = rt.with_clock(lambda: FIXED_NOW + timedelta(days=30))
    done = actions.purge_payloads(later, actor(rt, "ops"))
    assert sum(done["deleted"].values()) == 10 and done["left"] == due - 10
    assert len(writes) == 3 + 1  # 4 + 4 + 2 payloads (the bound), then one look for loose snapshots (none)
    with rt.uow.read() as s:
        notes = list(s.scalars(select(m.AuditRecord.object_id).where(m.AuditRecord.action == "payloads.purge").order_by(m.AuditRecord.seq)))
    assert notes == ["4 rows", "4 rows", "2 rows"]
    rest = actions.purge_payloads(later, actor(rt, "ops"))
    assert sum(rest["deleted"].values()) == min(10, due - 10) and rest["left"] == max(0, due - 20) == _count(rt, m.SourcePayload)


def test_an_unknown_source_in_the_retention_setting_stops_the_runtime(rt_sqlite):
    from sandu.intake.config import IntakeConfigError

    with pytest.raises(IntakeConfigError, match="SANDU_SOURCE_RETENTION_DAYS names weather"):
        Runtime(engine=rt_sqlite.engine, bundle=rt_sqlite.bundle, model=rt_sqlite.model,
                settings=rt_sqlite.settings.model_copy(update={"source_retention_days": {"weather": 3}}))
    for days in (91, {"tax": 91}):  # longer than the consent text promises: refused; 90 is the longest allowed
        update = {"sources_retention_days": days} if isinstance(days, int) else {"source_retention_days": days}
        with pytest.raises(IntakeConfigError, match="longer than the consent text promises"):
            Runtime(engine=rt_sqlite.engine, bundle=rt_sqlite.bundle, model=rt_sqlite.model, settings=rt_sqlite.settings.model_copy(update=update))
    Runtime(engine=rt_sqlite.engine, bundle=rt_sqlite.bundle, model=rt_sqlite.model,
            settings=rt_sqlite.settings.model_copy(update={"sources_retention_days": 90, "source_retention_days": {"tax": 90}}))


def test_erasure_stops_reads_removes_payloads_and_loose_snapshots_and_says_what_it_kept(rt_sqlite):
    rt = _rt(rt_sqlite)
    register(rt, S2)
    cid = consent(rt, S2)
    v = actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    with rt.uow.write() as s:  # a refresh snapshot no decision refers to
        s.add(m.Profile(sha256="f" * 64, enterprise_id=s.get(m.Decision, v.id).enterprise_id, consent_id=cid, as_of=FIXED_NOW.date(),
                        snapshot={}, created_at=FIXED_NOW))
    payloads = _count(rt, m.SourcePayload)
    assert payloads > 0
    out = actions.erase_enterprise(rt, actor(rt, "ops"), uscc=S2["uscc"], reason="申请人书面申请 2026-11-30 第12号")
    assert out.removed == {"source_payloads": payloads, "unreferenced_snapshots": 1, "live_consents_revoked": 1}
    kept = {k.what: k for k in out.kept}
    assert kept["decisions and the snapshots they were made on"].rows == 1 and "PIPL art. 24" in kept["decisions and the snapshots they were made on"].why
    assert kept["the read log (source, time, outcome, payload sha256)"].rows == 8
    assert _count(rt, m.SourcePayload) == 0 and _count(rt, m.Profile, sha256="f" * 64) == 0
    with rt.uow.read() as s:
        assert s.get(m.Profile, s.get(m.Decision, v.id).profile_sha256) is not None
        assert orig.replay(s, v.id, rt.bundle, rt.model, rt.tech).outcome == v.outcome
        e = s.scalar(select(m.Erasure))
        assert e.reason.startswith("申请人书面申请") and e.removed == out.removed
    with pytest.raises(ConsentDenied, match="revoked"):  # reads stop at once
        actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)


def test_snapshots_no_decision_rests_on_are_kept_five_years_then_purged(rt_sqlite):
    from sandu.origination.privacy import snapshot_keep_from
    from sandu.sources.consent_text import PROFILE_RETENTION_YEARS

    rt = _rt(rt_sqlite)
    register(rt, S2)
    cid = consent(rt, S2)
    v = actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    with rt.uow.write() as s:  # two refresh snapshots, and the decision's own, all made at FIXED_NOW
        ent_id = s.get(m.Decision, v.id).enterprise_id
        for sha in ("a" * 64, "b" * 64):
            s.add(m.Profile(sha256=sha, enterprise_id=ent_id, consent_id=cid, as_of=FIXED_NOW.date(), snapshot={}, created_at=FIXED_NOW))
    five_years_on = FIXED_NOW.replace(year=FIXED_NOW.year + PROFILE_RETENTION_YEARS)
    assert snapshot_keep_from(five_years_on) == FIXED_NOW
    done = actions.purge_payloads(rt.with_clock(lambda: five_years_on), actor(rt, "ops"))  # exactly five years: still kept
    assert done["snapshots"] == 0 and _count(rt, m.Profile) == 3
    done = actions.purge_payloads(rt.with_clock(lambda: five_years_on + timedelta(seconds=1)), actor(rt, "ops"))
    assert (done["snapshots"], done["snapshots_left"]) == (2, 0)
    with rt.uow.read() as s:  # the decision's snapshot is the credit file's, and the decision still replays
        assert [p.sha256 for p in s.scalars(select(m.Profile))] == [s.get(m.Decision, v.id).profile_sha256]
        assert orig.replay(s, v.id, rt.bundle, rt.model, rt.tech).outcome == v.outcome
        assert s.scalar(select(func.count()).select_from(m.AuditRecord).where(m.AuditRecord.action == "snapshots.purge")) == 1
    leap = FIXED_NOW.replace(year=2028, month=2, day=29)
    assert snapshot_keep_from(leap) == leap.replace(year=2023, day=28)


@pytest.mark.parametrize("reason", ["", " leading space", "x" * 501, 7])
def test_an_erasure_without_a_proper_reason_is_refused_and_changes_nothing(rt_sqlite, reason):
    rt = _rt(rt_sqlite)
    register(rt, S2)
    cid = consent(rt, S2)
    actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    before = _count(rt, m.SourcePayload)
    with pytest.raises(InvalidInput) as e:
        actions.erase_enterprise(rt, actor(rt, "ops"), uscc=S2["uscc"], reason=reason)
    assert e.value.field == "reason"
    assert _count(rt, m.SourcePayload) == before and _count(rt, m.Erasure) == 0


def test_cli_purge_and_erase(tmp_path, sqlite_template):
    import shutil

    db = tmp_path / "p.db"
    shutil.copy(sqlite_template, db)
    env = {**os.environ, "SANDU_DATABASE_URL": f"sqlite:///{db}", "SANDU_SECRET_KEY": TEST_SECRET, "COLUMNS": "200"}
    sandu = str(Path(sys.executable).with_name("sandu"))
    r = subprocess.run([sandu, "sources", "purge"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "purged 0 raw payloads" in r.stdout and "purged 0 snapshots no decision rests on" in r.stdout, r.stderr
    r = subprocess.run([sandu, "privacy", "erase", "--enterprise", S2["uscc"], "--reason", "ref 12"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr  # the template store holds no registered enterprise
    assert S2["uscc"] in r.stderr and "enterprise" in r.stderr, r.stderr
