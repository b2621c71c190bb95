"""What a user can do in origination, each in its own unit of work.

The API, the web pages, the CLI and the story replay call these and only
these, with the `Actor` the interface authenticated and admitted (the table
in `sandu.security.authz`). Each returns a view built inside its transaction,
after that transaction — and the audit record of the change, written in it —
has committed: what an interface shows is durable.
"""

from __future__ import annotations

from sandu.audit import service as audit
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.domain.project import Project
from sandu.origination import service as svc
from sandu.origination.views import ConsentView, DecisionView, EnterpriseView, consent_view, decision_view, enterprise_view
from sandu.runtime import Runtime
from sandu.security.actor import Actor
from sandu.servicing.service import line_view
from sandu.servicing.views import LineView


def register(rt: Runtime, actor: Actor, *, uscc: str, name: str) -> EnterpriseView:
    """Register an applicant enterprise (no bank account needed), as its legal representative."""
    now = rt.now()
    with rt.uow.write() as s:
        ent = svc.register_enterprise(s, uscc=uscc, name=name, registrant=actor, pii_key=rt.settings.derived_key("pii"), now=now)
        audit.note(s, actor, "enterprise.register", "enterprise", ent.uscc, at=now, after=ent)
        view = enterprise_view(ent)
    return view


def get_enterprise(rt: Runtime, uscc: str) -> EnterpriseView:
    with rt.uow.read() as s:
        return enterprise_view(svc.get_enterprise(s, uscc))


def grant_consent(rt: Runtime, actor: Actor, *, uscc: str, scopes: list[str], purpose: str, valid_days: int) -> ConsentView:
    """One authorization (一次授权) for many data sources, signed by the legal representative."""
    now = rt.now()
    with rt.uow.write() as s:
        consent = svc.grant_consent(s, uscc=uscc, scopes=scopes, purpose=purpose, valid_days=valid_days, signer=actor, now=now)
        audit.note(s, actor, "consent.grant", "consent", consent.id, at=now, after=consent)
        view = consent_view(consent)
    return view


def revoke_consent(rt: Runtime, actor: Actor, consent_id: str) -> ConsentView:
    now = rt.now()
    with rt.uow.write() as s:
        consent = svc.get_consent(s, consent_id)
        before = audit.state_sha256(consent)
        consent = svc.revoke_consent(s, consent_id=consent_id, now=now)
        audit.note(s, actor, "consent.revoke", "consent", consent.id, at=now, before=before, after=consent)
        view = consent_view(consent)
    return view


def measure(rt: Runtime, actor: Actor, *, uscc: str, consent_id: str, requested_fen: int | None = None, project: Project | None = None) -> DecisionView:
    """测额: read the consented sources (a read transaction), build the profile,
    score and apply the policy (no transaction), then record the decision in one
    short write transaction."""
    now = rt.now()
    as_of = rt.today()
    with rt.uow.read() as s:
        prepared = svc.prepare_measurement(
            s, uscc=uscc, consent_id=consent_id, as_of=as_of, now=now, bundle=rt.bundle, requested_fen=requested_fen, project=project
        )
    computed = svc.compute_measurement(prepared, as_of, rt.bundle, rt.model, rt.tech)
    with rt.uow.write() as s:
        decision = svc.record_measurement(s, prepared, computed, as_of=as_of, now=now, bundle=rt.bundle, model=rt.model, tech=rt.tech, initiated_by=actor.user_id)
        audit.note(s, actor, "decision.record", "decision", decision.id, at=now, after=decision)
        view = decision_view(s, decision, svc.offers_of(s, decision.id))
    rt.metrics.decision(view.outcome)
    return view


def get_decision(rt: Runtime, decision_id: str) -> DecisionView:
    with rt.uow.read() as s:
        d = svc.get_decision(s, decision_id)
        return decision_view(s, d, svc.offers_of(s, d.id))


def _offer_change(rt: Runtime, actor: Actor, action: str, decision_id: str, product: str, change) -> DecisionView:
    now = rt.now()
    with rt.uow.write() as s:
        before = audit.state_sha256(svc.offer_of(s, decision_id, product))
        offer = change(s, now)
        audit.note(s, actor, action, "offer", f"{decision_id}/{product}", at=now, before=before, after=offer)
        d = svc.get_decision(s, decision_id)
        view = decision_view(s, d, svc.offers_of(s, d.id))
    return view


def review_offer(rt: Runtime, actor: Actor, *, decision_id: str, product: str, opinion: str) -> DecisionView:
    """审: an officer reviews a referred offer."""
    return _offer_change(rt, actor, "offer.review", decision_id, product,
                         lambda s, now: svc.review_offer(s, decision_id=decision_id, product=product, reviewer=actor, opinion=opinion, now=now))


def approve_offer(rt: Runtime, actor: Actor, *, decision_id: str, product: str) -> DecisionView:
    """贷: someone other than the initiator and the reviewer approves, within their authority."""
    return _offer_change(rt, actor, "offer.approve", decision_id, product,
                         lambda s, now: svc.approve_offer(s, decision_id=decision_id, product=product, approver=actor, now=now))


def accept_offer(rt: Runtime, actor: Actor, *, decision_id: str, product: str) -> LineView:
    """The legal representative signs online; the approved part becomes a credit line."""
    today, now = rt.today(), rt.now()
    with rt.uow.write() as s:
        line = svc.accept_offer(s, decision_id=decision_id, product=product, signer=actor, as_of=today, now=now)
        audit.note(s, actor, "line.open", "line", line.id, at=now, after=line)
        view = line_view(s, line.id, today)
    return view


def apply_online(rt: Runtime, actor: Actor, *, uscc: str, name: str, scopes: list[str], requested_fen: int | None = None) -> DecisionView:
    """The mobile flow: register if new, authorize once, measure. Everything a request
    can get wrong is checked before the first write; registration and consent commit
    first (a consent must exist before any source is read), then the measurement."""
    if requested_fen is not None:
        require_fen(requested_fen, field="requested_fen", max_fen=MAX_AMOUNT_FEN)
    svc.check_scopes_cover(scopes, rt.bundle)
    now = rt.now()
    with rt.uow.write() as s:
        if svc.find_enterprise(s, uscc) is None:
            ent = svc.register_enterprise(s, uscc=uscc, name=name, registrant=actor, pii_key=rt.settings.derived_key("pii"), now=now)
            audit.note(s, actor, "enterprise.register", "enterprise", ent.uscc, at=now, after=ent)
        consent = svc.grant_consent(s, uscc=uscc, scopes=scopes, purpose="credit_measurement", valid_days=30, signer=actor, now=now)
        audit.note(s, actor, "consent.grant", "consent", consent.id, at=now, after=consent)
        consent_id = consent.id
    return measure(rt, actor, uscc=uscc, consent_id=consent_id, requested_fen=requested_fen)
