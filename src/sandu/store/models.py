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
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sandu.domain.enums import (
    OPEN_ALERT_STATUSES,
    AlertStatus,
    ApplicationState,
    DrawingStatus,
    EodStatus,
    HumanReviewStatus,
    LineStatus,
    MemberRelation,
    OfferStatus,
    Outcome,
    Role,
    Settlement,
    StoreKind,
    sql_in,
)
from sandu.ledger.overdue import RiskClass
from sandu.ledger.schedule import METHODS


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
    # The exact text shown and agreed to (its sha256; the text itself in consent_texts), its template version and language.
    # NULL text_sha256: a consent granted before texts were kept (revision 0006).
    text_sha256: Mapped[str | None] = mapped_column(ForeignKey("consent_texts.sha256"))
    text_version: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8), default="zh")
    # The separate credit-bureau authorization (征信授权书), signed in the same flow, with its own text.
    bureau_authorized_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    bureau_text_sha256: Mapped[str | None] = mapped_column(ForeignKey("consent_texts.sha256"))

    __table_args__ = (
        CheckConstraint("language IN ('zh','en')", name="ck_consent_language"),
        CheckConstraint("(bureau_authorized_at IS NULL) = (bureau_text_sha256 IS NULL)", name="ck_consent_bureau_text"),
    )


class ConsentText(Base):
    """Each distinct consent or bureau-authorization text shown to a signer, once, keyed by its sha256."""

    __tablename__ = "consent_texts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


READ_OUTCOMES = ("found", "no_record", "timeout", "error", "invalid", "circuit_open", "refused")


class SourceRead(Base):
    """Every read of a data source, logged against the consent that allowed it (or refused it):
    which adapter answered, how long it took, the outcome, why, and the sha256 of what came back."""

    __tablename__ = "source_reads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)
    found: Mapped[bool] = mapped_column(Boolean)
    adapter: Mapped[str] = mapped_column(String(32), default="simulated")
    duration_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    payload_sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(sql_in("outcome", READ_OUTCOMES), name="ck_source_read_outcome"),
    )


