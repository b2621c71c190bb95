"""The credit policy over a whole table: the same rules as one application, column by column.

`evaluate_frame` runs `sandu.policy.rules` with the polars backend over a table
of applications (one row each, the columns of `INPUT_SCHEMA`) and returns one
row per application with the outcome, the grades, the comprehensive limit,
each offer (product, limit, approved part, rate, 年化利率, LPR tenor) and the
checks that refused. It is the scalar engine's twin, not a copy: both run the
same rule functions, and a test proves them equal row for row.

Each step's value becomes a column of one lazy plan (a `with_columns` node per
value) that the next step reads by name, so that the plan stays small and every
value is computed once; one `collect` runs it, and a value no output reads is not
computed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from sandu.domain.errors import InvalidInput
from sandu.policy import rules
from sandu.policy.bundle import PolicyBundle
from sandu.policy.ops import FrameOps
from sandu.sources.profile import MAX_COLLATERAL_ASSETS

MAX_ROWS_PER_FRAME = 5_000_000  # a larger table is evaluated in batches by its caller

ASSET = pl.Struct({"kind": pl.String, "appraised_value_fen": pl.Int64, "secured_debt_fen": pl.Int64})
INPUT_SCHEMA: dict[str, Any] = {
    # the profile's features (null: not evidenced)
    "revenue_fen": pl.Int64,
    "tax_total_fen": pl.Int64,
    "tax_credit_grade": pl.String,
    "overdue_count_24m": pl.Int64,
    "max_overdue_days_24m": pl.Int64,
    "headcount": pl.Int64,
    "loans_outstanding_fen": pl.Int64,
    "secured_debt_fen": pl.Int64,
    "certifications": pl.List(pl.String),
    "sources_not_read": pl.List(pl.String),
    "sources_unavailable": pl.List(pl.String),
    # the scores
    "tech_grade": pl.String,
    "tech_most_pass": pl.Boolean,
    "risk_pd": pl.Decimal(38, 18),
    # the application
    "has_bank_account": pl.Boolean,
    "project_capex_fen": pl.Int64,  # all three null: no project
    "project_annual_cash_flow_fen": pl.Int64,
    "project_tenor_years": pl.Int64,
    "collateral": pl.List(ASSET),
    "guarantee_fen": pl.Int64,  # a financing guarantee arranged (null or 0: none)
}
REQUIRED = ("tech_grade", "tech_most_pass", "risk_pd", "has_bank_account")  # never null
COUNTS = ("revenue_fen", "tax_total_fen", "overdue_count_24m", "max_overdue_days_24m", "headcount", "loans_outstanding_fen", "secured_debt_fen", "guarantee_fen")
PROJECT = ("project_capex_fen", "project_annual_cash_flow_fen", "project_tenor_years")
FLAGS = ("eligible", "data_missing", "required_gap", "risk_declined", "overdue_count_exceeded", "overdue_days_exceeded", "tax_below_min",
         "tax_grade_refused", "credit_eligible", "tech_line", "fast_track", "tenor_refused", "small_micro")


def _refuse(column: str, reason: str, allowed: str, bad: pl.DataFrame | None = None) -> None:
    where = "" if bad is None or bad.is_empty() else f" (first at row {bad['_row'][0]})"
    raise InvalidInput(column, reason + where, allowed)


def check_frame(bundle: PolicyBundle, frame: pl.DataFrame) -> pl.DataFrame:
    """The table cast to `INPUT_SCHEMA` with a row number, or `InvalidInput` naming the first bad column."""
    if frame.height > MAX_ROWS_PER_FRAME:
        _refuse("rows", f"{frame.height} rows in one table", f"at most {MAX_ROWS_PER_FRAME}: evaluate in batches")
    missing = [c for c in INPUT_SCHEMA if c not in frame.columns]
    if missing:
        _refuse(missing[0], "column missing", f"the columns {', '.join(INPUT_SCHEMA)}")
    try:
        typed = frame.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
                             *(pl.col(c).cast(t, strict=True) for c, t in INPUT_SCHEMA.items()))
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, pl.exceptions.SchemaError) as exc:
        bad = next((c for c, t in INPUT_SCHEMA.items() if not _casts(frame[c], t)), "columns")
        raise InvalidInput(bad, f"cannot be read as {INPUT_SCHEMA.get(bad, 'the schema')}: {str(exc).splitlines()[0]}",
                           str(INPUT_SCHEMA.get(bad, ""))) from None
    for c in REQUIRED:
        _check(typed, c, pl.col(c).is_null(), "null where a value is required", "a value in every row")
    for c in (*COUNTS, *PROJECT):
        _check(typed, c, pl.col(c) < 0, "negative", "an integer ≥ 0 or null")
    _check(typed, "risk_pd", (pl.col("risk_pd") < 0) | (pl.col("risk_pd") > 1), "outside 0..1", "a probability within 0..1")
    grades = [g.grade for g in bundle.tech_grades]
    _check(typed, "tech_grade", ~pl.col("tech_grade").is_in(grades), f"not a grade of policy {bundle.label}'s tech_grades", "/".join(grades))
    some = pl.any_horizontal(*(pl.col(c).is_not_null() for c in PROJECT))
    _check(typed, "project_capex_fen", some & pl.any_horizontal(*(pl.col(c).is_null() for c in PROJECT)),
           "a project needs its capex, annual cash flow and tenor together", "all three or none")
    _check(typed, "project_tenor_years", pl.col("project_tenor_years") == 0, "a project has a tenor of at least one year", "1 or more")
    for c in PROJECT[:2]:
        _check(typed, c, pl.col(c) == 0, "a project's capex and annual cash flow are at least 1 fen", "1 or more, or null without a project")
    _check(typed, "collateral", pl.col("collateral").list.len() > MAX_COLLATERAL_ASSETS, f"more than {MAX_COLLATERAL_ASSETS} assets",
           f"at most {MAX_COLLATERAL_ASSETS}")
    assets = pl.col("collateral").list.eval(pl.element().struct.field("appraised_value_fen").is_null()
                                            | pl.element().struct.field("secured_debt_fen").is_null()
                                            | pl.element().struct.field("kind").is_null()
                                            | (pl.element().struct.field("appraised_value_fen") < 0)
                                            | (pl.element().struct.field("secured_debt_fen") < 0)).list.any()
    _check(typed, "collateral", assets, "an asset without kind, or a negative or missing amount", "kind, appraised_value_fen ≥ 0, secured_debt_fen ≥ 0")
    return typed


def _casts(series: pl.Series, dtype: Any) -> bool:
    try:
        series.cast(dtype, strict=True)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        return False
    return True


def _check(frame: pl.DataFrame, column: str, bad: pl.Expr, reason: str, allowed: str) -> None:
    rows = frame.filter(bad.fill_null(False)).select("_row").head(1)
    if not rows.is_empty():
        _refuse(column, reason, allowed, rows)


def _inputs() -> rules.Inputs:
    empty = pl.lit([], dtype=pl.List(pl.String))
    return rules.Inputs(
        revenue_fen=pl.col("revenue_fen"),
        tax_total_fen=pl.col("tax_total_fen"),
        tax_credit_grade=pl.col("tax_credit_grade"),
        overdue_count_24m=pl.col("overdue_count_24m"),
        max_overdue_days_24m=pl.col("max_overdue_days_24m"),
        headcount=pl.col("headcount"),
        loans_outstanding_fen=pl.col("loans_outstanding_fen"),
        secured_debt_fen=pl.col("secured_debt_fen"),
        certifications=pl.col("certifications").fill_null(empty),
        sources_not_read=pl.col("sources_not_read").fill_null(empty),
        sources_unavailable=pl.col("sources_unavailable").fill_null(empty),
        tech_grade=pl.col("tech_grade"),
        tech_most_pass=pl.col("tech_most_pass"),
        risk_pd=pl.col("risk_pd"),
        has_bank_account=pl.col("has_bank_account"),
        has_project=pl.col("project_tenor_years").is_not_null(),
        capex_fen=pl.col("project_capex_fen").fill_null(0),
        annual_cash_flow_fen=pl.col("project_annual_cash_flow_fen").fill_null(0),
        tenor_years=pl.col("project_tenor_years"),
        collateral=pl.col("collateral").fill_null(pl.lit([], dtype=pl.List(ASSET))),
        guarantee_fen=pl.col("guarantee_fen"),
    )


def check_days(bundle: PolicyBundle, frame: pl.DataFrame) -> pl.DataFrame:
    """The table's `as_of` column (each application's decision day): present, dates, within the days the
    bundle's LPR table covers; else `InvalidInput` (or `PolicyOutdated` after the table's valid-through date)."""
    if "as_of" not in frame.columns:
        _refuse("as_of", "column missing", "each application's decision day, or one day for the whole table")
    if frame["as_of"].dtype != pl.Date:
        _refuse("as_of", f"cannot be read as a date (it is {frame['as_of'].dtype})", "dates")
    days = frame.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"), "as_of")
    _check(days, "as_of", pl.col("as_of").is_null(), "null where a value is required", "a day in every row")
    latest = days.filter(pl.col("as_of") == pl.col("as_of").max()).head(1)
    earliest = days.filter(pl.col("as_of") == pl.col("as_of").min()).head(1)
    for row in (earliest, latest):
        if not row.is_empty():
            bundle.lpr_on(row["as_of"][0])  # the scalar form's own refusal: the same words for the same day
    return frame


def evaluate_frame(bundle: PolicyBundle, frame: pl.DataFrame, as_of: date | None = None) -> pl.DataFrame:
    """One decision per row of `frame` (columns of `INPUT_SCHEMA`) in the rows' order: all on `as_of`, or
    without it each on the day in its `as_of` column."""
    if as_of is None:
        check_days(bundle, frame)
    else:
        bundle.lpr_on(as_of)
    typed = check_frame(bundle, frame)
    if as_of is None:
        typed = typed.with_columns(frame["as_of"])
    x = FrameOps(typed)
    rules.decide(x, bundle, _inputs(), pl.col("as_of") if as_of is None else as_of)
    out = [pl.col("_row").alias("row"), pl.col("v.outcome").alias("outcome"), pl.col("v.risk_grade").alias("risk_grade"),
           pl.col("tech_grade"), pl.col("v.comprehensive_limit_fen").alias("comprehensive_limit_fen"),
           pl.col("v.approved_fen").alias("approved_fen"), pl.col("v.inclusive_small_micro").alias("inclusive_small_micro")]
    out += [pl.col(f"v.{k}").alias(k) for k in FLAGS]
    for slot in rules.SLOTS:
        made = pl.col(f"v.{slot}.made")
        out += [
            pl.when(made).then(pl.col(f"v.{slot}_price.product")).otherwise(None).alias(f"{slot}_product"),
            pl.col(f"v.{slot}.limit_fen").alias(f"{slot}_limit_fen"),
            pl.col(f"v.{slot}.approved_fen").alias(f"{slot}_approved_fen"),
            pl.when(made).then(pl.col(f"v.{slot}_price.rate_bp")).otherwise(None).alias(f"{slot}_rate_bp"),
            pl.when(made).then(pl.col(f"v.{slot}_price.annualized_rate")).otherwise(None).alias(f"{slot}_annualized_rate"),
            pl.when(made).then(pl.col(f"v.{slot}_price.lpr_tenor")).otherwise(None).alias(f"{slot}_lpr_tenor"),
        ]
    return x.plan.select(out).collect()


def row_of(f: Any, collateral: tuple[Any, ...], scores: Any, app: Any) -> dict[str, Any]:
    """One row of `INPUT_SCHEMA` from one application's typed records (`sandu.policy.kernel`)."""
    p = app.project
    return {
        "revenue_fen": f.revenue_fen,
        "tax_total_fen": f.tax_total_fen,
        "tax_credit_grade": f.tax_credit_grade,
        "overdue_count_24m": f.overdue_count_24m,
        "max_overdue_days_24m": f.max_overdue_days_24m,
        "headcount": f.headcount,
        "loans_outstanding_fen": f.loans_outstanding_fen,
        "secured_debt_fen": f.secured_debt_fen,
        "certifications": sorted(f.certifications),
        "sources_not_read": sorted(f.sources_not_read),
        "sources_unavailable": sorted(f.sources_unavailable),
        "tech_grade": scores.tech_grade,
        "tech_most_pass": scores.tech_most_pass,
        "risk_pd": scores.risk_pd,
        "has_bank_account": app.has_bank_account,
        "project_capex_fen": None if p is None else p.capex_fen,
        "project_annual_cash_flow_fen": None if p is None else p.annual_cash_flow_fen,
        "project_tenor_years": None if p is None else p.tenor_years,
        "collateral": [{"kind": a.kind, "appraised_value_fen": a.appraised_value_fen, "secured_debt_fen": a.secured_debt_fen} for a in collateral],
        "guarantee_fen": app.guarantee_fen,
    }


def frame_of(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A table of `INPUT_SCHEMA` from rows such as `row_of` gives."""
    return pl.DataFrame(rows, schema=INPUT_SCHEMA, orient="row" if rows and not isinstance(rows[0], dict) else None)
