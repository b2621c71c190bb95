"""What-if: past applications re-decided under a changed policy bundle, against the current one.

Pure: a table of applications (the columns of `sandu.policy.vector.INPUT_SCHEMA`,
plus `application_id`, `uscc` and the day each was decided, `as_of`) goes through
the table form of the engine twice — under the bundle in force and under the
changed one, each application on its own day (its LPR, its pricing) — and the
two are compared: approval rate, total limit, limit-weighted average price,
expected loss (the scorecard's PD × the comprehensive limit, the exposure a
line may reach), and the applications whose outcome changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import polars as pl

from sandu.domain.errors import InvalidInput
from sandu.policy.bundle import PolicyBundle
from sandu.policy.rules import SLOTS
from sandu.policy.vector import evaluate_frame

MAX_APPLICATIONS = 1_000_000  # one simulation; more is a batch job (`sandu batch`)
MAX_DAYS = 3_700  # distinct decision days in one simulation (ten years)
MAX_CHANGES_LISTED = 10_000
ID_COLUMNS = {"application_id": pl.String, "uscc": pl.String, "as_of": pl.Date}
APPROVED_OUTCOMES = ("approve", "partial")  # something may be drawn at once


@dataclass(frozen=True)
class PolicyFigures:
    """One bundle's decisions of the applications."""

    policy: str
    applications: int
    approved: int  # approved in full or in part
    referred: int
    declined: int
    total_limit_fen: int  # 综合授信, approved and referred
    approved_fen: int
    average_rate: Decimal | None  # the offers' rates weighted by their limits (None: no offer)
    expected_loss_fen: int  # Σ PD × comprehensive limit, rounded to the fen

    @property
    def approval_rate(self) -> Decimal:
        return Decimal(0) if not self.applications else (Decimal(self.approved) / self.applications).quantize(Decimal("0.0001"))

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "applications": self.applications, "approved": self.approved, "referred": self.referred,
                "declined": self.declined, "approval_rate": str(self.approval_rate), "total_limit_fen": self.total_limit_fen,
                "approved_fen": self.approved_fen, "average_rate": None if self.average_rate is None else str(self.average_rate),
                "expected_loss_fen": self.expected_loss_fen}


@dataclass(frozen=True)
class Change:
    application_id: str
    uscc: str
    as_of: date
    outcome_before: str
    outcome_after: str
    limit_before_fen: int
    limit_after_fen: int

    def to_json(self) -> dict[str, Any]:
        return {"application_id": self.application_id, "uscc": self.uscc, "as_of": self.as_of.isoformat(), "outcome_before": self.outcome_before,
                "outcome_after": self.outcome_after, "limit_before_fen": self.limit_before_fen, "limit_after_fen": self.limit_after_fen}


@dataclass(frozen=True)
class WhatIf:
    current: PolicyFigures
    changed: PolicyFigures
    outcome_changes: int  # applications whose outcome differs
    limit_changes: int  # applications whose comprehensive limit differs
    changes: tuple[Change, ...]  # those whose outcome differs, largest limit change first, at most the number asked for
    table: pl.DataFrame  # one row per application: id, uscc, as_of, outcome, limit and rate under each bundle

    def to_json(self) -> dict[str, Any]:
        return {"current": self.current.to_json(), "changed": self.changed.to_json(), "outcome_changes": self.outcome_changes,
                "limit_changes": self.limit_changes, "changes": [c.to_json() for c in self.changes]}


def check_applications(table: pl.DataFrame) -> pl.DataFrame:
    """The identifying columns present and typed, the ids unique, within the bounds; else `InvalidInput`."""
    if table.height > MAX_APPLICATIONS:
        raise InvalidInput("applications", f"{table.height} applications in one simulation", f"at most {MAX_APPLICATIONS}")
    for column, dtype in ID_COLUMNS.items():
        if column not in table.columns:
            raise InvalidInput(column, "column missing", f"the columns {', '.join(ID_COLUMNS)} and the policy's input columns")
        try:
            table = table.with_columns(pl.col(column).cast(dtype, strict=True))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
            raise InvalidInput(column, f"cannot be read as {dtype}", str(dtype)) from None
        if table[column].null_count():
            raise InvalidInput(column, "null where a value is required", "a value in every row")
    if table["application_id"].n_unique() != table.height:
        raise InvalidInput("application_id", "an application is listed twice", "each application once")
    if table["as_of"].n_unique() > MAX_DAYS:
        raise InvalidInput("as_of", f"more than {MAX_DAYS} distinct decision days", f"at most {MAX_DAYS}")
    return table


