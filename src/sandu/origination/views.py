"""What the API and the web pages show of origination: enterprises, consents,
decisions and their offers. Built from the store inside the unit of work that
read or wrote them; interfaces render these and nothing else."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from sandu.domain.enums import ApplicationState, HumanReviewStatus, OfferStatus, Outcome
from sandu.origination import workflow
from sandu.origination.states import allowed_actions
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.consent_text import BUREAU_SOURCE, TEXT_VERSION, scope_text
from sandu.store import models as m


class EnterpriseView(BaseModel):
    id: int
    uscc: str
    name: str
    district: str | None
    industry: str | None
    branch: str = Field(description="the sub-branch (支行) that serves the enterprise")
    has_bank_account: bool
    legal_rep_id_masked: str
    registered_at: datetime


class ConsentView(BaseModel):
    id: str
    scopes: list[str]
    purpose: str
    signer_id_masked: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    text_sha256: str | None = Field(None, description="sha256 of the exact consent text shown and agreed to (UTF-8); null: granted before texts were kept")
    text_version: str | None = Field(None, description="the template the text was rendered from")
    language: str = Field("zh", description="zh, or en when the signer chose English")
    bureau_authorized_at: datetime | None = Field(None, description="when the separate credit-bureau authorization (征信授权书) was signed")
    bureau_text_sha256: str | None = Field(None, description="sha256 of the credit-bureau authorization text")


class ScopeExplanation(BaseModel):
    source: str
    title: str
    what: str = Field(description="读取什么: what is read")
    purpose: str = Field(description="用于什么: what it is used for")
    retention: str = Field(description="保存多久: how long it is kept")
    needs_own_authorization: bool = Field(description="the credit bureau needs its own authorization (征信授权书) in the same request")


class ScopesView(BaseModel):
    language: str
    text_version: str
    scopes: list[ScopeExplanation]


class ConsentDetailView(ConsentView):
    uscc: str
    status: str = Field(description="live, revoked or expired")
    scopes_explained: list[ScopeExplanation]
    text: str | None = Field(description="the exact text agreed to, as stored")
    text_verified: bool = Field(description="the stored text hashes to text_sha256")
    bureau_text: str | None
    bureau_text_verified: bool | None
    problem: str | None = Field(description="why the text cannot be trusted, if it cannot")


class SourceReadView(BaseModel):
    id: int
    source: str
    adapter: str
    read_at: datetime
    duration_ms: float | None
    outcome: str = Field(description="found, no_record, timeout, error, invalid, circuit_open or refused")
    reason: str
    payload_sha256: str | None = Field(description="sha256 of the canonical JSON of what the source returned")


class ConsentReadsView(BaseModel):
    consent_id: str
    uscc: str
    status: str
    reads: list[SourceReadView]


class ConsentHistoryView(BaseModel):
    uscc: str
    consents: list[ConsentDetailView]


class OfferView(BaseModel):
    product: str
    name: str
    kind: str
    limit_fen: int
    approved_fen: int = Field(description="what may be signed for now")
    referred_fen: int = Field(description="what waits for an officer")
    rate_annual: str
    annualized_rate: str = Field(description="年化利率: IRR of the loan's cash flows on a 365-day year")
    grid_rate: str = Field(description="LPR + spread of the pricing grid, before tech discount and preferences")
    lpr: str = Field(description="the loan prime rate the price is built on")
    lpr_tenor: str | None = Field(None, description="which LPR, by the loan's term: one_year (terms up to 5 years) or over_five_year; null: decided before it was recorded")
    term_months: int | None = Field(None, description="the term of a drawing in months (a project loan's: the project's tenor)")
    components: dict[str, int] = Field(description="how the limit is made up (collateral, residual value 余值, credit top-up …), fen")
    status: OfferStatus
    repayment_method: str
    revolving: bool
    basis_days: int
    reviewed_by: int | None = Field(None, description="审: the user who reviewed the referred part (null: not reviewed)")
    reviewed_at: datetime | None = None
    review_opinion: str | None = Field(None, description="the reviewing officer's opinion (审查意见)")
    approved_by: int | None = Field(None, description="贷: the user who approved the referred part (null: approved by the policy, or not yet)")
    approved_at: datetime | None = None


class CounterfactualView(BaseModel):
    lever: str = Field(description="rd_ratio, tax, invoices, tech_staff or collateral: one of the applicant's own levers")
    before: float | int
    after: float | int
    limit_fen: int = Field(description="the comprehensive limit the change would give")
    reaches_goal: bool = Field(description="true: it approves a decline, or reaches the amount asked for")
    text: str


class DecisionView(BaseModel):
    id: str
    application_id: int | None = Field(None, description="the application this decision decided (GET /api/v1/applications/{id}: its state and history)")
    uscc: str
    enterprise_name: str
    outcome: Outcome
    comprehensive_limit_fen: int = Field(description="综合授信: every offer's limit, what is approved and what is referred")
    approved_fen: int = Field(description="of it, what may be signed for now (approved by the system or by an officer)")
    referred_fen: int = Field(description="of it, what waits for an officer")
    inclusive_small_micro: bool | None = Field(None, description="普惠型小微: a small or micro enterprise whose total credit is within the policy's maximum (1,000万元); null: decided before it was recorded")
    offers: list[OfferView]
    reasons: list[str]
    counterfactuals: list[CounterfactualView] = Field(default_factory=list, description="for a decline or a limit below the request: the smallest change in one lever that would change it, in words")
    tech_grade: str
    risk_grade: str
    tech_uplift_fen: int
    rule_hits: list[dict[str, str]]
    scores: dict[str, Any]
    quality_flags: list[str]
    profile_sha256: str
    policy_version: str
    policy_sha256: str
    model_versions: dict[str, Any]
    timings_ms: dict[str, Any]
    as_of: date
    decided_at: datetime


def enterprise_view(e: m.Enterprise) -> EnterpriseView:
    return EnterpriseView.model_validate(e, from_attributes=True)


def consent_view(c: m.Consent) -> ConsentView:
    return ConsentView.model_validate(c, from_attributes=True)


def scopes_view(language: str) -> ScopesView:
    return ScopesView(language=language, text_version=TEXT_VERSION, scopes=[_explain(source, language) for source in ALL_SOURCES])


def _explain(source: str, language: str) -> ScopeExplanation:
    t = scope_text(source, language)
    return ScopeExplanation(source=source, title=t.title, what=t.what, purpose=t.purpose, retention=t.retention,
                            needs_own_authorization=source == BUREAU_SOURCE)


def consent_detail_view(session: Session, c: m.Consent, status: str, check: Any) -> ConsentDetailView:
    """A consent with its scopes explained in the language it was signed in, and its texts verified."""
    ent = session.get(m.Enterprise, c.enterprise_id)
    assert ent is not None, "a consent always has its enterprise"
    return ConsentDetailView(
        **consent_view(c).model_dump(), uscc=ent.uscc, status=status,
        scopes_explained=[_explain(source, c.language) for source in ALL_SOURCES if source in c.scopes],
        text=check.text, text_verified=check.verified, bureau_text=check.bureau_text, bureau_text_verified=check.bureau_verified,
        problem=check.problem,
    )


def source_read_view(r: m.SourceRead) -> SourceReadView:
    return SourceReadView.model_validate(r, from_attributes=True)


_DECISION_COLUMNS = ("id", "outcome", "comprehensive_limit_fen", "profile_sha256", "policy_version", "policy_sha256",
                     "model_versions", "timings_ms", "as_of", "decided_at")
_DECISION_RESULT_KEYS = ("reasons", "tech_grade", "risk_grade", "tech_uplift_fen", "rule_hits", "scores", "quality_flags")
_OFFER_TERMS = ("product", "name", "kind", "limit_fen", "rate_annual", "annualized_rate", "grid_rate", "lpr", "components", "repayment_method",
                "revolving", "basis_days")


def decision_view(session: Session | None, d: m.Decision, offers: list[m.Offer], enterprise: m.Enterprise | None = None) -> DecisionView:
    """A decision with each offer's terms (as decided) and its state now (approved, accepted); `enterprise`: the
    decision's enterprise when the caller holds it (else read on `session`; with it, no session is needed)."""
    assert enterprise is not None or session is not None, "the decision's enterprise, or a session to read it on"
    ent = session.get(m.Enterprise, d.enterprise_id) if enterprise is None else enterprise
    assert ent is not None and ent.id == d.enterprise_id, "a decision always has its enterprise"
    state = {o.product: o for o in offers}
    assert set(state) == {o["product"] for o in d.result["offers"]}, f"decision {d.id}: offer rows differ from its result"
    views = []
    for terms in d.result["offers"]:
        row = state[terms["product"]]
        views.append(OfferView(**{k: terms[k] for k in _OFFER_TERMS}, lpr_tenor=terms.get("lpr_tenor"), term_months=terms.get("max_drawing_months"),
                               approved_fen=row.approved_fen,
                               referred_fen=row.limit_fen - row.approved_fen, status=row.status, reviewed_by=row.reviewed_by,
                               reviewed_at=row.reviewed_at, review_opinion=row.review_opinion, approved_by=row.approved_by,
                               approved_at=row.approved_at))
    return DecisionView(
        **{c: getattr(d, c) for c in _DECISION_COLUMNS},
        **{k: d.result[k] for k in _DECISION_RESULT_KEYS},
        application_id=d.application_id,
        uscc=ent.uscc,
        enterprise_name=ent.name,
        inclusive_small_micro=d.result.get("inclusive_small_micro"),
        counterfactuals=[CounterfactualView(**c) for c in d.result.get("counterfactuals", [])],
        offers=views,
        approved_fen=sum(v.approved_fen for v in views),
        referred_fen=sum(v.referred_fen for v in views),
    )


