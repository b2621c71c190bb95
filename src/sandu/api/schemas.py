"""Request and response bodies of the HTTP API (strict: no silent coercion)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from sandu.domain.project import Project
from sandu.sources.catalog import ALL_SOURCES


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnterpriseIn(Strict):
    uscc: StrictStr = Field(description="统一社会信用代码, 18 characters (GB 32100-2015)", examples=["91350100M000100Y43"])
    name: StrictStr = Field(min_length=1, max_length=120)
    legal_rep_id: StrictStr = Field(description="Legal representative's resident ID (GB 11643-1999)")


class EnterpriseOut(BaseModel):
    id: int
    uscc: str
    name: str
    district: str | None
    industry: str | None
    has_bank_account: bool
    legal_rep_id_masked: str
    registered_at: datetime


class ConsentIn(Strict):
    scopes: list[StrictStr] = Field(min_length=1, max_length=len(ALL_SOURCES), examples=[list(ALL_SOURCES)])
    purpose: StrictStr = "credit_measurement"
    signer_id: StrictStr = Field(description="The legal representative's resident ID; the signature of the consent")
    valid_days: StrictInt = Field(default=30, description="1..365")


class ConsentOut(BaseModel):
    id: str
    scopes: list[str]
    purpose: str
    signer_id_masked: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class MeasurementIn(Strict):
    consent_id: StrictStr
    requested_fen: StrictInt | None = None
    project: Project | None = None


class OfferOut(BaseModel):
    product: str
    name: str
    kind: str
    limit_fen: int
    approved_fen: int
    referred_fen: int
    rate_annual: str
    annualized_rate: str
    status: str
    repayment_method: str
    revolving: bool
    basis_days: int


class DecisionOut(BaseModel):
    id: str
    uscc: str
    outcome: str
    comprehensive_limit_fen: int
    offers: list[OfferOut]
    reasons: list[str]
    tech_grade: str
    risk_grade: str
    tech_uplift_fen: int
    rule_hits: list[dict[str, str]]
    scores: dict[str, Any]
    quality_flags: list[str]
    profile_sha256: str
    policy_version: str
    policy_sha256: str
    model_versions: dict[str, Any]
    timings_ms: dict[str, Any]
    as_of: date
    decided_at: datetime


class ApproveIn(Strict):
    officer: StrictStr


class AcceptIn(Strict):
    signer_id: StrictStr


class LineOut(BaseModel):
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
    settlement_frequency: str
    opened_on: date
    expires_on: date
    status: str
    accrued_through: date | None


class MovementIn(Strict):
    """A draw or a repayment."""

    amount_fen: StrictInt
    idempotency_key: StrictStr = Field(description="yours, unique per line; repeating a request with it returns the first result")
    on_date: date | None = Field(default=None, description="value date; default today; never in the future")


class DrawOut(BaseModel):
    drawing_id: int
    line_id: int
    amount_fen: int
    drawn_on: date
    maturity_on: date
    replayed: bool


class RepayOut(BaseModel):
    line_id: int
    allocations: dict[str, int]
    interest_posted_fen: int
    replayed: bool


class PostingOut(BaseModel):
    account: str
    amount_fen: int


class EntryOut(BaseModel):
    id: int
    kind: str
    effective_date: date
    idempotency_key: str
    postings: list[PostingOut]


class JournalPage(BaseModel):
    entries: list[EntryOut]
    next_after_id: int | None = Field(description="pass as after_id for the next page; null on the last page")


class EodIn(Strict):
    business_date: date


class ErrorBody(BaseModel):
    code: str
    field: str | None
    message: str
    allowed: str | None


class ErrorOut(BaseModel):
    error: ErrorBody
