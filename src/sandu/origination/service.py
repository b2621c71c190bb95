"""Origination: register → consent → measure (decision) → approve / accept.

Each public function is one unit of work inside the caller's transaction
(`sandu.store.db.transaction`): it validates everything first, raises a
`SanduError` before writing anything when the request cannot be honoured, and
leaves the store unchanged in that case (the transaction rolls back).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sandu.domain.dates import add_months, business_date
from sandu.domain.errors import Conflict, ConsentDenied, InvalidInput, NotFound
from sandu.domain.ids import mask_resident_id, validate_resident_id, validate_uscc
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.policy.bundle import PolicyBundle
from sandu.policy.engine import Application, PolicyResult, Project, Scores, evaluate
from sandu.scoring.risk import RiskModel
from sandu.scoring.risk import score as risk_score
from sandu.scoring.tech import TECH_MODEL_VERSION, evaluate_tech
from sandu.sources.catalog import ALL_SOURCES, unknown_sources
from sandu.sources.profile import ProfileSnapshot, build_profile, profile_from_json
from sandu.store import models as m

PURPOSES = ("credit_measurement",)
MAX_CONSENT_DAYS = 365
MAX_NAME_LENGTH = 120
DECISION_VALID_DAYS = 30


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def get_enterprise(session: Session, uscc: str) -> m.Enterprise:
    validate_uscc(uscc)
    ent = session.scalar(select(m.Enterprise).where(m.Enterprise.uscc == uscc))
    if ent is None:
        raise NotFound("enterprise", uscc, field="uscc")
    return ent


def register_enterprise(session: Session, *, uscc: str, name: str, legal_rep_id: str, now: datetime) -> m.Enterprise:
    """Register an applicant. No bank account is needed; the public business
    registry (here: the simulated universe) fills district and industry."""
    validate_uscc(uscc)
    validate_resident_id(legal_rep_id, field="legal_rep_id", today=business_date(now))
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("name", "must be the registered company name", f"1..{MAX_NAME_LENGTH} characters")
    if session.scalar(select(m.Enterprise.id).where(m.Enterprise.uscc == uscc)) is not None:
        raise Conflict("uscc", f"enterprise {uscc} is already registered", "a USCC not yet registered")
    registry = session.get(m.SimEnterprise, uscc)
    if registry is not None and registry.legal_rep_id != legal_rep_id:
        raise InvalidInput("legal_rep_id", "does not match the legal representative in the business registry", "the registered legal representative's ID")
    ent = m.Enterprise(
        uscc=uscc,
        name=name.strip(),
        district=registry.district if registry else None,
        industry=registry.industry if registry else None,
        has_bank_account=bool(registry.has_bank_account) if registry else False,
        legal_rep_id_masked=mask_resident_id(legal_rep_id),
        legal_rep_id_sha256=_sha256(legal_rep_id),
        registered_at=now,
    )
    try:
        with session.begin_nested():  # a concurrent registration of the same USCC loses here
            session.add(ent)
    except IntegrityError as exc:
        raise Conflict("uscc", f"enterprise {uscc} is already registered", "a USCC not yet registered") from exc
    return ent


def grant_consent(
    session: Session,
    *,
    uscc: str,
    scopes: list[str],
    purpose: str,
    signer_id: str,
    valid_days: int,
    now: datetime,
) -> m.Consent:
    """One authorization for many sources, signed by the legal representative."""
    ent = get_enterprise(session, uscc)
    validate_resident_id(signer_id, field="signer_id", today=business_date(now))
    if not isinstance(scopes, list) or not scopes:
        raise InvalidInput("scopes", "must list at least one data source", ", ".join(ALL_SOURCES))
    if bad := unknown_sources(scopes):
        raise InvalidInput("scopes", f"unknown data source {bad[0]!r}", ", ".join(ALL_SOURCES))
    if len(set(scopes)) != len(scopes):
        raise InvalidInput("scopes", "lists a data source twice", "each source at most once")
    if purpose not in PURPOSES:
        raise InvalidInput("purpose", f"{purpose!r} is not a purpose sandu collects data for", ", ".join(PURPOSES))
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or not 1 <= valid_days <= MAX_CONSENT_DAYS:
        raise InvalidInput("valid_days", f"must be a whole number of days, got {valid_days!r}", f"1..{MAX_CONSENT_DAYS}")
    if _sha256(signer_id) != ent.legal_rep_id_sha256:
        raise ConsentDenied("signer_id", "the signer is not the enterprise's legal representative", "the legal representative's resident ID")
    consent = m.Consent(
        id=str(uuid.uuid4()),
        enterprise_id=ent.id,
        scopes=sorted(scopes),
        purpose=purpose,
        signer_id_masked=mask_resident_id(signer_id),
        signer_id_sha256=_sha256(signer_id),
        granted_at=now,
        expires_at=now + timedelta(days=valid_days),
        revoked_at=None,
    )
    session.add(consent)
    session.flush()
    return consent


def revoke_consent(session: Session, *, consent_id: str, now: datetime) -> m.Consent:
    consent = session.get(m.Consent, consent_id)
    if consent is None:
        raise NotFound("consent", consent_id, field="consent_id")
    if consent.revoked_at is None:
        consent.revoked_at = now
    return consent


def _live_consent(session: Session, ent: m.Enterprise, consent_id: str, now: datetime) -> m.Consent:
    consent = session.get(m.Consent, consent_id) if isinstance(consent_id, str) else None
    if consent is None or consent.enterprise_id != ent.id:
        raise NotFound("consent", consent_id, field="consent_id")
    if consent.revoked_at is not None:
        raise ConsentDenied("consent_id", f"consent {consent_id} was revoked", "a live consent")
    if _aware(consent.expires_at) <= now:
        raise ConsentDenied("consent_id", f"consent {consent_id} expired on {consent.expires_at:%Y-%m-%d}", "a live consent")
    return consent


def _aware(ts: datetime) -> datetime:
    # SQLite returns naive datetimes; everything sandu writes is UTC.
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _application(ent: m.Enterprise, requested_fen: int | None, project: Project | None) -> Application:
    if requested_fen is not None:
        require_fen(requested_fen, field="requested_fen", max_fen=MAX_AMOUNT_FEN)
    if project is not None and not isinstance(project, Project):
        raise InvalidInput("project", "must be a Project record", "name, capex_fen, annual_cash_flow_fen, tenor_years")
    return Application(has_bank_account=ent.has_bank_account, requested_fen=requested_fen, project=project)


def read_sources(session: Session, ent: m.Enterprise, consent: m.Consent, now: datetime) -> dict[str, dict[str, Any] | None]:
    """Read every source the consent covers, logging each read against it."""
    rows = {r.source: r for r in session.scalars(select(m.SourceRecord).where(m.SourceRecord.uscc == ent.uscc))}
    payloads: dict[str, dict[str, Any] | None] = {}
    for source in consent.scopes:
        rec = rows.get(source)
        payloads[source] = rec.payload if rec is not None else None
        session.add(m.SourceRead(consent_id=consent.id, source=source, read_at=now, found=rec is not None))
    return payloads


def score_and_decide(
    profile: ProfileSnapshot, application: Application, bundle: PolicyBundle, model: RiskModel, as_of: date
) -> tuple[dict[str, Any], PolicyResult]:
    """Pure: the scores and the policy result for a profile (also used to replay)."""
    tech = evaluate_tech(profile.features)
    risk = risk_score(model, profile.features)
    features = {**profile.features, "_quality_flags": profile.quality_flags}
    scores = Scores(tech.score, tech.most_pass, risk.pd_rounded, risk.reasons)
    result = evaluate(bundle, features, profile.collateral, scores, application, as_of)
    return {"tech": tech.to_json(), "risk": risk.to_json()}, result


def measure(
    session: Session,
    *,
    uscc: str,
    consent_id: str,
    as_of: date,
    now: datetime,
    bundle: PolicyBundle,
    model: RiskModel,
    requested_fen: int | None = None,
    project: Project | None = None,
) -> m.Decision:
    """测额: read the consented sources, build the profile, score, apply policy, record."""
    t0 = time.perf_counter()
    if as_of > business_date(now):
        raise InvalidInput("as_of", f"{as_of} is in the future", f"{business_date(now)} or earlier")
    ent = get_enterprise(session, uscc)
    consent = _live_consent(session, ent, consent_id, now)
    missing = [s for s in bundle.required_sources if s not in consent.scopes]
    if missing:
        raise ConsentDenied(
            "consent_id",
            f"consent {consent_id} does not cover source {missing[0]!r}, which measurement requires",
            f"a consent whose scopes include {', '.join(bundle.required_sources)}",
        )
    application = _application(ent, requested_fen, project)
    payloads = read_sources(session, ent, consent, now)
    t1 = time.perf_counter()
    profile = build_profile(ent.uscc, as_of, payloads)
    if session.get(m.Profile, profile.sha256) is None:
        session.add(m.Profile(sha256=profile.sha256, enterprise_id=ent.id, consent_id=consent.id, as_of=as_of, snapshot=profile.to_json(), created_at=now))
        session.flush()
    scores, result = score_and_decide(profile, application, bundle, model, as_of)
    t2 = time.perf_counter()
    decision = m.Decision(
        id=str(uuid.uuid4()),
        enterprise_id=ent.id,
        profile_sha256=profile.sha256,
        policy_version=bundle.label,
        policy_sha256=bundle.sha256,
        model_versions={"risk": model.label, "risk_sha256": model.sha256, "tech": TECH_MODEL_VERSION},
        application=_application_json(application),
        outcome=result.outcome,
        comprehensive_limit_fen=result.comprehensive_limit_fen,
        result={**result.to_json(), "scores": scores, "quality_flags": list(profile.quality_flags)},
        timings_ms={},
        as_of=as_of,
        decided_at=now,
    )
    session.add(decision)
    session.flush()
    for o in result.offers:
        session.add(
            m.Offer(
                decision_id=decision.id,
                product=o.product,
                limit_fen=o.limit_fen,
                approved_fen=o.approved_fen,
                rate_annual=o.rate_annual,
                status="offered" if o.approved_fen > 0 else "referred",
            )
        )
    session.flush()
    t3 = time.perf_counter()
    decision.timings_ms = {
        "read_sources_ms": round((t1 - t0) * 1000, 3),
        "score_and_policy_ms": round((t2 - t1) * 1000, 3),
        "total_ms": round((t3 - t0) * 1000, 3),
    }
    return decision


def _application_json(app: Application) -> dict[str, Any]:
    p = app.project
    return {
        "has_bank_account": app.has_bank_account,
        "requested_fen": app.requested_fen,
        "project": None if p is None else p.to_json(),
    }


def replay(session: Session, decision_id: str, bundle: PolicyBundle, model: RiskModel) -> PolicyResult:
    """Re-run a stored decision from its stored profile; versions must match."""
    d = get_decision(session, decision_id)
    if d.policy_sha256 != bundle.sha256 or d.model_versions.get("risk_sha256") != model.sha256:
        raise Conflict("decision_id", "the decision was made under another policy or model version", f"policy {d.policy_version}, model {d.model_versions.get('risk')}")
    prof = session.get(m.Profile, d.profile_sha256)
    assert prof is not None, "a decision always references its profile"
    snapshot = profile_from_json(prof.snapshot, d.profile_sha256)  # ProfileIntegrityError if it was altered
    a = d.application
    p = a["project"]
    app = Application(a["has_bank_account"], a["requested_fen"], Project(**p) if p else None)
    return score_and_decide(snapshot, app, bundle, model, d.as_of)[1]


def get_decision(session: Session, decision_id: str) -> m.Decision:
    d = session.get(m.Decision, decision_id) if isinstance(decision_id, str) else None
    if d is None:
        raise NotFound("decision", decision_id, field="decision_id")
    return d


def offers_of(session: Session, decision_id: str) -> list[m.Offer]:
    return list(session.scalars(select(m.Offer).where(m.Offer.decision_id == decision_id).order_by(m.Offer.id)))


def _offer(session: Session, decision_id: str, product: str) -> m.Offer:
    get_decision(session, decision_id)
    stmt = select(m.Offer).where(m.Offer.decision_id == decision_id, m.Offer.product == product).with_for_update()
    offer = session.scalar(stmt.execution_options(populate_existing=True))
    if offer is None:
        raise NotFound("offer", f"{product} of decision {decision_id}", field="product")
    return offer


def approve_offer(session: Session, *, decision_id: str, product: str, officer: str, now: datetime) -> m.Offer:
    """An officer approves the referred part of an offer; an accepted line grows to the full limit."""
    if not isinstance(officer, str) or not officer.strip() or len(officer) > 64:
        raise InvalidInput("officer", "must identify the approving officer", "1..64 characters")
    offer = _offer(session, decision_id, product)
    if offer.approved_fen == offer.limit_fen:
        raise Conflict("product", f"offer {product} is already fully approved", "an offer with a referred part")
    offer.approved_fen = offer.limit_fen
    offer.approved_by = officer.strip()
    offer.approved_at = now
    if offer.status == "referred":
        offer.status = "offered"
    line = session.scalar(select(m.CreditLine).where(m.CreditLine.offer_id == offer.id))
    if line is not None:
        line.limit_fen = offer.limit_fen
    return offer


def accept_offer(session: Session, *, decision_id: str, product: str, signer_id: str, as_of: date, now: datetime) -> m.CreditLine:
    """The legal representative signs online; the approved part becomes a credit line
    on the terms the decision recorded (not whatever the policy says today)."""
    offer = _offer(session, decision_id, product)
    decision = get_decision(session, decision_id)
    ent = session.get(m.Enterprise, decision.enterprise_id)
    assert ent is not None
    validate_resident_id(signer_id, field="signer_id", today=business_date(now))
    if _sha256(signer_id) != ent.legal_rep_id_sha256:
        raise ConsentDenied("signer_id", "only the enterprise's legal representative can sign", "the legal representative's resident ID")
    if offer.status == "accepted":
        raise Conflict("product", f"offer {product} was already accepted", "an offer not yet accepted")
    if offer.approved_fen == 0:
        raise Conflict("product", f"offer {product} is still under review by an officer", "an offer with an approved amount")
    if as_of > decision.as_of + timedelta(days=DECISION_VALID_DAYS) or as_of < decision.as_of:
        raise Conflict("decision_id", f"the decision of {decision.as_of} is valid for {DECISION_VALID_DAYS} days", "measure again")
    terms = next(o for o in decision.result["offers"] if o["product"] == product)
    if as_of > business_date(now):
        raise InvalidInput("as_of", f"{as_of} is in the future", f"{business_date(now)} or earlier")
    offer.status = "accepted"
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
        opened_on=as_of,
        expires_on=add_months(as_of, terms["validity_months"]),
        status="active",
        accrued_through=None,
    )
    session.add(line)
    session.flush()
    return line


def apply_online(
    session: Session,
    *,
    uscc: str,
    name: str,
    legal_rep_id: str,
    scopes: list[str],
    as_of: date,
    now: datetime,
    bundle: PolicyBundle,
    model: RiskModel,
    requested_fen: int | None = None,
) -> m.Decision:
    """The mobile flow in one step: register if new (no bank account needed),
    authorize once, measure. A returning applicant must be its legal representative."""
    validate_uscc(uscc)
    validate_resident_id(legal_rep_id, field="legal_rep_id", today=business_date(now))
    ent = session.scalar(select(m.Enterprise).where(m.Enterprise.uscc == uscc))
    if ent is None:
        register_enterprise(session, uscc=uscc, name=name, legal_rep_id=legal_rep_id, now=now)
    consent = grant_consent(
        session, uscc=uscc, scopes=scopes, purpose="credit_measurement", signer_id=legal_rep_id, valid_days=30, now=now
    )
    return measure(session, uscc=uscc, consent_id=consent.id, as_of=as_of, now=now, bundle=bundle, model=model, requested_fen=requested_fen)
