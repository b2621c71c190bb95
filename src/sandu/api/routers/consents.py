"""Consents: revocation stops further reads at once."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api.deps import RT, AsConsentActor, ConsentIdPath, errors
from sandu.api.routing import SanduRoute
from sandu.origination import actions
from sandu.origination.views import ConsentView

router = APIRouter(prefix="/consents", tags=["origination"], route_class=SanduRoute)


@router.post("/{consent_id}/revoke", name="consents.revoke", response_model=ConsentView, responses=errors(404, 503))
def revoke_consent(consent_id: ConsentIdPath, actor: AsConsentActor, rt: RT) -> ConsentView:
    return actions.revoke_consent(rt, actor, consent_id)