class SourcePayload(Base):
    """What a source sent, kept as it came only until `keep_until` (its source's retention
    period, `SANDU_SOURCE_RETENTION_DAYS`): the purge job deletes it then, and an erasure at
    once. Snapshots keep their features and hashes; the read log keeps the payload's sha256."""

    __tablename__ = "source_payloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"))
    source: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)
    keep_until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Erasure(Base):
    """An erasure request (PIPL art. 47) carried out: what was removed, what was kept and why."""

    __tablename__ = "erasures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    done_at: Mapped[datetime] = mapped_column(UtcDateTime)
    removed: Mapped[dict[str, Any]] = mapped_column(JSON)  # kind → rows removed
    kept: Mapped[list[Any]] = mapped_column(JSON)  # [{what, rows, why}]


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
    # the application it decided (NULL only for a decision whose application revision 0008 could not tell)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id", use_alter=True, name="fk_decisions_application_id"), index=True)
    # what a portfolio report reads of an enterprise's latest decision, taken from `result` when it is written
    # (`sandu.origination.service.decision_grades`; a decision is never updated); NULL where the result has none
    risk_grade: Mapped[str | None] = mapped_column(String(8))
    pd_12m: Mapped[str | None] = mapped_column(String(32))  # the calibrated 12-month PD as written in the result (exact text)

    __table_args__ = (
        CheckConstraint(sql_in("outcome", Outcome), name="ck_decision_outcome"),
        CheckConstraint("comprehensive_limit_fen >= 0", name="ck_decision_limit"),
        Index("ix_decisions_as_of", "as_of", "enterprise_id"),
        # covering: each enterprise's latest decision as of a day, found without reading the (large) results
        Index("ix_decisions_latest", "enterprise_id", "decided_at", "id", "as_of", "risk_grade", "pd_12m"),
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


class Application(Base):
    """An application for credit, from registration to its first drawing: its state (the table in
    `sandu.origination.states`), the decision in force, what was asked for. Every change of state is a row
    of `application_transitions`."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    branch: Mapped[str] = mapped_column(String(16))  # the sub-branch whose queue it is in (the enterprise's)
    state: Mapped[str] = mapped_column(String(24))
    requested_fen: Mapped[int | None] = mapped_column(BigInteger)  # what the applicant asked for, when they said
    decision_id: Mapped[str | None] = mapped_column(ForeignKey("decisions.id"))  # the decision in force (its latest)
    valid_through: Mapped[date | None] = mapped_column(Date)  # the last business date its decision may be signed on
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # since when it waits in the referral queue
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(sql_in("state", ApplicationState), name="ck_application_state"),
        CheckConstraint("requested_fen IS NULL OR requested_fen > 0", name="ck_application_requested"),
        Index("ix_application_queue", "branch", "state", "queued_at"),
        Index("ix_application_expiry", "state", "valid_through"),
    )


class ApplicationTransition(Base):
    """One change of an application's state: when (UTC), by whom, why. `from_state` is NULL for its creation."""

    __tablename__ = "application_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    action: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: None for a system job; the trail outlives what it names
    actor_role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    decision_id: Mapped[str | None] = mapped_column(String(36))  # the decision in force when it happened

    __table_args__ = (
        CheckConstraint(sql_in("to_state", ApplicationState), name="ck_transition_to_state"),
        Index("ix_transition_application", "application_id", "id"),
        Index("ix_transition_action", "action", "at"),
    )


class HumanReview(Base):
    """An applicant's request for a person to review an automated decline (PIPL art. 24): once per decision. An
    officer reviews it and proposes an outcome, someone else confirms it (审贷分离)."""

    __tablename__ = "human_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id"), unique=True)  # the declined decision, attached
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    proposed_outcome: Mapped[str | None] = mapped_column(String(16))  # upheld | reassess
    opinion: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(sql_in("status", HumanReviewStatus), name="ck_human_review_status"),
        CheckConstraint("proposed_outcome IS NULL OR proposed_outcome IN ('upheld','reassess')", name="ck_human_review_outcome"),
        CheckConstraint("reviewed_by IS NULL OR decided_by IS NULL OR reviewed_by <> decided_by", name="ck_human_review_four_eyes"),
    )


# --- servicing -----------------------------------------------------------------------


class CreditLine(Base):
    """A credit line: its limit and terms (fixed when signed), what is drawn on it across its
    drawings (kept here for the limit checks, equal to the drawings' principal), and the
    last business date end of day closed for it (`accrued_through`)."""

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
    term_within_validity: Mapped[bool] = mapped_column(Boolean)  # no drawing matures after the line expires
    interest_with_principal: Mapped[bool] = mapped_column(Boolean)  # 利随本清
    penalty_uplift: Mapped[Decimal] = mapped_column(DecimalText)
    grace_days: Mapped[int] = mapped_column(Integer)
    allocation_order: Mapped[str] = mapped_column(String(200))  # buckets, comma-separated, paid first to last
    opened_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    accrued_through: Mapped[date] = mapped_column(Date)  # the last business date closed for the line
    risk_class: Mapped[str] = mapped_column(String(16))  # the worst class of its open drawings
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the legal representative who signed
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))  # NULL: signed before revision 0008 could tell
    # as the decision recorded them when signed; NULL: a decision made before they were recorded (nothing is recomputed)
    annualized_rate: Mapped[Decimal | None] = mapped_column(DecimalText)  # 年化利率
    inclusive_small_micro: Mapped[bool | None] = mapped_column(Boolean)  # 普惠型小微
    # the grades of the decision it was signed from, as that decision's result recorded them (NULL: none recorded)
    tech_grade: Mapped[str | None] = mapped_column(String(8))
    risk_grade: Mapped[str | None] = mapped_column(String(8))
    pd_12m: Mapped[str | None] = mapped_column(String(32))  # the calibrated 12-month PD, exact text
    tech_sector: Mapped[bool | None] = mapped_column(Boolean)  # 科技型: qualified 科技型中小企业 or 创新型中小企业

    __table_args__ = (
        CheckConstraint("drawn_principal_fen >= 0", name="ck_line_drawn_nonneg"),
        CheckConstraint("drawn_principal_fen <= limit_fen", name="ck_line_no_overdraw"),
        CheckConstraint(sql_in("status", LineStatus), name="ck_line_status"),
        CheckConstraint(sql_in("settlement_frequency", Settlement), name="ck_line_settlement"),
        CheckConstraint(sql_in("risk_class", RiskClass), name="ck_line_risk_class"),
        CheckConstraint("grace_days >= 0", name="ck_line_grace"),
        Index("ix_line_eod", "accrued_through", "id"),
    )


