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
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any

from sandu.domain.dates import add_months
from sandu.domain.enums import Outcome
from sandu.domain.errors import InvalidInput, show
from sandu.domain.project import Project
from sandu.ledger.schedule import build_schedule
from sandu.policy.apr import annualized_rate
from sandu.policy.bundle import GRADE_ORDER, PolicyBundle, Product
from sandu.sources.profile import MAX_COLLATERAL_ASSETS, Collateral

BP = Decimal("0.0001")
YUAN_FEN = 100  # collateral values are taken to the whole yuan
MAX_RISK_REASONS = 3  # risk reasons quoted in a refusal
NOT_READ = ":not_read"  # quality flag of a source the consent did not cover
UNAVAILABLE = ":unavailable"  # quality flag of a source asked that gave no usable answer in time (a gap)


# -- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Application:
    has_bank_account: bool
    requested_fen: int | None = None
    project: Project | None = None


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
    )


# -- rounding and grades ------------------------------------------------------------------------------


def floor_to(amount: Decimal | int, unit: int) -> int:
    """`amount` rounded down to a multiple of `unit` (0 for amounts ≤ 0)."""
    return max(0, int((Decimal(amount) / unit).to_integral_value(rounding=ROUND_FLOOR)) * unit)


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


def risk_grade(bundle: PolicyBundle, pd: Decimal) -> str:
    """The best risk grade whose `max_pd` the probability of default does not exceed."""
    if not isinstance(pd, Decimal) or not pd.is_finite() or not 0 <= pd <= 1:
        raise InvalidInput("scores.risk_pd", f"must be a Decimal within 0..1, got {show(pd)}", "0..1")
    return next(g.grade for g in bundle.risk_grades if pd <= g.max_pd)


def grade_at_least(grade: str, minimum: str) -> bool:
    """`grade` is `minimum` or better (A is best)."""
    return GRADE_ORDER.index(grade) <= GRADE_ORDER.index(minimum)


# -- eligibility -------------------------------------------------------------------------


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


def _exceeds(value: int | None, limit: int) -> bool:
    """An absent count is no evidence of overdue history."""
    return value is not None and value > limit


def general_eligibility(bundle: PolicyBundle, f: PolicyFeatures, scores: Scores) -> GeneralEligibility:
    e = bundle.eligibility
    risk = risk_grade(bundle, scores.risk_pd)
    gaps = tuple(s for s in bundle.required_sources if s in f.sources_unavailable)
    missing = not gaps and (f.revenue_fen is None or f.overdue_count_24m is None or any(s in f.sources_not_read for s in bundle.required_sources))
    checked = not missing and not gaps  # with data missing or a required source silent, nothing else is checked
    return GeneralEligibility(
        tech_grade=tech_grade(bundle, scores.tech_grade),
        risk_grade=risk,
        risk_pd=scores.risk_pd,
        risk_reasons=tuple(scores.risk_reasons[:MAX_RISK_REASONS]),
        data_missing=missing,
        required_gaps=gaps,
        on_required_gap=bundle.on_required_gap,
        risk_declined=checked and risk in e.declined_risk_grades,
        overdue_count_24m=f.overdue_count_24m,
        max_overdue_count_24m=e.max_overdue_count_24m,
        overdue_count_exceeded=checked and _exceeds(f.overdue_count_24m, e.max_overdue_count_24m),
        overdue_days_24m=f.max_overdue_days_24m,
        max_overdue_days_24m=e.max_overdue_days_24m,
        overdue_days_exceeded=checked and _exceeds(f.max_overdue_days_24m, e.max_overdue_days_24m),
    )


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


def credit_eligibility(bundle: PolicyBundle, f: PolicyFeatures) -> CreditEligibility:
    e = bundle.eligibility
    return CreditEligibility(
        tax_total_fen=f.tax_total_fen,
        min_annual_tax_fen=e.min_annual_tax_fen,
        tax_below_min=f.tax_total_fen is None or f.tax_total_fen < e.min_annual_tax_fen,
        tax_credit_grade=f.tax_credit_grade,
        allowed_tax_credit_grades=e.allowed_tax_credit_grades,
        tax_grade_refused=f.tax_credit_grade not in e.allowed_tax_credit_grades,
    )


