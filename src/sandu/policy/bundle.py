"""Load and validate a versioned policy bundle (TOML) into typed, frozen models.

The bundle's identity is its content hash: two decisions made under the same
hash used exactly the same rules. Loading fails loudly when the file is not a
well-formed bundle — a bad policy never reaches a decision. Every refusal is a
`PolicyError` whose message starts with the dotted path of the offending key
(`credit.tech_revenue_ratio: missing`, `lpr[1].one_year: …`) and says why.

What the models guarantee, so that the engine never meets a surprise:

- every key is present and no unknown key is accepted (``extra="forbid"``);
- types are exact: decimals are written as strings (``"0.70"``) and become
  `Decimal`; integers stay integers (a float or a bool is refused); closed sets
  (grades, tenors, kinds, settlement, repayment methods) are checked;
- values are in range: LTVs and ratios within 0..1, rates within 0..1, basis
  days 360 or 365, amounts within 0..`MAX_AMOUNT_FEN`, a rounding unit ≥ 1 fen;
- the tables are ordered as they read: LPR fixings by date, tech grades in the
  order of `GRADE_ORDER` (which score earns which grade is the tech config's
  business, `sandu.scoring.tech_config`: here a grade earns a limit multiplier and
  a price discount), risk grades from the best (lowest ``max_pd``) up to a grade
  with ``max_pd = "1"``, grade letters following `GRADE_ORDER`;
- every reference resolves: the products named by ``credit``, ``secured`` and
  ``project`` exist and are of the right kind; every product has a spread and
  a quick-loan multiplier exists for every risk grade that is not declined;
  every grade named anywhere is a grade of its table; a price floor above the
  preferential price level is refused while preferential certifications exist;
  the LPR table's valid-through date is not before its latest fixing;
- the approval-authority matrix names approving roles and products of the bundle (or "*"), each pair once,
  with a maximum in fen that is not negative;
- each early-warning rule (``[[early_warning]]``; an empty list raises no alert) has its own id, watches a numeric profile feature
  (`sandu.sources.profile.FEATURE_KINDS`) or the days past due here, with a threshold its kind can compare
  (a drop: a fraction of the previous value in 0..1 of an amount or a count; a rise: a whole count ≥ 1; days past
  due: whole days), and proposes review, freeze or reduce_limit — the last with the share of the limit to keep.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from sandu.domain.enums import Settlement
from sandu.domain.errors import InvalidInput, PolicyOutdated, show
from sandu.domain.money import MAX_AMOUNT_FEN
from sandu.domain.numbers import decimal_string
from sandu.ledger.journal import LOAN_BUCKETS
from sandu.ledger.overdue import MAX_GRACE_DAYS, MAX_THRESHOLD_DAYS, OverduePolicy
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import FEATURE_KINDS

__all__ = [
    "GRADE_ORDER",
    "ApprovalAuthority",
    "EarlyWarningRule",
    "BundleFile",
    "LprFixing",
    "PolicyBundle",
    "PolicyError",
    "Product",
    "TechGrade",
    "RiskGrade",
    "bundle_from_document",
    "load_bundle",
    "parse_bundle",
]

DEFAULT_BUNDLE = "default.toml"
GRADE_ORDER = ("A", "B", "C", "D", "E")
BASIS_DAYS = (360, 365)
MAX_LPR_FIXINGS = 1_200  # a century of monthly fixings
MAX_PRODUCTS = 100
MAX_TABLE_KEYS = 100  # collateral kinds, certifications
MAX_BUNDLE_FILES = 100  # bundles `sandu policy check` reads from one folder
MAX_SHOWN_ERRORS = 5  # a refusal lists this many problems, then says how many more

Grade = Literal["A", "B", "C", "D", "E"]
TaxCreditGrade = Literal["A", "B", "M", "C", "D"]
Tenor = Literal["one_year", "over_five_year"]  # which LPR a loan prices off, by its term (`sandu.policy.rules`)
ProductKind = Literal["credit", "secured", "project", "guaranteed"]
RepaymentMethod = Literal["随借随还", "按月付息到期还本", "等额本息", "等额本金"]
TENORS: tuple[str, ...] = get_args(Tenor)
PRODUCT_KINDS: tuple[str, ...] = get_args(ProductKind)


class PolicyError(ValueError):
    """The policy file is not a valid bundle. `path` is the dotted key of the first
    problem (``""`` for the file as a whole), `reason` says why; the message is
    ``"<path>: <reason>"`` and lists a few further problems when there are any."""

    def __init__(self, path: str, reason: str, more: Sequence[tuple[str, str]] = ()):
        problems = [(path, reason), *more]
        shown = "; ".join(f"{p}: {r}" if p else r for p, r in problems[:MAX_SHOWN_ERRORS])
        hidden = len(problems) - MAX_SHOWN_ERRORS
        super().__init__(shown + (f" (and {hidden} more)" if hidden > 0 else ""))
        self.path = path
        self.reason = reason
        self.problems = tuple(problems)


class _Refused(ValueError):
    """Raised by the bundle's own checks as ``_Refused(path, reason)``; `path` starts at the top."""


