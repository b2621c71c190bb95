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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import polars as pl

from sandu.analytics.delinquency import overdue_by_bucket, roll_rates
from sandu.ledger.overdue import RiskClass

DIMENSIONS = ("product", "branch", "industry", "tech_grade", "risk_grade")
NPL_CLASSES = (RiskClass.SUBSTANDARD.value, RiskClass.DOUBTFUL.value, RiskClass.LOSS.value)  # 不良: 次级、可疑、损失
RATIO = Decimal("0.0001")


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


def _open(lines: pl.DataFrame, as_of: date, branch: str | None) -> pl.DataFrame:
    """The lines (`sandu.analytics.service.LINE_SCHEMA`) opened by `as_of` (of one sub-branch, or all)."""
    return lines.filter((pl.col("opened_on") <= as_of) & (pl.lit(True) if branch is None else pl.col("branch") == branch))


def _with_balances(open_lines: pl.DataFrame, drawings: pl.DataFrame) -> pl.DataFrame:
    """`open_lines` with the principal and receivable of their drawings in `drawings` (0 without any)."""
    sums = drawings.group_by("line_id").agg(pl.col("principal_fen").sum(), pl.col("receivable_fen").sum())
    return open_lines.join(sums, on="line_id", how="left").with_columns(pl.col("principal_fen").fill_null(0),
                                                                       pl.col("receivable_fen").fill_null(0))


def time_to_cash(seconds: list[float]) -> dict[str, float | int | None]:
    if not seconds:
        return {"count": 0, "p50": None, "p90": None, "max": None}
    ordered = sorted(seconds)
    p90 = statistics.quantiles(ordered, n=10)[8] if len(ordered) >= 2 else ordered[0]
    return {"count": len(ordered), "p50": statistics.median(ordered), "p90": p90, "max": ordered[-1]}


