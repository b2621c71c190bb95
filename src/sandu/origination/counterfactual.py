"""Counterfactuals (反事实): for a declined application, or a limit below the one asked for, the
smallest change in one of the applicant's own levers that would approve it or reach the request —
computed by the same engine that decided (`score_and_decide`), not by a rule of thumb.

Pure. The levers act on the sources' normalized payloads (`sandu.sources.schemas.validate`), so
every feature that depends on a changed figure changes with it (raising R&D spending raises the R&D
ratio and its growth; raising tax paid raises the quick-loan measure). Each change is bounded by
what is plausible in a year:

* ``rd_ratio`` — the latest year's R&D expense, up to +3 points of revenue;
* ``tax`` — the latest year's VAT and corporate income tax, up to +50 %;
* ``invoices`` — the last 12 months' sales invoices, up to +30 %;
* ``tech_staff`` — technical staff, up to +30 % of the headcount (never above it);
* ``collateral`` — an unencumbered industrial property offered, appraised up to 2 × the request
  (or 5,000万 without one);
* ``guarantee`` — a financing guarantee company's guarantee (担保, the policy's 担保快贷) arranged, up to the
  request (or 1,000万 without one), in whole 万; it changes the application, not the sources.

A lever of a source that was asked and did not answer (unavailable) is not tried: what it would change is not known.
Each lever changes one source's payload; only that one is checked again for each change tried (`CheckedSources`).

For each lever the change is searched on a grid of `GRID_STEPS` steps of its range by bisection
(the engine's limit does not fall as a lever rises; the answer is checked at the point found): the
smallest step that reaches the goal, or — when the whole range does not — the whole range with the
limit it would give, when that is more than today's. At most `len(LEVERS) × (log2(GRID_STEPS) + 2)`
evaluations of the engine.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from sandu.domain.enums import Outcome
from sandu.domain.money import format_cn
from sandu.policy.kernel import Application
from sandu.sources.profile import CheckedSources

GRID_STEPS = 64  # a lever's range in this many steps (bisection: 6 evaluations); a change is `step` of them
MAX_RD_BP = 300  # R&D expense: up to +3 points of revenue
MAX_RD_POINTS = Decimal(MAX_RD_BP) / 10_000  # the same as a ratio (the R&D ratio is shown as one)
RATIO_QUANTUM = Decimal("0.000001")  # a ratio lever is kept to 6 places
MAX_TAX_UPLIFT_PCT = 50
MAX_INVOICE_UPLIFT_PCT = 30
MAX_TECH_STAFF_PCT = 30  # of the headcount
DEFAULT_COLLATERAL_FEN = 50_000_000_00  # 5,000万 when nothing was asked for
DEFAULT_GUARANTEE_FEN = 1_000_000_000  # 1,000万 of guarantee when nothing was asked for
WAN_FEN = 1_000_000
Payloads = dict[str, dict[str, Any] | None]


class Decided(Protocol):
    """What the search asks of an evaluation: a `sandu.policy.engine.PolicyResult`, or the kernel's `Sized` (the same
    figures without the offers' prices, the steps' numbers and the record's explanation and terms)."""

    @property
    def outcome(self) -> Outcome: ...

    @property
    def comprehensive_limit_fen(self) -> int: ...


@dataclass(frozen=True)
class Counterfactual:
    lever: str
    before: int | Decimal  # fen or people (int), or a ratio (Decimal); never a float
    after: int | Decimal
    limit_fen: int  # the comprehensive limit the change gives
    reaches_goal: bool  # approves a declined application, or reaches the request
    text: str  # in words, Chinese

    def to_json(self) -> dict[str, Any]:
        def shown(v: int | Decimal) -> int | float:  # a ratio is published as a JSON number; amounts stay integers
            return float(v) if isinstance(v, Decimal) else v

        return {"lever": self.lever, "before": shown(self.before), "after": shown(self.after), "limit_fen": self.limit_fen,
                "reaches_goal": self.reaches_goal, "text": self.text}


@dataclass(frozen=True)
class _Lever:
    name: str
    source: str  # the one source whose payload it changes
    applies: Callable[[Payloads], bool]
    before: Callable[[Payloads], int | Decimal]
    change: Callable[[Payloads, int, int | None], Payloads]  # payloads, steps of the range (0..GRID_STEPS), the request → new payloads
    words: Callable[[int | Decimal, int | Decimal], str]


def _latest_year(p: Payloads) -> dict[str, Any] | None:
    tax = p.get("tax")
    years = tax.get("years") if tax else None
    return years[-1] if years else None


def _rd_ratio(p: Payloads) -> Decimal:
    """R&D expense ÷ revenue of the latest year, exactly, to 6 places (half to even)."""
    y = _latest_year(p)
    assert y is not None and y["revenue_fen"] and y["rd_expense_fen"] is not None
    return (Decimal(y["rd_expense_fen"]) / Decimal(y["revenue_fen"])).quantize(RATIO_QUANTUM, rounding=ROUND_HALF_EVEN)