# -- field types -----------------------------------------------------------------------


_decimal_string = decimal_string("0.70")


def _iso_date(value: Any) -> date:
    if type(value) is date:
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("date_string", 'must be a date like "2025-05-20", got {got}', {"got": show(value)})
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_string", 'must be a date like "2025-05-20", got {got}', {"got": show(value)}) from None


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    seen = set()
    for v in values:
        if v in seen:
            raise PydanticCustomError("unique", "{got} is listed twice", {"got": show(v)})
        seen.add(v)
    return values


def _basis_days(value: int) -> int:
    if value not in BASIS_DAYS:
        raise PydanticCustomError("basis_days", "must be 360 or 365 (days in the interest year), got {got}", {"got": show(value)})
    return value


def _known_source(values: tuple[str, ...]) -> tuple[str, ...]:
    for v in values:
        if v not in ALL_SOURCES:
            raise PydanticCustomError("source", "{got} is not a data source (allowed: {allowed})", {"got": show(v), "allowed": ", ".join(ALL_SOURCES)})
    return values


Fraction = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0, le=1)]  # LTV, ratios
def _whole_bp(value: Decimal) -> Decimal:
    """LPR is fixed in whole basis points; both forms of the engine price in them (`sandu.policy.rules`)."""
    if (value * 10_000) % 1:
        raise PydanticCustomError("whole_bp", 'must be a whole basis point (4 decimal places, e.g. "0.0310")')
    return value.quantize(Decimal("0.0001"))


Rate = Annotated[Decimal, BeforeValidator(_decimal_string), Field(gt=0, lt=1)]
BpRate = Annotated[Rate, AfterValidator(_whole_bp)]
Multiplier = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0, le=100)]
Fen = Annotated[int, Field(ge=0, le=MAX_AMOUNT_FEN)]
Bp = Annotated[int, Field(ge=-10_000, le=10_000)]  # basis points, within ±100 %
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=50)]
Grades = Annotated[tuple[Grade, ...], Strict(False), AfterValidator(_unique)]  # TOML arrays are lists
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _allocation_order(values: tuple[str, ...]) -> tuple[str, ...]:
    if sorted(values) != sorted(LOAN_BUCKETS):
        raise PydanticCustomError("allocation_order", "must list each of {allowed} exactly once, got {got}",
                                  {"allowed": ", ".join(LOAN_BUCKETS), "got": show(list(values))})
    return values


def _thresholds(values: tuple[int, ...]) -> tuple[int, ...]:
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise PydanticCustomError("thresholds", "must increase strictly (关注, 次级, 可疑, 损失), got {got}", {"got": show(list(values))})
    return values


Uplift = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=Decimal("0.30"), le=Decimal("0.50"), decimal_places=6)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# -- the sections ----------------------------------------------------------------------


class BundleMeta(_Model):
    name: Name
    version: Name
    description: Annotated[str, StringConstraints(max_length=2_000)]


class LprFixing(_Model):
    published_on: IsoDate
    one_year: BpRate
    over_five_year: BpRate


class Sources(_Model):
    required: Annotated[tuple[str, ...], Strict(False), Field(min_length=1), AfterValidator(_known_source), AfterValidator(_unique)]
    # A source asked that gave no usable answer in time (a gap): a required one refers the
    # application to an officer (or declines it); any other gap adds this spread to the price.
    on_required_gap: Literal["refer", "decline"]
    gap_spread_bp: Annotated[int, Field(ge=0, le=1_000)]


class TechGrade(_Model):
    """What a tech grade earns; the grade itself comes from the tech evaluation (its config's bands)."""

    grade: Grade
    limit_multiplier: Annotated[Decimal, BeforeValidator(_decimal_string), Field(gt=0, le=10)]
    discount_bp: Annotated[int, Field(ge=0, le=10_000)]


class RiskGrade(_Model):
    grade: Grade
    max_pd: Fraction


class Eligibility(_Model):
    declined_risk_grades: Grades
    min_annual_tax_fen: Fen
    allowed_tax_credit_grades: Annotated[tuple[TaxCreditGrade, ...], Strict(False), AfterValidator(_unique)]
    max_overdue_count_24m: Annotated[int, Field(ge=0)]
    max_overdue_days_24m: Annotated[int, Field(ge=0)]


