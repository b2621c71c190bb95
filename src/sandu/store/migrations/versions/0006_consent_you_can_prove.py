"""consent you can prove: the exact text shown (hashed, kept once in consent_texts), its template
version and language, the separate credit-bureau authorization (征信授权书) with its own text; every
source read with its adapter, duration, outcome, reason and payload hash

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Existing consents keep what they had: their text was not kept, so `text_sha256` stays NULL (sandu
says so rather than re-render a text nobody saw), language 'zh', and no bureau authorization — a
consent of before this revision that covers the credit bureau no longer allows a bureau read.
Existing reads were made by the simulated adapter; their outcome is `found` or `no_record` from
`found`; their duration and payload hash were not measured (NULL).

Downgrade drops what this revision added — the texts, the bureau authorizations, the read details —
and the rows of reads that were refused (never made: the old log holds reads only).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OUTCOMES = ("found", "no_record", "timeout", "error", "invalid", "circuit_open", "refused")


def upgrade() -> None:
    op.create_table(
        "consent_texts",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("text_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("text_version", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=False, server_default="zh"))
        batch.add_column(sa.Column("bureau_authorized_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bureau_text_sha256", sa.String(length=64), nullable=True))
        batch.create_foreign_key("fk_consent_text", "consent_texts", ["text_sha256"], ["sha256"])
        batch.create_foreign_key("fk_consent_bureau_text", "consent_texts", ["bureau_text_sha256"], ["sha256"])
        batch.create_check_constraint("ck_consent_language", "language IN ('zh','en')")
        batch.create_check_constraint("ck_consent_bureau_text", "(bureau_authorized_at IS NULL) = (bureau_text_sha256 IS NULL)")
    with op.batch_alter_table("source_reads") as batch:
        batch.add_column(sa.Column("adapter", sa.String(length=32), nullable=False, server_default="simulated"))
        batch.add_column(sa.Column("duration_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("payload_sha256", sa.String(length=64), nullable=True))
    op.execute("UPDATE source_reads SET outcome = CASE WHEN found THEN 'found' ELSE 'no_record' END")
    with op.batch_alter_table("source_reads") as batch:
        batch.alter_column("outcome", existing_type=sa.String(length=16), nullable=False)
        batch.create_check_constraint("ck_source_read_outcome", "outcome IN (" + ",".join(f"'{o}'" for o in OUTCOMES) + ")")


def downgrade() -> None:
    op.execute("DELETE FROM source_reads WHERE outcome = 'refused'")
    with op.batch_alter_table("source_reads") as batch:
        batch.drop_constraint("ck_source_read_outcome", type_="check")
        for column in ("payload_sha256", "reason", "outcome", "duration_ms", "adapter"):
            batch.drop_column(column)
    with op.batch_alter_table("consents") as batch:
        batch.drop_constraint("ck_consent_bureau_text", type_="check")
        batch.drop_constraint("ck_consent_language", type_="check")
        batch.drop_constraint("fk_consent_bureau_text", type_="foreignkey")
        batch.drop_constraint("fk_consent_text", type_="foreignkey")
        for column in ("bureau_text_sha256", "bureau_authorized_at", "language", "text_version", "text_sha256"):
            batch.drop_column(column)
    op.drop_table("consent_texts")
