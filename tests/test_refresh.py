"""Refresh (sandu sources refresh): re-read an existing customer's sources, keep the new snapshot,
say what changed — and read through the adapters with deadlines: a silent source is a gap, never a failure."""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from datetime import date

import pytest
from conftest import FIXED_NOW, actor
from sqlalchemy import func, select, update
from test_origination import S2, consent, measure, register

from sandu.domain.enums import Outcome
from sandu.domain.errors import ConsentDenied
from sandu.intake.outcome import ReadOutcome
from sandu.intake.reader import read_all
from sandu.origination import actions
from sandu.origination import service as orig
from sandu.store import models as m


class Silent:
    """An adapter whose source never answers in time."""

    name = "silent"

    def read(self, source: str, uscc: str, as_of: date, timeout_s: float) -> ReadOutcome:
        time.sleep(min(timeout_s, 5.0) + 0.2)
        return ReadOutcome(source, self.name, "timeout", reason="the test source is silent")


def _with(rt, **adapters):
    return replace(rt, adapters={**rt.adapters, **adapters})


def _reads(rt, cid: str) -> int:
    with rt.uow.read() as s:
        return s.scalar(select(func.count()).select_from(m.SourceRead).where(m.SourceRead.consent_id == cid))


def test_a_snapshot_kept_between_the_refresh_s_read_and_its_write_is_the_one_it_compares_with(rt_sqlite, monkeypatch):
    """The previous snapshot is read and checked before the write (its JSON is big); one kept meanwhile — a measurement,
    another refresh — is found under the lock and compared with instead."""
    from sandu.origination import refresh

    rt = rt_sqlite
    register(rt, S2)
    cid = consent(rt, S2)
    measure(rt, S2, cid)
    first = actions.refresh_sources(rt, actor(rt, "ops"), uscc=S2["uscc"])
    with rt.uow.write() as s:  # the bureau now reports two more overdue payments
        rec = s.scalar(select(m.SourceRecord).where(m.SourceRecord.uscc == S2["uscc"], m.SourceRecord.source == "credit_bureau"))
        payload = copy.deepcopy(rec.payload)
        payload["overdue_count_24m"] += 2
        s.execute(update(m.SourceRecord).where(m.SourceRecord.uscc == rec.uscc, m.SourceRecord.source == rec.source).values(payload=payload))
    read_before = refresh.read_previous
    meanwhile: list[str] = []

    def stale_then_kept(session, enterprise_id):
        found = read_before(session, enterprise_id)
        if not meanwhile:  # the refresh's own read, before its write: another refresh keeps the changed snapshot now
            monkeypatch.setattr(refresh, "read_previous", read_before)
            meanwhile.append(actions.refresh_sources(rt.with_clock(lambda: FIXED_NOW.replace(second=1)), actor(rt, "ops"), uscc=S2["uscc"]).profile_sha256)
            monkeypatch.setattr(refresh, "read_previous", stale_then_kept)
        return found

    monkeypatch.setattr(refresh, "read_previous", stale_then_kept)
    late = actions.refresh_sources(rt.with_clock(lambda: FIXED_NOW.replace(second=2)), actor(rt, "ops"), uscc=S2["uscc"])
    assert meanwhile[0] != first.profile_sha256
    assert late.previous_sha256 == meanwhile[0] and late.profile_sha256 == meanwhile[0] and late.changes == []  # not first's, stale