# -- the credit portion ------------------------------------------------------------------


@dataclass(frozen=True)
class QuickMeasure:
    """经营快贷: annual tax × the multiplier of the risk grade, rounded down, capped."""

    tax_total_fen: int
    risk_grade: str
    multiplier: Decimal
    max_fen: int
    limit_fen: int


def quick_measure(bundle: PolicyBundle, tax_total_fen: int, risk: str) -> QuickMeasure:
    c = bundle.credit
    multiplier = c.quick_tax_multiplier[risk]
    limit = min(floor_to(tax_total_fen * multiplier, c.round_down_fen), c.quick_max_fen)
    return QuickMeasure(tax_total_fen=tax_total_fen, risk_grade=risk, multiplier=multiplier, max_fen=c.quick_max_fen, limit_fen=limit)


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


def tech_measure(bundle: PolicyBundle, revenue_fen: int, grade: str, most_pass: bool) -> TechMeasure:
    c = bundle.credit
    qualifies = grade_at_least(grade, c.tech_min_grade) and most_pass
    multiplier = bundle.tech_grade(grade).limit_multiplier
    raw = Decimal(revenue_fen) * c.tech_revenue_ratio * multiplier
    limit = min(floor_to(raw, c.round_down_fen), c.tech_max_fen) if qualifies else 0
    return TechMeasure(qualifies=qualifies, revenue_fen=revenue_fen, revenue_ratio=c.tech_revenue_ratio, tech_grade=grade, multiplier=multiplier, limit_fen=limit)


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

    @property
    def offered(self) -> bool:
        return self.product is not None and self.open_to_applicant


def open_to_applicant(product: Product, app: Application) -> bool:
    """Products that need an account at the bank are not offered online to non-customers."""
    return app.has_bank_account or product.open_to_non_customers


def credit_portion(bundle: PolicyBundle, f: PolicyFeatures, g: GeneralEligibility, scores: Scores, app: Application) -> CreditPortion:
    """Only for applicants that passed general and credit eligibility (tax and revenue known)."""
    assert f.tax_total_fen is not None and f.revenue_fen is not None  # credit eligibility requires both
    c = bundle.credit
    quick = quick_measure(bundle, f.tax_total_fen, g.risk_grade)
    tech = tech_measure(bundle, f.revenue_fen, g.tech_grade, scores.tech_most_pass)
    tech_line = tech.limit_fen > quick.limit_fen
    fast = tech_line and g.tech_grade in c.fast_track_tech_grades and g.risk_grade in c.fast_track_risk_grades
    if tech_line:
        product: Product | None = bundle.products[c.tech_product]
        limit = tech.limit_fen
        approved = quick.limit_fen if fast else 0
    else:
        product = bundle.products[c.quick_product] if quick.limit_fen > 0 else None
        limit = approved = quick.limit_fen
    is_open = product is not None and open_to_applicant(product, app)
    return CreditPortion(
        quick=quick,
        tech=tech,
        product=product,
        tech_line=tech_line,
        fast_track=fast,
        limit_fen=limit,
        approved_fen=approved,
        open_to_applicant=is_open,
        uplift_fen=limit - quick.limit_fen if is_open else 0,
    )


# -- collateral and secured products -------------------------------------------------------


@dataclass(frozen=True)
class AssetCapacity:
    """One asset: appraised × LTV (to the yuan) − secured debt, never below 0.
    `ltv` is None for a kind the LTV table does not know; such an asset counts nothing."""

    asset: Collateral
    ltv: Decimal | None
    value_fen: int
    capacity_fen: int

    @property
    def pledged(self) -> bool:
        return self.ltv is not None and self.asset.secured_debt_fen > 0


@dataclass(frozen=True)
class CollateralCapacity:
    assets: tuple[AssetCapacity, ...]
    capacity_fen: int
    residual_fen: int  # 余值: capacity of assets that already secure debt
    pledged: bool  # some counted asset already secures debt


