"""Expected credit loss (IFRS 9 / 新金融工具准则): pure.

Each open drawing is staged by the bundle's rules (`PolicyBundle.expected_loss`) — stage 3 when credit-impaired
(beyond `stage3_dpd` days past due, or classified in `stage3_classes`), stage 2 on a significant increase in credit
risk (beyond `stage2_dpd`, or a risk grade `stage2_grade_downgrade` grades worse than at origination), stage 1
otherwise — and provisioned ECL = PD × LGD × EAD: the 12-month PD (the scorecard's calibrated PD of the borrower's
latest decision) in stage 1, the lifetime PD over the drawing's remaining term, 1 − (1 − PD)^years, in stage 2, and 1
in stage 3; LGD by product kind; EAD what is owed on the drawing. An active revolving line's undrawn limit adds
`ccf` × undrawn as an exposure at the line's worst stage (stage 1 without a drawing). Amounts are rounded to the
fen once per exposure, half to even.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sandu.policy.bundle import GRADE_ORDER, ExpectedLoss

DAYS_PER_YEAR = 365
_CONTEXT = decimal.Context(prec=34, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class DrawingRisk:
    line_id: int
    drawing_id: int
    owed_fen: int  # principal, interest, penalty and compound interest owed
    dpd: int
    risk_class: str
    maturity_on: date


@dataclass(frozen=True)
class LineRisk:
    line_id: int
    product: str
    kind: str  # the product's kind: credit | secured | project | guaranteed
    branch: str
    limit_fen: int
    drawn_principal_fen: int
    revolving_active: bool  # revolving and active: the undrawn limit may still be drawn
    origination_grade: str
    current_grade: str
    pd_12m: Decimal


@dataclass(frozen=True)
class Exposure:
    line_id: int
    drawing_id: int | None  # None: the undrawn part of the line
    product: str
    branch: str
    stage: int
    pd: Decimal
    lgd: Decimal
    ead_fen: int
    ecl_fen: int


def downgrade(origination: str, current: str) -> int:
    """How many risk grades worse `current` is than `origination` (0 when better or unknown)."""
    if origination not in GRADE_ORDER or current not in GRADE_ORDER:
        return 0
    return max(0, GRADE_ORDER.index(current) - GRADE_ORDER.index(origination))


def stage(rules: ExpectedLoss, dpd: int, risk_class: str, grades_down: int) -> int:
    if dpd > rules.stage3_dpd or risk_class in rules.stage3_classes:
        return 3
    if dpd > rules.stage2_dpd or grades_down >= rules.stage2_grade_downgrade:
        return 2
    return 1


def lifetime_pd(pd_12m: Decimal, years: Decimal) -> Decimal:
    """1 − (1 − PD)^years: the probability of default over `years` at a constant 12-month PD (at least the 12-month PD)."""
    assert Decimal(0) <= pd_12m <= 1 and years >= 0
    if years <= 1:
        return pd_12m
    with decimal.localcontext(_CONTEXT):
        return 1 - (1 - pd_12m) ** years


def _fen(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def exposures(rules: ExpectedLoss, as_of: date, lines: list[LineRisk], drawings: list[DrawingRisk]) -> list[Exposure]:
    by_line: dict[int, list[DrawingRisk]] = defaultdict(list)
    for d in drawings:
        by_line[d.line_id].append(d)
    out: list[Exposure] = []
    for ln in lines:
        lgd = rules.lgd[ln.kind]
        down = downgrade(ln.origination_grade, ln.current_grade)
        worst = 1
        for d in by_line.get(ln.line_id, []):
            st = stage(rules, d.dpd, d.risk_class, down)
            worst = max(worst, st)
            years = Decimal(max(0, (d.maturity_on - as_of).days)) / DAYS_PER_YEAR
            pd = Decimal(1) if st == 3 else lifetime_pd(ln.pd_12m, years) if st == 2 else ln.pd_12m
            out.append(Exposure(ln.line_id, d.drawing_id, ln.product, ln.branch, st, pd, lgd, d.owed_fen, _fen(pd * lgd * d.owed_fen)))
        undrawn = max(0, ln.limit_fen - ln.drawn_principal_fen) if ln.revolving_active else 0
        if undrawn:
            ead = _fen(rules.ccf * undrawn)
            pd = Decimal(1) if worst == 3 else ln.pd_12m  # the undrawn part is drawn within the line's 12-month term
            out.append(Exposure(ln.line_id, None, ln.product, ln.branch, worst, pd, lgd, ead, _fen(pd * lgd * ead)))
    return out


def provisions(exposures: list[Exposure]) -> dict[str, Any]:
    """ECL and EAD by stage, product and sub-branch, and in total."""
    def group(key) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(lambda: {"ead_fen": 0, "ecl_fen": 0})
        for e in exposures:
            out[str(key(e))]["ead_fen"] += e.ead_fen
            out[str(key(e))]["ecl_fen"] += e.ecl_fen
        return dict(sorted(out.items()))

    return {"ecl_fen": sum(e.ecl_fen for e in exposures), "ead_fen": sum(e.ead_fen for e in exposures),
            "by_stage": group(lambda e: e.stage), "by_product": group(lambda e: e.product), "by_branch": group(lambda e: e.branch)}

