"""Enterprises: register, read, delegate, authorize once, measure the limit."""

from __future__ import annotations

from fastapi import APIRouter, Request

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, AsEnterpriseActor, UsccPath, errors
from sandu.api.routing import SanduRoute, run_action, runs_on_loop
from sandu.origination import actions
from sandu.origination.views import ConsentHistoryView, ConsentView, DecisionView, EnterpriseView, ErasureHistoryView, ErasureView, RefreshView
from sandu.security import actions as security
from sandu.security.views import MemberView

router = APIRouter(prefix="/enterprises", tags=["origination"], route_class=SanduRoute)


@router.post("", name="enterprises.register", status_code=201, response_model=EnterpriseView, responses=errors(409, 503))
def register(body: s.EnterpriseIn, actor: AsActor, rt: RT) -> EnterpriseView:
    """Register, as its legal representative, an enterprise (no bank account needed)."""
    return actions.register(rt, actor, uscc=body.uscc, name=body.name)


@router.get("/{uscc}", name="enterprises.get", response_model=EnterpriseView, responses=errors(404))
def get_enterprise(uscc: UsccPath, actor: AsEnterpriseActor, rt: RT) -> EnterpriseView:
    return actions.get_enterprise(rt, uscc)


@router.post("/{uscc}/delegates", name="enterprises.delegates.add", status_code=201, response_model=MemberView, responses=errors(404, 409, 503))
def add_delegate(uscc: UsccPath, body: s.DelegateIn, actor: AsEnterpriseActor, rt: RT) -> MemberView:
    """The legal representative lets another applicant measure, draw, repay and read for the enterprise."""
    return security.add_delegate(rt, actor, uscc=uscc, username=body.username)


@router.post("/{uscc}/consents", name="enterprises.consents.grant", status_code=201, response_model=ConsentView, responses=errors(404, 503))
def grant_consent(uscc: UsccPath, body: s.ConsentIn, actor: AsEnterpriseActor, rt: RT) -> ConsentView:
    """One authorization (一次授权) covering many data sources, by the legal representative."""
    return actions.grant_consent(rt, actor, uscc=uscc, scopes=body.scopes, purpose=body.purpose, valid_days=body.valid_days,
                                 bureau_authorization=body.bureau_authorization, language=body.language)


@router.get("/{uscc}/consents", name="enterprises.consents.history", response_model=ConsentHistoryView, responses=errors(404))
def consent_history(uscc: UsccPath, actor: AsEnterpriseActor, rt: RT) -> ConsentHistoryView:
    """Every consent of the enterprise (live, revoked, expired), each with its text verified and its scopes explained."""
    return actions.consent_history(rt, uscc)


@router.post("/{uscc}/measurements", name="enterprises.measure", status_code=201, response_model=DecisionView, responses=errors(404, 409, 429, 503))
async def measure(uscc: UsccPath, body: s.MeasurementIn, actor: AsEnterpriseActor, rt: RT, request: Request) -> DecisionView:
    """测额: read the consented sources, score, apply policy, record the decision (at most `measure_concurrency` at once
    in this process: `sandu.api.routing.Turns`)."""
    return await run_action(actions.measure, rt, actor, uscc=uscc, consent_id=body.consent_id, requested_fen=body.requested_fen,
                            project=body.project, guarantee_fen=body.guarantee_fen, turns=request.app.state.measure_turns,
                            on_loop=runs_on_loop(rt, reads_sources=True))


@router.post("/{uscc}/refresh", name="enterprises.refresh", response_model=RefreshView, responses=errors(403, 404, 503))
def refresh(uscc: UsccPath, body: s.ProfileRefreshIn, actor: AsEnterpriseActor, rt: RT) -> RefreshView:
    """Re-read an existing customer's sources under a live consent, keep the new snapshot, say what changed since the last one."""
    return actions.refresh_sources(rt, actor, uscc=uscc, consent_id=body.consent_id)


@router.post("/{uscc}/erasures", name="enterprises.erase", status_code=201, response_model=ErasureView, responses=errors(404, 503))
def erase(uscc: UsccPath, body: s.ErasureIn, actor: AsEnterpriseActor, rt: RT) -> ErasureView:
    """Carry out an applicant's erasure request (PIPL art. 47): reads stop at once, raw payloads and snapshots no decision
    rests on are deleted; what the law requires the bank to keep is kept, each with the reason."""
    return actions.erase_enterprise(rt, actor, uscc=uscc, reason=body.reason)


@router.get("/{uscc}/erasures", name="enterprises.erasures", response_model=ErasureHistoryView, responses=errors(404))
def erasures(uscc: UsccPath, actor: AsEnterpriseActor, rt: RT) -> ErasureHistoryView:
    """The erasure requests carried out for the enterprise, newest first: what was removed, what was kept and why."""
    return actions.erasure_history(rt, uscc)