class Drawing(Base):
    """A drawing (借据): its own term, rate and repayment method, and its balances, one column
    per receivable bucket of the journal (each equal to its account, see `sandu ledger check`),
    with the exact accruals not yet charged as integer fen-days (Σ closing balance per day)."""

    __tablename__ = "drawings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("credit_lines.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    drawn_on: Mapped[date] = mapped_column(Date)
    maturity_on: Mapped[date] = mapped_column(Date)
    drawn_at: Mapped[datetime] = mapped_column(UtcDateTime)
    drawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    repayment_method: Mapped[str] = mapped_column(String(16))
    rate_annual: Mapped[Decimal] = mapped_column(DecimalText)
    penalty_rate_annual: Mapped[Decimal] = mapped_column(DecimalText)
    basis_days: Mapped[int] = mapped_column(Integer)
    settlement_frequency: Mapped[str] = mapped_column(String(16))
    daily_interest: Mapped[bool] = mapped_column(Boolean)  # 随借随还: interest by the day, settled on the 20th
    schedule_version: Mapped[int] = mapped_column(Integer)  # 0: no schedule
    status: Mapped[str] = mapped_column(String(16))
    repaid_on: Mapped[date | None] = mapped_column(Date)
    # balances (fen), one per receivable account; principal_fen includes due_principal_fen
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    due_principal_fen: Mapped[int] = mapped_column(BigInteger)  # fallen due, not (yet) overdue
    overdue_principal_fen: Mapped[int] = mapped_column(BigInteger)
    interest_fen: Mapped[int] = mapped_column(BigInteger)  # charged and due, not (yet) overdue
    overdue_interest_fen: Mapped[int] = mapped_column(BigInteger)
    penalty_fen: Mapped[int] = mapped_column(BigInteger)
    compound_fen: Mapped[int] = mapped_column(BigInteger)
    # accrued, not yet charged: Σ over days of the closing balance the rate applies to
    interest_fen_days: Mapped[int] = mapped_column(BigInteger)
    penalty_fen_days: Mapped[int] = mapped_column(BigInteger)
    compound_fen_days: Mapped[int] = mapped_column(BigInteger)
    # ageing and the five categories
    oldest_due_on: Mapped[date | None] = mapped_column(Date)  # the oldest due date with anything unpaid
    dpd: Mapped[int] = mapped_column(Integer)
    days_current: Mapped[int] = mapped_column(Integer)  # consecutive closed days at DPD 0
    risk_class: Mapped[str] = mapped_column(String(16))
    officer_class: Mapped[str | None] = mapped_column(String(16))  # an officer's floor: the class is never better

    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="ck_drawing_positive"),
        CheckConstraint("maturity_on > drawn_on", name="ck_drawing_term"),
        CheckConstraint(sql_in("repayment_method", METHODS), name="ck_drawing_method"),
        CheckConstraint(sql_in("status", DrawingStatus), name="ck_drawing_status"),
        CheckConstraint(sql_in("risk_class", RiskClass), name="ck_drawing_risk_class"),
        CheckConstraint("officer_class IS NULL OR " + sql_in("officer_class", RiskClass), name="ck_drawing_officer_class"),
        CheckConstraint("principal_fen >= 0 AND due_principal_fen >= 0 AND due_principal_fen <= principal_fen AND overdue_principal_fen >= 0 "
                        "AND interest_fen >= 0 AND overdue_interest_fen >= 0 AND penalty_fen >= 0 AND compound_fen >= 0 "
                        "AND interest_fen_days >= 0 AND penalty_fen_days >= 0 AND compound_fen_days >= 0 AND dpd >= 0 AND days_current >= 0",
                        name="ck_drawing_balances"),
        CheckConstraint("principal_fen + overdue_principal_fen <= amount_fen", name="ck_drawing_principal"),
        Index("ix_drawing_line_status", "line_id", "status"),
    )


