"""The credit policy's rules, written once, for both forms of the engine.

`decide` runs every step of the policy (see `sandu.policy.kernel` for the steps
in words) over a backend from `sandu.policy.ops`: with `SCALAR` on one
application's values — the kernel wraps the numbers into its step records for
the explanation — and with `FRAME` as polars expressions over a whole table
(`sandu.policy.vector`). There is no branching on data here: a step that does
not apply is masked (`x.where`), so the two forms cannot drift apart. Amounts
are fen, prices whole basis points; every ratio is applied exactly.

The result maps names to values (the scalar form) or to expressions (the table
form); `OUTPUTS` names those the table form returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import polars as pl

from sandu.domain.dates import add_months
from sandu.domain.enums import Outcome
from sandu.ledger.schedule import build_schedule
from sandu.policy.apr import annualized_rate
from sandu.policy.bundle import GRADE_ORDER, TENORS, PolicyBundle, Product
from sandu.policy.ops import fraction

BP = Decimal("0.0001")
YUAN_FEN = 100  # collateral values are taken to the whole yuan
SERVICE_NOTIONAL_FEN = 10**12  # `annual_service_fen` is the service of a loan of this many fen: fen rounding is noise
_SERVICE_START = date(2001, 1, 15)  # any date: a schedule's amounts depend on its months, not on the calendar
APR_NOTIONAL_FEN = 1_200_000_000  # the loan (1,200万) an offer's 年化利率 is measured on: fen rounding is noise, and
# any whole bp of annual fee splits into whole fen per monthly or quarterly period
SLOTS = ("secured", "credit", "guaranteed", "project")  # the offers a decision may make, in the order they are listed


@dataclass(frozen=True)
class Inputs:
    """What the rules read: Python values (one application) or expressions (a table's columns)."""

    revenue_fen: Any
    tax_total_fen: Any
    tax_credit_grade: Any
    overdue_count_24m: Any
    max_overdue_days_24m: Any
    headcount: Any
    loans_outstanding_fen: Any
    secured_debt_fen: Any  # of the bureau's loans, those secured by collateral
    certifications: Any  # a collection of strings
    sources_not_read: Any  # a collection of source names
    sources_unavailable: Any  # a collection of source names
    tech_grade: Any
    tech_most_pass: Any
    risk_pd: Any  # Decimal within 0..1
    has_bank_account: Any
    has_project: Any
    capex_fen: Any  # the project's (0 without a project)
    annual_cash_flow_fen: Any  # the project's (0 without a project)
    tenor_years: Any  # the project's (missing without a project)
    collateral: Any  # items with kind, appraised_value_fen, secured_debt_fen (at most MAX_COLLATERAL_ASSETS)
    guarantee_fen: Any = None  # a financing guarantee the applicant arranged (missing or 0: none)


@lru_cache(maxsize=4096)
def annual_service_fen(method: str, rate: Decimal, months: int, basis_days: int) -> int:
    """The most a loan of SERVICE_NOTIONAL_FEN asks in any 12 consecutive instalments, principal and
    interest, by its repayment method — from the ledger's own schedule (`sandu.ledger.schedule`), so the
    policy sizes on the payments the loan will really ask: 等额本息 12 annuities; 等额本金 its first year;
    按月付息到期还本 its last year, balloon included."""
    assert 1 <= months <= 600 and Decimal(0) <= rate <= 1
    schedule = build_schedule(method, SERVICE_NOTIONAL_FEN, rate, _SERVICE_START, add_months(_SERVICE_START, months), basis_days=basis_days)
    due = [i.principal_fen + i.interest_fen for i in schedule]
    window = min(12, len(due))
    return max(sum(due[k:k + window]) for k in range(len(due) - window + 1))


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


def at_least(grades: tuple[str, ...], minimum: str) -> tuple[str, ...]:
    """The grades of `grades` that are `minimum` or better (A is best)."""
    return tuple(g for g in grades if GRADE_ORDER.index(g) <= GRADE_ORDER.index(minimum))


def rate_bp(rate: Decimal) -> int:
    """A rate of the bundle in whole basis points (the bundle refuses any other at load)."""
    bp = rate / BP
    assert bp == bp.to_integral_value(), f"rate {rate} is not a whole basis point"
    return int(bp)


def risk_grade(x: Any, bundle: PolicyBundle, pd: Any) -> Any:
    """The best risk grade whose `max_pd` the probability of default does not exceed."""
    grade = x.lit(bundle.risk_grades[-1].grade)
    for g in reversed(bundle.risk_grades[:-1]):
        grade = x.where(pd <= g.max_pd, g.grade, grade)
    return grade


def asset_capacity(x: Any, bundle: PolicyBundle, asset: Any) -> dict[str, Any]:
    """One asset: appraised × LTV (to the yuan) − secured debt, never below 0; a kind without an
    LTV counts nothing; it is pledged when counted and already securing debt."""
    ltv = bundle.secured.ltv
    kind, debt = x.item_field(asset, "kind"), x.item_field(asset, "secured_debt_fen")
    known = x.isin(kind, ltv.keys())
    value = x.where(known, x.floor_ratio_by(x.item_field(asset, "appraised_value_fen"), kind, ltv, YUAN_FEN), 0)
    return {"known": known, "value_fen": value, "capacity_fen": x.max(0, value - debt), "pledged": x.all(known, debt > 0)}


def inclusive(x: Any, bundle: PolicyBundle, headcount: Any, revenue_fen: Any, total_credit_fen: Any) -> dict[str, Any]:
    """普惠型小微: small or micro unless both measures are at or above the medium thresholds (unknown
    when one of them is missing and the other does not settle it); flagged with total credit in 0 < … ≤ max."""
    cfg = bundle.inclusive
    below = x.any(x.less(headcount, cfg.medium_min_headcount), x.less(revenue_fen, cfg.medium_min_revenue_fen))
    known = x.all(x.not_null(headcount), x.not_null(revenue_fen))
    small_micro = x.where(below, True, x.where(known, False, None))
    flagged = x.all(below, total_credit_fen > 0, total_credit_fen <= cfg.max_total_credit_fen)
    return {"small_micro": small_micro, "flagged": flagged}


class _Decide:
    """One run of the rules; each method is a step and keeps its numbers in `v` (`x.keep` makes each a
    column of the table form, computed once)."""

    def __init__(self, x: Any, bundle: PolicyBundle, i: Inputs, as_of: Any, priced: bool = True):
        self.x, self.b, self.i, self.as_of, self.priced = x, bundle, i, as_of, priced
        if isinstance(as_of, date):
            bundle.lpr_on(as_of)  # refused when the LPR table does not cover the day (the table form checks its column)
        self.v: dict[str, Any] = {}
        self.lpr = {tenor: x.keep(f"lpr.{tenor}", self.fixing(tenor)) for tenor in TENORS}

    def fixing(self, tenor: str) -> Any:
        """The LPR of `tenor` (bp) of the latest fixing published on or before the decision day."""
        x = self.x
        fixings = self.b.lpr
        bp = x.lit(rate_bp(getattr(fixings[0], tenor)))
        for f in fixings[1:]:
            bp = x.where(self.as_of >= f.published_on, rate_bp(getattr(f, tenor)), bp)
        return bp

    def keep(self, name: str, value: Any) -> Any:
        self.v[name] = kept = self.x.keep(name, value)
        return kept

    # -- helpers ------------------------------------------------------------------------

    def open_to(self, product: Any) -> Any:
        """A product that needs an account at the bank is not offered online to non-customers."""
        x = self.x
        return x.any(self.i.has_bank_account, x.lookup(product, {c: p.open_to_non_customers for c, p in self.b.products.items()}, False))

    def authority(self, product: Any, limit: Any) -> Any:
        """What the system may approve on its own for this product."""
        x = self.x
        return x.min(limit, x.lookup(product, {c: p.auto_approve_max_fen for c, p in self.b.products.items()}, 0))

    def price(self, code: str, months: Any, name: str) -> dict[str, Any]:
        """LPR of the loan's term + spread(product, risk grade) + gap spread − tech discount, not below
        LPR + floor; a preferential certification caps it at LPR + the preferential level."""
        x, b, v, i = self.x, self.b, self.v, self.i
        pr = b.pricing
        k = x.keep
        one_year = x.lit(True) if months is None else months <= pr.one_year_lpr_max_term_months
        lpr = k(f"{name}.lpr_bp", x.where(one_year, self.lpr["one_year"], self.lpr["over_five_year"]))
        spread = k(f"{name}.spread_bp", x.lookup(v["risk_grade"], pr.spread_bp[code], 0))
        discount = k(f"{name}.discount_bp", x.lookup(v["tech_grade"], {g.grade: g.discount_bp for g in b.tech_grades}, 0))
        gap = k(f"{name}.gap_bp", x.where(x.nonempty(i.sources_unavailable), b.gap_spread_bp, 0))
        grid = k(f"{name}.grid_bp", lpr + spread + gap)
        floor = k(f"{name}.floor_bp", lpr + pr.floor_bp_vs_lpr)
        base = k(f"{name}.base_bp", x.max(floor, grid - discount))
        level = lpr + pr.preferential_max_bp_vs_lpr
        preferred = x.any(*(x.contains(i.certifications, c) for c in pr.preferential_certifications))
        applied = k(f"{name}.preference_applied", x.all(preferred, base > level))
        rate = k(f"{name}.rate_bp", x.where(applied, level, base))
        product = b.products[code]

        def annualized(rate_bp: int, term_months: int, as_of: date) -> str:
            return str(offer_annualized_rate(product, Decimal(rate_bp) * BP, term_months, as_of))

        return {"product": k(f"{name}.product", x.lit(code)), "lpr_bp": lpr, "lpr_tenor": k(f"{name}.lpr_tenor", x.where(one_year, "one_year", "over_five_year")),
                "term_months": months, "spread_bp": spread, "discount_bp": discount, "gap_bp": gap, "grid_bp": grid, "floor_bp": floor,
                "base_bp": base, "preference_applied": applied, "rate_bp": rate,
                "annualized_rate": k(f"{name}.annualized_rate", x.apply(annualized, rate, months, self.as_of, dtype=pl.String))}

    def pick(self, name: str, cond: Any, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {k: self.x.keep(f"{name}.{k}", self.x.where(cond, a[k], b[k])) for k in a}

    # -- steps ------------------------------------------------------------------------------

    def general(self) -> None:
        x, b, i, keep = self.x, self.b, self.i, self.keep
        e = b.eligibility
        risk = keep("risk_grade", risk_grade(x, b, i.risk_pd))
        keep("tech_grade", i.tech_grade)
        gaps = x.any(*(keep(f"gap.{s}", x.contains(i.sources_unavailable, s)) for s in b.required_sources))
        not_read = x.any(*(x.contains(i.sources_not_read, s) for s in b.required_sources))
        gaps = keep("required_gap", gaps)
        missing = keep("data_missing", x.all(x.not_(gaps), x.any(x.is_null(i.revenue_fen), x.is_null(i.overdue_count_24m), not_read)))
        checked = x.not_(x.any(missing, gaps))  # with data missing or a required source silent, nothing else is checked
        declined = keep("risk_declined", x.all(checked, x.isin(risk, e.declined_risk_grades)))
        count = keep("overdue_count_exceeded", x.all(checked, x.exceeds(i.overdue_count_24m, e.max_overdue_count_24m)))
        days = keep("overdue_days_exceeded", x.all(checked, x.exceeds(i.max_overdue_days_24m, e.max_overdue_days_24m)))
        keep("eligible", x.not_(x.any(missing, gaps, declined, count, days)))

    def credit(self) -> None:
        """Credit eligibility (annual tax, tax credit grade), then quick and tech measures and the credit portion."""
        x, b, v, i, keep = self.x, self.b, self.v, self.i, self.keep
        e, c = b.eligibility, b.credit
        below = keep("tax_below_min", x.below_or_null(i.tax_total_fen, e.min_annual_tax_fen))
        refused = keep("tax_grade_refused", x.not_(x.isin(i.tax_credit_grade, e.allowed_tax_credit_grades)))
        ok = keep("credit_eligible", x.all(v["eligible"], x.not_(below), x.not_(refused)))
        debt_known = x.not_null(i.loans_outstanding_fen)
        loans = x.where(debt_known, i.loans_outstanding_fen, 0)
        unsecured = keep("unsecured_debt_fen", x.max(0, loans - x.where(x.is_null(i.secured_debt_fen), 0, i.secured_debt_fen)))
        quick_less = unsecured if c.quick_deducts_unsecured_debt else 0
        quick = x.min(x.floor_ratio_by(i.tax_total_fen, v["risk_grade"], c.quick_tax_multiplier, c.round_down_fen, quick_less), c.quick_max_fen)
        quick = keep("quick_limit_fen", x.where(ok, quick, 0))
        grades = tuple(g.grade for g in b.tech_grades)
        qualifies = keep("tech_qualifies", x.all(x.isin(i.tech_grade, at_least(grades, c.tech_min_grade)), i.tech_most_pass))
        ratios = {g.grade: c.tech_revenue_ratio * g.limit_multiplier for g in b.tech_grades}
        tech_less = unsecured if c.tech_deducts_unsecured_debt else 0
        tech = x.min(x.floor_ratio_by(i.revenue_fen, i.tech_grade, ratios, c.round_down_fen, tech_less), c.tech_max_fen)
        tech = keep("tech_limit_fen", x.where(x.all(ok, qualifies), tech, 0))
        tech_line = keep("tech_line", x.all(ok, tech > quick))
        fast = keep("fast_track", x.all(tech_line, x.isin(i.tech_grade, c.fast_track_tech_grades), x.isin(v["risk_grade"], c.fast_track_risk_grades)))
        product = keep("credit_product", x.where(tech_line, c.tech_product, x.where(x.all(ok, quick > 0), c.quick_product, None)))
        limit = keep("credit_limit_fen", x.where(tech_line, tech, quick))
        approved = x.where(tech_line, x.where(fast, quick, 0), quick)
        keep("credit_approved_fen", x.where(debt_known, approved, 0))  # existing debt unknown: an officer decides
        is_open = keep("credit_open", x.all(x.not_null(product), self.open_to(product)))
        keep("credit_uplift_fen", x.where(is_open, limit - quick, 0))
        keep("credit_offered", x.all(ok, is_open))

    def collateral(self) -> None:
        """Collateral capacity and the secured product: combined (pledged assets, with the credit portion
        as a top-up up to a share of the capacity) or revolving (unencumbered assets)."""
        x, b, v, i, keep = self.x, self.b, self.v, self.i, self.keep
        s, unit = b.secured, b.credit.round_down_fen
        capacity = keep("collateral_capacity_fen", x.sum_items(i.collateral, lambda a: asset_capacity(x, b, a)["capacity_fen"]))
        keep("residual_fen", x.sum_items(i.collateral, lambda a: (lambda r: x.where(r["pledged"], r["capacity_fen"], 0))(asset_capacity(x, b, a))))
        combined = keep("combined", x.any_items(i.collateral, lambda a: asset_capacity(x, b, a)["pledged"]))
        exists = keep("secured_exists", x.all(v["eligible"], capacity > 0))
        product = keep("secured_product", x.where(combined, s.combined_product, s.revolving_product))
        is_open = keep("secured_open", self.open_to(product))
        topup_cap = keep("topup_cap_fen", x.where(x.all(exists, combined, is_open), x.floor_ratio(capacity, s.combined_topup_max_ratio, unit), 0))
        topup = keep("topup_fen", x.where(x.all(exists, combined, is_open, v["credit_offered"]), x.min(v["credit_limit_fen"], topup_cap), 0))
        limit = x.where(combined, x.min(x.floor_ratio(capacity + topup, 1, unit), s.combined_max_fen),
                        x.min(x.floor_ratio(capacity, 1, unit), s.revolving_max_fen))
        limit = keep("secured_limit_fen", x.where(x.all(exists, is_open), limit, 0))
        keep("secured_approved_fen", self.authority(product, limit))
        offered = keep("secured_offered", x.all(exists, is_open, limit > 0))
        keep("replaces_credit", x.all(combined, offered))

    def project(self) -> None:
        """项目贷款: the smaller of capex × (1 − equity ratio) and the loan whose largest 12-month service,
        with the existing loans' service, the cash flow covers `min_dscr` times — at the rate it is priced at."""
        x, b, v, i, keep = self.x, self.b, self.v, self.i, self.keep
        cfg, unit = b.project, b.credit.round_down_fen
        product = b.products[cfg.product]
        months = keep("project_months", x.where(i.has_project, i.tenor_years * 12 if i.tenor_years is not None else None, None))
        v["project_price"] = price = self.price(cfg.product, months, "project_price")
        runs = keep("project_runs", x.all(v["eligible"], i.has_project))
        is_open = keep("project_open", self.open_to(cfg.product))
        refused = keep("tenor_refused", x.all(runs, is_open, x.exceeds(i.tenor_years, cfg.max_tenor_years)))
        sized = keep("project_sized", x.all(runs, is_open, x.not_(refused)))

        def service(method: str, rate: int, term: int, basis: int) -> int:
            return annual_service_fen(method, Decimal(rate) * BP, term, basis)

        live_months = x.where(sized, months, None)
        # the largest 12-month service of a loan of SERVICE_NOTIONAL_FEN
        per_notional = keep("annual_service_fen", x.apply(service, product.repayment_method, price["rate_bp"], live_months, product.basis_days,
                                                          dtype=pl.Int64))
        by_equity = keep("by_equity_fen", x.where(sized, x.floor_ratio(i.capex_fen, 1 - cfg.min_equity_ratio, unit), 0))
        existing = x.floor_ratio(x.where(x.is_null(i.loans_outstanding_fen), 0, i.loans_outstanding_fen), cfg.existing_debt_annual_service_ratio, 1)
        existing = keep("existing_service_fen", x.where(sized, existing, 0))
        covered = x.floor_ratio(i.annual_cash_flow_fen, 1 / fraction(cfg.min_dscr), 1)
        available = keep("available_service_fen", x.where(sized, x.max(0, covered - existing), 0))
        by_cash = x.floor_ratio(x.muldiv(available, SERVICE_NOTIONAL_FEN, per_notional), 1, unit)
        by_cash = keep("by_cash_flow_fen", x.where(sized, by_cash, 0))
        limit = keep("project_limit_fen", x.where(sized, x.min(by_equity, by_cash, cfg.max_fen), 0))
        keep("project_approved_fen", x.where(x.not_null(i.loans_outstanding_fen), self.authority(cfg.product, limit), 0))  # unknown debt: an officer
        keep("project_offered", x.all(sized, limit > 0))

    def guarantee(self) -> None:
        """担保: a guarantee backs a line of guarantee ÷ coverage ratio, rounded down, capped; for eligible applicants."""
        x, b, v, i, keep = self.x, self.b, self.v, self.i, self.keep
        g, unit = b.guarantee, b.credit.round_down_fen
        offered = x.where(x.is_null(i.guarantee_fen), 0, i.guarantee_fen)
        runs = keep("guarantee_runs", x.all(v["eligible"], offered > 0))
        is_open = keep("guarantee_open", self.open_to(g.product))
        limit = x.min(x.floor_ratio(offered, 1 / fraction(g.coverage_ratio), unit), g.max_fen)
        limit = keep("guaranteed_limit_fen", x.where(x.all(runs, is_open), limit, 0))
        keep("guaranteed_approved_fen", self.authority(g.product, limit))
        keep("guaranteed_offered", x.all(runs, is_open, limit > 0))

    def offers(self) -> None:
        """Price each offer (unless the run is not `priced`), then the comprehensive limit, the outcome and the 普惠型小微
        flag — which read no price."""
        x, b, v, i, keep = self.x, self.b, self.v, self.i, self.keep
        c, s, products = b.credit, b.secured, b.products

        def priced(code: str) -> dict[str, Any]:
            return self.price(code, products[code].max_drawing_months, f"price.{code}")

        if self.priced:
            v["credit_price"] = self.pick("credit_price", v["tech_line"], priced(c.tech_product), priced(c.quick_product))
            v["secured_price"] = self.pick("secured_price", v["combined"], priced(s.combined_product), priced(s.revolving_product))
            g = b.guarantee.product
            v["guaranteed_price"] = self.price(g, products[g].max_drawing_months, "guaranteed_price")
        credit_offer = keep("credit_offer", x.all(v["credit_offered"], x.not_(v["replaces_credit"])))
        made = {"secured": v["secured_offered"], "credit": credit_offer, "guaranteed": v["guaranteed_offered"], "project": v["project_offered"]}
        limits = {"secured": v["secured_limit_fen"], "credit": v["credit_limit_fen"], "guaranteed": v["guaranteed_limit_fen"],
                  "project": v["project_limit_fen"]}
        approved = {"secured": v["secured_approved_fen"], "credit": v["credit_approved_fen"], "guaranteed": v["guaranteed_approved_fen"],
                    "project": v["project_approved_fen"]}
        for slot in SLOTS:
            keep(f"{slot}.made", made[slot])
            keep(f"{slot}.limit_fen", x.where(made[slot], limits[slot], 0))
            keep(f"{slot}.approved_fen", x.where(made[slot], approved[slot], 0))
        total = keep("comprehensive_limit_fen", sum((v[f"{slot}.limit_fen"] for slot in SLOTS), x.lit(0)))
        done = keep("approved_fen", sum((v[f"{slot}.approved_fen"] for slot in SLOTS), x.lit(0)))
        any_offer = x.any(*made.values())
        plain = x.where(x.not_(any_offer), Outcome.DECLINE.value,
                        x.where(done == total, Outcome.APPROVE.value, x.where(done > 0, Outcome.PARTIAL.value, Outcome.REFER.value)))
        # missing data, or a required source silent when the bundle says so: an officer collects it and decides
        to_officer = x.any(v["data_missing"], v["required_gap"]) if b.on_required_gap == "refer" else v["data_missing"]
        keep("outcome", x.where(to_officer, Outcome.REFER.value, plain))
        flag = inclusive(x, b, i.headcount, i.revenue_fen, total)
        keep("small_micro", flag["small_micro"])
        keep("inclusive_small_micro", flag["flagged"])


STEPS = ("general", "credit", "collateral", "guarantee", "project", "offers")


def decide(x: Any, bundle: PolicyBundle, i: Inputs, as_of: Any, *, priced: bool = True) -> dict[str, Any]:
    """Every number of one evaluation (the scalar form), or the column holding it (the table form). `as_of` is
    the decision day: a date, or in the table form the column of each application's day. Not `priced`: without the
    offers' prices (`credit_price`, `secured_price`, `guaranteed_price`), which no other number reads — for a search
    that asks each evaluation only its limits and outcome. A project's price sizes its loan, so it is always there."""
    run = _Decide(x, bundle, i, as_of, priced)
    for step in STEPS:
        getattr(run, step)()
    return run.v
