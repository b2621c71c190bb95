"""retention and erasure (PIPL): raw source payloads kept until their source's retention date,
and each erasure request recorded with what was removed and what was kept and why

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

New tables only: nothing existing changes. Downgrade drops them (the raw payloads kept so far,
and the record of erasures, are lost with them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_payloads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("keep_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.ForeignKeyConstraint(["consent_id"], ["consents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_source_payloads_enterprise_id", "source_payloads", ["enterprise_id"])
    op.create_index("ix_source_payloads_keep_until", "source_payloads", ["keep_until"])
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("kept", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_erasures_enterprise_id", "erasures", ["enterprise_id"])


def downgrade() -> None:
    op.drop_index("ix_erasures_enterprise_id", table_name="erasures")
    op.drop_table("erasures")
    op.drop_index("ix_source_payloads_keep_until", table_name="source_payloads")
    op.drop_index("ix_source_payloads_enterprise_id", table_name="source_payloads")
    op.drop_table("source_payloads")