_OPEN_ALERT = sql_in("status", OPEN_ALERT_STATUSES)


class Alert(Base):
    """A post-loan early-warning alert on a credit line (`sandu.servicing.alerts`): the bundle rule that fired, its
    severity and evidence, and where it is in its life; each step is a row of `alert_steps`. At most one open alert
    per rule and line; the same evidence never raises a rule twice on a line."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("credit_lines.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    branch: Mapped[str] = mapped_column(String(16))  # the enterprise's sub-branch: whose officers see it
    rule_id: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    rule_action: Mapped[str] = mapped_column(String(16))  # what the rule proposes
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence_key: Mapped[str] = mapped_column(String(120))
    policy_version: Mapped[str] = mapped_column(String(120))  # the bundle (name@version) whose rule fired
    as_of: Mapped[date] = mapped_column(Date)  # the business date of the scan
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    proposed_action: Mapped[str | None] = mapped_column(String(16))
    proposed_limit_fen: Mapped[int | None] = mapped_column(BigInteger)  # reduce_limit: the limit proposed
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who approved or rejected the proposal

    __table_args__ = (
        CheckConstraint(sql_in("status", AlertStatus), name="ck_alert_status"),
        CheckConstraint("proposed_action IS NULL OR proposed_action IN ('review','freeze','reduce_limit')", name="ck_alert_action"),
        CheckConstraint("proposed_limit_fen IS NULL OR proposed_limit_fen >= 0", name="ck_alert_limit"),
        CheckConstraint("proposed_by IS NULL OR decided_by IS NULL OR proposed_by <> decided_by", name="ck_alert_four_eyes"),
        UniqueConstraint("line_id", "rule_id", "evidence_key", name="uq_alert_evidence"),
        Index("uq_alert_open", "line_id", "rule_id", unique=True, sqlite_where=text(_OPEN_ALERT), postgresql_where=text(_OPEN_ALERT)),
        Index("ix_alert_branch", "branch", "status", "id"),
    )


class AlertStep(Base):
    """One step of an alert's life: from which status to which, by whom (user, role), when (UTC), with a note."""

    __tablename__ = "alert_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: None for a system job (the scan)
    actor_role: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        CheckConstraint(sql_in("to_status", AlertStatus), name="ck_alert_step_status"),
        Index("ix_alert_step_alert", "alert_id", "id"),
    )


