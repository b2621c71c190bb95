"""The numeric kernel of the credit policy: typed inputs in, every number out.

Each step is a pure function over typed records (the features the policy
reads, the grades, the bundle) that returns a frozen dataclass holding every
intermediate number, so that the explanation (`sandu.policy.explain`) can say
what happened without computing anything, and a vectorized form can follow the
same steps column by column. Nothing here formats text.

The steps, in the order `decide` runs them:

1. grades — the tech grade as the tech evaluation gave it (checked to be a grade
   of the bundle's table: its score bands live in the tech config, not here), the
   risk grade from the PD;
2. general eligibility — data present, risk grade not declined, overdue
   history within limits; nothing else runs when it fails;
3. credit eligibility — annual tax and tax credit grade; the credit portion
   runs only when they pass:
   quick measure (tax × multiplier of the risk grade, capped) and tech measure
   (revenue × ratio × tech-grade multiplier, capped), the larger wins; the tech
   line releases the quick measure at once on the fast track;
4. collateral capacity — per asset appraised × LTV (to the yuan) − secured debt,
   residual value (余值) being the capacity of assets that already secure debt;
5. secured product — pledged assets give the combined product (抵押+信用:
   capacity + a credit top-up, which then replaces the credit offer),
   unencumbered ones the revolving product (网贷通);
6. project sizing — the smaller of capex × (1 − equity ratio) and the loan whose
   largest 12-month principal-and-interest service (by its repayment method, at
   its price), with the existing loans' service, the cash flow covers DSCR
   times; capped; refused beyond the longest tenor;
7. pricing of each offer — LPR of the loan's term (1-year up to the bundle's bound,
   over-5-year above) + spread − tech discount, not below the floor; preferential
   certifications price at most at LPR + the bundle's preferential level;
8. outcome — decline without offers, approve when all is approved, partial when
   some is, refer otherwise.

Limits are rounded down to the bundle's unit; an offer is made only for a
positive limit. Products that need a bank account are skipped for applicants
without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sandu.domain.enums import Outcome
from sandu.domain.errors import InvalidInput, show
from sandu.domain.project import Project
from sandu.policy import rules
from sandu.policy.bundle import PolicyBundle, Product
from sandu.policy.ops import SCALAR
from sandu.policy.rules import BP
from sandu.sources.profile import MAX_COLLATERAL_ASSETS, Collateral

MAX_RISK_REASONS = 3  # risk reasons quoted in a refusal
NOT_READ = ":not_read"  # quality flag of a source the consent did not cover
UNAVAILABLE = ":unavailable"  # quality flag of a source asked that gave no usable answer in time (a gap)


# -- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Application:
    has_bank_account: bool
    requested_fen: int | None = None
    project: Project | None = None
    guarantee_fen: int | None = None  # 担保: a financing guarantee the applicant arranged (None: none offered)


@dataclass(frozen=True)
class Scores:
    tech_grade: str  # the tech evaluation's grade (`sandu.scoring.tech`), a grade of the bundle's tech_grades
    tech_most_pass: bool
    risk_pd: Decimal
    risk_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyFeatures:
    """The profile features the policy reads, typed; None = not evidenced."""

    revenue_fen: int | None
    tax_total_fen: int | None
    tax_credit_grade: str | None
    overdue_count_24m: int | None
    max_overdue_days_24m: int | None
    certifications: frozenset[str]
    sources_not_read: frozenset[str]
    sources_unavailable: frozenset[str] = frozenset()
    headcount: int | None = None  # 从业人员 (social insurance): with revenue, the enterprise's size
    loans_outstanding_fen: int | None = None  # existing loans (credit bureau): their service counts against a project's cash flow
    secured_debt_fen: int | None = None  # of them, those secured by collateral: the rest is unsecured debt, deducted from credit measures


def _count(features: dict[str, Any], key: str) -> int | None:
    value = features.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"features.{key}", f"must be an integer ≥ 0 or absent, got {show(value)}", "a non-negative integer or None")
    return value


def _strings(features: dict[str, Any], key: str) -> frozenset[str]:
    values = features.get(key) or ()
    if isinstance(values, str) or not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise InvalidInput(f"features.{key}", f"must be a list of strings, got {show(values)}", "a list of strings")
    return frozenset(values)


def read_features(features: dict[str, Any]) -> PolicyFeatures:
    """The typed record of what the policy reads from a profile's feature dict
    (``_quality_flags`` carries the profile's data-quality flags)."""
    grade = features.get("tax_credit_grade")
    if grade is not None and not isinstance(grade, str):
        raise InvalidInput("features.tax_credit_grade", f"must be a string or absent, got {show(grade)}", "A/B/M/C/D or None")
    flags = _strings(features, "_quality_flags")
    return PolicyFeatures(
        revenue_fen=_count(features, "revenue_fen"),
        tax_total_fen=_count(features, "tax_total_fen"),
        tax_credit_grade=grade,
        overdue_count_24m=_count(features, "overdue_count_24m"),
        max_overdue_days_24m=_count(features, "max_overdue_days_24m"),
        certifications=_strings(features, "certifications"),
        sources_not_read=frozenset(f.removesuffix(NOT_READ) for f in flags if f.endswith(NOT_READ)),
        sources_unavailable=frozenset(f.removesuffix(UNAVAILABLE) for f in flags if f.endswith(UNAVAILABLE)),
        headcount=_count(features, "headcount"),
        loans_outstanding_fen=_count(features, "loans_outstanding_fen"),
        secured_debt_fen=_count(features, "secured_debt_fen"),
    )


# -- grades ------------------------------------------------------------------------------


def tech_grade(bundle: PolicyBundle, grade: str) -> str:
    """The tech grade of the scores, refused unless the bundle's tech_grades price it."""
    known = [g.grade for g in bundle.tech_grades]
    if not isinstance(grade, str) or grade not in known:
        raise InvalidInput("scores.tech_grade", f"must be a grade of policy {bundle.label}'s tech_grades, got {show(grade)}", "/".join(known))
    return grade


def require_tech_grades(bundle: PolicyBundle, grades: tuple[str, ...], source: str) -> None:
    """Refuse a pairing of policy and tech evaluation in which the evaluation (`source`)
    can give a grade that the bundle's tech_grades do not price."""
    known = [g.grade for g in bundle.tech_grades]
    missing = [g for g in grades if g not in known]
    if missing:
        raise InvalidInput("tech_grades", f"tech config {source} gives grade {'/'.join(missing)}, which policy {bundle.label} does not price", "/".join(known))


def check_pd(pd: Decimal) -> Decimal:
    if not isinstance(pd, Decimal) or not pd.is_finite() or not 0 <= pd <= 1:
        raise InvalidInput("scores.risk_pd", f"must be a Decimal within 0..1, got {show(pd)}", "0..1")
    return pd


def risk_grade(bundle: PolicyBundle, pd: Decimal) -> str:
    """The best risk grade whose `max_pd` the probability of default does not exceed."""
    return rules.risk_grade(SCALAR, bundle, check_pd(pd))


# -- the records of each step -------------------------------------------------------------

@dataclass(frozen=True)
class GeneralEligibility:
    """Checks every applicant must pass. When data is missing, or a required source did not
    answer (a gap), nothing else is checked."""

    tech_grade: str
    risk_grade: str
    risk_pd: Decimal
    risk_reasons: tuple[str, ...]  # the first few, quoted when the grade is declined
    data_missing: bool
    required_gaps: tuple[str, ...]  # required sources asked that gave no usable answer, in the bundle's order
    on_required_gap: str  # what the bundle does about them: "refer" | "decline"
    risk_declined: bool
    overdue_count_24m: int | None
    max_overdue_count_24m: int
    overdue_count_exceeded: bool
    overdue_days_24m: int | None
    max_overdue_days_24m: int
    overdue_days_exceeded: bool

    @property
    def eligible(self) -> bool:
        return not (self.data_missing or self.required_gaps or self.risk_declined or self.overdue_count_exceeded or self.overdue_days_exceeded)


@dataclass(frozen=True)
class CreditEligibility:
    """Checks for pure-credit products: annual tax and tax credit grade."""

    tax_total_fen: int | None
    min_annual_tax_fen: int
    tax_below_min: bool
    tax_credit_grade: str | None
    allowed_tax_credit_grades: tuple[str, ...]
    tax_grade_refused: bool

    @property
    def eligible(self) -> bool:
        return not (self.tax_below_min or self.tax_grade_refused)


@dataclass(frozen=True)
class QuickMeasure:
    """经营快贷: annual tax × the multiplier of the risk grade − the unsecured debt it deducts, rounded down, capped."""

    tax_total_fen: int
    risk_grade: str
    multiplier: Decimal
    max_fen: int
    limit_fen: int
    deducted_fen: int = 0  # existing unsecured debt taken off before the cap


@dataclass(frozen=True)
class TechMeasure:
    """科创信用额度: revenue × ratio × tech-grade multiplier, rounded down, capped;
    0 unless the tech grade is at least the minimum and the MOST test is passed."""

    qualifies: bool
    revenue_fen: int
    revenue_ratio: Decimal
    tech_grade: str
    multiplier: Decimal
    limit_fen: int
    deducted_fen: int = 0  # existing unsecured debt taken off before the cap


@dataclass(frozen=True)
class CreditPortion:
    """The pure-credit line: the tech line when it beats the quick measure, else the quick loan.

    `product` is None when neither gives a positive limit. On the tech line only the
    quick measure is approved at once, and only on the fast track; the quick loan,
    an online measure, is approved in full. `uplift_fen` is what the tech evaluation
    adds over the quick measure alone (0 unless the tech line is offered)."""

    quick: QuickMeasure
    tech: TechMeasure
    product: Product | None
    tech_line: bool
    fast_track: bool
    limit_fen: int
    approved_fen: int
    open_to_applicant: bool
    uplift_fen: int
    debt_known: bool = True  # the bureau gave the existing loans; without them nothing is approved at once


@dataclass(frozen=True)
class AssetCapacity:
    """One asset: appraised × LTV (to the yuan) − secured debt, never below 0.
    `ltv` is None for a kind the LTV table does not know; such an asset counts nothing."""

    asset: Collateral
    ltv: Decimal | None
    value_fen: int
    capacity_fen: int
    pledged: bool  # counted, and already securing debt


@dataclass(frozen=True)
class CollateralCapacity:
    assets: tuple[AssetCapacity, ...]
    capacity_fen: int
    residual_fen: int  # 余值: capacity of assets that already secure debt
    pledged: bool  # some counted asset already secures debt


@dataclass(frozen=True)
class SecuredPortion:
    """The secured product chosen for the collateral: combined (pledged assets, with a
    credit top-up) or revolving (unencumbered assets). Amounts are 0 when closed to the applicant."""

    product: Product
    combined: bool
    open_to_applicant: bool
    capacity_fen: int
    residual_fen: int
    topup_cap_fen: int  # capacity × top-up ratio, rounded down
    topup_fen: int  # the credit portion's limit, up to the cap
    max_fen: int
    limit_fen: int
    approved_fen: int

    @property
    def offered(self) -> bool:
        return self.open_to_applicant and self.limit_fen > 0

    @property
    def replaces_credit(self) -> bool:
        """A combined offer carries the credit portion as its top-up."""
        return self.combined and self.offered


@dataclass(frozen=True)
class ProjectSizing:
    """项目贷款: the smaller of capex × (1 − equity ratio) and the loan whose largest 12-month
    service (principal and interest, by the product's repayment method, at the offer's rate), with
    the existing loans' annual service, the annual cash flow covers `min_dscr` times; each rounded
    down, capped; nothing beyond the longest tenor. Amounts are 0 when refused or closed to the
    applicant."""

    project: Project
    product: Product
    open_to_applicant: bool
    tenor_refused: bool
    max_tenor_years: int
    min_equity_ratio: Decimal
    min_dscr: Decimal
    by_equity_fen: int
    by_cash_flow_fen: int
    max_fen: int
    limit_fen: int
    approved_fen: int
    rate_annual: Decimal = Decimal(0)  # the rate the service is computed at
    service_factor: Decimal = Decimal(0)  # the largest 12-month service per fen lent
    existing_debt_fen: int | None = None  # the bureau's existing loans (None: not evidenced, counted as none, and referred)
    existing_service_fen: int = 0  # their assumed annual service
    available_service_fen: int = 0  # cash flow ÷ DSCR − existing service: what the new loan may ask a year

    @property
    def dscr_at_limit(self) -> Decimal | None:
        """The debt-service cover at the limit (None when nothing is lent)."""
        service = self.limit_fen * self.service_factor + self.existing_service_fen
        return None if self.limit_fen == 0 or service <= 0 else (Decimal(self.project.annual_cash_flow_fen) / service).quantize(Decimal("0.01"))

    @property
    def sized(self) -> bool:
        return self.open_to_applicant and not self.tenor_refused

    @property
    def offered(self) -> bool:
        return self.sized and self.limit_fen > 0


@dataclass(frozen=True)
class Price:
    """LPR of the loan's term + spread(product, risk grade) − tech discount, not below LPR + floor;
    a preferential certification caps the rate at LPR + the bundle's preferential level."""

    lpr: Decimal
    lpr_tenor: str  # "one_year" | "over_five_year": which LPR, by the term
    term_months: int
    spread_bp: int
    discount_bp: int
    grid_rate: Decimal  # LPR + spread + gap spread
    floor_rate: Decimal  # LPR + floor
    base_rate: Decimal  # max(floor, grid − discount), before preferences
    preferred: tuple[str, ...]  # certifications that earn the preference, sorted
    preference_applied: bool
    rate_annual: Decimal
    annualized_rate: Decimal  # 年化利率: the IRR of the loan's cash flows, fees included, on a 365-day year
    gap_bp: int = 0  # the bundle's gap spread, when a source other than the required ones did not answer
    gaps: tuple[str, ...] = ()  # those sources, sorted


@dataclass(frozen=True)
class PricedOffer:
    product: Product
    limit_fen: int
    approved_fen: int
    components: dict[str, int]
    price: Price

    def __post_init__(self) -> None:
        assert 0 <= self.approved_fen <= self.limit_fen and self.limit_fen > 0  # a positive limit, approved within it


@dataclass(frozen=True)
class InclusiveFlag:
    """普惠型小微: `small_micro` is None when the size cannot be told (a measure that would make
    the enterprise medium-sized is not evidenced); `flagged` needs a small or micro enterprise
    whose total credit is positive and at most the bundle's maximum."""

    small_micro: bool | None
    headcount: int | None
    revenue_fen: int | None
    total_credit_fen: int
    max_total_credit_fen: int
    flagged: bool


def inclusive_small_micro(bundle: PolicyBundle, f: PolicyFeatures, total_credit_fen: int) -> InclusiveFlag:
    flag = rules.inclusive(SCALAR, bundle, f.headcount, f.revenue_fen, total_credit_fen)
    return InclusiveFlag(flag["small_micro"], f.headcount, f.revenue_fen, total_credit_fen, bundle.inclusive.max_total_credit_fen, flag["flagged"])


# -- the whole decision --------------------------------------------------------------------


@dataclass(frozen=True)
class GuaranteedPortion:
    """担保快贷: the guarantee offered ÷ the guarantor's coverage ratio, rounded down, capped; 0 when closed to the applicant."""

    product: Product
    guarantee_fen: int
    coverage_ratio: Decimal
    max_fen: int
    open_to_applicant: bool
    limit_fen: int
    approved_fen: int


@dataclass(frozen=True)
class Decision:
    """Every number of one evaluation, step by step (None: the step did not run)."""

    general: GeneralEligibility
    credit_eligibility: CreditEligibility | None
    credit: CreditPortion | None
    collateral: CollateralCapacity | None
    secured: SecuredPortion | None
    secured_offer: PricedOffer | None
    credit_offer: PricedOffer | None
    project: ProjectSizing | None
    project_offer: PricedOffer | None
    offers: tuple[PricedOffer, ...]
    comprehensive_limit_fen: int
    approved_fen: int
    outcome: Outcome
    requested_fen: int | None
    inclusive: InclusiveFlag
    guaranteed: GuaranteedPortion | None = None
    guaranteed_offer: PricedOffer | None = None


def rule_inputs(f: PolicyFeatures, collateral: tuple[Collateral, ...], scores: Scores, app: Application) -> rules.Inputs:
    """What the rules read, from one application's typed records."""
    p = app.project
    return rules.Inputs(
        revenue_fen=f.revenue_fen,
        tax_total_fen=f.tax_total_fen,
        tax_credit_grade=f.tax_credit_grade,
        overdue_count_24m=f.overdue_count_24m,
        max_overdue_days_24m=f.max_overdue_days_24m,
        headcount=f.headcount,
        loans_outstanding_fen=f.loans_outstanding_fen,
        secured_debt_fen=f.secured_debt_fen,
        certifications=f.certifications,
        sources_not_read=f.sources_not_read,
        sources_unavailable=f.sources_unavailable,
        tech_grade=scores.tech_grade,
        tech_most_pass=scores.tech_most_pass,
        risk_pd=scores.risk_pd,
        has_bank_account=app.has_bank_account,
        has_project=p is not None,
        capex_fen=0 if p is None else p.capex_fen,
        annual_cash_flow_fen=0 if p is None else p.annual_cash_flow_fen,
        tenor_years=None if p is None else p.tenor_years,
        collateral=collateral[:MAX_COLLATERAL_ASSETS],
        guarantee_fen=app.guarantee_fen,
    )


def _rate(bp: int) -> Decimal:
    return Decimal(bp) * BP


def _price(v: dict[str, Any], f: PolicyFeatures, bundle: PolicyBundle) -> Price:
    return Price(
        lpr=_rate(v["lpr_bp"]),
        lpr_tenor=v["lpr_tenor"],
        term_months=v["term_months"],
        spread_bp=v["spread_bp"],
        discount_bp=v["discount_bp"],
        grid_rate=_rate(v["grid_bp"]),
        floor_rate=_rate(v["floor_bp"]),
        base_rate=_rate(v["base_bp"]),
        preferred=tuple(sorted(f.certifications & set(bundle.pricing.preferential_certifications))),
        preference_applied=v["preference_applied"],
        rate_annual=_rate(v["rate_bp"]),
        annualized_rate=Decimal(v["annualized_rate"]),
        gap_bp=v["gap_bp"],
        gaps=tuple(sorted(f.sources_unavailable)),
    )


@dataclass(frozen=True)
class Sized:
    """What a search asks of an evaluation (`size`): its outcome, its comprehensive limit and the part approved."""

    outcome: Outcome
    comprehensive_limit_fen: int
    approved_fen: int


def size(bundle: PolicyBundle, f: PolicyFeatures, collateral: tuple[Collateral, ...], scores: Scores, app: Application, as_of: date) -> Sized:
    """`decide`'s outcome, comprehensive limit and approved part, from the same rules run without pricing the offers
    (none of the three reads a price) and without the steps' records."""
    tech_grade(bundle, scores.tech_grade)
    check_pd(scores.risk_pd)
    v = rules.decide(SCALAR, bundle, rule_inputs(f, collateral, scores, app), as_of, priced=False)
    return Sized(Outcome(v["outcome"]), v["comprehensive_limit_fen"], v["approved_fen"])


def decide(bundle: PolicyBundle, f: PolicyFeatures, collateral: tuple[Collateral, ...], scores: Scores, app: Application, as_of: date) -> Decision:
    """Run the rules (`sandu.policy.rules`) on one application and keep each step's numbers as its record;
    a step that did not run has no record (None)."""
    tech_grade(bundle, scores.tech_grade)
    check_pd(scores.risk_pd)
    v = rules.decide(SCALAR, bundle, rule_inputs(f, collateral, scores, app), as_of)
    e, c, s, products = bundle.eligibility, bundle.credit, bundle.secured, bundle.products
    general = GeneralEligibility(
        tech_grade=scores.tech_grade,
        risk_grade=v["risk_grade"],
        risk_pd=scores.risk_pd,
        risk_reasons=tuple(scores.risk_reasons[:MAX_RISK_REASONS]),
        data_missing=v["data_missing"],
        required_gaps=tuple(src for src in bundle.required_sources if v[f"gap.{src}"]),
        on_required_gap=bundle.on_required_gap,
        risk_declined=v["risk_declined"],
        overdue_count_24m=f.overdue_count_24m,
        max_overdue_count_24m=e.max_overdue_count_24m,
        overdue_count_exceeded=v["overdue_count_exceeded"],
        overdue_days_24m=f.max_overdue_days_24m,
        max_overdue_days_24m=e.max_overdue_days_24m,
        overdue_days_exceeded=v["overdue_days_exceeded"],
    )
    credit_ok = credit = cap = secured = project = guaranteed = None
    if v["eligible"]:
        credit_ok = CreditEligibility(f.tax_total_fen, e.min_annual_tax_fen, v["tax_below_min"], f.tax_credit_grade, e.allowed_tax_credit_grades,
                                      v["tax_grade_refused"])
        assets = []
        for a in collateral[:MAX_COLLATERAL_ASSETS]:
            r = rules.asset_capacity(SCALAR, bundle, a)
            assets.append(AssetCapacity(asset=a, ltv=s.ltv.get(a.kind), value_fen=r["value_fen"], capacity_fen=r["capacity_fen"], pledged=r["pledged"]))
        cap = CollateralCapacity(assets=tuple(assets), capacity_fen=v["collateral_capacity_fen"], residual_fen=v["residual_fen"], pledged=v["combined"])
    if v["credit_eligible"]:
        assert f.tax_total_fen is not None and f.revenue_fen is not None  # credit eligibility requires both
        risk, grade = v["risk_grade"], scores.tech_grade
        credit = CreditPortion(
            quick=QuickMeasure(f.tax_total_fen, risk, c.quick_tax_multiplier[risk], c.quick_max_fen, v["quick_limit_fen"],
                               v["unsecured_debt_fen"] if c.quick_deducts_unsecured_debt else 0),
            tech=TechMeasure(v["tech_qualifies"], f.revenue_fen, c.tech_revenue_ratio, grade, bundle.tech_grade(grade).limit_multiplier, v["tech_limit_fen"],
                             v["unsecured_debt_fen"] if c.tech_deducts_unsecured_debt else 0),
            debt_known=f.loans_outstanding_fen is not None,
            product=None if v["credit_product"] is None else products[v["credit_product"]],
            tech_line=v["tech_line"],
            fast_track=v["fast_track"],
            limit_fen=v["credit_limit_fen"],
            approved_fen=v["credit_approved_fen"],
            open_to_applicant=v["credit_open"],
            uplift_fen=v["credit_uplift_fen"],
        )
    if v["secured_exists"]:
        combined = v["combined"]
        secured = SecuredPortion(
            product=products[v["secured_product"]],
            combined=combined,
            open_to_applicant=v["secured_open"],
            capacity_fen=v["collateral_capacity_fen"],
            residual_fen=v["residual_fen"],
            topup_cap_fen=v["topup_cap_fen"],
            topup_fen=v["topup_fen"],
            max_fen=s.combined_max_fen if combined else s.revolving_max_fen,
            limit_fen=v["secured_limit_fen"],
            approved_fen=v["secured_approved_fen"],
        )
    if v["guarantee_runs"]:
        g = bundle.guarantee
        guaranteed = GuaranteedPortion(products[g.product], app.guarantee_fen or 0, g.coverage_ratio, g.max_fen, v["guarantee_open"],
                                       v["guaranteed_limit_fen"], v["guaranteed_approved_fen"])
    if v["project_runs"]:
        assert app.project is not None
        cfg, service = bundle.project, v["annual_service_fen"]
        project = ProjectSizing(
            project=app.project,
            product=products[cfg.product],
            open_to_applicant=v["project_open"],
            tenor_refused=v["tenor_refused"],
            max_tenor_years=cfg.max_tenor_years,
            min_equity_ratio=cfg.min_equity_ratio,
            min_dscr=cfg.min_dscr,
            by_equity_fen=v["by_equity_fen"],
            by_cash_flow_fen=v["by_cash_flow_fen"],
            max_fen=cfg.max_fen,
            limit_fen=v["project_limit_fen"],
            approved_fen=v["project_approved_fen"],
            rate_annual=_rate(v["project_price"]["rate_bp"]),
            service_factor=Decimal(0) if service is None else Decimal(service) / rules.SERVICE_NOTIONAL_FEN,
            existing_debt_fen=f.loans_outstanding_fen,
            existing_service_fen=v["existing_service_fen"],
            available_service_fen=v["available_service_fen"],
        )

    def offer(slot: str, price: dict[str, Any], components: dict[str, int]) -> PricedOffer | None:
        if not v[f"{slot}.made"]:
            return None
        return PricedOffer(products[price["product"]], v[f"{slot}.limit_fen"], v[f"{slot}.approved_fen"], components, _price(price, f, bundle))

    if v["combined"]:
        secured_parts = {"collateral_fen": v["collateral_capacity_fen"], "residual_value_fen": v["residual_fen"], "credit_topup_fen": v["topup_fen"]}
    else:
        secured_parts = {"collateral_fen": v["collateral_capacity_fen"]}
    secured_offer = offer("secured", v["secured_price"], secured_parts)
    credit_offer = offer("credit", v["credit_price"], {"credit_fen": v["credit.limit_fen"]})
    guaranteed_offer = offer("guaranteed", v["guaranteed_price"], {"guaranteed_fen": v["guaranteed.limit_fen"], "guarantee_fen": app.guarantee_fen or 0})
    project_offer = offer("project", v["project_price"], {"project_fen": v["project.limit_fen"]})
    total = v["comprehensive_limit_fen"]
    return Decision(
        general=general,
        credit_eligibility=credit_ok,
        credit=credit,
        collateral=cap,
        secured=secured,
        secured_offer=secured_offer,
        credit_offer=credit_offer,
        project=project,
        project_offer=project_offer,
        offers=tuple(o for o in (secured_offer, credit_offer, guaranteed_offer, project_offer) if o is not None),
        comprehensive_limit_fen=total,
        approved_fen=v["approved_fen"],
        outcome=Outcome(v["outcome"]),
        requested_fen=app.requested_fen,
        inclusive=InclusiveFlag(v["small_micro"], f.headcount, f.revenue_fen, total, bundle.inclusive.max_total_credit_fen, v["inclusive_small_micro"]),
        guaranteed=guaranteed,
        guaranteed_offer=guaranteed_offer,
    )