def collateral_capacity(bundle: PolicyBundle, assets: tuple[Collateral, ...]) -> CollateralCapacity:
    ltv = bundle.secured.ltv
    rows = []
    for a in assets[:MAX_COLLATERAL_ASSETS]:
        rate = ltv.get(a.kind)
        value = 0 if rate is None else floor_to(Decimal(a.appraised_value_fen) * rate, YUAN_FEN)
        rows.append(AssetCapacity(asset=a, ltv=rate, value_fen=value, capacity_fen=max(0, value - a.secured_debt_fen)))
    return CollateralCapacity(
        assets=tuple(rows),
        capacity_fen=sum(r.capacity_fen for r in rows),
        residual_fen=sum(r.capacity_fen for r in rows if r.pledged),
        pledged=any(r.pledged for r in rows),
    )


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


def authority(product: Product, limit_fen: int) -> int:
    """What the system may approve on its own for this product."""
    return min(limit_fen, product.auto_approve_max_fen)


def secured_portion(bundle: PolicyBundle, cap: CollateralCapacity, credit: CreditPortion | None, app: Application) -> SecuredPortion | None:
    if cap.capacity_fen <= 0:
        return None
    s, unit = bundle.secured, bundle.credit.round_down_fen
    combined = cap.pledged
    product = bundle.products[s.combined_product if combined else s.revolving_product]
    is_open = open_to_applicant(product, app)
    topup_cap = topup = 0
    if not is_open:
        limit = 0
    elif combined:
        topup_cap = floor_to(Decimal(cap.capacity_fen) * s.combined_topup_max_ratio, unit)
        topup = min(credit.limit_fen, topup_cap) if credit is not None and credit.offered else 0
        limit = min(floor_to(cap.capacity_fen + topup, unit), s.combined_max_fen)
    else:
        limit = min(floor_to(cap.capacity_fen, unit), s.revolving_max_fen)
    return SecuredPortion(
        product=product,
        combined=combined,
        open_to_applicant=is_open,
        capacity_fen=cap.capacity_fen,
        residual_fen=cap.residual_fen,
        topup_cap_fen=topup_cap,
        topup_fen=topup,
        max_fen=s.combined_max_fen if combined else s.revolving_max_fen,
        limit_fen=limit,
        approved_fen=authority(product, limit),
    )


# -- project -------------------------------------------------------------------------------


_SERVICE_NOTIONAL_FEN = 10**12  # the loan a service factor is measured on: large enough that fen rounding is noise
_SERVICE_START = date(2001, 1, 15)  # any date: a schedule's amounts depend on its months, not on the calendar


@lru_cache(maxsize=4096)
def annual_service_factor(method: str, rate: Decimal, months: int, basis_days: int) -> Decimal:
    """The most a loan of 1 fen asks in any 12 consecutive instalments, principal and interest, by its
    repayment method — from the ledger's own schedule (`sandu.ledger.schedule`), so the policy sizes on
    the payments the loan will really ask: 等额本息 12 annuities; 等额本金 its first year; 按月付息到期还本
    its last year, balloon included."""
    assert 1 <= months <= 600 and Decimal(0) <= rate <= 1
    schedule = build_schedule(method, _SERVICE_NOTIONAL_FEN, rate, _SERVICE_START, add_months(_SERVICE_START, months), basis_days=basis_days)
    due = [i.principal_fen + i.interest_fen for i in schedule]
    window = min(12, len(due))
    most = max(sum(due[k:k + window]) for k in range(len(due) - window + 1))
    return Decimal(most) / _SERVICE_NOTIONAL_FEN


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


