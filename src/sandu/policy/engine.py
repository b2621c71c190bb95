"""The credit policy engine: scores + profile → comprehensive limit, products, prices.

Pure and deterministic: the same profile, scores, application and bundle give the
same result, so a stored decision can be replayed. `evaluate` reads the profile's
features into a typed record once, runs the numeric kernel (`sandu.policy.kernel`)
and has the explanation step (`sandu.policy.explain`) write every rule that fired
as a `RuleHit` and every refusal as a reason code with words a credit officer
(and the applicant) can read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sandu.domain.enums import Outcome
from sandu.domain.project import Project
from sandu.policy.bundle import PolicyBundle
from sandu.policy.explain import RuleHit, explain
from sandu.policy.kernel import Application, PricedOffer, Scores, Sized, decide, read_features, risk_grade, size, tech_grade
from sandu.sources.profile import Collateral

__all__ = [
    "Application",
    "OfferTerms",
    "PolicyResult",
    "Project",
    "RuleHit",
    "Scores",
    "Sized",
    "evaluate",
    "risk_grade",
    "size_only",
    "tech_grade",
]


@dataclass(frozen=True)
class OfferTerms:
    product: str
    name: str
    kind: str
    limit_fen: int
    approved_fen: int  # what the system approves on its own; the rest is referred
    rate_annual: Decimal
    annualized_rate: Decimal  # 年化利率: the IRR of the loan's cash flows, fees included, on a 365-day year
    grid_rate: Decimal  # LPR + spread before tech discount and preferences
    lpr: Decimal
    lpr_tenor: str  # which LPR the price is built on, by the loan's term: "one_year" | "over_five_year"
    repayment_method: str
    revolving: bool
    validity_months: int
    max_drawing_months: int  # the term of a drawing: the product's, or a project loan's project tenor
    term_within_validity: bool  # a drawing never matures after the line expires (not for project loans)
    basis_days: int
    settlement: str
    interest_with_principal: bool
    penalty_uplift: Decimal
    grace_days: int
    allocation_order: tuple[str, ...]
    components: dict[str, int] = field(default_factory=dict)

    @property
    def referred_fen(self) -> int:
        return self.limit_fen - self.approved_fen

    def to_json(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "name": self.name,
            "kind": self.kind,
            "limit_fen": self.limit_fen,
            "approved_fen": self.approved_fen,
            "referred_fen": self.referred_fen,
            "rate_annual": str(self.rate_annual),
            "annualized_rate": str(self.annualized_rate),
            "grid_rate": str(self.grid_rate),
            "lpr": str(self.lpr),
            "lpr_tenor": self.lpr_tenor,
            "repayment_method": self.repayment_method,
            "revolving": self.revolving,
            "validity_months": self.validity_months,
            "max_drawing_months": self.max_drawing_months,
            "term_within_validity": self.term_within_validity,
            "basis_days": self.basis_days,
            "settlement": self.settlement,
            "interest_with_principal": self.interest_with_principal,
            "penalty_uplift": str(self.penalty_uplift),
            "grace_days": self.grace_days,
            "allocation_order": list(self.allocation_order),
            "components": self.components,
        }


@dataclass(frozen=True)
class PolicyResult:
    outcome: Outcome
    tech_grade: str
    risk_grade: str
    offers: tuple[OfferTerms, ...]
    comprehensive_limit_fen: int
    tech_uplift_fen: int
    rule_hits: tuple[RuleHit, ...]
    reasons: tuple[str, ...]
    inclusive_small_micro: bool = False  # 普惠型小微: a small or micro enterprise, total credit within the bundle's maximum

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "tech_grade": self.tech_grade,
            "risk_grade": self.risk_grade,
            "offers": [o.to_json() for o in self.offers],
            "comprehensive_limit_fen": self.comprehensive_limit_fen,
            "tech_uplift_fen": self.tech_uplift_fen,
            "inclusive_small_micro": self.inclusive_small_micro,
            "rule_hits": [{"rule": h.rule, "detail": h.detail} for h in self.rule_hits],
            "reasons": list(self.reasons),
        }


def _terms(o: PricedOffer, application: Application) -> OfferTerms:
    """An offer's terms. A project loan's drawings follow the project's tenor, not the
    product's 12-month rule, and may mature after the line's drawing period ends."""
    p = o.product
    project = application.project if p.kind == "project" else None
    return OfferTerms(
        product=p.code,
        name=p.name,
        kind=p.kind,
        limit_fen=o.limit_fen,
        approved_fen=o.approved_fen,
        rate_annual=o.price.rate_annual,
        annualized_rate=o.price.annualized_rate,
        grid_rate=o.price.grid_rate,
        lpr=o.price.lpr,
        lpr_tenor=o.price.lpr_tenor,
        repayment_method=p.repayment_method,
        revolving=p.revolving,
        validity_months=p.validity_months,
        max_drawing_months=o.price.term_months,
        term_within_validity=project is None,
        basis_days=p.basis_days,
        settlement=p.settlement.value,
        interest_with_principal=p.interest_with_principal,
        penalty_uplift=p.penalty_uplift,
        grace_days=p.grace_days,
        allocation_order=p.allocation_order,
        components=o.components,
    )


def size_only(
    bundle: PolicyBundle,
    features: dict[str, Any],
    collateral: tuple[Collateral, ...],
    scores: Scores,
    application: Application,
    as_of: date,
) -> Sized:
    """The outcome, the comprehensive limit and the approved part `evaluate` reaches, without pricing the offers or
    keeping the steps' numbers. For the counterfactual search, which asks each of its evaluations only those."""
    return size(bundle, read_features(features), collateral, scores, application, as_of)


def evaluate(
    bundle: PolicyBundle,
    features: dict[str, Any],
    collateral: tuple[Collateral, ...],
    scores: Scores,
    application: Application,
    as_of: date,
) -> PolicyResult:
    d = decide(bundle, read_features(features), collateral, scores, application, as_of)
    hits, reasons = explain(d)
    return PolicyResult(
        outcome=d.outcome,
        tech_grade=d.general.tech_grade,
        risk_grade=d.general.risk_grade,
        offers=tuple(_terms(o, application) for o in d.offers),
        comprehensive_limit_fen=d.comprehensive_limit_fen,
        tech_uplift_fen=d.credit.uplift_fen if d.credit is not None else 0,
        rule_hits=hits,
        reasons=reasons,
        inclusive_small_micro=d.inclusive.flagged,
    )
