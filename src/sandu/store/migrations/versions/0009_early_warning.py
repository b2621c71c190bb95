"""post-loan early warning: alerts raised by the policy bundle's [[early_warning]] rules on credit lines, with their
severity, evidence and status, and every step of their life (who, in which role, when, with what note)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

Two new tables, nothing backfilled (no alert was raised before this revision). At most one open alert (raised,
acknowledged, proposed, approved, rejected) per rule and line — a partial unique index on both SQLite and PostgreSQL — and the
same evidence never raises a rule twice on a line. Self-contained: it reads nothing of another revision but the
tables it references (credit_lines, enterprises, users).

Downgrade drops both tables (the alerts and their history are lost with them; the lines they froze or reduced stay
as they are, and the audit trail keeps its records of it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STATUSES = ("raised", "acknowledged", "proposed", "approved", "rejected", "done", "dismissed")
OPEN_STATUSES = ("raised", "acknowledged", "proposed", "approved", "rejected")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ",".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rule_action", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("evidence_key", sa.String(length=120), nullable=False),
        sa.Column("policy_version", sa.String(length=120), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposed_action", sa.String(length=16), nullable=True),
        sa.Column("proposed_limit_fen", sa.BigInteger(), nullable=True),
        sa.Column("proposed_by", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["line_id"], ["credit_lines.id"]),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.ForeignKeyConstraint(["proposed_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("line_id", "rule_id", "evidence_key", name="uq_alert_evidence"),
        sa.CheckConstraint(_in("status", STATUSES), name="ck_alert_status"),
        sa.CheckConstraint("proposed_action IS NULL OR proposed_action IN ('review','freeze','reduce_limit')", name="ck_alert_action"),
        sa.CheckConstraint("proposed_limit_fen IS NULL OR proposed_limit_fen >= 0", name="ck_alert_limit"),
        sa.CheckConstraint("proposed_by IS NULL OR decided_by IS NULL OR proposed_by <> decided_by", name="ck_alert_four_eyes"),
    )
    where = sa.text(_in("status", OPEN_STATUSES))
    op.create_index("uq_alert_open", "alerts", ["line_id", "rule_id"], unique=True, sqlite_where=where, postgresql_where=where)
    op.create_index("ix_alert_branch", "alerts", ["branch", "status", "id"])
    op.create_table(
        "alert_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(_in("to_status", STATUSES), name="ck_alert_step_status"),
    )
    op.create_index("ix_alert_step_alert", "alert_steps", ["alert_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_alert_step_alert", table_name="alert_steps")
    op.drop_table("alert_steps")
    op.drop_index("ix_alert_branch", table_name="alerts")
    op.drop_index("uq_alert_open", table_name="alerts")
    op.drop_table("alerts")
