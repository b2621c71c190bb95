"""a credit line may be expired

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credit_lines") as batch:
        batch.drop_constraint("ck_line_status", type_="check")
        batch.create_check_constraint("ck_line_status", "status IN ('active','frozen','expired','closed')")


def downgrade() -> None:
    op.execute("UPDATE credit_lines SET status = 'frozen' WHERE status = 'expired'")
    with op.batch_alter_table("credit_lines") as batch:
        batch.drop_constraint("ck_line_status", type_="check")
        batch.create_check_constraint("ck_line_status", "status IN ('active','frozen','closed')")
