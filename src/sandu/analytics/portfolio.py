"""The portfolio as of a day, from the journal: pure.

The service (`sandu.analytics.service`) reads each credit line's attributes (sub-branch, industry, product,
tech and risk grade of the decision it was signed from, 普惠型小微) and each drawing's receivable balances
summed from the journal's postings through the day (never from the balances kept on rows), and the five
categories as of the day from the classification history; this module turns them into the figures a bank
reports: balances and limits by product, sub-branch, industry, tech grade and risk grade; the tech-sector
(科技型) loan balance, its year-on-year growth and its share of each sub-branch's lending; 普惠型小微
balances and borrowers; the five categories and the NPL ratio; overdue amounts; and the time from
measurement to first drawing.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sandu.analytics.delinquency import overdue_by_bucket, roll_rates
from sandu.ledger.overdue import RiskClass

DIMENSIONS = ("product", "branch", "industry", "tech_grade", "risk_grade")
NPL_CLASSES = (RiskClass.SUBSTANDARD.value, RiskClass.DOUBTFUL.value, RiskClass.LOSS.value)  # 不良: 次级、可疑、损失
PRINCIPAL_BUCKETS = ("principal", "overdue_principal")
OVERDUE_BUCKETS = ("overdue_principal", "overdue_interest", "penalty", "compound")
RATIO = Decimal("0.0001")


@dataclass(frozen=True)
class LineFacts:
    """What a report needs of one credit line, as signed."""

    line_id: int
    enterprise_id: int
    branch: str
    industry: str
    product: str
    limit_fen: int
    opened_on: date
    tech_grade: str
    risk_grade: str
    tech_sector: bool  # 科技型: the tech evaluation qualified the borrower (科技型中小企业 or 创新型中小企业)
    inclusive: bool  # 普惠型小微, as the decision flagged it


@dataclass(frozen=True)
class DrawingBalance:
    line_id: int
    drawing_id: int
    buckets: Mapping[str, int]  # bucket → fen receivable, from the journal through the day
    risk_class: str  # as of the day
    dpd: int = 0  # days past due as of the day (from the ageing history)

    @property
    def principal_fen(self) -> int:
        return sum(self.buckets.get(b, 0) for b in PRINCIPAL_BUCKETS)

    @property
    def receivable_fen(self) -> int:
        return sum(self.buckets.values())

    @property
    def overdue_fen(self) -> int:
        return sum(self.buckets.get(b, 0) for b in OVERDUE_BUCKETS)


@dataclass(frozen=True)
class Row:
    key: str
    lines: int
    limit_fen: int
    principal_fen: int
    receivable_fen: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "lines": self.lines, "limit_fen": self.limit_fen, "principal_fen": self.principal_fen,
                "receivable_fen": self.receivable_fen}


@dataclass(frozen=True)
class Portfolio:
    as_of: date
    branch: str | None  # one sub-branch's, or the bank's (None)
    lines: int
    limit_fen: int
    principal_fen: int
    receivable_fen: int
    by: dict[str, list[Row]]  # dimension → rows, largest principal first
    tech_principal_fen: int
    tech_principal_year_ago_fen: int
    tech_growth: Decimal | None  # year on year; None without a balance a year ago
    tech_share: Decimal | None  # of the principal; None without any
    tech_share_by_branch: dict[str, Decimal | None]
    inclusive_principal_fen: int
    inclusive_borrowers: int
    class_principal_fen: dict[str, int]  # 五级分类 → principal
    npl_ratio: Decimal | None
    overdue_fen: int  # overdue principal and interest, penalty and compound interest
    time_to_cash_s: dict[str, float | int | None] = field(default_factory=dict)  # count, p50, p90, max
    decisions: dict[str, int] = field(default_factory=dict)  # the last 30 days' decisions by outcome (approvals)
    expected_loss: dict[str, Any] | None = None  # IFRS 9 provisions (`sandu.analytics.ecl.provisions`) as of the day
    vintages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cohort (month opened) → curve by months on book
    dpd_buckets: dict[str, dict[str, int]] = field(default_factory=dict)  # DPD bucket → drawings, principal, overdue, receivable
    roll_rates: list[dict[str, Any]] = field(default_factory=list)  # month end → next month end transition matrices
    stage_movement: dict[str, Any] | None = None  # IFRS 9 stages from the report's `from` day to its day

    def to_json(self) -> dict[str, Any]:
        ratio = (lambda r: None if r is None else str(r))  # noqa: E731
        return {
            "as_of": self.as_of.isoformat(), "branch": self.branch, "lines": self.lines, "limit_fen": self.limit_fen,
            "principal_fen": self.principal_fen, "receivable_fen": self.receivable_fen,
            "by": {d: [r.to_json() for r in rows] for d, rows in self.by.items()},
            "tech": {"principal_fen": self.tech_principal_fen, "principal_year_ago_fen": self.tech_principal_year_ago_fen,
                     "growth": ratio(self.tech_growth), "share": ratio(self.tech_share),
                     "share_by_branch": {b: ratio(s) for b, s in self.tech_share_by_branch.items()}},
            "inclusive": {"principal_fen": self.inclusive_principal_fen, "borrowers": self.inclusive_borrowers},
            "classes": self.class_principal_fen, "npl_ratio": ratio(self.npl_ratio), "overdue_fen": self.overdue_fen,
            "time_to_cash_s": self.time_to_cash_s, "decisions_30d": self.decisions, "expected_loss": self.expected_loss,
            "vintages": self.vintages, "dpd_buckets": self.dpd_buckets, "roll_rates": self.roll_rates, "stage_movement": self.stage_movement,
        }


def _ratio(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / whole).quantize(RATIO, rounding=ROUND_HALF_EVEN)


def _open(lines: Iterable[LineFacts], as_of: date, branch: str | None) -> dict[int, LineFacts]:
    return {ln.line_id: ln for ln in lines if ln.opened_on <= as_of and (branch is None or ln.branch == branch)}


def _principal_by_line(drawings: Iterable[DrawingBalance], open_lines: Mapping[int, LineFacts]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for d in drawings:
        if d.line_id in open_lines:
            out[d.line_id] += d.principal_fen
    return out


def time_to_cash(seconds: list[float]) -> dict[str, float | int | None]:
    if not seconds:
        return {"count": 0, "p50": None, "p90": None, "max": None}
    ordered = sorted(seconds)
    p90 = statistics.quantiles(ordered, n=10)[8] if len(ordered) >= 2 else ordered[0]
    return {"count": len(ordered), "p50": statistics.median(ordered), "p90": p90, "max": ordered[-1]}


def portfolio(as_of: date, lines: list[LineFacts], drawings: list[DrawingBalance], drawings_year_ago: list[DrawingBalance],
              branch: str | None = None, seconds_to_cash: list[float] | None = None, decisions: dict[str, int] | None = None,
              expected_loss: dict[str, Any] | None = None,
              vintage_sums: Mapping[date, tuple[Mapping[int, int], Mapping[int, int]]] | None = None,
              month_end_states: Sequence[tuple[date, Mapping[int, tuple[int, int, int]]]] = (),
              stage_movement: dict[str, Any] | None = None) -> Portfolio:
    """The figures as of `as_of` (of one sub-branch, or all); `drawings_year_ago` are the balances a year earlier;
    `month_end_states` at consecutive month ends (oldest first), each drawing owing anything → (its line, DPD,
    principal), for the roll rates."""
    open_lines = _open(lines, as_of, branch)
    live = [d for d in drawings if d.line_id in open_lines]
    rolls = roll_rates([(day, {i: (dpd, fen) for i, (line_id, dpd, fen) in states.items() if line_id in open_lines})
                        for day, states in month_end_states])
    by_line = _principal_by_line(live, open_lines)
    receivable_by_line: dict[int, int] = defaultdict(int)
    for d in live:
        receivable_by_line[d.line_id] += d.receivable_fen
    by: dict[str, list[Row]] = {}
    for dim in DIMENSIONS:
        groups: dict[str, list[LineFacts]] = defaultdict(list)
        for ln in open_lines.values():
            groups[str(getattr(ln, dim))].append(ln)
        rows = [Row(key, len(g), sum(x.limit_fen for x in g), sum(by_line.get(x.line_id, 0) for x in g),
                    sum(receivable_by_line.get(x.line_id, 0) for x in g)) for key, g in groups.items()]
        by[dim] = sorted(rows, key=lambda r: (-r.principal_fen, r.key))
    principal = sum(by_line.values())
    tech = sum(p for line_id, p in by_line.items() if open_lines[line_id].tech_sector)
    year_ago = as_of.replace(year=as_of.year - 1) if not (as_of.month == 2 and as_of.day == 29) else date(as_of.year - 1, 2, 28)
    lines_year_ago = _open(lines, year_ago, branch)
    tech_year_ago = sum(p for line_id, p in _principal_by_line(drawings_year_ago, lines_year_ago).items() if lines_year_ago[line_id].tech_sector)
    share_by_branch: dict[str, Decimal | None] = {}
    for b in sorted({ln.branch for ln in open_lines.values()}):
        ids = [i for i, ln in open_lines.items() if ln.branch == b]
        share_by_branch[b] = _ratio(sum(by_line.get(i, 0) for i in ids if open_lines[i].tech_sector), sum(by_line.get(i, 0) for i in ids))
    classes = {c.value: 0 for c in RiskClass}
    for d in live:
        classes[d.risk_class] += d.principal_fen
    inclusive_ids = [i for i, ln in open_lines.items() if ln.inclusive and by_line.get(i, 0) > 0]
    return Portfolio(
        as_of=as_of, branch=branch, lines=len(open_lines), limit_fen=sum(ln.limit_fen for ln in open_lines.values()),
        principal_fen=principal, receivable_fen=sum(receivable_by_line.values()), by=by,
        tech_principal_fen=tech, tech_principal_year_ago_fen=tech_year_ago,
        tech_growth=None if tech_year_ago == 0 else ((Decimal(tech) - tech_year_ago) / tech_year_ago).quantize(RATIO, rounding=ROUND_HALF_EVEN),
        tech_share=_ratio(tech, principal), tech_share_by_branch=share_by_branch,
        inclusive_principal_fen=sum(by_line[i] for i in inclusive_ids),
        inclusive_borrowers=len({open_lines[i].enterprise_id for i in inclusive_ids}),
        class_principal_fen=classes, npl_ratio=_ratio(sum(classes[c] for c in NPL_CLASSES), principal),
        overdue_fen=sum(d.overdue_fen for d in live), time_to_cash_s=time_to_cash(seconds_to_cash or []),
        decisions={o: (decisions or {}).get(o, 0) for o in ("approve", "partial", "refer", "decline")}, expected_loss=expected_loss,
        vintages={} if vintage_sums is None else vintages(list(open_lines.values()), as_of, vintage_sums),
        dpd_buckets=overdue_by_bucket(live), roll_rates=rolls, stage_movement=stage_movement,
    )


MAX_VINTAGE_MONTHS = 24  # months on book a vintage curve follows


def month_ends(first: date, last: date) -> list[date]:
    """The last day of each month from `first`'s through the one before `last`'s, then `last` itself."""
    out, y, mo = [], first.year, first.month
    while (y, mo) < (last.year, last.month):
        nxt = date(y + (mo == 12), mo % 12 + 1, 1)
        out.append(nxt - timedelta(days=1))
        y, mo = nxt.year, nxt.month
    return [*out, last]


def last_month_ends(day: date, n: int) -> list[date]:
    """The last `n` month ends on or before `day`, oldest first (`day` itself when it ends its month)."""
    assert 0 <= n <= 1200, "a bounded number of month ends"
    out: list[date] = []
    end = day if (day + timedelta(days=1)).day == 1 else date(day.year, day.month, 1) - timedelta(days=1)
    while len(out) < n:
        out.append(end)
        end = date(end.year, end.month, 1) - timedelta(days=1)
    return out[::-1]


def vintages(lines: list[LineFacts], as_of: date, sums: Mapping[date, tuple[Mapping[int, int], Mapping[int, int]]]) -> dict[str, list[dict[str, Any]]]:
    """Vintage curves: lines grouped by the month they opened; at each month end since (and on `as_of`), months on book,
    what the cohort had drawn so far and what of it is overdue, and the overdue rate. `sums` maps each of those days
    to (drawn by line, overdue by line) through it."""
    cohorts: dict[str, list[int]] = defaultdict(list)
    for ln in lines:
        if ln.opened_on <= as_of:
            cohorts[ln.opened_on.strftime("%Y-%m")].append(ln.line_id)
    out: dict[str, list[dict[str, Any]]] = {}
    for cohort, ids in sorted(cohorts.items()):
        start = date(int(cohort[:4]), int(cohort[5:]), 1)
        curve = []
        for k, day in enumerate(month_ends(start, as_of)[:MAX_VINTAGE_MONTHS + 1]):
            drawn_by, overdue_by = sums[day]
            drawn, overdue = sum(drawn_by.get(i, 0) for i in ids), sum(overdue_by.get(i, 0) for i in ids)
            curve.append({"month_end": day.isoformat(), "months_on_book": k, "drawn_fen": drawn, "overdue_fen": overdue,
                          "overdue_rate": None if drawn == 0 else str(_ratio(overdue, drawn))})
        out[cohort] = curve
    return out
