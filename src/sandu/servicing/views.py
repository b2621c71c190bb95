"""What the API and the web pages show of servicing: lines, movements, the
journal and end of day. Built inside the unit of work that read or wrote them."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from sandu.domain.enums import LineStatus, Settlement


class LineView(BaseModel):
    id: int
    product: str
    limit_fen: int
    drawn_principal_fen: int
    available_fen: int
    interest_posted_fen: int
    interest_accrued_fen: int = Field(description="accrued, not yet posted; rounded once as it would be posted now")
    rate_annual: str
    basis_days: int
    repayment_method: str
    revolving: bool
    settlement_frequency: Settlement
    opened_on: date
    expires_on: date
    status: LineStatus
    accrued_through: date | None


class DrawView(BaseModel):
    drawing_id: int
    line_id: int
    amount_fen: int
    drawn_on: date
    maturity_on: date
    replayed: bool = Field(description="true when this repeats an earlier request with the same idempotency key")


class RepayView(BaseModel):
    line_id: int
    allocations: dict[str, int] = Field(description="fen paid into each receivable bucket")
    interest_posted_fen: int
    replayed: bool


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


class EodView(BaseModel):
    business_date: date
    lines: int = Field(description="active lines brought up to date")
    days_accrued: int
    interest_posted_fen: int
    batches: int
    remaining_lines: int = Field(description="lines not processed because a limit was reached; 0 when end of day is complete")
