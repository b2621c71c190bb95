"""Post-loan early-warning alerts of a sub-branch: list, read, and their life — acknowledge, propose an action,
approve it (then, only then, the line is frozen or its limit reduced), reject, dismiss."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from sandu.api import schemas as s
from sandu.api.deps import RT, AlertIdPath, AsActor, AsAlertActor, errors
from sandu.api.routing import SanduRoute
from sandu.servicing import alert_actions as actions
from sandu.servicing.alert_actions import AlertPage, AlertView

router = APIRouter(prefix="/alerts", tags=["servicing"], route_class=SanduRoute)
OptionalNote = Annotated[s.AlertNoteIn | None, Body()]


@router.get("", name="alerts.list", response_model=AlertPage, responses=errors())
def list_alerts(actor: AsActor, rt: RT, branch: s.BranchQuery = None, status: s.AlertStatusQuery = "open", after_id: s.JournalAfterId = 0,
                limit: s.AlertLimit = 50) -> AlertPage:
    """Alerts of your sub-branch (officers and approvers; another sub-branch is refused, 403), oldest first."""
    return actions.list_alerts(rt, actor, branch=branch, status=status, after_id=after_id, limit=limit)


@router.get("/{alert_id}", name="alerts.get", response_model=AlertView, responses=errors(404))
def get_alert(alert_id: AlertIdPath, actor: AsAlertActor, rt: RT) -> AlertView:
    """The alert with its evidence and its life, step by step."""
    return actions.get_alert(rt, alert_id)


@router.post("/{alert_id}/acknowledge", name="alerts.acknowledge", response_model=AlertView, responses=errors(404, 409, 503))
def acknowledge(alert_id: AlertIdPath, actor: AsAlertActor, rt: RT, body: OptionalNote = None) -> AlertView:
    return actions.acknowledge(rt, actor, alert_id=alert_id, note=body.note if body else None)


@router.post("/{alert_id}/propose", name="alerts.propose", response_model=AlertView, responses=errors(404, 409, 503))
def propose(alert_id: AlertIdPath, body: s.AlertProposeIn, actor: AsAlertActor, rt: RT) -> AlertView:
    """An officer proposes the rule's action (or another: review, freeze, reduce_limit with its limit); nothing changes
    on the line until another person approves it."""
    return actions.propose(rt, actor, alert_id=alert_id, action=body.action, limit_fen=body.limit_fen, note=body.note)


@router.post("/{alert_id}/approve", name="alerts.approve", response_model=AlertView, responses=errors(404, 409, 503))
def approve(alert_id: AlertIdPath, actor: AsAlertActor, rt: RT, body: OptionalNote = None) -> AlertView:
    """Approve the proposal — not the proposer, and within your approval authority over the line's limit: the line is
    frozen or its limit reduced now."""
    return actions.approve(rt, actor, alert_id=alert_id, note=body.note if body else None)


@router.post("/{alert_id}/reject", name="alerts.reject", response_model=AlertView, responses=errors(404, 409, 503))
def reject(alert_id: AlertIdPath, body: s.AlertReasonIn, actor: AsAlertActor, rt: RT) -> AlertView:
    """Refuse the proposal, saying why; another action may be proposed, or the alert dismissed."""
    return actions.reject(rt, actor, alert_id=alert_id, note=body.note)


@router.post("/{alert_id}/dismiss", name="alerts.dismiss", response_model=AlertView, responses=errors(404, 409, 503))
def dismiss(alert_id: AlertIdPath, body: s.AlertReasonIn, actor: AsAlertActor, rt: RT) -> AlertView:
    """Close the alert without an action, saying why."""
    return actions.dismiss(rt, actor, alert_id=alert_id, note=body.note)
