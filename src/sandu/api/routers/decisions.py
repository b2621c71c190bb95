"""Decisions: read one, an officer approves a referred offer, the applicant signs."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, DecisionIdPath, ProductPath, errors
from sandu.api.routing import ExactJSONRoute
from sandu.origination import actions
from sandu.origination.views import DecisionView
from sandu.servicing.views import LineView

router = APIRouter(prefix="/decisions", tags=["origination"], route_class=ExactJSONRoute)


@router.get("/{decision_id}", response_model=DecisionView, responses=errors(404))
def get_decision(decision_id: DecisionIdPath, rt: RT) -> DecisionView:
    return actions.get_decision(rt, decision_id)


@router.post("/{decision_id}/offers/{product}/approve", response_model=DecisionView, responses=errors(404, 409, 503))
def approve_offer(decision_id: DecisionIdPath, product: ProductPath, body: s.ApproveIn, rt: RT) -> DecisionView:
    """An officer approves the referred part of an offer."""
    return actions.approve_offer(rt, decision_id=decision_id, product=product, officer=body.officer)


@router.post("/{decision_id}/offers/{product}/accept", status_code=201, response_model=LineView, responses=errors(403, 404, 409, 503))
def accept_offer(decision_id: DecisionIdPath, product: ProductPath, body: s.AcceptIn, rt: RT) -> LineView:
    """The legal representative signs online; the approved part becomes a credit line."""
    return actions.accept_offer(rt, decision_id=decision_id, product=product, signer_id=body.signer_id)
