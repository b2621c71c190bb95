"""Applications: their state, history and human review; the applicant withdraws one not yet signed; an officer or approver
declines one referred to them."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, ApplicationIdPath, AsApplicationActor, errors
from sandu.api.routing import SanduRoute
from sandu.origination import actions
from sandu.origination.views import ApplicationView

router = APIRouter(prefix="/applications", tags=["origination"], route_class=SanduRoute)


@router.get("/{application_id}", name="applications.get", response_model=ApplicationView, responses=errors(404))
def get_application(application_id: ApplicationIdPath, actor: AsApplicationActor, rt: RT) -> ApplicationView:
    """An application: its state and what it may do now, its decisions, the status of a human review of a decline,
    measurement-to-first-drawing, and every transition with its time, actor and reason."""
    return actions.get_application(rt, application_id)


@router.post("/{application_id}/withdraw", name="applications.withdraw", response_model=ApplicationView, responses=errors(404, 409, 503))
def withdraw(application_id: ApplicationIdPath, body: s.WithdrawIn, actor: AsApplicationActor, rt: RT) -> ApplicationView:
    """The legal representative withdraws an application not yet signed."""
    return actions.withdraw_application(rt, actor, application_id=application_id, reason=body.reason)


@router.post("/{application_id}/decline", name="applications.decline", response_model=ApplicationView, responses=errors(404, 409, 503))
def decline(application_id: ApplicationIdPath, body: s.RejectIn, actor: AsApplicationActor, rt: RT) -> ApplicationView:
    """拒绝: an officer or approver of the sub-branch declines an application referred to them (not one whose decision
    they initiated, not one waiting for a human review of a decline); the reason shows in its history."""
    return actions.reject_application(rt, actor, application_id=application_id, reason=body.reason)