class ChangeView(BaseModel):
    what: str  # feature | flag | collateral
    name: str
    kind: str  # changed | added | removed
    before: Any
    after: Any
    delta: float | int | None
    relative: float | None
    text: str


class RefreshView(BaseModel):
    """A refreshed profile: the snapshot kept, the one before, what changed and which sources were gaps."""

    uscc: str
    consent_id: str
    profile_sha256: str
    previous_sha256: str | None
    changes: list[ChangeView]
    gaps: dict[str, str]
    read_ms: float
    alerts_raised: list[int] = Field(default_factory=list, description="the early-warning alerts the refreshed profile raised on the "
                                                                        "enterprise's open lines, the first 1,000 (GET /api/v1/alerts/{id})")


def refresh_view(r: Any, alerts_raised: list[int] | None = None) -> RefreshView:
    return RefreshView(
        uscc=r.uscc, consent_id=r.consent_id, profile_sha256=r.profile_sha256, previous_sha256=r.previous_sha256,
        changes=[ChangeView(**c.to_json(), text=c.text()) for c in r.changes], gaps=r.gaps, read_ms=round(r.read_ms, 3),
        alerts_raised=alerts_raised or [],
    )


class KeptView(BaseModel):
    what: str
    rows: int
    why: str = Field(description="the law or duty that requires the bank to keep it")


