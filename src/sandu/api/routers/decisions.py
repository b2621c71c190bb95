"""Decisions: read one; an officer reviews a referred offer, someone else approves it
within their authority (审贷分离); the legal representative signs."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsDecisionActor, DecisionIdPath, ProductPath, errors
from sandu.api.routing import SanduRoute
from sandu.origination import actions
from sandu.origination.views import ApplicationView, DecisionView
from sandu.servicing.views import LineView

router = APIRouter(prefix="/decisions", tags=["origination"], route_class=SanduRoute)


@router.get("/{decision_id}", name="decisions.get", response_model=DecisionView, responses=errors(404))
def get_decision(decision_id: DecisionIdPath, actor: AsDecisionActor, rt: RT) -> DecisionView:
    return actions.get_decision(rt, decision_id)


@router.post("/{decision_id}/offers/{product}/review", name="decisions.review", response_model=DecisionView, responses=errors(404, 409, 503))
def review_offer(decision_id: DecisionIdPath, product: ProductPath, body: s.ReviewIn, actor: AsDecisionActor, rt: RT) -> DecisionView:
    """审: an officer of the enterprise's sub-branch reviews a referred offer (not one they initiated)."""
    return actions.review_offer(rt, actor, decision_id=decision_id, product=product, opinion=body.opinion)


@router.post("/{decision_id}/offers/{product}/approve", name="decisions.approve", response_model=DecisionView, responses=errors(404, 409, 503))
def approve_offer(decision_id: DecisionIdPath, product: ProductPath, actor: AsDecisionActor, rt: RT) -> DecisionView:
    """贷: approve a reviewed offer — not the initiator, not the reviewer, within your authority."""
    return actions.approve_offer(rt, actor, decision_id=decision_id, product=product)


@router.post("/{decision_id}/offers/{product}/accept", name="decisions.accept", status_code=201, response_model=LineView,
             responses=errors(404, 409, 503))
def accept_offer(decision_id: DecisionIdPath, product: ProductPath, actor: AsDecisionActor, rt: RT) -> LineView:
    """The legal representative signs online, with a password given in the last minutes; the approved part becomes a credit line."""
    return actions.accept_offer(rt, actor, decision_id=decision_id, product=product)


@router.post("/{decision_id}/human-review", name="decisions.human_review.request", status_code=201, response_model=ApplicationView,
             responses=errors(404, 409, 503))
def request_human_review(decision_id: DecisionIdPath, body: s.HumanReviewIn, actor: AsDecisionActor, rt: RT) -> ApplicationView:
    """PIPL art. 24: the legal representative asks, once per declined decision, for a person to review it. It lands in the
    sub-branch's referral queue with the decision attached; its status shows on the application."""
    return actions.request_human_review(rt, actor, decision_id=decision_id, reason=body.reason)


@router.post("/{decision_id}/human-review/review", name="decisions.human_review.review", response_model=ApplicationView,
             responses=errors(404, 409, 503))
def review_human_review(decision_id: DecisionIdPath, body: s.HumanReviewOutcomeIn, actor: AsDecisionActor, rt: RT) -> ApplicationView:
    """审: an officer of the sub-branch reviews the request and proposes: upheld, or reassess (a new assessment)."""
    return actions.review_human_review(rt, actor, decision_id=decision_id, outcome=body.outcome, opinion=body.opinion)


@router.post("/{decision_id}/human-review/decide", name="decisions.human_review.decide", response_model=ApplicationView,
             responses=errors(404, 409, 503))
def decide_human_review(decision_id: DecisionIdPath, actor: AsDecisionActor, rt: RT) -> ApplicationView:
    """贷: someone other than the reviewer (审贷分离) confirms the proposed outcome."""
    return actions.decide_human_review(rt, actor, decision_id=decision_id)
