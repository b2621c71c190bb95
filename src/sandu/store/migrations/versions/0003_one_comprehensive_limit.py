"""one comprehensive limit per enterprise: the decision in force, superseded decisions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Each enterprise's latest decision is the one in force (`enterprises.live_decision_id`);
the earlier ones are marked superseded at the time of the latest.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("enterprises") as batch:
        batch.add_column(sa.Column("live_decision_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key("fk_enterprises_live_decision_id", "decisions", ["live_decision_id"], ["id"])
    conn = op.get_bind()
    latest = conn.execute(sa.text(
        "SELECT d.enterprise_id, d.id, d.decided_at FROM decisions d "
        "WHERE NOT EXISTS (SELECT 1 FROM decisions e WHERE e.enterprise_id = d.enterprise_id "
        "AND (e.decided_at > d.decided_at OR (e.decided_at = d.decided_at AND e.id > d.id)))"
    )).all()
    for enterprise_id, decision_id, decided_at in latest:
        conn.execute(sa.text("UPDATE enterprises SET live_decision_id = :d WHERE id = :e"), {"d": decision_id, "e": enterprise_id})
        conn.execute(sa.text("UPDATE decisions SET superseded_at = :t WHERE enterprise_id = :e AND id <> :d"),
                     {"t": decided_at, "e": enterprise_id, "d": decision_id})


def downgrade() -> None:
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_constraint("fk_enterprises_live_decision_id", type_="foreignkey")
        batch.drop_column("live_decision_id")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("superseded_at")