class ExpectedLoss(_Model):
    """IFRS 9 / 新金融工具准则 staging and loss given default. Stage 3 (credit-impaired): more than `stage3_dpd` days
    past due, or classified in `stage3_classes`; stage 2 (a significant increase in credit risk): more than
    `stage2_dpd` days past due, or a risk grade `stage2_grade_downgrade` grades worse than at origination; stage 1
    otherwise. ECL = PD × LGD × EAD: 12-month PD in stage 1, lifetime PD over the remaining term in stage 2, 1 in
    stage 3; LGD by product kind; EAD = what is owed + `ccf` × the undrawn part of an active revolving line."""

    stage2_dpd: Annotated[int, Field(ge=0, le=3_650)]
    stage2_grade_downgrade: Annotated[int, Field(ge=1, le=4)]
    stage3_dpd: Annotated[int, Field(ge=0, le=3_650)]
    stage3_classes: Annotated[tuple[Literal["special_mention", "substandard", "doubtful", "loss"], ...], Strict(False)]
    ccf: Fraction
    lgd: dict[ProductKind, Fraction]


class Inclusive(_Model):
    """普惠型小微企业贷款: a small or micro enterprise whose total credit (单户授信总额) is at most
    `max_total_credit_fen`. An enterprise is medium-sized or larger (not small or micro) when it has
    at least `medium_min_headcount` staff AND at least `medium_min_revenue_fen` revenue
    (工信部联企业〔2011〕300号, the industrial thresholds: 300 people, 2,000万元)."""

    medium_min_headcount: Annotated[int, Field(ge=1, le=1_000_000)]
    medium_min_revenue_fen: Fen
    max_total_credit_fen: Fen


class Credit(_Model):
    quick_product: Code
    quick_tax_multiplier: dict[Grade, Multiplier]
    quick_max_fen: Fen
    tech_product: Code
    tech_min_grade: Grade
    tech_revenue_ratio: Fraction
    tech_max_fen: Fen
    fast_track_tech_grades: Grades
    fast_track_risk_grades: Grades
    round_down_fen: Annotated[int, Field(ge=1, le=MAX_AMOUNT_FEN)]
    # Existing unsecured debt (the bureau's loans less its secured debt) is deducted from a measure before its
    # cap when its formula says so; when the bureau does not give the loans, nothing is approved without an officer.
    quick_deducts_unsecured_debt: bool
    tech_deducts_unsecured_debt: bool


class Secured(_Model):
    ltv: Annotated[dict[Code, Fraction], Field(max_length=MAX_TABLE_KEYS)]
    revolving_product: Code
    revolving_max_fen: Fen
    combined_product: Code
    combined_topup_max_ratio: Fraction
    combined_max_fen: Fen


class ProjectPolicy(_Model):
    product: Code
    min_equity_ratio: Fraction
    # Debt-service cover: the project's annual cash flow ÷ (the most the new loan asks in any 12 months, principal
    # and interest, by its repayment method + the existing loans' annual service) must be at least this.
    min_dscr: Annotated[Decimal, BeforeValidator(_decimal_string), Field(gt=0, le=100)]
    # The credit bureau gives existing loans' balances, not their terms: they are taken to ask this share of
    # their balance a year (principal over an average remaining term, plus interest).
    existing_debt_annual_service_ratio: Fraction
    max_tenor_years: Annotated[int, Field(ge=1, le=50)]
    max_fen: Fen


class GuaranteePolicy(_Model):
    # 担保: a guarantee the applicant has arranged (a financing guarantee company's letter for `guarantee_fen`) backs a
    # credit line of guarantee ÷ coverage_ratio (the guarantor covers that share of every fen lent), rounded down, capped.
    product: Code
    coverage_ratio: Annotated[Decimal, BeforeValidator(_decimal_string), Field(gt=0, le=1)]
    max_fen: Fen


class Pricing(_Model):
    # The LPR table is known current through this day; a decision after it is refused until the table is updated.
    lpr_valid_through: IsoDate
    # A loan whose term is at most this many months prices off the 1-year LPR; a longer one off the over-5-year LPR.
    one_year_lpr_max_term_months: Annotated[int, Field(ge=1, le=600)]
    floor_bp_vs_lpr: Bp
    preferential_certifications: Annotated[tuple[Name, ...], Strict(False), Field(max_length=MAX_TABLE_KEYS), AfterValidator(_unique)]
    # The preferential certifications' price level: at most LPR + this (0: at the LPR).
    preferential_max_bp_vs_lpr: Bp
    spread_bp: Annotated[dict[Code, dict[Grade, Bp]], Field(max_length=MAX_PRODUCTS)]


