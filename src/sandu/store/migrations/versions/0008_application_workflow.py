"""the application workflow: applications with their state (sandu.origination.states), every transition with its
time, actor and reason, applicants' requests for human review of a decline (PIPL art. 24); on credit lines the
annualized rate (年化利率) and the 普惠型小微 flag of the decision they were signed from

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

Backfill, from what the store already holds (nothing is recomputed):

- each enterprise's decisions, oldest first, are grouped into applications: an application takes decisions until
  one of them is signed (an offer accepted) — the decisions before a signature were measurements again of the same
  application — and the decisions after the last signature form one application still open;
- an application whose decision was signed is `accepted`, or `active` when a line signed from it was ever drawn on;
  an open one takes its state from its last decision: `approved`, `partially_approved` (some offer still has a
  referred part), `referred` or `declined` (an officer's approvals count); it is not expired here — the next end of
  day expires it if its decision's validity has run out;
- an enterprise without a decision gets one application, `authorized` when it ever granted a consent, else `draft`;
- each backfilled application has its transitions as far as the store can tell: `assessed` at its last decision's
  time (action `migrated`), then its state at that time — or, for an `active` one, at its first drawing — so that
  measurement-to-first-drawing can be reported for loans made before the workflow; actor `system:migration`;
- lines: `application_id` from their offer's decision; `annualized_rate` and `inclusive_small_micro` from the
  decision's recorded result where it holds them, else NULL (the line view shows null for "not recorded").

Downgrade drops the tables and columns (the workflow's history is lost with them).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATES = ("draft", "authorized", "assessed", "approved", "partially_approved", "referred", "declined", "accepted", "active", "withdrawn",
          "expired")
REVIEW_STATUSES = ("requested", "reviewed", "upheld", "reassess", "superseded")
DECISION_VALID_DAYS = 30  # sandu.origination.service.DECISION_VALID_DAYS when this revision was written


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ",".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("requested_fen", sa.BigInteger(), nullable=True),
        sa.Column("decision_id", sa.String(length=36), nullable=True),
        sa.Column("valid_through", sa.Date(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(_in("state", STATES), name="ck_application_state"),
        sa.CheckConstraint("requested_fen IS NULL OR requested_fen > 0", name="ck_application_requested"),
    )
    op.create_index("ix_applications_enterprise_id", "applications", ["enterprise_id"])
    op.create_index("ix_application_queue", "applications", ["branch", "state", "queued_at"])
    op.create_index("ix_application_expiry", "applications", ["state", "valid_through"])
    op.create_table(
        "application_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(_in("to_state", STATES), name="ck_transition_to_state"),
    )
    op.create_index("ix_transition_application", "application_transitions", ["application_id", "id"])
    op.create_index("ix_transition_action", "application_transitions", ["action", "at"])
    op.create_table(
        "human_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("proposed_outcome", sa.String(length=16), nullable=True),
        sa.Column("opinion", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"]),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("decision_id"),
        sa.CheckConstraint(_in("status", REVIEW_STATUSES), name="ck_human_review_status"),
        sa.CheckConstraint("proposed_outcome IS NULL OR proposed_outcome IN ('upheld','reassess')", name="ck_human_review_outcome"),
        sa.CheckConstraint("reviewed_by IS NULL OR decided_by IS NULL OR reviewed_by <> decided_by", name="ck_human_review_four_eyes"),
    )
    op.create_index("ix_human_reviews_application_id", "human_reviews", ["application_id"])
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("application_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_decisions_application_id", "applications", ["application_id"], ["id"])
        batch.create_index("ix_decisions_application_id", ["application_id"])
    with op.batch_alter_table("credit_lines") as batch:
        batch.add_column(sa.Column("application_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("annualized_rate", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("inclusive_small_micro", sa.Boolean(), nullable=True))
        batch.create_foreign_key("fk_credit_lines_application_id", "applications", ["application_id"], ["id"])
    _backfill(op.get_bind())


# --- backfill ---------------------------------------------------------------------------------------------------

_md = sa.MetaData()
_ent = sa.Table("enterprises", _md, sa.Column("id", sa.Integer), sa.Column("branch", sa.String), sa.Column("registered_at", sa.DateTime))
_con = sa.Table("consents", _md, sa.Column("enterprise_id", sa.Integer), sa.Column("granted_at", sa.DateTime))
_dec = sa.Table("decisions", _md, sa.Column("id", sa.String), sa.Column("enterprise_id", sa.Integer), sa.Column("outcome", sa.String),
                sa.Column("application", sa.JSON), sa.Column("result", sa.JSON), sa.Column("as_of", sa.Date),
                sa.Column("decided_at", sa.DateTime), sa.Column("application_id", sa.Integer))
_off = sa.Table("offers", _md, sa.Column("id", sa.Integer), sa.Column("decision_id", sa.String), sa.Column("product", sa.String),
                sa.Column("limit_fen", sa.BigInteger), sa.Column("approved_fen", sa.BigInteger), sa.Column("status", sa.String))
_lin = sa.Table("credit_lines", _md, sa.Column("id", sa.Integer), sa.Column("offer_id", sa.Integer), sa.Column("application_id", sa.Integer),
                sa.Column("annualized_rate", sa.String), sa.Column("inclusive_small_micro", sa.Boolean))
_drw = sa.Table("drawings", _md, sa.Column("line_id", sa.Integer), sa.Column("drawn_at", sa.DateTime))
_app = sa.Table("applications", _md, sa.Column("id", sa.Integer), sa.Column("enterprise_id", sa.Integer), sa.Column("branch", sa.String),
                sa.Column("state", sa.String), sa.Column("requested_fen", sa.BigInteger), sa.Column("decision_id", sa.String),
                sa.Column("valid_through", sa.Date), sa.Column("queued_at", sa.DateTime(timezone=True)),
                sa.Column("created_at", sa.DateTime(timezone=True)), sa.Column("updated_at", sa.DateTime(timezone=True)))
_trn = sa.Table("application_transitions", _md, sa.Column("application_id", sa.Integer), sa.Column("from_state", sa.String),
                sa.Column("to_state", sa.String), sa.Column("action", sa.String), sa.Column("at", sa.DateTime(timezone=True)),
                sa.Column("actor_user_id", sa.Integer), sa.Column("actor_role", sa.String), sa.Column("reason", sa.Text),
                sa.Column("decision_id", sa.String))
REASON = "revision 0008: the state as the decisions, offers and lines recorded before the workflow tell it"


_NAIVE = [False]  # SQLite keeps no zone: its moments are written as naive UTC, as sandu's UtcDateTime does


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    aware = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return aware.replace(tzinfo=None) if _NAIVE[0] else aware


def _open_state(outcome: str, offers: list) -> str:
    if outcome == "decline" or not offers:
        return "declined"
    approved = [o for o in offers if o.approved_fen > 0]
    if not approved:
        return "referred"
    return "approved" if all(o.approved_fen == o.limit_fen for o in offers) else "partially_approved"


def _backfill(conn: sa.Connection) -> None:
    _NAIVE[0] = conn.dialect.name == "sqlite"
    offers: dict[str, list] = {}
    for o in conn.execute(sa.select(_off)):
        offers.setdefault(o.decision_id, []).append(o)
    line_of_offer = {r.offer_id: r.id for r in conn.execute(sa.select(_lin.c.id, _lin.c.offer_id))}
    first_draw = {r.line_id: _utc(r.first) for r in conn.execute(sa.select(_drw.c.line_id, sa.func.min(_drw.c.drawn_at).label("first"))
                                                                 .group_by(_drw.c.line_id))}
    consented = {r.enterprise_id: _utc(r.first) for r in conn.execute(sa.select(_con.c.enterprise_id, sa.func.min(_con.c.granted_at).label("first"))
                                                                      .group_by(_con.c.enterprise_id))}
    decisions: dict[int, list] = {}
    for d in conn.execute(sa.select(_dec).order_by(_dec.c.enterprise_id, _dec.c.decided_at, _dec.c.id)):
        decisions.setdefault(d.enterprise_id, []).append(d)
    for ent in conn.execute(sa.select(_ent).order_by(_ent.c.id)).all():
        groups: list[list] = [[]]
        for d in decisions.get(ent.id, []):
            groups[-1].append(d)
            if any(o.status == "accepted" for o in offers.get(d.id, [])):
                groups.append([])
        if not groups[-1] and len(groups) > 1:
            groups.pop()  # the last decision was signed: no application is open
        for group in groups:
            _backfill_application(conn, ent, group, offers, line_of_offer, first_draw, consented.get(ent.id))


def _backfill_application(conn: sa.Connection, ent, group: list, offers: dict, line_of_offer: dict, first_draw: dict,
                          consented_at: datetime | None) -> None:
    registered_at = _utc(ent.registered_at)
    if not group:
        state = "authorized" if consented_at is not None else "draft"
        at = consented_at or registered_at
        app_id = conn.execute(sa.insert(_app).values(enterprise_id=ent.id, branch=ent.branch, state=state, created_at=registered_at,
                                                     updated_at=at).returning(_app.c.id)).scalar_one()
        conn.execute(sa.insert(_trn).values(application_id=app_id, from_state=None, to_state=state, action="migrated", at=at, actor_user_id=None,
                                            actor_role="system:migration", reason=REASON, decision_id=None))
        return
    last = group[-1]
    decided_at = _utc(last.decided_at)
    mine = offers.get(last.id, [])
    lines = [line_of_offer[o.id] for o in mine if o.id in line_of_offer]
    drawn = [first_draw[x] for x in lines if x in first_draw]
    if lines:
        state, at = ("active", min(drawn)) if drawn else ("accepted", decided_at)
    else:
        state, at = _open_state(last.outcome, mine), decided_at
    requested = (last.application or {}).get("requested_fen")
    queued = decided_at if state in ("referred", "partially_approved") else None
    app_id = conn.execute(sa.insert(_app).values(
        enterprise_id=ent.id, branch=ent.branch, state=state, requested_fen=requested if isinstance(requested, int) and requested > 0 else None,
        decision_id=last.id, valid_through=last.as_of + timedelta(days=DECISION_VALID_DAYS), queued_at=queued,
        created_at=min(registered_at, _utc(group[0].decided_at)), updated_at=at).returning(_app.c.id)).scalar_one()
    conn.execute(sa.update(_dec).where(_dec.c.id.in_([d.id for d in group])).values(application_id=app_id))
    conn.execute(sa.insert(_trn), [
        {"application_id": app_id, "from_state": None, "to_state": "assessed", "action": "migrated", "at": decided_at, "actor_user_id": None,
         "actor_role": "system:migration", "reason": REASON, "decision_id": last.id},
        {"application_id": app_id, "from_state": "assessed", "to_state": state, "action": "migrated", "at": at, "actor_user_id": None,
         "actor_role": "system:migration", "reason": REASON, "decision_id": last.id},
    ])
    terms = {o["product"]: o for o in (last.result or {}).get("offers", [])}
    flag = (last.result or {}).get("inclusive_small_micro")
    for o in mine:
        if o.id in line_of_offer:
            conn.execute(sa.update(_lin).where(_lin.c.id == line_of_offer[o.id]).values(
                application_id=app_id, annualized_rate=terms.get(o.product, {}).get("annualized_rate"),
                inclusive_small_micro=flag if isinstance(flag, bool) else None))


def downgrade() -> None:
    with op.batch_alter_table("credit_lines") as batch:
        batch.drop_constraint("fk_credit_lines_application_id", type_="foreignkey")
        for column in ("inclusive_small_micro", "annualized_rate", "application_id"):
            batch.drop_column(column)
    with op.batch_alter_table("decisions") as batch:
        batch.drop_index("ix_decisions_application_id")
        batch.drop_constraint("fk_decisions_application_id", type_="foreignkey")
        batch.drop_column("application_id")
    op.drop_index("ix_human_reviews_application_id", table_name="human_reviews")
    op.drop_table("human_reviews")
    op.drop_index("ix_transition_action", table_name="application_transitions")
    op.drop_index("ix_transition_application", table_name="application_transitions")
    op.drop_table("application_transitions")
    op.drop_index("ix_application_expiry", table_name="applications")
    op.drop_index("ix_application_queue", table_name="applications")
    op.drop_index("ix_applications_enterprise_id", table_name="applications")
    op.drop_table("applications")
