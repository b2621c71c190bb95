"""Origination on a session: register → consent → measure (decision) → approve / accept.

Each function works inside the caller's transaction (`UnitOfWork.write()` /
`.read()`; `sandu.origination.actions` opens them for the interfaces): it
validates everything first, raises a `SanduError` before writing anything when
the request cannot be honoured, and leaves the store unchanged in that case
(the transaction rolls back).

A measurement has three steps so that its write transaction stays short:
`prepare_measurement` (read: enterprise, live consent, the sources) →
`compute_measurement` (pure: profile, scores, policy) → `record_measurement`
(write: read log, profile, decision, offers). `measure` runs all three on one
session.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sandu.domain.dates import add_months, require_not_future
from sandu.domain.enums import LineStatus, MemberRelation, OfferStatus, Role
from sandu.domain.errors import Conflict, ConsentDenied, InvalidInput, NotFound, NotPermitted, shorten, show
from sandu.domain.ids import validate_uscc
from sandu.domain.keys import is_uuid
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.domain.project import Project
from sandu.domain.text import plain_text
from sandu.ledger.journal import LOAN_BUCKETS
from sandu.policy.bundle import PolicyBundle
from sandu.policy.engine import Application, PolicyResult, Scores, evaluate
from sandu.scoring.risk import AnyRiskModel as RiskModel
from sandu.scoring.risk import challenger_model
from sandu.scoring.risk import score as risk_score
from sandu.scoring.tech import evaluate_tech
from sandu.scoring.tech_config import TechConfig
from sandu.security.actor import Actor
from sandu.security.service import add_member, is_legal_rep, pii_hmac
from sandu.simulate.geo import DISTRICTS
from sandu.sources.catalog import ALL_SOURCES, unknown_sources
from sandu.sources.profile import ProfileSnapshot, build_profile, profile_from_json
from sandu.store import models as m
from sandu.store.db import insert_if_absent

PURPOSES = ("credit_measurement",)
MAX_CONSENT_DAYS = 365
DECISION_VALID_DAYS = 30
ONLINE_BRANCH = "线上"  # the online channel serves applicants outside the sub-branches' districts
DISTRICT_BY_REGION = {code: district for district, (code, _share) in DISTRICTS.items()}


def lock_enterprise_of_line(session: Session, line_id: int) -> None:
    """`lock_enterprise` for the enterprise of a line, in one statement, without loading it: for a draw."""
    session.execute(_LOCK_ENTERPRISE_OF_LINE, {"line_id": line_id})


_LOCK_ENTERPRISE_OF_LINE = (select(m.Enterprise.id)
                            .where(m.Enterprise.id == select(m.CreditLine.enterprise_id).where(m.CreditLine.id == bindparam("line_id")).scalar_subquery())
                            .with_for_update())


def lock_enterprise(session: Session, enterprise_id: int) -> m.Enterprise:
    """The enterprise, locked for a change of what it may borrow (FOR UPDATE on PostgreSQL;
    SQLite's writer already holds the store). Taken before any of its lines, always."""
    stmt = select(m.Enterprise).where(m.Enterprise.id == enterprise_id).with_for_update()
    ent = session.scalar(stmt.execution_options(populate_existing=True))
    assert ent is not None, f"enterprise {enterprise_id} exists"
    return ent


def committed_limit_fen(session: Session, enterprise_id: int) -> int:
    """The sum of the limits of the enterprise's lines that are not closed."""
    q = select(func.coalesce(func.sum(m.CreditLine.limit_fen), 0)).where(
        m.CreditLine.enterprise_id == enterprise_id, m.CreditLine.status != LineStatus.CLOSED)
    return int(session.scalar(q) or 0)


def find_enterprise(session: Session, uscc: str) -> m.Enterprise | None:
    validate_uscc(uscc)
    return session.scalar(select(m.Enterprise).where(m.Enterprise.uscc == uscc))


def get_enterprise(session: Session, uscc: str) -> m.Enterprise:
    ent = find_enterprise(session, uscc)
    if ent is None:
        raise NotFound("enterprise", uscc, field="uscc")
    return ent


def branch_for(registry: m.SimEnterprise | None, uscc: str) -> str:
    """The sub-branch (支行) that serves an enterprise: its district's, from the business
    registry or the USCC's region code; the online channel for anyone else."""
    if registry is not None:
        return registry.district
    return DISTRICT_BY_REGION.get(uscc[2:8], ONLINE_BRANCH)


def register_enterprise(session: Session, *, uscc: str, name: str, registrant: Actor, pii_key: bytes, now: datetime) -> m.Enterprise:
    """An applicant registers the enterprise it is the legal representative of (no bank
    account needed) and becomes its legal-representative member. The public business
    registry (here: the simulated universe) must name the same person, when it knows
    the enterprise, and fills in district and industry."""
    validate_uscc(uscc)
    plain_text(name, "name")
    if registrant.role is not Role.APPLICANT or registrant.person_id_hmac is None or registrant.user_id is None:
        raise NotPermitted(None, "only an applicant registers an enterprise, as its legal representative", "an applicant", rule="origination.register.applicant")
    if session.scalar(select(m.Enterprise.id).where(m.Enterprise.uscc == uscc)) is not None:
        raise Conflict("uscc", f"enterprise {uscc} is already registered", "a USCC not yet registered")
    registry = session.get(m.SimEnterprise, uscc)
    if registry is not None and pii_hmac(pii_key, registry.legal_rep_id) != registrant.person_id_hmac:
        raise NotPermitted("uscc", "the business registry names another legal representative for this enterprise",
                           "an enterprise whose legal representative you are", rule="origination.register.legal_rep")
    ent = m.Enterprise(
        uscc=uscc,
        name=name,
        district=registry.district if registry else None,
        industry=registry.industry if registry else None,
        has_bank_account=bool(registry.has_bank_account) if registry else False,
        branch=branch_for(registry, uscc),
        legal_rep_id_masked=registrant.person_id_masked or "",
        legal_rep_id_hmac=registrant.person_id_hmac,
        registered_at=now,
        registered_by=registrant.user_id,
    )
    try:
        with session.begin_nested():  # a concurrent registration of the same USCC loses here
            session.add(ent)
    except IntegrityError as exc:
        raise Conflict("uscc", f"enterprise {uscc} is already registered", "a USCC not yet registered") from exc
    add_member(session, user_id=registrant.user_id, enterprise_id=ent.id, relation=MemberRelation.LEGAL_REP, granted_by=registrant.user_id, now=now)
    return ent


def require_legal_rep(session: Session, actor: Actor, ent: m.Enterprise, act: str) -> None:
    if not is_legal_rep(session, actor, ent):
        raise NotPermitted(None, f"only the enterprise's legal representative, in person, may {act}", "the legal representative's own session",
                           rule=f"origination.{act}.legal_rep")


def grant_consent(
    session: Session,
    *,
    uscc: str,
    scopes: list[str],
    purpose: str,
    valid_days: int,
    signer: Actor,
    now: datetime,
) -> m.Consent:
    """One authorization for many sources, signed by the legal representative in person."""
    ent = get_enterprise(session, uscc)
    if not isinstance(scopes, list) or not scopes:
        raise InvalidInput("scopes", "must list at least one data source", ", ".join(ALL_SOURCES))
    if bad := unknown_sources(scopes):
        raise InvalidInput("scopes", f"unknown data source {show(bad[0])}", ", ".join(ALL_SOURCES))
    if len(set(scopes)) != len(scopes):
        raise InvalidInput("scopes", "lists a data source twice", "each source at most once")
    if purpose not in PURPOSES:
        raise InvalidInput("purpose", f"{show(purpose)} is not a purpose sandu collects data for", ", ".join(PURPOSES))
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or not 1 <= valid_days <= MAX_CONSENT_DAYS:
        raise InvalidInput("valid_days", f"must be a whole number of days, got {show(valid_days)}", f"1..{MAX_CONSENT_DAYS}")
    require_legal_rep(session, signer, ent, "consent")
    consent = m.Consent(
        id=str(uuid.uuid4()),
        enterprise_id=ent.id,
        scopes=sorted(scopes),
        purpose=purpose,
        signer_id_masked=signer.person_id_masked or "",
        signer_user_id=signer.user_id,
        granted_at=now,
        expires_at=now + timedelta(days=valid_days),
        revoked_at=None,
    )
    session.add(consent)
    session.flush()
    return consent


def get_consent(session: Session, consent_id: str) -> m.Consent:
    consent = session.get(m.Consent, consent_id) if is_uuid(consent_id) else None
    if consent is None:
        raise NotFound("consent", consent_id, field="consent_id")
    return consent


def revoke_consent(session: Session, *, consent_id: str, now: datetime) -> m.Consent:
    """Revocation stops further reads at once (a measurement checks the consent is live)."""
    consent = get_consent(session, consent_id)
    if consent.revoked_at is None:
        consent.revoked_at = now
    return consent


def _live_consent(session: Session, ent: m.Enterprise, consent_id: str, now: datetime) -> m.Consent:
    consent = session.get(m.Consent, consent_id) if is_uuid(consent_id) else None
    if consent is None or consent.enterprise_id != ent.id:
        raise NotFound("consent", consent_id, field="consent_id")
    if consent.revoked_at is not None:
        raise ConsentDenied("consent_id", f"consent {consent_id} was revoked", "a live consent")
    if consent.expires_at <= now:
        raise ConsentDenied("consent_id", f"consent {consent_id} expired on {consent.expires_at:%Y-%m-%d}", "a live consent")
    return consent


def _application(ent: m.Enterprise, requested_fen: int | None, project: Project | None) -> Application:
    if requested_fen is not None:
        require_fen(requested_fen, field="requested_fen", max_fen=MAX_AMOUNT_FEN)
    if project is not None and not isinstance(project, Project):
        raise InvalidInput("project", "must be a Project record", "name, capex_fen, annual_cash_flow_fen, tenor_years")
    return Application(has_bank_account=ent.has_bank_account, requested_fen=requested_fen, project=project)


@dataclass(frozen=True)
class PreparedMeasurement:
    """What a measurement read under a live consent: the inputs of the pure step."""

    enterprise_id: int
    uscc: str
    consent_id: str
    application: Application
    payloads: dict[str, dict[str, Any] | None]  # each source the consent covers → its payload, None if no record
    read_at: datetime
    read_ms: float


@dataclass(frozen=True)
class ComputedMeasurement:
    profile: ProfileSnapshot
    scores: dict[str, Any]
    result: PolicyResult
    compute_ms: float


def read_sources(session: Session, ent: m.Enterprise, consent: m.Consent) -> dict[str, dict[str, Any] | None]:
    """Read every source the consent covers (the reads are logged when the decision is recorded)."""
    rows = {r.source: r for r in session.scalars(select(m.SourceRecord).where(m.SourceRecord.uscc == ent.uscc))}
    return {source: (rows[source].payload if source in rows else None) for source in consent.scopes}


def prepare_measurement(
    session: Session,
    *,
    uscc: str,
    consent_id: str,
    as_of: date,
    now: datetime,
    bundle: PolicyBundle,
    requested_fen: int | None = None,
    project: Project | None = None,
) -> PreparedMeasurement:
    """Check the request and the consent, then read the consented sources."""
    t0 = time.perf_counter()
    require_not_future(as_of, now, "as_of")
    ent = get_enterprise(session, uscc)
    consent = _live_consent(session, ent, consent_id, now)
    missing = [s for s in bundle.required_sources if s not in consent.scopes]
    if missing:
        raise ConsentDenied(
            "consent_id",
            f"consent {shorten(consent_id)} does not cover source {missing[0]!r}, which measurement requires",
            f"a consent whose scopes include {', '.join(bundle.required_sources)}",
        )
    application = _application(ent, requested_fen, project)
    payloads = read_sources(session, ent, consent)
    return PreparedMeasurement(ent.id, ent.uscc, consent.id, application, payloads, now, (time.perf_counter() - t0) * 1000)


def compute_measurement(prepared: PreparedMeasurement, as_of: date, bundle: PolicyBundle, model: RiskModel, tech: TechConfig) -> ComputedMeasurement:
    """Pure: the profile, the scores and the policy result."""
    t0 = time.perf_counter()
    profile = build_profile(prepared.uscc, as_of, prepared.payloads)
    scores, result = score_and_decide(profile, prepared.application, bundle, model, tech, as_of)
    return ComputedMeasurement(profile, scores, result, (time.perf_counter() - t0) * 1000)


def record_measurement(
    session: Session, prepared: PreparedMeasurement, computed: ComputedMeasurement, *, as_of: date, now: datetime, bundle: PolicyBundle,
    model: RiskModel, tech: TechConfig, initiated_by: int | None = None,
) -> m.Decision:
    """Write the read log, the profile (once per content hash), the decision and its offers;
    the new decision is the enterprise's decision in force and supersedes the one before."""
    t0 = time.perf_counter()
    profile, result = computed.profile, computed.result
    ent = lock_enterprise(session, prepared.enterprise_id)
    session.add_all(
        m.SourceRead(consent_id=prepared.consent_id, source=source, read_at=prepared.read_at, found=payload is not None)
        for source, payload in prepared.payloads.items()
    )
    insert_if_absent(
        session, m.Profile, key="sha256",
        row={"sha256": profile.sha256, "enterprise_id": prepared.enterprise_id, "consent_id": prepared.consent_id,
             "as_of": as_of, "snapshot": profile.to_json(), "created_at": now},
    )
    decision = m.Decision(
        id=str(uuid.uuid4()),
        enterprise_id=prepared.enterprise_id,
        profile_sha256=profile.sha256,
        policy_version=bundle.label,
        policy_sha256=bundle.sha256,
        model_versions={"risk": model.label, "risk_sha256": model.sha256, "risk_challenger": challenger_model().label,
                        "tech": tech.label, "tech_sha256": tech.sha256},
        application=_application_json(prepared.application),
        outcome=result.outcome,
        comprehensive_limit_fen=result.comprehensive_limit_fen,
        result={**result.to_json(), "scores": computed.scores, "quality_flags": list(profile.quality_flags)},
        timings_ms={},
        as_of=as_of,
        decided_at=now,
        initiated_by=initiated_by,
    )
    session.add(decision)
    session.flush()
    if ent.live_decision_id is not None:
        previous = session.get(m.Decision, ent.live_decision_id)
        assert previous is not None, "the decision in force exists"
        previous.superseded_at = now
    ent.live_decision_id = decision.id
    session.add_all(
        m.Offer(
            decision_id=decision.id,
            product=o.product,
            limit_fen=o.limit_fen,
            approved_fen=o.approved_fen,
            rate_annual=o.rate_annual,
            status=OfferStatus.OFFERED if o.approved_fen > 0 else OfferStatus.REFERRED,
        )
        for o in result.offers
    )
    session.flush()
    record_ms = (time.perf_counter() - t0) * 1000
    decision.timings_ms = {
        "read_sources_ms": round(prepared.read_ms, 3),
        "score_and_policy_ms": round(computed.compute_ms, 3),
        "record_ms": round(record_ms, 3),
        "total_ms": round(prepared.read_ms + computed.compute_ms + record_ms, 3),
    }
    return decision


def score_and_decide(
    profile: ProfileSnapshot, application: Application, bundle: PolicyBundle, model: RiskModel, tech_config: TechConfig, as_of: date
) -> tuple[dict[str, Any], PolicyResult]:
    """Pure: the scores and the policy result for a profile (also used to replay).
    The tech evaluation gives the grade; the policy prices it."""
    tech = evaluate_tech(profile.features, tech_config)
    risk = risk_score(model, profile.features)
    challenger = challenger_model()
    features = {**profile.features, "_quality_flags": profile.quality_flags}
    scores = Scores(tech.grade, tech.most_pass, risk.pd_rounded, risk.reasons)
    result = evaluate(bundle, features, profile.collateral, scores, application, as_of)
    challenged = {**risk_score(challenger, profile.features).to_json(), "model": challenger.label}  # recorded, never decides
    return {"tech": tech.to_json(), "risk": risk.to_json(), "risk_challenger": challenged}, result


def measure(
    session: Session,
    *,
    uscc: str,
    consent_id: str,
    as_of: date,
    now: datetime,
    bundle: PolicyBundle,
    model: RiskModel,
    tech: TechConfig,
    requested_fen: int | None = None,
    project: Project | None = None,
    initiated_by: int | None = None,
) -> m.Decision:
    """测额 on one session: read the consented sources, build the profile, score, apply policy, record."""
    prepared = prepare_measurement(session, uscc=uscc, consent_id=consent_id, as_of=as_of, now=now, bundle=bundle,
                                   requested_fen=requested_fen, project=project)
    computed = compute_measurement(prepared, as_of, bundle, model, tech)
    return record_measurement(session, prepared, computed, as_of=as_of, now=now, bundle=bundle, model=model, tech=tech, initiated_by=initiated_by)


def _application_json(app: Application) -> dict[str, Any]:
    p = app.project
    return {
        "has_bank_account": app.has_bank_account,
        "requested_fen": app.requested_fen,
        "project": None if p is None else p.to_json(),
    }


def replay(session: Session, decision_id: str, bundle: PolicyBundle, model: RiskModel, tech: TechConfig) -> PolicyResult:
    """Re-run a stored decision from its stored profile; versions (policy, risk model, tech config) must match."""
    d = get_decision(session, decision_id)
    v = d.model_versions
    if d.policy_sha256 != bundle.sha256 or v.get("risk_sha256") != model.sha256 or v.get("tech_sha256") != tech.sha256:
        raise Conflict("decision_id", f"the decision was made under another policy, model or tech config version than policy {bundle.label}, "
                                      f"model {model.label}, tech {tech.label}",
                       f"policy {d.policy_version}, model {v.get('risk')}, tech {v.get('tech')}")
    prof = session.get(m.Profile, d.profile_sha256)
    assert prof is not None, "a decision always references its profile"
    snapshot = profile_from_json(prof.snapshot, d.profile_sha256)  # ProfileIntegrityError if it was altered
    a = d.application
    p = a["project"]
    app = Application(a["has_bank_account"], a["requested_fen"], Project(**p) if p else None)
    return score_and_decide(snapshot, app, bundle, model, tech, d.as_of)[1]


def get_decision(session: Session, decision_id: str) -> m.Decision:
    d = session.get(m.Decision, decision_id) if is_uuid(decision_id) else None
    if d is None:
        raise NotFound("decision", decision_id, field="decision_id")
    return d


def offers_of(session: Session, decision_id: str) -> list[m.Offer]:
    return list(session.scalars(select(m.Offer).where(m.Offer.decision_id == decision_id).order_by(m.Offer.id)))


def offer_of(session: Session, decision_id: str, product: str) -> m.Offer:
    """The offer, locked for a change (FOR UPDATE on PostgreSQL)."""
    get_decision(session, decision_id)
    stmt = select(m.Offer).where(m.Offer.decision_id == decision_id, m.Offer.product == product).with_for_update()
    offer = session.scalar(stmt.execution_options(populate_existing=True))
    if offer is None:
        raise NotFound("offer", f"{product} of decision {decision_id}", field="product")
    return offer


MAX_OPINION_LENGTH = 1000


def _open_referral(offer: m.Offer, product: str) -> None:
    if offer.status == OfferStatus.ACCEPTED:
        raise Conflict("product", f"offer {product} was already signed for; measure again for a new limit", "an offer not yet accepted")
    if offer.approved_fen == offer.limit_fen:
        raise Conflict("product", f"offer {product} has nothing left to approve", "an offer with a referred part")


def _not_the_maker(actor: Actor, decision: m.Decision, act: str) -> None:
    if actor.user_id is not None and actor.user_id == decision.initiated_by:
        raise NotPermitted(None, f"you initiated this decision and may not {act} it", "another officer (审贷分离)", rule="maker_checker.initiator")


def review_offer(session: Session, *, decision_id: str, product: str, reviewer: Actor, opinion: str, now: datetime) -> m.Offer:
    """审: an officer reviews a referred offer and records an opinion; someone else approves it."""
    plain_text(opinion, "opinion", max_length=MAX_OPINION_LENGTH)
    offer = offer_of(session, decision_id, product)
    _open_referral(offer, product)
    if offer.reviewed_by is not None:
        raise Conflict("product", f"offer {product} was already reviewed", "an offer not yet reviewed")
    _not_the_maker(reviewer, get_decision(session, decision_id), "review")
    offer.reviewed_by, offer.reviewed_at, offer.review_opinion = reviewer.user_id, now, opinion
    return offer


def approve_offer(session: Session, *, decision_id: str, product: str, approver: Actor, now: datetime) -> m.Offer:
    """贷: approve the referred part of a reviewed offer. Maker-checker: not the one who initiated
    the decision, not the one who reviewed it, and only within the approver's authority."""
    offer = offer_of(session, decision_id, product)
    _open_referral(offer, product)
    if offer.reviewed_by is None:
        raise Conflict("product", f"offer {product} must be reviewed by an officer before it is approved", "a reviewed offer")
    _not_the_maker(approver, get_decision(session, decision_id), "approve")
    if approver.user_id is not None and approver.user_id == offer.reviewed_by:
        raise NotPermitted(None, "you reviewed this offer and may not also approve it", "another officer or an approver (审贷分离)",
                           rule="maker_checker.reviewer")
    authority = approver.authority_fen or 0
    if offer.limit_fen > authority:
        raise NotPermitted(None, f"the offer of {offer.limit_fen} fen exceeds your approval authority of {authority} fen",
                           f"an approver whose authority covers {offer.limit_fen} fen", rule="approval.authority")
    offer.approved_fen = offer.limit_fen
    offer.approved_by, offer.approved_at = approver.user_id, now
    offer.status = OfferStatus.OFFERED
    return offer


def accept_offer(session: Session, *, decision_id: str, product: str, signer: Actor, as_of: date, now: datetime) -> m.CreditLine:
    """The legal representative signs online, in person; the approved part becomes a credit
    line on the terms the decision recorded (not whatever the policy says today)."""
    require_not_future(as_of, now, "as_of")
    decision = get_decision(session, decision_id)
    ent = lock_enterprise(session, decision.enterprise_id)
    offer = offer_of(session, decision_id, product)
    require_legal_rep(session, signer, ent, "sign")
    if offer.status == OfferStatus.ACCEPTED:
        raise Conflict("product", f"offer {product} was already accepted", "an offer not yet accepted")
    if offer.approved_fen == 0:
        raise Conflict("product", f"offer {product} is still under review by an officer", "an offer with an approved amount")
    if as_of > decision.as_of + timedelta(days=DECISION_VALID_DAYS) or as_of < decision.as_of:
        raise Conflict("decision_id", f"the decision of {decision.as_of} is valid for {DECISION_VALID_DAYS} days", "measure again")
    if ent.live_decision_id != decision.id:
        raise Conflict("decision_id", "a newer decision of the enterprise has superseded this one", "an offer of the enterprise's latest decision")
    committed = committed_limit_fen(session, ent.id)
    if committed + offer.approved_fen > decision.comprehensive_limit_fen:
        raise Conflict("product", f"the enterprise's lines already hold {committed} fen of its comprehensive limit of "
                       f"{decision.comprehensive_limit_fen} fen; this offer needs {offer.approved_fen} fen more",
                       f"at most {decision.comprehensive_limit_fen - committed} fen: reduce or close a line first")
    terms = next(o for o in decision.result["offers"] if o["product"] == product)
    offer.status = OfferStatus.ACCEPTED
    closed = session.scalar(select(m.BusinessCalendar.last_closed_on))
    opened_on = as_of if closed is None or as_of > closed else closed + timedelta(days=1)  # after the last date end of day closed
    line = m.CreditLine(
        enterprise_id=ent.id,
        offer_id=offer.id,
        product=product,
        limit_fen=offer.approved_fen,
        drawn_principal_fen=0,
        rate_annual=offer.rate_annual,
        basis_days=terms["basis_days"],
        repayment_method=terms["repayment_method"],
        revolving=terms["revolving"],
        settlement_frequency=terms["settlement"],
        max_drawing_months=terms["max_drawing_months"],
        # terms of decisions recorded before these were part of an offer: the defaults of DOMAIN.md
        term_within_validity=terms.get("term_within_validity", terms.get("kind") != "project"),
        interest_with_principal=terms.get("interest_with_principal", False),
        penalty_uplift=Decimal(terms.get("penalty_uplift", "0.5")),
        grace_days=terms.get("grace_days", 0),
        allocation_order=",".join(terms.get("allocation_order", LOAN_BUCKETS)),
        opened_on=opened_on,
        expires_on=add_months(opened_on, terms["validity_months"]),
        status=LineStatus.ACTIVE,
        accrued_through=opened_on - timedelta(days=1),
        risk_class="normal",
        signed_by=signer.user_id,
    )
    session.add(line)
    session.flush()
    return line


def check_scopes_cover(scopes: list[str], bundle: PolicyBundle) -> None:
    """Refuse, before anything is written, scopes that cannot support a measurement."""
    if isinstance(scopes, list) and all(isinstance(x, str) for x in scopes):
        missing = [x for x in bundle.required_sources if x not in scopes]
        if missing:
            raise ConsentDenied(
                "scopes", f"the authorization does not cover source {missing[0]!r}, which measurement requires",
                f"scopes that include {', '.join(bundle.required_sources)}",
            )