def portfolio(as_of: date, lines: pl.DataFrame, drawings: pl.DataFrame, drawings_year_ago: pl.DataFrame,
              branch: str | None = None, seconds_to_cash: list[float] | None = None, decisions: dict[str, int] | None = None,
              expected_loss: dict[str, Any] | None = None, vintage_sums: Mapping[date, pl.DataFrame] | None = None,
              month_end_states: Sequence[tuple[date, pl.DataFrame]] = (), stage_movement: dict[str, Any] | None = None) -> Portfolio:
    """The figures as of `as_of` (of one sub-branch, or all). `lines` as `sandu.analytics.service.LINE_SCHEMA`;
    `drawings` the drawings owing anything through the day and `drawings_year_ago` a year earlier
    (`sandu.analytics.book.DRAWING_SCHEMA`); `month_end_states` the drawings owing anything at consecutive month ends
    (oldest first), for the roll rates; `vintage_sums` each month end's drawn and overdue amounts by line."""
    open_lines = _open(lines, as_of, branch)
    ids = open_lines["line_id"].implode()
    live = drawings.filter(pl.col("line_id").is_in(ids))
    rolls = roll_rates([(day, states.filter(pl.col("line_id").is_in(ids))) for day, states in month_end_states])
    book = _with_balances(open_lines, live)
    by: dict[str, list[Row]] = {}
    for dim in DIMENSIONS:
        groups = book.group_by(dim).agg(pl.len().alias("lines"), pl.col("limit_fen").sum(), pl.col("principal_fen").sum(),
                                        pl.col("receivable_fen").sum())
        rows = [Row(str(key), int(n), int(limit), int(principal), int(receivable)) for key, n, limit, principal, receivable in groups.iter_rows()]
        by[dim] = sorted(rows, key=lambda r: (-r.principal_fen, r.key))
    principal = int(book["principal_fen"].sum())
    tech = int(book.filter(pl.col("tech_sector"))["principal_fen"].sum())
    year_ago = as_of.replace(year=as_of.year - 1) if not (as_of.month == 2 and as_of.day == 29) else date(as_of.year - 1, 2, 28)
    then = _open(lines, year_ago, branch)
    tech_year_ago = int(_with_balances(then, drawings_year_ago.filter(pl.col("line_id").is_in(then["line_id"].implode())))
                        .filter(pl.col("tech_sector"))["principal_fen"].sum())
    shares = (book.group_by("branch").agg(pl.col("principal_fen").filter(pl.col("tech_sector")).sum().alias("tech"), pl.col("principal_fen").sum())
              .sort("branch"))
    share_by_branch = {b: _ratio(int(t), int(p)) for b, t, p in shares.iter_rows()}
    classes = {c.value: 0 for c in RiskClass}
    for cls, fen in live.group_by("risk_class").agg(pl.col("principal_fen").sum()).iter_rows():
        classes[cls] += int(fen)
    inclusive = book.filter(pl.col("inclusive") & (pl.col("principal_fen") > 0))
    return Portfolio(
        as_of=as_of, branch=branch, lines=len(open_lines), limit_fen=int(open_lines["limit_fen"].sum()),
        principal_fen=principal, receivable_fen=int(book["receivable_fen"].sum()), by=by,
        tech_principal_fen=tech, tech_principal_year_ago_fen=tech_year_ago,
        tech_growth=None if tech_year_ago == 0 else ((Decimal(tech) - tech_year_ago) / tech_year_ago).quantize(RATIO, rounding=ROUND_HALF_EVEN),
        tech_share=_ratio(tech, principal), tech_share_by_branch=share_by_branch,
        inclusive_principal_fen=int(inclusive["principal_fen"].sum()), inclusive_borrowers=inclusive["enterprise_id"].n_unique(),
        class_principal_fen=classes, npl_ratio=_ratio(sum(classes[c] for c in NPL_CLASSES), principal),
        overdue_fen=int(live["overdue_fen"].sum()), time_to_cash_s=time_to_cash(seconds_to_cash or []),
        decisions={o: (decisions or {}).get(o, 0) for o in ("approve", "partial", "refer", "decline")}, expected_loss=expected_loss,
        vintages={} if vintage_sums is None else vintages(open_lines, as_of, vintage_sums),
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


def vintages(lines: pl.DataFrame, as_of: date, sums: Mapping[date, pl.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    """Vintage curves: lines grouped by the month they opened; at each month end since (and on `as_of`), months on book,
    what the cohort had drawn so far and what of it is overdue, and the overdue rate. `sums` maps each of those days
    to what was drawn and what is overdue by line through it (line_id, drawn_fen, overdue_fen)."""
    opened = lines.filter(pl.col("opened_on") <= as_of).select("line_id", pl.col("opened_on").dt.strftime("%Y-%m").alias("cohort"))
    cohorts = sorted(opened["cohort"].unique().to_list())
    totals: dict[tuple[str, date], tuple[int, int]] = {}
    days = sorted({day for cohort in cohorts for day in month_ends(date(int(cohort[:4]), int(cohort[5:]), 1), as_of)[:MAX_VINTAGE_MONTHS + 1]})
    for day in days:
        for cohort, drawn, overdue in (opened.join(sums[day], on="line_id", how="inner").group_by("cohort")
                                       .agg(pl.col("drawn_fen").sum(), pl.col("overdue_fen").sum()).iter_rows()):
            totals[cohort, day] = (int(drawn), int(overdue))
    out: dict[str, list[dict[str, Any]]] = {}
    for cohort in cohorts:
        curve = []
        for k, day in enumerate(month_ends(date(int(cohort[:4]), int(cohort[5:]), 1), as_of)[:MAX_VINTAGE_MONTHS + 1]):
            drawn, overdue = totals.get((cohort, day), (0, 0))
            curve.append({"month_end": day.isoformat(), "months_on_book": k, "drawn_fen": drawn, "overdue_fen": overdue,
                          "overdue_rate": None if drawn == 0 else str(_ratio(overdue, drawn))})
        out[cohort] = curve
    return out