class ErasureView(BaseModel):
    """An erasure request carried out (PIPL art. 47): what was removed, what was kept and why."""

    id: str
    uscc: str
    reason: str = Field(description="the request's reference: who asked, when, how")
    requested_by: int | None
    done_at: datetime
    removed: dict[str, int] = Field(description="kind → rows removed (raw payloads, snapshots no decision rests on, live consents revoked)")
    kept: list[KeptView]


class ErasureHistoryView(BaseModel):
    uscc: str
    erasures: list[ErasureView]


def erasure_view(e: m.Erasure, uscc: str) -> ErasureView:
    return ErasureView(id=e.id, uscc=uscc, reason=e.reason, requested_by=e.requested_by, done_at=e.done_at,
                       removed={k: int(v) for k, v in e.removed.items()}, kept=[KeptView(**k) for k in e.kept])


class PolicyFiguresView(BaseModel):
    policy: str = Field(description="the bundle, name@version")
    applications: int
    approved: int = Field(description="approved in full or in part")
    referred: int
    declined: int
    approval_rate: str = Field(description="approved ÷ applications, a decimal string")
    total_limit_fen: int = Field(description="综合授信 of all applications, approved and referred")
    approved_fen: int
    average_rate: str | None = Field(description="the offers' rates weighted by their limits (null: no offer)")
    expected_loss_fen: int = Field(description="Σ the scorecard's PD × the comprehensive limit")