def project_sizing(bundle: PolicyBundle, p: Project, app: Application, f: PolicyFeatures, rate: Decimal) -> ProjectSizing:
    cfg, unit = bundle.project, bundle.credit.round_down_fen
    product = bundle.products[cfg.product]
    is_open = open_to_applicant(product, app)
    refused = is_open and p.tenor_years > cfg.max_tenor_years
    by_equity = by_cash = limit = existing_service = available = 0
    factor = Decimal(0)
    if is_open and not refused:
        by_equity = floor_to(Decimal(p.capex_fen) * (1 - cfg.min_equity_ratio), unit)
        factor = annual_service_factor(product.repayment_method, rate, p.tenor_years * 12, product.basis_days)
        existing_service = int(Decimal(f.loans_outstanding_fen or 0) * cfg.existing_debt_annual_service_ratio)
        available = max(0, int(Decimal(p.annual_cash_flow_fen) / cfg.min_dscr) - existing_service)
        by_cash = floor_to(Decimal(available) / factor, unit)
        limit = min(by_equity, by_cash, cfg.max_fen)
    approved = authority(product, limit) if f.loans_outstanding_fen is not None else 0  # existing debt unknown: an officer decides
    return ProjectSizing(
        project=p,
        product=product,
        open_to_applicant=is_open,
        tenor_refused=refused,
        max_tenor_years=cfg.max_tenor_years,
        min_equity_ratio=cfg.min_equity_ratio,
        min_dscr=cfg.min_dscr,
        by_equity_fen=by_equity,
        by_cash_flow_fen=by_cash,
        max_fen=cfg.max_fen,
        limit_fen=limit,
        approved_fen=approved,
        rate_annual=rate,
        service_factor=factor,
        existing_debt_fen=f.loans_outstanding_fen,
        existing_service_fen=existing_service,
        available_service_fen=available,
    )


# -- pricing -------------------------------------------------------------------------------


def term_months(product: Product, app: Application) -> int:
    """The term of a loan under `product`: a project loan's is the project's tenor; any other's
    is the product's drawing term (a revolving line's 12-month rule)."""
    if product.kind == "project" and app.project is not None:
        return app.project.tenor_years * 12
    return product.max_drawing_months


APR_NOTIONAL_FEN = 1_200_000_000  # the loan (1,200万) an offer's 年化利率 is measured on: fen rounding is noise, and
# any whole bp of annual fee splits into whole fen per monthly or quarterly period