def _copied(p: Payloads, source: str) -> Payloads:
    """`p` with its own copy of `source`'s payload, to change (the others are shared, unchanged)."""
    return {**p, source: copy.deepcopy(p.get(source))}


def _with_latest(p: Payloads, update: Callable[[dict[str, Any]], None]) -> Payloads:
    out = _copied(p, "tax")
    y = _latest_year(out)
    assert y is not None
    update(y)
    return out


def _uplift(amount: int, max_pct: int, step: int) -> int:
    """`amount` raised by `step`/GRID_STEPS of `max_pct` %, rounded down, in integers (fen or people)."""
    return amount * (100 * GRID_STEPS + max_pct * step) // (100 * GRID_STEPS)


def _raise_rd(p: Payloads, step: int, _: int | None) -> Payloads:
    def up(y: dict[str, Any]) -> None:
        y["rd_expense_fen"] += y["revenue_fen"] * MAX_RD_BP * step // (10_000 * GRID_STEPS)
    return _with_latest(p, up)


def _raise_tax(p: Payloads, step: int, _: int | None) -> Payloads:
    def up(y: dict[str, Any]) -> None:
        y["vat_fen"] = _uplift(y["vat_fen"], MAX_TAX_UPLIFT_PCT, step)
        y["cit_fen"] = _uplift(y["cit_fen"], MAX_TAX_UPLIFT_PCT, step)
    return _with_latest(p, up)


def _raise_invoices(p: Payloads, step: int, _: int | None) -> Payloads:
    out = _copied(p, "invoices")
    inv = out["invoices"]
    assert inv is not None
    inv["sales_invoice_fen"] = _uplift(inv["sales_invoice_fen"], MAX_INVOICE_UPLIFT_PCT, step)
    return out


def _raise_tech_staff(p: Payloads, step: int, _: int | None) -> Payloads:
    out = _copied(p, "social_insurance")
    si = out["social_insurance"]
    assert si is not None
    extra = (2 * si["headcount"] * MAX_TECH_STAFF_PCT * step + 100 * GRID_STEPS) // (200 * GRID_STEPS)  # rounded half up
    si["tech_staff"] = min(si["headcount"], si["tech_staff"] + extra)
    return out


def _collateral_fen(step: int, requested_fen: int | None) -> int:
    top = 2 * requested_fen if requested_fen else DEFAULT_COLLATERAL_FEN
    return top * step // GRID_STEPS // 1_000_000 * 1_000_000  # whole 万


def _offer_collateral(p: Payloads, step: int, requested_fen: int | None) -> Payloads:
    out = _copied(p, "collateral")
    assets = list((out.get("collateral") or {}).get("assets") or [])
    assets.append({"id": "counterfactual", "kind": "industrial_property", "appraised_value_fen": _collateral_fen(step, requested_fen),
                   "secured_debt_fen": 0})
    out["collateral"] = {"assets": assets}
    return out


def _has(source: str, *keys: str) -> Callable[[Payloads], bool]:
    def check(p: Payloads) -> bool:
        payload = p.get(source)
        return payload is not None and all(payload.get(k) is not None for k in keys)
    return check


def _tax_ok(*keys: str) -> Callable[[Payloads], bool]:
    def check(p: Payloads) -> bool:
        y = _latest_year(p)
        return y is not None and all(y.get(k) is not None for k in keys) and bool(y.get("revenue_fen"))
    return check


LEVERS: tuple[_Lever, ...] = (
    _Lever("rd_ratio", "tax", _tax_ok("rd_expense_fen"), _rd_ratio, _raise_rd, lambda a, b: f"研发投入占比由 {a:.1%} 提高到 {b:.1%}"),
    _Lever("tax", "tax", _tax_ok("vat_fen", "cit_fen"), lambda p: _latest_year(p)["vat_fen"] + _latest_year(p)["cit_fen"],  # type: ignore[index]
           _raise_tax, lambda a, b: f"年纳税由 {format_cn(int(a))} 提高到 {format_cn(int(b))}"),
    _Lever("invoices", "invoices", _has("invoices", "sales_invoice_fen"), lambda p: p["invoices"]["sales_invoice_fen"],  # type: ignore[index]
           _raise_invoices, lambda a, b: f"近12个月开票由 {format_cn(int(a))} 提高到 {format_cn(int(b))}"),
    _Lever("tech_staff", "social_insurance", _has("social_insurance", "tech_staff", "headcount"), lambda p: p["social_insurance"]["tech_staff"],  # type: ignore[index]
           _raise_tech_staff, lambda a, b: f"科技人员由 {a} 人增加到 {b} 人"),
    _Lever("collateral", "collateral", lambda p: True, lambda p: 0, _offer_collateral, lambda a, b: f"提供评估价值 {format_cn(int(b))} 的厂房抵押"),
)


def _after(lever: _Lever, payloads: Payloads, step: int, requested_fen: int | None) -> int | Decimal:
    if lever.name == "collateral":
        return _collateral_fen(step, requested_fen)
    return lever.before(lever.change(payloads, step, requested_fen))


