"""The audit trail in the store: every state change noted by a service is appended to
the hash chain in the same transaction as the change (sealed just before commit,
under a lock on the chain's head so that appends are in order on any store)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.orm import Session

from sandu.audit.chain import FIELDS, Verdict, record_sha256, verify
from sandu.context import current_request_id
from sandu.security.actor import Actor
from sandu.store import models as m
from sandu.store.db import insert_rows

NOTES_KEY = "sandu_audit_notes"
HEAD_ID = 1
VERIFY_BATCH = 5_000
_HEAD = m.AuditHead.__table__
# Built once (values as parameters): the head read under its lock, and moved on only from the sequence number read.
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.sha256).where(_HEAD.c.id == HEAD_ID).with_for_update()
_MOVE_HEAD = (update(_HEAD).where(_HEAD.c.id == HEAD_ID, _HEAD.c.seq == bindparam("seq_read"))
              .values(seq=bindparam("seq_new"), sha256=bindparam("sha256_new")))


@dataclass(frozen=True)
class Note:
    at: datetime
    actor: Actor
    action: str
    object_type: str
    object_id: str
    before_sha256: str | None
    after_sha256: str | None
    request_id: str | None


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


_STATE = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)  # as json.dumps with these options, made once
_STORED_STATE = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # the same without a default: refuses what JSON has no form for


def state_json(value: Any) -> str:
    """One column's value as the state of its row encodes it (`state_sha256`)."""
    return _STATE.encode(_plain(value))


def stored_state_json(value: Any) -> str:
    """A JSON column's value encoded once for two uses: the text its column stores (any JSON text of the value will do:
    the column reads back an equal value — an object's keys have no order) and its `state_json`, which this is for any
    value JSON holds as it is (dicts with string keys, lists, strings, numbers, booleans, None: `default=str` is then
    never called, and `_plain` leaves anything but a date or a Decimal as it is). Anything else raises TypeError, as
    storing it would."""
    return _STORED_STATE.encode(value)


def state_sha256(row: Any, ahead: Mapping[str, str] | None = None) -> str | None:
    """The hash of a row's stored state (every column, by name: the JSON object of their values, keys sorted, as
    `json.dumps(state, sort_keys=True, ensure_ascii=False, default=str)` writes it), or None for no row.

    `ahead`: columns whose value's `state_json` was encoded before — a big value, encoded before the write transaction
    began, so that the store's writer is not held while it is — put in the object as they are. The hash is the same
    as without them, provided each is the `state_json` of the value the row holds (the caller's promise: the value
    is not changed after)."""
    if row is None:
        return None
    keys = [attr.key for attr in inspect(row).mapper.column_attrs]
    if not ahead:
        text = _STATE.encode({k: _plain(getattr(row, k)) for k in keys})
    else:
        assert set(ahead) <= set(keys), f"{type(row).__name__}: encoded ahead {sorted(set(ahead) - set(keys))}, which are not its columns"
        # json.dumps writes an object, keys sorted, as "{" + ", ".join(key + ": " + value) + "}": the same text by parts.
        text = "{" + ", ".join(f"{_STATE.encode(k)}: {ahead[k] if k in ahead else state_json(getattr(row, k))}"
                               for k in sorted(keys)) + "}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def note(session: Session, actor: Actor, action: str, object_type: str, object_id: object, *, at: datetime,
         before: str | None = None, after: Any = None, after_ahead: Mapping[str, str] | None = None) -> None:
    """Record that `actor` did `action` to an object; `before` is the state hash taken
    before the change, `after` the row now (hashed when the chain is sealed, with `after_ahead`: `state_sha256`)."""
    session.info.setdefault(NOTES_KEY, []).append((
        Note(at, actor, action, object_type, str(object_id)[:64], before, None, current_request_id()), after, after_ahead))


def seal(session: Session) -> int:
    """Append the transaction's notes to the chain (called by the unit of work before commit)."""
    pending = session.info.pop(NOTES_KEY, [])
    if not pending:
        return 0
    session.flush()
    head = session.connection().execute(_LOCK_HEAD).one_or_none()
    assert head is not None, "the audit head row is created by the migration"
    seq, prev = head.seq, head.sha256
    rows = []
    for n, after_row, after_ahead in pending:
        seq += 1
        fields = {"seq": seq, "at": n.at, "actor_user_id": n.actor.user_id, "actor_role": str(n.actor.role), "action": n.action,
                  "object_type": n.object_type, "object_id": n.object_id, "request_id": n.request_id,
                  "before_sha256": n.before_sha256, "after_sha256": state_sha256(after_row, after_ahead), "prev_sha256": prev}
        prev = record_sha256(fields)
        rows.append({**fields, "sha256": prev})
    insert_rows(session, m.AuditRecord, rows)  # one INSERT of the records, then the head moves on: Core statements, no ORM objects
    moved = session.connection().execute(_MOVE_HEAD, {"seq_read": head.seq, "seq_new": seq, "sha256_new": prev})
    assert moved.rowcount == 1, "the audit head moved from the sequence number read under its lock"
    return len(pending)


def _records(session: Session) -> Iterator[dict[str, Any]]:
    q = select(m.AuditRecord).order_by(m.AuditRecord.seq).execution_options(yield_per=VERIFY_BATCH)
    for rec in session.scalars(q):
        yield {**{k: getattr(rec, k) for k in FIELDS}, "sha256": rec.sha256}


def verify_chain(session: Session) -> Verdict:
    head = session.get(m.AuditHead, HEAD_ID)
    if head is None:
        return Verdict(False, 0, 0, "the audit head is missing")
    return verify(_records(session), head.seq, head.sha256)


def head_of(session: Session) -> tuple[int, str]:
    head = session.get(m.AuditHead, HEAD_ID)
    assert head is not None, "the audit head row is created by the migration"
    return head.seq, head.sha256
