"""the ageing history of drawings: a row each time a drawing's oldest unpaid due date changes, from which its days
past due as of any past business day are derived

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

Backfill, from what the store holds (honestly limited: the store never recorded when a due was paid): each open
drawing with something unpaid gets one row saying that its oldest unpaid due date today has been its oldest unpaid
due date since the day before that date (end of day raises a due the day before it falls due). The derived DPD is
then exact from the migration on, and for earlier days exact for every drawing whose dues were paid in order of
their due dates before the next fell due; where an older due was paid later, the earlier DPD derived is a lower bound
(0 for the days before the backfilled row). Drawings repaid before the migration get no row: their past DPD reads 0.

Downgrade drops the table (the history is lost with it).
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 5000


def _as_date(value: object) -> date:
    """A DATE column read by raw SQL: a date on PostgreSQL, its ISO text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def upgrade() -> None:
    op.create_table(
        "delinquency_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drawing_id", sa.Integer(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("oldest_due_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["drawing_id"], ["drawings.id"], name="fk_delinquency_history_drawing_id"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delinquency_on", "delinquency_history", ["on_date", "drawing_id"])
    conn = op.get_bind()
    table = sa.table("delinquency_history", sa.column("drawing_id", sa.Integer()), sa.column("on_date", sa.Date()),
                     sa.column("oldest_due_on", sa.Date()))
    rows = conn.execute(sa.text("SELECT id, oldest_due_on FROM drawings WHERE status = 'open' AND oldest_due_on IS NOT NULL ORDER BY id")).all()
    for start in range(0, len(rows), BATCH):
        conn.execute(sa.insert(table), [{"drawing_id": r.id, "on_date": _as_date(r.oldest_due_on) - timedelta(days=1),
                                         "oldest_due_on": _as_date(r.oldest_due_on)}
                                        for r in rows[start:start + BATCH]])


def downgrade() -> None:
    op.drop_index("ix_delinquency_on", table_name="delinquency_history")
    op.drop_table("delinquency_history")