def test_refresh_keeps_a_new_snapshot_and_says_what_changed(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    cid = consent(rt, S2)
    measure(rt, S2, cid)
    first = actions.refresh_sources(rt, actor(rt, "ops"), uscc=S2["uscc"])
    assert first.consent_id == cid and first.previous_sha256 is not None and first.changes == [] and first.gaps == {}
    with rt.uow.write() as s:  # the bureau now reports two more overdue payments
        rec = s.scalar(select(m.SourceRecord).where(m.SourceRecord.uscc == S2["uscc"], m.SourceRecord.source == "credit_bureau"))
        payload = copy.deepcopy(rec.payload)
        payload["overdue_count_24m"] += 2
        s.execute(update(m.SourceRecord).where(m.SourceRecord.uscc == rec.uscc, m.SourceRecord.source == rec.source).values(payload=payload))
    second = actions.refresh_sources(rt, actor(rt, "ops"), uscc=S2["uscc"])
    assert second.previous_sha256 == first.profile_sha256 != second.profile_sha256
    changed = {c.name: c for c in second.changes}
    assert changed["overdue_count_24m"].delta == 2 and "overdue_count_24m" in changed["overdue_count_24m"].text
    with rt.uow.read() as s:
        assert s.get(m.Profile, second.profile_sha256).consent_id == cid
    assert _reads(rt, cid) == 3 * 8  # the measurement and two refreshes, every catalog source logged each time


def test_refresh_needs_a_live_consent(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    with pytest.raises(ConsentDenied) as e:
        actions.refresh_sources(rt, actor(rt, "ops"), uscc=S2["uscc"])
    assert e.value.field == "consent_id" and "no live consent" in str(e.value.message)
    cid = consent(rt, S2)
    with rt.uow.write() as s:
        orig.revoke_consent(s, consent_id=cid, now=FIXED_NOW)
    with pytest.raises(ConsentDenied):
        actions.refresh_sources(rt, actor(rt, "ops"), uscc=S2["uscc"], consent_id=cid)
    with pytest.raises(ConsentDenied):
        actions.refresh_sources(rt, actor(rt, "ops"), uscc=S2["uscc"])


def test_a_silent_optional_source_is_a_gap_priced_not_a_failed_application(rt_sqlite):
    rt = _with(rt_sqlite, utilities=Silent())
    rt.settings = rt.settings.model_copy(update={"sources_overall_deadline_ms": 600, "sources_deadline_ms": 300})
    register(rt, S2)
    cid = consent(rt, S2)
    t0 = time.monotonic()
    v = actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    assert time.monotonic() - t0 < 0.6 + 2.0  # the overall deadline bounds the reads (margin for the rest of the measurement)
    with rt.uow.read() as s:
        d = s.get(m.Decision, v.id)
        assert "utilities:unavailable" in d.result["quality_flags"]
        read = s.scalar(select(m.SourceRead).where(m.SourceRead.consent_id == cid, m.SourceRead.source == "utilities"))
        assert read.outcome == "timeout" and read.adapter == "silent" and read.reason
    assert v.offers and all("数据缺口" in h["detail"] for h in v.rule_hits if h["rule"] == "pricing")


def test_a_silent_required_source_refers_the_application_to_an_officer(rt_sqlite):
    rt = _with(rt_sqlite, credit_bureau=Silent())
    rt.settings = rt.settings.model_copy(update={"sources_overall_deadline_ms": 500, "sources_deadline_ms": 300})
    register(rt, S2)
    cid = consent(rt, S2)
    v = actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    assert v.outcome == Outcome.REFER and v.offers == [] and any("DATA_GAP_REFERRED" in r for r in v.reasons)


def test_read_all_through_the_runtime_matches_the_store_reader(rt_sqlite):
    rt = rt_sqlite
    sources = ("credit_bureau", "ip", "tax")
    through_adapters = rt.read_sources(sources, S2["uscc"], date(2026, 10, 31))
    with rt.uow.read() as s:
        on_session = orig.store_reader(s)(sources, S2["uscc"], date(2026, 10, 31))
    assert {k: (v.outcome, v.payload_sha256) for k, v in through_adapters.items()} == {k: (v.outcome, v.payload_sha256) for k, v in on_session.items()}
    assert all(v.adapter == "simulated" for v in through_adapters.values())
    assert read_all({}, ("tax",), S2["uscc"], date(2026, 10, 31), per_source_deadline_s=0.1, overall_deadline_s=0.2)["tax"].outcome == "refused"


def test_an_application_reading_real_http_sources_that_hang_fail_or_send_garbage_completes_in_time(rt_sqlite):
    from test_intake_http import StubSource

    from sandu.intake import HttpAdapter

    stub = StubSource()
    try:
        stub.behaviour.update(credit_bureau="hang", utilities="500", ip="garbage")
        http = HttpAdapter(stub.url, connect_timeout_s=0.3, read_timeout_s=0.4, retries=1, backoff_s=0.01, breaker_failures=100)
        rt = _with(rt_sqlite, credit_bureau=http, utilities=http, ip=http)
        rt.settings = rt.settings.model_copy(update={"sources_overall_deadline_ms": 800, "sources_deadline_ms": 500})
        register(rt, S2)
        cid = consent(rt, S2)
        t0 = time.monotonic()
        v = actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
        assert time.monotonic() - t0 < 0.8 + 2.0  # bounded by the overall deadline, not by the hung server
        assert v.outcome == Outcome.REFER and any("DATA_GAP_REFERRED" in r for r in v.reasons)  # the bureau is required
        assert {"credit_bureau:unavailable", "utilities:unavailable", "ip:unavailable"} <= set(v.quality_flags)
        with rt.uow.read() as s:
            log = {r.source: (r.adapter, r.outcome) for r in s.scalars(select(m.SourceRead).where(m.SourceRead.consent_id == cid))}
        assert log["credit_bureau"] == ("http", "timeout") and log["utilities"] == ("http", "error") and log["ip"] == ("http", "invalid")
        assert log["tax"] == ("simulated", "found")
        http.close()
    finally:
        stub.close()