class OutcomeChangeView(BaseModel):
    application_id: str = Field(description="the stored decision re-decided")
    uscc: str
    as_of: date
    outcome_before: Outcome
    outcome_after: Outcome
    limit_before_fen: int
    limit_after_fen: int


class WhatIfView(BaseModel):
    """Past applications re-decided under a changed bundle, against the bundle in force."""

    current: PolicyFiguresView
    changed: PolicyFiguresView
    outcome_changes: int
    limit_changes: int
    changes: list[OutcomeChangeView] = Field(description="outcome changes, largest limit change first, as many as asked for")

    @classmethod
    def of(cls, w: Any) -> WhatIfView:
        return cls.model_validate(w.to_json())
# --- the application workflow ------------------------------------------------------------------------------------


class TransitionView(BaseModel):
    from_state: ApplicationState | None = Field(description="null: the application was opened")
    to_state: ApplicationState
    action: str = Field(description="an action of the table in sandu.origination.states (open: created; migrated: revision 0008's backfill)")
    at: datetime = Field(description="when, UTC")
    actor_user_id: int | None = Field(description="who (null: a system job, e.g. the policy or end of day)")
    actor_role: str
    reason: str
    decision_id: str | None


class HumanReviewView(BaseModel):
    """The applicant's request for a person to review an automated decline (PIPL art. 24) and where it is."""

    decision_id: str = Field(description="the declined decision, attached")
    status: HumanReviewStatus
    requested_at: datetime
    reason: str
    reviewed_at: datetime | None
    proposed_outcome: str | None = Field(description="upheld, or reassess: what the reviewing officer proposed")
    opinion: str | None
    decided_at: datetime | None


class ApplicationView(BaseModel):
    id: int
    uscc: str
    enterprise_name: str
    branch: str
    state: ApplicationState
    allowed_actions: list[str] = Field(description="what the application may undergo now (the table in sandu.origination.states)")
    requested_fen: int | None
    decision_id: str | None = Field(description="the decision in force")
    decision_ids: list[str] = Field(description="every decision of the application, oldest first (a measurement again supersedes the last)")
    valid_through: date | None = Field(description="the last business date its decision may be signed on; after it end of day expires it")
    queued_at: datetime | None = Field(description="since when it waits in its sub-branch's referral queue")
    created_at: datetime
    updated_at: datetime
    human_review: HumanReviewView | None = Field(description="the latest request for human review of a decline, if any")
    measured_at: datetime | None = Field(description="the measurement its first drawing followed (null: not drawn on yet)")
    first_drawn_at: datetime | None
    measurement_to_first_drawing_s: float | None = Field(description="seconds from measured_at to first_drawn_at")
    transitions: list[TransitionView] = Field(description="every change of state, oldest first")
    line_ids: list[int] = Field(default_factory=list, description="the credit lines signed from it, oldest first")


def transition_view(t: m.ApplicationTransition) -> TransitionView:
    return TransitionView.model_validate(t, from_attributes=True)


def human_review_view(r: m.HumanReview) -> HumanReviewView:
    return HumanReviewView.model_validate(r, from_attributes=True)


