"""The tables. Money columns are BIGINT fen; rates are Decimal text (exact).

Invariants that the database can hold are declared here as constraints as a
last line of defence; services assert them before writing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sandu.domain.enums import LineStatus, MemberRelation, OfferStatus, Outcome, Role, Settlement, sql_in


class DecimalText(TypeDecorator):
    """A Decimal stored as its exact text, identical on SQLite and PostgreSQL."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalText column needs a Decimal, got {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator):
    """A moment in UTC, aware on the way in and out, identical on SQLite and PostgreSQL
    (SQLite keeps no zone: sandu writes UTC and reads it back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"UtcDateTime column needs an aware datetime, got {value!r}")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {int: BigInteger, dict[str, Any]: JSON, list[Any]: JSON}


# --- the simulated outside world (what the data sources would return) -----------------


class SimEnterprise(Base):
    """One enterprise of the synthetic universe; `latent_risk` and `default_12m`
    are the hidden truth used to train and back-test models, never read by policy."""

    __tablename__ = "sim_enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    district: Mapped[str] = mapped_column(String(16))
    industry: Mapped[str] = mapped_column(String(32))
    legal_rep_id: Mapped[str] = mapped_column(String(18))
    has_bank_account: Mapped[bool] = mapped_column(Boolean)
    story: Mapped[str | None] = mapped_column(String(4), unique=True)
    latent_risk: Mapped[float] = mapped_column(Float)
    default_12m: Mapped[bool] = mapped_column(Boolean)


class SourceRecord(Base):
    """The payload a data source holds about an enterprise (JSON, fen integers)."""

    __tablename__ = "source_records"

    uscc: Mapped[str] = mapped_column(ForeignKey("sim_enterprises.uscc"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- origination ---------------------------------------------------------------------


class Enterprise(Base):
    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    district: Mapped[str | None] = mapped_column(String(16))
    industry: Mapped[str | None] = mapped_column(String(32))
    has_bank_account: Mapped[bool] = mapped_column(Boolean)
    branch: Mapped[str] = mapped_column(String(16), index=True)  # the sub-branch (支行) that serves it
    legal_rep_id_masked: Mapped[str] = mapped_column(String(18))
    legal_rep_id_hmac: Mapped[str | None] = mapped_column(String(64), index=True)  # keyed hash; NULL: must register again
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The decision in force: its comprehensive limit (综合授信) caps the sum of the enterprise's
    # line limits and of its drawn principal. A newer decision supersedes it.
    live_decision_id: Mapped[str | None] = mapped_column(ForeignKey("decisions.id", use_alter=True, name="fk_enterprises_live_decision_id"))


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(64))
    signer_id_masked: Mapped[str] = mapped_column(String(18))
    signer_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the authenticated legal representative
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SourceRead(Base):
    """Every read of a data source, logged against the consent that allowed it."""

    __tablename__ = "source_reads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)
    found: Mapped[bool] = mapped_column(Boolean)


class Profile(Base):
    """An immutable, hashed snapshot of everything read for one measurement."""

    __tablename__ = "profiles"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"))
    as_of: Mapped[date] = mapped_column(Date)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Decision(Base):
    """A replayable decision: inputs (profile hash), versions, rule hits, reasons, timings."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    profile_sha256: Mapped[str] = mapped_column(ForeignKey("profiles.sha256"))
    policy_version: Mapped[str] = mapped_column(String(64))
    policy_sha256: Mapped[str] = mapped_column(String(64))
    model_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    application: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))
    comprehensive_limit_fen: Mapped[int] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    timings_ms: Mapped[dict[str, Any]] = mapped_column(JSON)
    as_of: Mapped[date] = mapped_column(Date)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)
    initiated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who asked for the measurement
    superseded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # when a newer decision of the enterprise replaced it

    __table_args__ = (
        CheckConstraint(sql_in("outcome", Outcome), name="ck_decision_outcome"),
        CheckConstraint("comprehensive_limit_fen >= 0", name="ck_decision_limit"),
    )


