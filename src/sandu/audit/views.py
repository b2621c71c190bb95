"""What auditors see of the trail."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from sandu.store import models as m


class AuditRecordView(BaseModel):
    seq: int
    at: datetime
    actor_user_id: int | None
    actor_role: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    before_sha256: str | None
    after_sha256: str | None
    prev_sha256: str
    sha256: str


class AuditPage(BaseModel):
    records: list[AuditRecordView]
    next_after_seq: int | None


def record_view(r: m.AuditRecord) -> AuditRecordView:
    return AuditRecordView.model_validate(r, from_attributes=True)
