"""Reading and checking the audit trail, each in a read transaction."""

from __future__ import annotations

from sqlalchemy import select

from sandu.audit import service as svc
from sandu.audit.chain import Verdict
from sandu.audit.views import AuditPage, record_view
from sandu.domain.errors import InvalidInput
from sandu.runtime import Runtime
from sandu.store import models as m

MAX_AUDIT_PAGE = 500


def page(rt: Runtime, *, after_seq: int = 0, limit: int = 100) -> AuditPage:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_AUDIT_PAGE:
        raise InvalidInput("limit", f"got {limit!r}", f"1..{MAX_AUDIT_PAGE}")
    with rt.uow.read() as s:
        rows = list(s.scalars(select(m.AuditRecord).where(m.AuditRecord.seq > after_seq).order_by(m.AuditRecord.seq).limit(limit + 1)))
        records = [record_view(r) for r in rows[:limit]]
    return AuditPage(records=records, next_after_seq=records[-1].seq if len(rows) > limit else None)


def verify(rt: Runtime) -> Verdict:
    with rt.uow.read() as s:
        return svc.verify_chain(s)


def head(rt: Runtime) -> tuple[int, str]:
    with rt.uow.read() as s:
        return svc.head_of(s)
