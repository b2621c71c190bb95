"""The explanation of a decision: rule hits and reasons, from the kernel's numbers only.

Every text a credit officer or an applicant reads about a decision is written
here, in the order the kernel's steps ran; nothing is computed here that the
kernel did not compute. A refusal is both a reason (``CODE: text``) and a rule
hit (``refuse.CODE``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sandu.domain.money import format_cn, format_rate_pct
from sandu.policy.kernel import (
    CollateralCapacity,
    CreditEligibility,
    CreditPortion,
    Decision,
    GeneralEligibility,
    GuaranteedPortion,
    InclusiveFlag,
    PricedOffer,
    ProjectSizing,
    SecuredPortion,
)


@dataclass(frozen=True)
class RuleHit:
    rule: str
    detail: str


class _Notes:
    """Rule hits and reasons, in the order they are written."""

    def __init__(self) -> None:
        self.hits: list[RuleHit] = []
        self.reasons: list[str] = []

    def hit(self, rule: str, detail: str) -> None:
        self.hits.append(RuleHit(rule, detail))

    def refuse(self, code: str, text: str) -> None:
        self.reasons.append(f"{code}: {text}")
        self.hit(f"refuse.{code}", text)

    def channel(self, name: str) -> None:
        self.hit("channel.non_customer", f"{name} 需在本行开户后办理，未纳入线上授信")


def _general(n: _Notes, g: GeneralEligibility) -> None:
    if g.required_gaps:
        names = "、".join(g.required_gaps)
        if g.on_required_gap == "refer":
            n.refuse("DATA_GAP_REFERRED", f"数据源 {names} 未能及时返回，转人工审核，可待数据源恢复后重新测额 (source did not answer in time: referred to an officer)")
        else:
            n.refuse("DATA_GAP", f"数据源 {names} 未能及时返回，无法测额 (source did not answer in time)")
        return
    if g.data_missing:
        n.refuse("DATA_INSUFFICIENT", "税务或征信数据缺失，无法自动测额，转人工补充资料后审核 (tax or credit-bureau data missing: referred to an officer)")
        return
    if g.risk_declined:
        n.refuse("RISK_GRADE", f"风险等级 {g.risk_grade} (PD {g.risk_pd:.2%}) 超出准入 — " + "; ".join(g.risk_reasons))
    if g.overdue_count_exceeded:
        n.refuse("OVERDUE_COUNT", f"近24个月逾期 {g.overdue_count_24m} 次，上限 {g.max_overdue_count_24m} 次")
    if g.overdue_days_exceeded:
        n.refuse("OVERDUE_DAYS", f"近24个月最长逾期 {g.overdue_days_24m} 天，上限 {g.max_overdue_days_24m} 天")
    if g.eligible:
        n.hit("eligibility.general", f"risk grade {g.risk_grade}, tech grade {g.tech_grade}")


def _credit_eligibility(n: _Notes, c: CreditEligibility) -> None:
    if c.tax_below_min:
        n.refuse("TAX_BELOW_MIN", f"年纳税 {format_cn(c.tax_total_fen or 0)} 低于信用贷款准入 {format_cn(c.min_annual_tax_fen)}")
    if c.tax_grade_refused:
        n.refuse("TAX_GRADE", f"纳税信用等级 {c.tax_credit_grade or '无'}，信用贷款要求 {'/'.join(c.allowed_tax_credit_grades)}")


def _credit(n: _Notes, c: CreditPortion) -> None:
    q, t = c.quick, c.tech
    def less(deducted: int) -> str:
        return f" − 既有信用类负债 {format_cn(deducted)}" if deducted else ""

    n.hit("credit.quick", f"年纳税 {format_cn(q.tax_total_fen)} × {q.multiplier} (风险 {q.risk_grade}){less(q.deducted_fen)} → {format_cn(q.limit_fen)}，"
                          f"上限 {format_cn(q.max_fen)}")
    if c.tech_line:
        n.hit("credit.tech", f"营收 {format_cn(t.revenue_fen)} × {t.revenue_ratio} × 科创等级 {t.tech_grade} 系数{less(t.deducted_fen)} → {format_cn(t.limit_fen)}")
        if c.fast_track and c.debt_known:
            n.hit("approval.fast_track", f"先行发放线上测额 {format_cn(c.approved_fen)}，其余 {format_cn(c.limit_fen - c.approved_fen)} 提交审批")
    if not c.debt_known:
        n.hit("credit.debt_unknown", "征信未显示既有贷款，信用额度转人工审批")
    if c.product is not None and not c.open_to_applicant:
        n.channel(c.product.name)
    if c.uplift_fen:
        n.hit("tech.uplift", f"科创评价提升信用额度 {format_cn(c.uplift_fen)}（无科创评价时 {format_cn(c.quick.limit_fen)}）")


def _collateral(n: _Notes, cap: CollateralCapacity) -> None:
    for row in cap.assets:
        a = row.asset
        if row.ltv is None:
            n.hit("secured.unknown_kind", f"{a.id}: 抵押物类型 {a.kind} 不在抵押率表中，不计入")
        else:
            n.hit("secured.asset", f"{a.id}: 评估 {format_cn(a.appraised_value_fen)} × {row.ltv} − 已担保债务 {format_cn(a.secured_debt_fen)} = {format_cn(row.capacity_fen)}")


def _secured(n: _Notes, s: SecuredPortion) -> None:
    if not s.open_to_applicant:
        n.channel(s.product.name)
    elif s.combined:
        n.hit("secured.combined", f"抵押 {format_cn(s.capacity_fen)}（其中余值 {format_cn(s.residual_fen)}）+ 信用 {format_cn(s.topup_fen)} → {format_cn(s.limit_fen)}")
    else:
        n.hit("secured.revolving", f"最高额抵押 {format_cn(s.capacity_fen)} → {s.product.name} {format_cn(s.limit_fen)}")


def _guarantee(n: _Notes, g: GuaranteedPortion) -> None:
    if not g.open_to_applicant:
        n.channel(g.product.name)
    else:
        n.hit("guarantee.sizing", f"担保 {format_cn(g.guarantee_fen)} ÷ 担保比例 {g.coverage_ratio} → {format_cn(g.limit_fen)}，上限 {format_cn(g.max_fen)}")


def _project(n: _Notes, p: ProjectSizing) -> None:
    if not p.open_to_applicant:
        n.channel(p.product.name)
    elif p.tenor_refused:
        n.refuse("PROJECT_TENOR", f"项目期限 {p.project.tenor_years} 年超过 {p.max_tenor_years} 年")
    else:
        existing = "征信未显示既有贷款，按无计（转人工审批）" if p.existing_debt_fen is None else (
            f"既有贷款 {format_cn(p.existing_debt_fen)} 年还款 {format_cn(p.existing_service_fen)}")
        n.hit(
            "project.sizing",
            f"{p.project.name}: 总投资 {format_cn(p.project.capex_fen)} × (1 − 资本金 {p.min_equity_ratio}) = {format_cn(p.by_equity_fen)}; "
            f"年现金流 {format_cn(p.project.annual_cash_flow_fen)} ÷ DSCR {p.min_dscr} − {existing} = 可还款 {format_cn(p.available_service_fen)}/年，"
            f"按 {format_rate_pct(p.rate_annual)} {p.product.repayment_method} {p.project.tenor_years} 年每万元年还本付息 "
            f"{format_cn(int(p.service_factor * 1_000_000))} → {format_cn(p.by_cash_flow_fen)}; 取 {format_cn(p.limit_fen)}"
            + ("" if p.dscr_at_limit is None else f"（偿债覆盖率 {p.dscr_at_limit}）"),
        )


def _pricing(n: _Notes, o: PricedOffer | None) -> None:
    if o is None:
        return
    p, product = o.price, o.product
    gap = f" + 数据缺口 {p.gap_bp}bp ({'、'.join(p.gaps)})" if p.gap_bp else ""
    tenor = "1年期" if p.lpr_tenor == "one_year" else "5年期以上"
    detail = (f"{product.name}: {tenor}LPR {format_rate_pct(p.lpr)}（期限{p.term_months}个月） + {p.spread_bp}bp{gap} − 科创优惠 "
              f"{p.discount_bp}bp = {format_rate_pct(p.base_rate)}")
    if p.preference_applied:
        names = "/".join(p.preferred)
        detail += f"；{names} 优惠：执行 {format_rate_pct(p.rate_annual)}（不高于 LPR {format_rate_pct(p.lpr)} + 优惠上限）"
        n.hit("pricing.preferential", f"{product.code}: {names} → {format_rate_pct(p.rate_annual)}")
    n.hit("pricing", detail)


def _inclusive(n: _Notes, i: InclusiveFlag) -> None:
    if not i.flagged:
        return
    size = "、".join(x for x in (None if i.headcount is None else f"从业人员 {i.headcount} 人",
                                 None if i.revenue_fen is None else f"营业收入 {format_cn(i.revenue_fen)}") if x)
    n.hit("inclusive.small_micro", f"普惠型小微：小微企业（{size}），单户授信 {format_cn(i.total_credit_fen)} ≤ {format_cn(i.max_total_credit_fen)}")


def explain(d: Decision) -> tuple[tuple[RuleHit, ...], tuple[str, ...]]:
    """(rule hits, reasons) of a decision, in the order its steps ran."""
    n = _Notes()
    _general(n, d.general)
    if d.credit_eligibility is not None:
        _credit_eligibility(n, d.credit_eligibility)
    if d.credit is not None:
        _credit(n, d.credit)
    if d.collateral is not None:
        _collateral(n, d.collateral)
    if d.secured is not None:
        _secured(n, d.secured)
    _pricing(n, d.secured_offer)
    _pricing(n, d.credit_offer)
    if d.guaranteed is not None:
        _guarantee(n, d.guaranteed)
    _pricing(n, d.guaranteed_offer)
    if d.project is not None:
        _project(n, d.project)
    _pricing(n, d.project_offer)
    if not d.offers and not n.reasons:
        n.refuse("NO_PRODUCT", "没有满足条件的产品")
    _inclusive(n, d.inclusive)
    if d.requested_fen is not None:
        n.hit("application.requested", f"申请 {format_cn(d.requested_fen)}，综合授信 {format_cn(d.comprehensive_limit_fen)}")
    return tuple(n.hits), tuple(n.reasons)
