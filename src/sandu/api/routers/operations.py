"""Scheduled operations: end of day (the operations role)."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, errors
from sandu.api.routing import SanduRoute
from sandu.servicing import actions
from sandu.servicing.views import EodView

router = APIRouter(tags=["servicing"], route_class=SanduRoute)


@router.post("/eod", name="operations.eod", response_model=EodView, responses=errors(409, 503))
def eod(body: s.EodIn, actor: AsActor, rt: RT) -> EodView:
    """End of day for a business date: accrue every active line; post interest on settlement days."""
    return actions.end_of_day(rt, actor, body.business_date)
