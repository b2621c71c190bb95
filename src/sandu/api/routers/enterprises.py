"""Enterprises: register, read, authorize once, measure the limit."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, UsccPath, errors
from sandu.api.routing import ExactJSONRoute
from sandu.origination import actions
from sandu.origination.views import ConsentView, DecisionView, EnterpriseView

router = APIRouter(prefix="/enterprises", tags=["origination"], route_class=ExactJSONRoute)


@router.post("", status_code=201, response_model=EnterpriseView, responses=errors(403, 409, 503))
def register(body: s.EnterpriseIn, rt: RT) -> EnterpriseView:
    """Register an applicant enterprise (no bank account needed)."""
    return actions.register(rt, uscc=body.uscc, name=body.name, legal_rep_id=body.legal_rep_id)


@router.get("/{uscc}", response_model=EnterpriseView, responses=errors(404))
def get_enterprise(uscc: UsccPath, rt: RT) -> EnterpriseView:
    return actions.get_enterprise(rt, uscc)


@router.post("/{uscc}/consents", status_code=201, response_model=ConsentView, responses=errors(403, 404, 503))
def grant_consent(uscc: UsccPath, body: s.ConsentIn, rt: RT) -> ConsentView:
    """One authorization (一次授权) covering many data sources."""
    return actions.grant_consent(rt, uscc=uscc, scopes=body.scopes, purpose=body.purpose, signer_id=body.signer_id, valid_days=body.valid_days)


@router.post("/{uscc}/measurements", status_code=201, response_model=DecisionView, responses=errors(403, 404, 409, 503))
def measure(uscc: UsccPath, body: s.MeasurementIn, rt: RT) -> DecisionView:
    """测额: read the consented sources, score, apply policy, record the decision."""
    return actions.measure(rt, uscc=uscc, consent_id=body.consent_id, requested_fen=body.requested_fen, project=body.project)
