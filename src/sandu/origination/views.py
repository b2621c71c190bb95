"""What the API and the web pages show of origination: enterprises, consents,
decisions and their offers. Built from the store inside the unit of work that
read or wrote them; interfaces render these and nothing else."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from sandu.domain.enums import OfferStatus, Outcome
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
    components: dict[str, int] = Field(description="how the limit is made up (collateral, residual value 余值, credit top-up …), fen")
    status: OfferStatus
    repayment_method: str
    revolving: bool
    basis_days: int


class DecisionView(BaseModel):
    id: str
    uscc: str
    enterprise_name: str
    outcome: Outcome
    comprehensive_limit_fen: int
    offers: list[OfferView]
    reasons: list[str]
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


_DECISION_COLUMNS = ("id", "outcome", "comprehensive_limit_fen", "profile_sha256", "policy_version", "policy_sha256",
                     "model_versions", "timings_ms", "as_of", "decided_at")
_DECISION_RESULT_KEYS = ("reasons", "tech_grade", "risk_grade", "tech_uplift_fen", "rule_hits", "scores", "quality_flags")
_OFFER_TERMS = ("product", "name", "kind", "limit_fen", "rate_annual", "annualized_rate", "grid_rate", "lpr", "components", "repayment_method",
                "revolving", "basis_days")


def decision_view(session: Session, d: m.Decision, offers: list[m.Offer]) -> DecisionView:
    """A decision with each offer's terms (as decided) and its state now (approved, accepted)."""
    ent = session.get(m.Enterprise, d.enterprise_id)
    assert ent is not None, "a decision always has its enterprise"
    state = {o.product: o for o in offers}
    assert set(state) == {o["product"] for o in d.result["offers"]}, f"decision {d.id}: offer rows differ from its result"
    views = []
    for terms in d.result["offers"]:
        row = state[terms["product"]]
        views.append(OfferView(**{k: terms[k] for k in _OFFER_TERMS}, approved_fen=row.approved_fen,
                               referred_fen=row.limit_fen - row.approved_fen, status=row.status))
    return DecisionView(
        **{c: getattr(d, c) for c in _DECISION_COLUMNS},
        **{k: d.result[k] for k in _DECISION_RESULT_KEYS},
        uscc=ent.uscc,
        enterprise_name=ent.name,
        offers=views,
    )