def decide_all(bundle: PolicyBundle, table: pl.DataFrame) -> pl.DataFrame:
    """Each application decided by the table form on its own day, in the table's order."""
    decided = evaluate_frame(bundle, table)
    return decided.with_columns(table["risk_pd"].cast(pl.Decimal(38, 18)))


def figures(policy: str, decided: pl.DataFrame) -> PolicyFigures:
    outcome = decided["outcome"]
    rated = pl.sum_horizontal(*(pl.col(f"{s}_rate_bp").cast(pl.Int128).fill_null(0) * pl.col(f"{s}_limit_fen").cast(pl.Int128) for s in SLOTS))
    offered = pl.sum_horizontal(*(pl.when(pl.col(f"{s}_rate_bp").is_not_null()).then(pl.col(f"{s}_limit_fen")).otherwise(0).cast(pl.Int128)
                                  for s in SLOTS))
    sums = decided.select(rated.sum().alias("rated"), offered.sum().alias("offered"),
                          # PD to 12 places (a scorecard's PD has fewer): a million limits of up to 10^15 fen still fit 38 digits
                          (pl.col("risk_pd").cast(pl.Decimal(38, 12)) * pl.col("comprehensive_limit_fen").cast(pl.Decimal(38, 0))).sum().alias("loss"))
    rated_bp, offered_fen, loss = sums.row(0)
    average = None if not offered_fen else (Decimal(int(rated_bp)) / Decimal(int(offered_fen)) / 10_000).quantize(Decimal("0.000001"))
    return PolicyFigures(
        policy=policy,
        applications=decided.height,
        approved=int(outcome.is_in(APPROVED_OUTCOMES).sum()),
        referred=int((outcome == "refer").sum()),
        declined=int((outcome == "decline").sum()),
        total_limit_fen=int(decided["comprehensive_limit_fen"].sum()),
        approved_fen=int(decided["approved_fen"].sum()),
        average_rate=average,
        expected_loss_fen=int(Decimal(loss or 0).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
    )


def _rate(decided: pl.DataFrame) -> pl.Expr:
    """An application's limit-weighted rate (bp), null without an offer."""
    rated = pl.sum_horizontal(*(pl.col(f"{s}_rate_bp").cast(pl.Int128).fill_null(0) * pl.col(f"{s}_limit_fen").cast(pl.Int128) for s in SLOTS))
    return pl.when(pl.col("comprehensive_limit_fen") > 0).then((rated / pl.col("comprehensive_limit_fen")).round(2)).otherwise(None)


def compare(current: PolicyBundle, changed: PolicyBundle, table: pl.DataFrame, max_changes: int = 100) -> WhatIf:
    """`table`'s applications under `current` and under `changed` (`max_changes` of the outcome changes listed)."""
    if isinstance(max_changes, bool) or not isinstance(max_changes, int) or not 0 <= max_changes <= MAX_CHANGES_LISTED:
        raise InvalidInput("max_changes", f"must be an integer within 0..{MAX_CHANGES_LISTED}", f"0..{MAX_CHANGES_LISTED}")
    table = check_applications(table)
    before, after = decide_all(current, table), decide_all(changed, table)
    both = table.select("application_id", "uscc", "as_of").hstack([
        before["outcome"].alias("outcome_before"), after["outcome"].alias("outcome_after"),
        before["comprehensive_limit_fen"].alias("limit_before_fen"), after["comprehensive_limit_fen"].alias("limit_after_fen"),
        before.select(_rate(before).alias("rate_before_bp")).to_series(), after.select(_rate(after).alias("rate_after_bp")).to_series(),
    ])
    moved = both.filter(pl.col("outcome_before") != pl.col("outcome_after"))
    listed = moved.with_columns((pl.col("limit_after_fen") - pl.col("limit_before_fen")).abs().alias("_delta")) \
        .sort(["_delta", "application_id"], descending=[True, False]).head(max_changes)
    return WhatIf(
        current=figures(current.label, before),
        changed=figures(changed.label, after),
        outcome_changes=moved.height,
        limit_changes=int((both["limit_before_fen"] != both["limit_after_fen"]).sum()),
        changes=tuple(Change(r["application_id"], r["uscc"], r["as_of"], r["outcome_before"], r["outcome_after"], r["limit_before_fen"],
                             r["limit_after_fen"]) for r in listed.iter_rows(named=True)),
        table=both,
    )