class Instalment(Base):
    """One instalment of a drawing's schedule; a prepayment writes the next version."""

    __tablename__ = "instalments"

    drawing_id: Mapped[int] = mapped_column(ForeignKey("drawings.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    full_month: Mapped[bool] = mapped_column(Boolean)
    opening_principal_fen: Mapped[int] = mapped_column(BigInteger)
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    interest_fen: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("principal_fen >= 0 AND interest_fen >= 0 AND principal_fen <= opening_principal_fen", name="ck_instalment_amounts"),
        Index("ix_instalment_due", "due_on", "drawing_id"),
    )


class Due(Base):
    """An amount that fell due on `due_on` (an instalment, a settlement's interest, a maturity)
    and what of it is still unpaid; `overdue` once the grace period is over. While in grace,
    `grace_*_fen_days` collect the unpaid balance per day, charged as penalty and compound
    interest from the day after the due date if the grace is lost."""

    __tablename__ = "dues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drawing_id: Mapped[int] = mapped_column(ForeignKey("drawings.id"))
    due_on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    raised_principal_fen: Mapped[int] = mapped_column(BigInteger)
    raised_interest_fen: Mapped[int] = mapped_column(BigInteger)
    principal_fen: Mapped[int] = mapped_column(BigInteger)  # unpaid
    interest_fen: Mapped[int] = mapped_column(BigInteger)  # unpaid
    overdue: Mapped[bool] = mapped_column(Boolean)
    grace_principal_fen_days: Mapped[int] = mapped_column(BigInteger)
    grace_interest_fen_days: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("principal_fen >= 0 AND principal_fen <= raised_principal_fen AND interest_fen >= 0 "
                        "AND interest_fen <= raised_interest_fen", name="ck_due_amounts"),
        CheckConstraint("kind IN ('instalment','settlement','maturity','repayment')", name="ck_due_kind"),
        Index("ix_due_drawing", "drawing_id", "due_on"),
    )


class DelinquencyChange(Base):
    """The ageing history of a drawing: a row each time its oldest unpaid due date (`Drawing.oldest_due_on`) changes —
    when end of day raises a due on a drawing that owed nothing due, when a repayment clears the oldest due — written
    in the transaction that changes it, dated with the business day it takes effect on. The oldest unpaid due date as
    of day D is the last row on or before D (none: nothing unpaid), and D's days past due follow from it
    (`sandu.ledger.overdue.days_past_due`)."""

    __tablename__ = "delinquency_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drawing_id: Mapped[int] = mapped_column(ForeignKey("drawings.id"))
    on_date: Mapped[date] = mapped_column(Date)
    oldest_due_on: Mapped[date | None] = mapped_column(Date)  # None: nothing unpaid from that day

    __table_args__ = (Index("ix_delinquency_on", "on_date", "drawing_id"),)


class ClassificationChange(Base):
    """The five-category history of a drawing: every change, by the rules or an officer."""

    __tablename__ = "classification_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drawing_id: Mapped[int] = mapped_column(ForeignKey("drawings.id"), index=True)
    on_date: Mapped[date] = mapped_column(Date)
    from_class: Mapped[str] = mapped_column(String(16))
    to_class: Mapped[str] = mapped_column(String(16))
    officer_class: Mapped[str | None] = mapped_column(String(16))
    dpd: Mapped[int] = mapped_column(Integer)
    cause: Mapped[str] = mapped_column(String(16))  # rule | officer
    by_user: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text)

    __table_args__ = (CheckConstraint("cause IN ('rule','officer')", name="ck_classification_cause"),)


class JournalEntryRow(Base):
    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("credit_lines.id"), index=True)  # None for a batch of end of day
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


# --- the business calendar and end of day ---------------------------------------------------


class BusinessCalendar(Base):
    """One row: the last business date end of day has closed, and what kind of store this is
    (only a demo or test store may run on the simulated clock)."""

    __tablename__ = "business_calendar"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_closed_on: Mapped[date | None] = mapped_column(Date)
    store_kind: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint("id = 1", name="ck_calendar_single"),
        CheckConstraint(sql_in("store_kind", StoreKind), name="ck_calendar_store_kind"),
    )


class EodRun(Base):
    """End of day for one business date: who runs it (a lease, renewed by every batch), how far
    it got (the checkpoint: the last line done), and whether it is done."""

    __tablename__ = "eod_runs"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    last_line_id: Mapped[int] = mapped_column(Integer)
    lines_done: Mapped[int] = mapped_column(Integer)
    days_accrued: Mapped[int] = mapped_column(Integer)
    interest_posted_fen: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(String(36))
    lease_until: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint(sql_in("status", EodStatus), name="ck_eod_status"),)
