"""a decision's grades as columns: a credit line keeps the tech grade, risk grade and 12-month PD of the decision it
was signed from, and whether that decision's tech evaluation qualified the borrower as a tech-sector (科技型)
enterprise; a decision keeps its risk grade and 12-month PD — read by every portfolio report for each line, where
extracting them from the decision's JSON result cost more than the rest of reading the line

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

Decisions are never updated, so the columns are written once, with the result they are taken from
(`sandu.origination.service.decision_grades`), and a line's when it is signed. Backfill: every decision's and every
line's columns from the decision's stored result, by the same reading frozen here (a migration does not follow later
code). Indexes: decisions(as_of, enterprise_id), as the reports count decisions by the day they were made as of, and
a covering one that finds each enterprise's latest decision as of a day without reading the decisions' results.

Downgrade drops the columns and the indexes.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 5000


def grades(result: dict[str, Any]) -> dict[str, Any]:
    """The columns of one decision's result (as `decision_grades` wrote them on 2026-11-30)."""
    scores = result.get("scores") or {}
    tech, risk = scores.get("tech") or {}, scores.get("risk") or {}
    pd = risk.get("pd")
    return {"tech_grade": result.get("tech_grade"), "risk_grade": result.get("risk_grade"),
            "pd_12m": None if pd is None else repr(float(pd)),
            "tech_sector": bool(tech.get("most_pass")) or bool((tech.get("innovative") or {}).get("passed"))}


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("risk_grade", sa.String(8), nullable=True))
        batch.add_column(sa.Column("pd_12m", sa.String(32), nullable=True))
    with op.batch_alter_table("credit_lines") as batch:
        batch.add_column(sa.Column("tech_grade", sa.String(8), nullable=True))
        batch.add_column(sa.Column("risk_grade", sa.String(8), nullable=True))
        batch.add_column(sa.Column("pd_12m", sa.String(32), nullable=True))
        batch.add_column(sa.Column("tech_sector", sa.Boolean(), nullable=True))
    conn = op.get_bind()
    decisions = sa.table("decisions", sa.column("id", sa.String(36)), sa.column("risk_grade", sa.String(8)), sa.column("pd_12m", sa.String(32)))
    lines = sa.table("credit_lines", sa.column("id", sa.Integer()), sa.column("tech_grade", sa.String(8)), sa.column("risk_grade", sa.String(8)),
                     sa.column("pd_12m", sa.String(32)), sa.column("tech_sector", sa.Boolean()))
    set_decision = sa.update(decisions).where(decisions.c.id == sa.bindparam("key")).values(
        risk_grade=sa.bindparam("risk_grade"), pd_12m=sa.bindparam("pd_12m"))
    set_line = sa.update(lines).where(lines.c.id == sa.bindparam("key")).values(
        tech_grade=sa.bindparam("tech_grade"), risk_grade=sa.bindparam("risk_grade"), pd_12m=sa.bindparam("pd_12m"),
        tech_sector=sa.bindparam("tech_sector"))
    signed = sa.text("SELECT l.id, o.decision_id FROM credit_lines l JOIN offers o ON o.id = l.offer_id WHERE o.decision_id IN :ids"
                     ).bindparams(sa.bindparam("ids", expanding=True))
    after = ""
    while True:  # keyset pages: the results are large, never all in memory at once
        rows = conn.execute(sa.text("SELECT id, result FROM decisions WHERE id > :after ORDER BY id LIMIT :n"), {"after": after, "n": BATCH}).all()
        if not rows:
            break
        graded = {r.id: grades(r.result if isinstance(r.result, dict) else json.loads(r.result)) for r in rows}
        conn.execute(set_decision, [{"key": k, "risk_grade": g["risk_grade"], "pd_12m": g["pd_12m"]} for k, g in graded.items()])
        line_rows = [{"key": line_id, **graded[decision_id]} for line_id, decision_id in conn.execute(signed, {"ids": list(graded)})]
        if line_rows:
            conn.execute(set_line, line_rows)
        after = rows[-1].id
    op.create_index("ix_decisions_as_of", "decisions", ["as_of", "enterprise_id"])
    op.create_index("ix_decisions_latest", "decisions", ["enterprise_id", "decided_at", "id", "as_of", "risk_grade", "pd_12m"])


def downgrade() -> None:
    op.drop_index("ix_decisions_latest", table_name="decisions")
    op.drop_index("ix_decisions_as_of", table_name="decisions")
    with op.batch_alter_table("credit_lines") as batch:
        for name in ("tech_sector", "pd_12m", "risk_grade", "tech_grade"):
            batch.drop_column(name)
    with op.batch_alter_table("decisions") as batch:
        for name in ("pd_12m", "risk_grade"):
            batch.drop_column(name)
