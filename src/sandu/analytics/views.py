"""What the API and the console show of a portfolio report."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field


class RowView(BaseModel):
    key: str
    lines: int
    limit_fen: int
    principal_fen: int
    receivable_fen: int


class TechView(BaseModel):
    principal_fen: int = Field(description="科技型贷款余额: principal lent to borrowers the tech evaluation qualified")
    principal_year_ago_fen: int
    growth: str | None = Field(description="year on year, a decimal string; null without a balance a year ago")
    share: str | None = Field(description="of all principal; null without any")
    share_by_branch: dict[str, str | None]


class InclusiveView(BaseModel):
    principal_fen: int = Field(description="普惠型小微 balance")
    borrowers: int


class PortfolioView(BaseModel):
    """The portfolio as of a day, computed from the journal (balances) and the lines (what was signed)."""

    as_of: date
    branch: str | None = Field(description="the sub-branch reported on; null: the whole bank")
    lines: int
    limit_fen: int
    principal_fen: int
    receivable_fen: int = Field(description="principal, interest, penalty and compound interest owed")
    by: dict[str, list[RowView]] = Field(description="by product, branch, industry, tech_grade, risk_grade; largest principal first")
    tech: TechView
    inclusive: InclusiveView
    classes: dict[str, int] = Field(description="五级分类 → principal")
    npl_ratio: str | None = Field(description="(次级 + 可疑 + 损失) ÷ principal")
    overdue_fen: int
    time_to_cash_s: dict[str, Any] = Field(description="measurement → first drawing, seconds: count, p50, p90, max")
    decisions_30d: dict[str, int] = Field(description="decisions of the 30 days through the report's day, by outcome (approvals)")
    vintages: dict[str, list[dict[str, Any]]] = Field(default_factory=dict, description="by the month lines opened: at each month end "
                                                      "since, months on book, drawn so far, overdue and the overdue rate")
    expected_loss: dict[str, Any] | None = Field(description="IFRS 9 provisions as of the day: ECL and EAD in total and by stage, product "
                                                             "and sub-branch (stages from the DPD and 五级分类 of that day)")
    dpd_buckets: dict[str, dict[str, int]] = Field(default_factory=dict, description="by days past due as of the day (current, 1-30, 31-60, "
                                                   "61-90, 91-180, 180+): drawings, principal, overdue and receivable")
    roll_rates: list[dict[str, Any]] = Field(default_factory=list, description="month end to next month end: from each DPD bucket to each "
                                             "bucket or paid_off, by count and by the principal at the first month end")
    stage_movement: dict[str, Any] | None = Field(default=None, description="given `from`: IFRS 9 stage at `from` → stage at the day "
                                                  "(exposures, EAD and ECL at both ends), and the exposures new and derecognised")

    @classmethod
    def of(cls, p: Any) -> PortfolioView:
        return cls.model_validate(p.to_json())