def counterfactuals(
    uscc: str,
    checked: CheckedSources,
    app: Application,
    result: Decided,
    decide: Callable[[Any], Decided],
    deciding: Callable[[Any], Callable[[Application], Decided]] | None = None,
) -> tuple[Counterfactual, ...]:
    """For a decline, or a comprehensive limit below `app.requested_fen`: per lever, the smallest change
    that approves it or reaches the request (or the most the lever can give). `checked`: the sources the decision's
    profile was built of, as checked then (each lever's change is checked again, the rest is not). `decide` maps a profile
    to the engine's result (the same bundle, model and tech config that decided); `deciding` maps a
    profile to a function of the application giving it — the profile scored once for every application tried (without
    it, the application's levers — a guarantee — are not tried).
    Empty otherwise."""
    declined = result.outcome == Outcome.DECLINE
    short = app.requested_fen is not None and result.comprehensive_limit_fen < app.requested_fen
    if not (declined or short):
        return ()
    normalized: Payloads = checked.reads()  # each source as the measurement checked it; a change checks its own again
    unavailable = checked.unavailable

    def limit_with(lever: _Lever, p: Payloads) -> tuple[int, bool]:
        r = decide(checked.changed(lever.source, p[lever.source]).profile(uscc, hashed=False))  # tried, not recorded
        reached = (r.outcome != Outcome.DECLINE and r.comprehensive_limit_fen > 0) if declined else \
            r.comprehensive_limit_fen >= (app.requested_fen or 0)
        return r.comprehensive_limit_fen, reached

    out: list[Counterfactual] = []
    for lever in LEVERS:  # a handful, each a bounded bisection
        if not lever.applies(normalized) or lever.source in unavailable:  # asked and not answered: what it changes is not known
            continue
        top_limit, top_reached = limit_with(lever, lever.change(normalized, GRID_STEPS, app.requested_fen))
        if not top_reached:
            if top_limit > result.comprehensive_limit_fen:
                out.append(_found(lever, normalized, GRID_STEPS, app, top_limit, False))
            continue
        low, high = 0, GRID_STEPS  # the goal is not met at low (today) and is met at high
        best_limit = top_limit
        while high - low > 1:
            middle = (low + high) // 2
            limit, reached = limit_with(lever, lever.change(normalized, middle, app.requested_fen))
            if reached:
                high, best_limit = middle, limit
            else:
                low = middle
        out.append(_found(lever, normalized, high, app, best_limit, True))
    if deciding is not None:
        today = checked.profile(uscc, hashed=False)
        decide_today = deciding(today)  # scored once: the guarantee changes the application, not the profile
        found = _guarantee(app, result, declined, lambda g: decide_today(replace(app, guarantee_fen=g)))
        if found is not None:
            out.append(found)
    return tuple(out)


def _guarantee_fen(step: int, app: Application) -> int:
    top = app.requested_fen or DEFAULT_GUARANTEE_FEN
    return (app.guarantee_fen or 0) + top * step // GRID_STEPS // WAN_FEN * WAN_FEN  # whole 万 more


def _guarantee(app: Application, result: Decided, declined: bool, decide: Callable[[int], Decided]) -> Counterfactual | None:
    """The smallest guarantee (on the grid) that reaches the goal, or the most one can give."""
    def reached(r: Decided) -> bool:
        return (r.outcome != Outcome.DECLINE and r.comprehensive_limit_fen > 0) if declined else r.comprehensive_limit_fen >= (app.requested_fen or 0)

    before = app.guarantee_fen or 0
    top = decide(_guarantee_fen(GRID_STEPS, app))
    if not reached(top):
        if top.comprehensive_limit_fen <= result.comprehensive_limit_fen:
            return None
        step, limit, reaches = GRID_STEPS, top.comprehensive_limit_fen, False
    else:
        low, high, limit = 0, GRID_STEPS, top.comprehensive_limit_fen
        while high - low > 1:
            middle = (low + high) // 2
            r = decide(_guarantee_fen(middle, app))
            if reached(r):
                high, limit = middle, r.comprehensive_limit_fen
            else:
                low = middle
        step, reaches = high, True
    after = _guarantee_fen(step, app)
    words = f"提供融资担保公司担保 {format_cn(after)}" if not before else f"担保由 {format_cn(before)} 提高到 {format_cn(after)}"
    outcome = f"额度可提高至 {format_cn(limit)}"
    return Counterfactual("guarantee", before, after, limit, reaches,
                          f"若{words}，{outcome}" + ("" if reaches else "（单项调整的上限，仍低于申请额度）"))


def _found(lever: _Lever, payloads: Payloads, step: int, app: Application, limit_fen: int, reaches: bool) -> Counterfactual:
    before, after = lever.before(payloads), _after(lever, payloads, step, app.requested_fen)
    outcome = f"额度可提高至 {format_cn(limit_fen)}" if reaches or limit_fen else "仍无法获批"
    text = f"若{lever.words(before, after)}，{outcome}" + ("" if reaches else "（单项调整的上限，仍低于申请额度）")
    return Counterfactual(lever.name, before, after, limit_fen, reaches, text)