class Product(_Model):
    code: str  # the key of its table (checked there), filled in by the bundle
    name: Name
    kind: ProductKind
    revolving: bool
    repayment_method: RepaymentMethod
    validity_months: Annotated[int, Field(ge=1, le=600)]
    max_drawing_months: Annotated[int, Field(ge=1, le=600)]
    basis_days: Annotated[int, AfterValidator(_basis_days)]
    settlement: Annotated[Settlement, Strict(False)]
    auto_approve_max_fen: Fen
    open_to_non_customers: bool
    interest_with_principal: bool  # 利随本清: a repayment first settles the interest accrued to the day before
    penalty_uplift: Uplift  # penalty rate = contract rate × (1 + uplift), on overdue principal and (复利) overdue interest
    grace_days: Annotated[int, Field(ge=0, le=MAX_GRACE_DAYS)]  # days after a due date before an unpaid amount is overdue
    allocation_order: Annotated[tuple[str, ...], Strict(False), AfterValidator(_allocation_order)]  # 还款冲抵顺序
    # Fees the borrower pays, in basis points of the amount lent: at drawing (upfront) and each year (taken with each
    # instalment or settlement, pro rata). Both enter the annualized rate (年化利率, `sandu.policy.apr`).
    upfront_fee_bp: Annotated[int, Field(ge=0, le=1_000)]
    annual_fee_bp: Annotated[int, Field(ge=0, le=1_000)]


ApprovingRole = Literal["officer", "approver"]  # the roles that approve a referred offer (sandu.security.authz: decisions.approve)
APPROVING_ROLES: tuple[str, ...] = get_args(ApprovingRole)
ANY_PRODUCT = "*"


class ApprovalAuthority(_Model):
    """One row of the approval-authority matrix (分级审批): the most a `role` may approve of a `product` (or of any
    product without a row of its own: "*"), in fen. A person's binding limit is the smaller of this and their own
    authority (`users.authority_fen`); `sandu.origination.service.approve_offer` enforces both."""

    role: ApprovingRole
    product: Annotated[str, StringConstraints(pattern=r"^(\*|[a-z][a-z0-9_]*)$", max_length=50)]
    max_fen: Fen


class Classification(_Model):
    """五级分类 by days past due: the DPD above which a drawing is at least 关注, 次级, 可疑, 损失,
    and the days at DPD 0 that earn a one-step improvement."""

    thresholds_dpd: Annotated[tuple[int, int, int, int], Strict(False), AfterValidator(_thresholds)]
    upgrade_after_days: Annotated[int, Field(ge=1, le=MAX_THRESHOLD_DAYS)]


WatchKind = Literal["drop", "rise", "at_most", "at_least", "dpd_above"]
WATCH_KINDS: tuple[str, ...] = get_args(WatchKind)
PROFILE_WATCHES = ("drop", "rise", "at_most", "at_least")  # compare profile features; dpd_above reads the ledger
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
WarningAction = Literal["review", "freeze", "reduce_limit"]
WARNING_ACTIONS: tuple[str, ...] = get_args(WarningAction)


class EarlyWarningRule(_Model):
    """One post-loan early-warning rule (`sandu.policy.warning` evaluates it). `watch`:

    - ``drop``: `feature` fell between the previous and the refreshed profile by at least `threshold` (a fraction of
      the previous value: "0.30" is a drop of 30 % or more);
    - ``rise``: `feature` (a count) rose by at least `threshold` (whole things: court enforcements, overdue payments);
    - ``at_most`` / ``at_least``: `feature` of the refreshed profile is ≤ / ≥ `threshold`;
    - ``dpd_above``: a drawing of the line here is more than `threshold` days past due (no `feature`).

    The alert has the rule's `severity` and proposes its `action`; ``reduce_limit`` keeps `reduce_to` of the limit
    (never below what is drawn). The action takes effect only when an approver approves it."""

    id: Code
    watch: WatchKind
    feature: Code | None = None
    threshold: Annotated[Decimal, BeforeValidator(_decimal_string)]
    severity: Severity
    action: WarningAction
    reduce_to: Annotated[Decimal, BeforeValidator(_decimal_string)] | None = None
    description: Annotated[str, StringConstraints(min_length=1, max_length=500)]


# -- the bundle ------------------------------------------------------------------------