def offer_annualized_rate(product: Product, rate: Decimal, months: int, as_of: date) -> Decimal:
    """年化利率 of a loan of `product` at `rate` over `months` drawn on `as_of`: the IRR of its cash flows,
    fees included (`sandu.policy.apr`) — 等额本息 with no fee gives the rate itself, a /360 revolving line
    rate × 365/360."""
    periods_per_year = 12 if product.settlement == "monthly" else 4
    return _annualized(product.repayment_method, rate, months, product.basis_days, product.settlement.value,
                       APR_NOTIONAL_FEN * product.upfront_fee_bp // 10_000,
                       APR_NOTIONAL_FEN * product.annual_fee_bp // 10_000 // periods_per_year, as_of)


@lru_cache(maxsize=4096)
def _annualized(method: str, rate: Decimal, months: int, basis_days: int, settlement: str, upfront_fen: int, periodic_fen: int,
                start: date) -> Decimal:
    return annualized_rate(APR_NOTIONAL_FEN, rate, months, method, basis_days=basis_days, upfront_fee_fen=upfront_fen,
                           periodic_fee_fen=periodic_fen, start=start, settlement=settlement)


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


def price(bundle: PolicyBundle, product: Product, risk: str, tech: str, certifications: frozenset[str], as_of: date,
          gaps: frozenset[str] = frozenset(), *, months: int) -> Price:
    pr = bundle.pricing
    fixing = bundle.lpr_on(as_of)
    tenor = bundle.lpr_tenor(months)
    lpr = fixing.one_year if tenor == "one_year" else fixing.over_five_year
    spread = pr.spread_bp[product.code][risk]
    discount = bundle.tech_grade(tech).discount_bp
    gap_bp = bundle.gap_spread_bp if gaps else 0
    grid = lpr + (spread + gap_bp) * BP
    floor = lpr + pr.floor_bp_vs_lpr * BP
    base = max(floor, grid - discount * BP)
    preferred = tuple(sorted(certifications & set(pr.preferential_certifications)))
    level = lpr + pr.preferential_max_bp_vs_lpr * BP
    applied = bool(preferred) and base > level
    rate = level if applied else base
    return Price(
        lpr=lpr,
        lpr_tenor=tenor,
        term_months=months,
        spread_bp=spread,
        discount_bp=discount,
        grid_rate=grid,
        floor_rate=floor,
        base_rate=base,
        preferred=preferred,
        preference_applied=applied,
        rate_annual=rate,
        annualized_rate=offer_annualized_rate(product, rate, months, as_of),
        gap_bp=gap_bp,
        gaps=tuple(sorted(gaps)),
    )


@dataclass(frozen=True)
class PricedOffer:
    product: Product
    limit_fen: int
    approved_fen: int
    components: dict[str, int]
    price: Price

    def __post_init__(self) -> None:
        assert 0 <= self.approved_fen <= self.limit_fen and self.limit_fen > 0  # a positive limit, approved within it


# -- 普惠型小微 ----------------------------------------------------------------------------------


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
    cfg = bundle.inclusive
    below = [f.headcount is not None and f.headcount < cfg.medium_min_headcount,
             f.revenue_fen is not None and f.revenue_fen < cfg.medium_min_revenue_fen]
    known = f.headcount is not None and f.revenue_fen is not None
    small_micro = True if any(below) else (False if known else None)  # medium needs both measures at or above
    flagged = small_micro is True and 0 < total_credit_fen <= cfg.max_total_credit_fen
    return InclusiveFlag(small_micro, f.headcount, f.revenue_fen, total_credit_fen, cfg.max_total_credit_fen, flagged)


# -- the whole decision --------------------------------------------------------------------


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


def outcome(offers: tuple[PricedOffer, ...]) -> Outcome:
    total = sum(o.limit_fen for o in offers)
    approved = sum(o.approved_fen for o in offers)
    if not offers:
        return Outcome.DECLINE
    if approved == total:
        return Outcome.APPROVE
    return Outcome.PARTIAL if approved > 0 else Outcome.REFER


def decide(bundle: PolicyBundle, f: PolicyFeatures, collateral: tuple[Collateral, ...], scores: Scores, app: Application, as_of: date) -> Decision:
    """Run the steps in order (see the module docstring)."""
    general = general_eligibility(bundle, f, scores)
    credit_ok = credit = cap = secured = project = None
    secured_offer = credit_offer = project_offer = None

    def priced(product: Product, limit: int, approved: int, components: dict[str, int]) -> PricedOffer:
        p = price(bundle, product, general.risk_grade, general.tech_grade, f.certifications, as_of, f.sources_unavailable,
                  months=term_months(product, app))
        return PricedOffer(product=product, limit_fen=limit, approved_fen=approved, components=components, price=p)

    if general.eligible:
        credit_ok = credit_eligibility(bundle, f)
        if credit_ok.eligible:
            credit = credit_portion(bundle, f, general, scores, app)
        cap = collateral_capacity(bundle, collateral)
        secured = secured_portion(bundle, cap, credit, app)
        if secured is not None and secured.offered:
            if secured.combined:
                comps = {"collateral_fen": secured.capacity_fen, "residual_value_fen": secured.residual_fen, "credit_topup_fen": secured.topup_fen}
            else:
                comps = {"collateral_fen": secured.capacity_fen}
            secured_offer = priced(secured.product, secured.limit_fen, secured.approved_fen, comps)
        if credit is not None and credit.offered and not (secured is not None and secured.replaces_credit):
            assert credit.product is not None
            credit_offer = priced(credit.product, credit.limit_fen, credit.approved_fen, {"credit_fen": credit.limit_fen})
        if app.project is not None:
            product = bundle.products[bundle.project.product]
            rate = price(bundle, product, general.risk_grade, general.tech_grade, f.certifications, as_of, f.sources_unavailable,
                         months=term_months(product, app)).rate_annual  # sized at the rate it will be priced at
            project = project_sizing(bundle, app.project, app, f, rate)
            if project.offered:
                project_offer = priced(project.product, project.limit_fen, project.approved_fen, {"project_fen": project.limit_fen})
    offers = tuple(o for o in (secured_offer, credit_offer, project_offer) if o is not None)
    total = sum(o.limit_fen for o in offers)
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
        offers=offers,
        comprehensive_limit_fen=total,
        approved_fen=sum(o.approved_fen for o in offers),
        outcome=Outcome.REFER if general.required_gaps and bundle.on_required_gap == "refer" else outcome(offers),
        requested_fen=app.requested_fen,
        inclusive=inclusive_small_micro(bundle, f, total),
    )
