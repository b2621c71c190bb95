"""What a user can do in origination, each in its own unit of work.

The API, the web pages, the CLI and the story replay call these and only
these. Each returns a view built inside its transaction and is returned only
after that transaction has committed: what an interface shows is durable.
"""

from __future__ import annotations

from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.domain.project import Project
from sandu.origination import service as svc
from sandu.origination.views import ConsentView, DecisionView, EnterpriseView, consent_view, decision_view, enterprise_view
from sandu.runtime import Runtime
from sandu.servicing.service import line_view
from sandu.servicing.views import LineView


def register(rt: Runtime, *, uscc: str, name: str, legal_rep_id: str) -> EnterpriseView:
    """Register an applicant enterprise (no bank account needed)."""
    with rt.uow.write() as s:
        view = enterprise_view(svc.register_enterprise(s, uscc=uscc, name=name, legal_rep_id=legal_rep_id, now=rt.now()))
    return view


def get_enterprise(rt: Runtime, uscc: str) -> EnterpriseView:
    with rt.uow.read() as s:
        return enterprise_view(svc.get_enterprise(s, uscc))


def grant_consent(rt: Runtime, *, uscc: str, scopes: list[str], purpose: str, signer_id: str, valid_days: int) -> ConsentView:
    """One authorization (一次授权) for many data sources, signed by the legal representative."""
    with rt.uow.write() as s:
        view = consent_view(
            svc.grant_consent(s, uscc=uscc, scopes=scopes, purpose=purpose, signer_id=signer_id, valid_days=valid_days, now=rt.now())
        )
    return view


def revoke_consent(rt: Runtime, consent_id: str) -> ConsentView:
    with rt.uow.write() as s:
        view = consent_view(svc.revoke_consent(s, consent_id=consent_id, now=rt.now()))
    return view


def measure(rt: Runtime, *, uscc: str, consent_id: str, requested_fen: int | None = None, project: Project | None = None) -> DecisionView:
    """测额: read the consented sources (a read transaction), build the profile,
    score and apply the policy (no transaction), then record the decision in one
    short write transaction."""
    now = rt.now()
    as_of = rt.today()
    with rt.uow.read() as s:
        prepared = svc.prepare_measurement(
            s, uscc=uscc, consent_id=consent_id, as_of=as_of, now=now, bundle=rt.bundle, requested_fen=requested_fen, project=project
        )
    computed = svc.compute_measurement(prepared, as_of, rt.bundle, rt.model)
    with rt.uow.write() as s:
        decision = svc.record_measurement(s, prepared, computed, as_of=as_of, now=now, bundle=rt.bundle, model=rt.model)
        view = decision_view(s, decision, svc.offers_of(s, decision.id))
    return view


def get_decision(rt: Runtime, decision_id: str) -> DecisionView:
    with rt.uow.read() as s:
        d = svc.get_decision(s, decision_id)
        return decision_view(s, d, svc.offers_of(s, d.id))


def approve_offer(rt: Runtime, *, decision_id: str, product: str, officer: str) -> DecisionView:
    """An officer approves the referred part of an offer."""
    with rt.uow.write() as s:
        svc.approve_offer(s, decision_id=decision_id, product=product, officer=officer, now=rt.now())
        d = svc.get_decision(s, decision_id)
        view = decision_view(s, d, svc.offers_of(s, d.id))
    return view


def accept_offer(rt: Runtime, *, decision_id: str, product: str, signer_id: str) -> LineView:
    """The legal representative signs online; the approved part becomes a credit line."""
    today = rt.today()
    with rt.uow.write() as s:
        line = svc.accept_offer(s, decision_id=decision_id, product=product, signer_id=signer_id, as_of=today, now=rt.now())
        view = line_view(s, line.id, today)
    return view


def apply_online(
    rt: Runtime, *, uscc: str, name: str, legal_rep_id: str, scopes: list[str], requested_fen: int | None = None
) -> DecisionView:
    """The mobile flow: register if new, authorize once, measure. Everything a request
    can get wrong is checked before the first write; registration and consent commit
    first (a consent must exist before any source is read), then the measurement."""
    if requested_fen is not None:
        require_fen(requested_fen, field="requested_fen", max_fen=MAX_AMOUNT_FEN)
    svc.check_scopes_cover(scopes, rt.bundle)
    with rt.uow.write() as s:
        consent_id = svc.register_if_new_and_consent(s, uscc=uscc, name=name, legal_rep_id=legal_rep_id, scopes=scopes, now=rt.now()).id
    return measure(rt, uscc=uscc, consent_id=consent_id, requested_fen=requested_fen)