class BundleFile(_Model):
    """The TOML document, validated; `parse_bundle` turns it into a `PolicyBundle`."""

    meta: BundleMeta = Field(alias="bundle")
    lpr: Annotated[tuple[LprFixing, ...], Strict(False), Field(min_length=1, max_length=MAX_LPR_FIXINGS)]
    sources: Sources
    tech_grades: Annotated[tuple[TechGrade, ...], Strict(False), Field(min_length=1, max_length=len(GRADE_ORDER))]
    risk_grades: Annotated[tuple[RiskGrade, ...], Strict(False), Field(min_length=1, max_length=len(GRADE_ORDER))]
    eligibility: Eligibility
    credit: Credit
    secured: Secured
    project: ProjectPolicy
    guarantee: GuaranteePolicy
    pricing: Pricing
    products: Annotated[dict[Code, Product], Field(min_length=1, max_length=MAX_PRODUCTS)]
    classification: Classification
    inclusive: Inclusive
    expected_loss: ExpectedLoss
    approval_authority: Annotated[tuple[ApprovalAuthority, ...], Strict(False), Field(min_length=1, max_length=MAX_TABLE_KEYS)]
    early_warning: Annotated[tuple[EarlyWarningRule, ...], Strict(False), Field(max_length=MAX_TABLE_KEYS)]  # may be empty: no alerts

    @model_validator(mode="before")
    @classmethod
    def _product_codes(cls, data: Any) -> Any:
        """Each product table is keyed by its code; the code becomes the product's `code`."""
        if isinstance(data, dict) and isinstance(data.get("products"), dict):
            products = {code: {"code": code, **t} if isinstance(t, dict) else t for code, t in data["products"].items()}
            return {**data, "products": products}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> BundleFile:
        _check_tables(self)
        _check_references(self)
        _check_early_warning(self.early_warning)
        return self


def _non_declined(risk_grades: Sequence[RiskGrade], eligibility: Eligibility) -> tuple[str, ...]:
    return tuple(g.grade for g in risk_grades if g.grade not in eligibility.declined_risk_grades)


@dataclass(frozen=True)
class PolicyBundle:
    """A validated bundle, identified by the hash of the bytes it was parsed from.
    Build one with `parse_bundle` / `load_bundle`."""

    name: str
    version: str
    sha256: str
    lpr: tuple[LprFixing, ...]  # by publication date, oldest first
    required_sources: tuple[str, ...]
    on_required_gap: str  # "refer" | "decline"
    gap_spread_bp: int
    tech_grades: tuple[TechGrade, ...]  # best first, in GRADE_ORDER
    risk_grades: tuple[RiskGrade, ...]  # best (lowest max_pd) first; the last has max_pd 1
    eligibility: Eligibility
    credit: Credit
    secured: Secured
    project: ProjectPolicy
    guarantee: GuaranteePolicy
    pricing: Pricing
    products: dict[str, Product]
    classification: Classification
    inclusive: Inclusive
    expected_loss: ExpectedLoss
    approval_authority: tuple[ApprovalAuthority, ...] = ()  # the approval-authority matrix, in the bundle's order
    early_warning: tuple[EarlyWarningRule, ...] = ()  # post-loan early-warning rules, in the bundle's order

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def non_declined_risk_grades(self) -> tuple[str, ...]:
        """The risk grades that may receive an offer, best first."""
        return _non_declined(self.risk_grades, self.eligibility)

    def overdue_policy(self, product: str) -> OverduePolicy:
        """The overdue rules of `product` with the bundle's classification thresholds."""
        if product not in self.products:
            raise InvalidInput("product", f"{show(product)} is not a product of this bundle", ", ".join(self.products))
        return overdue_policy_of(self.products[product], self.classification)

    def approval_limit(self, role: str, product: str) -> int | None:
        """The most `role` may approve of `product` under the matrix: its own row, else the role's "*" row; None
        when the matrix gives the role no authority over the product."""
        rows = {(a.role, a.product): a.max_fen for a in self.approval_authority}
        own = rows.get((role, product))
        return own if own is not None else rows.get((role, ANY_PRODUCT))

    def tech_grade(self, grade: str) -> TechGrade:
        """The row of the tech grade table for `grade` (a grade of this bundle)."""
        return next(g for g in self.tech_grades if g.grade == grade)

    def lpr_on(self, as_of: date) -> LprFixing:
        """The latest fixing published on or before `as_of`; refused after the table's valid-through date."""
        valid_through = self.pricing.lpr_valid_through
        if as_of > valid_through:
            raise PolicyOutdated("as_of", f"the LPR table of policy {self.label} is valid through {valid_through.isoformat()}, and a decision on "
                                 f"{as_of.isoformat()} may need a fixing published after it; the bank must update the policy's LPR table first",
                                 f"{self.lpr[0].published_on.isoformat()} .. {valid_through.isoformat()}")
        fixings = [f for f in self.lpr if f.published_on <= as_of]
        if not fixings:
            raise InvalidInput("as_of", f"policy {self.label} has no LPR published on or before {as_of.isoformat()}", f"{self.lpr[0].published_on} or later")
        return fixings[-1]


def _ordered(values: Sequence[Any], path: str, field: str, what: str) -> None:
    """Refuse a table whose `field` values do not strictly increase."""
    for i in range(1, len(values)):
        before, now = getattr(values[i - 1], field), getattr(values[i], field)
        if now <= before:
            raise _Refused(f"{path}[{i}].{field}", f"{what}; {show(str(now))} follows {show(str(before))}")


