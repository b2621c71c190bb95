"""the business calendar, end-of-day runs with checkpoints, drawings (借据) with their own terms,
balances and schedules, dues, the five-category history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Existing data is carried over: each line's principal is split across its drawings oldest
repaid first; the interest posted and not paid, and the interest accrued and not posted
(as fen-days), go to the line's oldest open drawing; one balanced `migrate` journal entry
per line moves the line-level balances to the drawings' accounts. Drawings made before
this revision were serviced 随借随还 and stay so. Lines not yet brought up to date start
from the day before they opened.
"""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ORDER = "penalty,compound,overdue_interest,overdue_principal,interest,principal"
BALANCE_COLUMNS = ("principal_fen", "due_principal_fen", "overdue_principal_fen", "interest_fen", "overdue_interest_fen", "penalty_fen",
                   "compound_fen", "interest_fen_days", "penalty_fen_days", "compound_fen_days")


def upgrade() -> None:
    op.create_table(
        "business_calendar",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_closed_on", sa.Date(), nullable=True),
        sa.Column("store_kind", sa.String(length=16), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_calendar_single"),
        sa.CheckConstraint("store_kind IN ('production','demo','test')", name="ck_calendar_store_kind"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO business_calendar (id, last_closed_on, store_kind) VALUES (1, NULL, 'production')")
    op.create_table(
        "eod_runs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_line_id", sa.Integer(), nullable=False),
        sa.Column("lines_done", sa.Integer(), nullable=False),
        sa.Column("days_accrued", sa.Integer(), nullable=False),
        sa.Column("interest_posted_fen", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=36), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('running','done')", name="ck_eod_status"),
        sa.PrimaryKeyConstraint("business_date"),
    )
    _lines()
    _drawings()
    op.create_table(
        "instalments",
        sa.Column("drawing_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("full_month", sa.Boolean(), nullable=False),
        sa.Column("opening_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("principal_fen >= 0 AND interest_fen >= 0 AND principal_fen <= opening_principal_fen", name="ck_instalment_amounts"),
        sa.ForeignKeyConstraint(["drawing_id"], ["drawings.id"]),
        sa.PrimaryKeyConstraint("drawing_id", "version", "seq"),
    )
    op.create_index("ix_instalment_due", "instalments", ["due_on", "drawing_id"])
    op.create_table(
        "dues",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drawing_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("raised_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("raised_interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("grace_principal_fen_days", sa.BigInteger(), nullable=False),
        sa.Column("grace_interest_fen_days", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("principal_fen >= 0 AND principal_fen <= raised_principal_fen AND interest_fen >= 0 "
                           "AND interest_fen <= raised_interest_fen", name="ck_due_amounts"),
        sa.CheckConstraint("kind IN ('instalment','settlement','maturity','repayment')", name="ck_due_kind"),
        sa.ForeignKeyConstraint(["drawing_id"], ["drawings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_due_drawing", "dues", ["drawing_id", "due_on"])
    op.create_table(
        "classification_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drawing_id", sa.Integer(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("from_class", sa.String(length=16), nullable=False),
        sa.Column("to_class", sa.String(length=16), nullable=False),
        sa.Column("officer_class", sa.String(length=16), nullable=True),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("by_user", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("cause IN ('rule','officer')", name="ck_classification_cause"),
        sa.ForeignKeyConstraint(["drawing_id"], ["drawings.id"]),
        sa.ForeignKeyConstraint(["by_user"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_classification_changes_drawing_id", "classification_changes", ["drawing_id"])
    _carry_over()
    op.drop_index("ix_accrual_unposted", table_name="interest_accruals")
    op.drop_table("interest_accruals")


def _lines() -> None:
    conn = op.get_bind()
    for line_id, opened_on in conn.execute(sa.text("SELECT id, opened_on FROM credit_lines WHERE accrued_through IS NULL")).all():
        # a line never brought up to date starts from the day before it opened
        conn.execute(sa.text("UPDATE credit_lines SET accrued_through = :d WHERE id = :id"), {"d": _as_date(opened_on) - timedelta(days=1), "id": line_id})
    with op.batch_alter_table("credit_lines") as batch:
        batch.add_column(sa.Column("term_within_validity", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("interest_with_principal", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("penalty_uplift", sa.String(length=64), nullable=False, server_default="0.50"))
        batch.add_column(sa.Column("grace_days", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("allocation_order", sa.String(length=200), nullable=False, server_default=ORDER))
        batch.add_column(sa.Column("risk_class", sa.String(length=16), nullable=False, server_default="normal"))
        batch.create_check_constraint("ck_line_risk_class", "risk_class IN ('normal','special_mention','substandard','doubtful','loss')")
        batch.create_check_constraint("ck_line_grace", "grace_days >= 0")
    with op.batch_alter_table("credit_lines") as batch:
        for column in ("term_within_validity", "interest_with_principal", "penalty_uplift", "grace_days", "allocation_order", "risk_class"):
            batch.alter_column(column, server_default=None)
        batch.alter_column("accrued_through", existing_type=sa.Date(), nullable=False)
        batch.create_index("ix_line_eod", ["accrued_through", "id"])


def _drawings() -> None:
    with op.batch_alter_table("drawings") as batch:
        batch.add_column(sa.Column("repayment_method", sa.String(length=16), nullable=False, server_default="随借随还"))
        batch.add_column(sa.Column("rate_annual", sa.String(length=64), nullable=False, server_default="0"))
        batch.add_column(sa.Column("penalty_rate_annual", sa.String(length=64), nullable=False, server_default="0"))
        batch.add_column(sa.Column("basis_days", sa.Integer(), nullable=False, server_default="360"))
        batch.add_column(sa.Column("settlement_frequency", sa.String(length=16), nullable=False, server_default="monthly"))
        batch.add_column(sa.Column("daily_interest", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("schedule_version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="open"))
        batch.add_column(sa.Column("repaid_on", sa.Date(), nullable=True))
        for column in BALANCE_COLUMNS:
            batch.add_column(sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("oldest_due_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("dpd", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("days_current", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("risk_class", sa.String(length=16), nullable=False, server_default="normal"))
        batch.add_column(sa.Column("officer_class", sa.String(length=16), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text(
        "UPDATE drawings SET rate_annual = (SELECT rate_annual FROM credit_lines l WHERE l.id = drawings.line_id), "
        "basis_days = (SELECT basis_days FROM credit_lines l WHERE l.id = drawings.line_id), "
        "settlement_frequency = (SELECT settlement_frequency FROM credit_lines l WHERE l.id = drawings.line_id)"))
    for drawing_id, rate in conn.execute(sa.text("SELECT id, rate_annual FROM drawings")).all():
        conn.execute(sa.text("UPDATE drawings SET penalty_rate_annual = :p WHERE id = :id"), {"p": str(Decimal(rate) * Decimal("1.50")), "id": drawing_id})
    with op.batch_alter_table("drawings") as batch:
        for column in ("repayment_method", "rate_annual", "penalty_rate_annual", "basis_days", "settlement_frequency", "daily_interest",
                       "schedule_version", "status", *BALANCE_COLUMNS, "dpd", "days_current", "risk_class"):
            batch.alter_column(column, server_default=None)
        batch.create_check_constraint("ck_drawing_term", "maturity_on > drawn_on")
        batch.create_check_constraint("ck_drawing_method", "repayment_method IN ('随借随还','按月付息到期还本','等额本息','等额本金')")
        batch.create_check_constraint("ck_drawing_status", "status IN ('open','repaid')")
        batch.create_check_constraint("ck_drawing_risk_class", "risk_class IN ('normal','special_mention','substandard','doubtful','loss')")
        batch.create_check_constraint("ck_drawing_officer_class",
                                      "officer_class IS NULL OR officer_class IN ('normal','special_mention','substandard','doubtful','loss')")
        batch.create_check_constraint(
            "ck_drawing_balances",
            "principal_fen >= 0 AND due_principal_fen >= 0 AND due_principal_fen <= principal_fen AND overdue_principal_fen >= 0 "
            "AND interest_fen >= 0 AND overdue_interest_fen >= 0 AND penalty_fen >= 0 AND compound_fen >= 0 "
            "AND interest_fen_days >= 0 AND penalty_fen_days >= 0 AND compound_fen_days >= 0 AND dpd >= 0 AND days_current >= 0")
        batch.create_check_constraint("ck_drawing_principal", "principal_fen + overdue_principal_fen <= amount_fen")
        batch.create_index("ix_drawing_line_status", ["line_id", "status"])


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _balance(conn: sa.Connection, account: str) -> int:
    return int(conn.execute(sa.text("SELECT COALESCE(SUM(amount_fen), 0) FROM postings WHERE account = :a"), {"a": account}).scalar() or 0)


def _carry_over() -> None:
    """Split each line's balances across its drawings and move them to the drawings' accounts."""
    conn = op.get_bind()
    now = datetime.now(timezone.utc)
    stamp = now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now
    for line_id, accrued_through in conn.execute(sa.text("SELECT id, accrued_through FROM credit_lines ORDER BY id")).all():
        drawings = conn.execute(sa.text("SELECT id, amount_fen FROM drawings WHERE line_id = :l ORDER BY drawn_on, id"), {"l": line_id}).all()
        principal = _balance(conn, f"loan:{line_id}:principal")
        interest = _balance(conn, f"loan:{line_id}:interest")
        fen_days = int(conn.execute(sa.text("SELECT COALESCE(SUM(closing_principal_fen), 0) FROM interest_accruals "
                                            "WHERE line_id = :l AND posted_entry_id IS NULL"), {"l": line_id}).scalar() or 0)
        repaid = sum(a for _, a in drawings) - principal
        assert repaid >= 0 and principal >= 0 and interest >= 0, f"line {line_id}: balances cannot be carried over"
        moves: list[tuple[str, int]] = []
        lefts = []
        for drawing_id, amount in drawings:
            left = amount - min(amount, repaid)
            repaid -= amount - left
            lefts.append((drawing_id, left))
        # interest goes to the oldest drawing with principal left, else to the newest drawing
        oldest_open = next((d for d, left in lefts if left), drawings[-1][0] if drawings else None)
        for drawing_id, left in lefts:
            is_open = left > 0 or (drawing_id == oldest_open and (interest or fen_days) > 0)
            conn.execute(sa.text("UPDATE drawings SET principal_fen = :p, status = :s WHERE id = :id"),
                         {"p": left, "s": "open" if is_open else "repaid", "id": drawing_id})
            if left:
                moves.append((f"loan:{line_id}-{drawing_id}:principal", left))
        if (interest or fen_days) and oldest_open is not None:
            conn.execute(sa.text("UPDATE drawings SET interest_fen = :i, interest_fen_days = :d WHERE id = :id"),
                         {"i": interest, "d": fen_days, "id": oldest_open})
            if interest:
                moves.append((f"loan:{line_id}-{oldest_open}:interest", interest))
                conn.execute(sa.text(
                    "INSERT INTO dues (drawing_id, due_on, kind, raised_principal_fen, raised_interest_fen, principal_fen, interest_fen, overdue, "
                    "grace_principal_fen_days, grace_interest_fen_days) VALUES (:d, :on, 'settlement', 0, :i, 0, :i, :f, 0, 0)"),
                    {"d": oldest_open, "on": _as_date(accrued_through) + timedelta(days=1), "i": interest, "f": False})
                conn.execute(sa.text("UPDATE drawings SET oldest_due_on = :on WHERE id = :id"),
                             {"on": _as_date(accrued_through) + timedelta(days=1), "id": oldest_open})
        if not moves:
            continue
        entry = conn.execute(sa.text(
            "INSERT INTO journal_entries (idempotency_key, request_sha256, kind, line_id, effective_date, memo, created_at) "
            "VALUES (:k, :h, 'migrate', :l, :d, :m, :t) RETURNING id"),
            {"k": f"sys:migrate-0005:{line_id}:{now.isoformat()}", "h": "0" * 64, "l": line_id, "d": _as_date(accrued_through) + timedelta(days=1),
             "m": "line balances moved to the drawings' accounts (migration 0005)", "t": stamp}).scalar_one()
        postings = [(account, amount) for account, amount in moves]
        postings += [(f"loan:{line_id}:principal", -principal)] if principal else []
        postings += [(f"loan:{line_id}:interest", -interest)] if interest else []
        assert sum(a for _, a in postings) == 0, f"line {line_id}: the carry-over entry must balance"
        for account, amount in postings:
            conn.execute(sa.text("INSERT INTO postings (entry_id, account, amount_fen) VALUES (:e, :a, :x)"), {"e": entry, "a": account, "x": amount})


# Back to 0004, where a line kept two balances: principal and interest. Overdue principal goes back to principal;
# interest due, overdue interest, penalty and compound interest to interest (what 0004 could collect).
_BACK = {"principal": "principal", "overdue_principal": "principal", "interest": "interest", "overdue_interest": "interest",
         "penalty": "interest", "compound": "interest"}
_FEN_DAYS = (("interest", "rate_annual"), ("penalty", "penalty_rate_annual"), ("compound", "penalty_rate_annual"))


def _charge_fen(fen_days: int, rate: Decimal, basis_days: int) -> int:
    """round_half_up(fen_days × rate / basis), exactly (as sandu.ledger.interest charges accrued fen-days)."""
    numerator, denominator = rate.as_integer_ratio()
    return (2 * fen_days * numerator + denominator * basis_days) // (2 * denominator * basis_days)


def downgrade() -> None:
    """Back to 0004's shape. The accruals not yet charged are charged (each kind rounded half-up once per drawing, as
    end of day would on the 20th), and each line's drawing balances move back to the line's two accounts, in one
    balanced `migrate` entry per line. Lost: schedules, dues, the five-category history, end-of-day runs, the
    calendar, the drawings' own terms (0004 services every line 随借随还 at its rate), the split of what is owed by
    kind. 0004's accruals start afresh from the day after the line's last closed date."""
    op.create_table(
        "interest_accruals",
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("closing_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("rate_annual", sa.String(length=64), nullable=False),
        sa.Column("basis_days", sa.Integer(), nullable=False),
        sa.Column("interest_exact", sa.String(length=64), nullable=False),
        sa.Column("posted_entry_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("closing_principal_fen >= 0", name="ck_accrual_principal"),
        sa.ForeignKeyConstraint(["line_id"], ["credit_lines.id"]),
        sa.ForeignKeyConstraint(["posted_entry_id"], ["journal_entries.id"]),
        sa.PrimaryKeyConstraint("line_id", "day"),
    )
    op.create_index("ix_accrual_unposted", "interest_accruals", ["line_id", "posted_entry_id"])
    _carry_back()
    for table in ("classification_changes", "dues", "instalments", "eod_runs", "business_calendar"):
        op.drop_table(table)
    with op.batch_alter_table("drawings") as batch:
        batch.drop_index("ix_drawing_line_status")
        for name in ("ck_drawing_term", "ck_drawing_method", "ck_drawing_status", "ck_drawing_risk_class", "ck_drawing_officer_class",
                     "ck_drawing_balances", "ck_drawing_principal"):
            batch.drop_constraint(name, type_="check")
        for column in ("repayment_method", "rate_annual", "penalty_rate_annual", "basis_days", "settlement_frequency", "daily_interest",
                       "schedule_version", "status", "repaid_on", *BALANCE_COLUMNS, "oldest_due_on", "dpd", "days_current", "risk_class",
                       "officer_class"):
            batch.drop_column(column)
    with op.batch_alter_table("credit_lines") as batch:
        batch.drop_index("ix_line_eod")
        for name in ("ck_line_risk_class", "ck_line_grace"):
            batch.drop_constraint(name, type_="check")
        for column in ("term_within_validity", "interest_with_principal", "penalty_uplift", "grace_days", "allocation_order", "risk_class"):
            batch.drop_column(column)
        batch.alter_column("accrued_through", existing_type=sa.Date(), nullable=True)


def _carry_back() -> None:
    conn = op.get_bind()
    now = datetime.now(timezone.utc)
    stamp = now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now
    for line_id, accrued_through in conn.execute(sa.text("SELECT id, accrued_through FROM credit_lines ORDER BY id")).all():
        balances: dict[str, int] = {}
        for account, total in conn.execute(sa.text("SELECT account, SUM(amount_fen) FROM postings WHERE account LIKE :p GROUP BY account"),
                                           {"p": f"loan:{line_id}-%"}).all():
            if total:
                balances[account] = int(total)
        charged: dict[str, int] = {}
        for row in conn.execute(sa.text("SELECT interest_fen_days, penalty_fen_days, compound_fen_days, rate_annual, penalty_rate_annual, basis_days "
                                        "FROM drawings WHERE line_id = :l"), {"l": line_id}).mappings():
            for kind, rate_column in _FEN_DAYS:
                fen = _charge_fen(int(row[f"{kind}_fen_days"]), Decimal(row[rate_column]), int(row["basis_days"]))
                if fen:
                    charged[kind] = charged.get(kind, 0) + fen
        moves: dict[str, int] = {}
        for account, total in balances.items():
            back = f"loan:{line_id}:{_BACK[account.rsplit(':', 1)[1]]}"
            moves[back] = moves.get(back, 0) + total
        if charged:
            moves[f"loan:{line_id}:interest"] = moves.get(f"loan:{line_id}:interest", 0) + sum(charged.values())
        postings = ([(account, -total) for account, total in balances.items()] + [(f"income:{k}", -x) for k, x in charged.items()]
                    + [(a, x) for a, x in moves.items() if x])
        if postings:
            assert sum(x for _, x in postings) == 0, f"line {line_id}: the carry-back entry must balance"
            entry = conn.execute(sa.text(
                "INSERT INTO journal_entries (idempotency_key, request_sha256, kind, line_id, effective_date, memo, created_at) "
                "VALUES (:k, :h, 'migrate', :l, :d, :m, :t) RETURNING id"),
                {"k": f"sys:migrate-0005-down:{line_id}:{now.isoformat()}", "h": "0" * 64, "l": line_id,
                 "d": _as_date(accrued_through), "m": "drawings' balances moved back to the line (downgrade from 0005)", "t": stamp}).scalar_one()
            for account, amount in postings:
                conn.execute(sa.text("INSERT INTO postings (entry_id, account, amount_fen) VALUES (:e, :a, :x)"),
                             {"e": entry, "a": account, "x": amount})
        # what 0004 checks: the line's principal account equals its drawn principal
        conn.execute(sa.text("UPDATE credit_lines SET drawn_principal_fen = :p WHERE id = :id"),
                     {"p": moves.get(f"loan:{line_id}:principal", 0), "id": line_id})
