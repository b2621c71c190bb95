"""The audit trail, for auditors: every state change, who, when, which request."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, errors
from sandu.api.routing import SanduRoute
from sandu.audit import actions
from sandu.audit.views import AuditPage

router = APIRouter(prefix="/audit", tags=["audit"], route_class=SanduRoute)


@router.get("", name="audit.list", response_model=AuditPage, responses=errors())
def list_records(actor: AsActor, rt: RT, after_seq: s.PageAfterId = 0, limit: s.AuditPageLimit = 100) -> AuditPage:
    """Audit records in chain order, a page at a time (`sandu audit verify` checks the chain)."""
    return actions.page(rt, after_seq=after_seq, limit=limit)