def _check_tables(b: BundleFile) -> None:
    _ordered(b.lpr, "lpr", "published_on", "fixings must be listed by publication date, oldest first, each date once")
    for table, path in ((b.tech_grades, "tech_grades"), (b.risk_grades, "risk_grades")):
        order = [GRADE_ORDER.index(g.grade) for g in table]
        for i in range(1, len(order)):
            if order[i] <= order[i - 1]:
                raise _Refused(f"{path}[{i}].grade", f"grades must be listed in the order {'/'.join(GRADE_ORDER)}, each once; {table[i].grade} follows {table[i - 1].grade}")
    _ordered(b.risk_grades, "risk_grades", "max_pd", "must be listed from the best grade up, strictly increasing")
    if b.risk_grades[-1].max_pd != 1:
        raise _Refused(f"risk_grades[{len(b.risk_grades) - 1}].max_pd", 'the last grade must have max_pd "1" so that every value has a grade')


def _product_ref(b: BundleFile, path: str, code: str, kind: str) -> None:
    product = b.products.get(code)
    if product is None:
        raise _Refused(path, f"{show(code)} is not a product of this bundle (products: {', '.join(b.products)})")
    if product.kind != kind:
        raise _Refused(path, f"{show(code)} is a {product.kind} product; a {kind} product is needed here")


def _grades_in(values: Iterable[str], table: Sequence[TechGrade] | Sequence[RiskGrade], table_name: str, path: str) -> None:
    known = [g.grade for g in table]
    for v in values:
        if v not in known:
            raise _Refused(path, f"{v} is not a grade of {table_name} ({'/'.join(known)})")


def overdue_policy_of(product: Product, classification: Classification) -> OverduePolicy:
    return OverduePolicy(penalty_uplift=product.penalty_uplift, grace_days=product.grace_days,
                         thresholds=classification.thresholds_dpd, upgrade_after_days=classification.upgrade_after_days)


def _check_references(b: BundleFile) -> None:
    for code, product in b.products.items():
        try:
            overdue_policy_of(product, b.classification)
        except InvalidInput as error:
            field = {"thresholds": "thresholds_dpd"}.get(error.field, error.field)  # OverduePolicy's names → the bundle's keys
            where = f"products.{code}.{field}" if field in Product.model_fields else f"classification.{field}"
            raise _Refused(where, f"{error.reason} (allowed: {error.allowed})") from None
    for code, product in b.products.items():
        if product.code != code:
            raise _Refused(f"products.{code}.code", f"must be the table's key {code!r} (or be left out), got {show(product.code)}")
    _product_ref(b, "credit.quick_product", b.credit.quick_product, "credit")
    _product_ref(b, "credit.tech_product", b.credit.tech_product, "credit")
    _product_ref(b, "secured.revolving_product", b.secured.revolving_product, "secured")
    _product_ref(b, "secured.combined_product", b.secured.combined_product, "secured")
    _product_ref(b, "project.product", b.project.product, "project")
    _product_ref(b, "guarantee.product", b.guarantee.product, "guaranteed")
    for code, product in b.products.items():
        if product.kind not in b.expected_loss.lgd:
            raise _Refused(f"expected_loss.lgd.{product.kind}", f"missing: product {code} is a {product.kind} product and needs a loss given default")
    if b.products[b.project.product].repayment_method == "随借随还":
        raise _Refused(f"products.{b.project.product}.repayment_method", "must have a repayment schedule (按月付息到期还本, 等额本息 or 等额本金): "
                       "a project loan is sized on what its schedule asks each year")
    _grades_in(b.eligibility.declined_risk_grades, b.risk_grades, "risk_grades", "eligibility.declined_risk_grades")
    _grades_in(b.credit.fast_track_risk_grades, b.risk_grades, "risk_grades", "credit.fast_track_risk_grades")
    _grades_in(b.credit.fast_track_tech_grades, b.tech_grades, "tech_grades", "credit.fast_track_tech_grades")
    _grades_in([b.credit.tech_min_grade], b.tech_grades, "tech_grades", "credit.tech_min_grade")
    allowed = _non_declined(b.risk_grades, b.eligibility)
    if not allowed:
        raise _Refused("eligibility.declined_risk_grades", "declines every risk grade; at least one must remain")
    _grades_in(b.credit.quick_tax_multiplier, b.risk_grades, "risk_grades", "credit.quick_tax_multiplier")
    for grade in allowed:
        if grade not in b.credit.quick_tax_multiplier:
            raise _Refused(f"credit.quick_tax_multiplier.{grade}", "missing (every risk grade that is not declined needs a multiplier)")
    pr = b.pricing
    if pr.floor_bp_vs_lpr > pr.preferential_max_bp_vs_lpr and pr.preferential_certifications:
        raise _Refused("pricing.floor_bp_vs_lpr", f"must be ≤ preferential_max_bp_vs_lpr ({pr.preferential_max_bp_vs_lpr}) while preferential_certifications "
                       "are priced at most there (a floor above their price level contradicts them)")
    if pr.lpr_valid_through < b.lpr[-1].published_on:
        raise _Refused("pricing.lpr_valid_through", f"must not be before the latest LPR fixing ({b.lpr[-1].published_on.isoformat()}): "
                       f"the table would be out of date for every day it holds")
    for code, spreads in b.pricing.spread_bp.items():
        if code not in b.products:
            raise _Refused(f"pricing.spread_bp.{code}", f"{show(code)} is not a product of this bundle (products: {', '.join(b.products)})")
        _grades_in(spreads, b.risk_grades, "risk_grades", f"pricing.spread_bp.{code}")
    seen: dict[tuple[str, str], int] = {}
    for i, a in enumerate(b.approval_authority):
        if a.product != ANY_PRODUCT and a.product not in b.products:
            raise _Refused(f"approval_authority[{i}].product", f"{show(a.product)} is not a product of this bundle "
                           f"(allowed: {ANY_PRODUCT}, {', '.join(b.products)})")
        if (a.role, a.product) in seen:
            raise _Refused(f"approval_authority[{i}].product", f"{a.role} / {a.product} is already given an authority by "
                           f"approval_authority[{seen[a.role, a.product]}] (each role and product at most once)")
        seen[a.role, a.product] = i
    for code in b.products:
        if code not in b.pricing.spread_bp:
            raise _Refused(f"pricing.spread_bp.{code}", "missing (every product needs a spread for each risk grade that is not declined)")
        for grade in allowed:
            if grade not in b.pricing.spread_bp[code]:
                raise _Refused(f"pricing.spread_bp.{code}.{grade}", "missing (every product needs a spread for each risk grade that is not declined)")