def application_view(session: Session, app: m.Application) -> ApplicationView:
    """An application with its history, its human review and its measurement-to-first-drawing time."""
    ent = session.get(m.Enterprise, app.enterprise_id)
    assert ent is not None, "an application has its enterprise"
    review = workflow.latest_review(session, app.id)
    first = next(iter(workflow.measurement_to_first_drawing(session, application_id=app.id)), None)
    return ApplicationView(
        id=app.id, uscc=ent.uscc, enterprise_name=ent.name, branch=app.branch, state=app.state,
        allowed_actions=[str(a) for a in allowed_actions(app.state)], requested_fen=app.requested_fen, decision_id=app.decision_id,
        decision_ids=workflow.decisions_of(session, app.id), valid_through=app.valid_through, queued_at=app.queued_at,
        created_at=app.created_at, updated_at=app.updated_at, human_review=None if review is None else human_review_view(review),
        measured_at=first.measured_at if first else None, first_drawn_at=first.first_drawn_at if first else None,
        measurement_to_first_drawing_s=first.seconds if first else None,
        transitions=[transition_view(t) for t in workflow.transitions_of(session, app.id)], line_ids=workflow.lines_of(session, app.id),
    )


class ReferralView(BaseModel):
    application_id: int
    uscc: str
    enterprise_name: str
    branch: str
    state: ApplicationState
    decision_id: str | None = Field(description="the decision attached (for a human review: the declined one)")
    outcome: Outcome | None
    queued_at: datetime
    age_hours: int = Field(description="whole hours it has waited")
    age_days: int = Field(description="whole days it has waited")
    referred_fen: int = Field(description="what waits for an officer's approval, over its offers")
    requested_fen: int | None
    products: list[str] = Field(description="the products with a referred part")
    human_review: bool = Field(description="a request for human review of an automated decline (PIPL art. 24)")
    human_review_reason: str | None
    human_review_status: HumanReviewStatus | None
    reasons: list[str] = Field(description="the decision's reasons")


class ReferralPage(BaseModel):
    branch: str | None = Field(description="the sub-branch (null: every sub-branch)")
    total: int = Field(description="how many wait in all")
    offset: int
    limit: int
    next_offset: int | None = Field(description="the offset of the next page; null on the last")
    referrals: list[ReferralView] = Field(description="oldest first")


def referral_view(r: Any, now: datetime) -> ReferralView:
    app, d = r.application, r.decision
    hours = max(0, int((now - app.queued_at).total_seconds() // 3600)) if app.queued_at else 0
    open_offers = [o for o in r.offers if o.approved_fen < o.limit_fen and o.status != OfferStatus.ACCEPTED]
    return ReferralView(
        application_id=app.id, uscc=r.uscc, enterprise_name=r.enterprise_name, branch=app.branch, state=app.state,
        decision_id=None if d is None else d.id, outcome=None if d is None else d.outcome, queued_at=app.queued_at or app.updated_at,
        age_hours=hours, age_days=hours // 24, referred_fen=sum(o.limit_fen - o.approved_fen for o in open_offers), requested_fen=app.requested_fen,
        products=[o.product for o in open_offers], human_review=r.review is not None,
        human_review_reason=None if r.review is None else r.review.reason, human_review_status=None if r.review is None else r.review.status,
        reasons=[] if d is None else list(d.result.get("reasons", [])),
    )


class MyEnterpriseView(BaseModel):
    """One enterprise an applicant acts for: its decision in force and its credit lines."""

    uscc: str
    name: str
    relation: str = Field(description="legal_rep or delegate")
    decision_id: str | None = Field(description="the decision in force (the latest measurement), if any")
    outcome: Outcome | None
    comprehensive_limit_fen: int | None
    application_id: int | None
    lines: list[Any] = Field(description="the enterprise's credit lines (LineView), newest first")


class MyCreditView(BaseModel):
    enterprises: list[MyEnterpriseView]
