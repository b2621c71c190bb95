"""What sandu keeps of what the sources sent, for how long, and what an erasure removes (PIPL).

- **Raw payloads** (`source_payloads`) are kept from their read until their source's retention
  date (`SANDU_SOURCES_RETENTION_DAYS`, per source `SANDU_SOURCE_RETENTION_DAYS`; 0 keeps none),
  only when the read was used (a live consent at record time). `purge_due_payloads` deletes the ones
  due; it runs after each end of day (`sandu eod`) and on demand (`sandu sources purge`).
- **Snapshots** keep their features and hashes; **decisions** stay replayable from them. A
  snapshot no decision rests on (a refresh's) is kept `PROFILE_RETENTION_YEARS` from its
  creation, as the consent text promises, and then purged by the same job; the
  **read log** keeps each payload's sha256 — the proof of what was read, under which consent.
- **Erasure** (`erase_enterprise`, an applicant's request carried out by staff): every live
  consent of the enterprise is revoked (reads stop at once), every raw payload and every snapshot
  no decision refers to is deleted; what the law requires the bank to keep is kept, and the
  record of the erasure (`erasures`) lists both, with the reason for each thing kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sandu.domain.errors import InvalidInput, show
from sandu.domain.text import plain_text
from sandu.origination import service as svc
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.consent_text import PROFILE_RETENTION_YEARS
from sandu.store import models as m
from sandu.store.db import encode_json, insert_rows

MAX_ERASURES_LISTED = 100  # an enterprise's erasure records listed, newest first
MAX_PURGE_ROWS = 100_000  # payloads, and snapshots, one purge deletes; the next run takes the rest (it says how many are left)
PURGE_CHUNK_ROWS = 1_000  # rows deleted per write transaction: the store's writer is held a few ms at a time, never seconds
MAX_REASON_CHARS = 500

# What an erasure keeps, and why (the law that requires it). Each: (what, table, why).
KEPT_BY_LAW: tuple[tuple[str, str, str], ...] = (
    ("decisions and the snapshots they were made on", "decisions",
     "credit decisions are kept as the bank's credit file and must stay explainable and replayable (PIPL art. 24; 商业银行授信工作尽职指引)"),
    ("the read log (source, time, outcome, payload sha256)", "source_reads",
     "proof that each read had a live consent covering it (PIPL art. 13–14 accountability); it holds hashes, not the data"),
    ("consents and the texts agreed to", "consents",
     "proof of what the applicant agreed to, and when it was revoked"),
    ("credit lines, drawings and the journal", "credit_lines",
     "accounting records (会计档案管理办法: 30 years) and contracts in force"),
    ("post-loan early-warning alerts with their evidence and steps", "alerts",
     "post-loan risk management records of the lines (贷后管理, 商业银行授信工作尽职指引): the evidence is what each alert and "
     "the action approved on it rested on"),
)


def retention_of(default_days: int, per_source: Mapping[str, int]) -> dict[str, int]:
    """source → days a raw payload is kept (0: not kept)."""
    unknown = sorted(set(per_source) - set(ALL_SOURCES))
    if unknown:
        raise InvalidInput("SANDU_SOURCE_RETENTION_DAYS", f"{show(unknown[0])} is not a data source", ", ".join(ALL_SOURCES))
    return {s: per_source.get(s, default_days) for s in ALL_SOURCES}


def payload_rows(prepared: svc.PreparedMeasurement, *, retention_days: Mapping[str, int] | None) -> list[dict[str, Any]]:
    """Pure: the raw payloads a used read brought back, each kept until its source's retention date — the rows `keep_rows`
    writes, their payloads encoded ahead (built before a write takes the store's writer)."""
    if not retention_days:
        return []
    return [
        {"enterprise_id": prepared.enterprise_id, "consent_id": prepared.consent_id, "source": source, "payload": encode_json(r.payload),
         "payload_sha256": r.payload_sha256, "read_at": prepared.read_at, "keep_until": prepared.read_at + timedelta(days=retention_days[source])}
        for source, r in sorted(prepared.reads.items())
        if r.payload is not None and retention_days.get(source, 0) > 0
    ]


def keep_rows(session: Session, rows: list[dict[str, Any]]) -> int:
    """Write the rows of `payload_rows`; how many."""
    insert_rows(session, m.SourcePayload, rows)
    return len(rows)


def snapshot_keep_from(now: datetime) -> datetime:
    """Snapshots no decision rests on that were created before this are due (29 February → 28th)."""
    try:
        return now.replace(year=now.year - PROFILE_RETENTION_YEARS)
    except ValueError:
        return now.replace(year=now.year - PROFILE_RETENTION_YEARS, day=28)


def purge_due_payloads(session: Session, now: datetime, limit: int) -> dict[str, int]:
    """Delete at most `limit` raw payloads whose retention date has come, oldest first: {source: rows deleted}."""
    assert 1 <= limit <= PURGE_CHUNK_ROWS, limit
    rows = session.execute(select(m.SourcePayload.id, m.SourcePayload.source).where(m.SourcePayload.keep_until <= now)
                           .order_by(m.SourcePayload.id).limit(limit)).all()
    deleted: dict[str, int] = {}
    for _, source in rows:
        deleted[source] = deleted.get(source, 0) + 1
    if rows:
        session.execute(delete(m.SourcePayload).where(m.SourcePayload.id.in_([i for i, _ in rows])))
    return deleted


def _loose_snapshots(now: datetime) -> tuple[Any, ...]:
    """Snapshots no decision rests on, older than `PROFILE_RETENTION_YEARS`."""
    return (m.Profile.created_at < snapshot_keep_from(now), ~select(m.Decision.id).where(m.Decision.profile_sha256 == m.Profile.sha256).exists())


def purge_loose_snapshots(session: Session, now: datetime, limit: int) -> int:
    """Delete at most `limit` snapshots no decision rests on that are older than `PROFILE_RETENTION_YEARS`: how many."""
    assert 1 <= limit <= PURGE_CHUNK_ROWS, limit
    shas = list(session.scalars(select(m.Profile.sha256).where(*_loose_snapshots(now)).order_by(m.Profile.sha256).limit(limit)))
    if shas:
        session.execute(delete(m.Profile).where(m.Profile.sha256.in_(shas)).execution_options(synchronize_session=False))
    return len(shas)


def purge_left(session: Session, now: datetime) -> dict[str, int]:
    """What a purge at `now` would still find: {"left": payloads due, "snapshots_left": loose snapshots}."""
    left = session.scalar(select(func.count()).select_from(m.SourcePayload).where(m.SourcePayload.keep_until <= now)) or 0
    snapshots_left = session.scalar(select(func.count()).select_from(m.Profile).where(*_loose_snapshots(now))) or 0
    return {"left": int(left), "snapshots_left": int(snapshots_left)}


def erase_enterprise(session: Session, *, uscc: str, reason: str, requested_by: int | None, now: datetime) -> m.Erasure:
    """Carry out an erasure request: stop reads, delete what the law does not require the bank
    to keep, record what was removed and what was kept and why."""
    reason = plain_text(reason, "reason", max_length=MAX_REASON_CHARS)  # why: the request's reference
    ent = svc.lock_enterprise(session, svc.get_enterprise(session, uscc).id)
    revoked = 0
    for c in session.scalars(select(m.Consent).where(m.Consent.enterprise_id == ent.id, m.Consent.revoked_at.is_(None))):
        c.revoked_at = now
        revoked += 1
    payloads = session.execute(delete(m.SourcePayload).where(m.SourcePayload.enterprise_id == ent.id)).rowcount or 0
    referenced = select(m.Decision.profile_sha256).where(m.Decision.enterprise_id == ent.id)
    snapshots = session.execute(
        delete(m.Profile).where(m.Profile.enterprise_id == ent.id, m.Profile.sha256.not_in(referenced)).execution_options(synchronize_session=False)
    ).rowcount or 0
    counts = {
        "decisions": session.scalar(select(func.count()).select_from(m.Decision).where(m.Decision.enterprise_id == ent.id)) or 0,
        "source_reads": session.scalar(select(func.count()).select_from(m.SourceRead).join(m.Consent, m.Consent.id == m.SourceRead.consent_id)
                                       .where(m.Consent.enterprise_id == ent.id)) or 0,
        "consents": session.scalar(select(func.count()).select_from(m.Consent).where(m.Consent.enterprise_id == ent.id)) or 0,
        "credit_lines": session.scalar(select(func.count()).select_from(m.CreditLine).where(m.CreditLine.enterprise_id == ent.id)) or 0,
        "alerts": session.scalar(select(func.count()).select_from(m.Alert).join(m.CreditLine, m.CreditLine.id == m.Alert.line_id)
                                 .where(m.CreditLine.enterprise_id == ent.id)) or 0,
    }
    erasure = m.Erasure(
        id=str(uuid.uuid4()), enterprise_id=ent.id, requested_by=requested_by, reason=reason, done_at=now,
        removed={"source_payloads": int(payloads), "unreferenced_snapshots": int(snapshots), "live_consents_revoked": revoked},
        kept=[{"what": what, "rows": int(counts[table]), "why": why} for what, table, why in KEPT_BY_LAW if counts[table]],
    )
    session.add(erasure)
    session.flush()
    return erasure


def erasures_of(session: Session, uscc: str) -> list[m.Erasure]:
    """The erasure records of an enterprise, newest first (at most `MAX_ERASURES_LISTED`)."""
    ent = svc.get_enterprise(session, uscc)
    return list(session.scalars(select(m.Erasure).where(m.Erasure.enterprise_id == ent.id)
                                .order_by(m.Erasure.done_at.desc(), m.Erasure.id).limit(MAX_ERASURES_LISTED)))
