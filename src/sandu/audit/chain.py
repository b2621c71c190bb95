"""The audit trail as a hash chain. Pure: records in, verdicts out.

Each record carries the SHA-256 of the record before it (`prev_sha256`; the first
carries 64 zeros) and its own SHA-256 over its fields and that link, in a
canonical JSON form. Changing any field of any record, deleting, reordering or
inserting records breaks the chain at a definite link; the head (the last
sequence number and hash, also printed by `sandu audit head` to be kept outside
the database) catches a cut at the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor_user_id", "actor_role", "action", "object_type", "object_id", "request_id", "before_sha256", "after_sha256", "prev_sha256")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def record_sha256(fields: dict[str, Any]) -> str:
    """The hash of one record: its fields (including the link to the one before), canonically."""
    body = {k: _plain(fields[k]) for k in FIELDS}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int  # records read
    broken_seq: int | None  # the first record (or, for the head, the sequence number) where the chain breaks
    reason: str

    def text(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} records"
        return f"audit chain broken at record {self.broken_seq}: {self.reason}"


def verify(records: Iterable[dict[str, Any]], head_seq: int, head_sha256: str) -> Verdict:
    """Walk `records` in sequence order (each a dict of FIELDS plus `sha256`) and name the first broken link."""
    expected_seq, prev, checked = 1, GENESIS, 0
    for rec in records:
        checked += 1
        seq = rec["seq"]
        if seq != expected_seq:
            missing = seq > expected_seq
            return Verdict(False, checked, expected_seq, f"record {expected_seq} is missing" if missing else f"record {seq} is out of order")
        if rec["prev_sha256"] != prev:
            return Verdict(False, checked, seq, "its link to the record before does not match (a record before it was changed, removed or moved)")
        if record_sha256(rec) != rec["sha256"]:
            return Verdict(False, checked, seq, "its contents do not match its hash (the record was changed)")
        prev, expected_seq = rec["sha256"], expected_seq + 1
    last_seq = expected_seq - 1
    if (head_seq, head_sha256) != (last_seq, prev):
        if head_seq > last_seq:
            return Verdict(False, checked, last_seq + 1, f"the head names record {head_seq} but the chain ends at {last_seq} (records were cut off)")
        return Verdict(False, checked, head_seq, "the head does not match the last record")
    return Verdict(True, checked, None, "intact")
