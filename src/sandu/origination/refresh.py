"""Refresh an existing customer's profile: read its sources again under a live consent,
keep the new snapshot, and say what changed since the last one (the input of early warning).

A refresh records no decision: it writes the read log and the snapshot (once per content
hash) in one short transaction, after the sources were read (their reads take time; the
write does not wait for them). The consent is the one given, or the enterprise's most
recent live consent; a lapsed consent refuses the refresh, and a consent revoked while
the sources were read logs the reads and keeps no snapshot — as a measurement does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sandu.origination import service as svc
from sandu.policy.kernel import Application
from sandu.sources.diff import Change, diff_profiles
from sandu.sources.profile import ProfileSnapshot, build_profile, profile_from_json
from sandu.store import models as m
from sandu.store.db import insert_if_absent


@dataclass(frozen=True)
class Refreshed:
    uscc: str
    consent_id: str
    profile_sha256: str
    previous_sha256: str | None
    changes: tuple[Change, ...]
    gaps: dict[str, str]  # source → "outcome: reason" of the sources that did not answer
    read_ms: float


def prepare_refresh(session: Session, *, uscc: str, consent_id: str | None, as_of: date, now: datetime,
                    reader: svc.SourceReader | None = None) -> svc.PreparedMeasurement:
    """Check the enterprise and the consent, then read every source the consent covers."""
    t0 = time.perf_counter()
    svc.require_not_future(as_of, now, "as_of")
    ent = svc.get_enterprise(session, uscc)
    consent = svc.latest_live_consent(session, ent, now) if consent_id is None else svc.live_consent(session, ent, consent_id, now)
    sources = tuple(sorted(consent.scopes))
    reads = (reader or svc.store_reader(session))(sources, ent.uscc, as_of)
    assert set(reads) == set(sources), "a reader answers for every source it was asked, and only those"
    return svc.PreparedMeasurement(ent.id, ent.uscc, consent.id, Application(ent.has_bank_account), svc.payloads_for_profile(reads), now,
                                   (time.perf_counter() - t0) * 1000, reads)


def build_refresh(prepared: svc.PreparedMeasurement, as_of: date) -> ProfileSnapshot:
    """Pure: the new snapshot."""
    return build_profile(prepared.uscc, as_of, prepared.payloads, prepared.unavailable)


def profile_row(session: Session, sha256: str) -> m.Profile:
    row = session.get(m.Profile, sha256)
    assert row is not None, "a refreshed profile is kept"
    return row


_NEWEST_FIRST = (m.Profile.created_at.desc(), m.Profile.sha256)  # an enterprise's latest snapshot is the first in this order


def latest_profile(session: Session, enterprise_id: int) -> m.Profile | None:
    return session.scalars(
        select(m.Profile).where(m.Profile.enterprise_id == enterprise_id).order_by(*_NEWEST_FIRST).limit(1)
    ).first()


_LATEST_SHA256 = select(m.Profile.sha256).where(m.Profile.enterprise_id == bindparam("enterprise_id")).order_by(*_NEWEST_FIRST).limit(1)


def read_previous(session: Session, enterprise_id: int) -> ProfileSnapshot | None:
    """The enterprise's latest snapshot, hash-checked (None: it has none) — read before the refresh's write, so that
    decoding and checking it (a big JSON document) does not hold the store's writer."""
    row = latest_profile(session, enterprise_id)
    return None if row is None else profile_from_json(row.snapshot, row.sha256)


def record_refresh(session: Session, prepared: svc.PreparedMeasurement, profile: ProfileSnapshot, *, row: dict[str, Any], now: datetime,
                   previous: ProfileSnapshot | None) -> tuple[Refreshed, ProfileSnapshot | None]:
    """Write the read log and the snapshot (`row`: `svc.profile_values`); the changes since the enterprise's previous
    snapshot — `previous`, read before the write, while it is still the latest (else read and checked again here) —
    and that previous snapshot."""
    assert row["sha256"] == profile.sha256, "the row is the snapshot's"
    svc.log_reads(session, prepared, now, kept="no snapshot was kept", again="refresh again")
    previous_sha256 = None if previous is None else previous.sha256
    if session.scalar(_LATEST_SHA256, {"enterprise_id": prepared.enterprise_id}) != previous_sha256:  # one was kept meanwhile
        previous = read_previous(session, prepared.enterprise_id)
    insert_if_absent(session, m.Profile, key="sha256", row=row)
    session.flush()
    gaps = {s: f"{r.outcome}: {r.reason}" for s, r in prepared.reads.items() if not r.ok}
    changes = () if previous is None else tuple(diff_profiles(previous, profile))
    return Refreshed(prepared.uscc, prepared.consent_id, profile.sha256, None if previous is None else previous.sha256, changes, gaps,
                     prepared.read_ms), previous
