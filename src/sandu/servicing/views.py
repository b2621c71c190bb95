"""What the API, the CLI and the web pages show of servicing: lines, drawings, movements,
the journal, statements and end of day. Built inside the unit of work that read or wrote them."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from sandu.domain.enums import DrawingStatus, LineStatus, Settlement


class Balances(BaseModel):
    """What is owed, by receivable bucket (each equal to its journal account), and what accrued and is not yet charged."""

    principal_fen: int = Field(description="principal not overdue (including principal due and in its grace period)")
    due_principal_fen: int = Field(description="principal fallen due, not yet overdue")
    overdue_principal_fen: int
    interest_fen: int = Field(description="interest charged and due, not yet overdue")
    overdue_interest_fen: int
    penalty_fen: int = Field(description="penalty interest (罚息) charged")
    compound_fen: int = Field(description="compound interest (复利) charged")
    interest_accrued_fen: int = Field(description="contract interest accrued, not yet settled; rounded once as it would be charged now")
    penalty_accrued_fen: int
    compound_accrued_fen: int


class LineView(BaseModel):
    """A credit line as its owner sees it. `annualized_rate` (年化利率) and `inclusive_small_micro` (普惠型小微) are
    those the decision recorded when the line was signed; a line signed from a decision made before they were
    recorded shows null for them — "not recorded", never a value computed afterwards."""

    id: int
    product: str
    limit_fen: int
    drawn_principal_fen: int = Field(description="principal outstanding over the line's drawings, overdue included")
    available_fen: int
    balances: Balances
    rate_annual: str
    annualized_rate: str | None = Field(None, description="年化利率: the IRR of the loan's cash flows, fees included, on a 365-day year, as the "
                                                          "decision recorded it; null: signed from a decision made before it was recorded")
    inclusive_small_micro: bool | None = Field(None, description="普惠型小微: the decision flagged the borrower as a small or micro enterprise "
                                                                 "within the policy's total-credit maximum; null: not recorded by its decision")
    application_id: int | None = Field(None, description="the application the line was signed from; null: signed before applications were kept")
    basis_days: int
    repayment_method: str
    revolving: bool
    settlement_frequency: Settlement
    interest_with_principal: bool = Field(description="利随本清: a repayment settles the interest accrued so far")
    penalty_uplift: str
    grace_days: int
    allocation_order: list[str]
    opened_on: date
    expires_on: date
    status: LineStatus
    accrued_through: date = Field(description="the last business date end of day has closed for the line")
    risk_class: str = Field(description="五级分类: the worst class of the line's open drawings")
    open_drawings: int


class InstalmentView(BaseModel):
    seq: int
    start_on: date
    due_on: date
    principal_fen: int
    interest_fen: int
    opening_principal_fen: int


class DueView(BaseModel):
    due_on: date
    kind: str
    raised_principal_fen: int
    raised_interest_fen: int
    unpaid_principal_fen: int
    unpaid_interest_fen: int
    overdue: bool


class DrawingView(BaseModel):
    id: int
    line_id: int
    amount_fen: int
    drawn_on: date
    maturity_on: date
    repayment_method: str
    rate_annual: str
    penalty_rate_annual: str
    status: DrawingStatus
    repaid_on: date | None
    balances: Balances
    days_past_due: int
    risk_class: str
    officer_class: str | None
    schedule_version: int
    schedule: list[InstalmentView] = Field(description="the schedule in force (empty for 随借随还)")
    unpaid_dues: list[DueView]


class DrawingPage(BaseModel):
    drawings: list[DrawingView]
    next_after_id: int | None = Field(description="pass as after_id for the next page; null on the last page")


class DrawView(BaseModel):
    drawing_id: int
    line_id: int
    amount_fen: int
    drawn_on: date
    maturity_on: date
    repayment_method: str
    rate_annual: str
    replayed: bool = Field(description="true when this repeats an earlier request with the same idempotency key")


class RepayView(BaseModel):
    line_id: int
    allocations: dict[str, int] = Field(description="fen paid into each receivable bucket, over all drawings")
    by_drawing: dict[int, dict[str, int]] = Field(description="fen paid into each bucket of each drawing")
    interest_settled_fen: int = Field(description="利随本清: interest accrued to the day before, settled with this repayment")
    replayed: bool


class PrepayView(BaseModel):
    drawing_id: int
    principal_fen: int
    interest_fen: int = Field(description="the prepaid principal's interest from the start of the current period")
    schedule_version: int
    replayed: bool


class ClassifyView(BaseModel):
    drawing_id: int
    risk_class: str
    officer_class: str | None


class PostingView(BaseModel):
    account: str
    amount_fen: int


class EntryView(BaseModel):
    id: int
    kind: str
    effective_date: date
    idempotency_key: str
    postings: list[PostingView]


class JournalPage(BaseModel):
    entries: list[EntryView]
    next_after_id: int | None = Field(description="pass as after_id for the next page; null on the last page")


class EodDayView(BaseModel):
    business_date: date
    lines: int = Field(description="lines closed for the date")
    batches: int
    drawings_accrued: int
    charged_fen: dict[str, int] = Field(description="interest, penalty and compound interest charged, fen")
    overdue_fen: int = Field(description="principal and interest that became overdue")
    raised_fen: int = Field(description="instalments and maturities that fell due")
    reclassified: int
    repaid: int
    expired: int
    resumed: bool = Field(description="true when an interrupted run of the date was resumed from its checkpoint")


class EodView(BaseModel):
    business_date: date = Field(description="the date closed last")
    days: list[EodDayView] = Field(description="each date closed, in order (empty when the date was already closed)")
    last_closed_on: date | None
    applications_expired: int = Field(0, description="applications whose decision was not signed within its validity, expired by this run")