def _whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def _check_early_warning(rules: Sequence[EarlyWarningRule]) -> None:
    seen: dict[str, int] = {}
    for i, r in enumerate(rules):
        at = f"early_warning[{i}]"
        if r.id in seen:
            raise _Refused(f"{at}.id", f"{show(r.id)} is already the id of early_warning[{seen[r.id]}] (each rule once)")
        seen[r.id] = i
        if r.watch == "dpd_above":
            if r.feature is not None:
                raise _Refused(f"{at}.feature", "must be left out: dpd_above watches the days past due of the line's drawings here")
            if not _whole(r.threshold) or not 0 <= r.threshold <= MAX_THRESHOLD_DAYS:
                raise _Refused(f"{at}.threshold", f"must be whole days 0..{MAX_THRESHOLD_DAYS} for dpd_above, got {show(str(r.threshold))}")
        else:
            kind = FEATURE_KINDS.get(r.feature) if r.feature is not None else None
            if kind is None:
                raise _Refused(f"{at}.feature", ("missing" if r.feature is None else f"{show(r.feature)} is not a numeric profile feature")
                               + f" ({r.watch} compares one of: {', '.join(FEATURE_KINDS)})")
            if r.watch == "drop":
                if kind == "ratio":
                    raise _Refused(f"{at}.feature", f"{r.feature} is a ratio; a drop compares an amount or a count (use at_most for a ratio)")
                if not 0 < r.threshold <= 1:
                    raise _Refused(f"{at}.threshold", f'must be a fraction of the previous value within 0..1 (e.g. "0.30"), got {show(str(r.threshold))}')
            if r.watch == "rise":
                if kind != "count":
                    raise _Refused(f"{at}.feature", f"{r.feature} is {'an amount' if kind == 'fen' else 'a ratio'}; a rise compares a count")
                if not _whole(r.threshold) or r.threshold < 1:
                    raise _Refused(f"{at}.threshold", f"must be a whole count ≥ 1 for a rise, got {show(str(r.threshold))}")
        if r.action == "reduce_limit":
            if r.reduce_to is None or not 0 < r.reduce_to < 1:
                raise _Refused(f"{at}.reduce_to", ("missing" if r.reduce_to is None else f"got {show(str(r.reduce_to))}")
                               + ': reduce_limit keeps this share of the limit, within 0..1 exclusive (e.g. "0.50")')
        elif r.reduce_to is not None:
            raise _Refused(f"{at}.reduce_to", f"must be left out: only reduce_limit keeps a share of the limit, this rule proposes {r.action}")


# -- errors as dotted paths --------------------------------------------------------------


