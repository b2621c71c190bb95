"""Reading and checking the audit trail, each in a read transaction."""

from __future__ import annotations

from sqlalchemy import select

from sandu.audit import service as svc
from sandu.audit.chain import Verdict
from sandu.audit.views import AuditPage, record_view
from sandu.runtime import Runtime
from sandu.store import models as m
from sandu.store.db import keyset_page

MAX_AUDIT_PAGE = 500


def page(rt: Runtime, *, after_seq: int = 0, limit: int = 100) -> AuditPage:
    with rt.uow.read() as s:
        rows, next_after = keyset_page(s, select(m.AuditRecord), m.AuditRecord.seq, after=after_seq, limit=limit, max_limit=MAX_AUDIT_PAGE)
        return AuditPage(records=[record_view(r) for r in rows], next_after_seq=next_after)


def verify(rt: Runtime) -> Verdict:
    with rt.uow.read() as s:
        return svc.verify_chain(s)


def head(rt: Runtime) -> tuple[int, str]:
    with rt.uow.read() as s:
        return svc.head_of(s)
