"""The credit policy engine: scores + profile → comprehensive limit, products, prices.

Pure and deterministic: the same profile, scores, application and bundle give the
same result, so a stored decision can be replayed. Every rule that fires is
recorded as a `RuleHit`; every refusal carries a reason code and words a credit
officer (and the applicant) can read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sandu.domain.money import format_cn, format_rate_pct
from sandu.domain.project import Project
from sandu.policy.bundle import GRADE_ORDER, PolicyBundle, Product
from sandu.sources.profile import MAX_COLLATERAL_ASSETS, Collateral

__all__ = ["Application", "PolicyResult", "Project", "Scores", "evaluate"]
BP = Decimal("0.0001")


@dataclass(frozen=True)
class Application:
    has_bank_account: bool
    requested_fen: int | None = None
    project: Project | None = None


@dataclass(frozen=True)
class Scores:
    tech_score: Decimal
    tech_most_pass: bool
    risk_pd: Decimal
    risk_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleHit:
    rule: str
    detail: str


@dataclass(frozen=True)
class OfferTerms:
    product: str
    name: str
    kind: str
    limit_fen: int
    approved_fen: int  # what the system approves on its own; the rest is referred
    rate_annual: Decimal
    annualized_rate: Decimal  # 年化利率 incl. fees (none), on a 365-day year
    grid_rate: Decimal  # LPR + spread before tech discount and preferences
    lpr: Decimal
    repayment_method: str
    revolving: bool
    validity_months: int
    max_drawing_months: int
    basis_days: int
    settlement: str
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
            "repayment_method": self.repayment_method,
            "revolving": self.revolving,
            "validity_months": self.validity_months,
            "max_drawing_months": self.max_drawing_months,
            "basis_days": self.basis_days,
            "settlement": self.settlement,
            "components": self.components,
        }


@dataclass(frozen=True)
class PolicyResult:
    outcome: str  # approve | partial | refer | decline
    tech_grade: str
    risk_grade: str
    offers: tuple[OfferTerms, ...]
    comprehensive_limit_fen: int
    tech_uplift_fen: int
    rule_hits: tuple[RuleHit, ...]
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "tech_grade": self.tech_grade,
            "risk_grade": self.risk_grade,
            "offers": [o.to_json() for o in self.offers],
            "comprehensive_limit_fen": self.comprehensive_limit_fen,
            "tech_uplift_fen": self.tech_uplift_fen,
            "rule_hits": [h.__dict__ for h in self.rule_hits],
            "reasons": list(self.reasons),
        }


def _floor_to(amount: Decimal | int, unit: int) -> int:
    if amount <= 0:
        return 0
    return int((Decimal(amount) / unit).to_integral_value(rounding=ROUND_FLOOR)) * unit


def tech_grade(bundle: PolicyBundle, score: Decimal) -> str:
    return next(g.grade for g in bundle.tech_grades if score >= g.min_score)


def risk_grade(bundle: PolicyBundle, pd: Decimal) -> str:
    return next(g for g, max_pd in bundle.risk_grades if pd <= max_pd)


def _grade_at_least(grade: str, minimum: str) -> bool:
    return GRADE_ORDER.index(grade) <= GRADE_ORDER.index(minimum)


class _Eval:
    """One evaluation: collects rule hits and reasons while the steps run."""

    def __init__(self, bundle: PolicyBundle, features: dict[str, Any], scores: Scores, app: Application, as_of: date):
        self.b, self.f, self.s, self.app, self.as_of = bundle, features, scores, app, as_of
        self.hits: list[RuleHit] = []
        self.reasons: list[str] = []
        self.tech_grade = tech_grade(bundle, scores.tech_score)
        self.risk_grade = risk_grade(bundle, scores.risk_pd)
        self.unit = int(bundle.credit["round_down_fen"])

    def hit(self, rule: str, detail: str) -> None:
        self.hits.append(RuleHit(rule, detail))

    def refuse(self, code: str, text: str) -> None:
        self.reasons.append(f"{code}: {text}")
        self.hit(f"refuse.{code}", text)

    # -- eligibility ------------------------------------------------------------------
    def general_eligibility(self) -> bool:
        e = self.b.eligibility
        ok = True
        missing = [s for s in self.b.required_sources if f"{s}:not_read" in self.f.get("_quality_flags", ())]
        if self.f.get("revenue_fen") is None or self.f.get("overdue_count_24m") is None or missing:
            self.refuse("DATA_INSUFFICIENT", "税务或征信数据缺失，无法测额 (tax or credit-bureau data missing)")
            return False
        if self.risk_grade in e["declined_risk_grades"]:
            self.refuse("RISK_GRADE", f"风险等级 {self.risk_grade} (PD {self.s.risk_pd:.2%}) 超出准入 — " + "; ".join(self.s.risk_reasons[:3]))
            ok = False
        if self.f["overdue_count_24m"] > e["max_overdue_count_24m"]:
            self.refuse("OVERDUE_COUNT", f"近24个月逾期 {self.f['overdue_count_24m']} 次，上限 {e['max_overdue_count_24m']} 次")
            ok = False
        if (self.f.get("max_overdue_days_24m") or 0) > e["max_overdue_days_24m"]:
            self.refuse("OVERDUE_DAYS", f"近24个月最长逾期 {self.f['max_overdue_days_24m']} 天，上限 {e['max_overdue_days_24m']} 天")
            ok = False
        if ok:
            self.hit("eligibility.general", f"risk grade {self.risk_grade}, tech grade {self.tech_grade}")
        return ok

    def credit_eligible(self) -> bool:
        e = self.b.eligibility
        tax = self.f.get("tax_total_fen")
        grade = self.f.get("tax_credit_grade")
        ok = True
        if tax is None or tax < e["min_annual_tax_fen"]:
            self.refuse("TAX_BELOW_MIN", f"年纳税 {format_cn(tax or 0)} 低于信用贷款准入 {format_cn(e['min_annual_tax_fen'])}")
            ok = False
        if grade not in e["allowed_tax_credit_grades"]:
            self.refuse("TAX_GRADE", f"纳税信用等级 {grade or '无'}，信用贷款要求 {'/'.join(e['allowed_tax_credit_grades'])}")
            ok = False
        return ok

    # -- limits -----------------------------------------------------------------------
    def quick_measure(self) -> int:
        c = self.b.credit
        mult = Decimal(c["quick_tax_multiplier"][self.risk_grade]) if self.risk_grade in c["quick_tax_multiplier"] else Decimal(0)
        raw = self.f["tax_total_fen"] * mult
        limit = min(_floor_to(raw, self.unit), int(c["quick_max_fen"]))
        self.hit("credit.quick", f"年纳税 {format_cn(self.f['tax_total_fen'])} × {mult} (风险 {self.risk_grade}) → {format_cn(limit)}，上限 {format_cn(c['quick_max_fen'])}")
        return limit

    def tech_measure(self, grade: str) -> int:
        c = self.b.credit
        if not (_grade_at_least(grade, c["tech_min_grade"]) and self.s.tech_most_pass):
            return 0
        mult = next(g.limit_multiplier for g in self.b.tech_grades if g.grade == grade)
        raw = Decimal(self.f["revenue_fen"]) * Decimal(c["tech_revenue_ratio"]) * mult
        return min(_floor_to(raw, self.unit), int(c["tech_max_fen"]))

    def credit_portion(self) -> tuple[str, int, int, int] | None:
        """(product, limit, approved, online measure) of the pure-credit portion, or None."""
        c = self.b.credit
        quick = self.quick_measure()
        tech = self.tech_measure(self.tech_grade)
        if tech > quick:
            self.hit("credit.tech", f"营收 {format_cn(self.f['revenue_fen'])} × {c['tech_revenue_ratio']} × 科创等级 {self.tech_grade} 系数 → {format_cn(tech)}")
            fast = self.tech_grade in c["fast_track_tech_grades"] and self.risk_grade in c["fast_track_risk_grades"]
            approved = min(quick, tech) if fast else 0
            if fast:
                self.hit("approval.fast_track", f"先行发放线上测额 {format_cn(approved)}，其余 {format_cn(tech - approved)} 提交审批")
            return c["tech_product"], tech, approved, quick
        if quick <= 0:
            return None
        return c["quick_product"], quick, quick, quick

    def collateral_capacity(self, assets: tuple[Collateral, ...]) -> tuple[int, int, bool]:
        """(capacity, residual value of already-pledged assets, any pledged?)"""
        ltv = self.b.secured["ltv"]
        capacity = residual = 0
        pledged = False
        for a in assets[:MAX_COLLATERAL_ASSETS]:
            if a.kind not in ltv:
                self.hit("secured.unknown_kind", f"{a.id}: 抵押物类型 {a.kind} 不在抵押率表中，不计入")
                continue
            value = _floor_to(Decimal(a.appraised_value_fen) * Decimal(ltv[a.kind]), 100)
            cap = max(0, value - a.secured_debt_fen)
            self.hit("secured.asset", f"{a.id}: 评估 {format_cn(a.appraised_value_fen)} × {ltv[a.kind]} − 已担保债务 {format_cn(a.secured_debt_fen)} = {format_cn(cap)}")
            capacity += cap
            if a.secured_debt_fen > 0:
                pledged = True
                residual += cap
        return capacity, residual, pledged

    def project_limit(self, p: Project) -> int:
        cfg = self.b.project
        if p.tenor_years > int(cfg["max_tenor_years"]):
            self.refuse("PROJECT_TENOR", f"项目期限 {p.tenor_years} 年超过 {cfg['max_tenor_years']} 年")
            return 0
        by_equity = Decimal(p.capex_fen) * (1 - Decimal(cfg["min_equity_ratio"]))
        by_cash = Decimal(p.annual_cash_flow_fen) * p.tenor_years / Decimal(cfg["min_dscr"])
        limit = min(_floor_to(min(by_equity, by_cash), self.unit), int(cfg["max_fen"]))
        self.hit(
            "project.sizing",
            f"{p.name}: 总投资 {format_cn(p.capex_fen)} × (1 − 资本金 {cfg['min_equity_ratio']}) = {format_cn(_floor_to(by_equity, self.unit))}; "
            f"年现金流 {format_cn(p.annual_cash_flow_fen)} × {p.tenor_years} 年 ÷ DSCR {cfg['min_dscr']} = {format_cn(_floor_to(by_cash, self.unit))} → {format_cn(limit)}",
        )
        return limit

    # -- price ------------------------------------------------------------------------
    def price(self, product: Product) -> tuple[Decimal, Decimal, Decimal]:
        """(rate, grid rate, lpr) for the product."""
        pr = self.b.pricing
        fixing = self.b.lpr_on(self.as_of)
        lpr = fixing.one_year if product.tenor == "one_year" else fixing.over_five_year
        spread = int(pr["spread_bp"][product.code][self.risk_grade])
        discount = next(g.discount_bp for g in self.b.tech_grades if g.grade == self.tech_grade)
        grid = lpr + spread * BP
        rate = max(lpr + int(pr["floor_bp_vs_lpr"]) * BP, grid - discount * BP)
        detail = f"{product.name}: LPR {format_rate_pct(lpr)} + {spread}bp − 科创优惠 {discount}bp = {format_rate_pct(rate)}"
        certs = set(self.f.get("certifications") or [])
        preferred = sorted(certs & set(pr["preferential_certifications"]))
        if preferred and rate > lpr:
            rate = lpr
            detail += f"；{'/'.join(preferred)} 优惠：执行基准利率 LPR {format_rate_pct(lpr)}"
            self.hit("pricing.preferential", f"{product.code}: {'/'.join(preferred)} → LPR")
        self.hit("pricing", detail)
        return rate, grid, lpr

    def offer(self, code: str, limit: int, approved: int, components: dict[str, int]) -> OfferTerms:
        product = self.b.products[code]
        rate, grid, lpr = self.price(product)
        annualized = (rate * 365 / product.basis_days).quantize(Decimal("0.000001"))
        assert 0 <= approved <= limit, "approved part must lie within the limit"
        return OfferTerms(
            product=code,
            name=product.name,
            kind=product.kind,
            limit_fen=limit,
            approved_fen=approved,
            rate_annual=rate,
            annualized_rate=annualized,
            grid_rate=grid,
            lpr=lpr,
            repayment_method=product.repayment_method,
            revolving=product.revolving,
            validity_months=product.validity_months,
            max_drawing_months=product.max_drawing_months,
            basis_days=product.basis_days,
            settlement=product.settlement,
            components=components,
        )

    def open_to_applicant(self, code: str) -> bool:
        """Products that need an account at the bank are not offered online to non-customers."""
        product = self.b.products[code]
        if self.app.has_bank_account or product.open_to_non_customers:
            return True
        self.hit("channel.non_customer", f"{product.name} 需在本行开户后办理，未纳入线上授信")
        return False

    def authority(self, code: str, limit: int) -> int:
        return min(limit, self.b.products[code].auto_approve_max_fen)


def evaluate(
    bundle: PolicyBundle,
    features: dict[str, Any],
    collateral: tuple[Collateral, ...],
    scores: Scores,
    application: Application,
    as_of: date,
) -> PolicyResult:
    ev = _Eval(bundle, features, scores, application, as_of)
    offers: list[OfferTerms] = []
    uplift = 0
    if ev.general_eligibility():
        credit = ev.credit_portion() if ev.credit_eligible() else None
        if credit and not ev.open_to_applicant(credit[0]):
            credit = None
        if credit:
            uplift = max(0, credit[1] - credit[3])  # against what the online measure alone would give
            if uplift:
                ev.hit("tech.uplift", f"科创评价提升信用额度 {format_cn(uplift)}（无科创评价时 {format_cn(credit[3])}）")
        capacity, residual, pledged = ev.collateral_capacity(collateral)
        sec = bundle.secured
        if capacity > 0 and pledged and ev.open_to_applicant(sec["combined_product"]):
            topup_cap = _floor_to(Decimal(capacity) * Decimal(sec["combined_topup_max_ratio"]), ev.unit)
            topup = min(credit[1], topup_cap) if credit else 0
            limit = min(_floor_to(capacity + topup, ev.unit), int(sec["combined_max_fen"]))
            ev.hit("secured.combined", f"抵押 {format_cn(capacity)}（其中余值 {format_cn(residual)}）+ 信用 {format_cn(topup)} → {format_cn(limit)}")
            code = sec["combined_product"]
            comps = {"collateral_fen": capacity, "residual_value_fen": residual, "credit_topup_fen": topup}
            if limit > 0:
                offers.append(ev.offer(code, limit, ev.authority(code, limit), comps))
                credit = None  # the credit portion is the top-up of the combined product
        elif capacity > 0 and not pledged and ev.open_to_applicant(sec["revolving_product"]):
            code = sec["revolving_product"]
            limit = min(_floor_to(capacity, ev.unit), int(sec["revolving_max_fen"]))
            ev.hit("secured.revolving", f"最高额抵押 {format_cn(capacity)} → {bundle.products[code].name} {format_cn(limit)}")
            if limit > 0:
                offers.append(ev.offer(code, limit, ev.authority(code, limit), {"collateral_fen": capacity}))
        if credit:
            code, limit, approved, _ = credit
            approved = max(approved, ev.authority(code, limit)) if code != bundle.credit["tech_product"] else approved
            offers.append(ev.offer(code, limit, approved, {"credit_fen": limit}))
        if application.project is not None and ev.open_to_applicant(bundle.project["product"]):
            code = bundle.project["product"]
            limit = ev.project_limit(application.project)
            if limit > 0:
                offers.append(ev.offer(code, limit, ev.authority(code, limit), {"project_fen": limit}))
    if not offers and not ev.reasons:
        ev.refuse("NO_PRODUCT", "没有满足条件的产品")
    total = sum(o.limit_fen for o in offers)
    approved = sum(o.approved_fen for o in offers)
    outcome = "decline" if not offers else "approve" if approved == total else "partial" if approved > 0 else "refer"
    if application.requested_fen is not None:
        ev.hit("application.requested", f"申请 {format_cn(application.requested_fen)}，综合授信 {format_cn(total)}")
    return PolicyResult(
        outcome=outcome,
        tech_grade=ev.tech_grade,
        risk_grade=ev.risk_grade,
        offers=tuple(offers),
        comprehensive_limit_fen=total,
        tech_uplift_fen=uplift,
        rule_hits=tuple(ev.hits),
        reasons=tuple(ev.reasons),
    )