class Offer(Base):
    """One product of a decision. `approved_fen` is what may be drawn now: the
    automatically approved part, raised to `limit_fen` when an officer approves."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id"), index=True)
    product: Mapped[str] = mapped_column(String(32))
    limit_fen: Mapped[int] = mapped_column(BigInteger)
    approved_fen: Mapped[int] = mapped_column(BigInteger)
    rate_annual: Mapped[Decimal] = mapped_column(DecimalText)
    status: Mapped[str] = mapped_column(String(16))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # 审: the officer who reviewed the referral
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    review_opinion: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # 贷: someone else, within their authority
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("decision_id", "product", name="uq_offer_product"),
        CheckConstraint("approved_fen >= 0 AND approved_fen <= limit_fen", name="ck_offer_approved"),
        CheckConstraint(sql_in("status", OfferStatus), name="ck_offer_status"),
        CheckConstraint("reviewed_by IS NULL OR approved_by IS NULL OR reviewed_by <> approved_by", name="ck_offer_four_eyes"),
    )


# --- servicing -----------------------------------------------------------------------


class CreditLine(Base):
    __tablename__ = "credit_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"), unique=True)
    product: Mapped[str] = mapped_column(String(32))
    limit_fen: Mapped[int] = mapped_column(BigInteger)
    drawn_principal_fen: Mapped[int] = mapped_column(BigInteger)
    rate_annual: Mapped[Decimal] = mapped_column(DecimalText)
    basis_days: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(16))
    revolving: Mapped[bool] = mapped_column(Boolean)
    settlement_frequency: Mapped[str] = mapped_column(String(16))
    max_drawing_months: Mapped[int] = mapped_column(Integer)
    opened_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    accrued_through: Mapped[date | None] = mapped_column(Date)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the legal representative who signed

    __table_args__ = (
        CheckConstraint("drawn_principal_fen >= 0", name="ck_line_drawn_nonneg"),
        CheckConstraint("drawn_principal_fen <= limit_fen", name="ck_line_no_overdraw"),
        CheckConstraint(sql_in("status", LineStatus), name="ck_line_status"),
        CheckConstraint(sql_in("settlement_frequency", Settlement), name="ck_line_settlement"),
    )


class Drawing(Base):
    __tablename__ = "drawings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("credit_lines.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    drawn_on: Mapped[date] = mapped_column(Date)
    maturity_on: Mapped[date] = mapped_column(Date)
    drawn_at: Mapped[datetime] = mapped_column(UtcDateTime)
    drawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (CheckConstraint("amount_fen > 0", name="ck_drawing_positive"),)


class JournalEntryRow(Base):
    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("credit_lines.id"), index=True)
    effective_date: Mapped[date] = mapped_column(Date)
    memo: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PostingRow(Base):
    __tablename__ = "postings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account: Mapped[str] = mapped_column(String(120), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("amount_fen <> 0", name="ck_posting_nonzero"),)


class InterestAccrual(Base):
    """One day's exact accrual on the line's closing principal (算头不算尾)."""

    __tablename__ = "interest_accruals"

    line_id: Mapped[int] = mapped_column(ForeignKey("credit_lines.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    closing_principal_fen: Mapped[int] = mapped_column(BigInteger)
    rate_annual: Mapped[Decimal] = mapped_column(DecimalText)
    basis_days: Mapped[int] = mapped_column(Integer)
    interest_exact: Mapped[Decimal] = mapped_column(DecimalText)
    posted_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))

    __table_args__ = (
        CheckConstraint("closing_principal_fen >= 0", name="ck_accrual_principal"),
        Index("ix_accrual_unposted", "line_id", "posted_entry_id"),
    )


# --- identities and the audit trail ---------------------------------------------------


class User(Base):
    """A person who can log in: an applicant (bound to enterprises by membership) or staff
    (bound to a sub-branch, with an approval authority in fen)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    branch: Mapped[str | None] = mapped_column(String(16))
    authority_fen: Mapped[int | None] = mapped_column(BigInteger)
    person_id_hmac: Mapped[str | None] = mapped_column(String(64), index=True)  # who the person is (keyed hash of the resident ID)
    person_id_masked: Mapped[str | None] = mapped_column(String(18))
    disabled: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint(sql_in("role", Role), name="ck_user_role"),
        CheckConstraint("authority_fen IS NULL OR authority_fen >= 0", name="ck_user_authority"),
        CheckConstraint("failed_logins >= 0", name="ck_user_failed_logins"),
    )


class Membership(Base):
    """An applicant's right to act for an enterprise: its legal representative, or a delegate."""

    __tablename__ = "enterprise_members"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), primary_key=True, index=True)
    relation: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint(sql_in("relation", MemberRelation), name="ck_member_relation"),)


class RefreshToken(Base):
    """A refresh token, stored only as its hash; rotated on use, revocable."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    auth_time: Mapped[datetime] = mapped_column(UtcDateTime)  # when the password was last given
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditRecord(Base):
    """One state change, chained to the one before by its hash (see sandu.audit)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: the trail outlives what it names
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    before_sha256: Mapped[str | None] = mapped_column(String(64))
    after_sha256: Mapped[str | None] = mapped_column(String(64))
    prev_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The last link of the chain (one row): writers lock it to append in order."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="ck_audit_head_single"),)