def _dotted(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _allowed_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys of the table at `loc` (for 'unknown key' messages; only tables forbid extra keys)."""
    tp: Any = BundleFile
    for part in loc:
        if get_origin(tp) is tuple:  # tuple[Table, ...], indexed by position
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:  # dict[str, Table], by key
            tp = get_args(tp)[1]
        else:
            tp = {f.alias or n: f for n, f in tp.model_fields.items()}[str(part)].annotation
    return [f.alias or n for n, f in tp.model_fields.items() if not (tp is Product and n == "code")]


_OWN_MESSAGES = ("decimal_string", "date_string", "unique", "source", "basis_days", "allocation_order", "thresholds")  # they quote the value already


def _problem(err: Any) -> tuple[str, str]:
    """(dotted path, reason) for one pydantic error."""
    loc = list(err["loc"])
    kind = err["type"]
    key_error = bool(loc) and loc[-1] == "[key]"
    if key_error:
        loc.pop()
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, _Refused):
        return cause.args[0], cause.args[1]
    path = _dotted(loc)
    if kind == "missing":
        return path, "missing"
    if kind == "extra_forbidden":
        return path, f"unknown key (allowed: {', '.join(_allowed_keys(loc[:-1]))})"
    reason = err["msg"]
    if key_error:
        return path, f"the key {show(loc[-1])} is not allowed: {reason}"
    if kind not in _OWN_MESSAGES:
        reason += f", got {show(err.get('input'))}"
    return path, reason


def bundle_from_document(doc: dict[str, Any], sha256: str) -> PolicyBundle:
    """Validate a parsed TOML document; `PolicyError` names the first bad key."""
    try:
        f = BundleFile.model_validate(doc)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise PolicyError(*problems[0], more=problems[1:]) from None
    return PolicyBundle(
        name=f.meta.name,
        version=f.meta.version,
        sha256=sha256,
        lpr=f.lpr,
        required_sources=f.sources.required,
        on_required_gap=f.sources.on_required_gap,
        gap_spread_bp=f.sources.gap_spread_bp,
        tech_grades=f.tech_grades,
        risk_grades=f.risk_grades,
        eligibility=f.eligibility,
        credit=f.credit,
        secured=f.secured,
        project=f.project,
        guarantee=f.guarantee,
        pricing=f.pricing,
        products=f.products,
        classification=f.classification,
        inclusive=f.inclusive,
        expected_loss=f.expected_loss,
        approval_authority=f.approval_authority,
        early_warning=f.early_warning,
    )


def parse_bundle(raw: bytes) -> PolicyBundle:
    try:
        doc = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError("", f"policy file is not valid TOML: {exc}") from exc
    return bundle_from_document(doc, hashlib.sha256(raw).hexdigest())


def line_of(text: str, path: str) -> int | None:
    """The 1-based line of `text` (a bundle's TOML) that a problem's dotted `path` names — the key's
    own line, else its table's header, else None. ``lpr[1].one_year`` is the key ``one_year`` in the
    second ``[[lpr]]`` table; ``products.keji_xinyong.colour`` the key ``colour`` under
    ``[products.keji_xinyong]`` (or an inline ``keji_xinyong = {...}`` under ``[products]``)."""
    parts: list[str] = []
    for piece in path.split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(index.rstrip("]"))
    table: list[str] = []
    seen: dict[str, int] = {}
    best: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):  # a bundle is a few hundred lines
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[[") and line.endswith("]]"):
            name = line[2:-2].strip()
            seen[name] = seen.get(name, -1) + 1
            table = [*name.split("."), str(seen[name])]
        elif line.startswith("[") and line.endswith("]"):
            table = line[1:-1].strip().split(".")
        else:
            key = line.split("=", 1)[0].strip() if "=" in line else None
            if key is not None and parts[:len(table)] == table and parts[len(table):len(table) + 1] == [key]:
                return number
            continue
        if parts[:len(table)] == table:
            best = number
    return best


def check_bundle_file(path: Path) -> tuple[PolicyBundle | None, list[tuple[int | None, str, str]]]:
    """(the bundle, []) or (None, [(line, dotted path, reason), …]) for `sandu policy check`."""
    raw = path.read_bytes()
    try:
        return parse_bundle(raw), []
    except PolicyError as exc:
        text = raw.decode("utf-8", errors="replace")
        return None, [(line_of(text, p) if p else None, p, r) for p, r in exc.problems]


def load_bundle(path: str | Path | None = None) -> PolicyBundle:
    """The bundle at `path`, or the default bundle shipped with sandu."""
    if path is None:
        raw = resources.files("sandu.policy.bundles").joinpath(DEFAULT_BUNDLE).read_bytes()
    else:
        raw = Path(path).read_bytes()
    return parse_bundle(raw)
