"""identities, memberships, refresh tokens, the audit trail; keyed hashes of resident IDs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Resident IDs were looked up by a plain SHA-256, which the stored mask reverses in
about a second. They are now looked up by an HMAC keyed with the store's secret
(`SANDU_SECRET_KEY`): existing enterprises get theirs from the business registry
(the simulated universe keeps the legal representative's ID), so upgrading a store
that holds enterprises needs the key. Consents and approvals now name the
authenticated user; approvals recorded before (a free-text officer name) carry no
identity and are dropped from `offers.approved_by` (the decision records remain).
"""

import hashlib
import hmac

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ONLINE_BRANCH = "线上"


def _fk(table: str, column: str) -> str:
    return f"fk_{table}_{column}"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("branch", sa.String(length=16), nullable=True),
        sa.Column("authority_fen", sa.BigInteger(), nullable=True),
        sa.Column("person_id_hmac", sa.String(length=64), nullable=True),
        sa.Column("person_id_masked", sa.String(length=18), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("role IN ('applicant','officer','approver','risk','operations','admin','auditor')", name="ck_user_role"),
        sa.CheckConstraint("authority_fen IS NULL OR authority_fen >= 0", name="ck_user_authority"),
        sa.CheckConstraint("failed_logins >= 0", name="ck_user_failed_logins"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=_fk("users", "created_by")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_index("ix_users_person_id_hmac", "users", ["person_id_hmac"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=_fk("refresh_tokens", "user_id")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_table(
        "enterprise_members",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("relation IN ('legal_rep','delegate')", name="ck_member_relation"),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"], name=_fk("enterprise_members", "enterprise_id")),
        sa.ForeignKeyConstraint(["granted_by"], ["users.id"], name=_fk("enterprise_members", "granted_by")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=_fk("enterprise_members", "user_id")),
        sa.PrimaryKeyConstraint("user_id", "enterprise_id"),
    )
    op.create_index("ix_enterprise_members_enterprise_id", "enterprise_members", ["enterprise_id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("before_sha256", sa.String(length=64), nullable=True),
        sa.Column("after_sha256", sa.String(length=64), nullable=True),
        sa.Column("prev_sha256", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single"),
        sa.PrimaryKeyConstraint("id"),
    )
    # The chain starts empty: record 0 is the genesis link of 64 zeros.
    op.execute(sa.text("INSERT INTO audit_head (id, seq, sha256) VALUES (1, 0, :genesis)").bindparams(genesis="0" * 64))

    # Enterprises: the sub-branch that serves each, and a keyed hash of the legal representative's ID.
    with op.batch_alter_table("enterprises") as batch:
        batch.add_column(sa.Column("branch", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("legal_rep_id_hmac", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("registered_by", sa.Integer(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE enterprises SET branch = COALESCE(district, :online)"), {"online": ONLINE_BRANCH})
    rows = conn.execute(
        sa.text("SELECT e.id, s.legal_rep_id FROM enterprises e JOIN sim_enterprises s ON s.uscc = e.uscc")
    ).all()
    if rows:
        key = op.get_context().config.attributes.get("pii_key")
        if not key:
            from sandu.settings import SecretMissing

            raise SecretMissing("this store holds enterprises: upgrading it needs SANDU_SECRET_KEY (to key the hashes of resident IDs)")
        for enterprise_id, rid in rows:
            digest = hmac.new(key, rid.encode("utf-8"), hashlib.sha256).hexdigest()
            conn.execute(sa.text("UPDATE enterprises SET legal_rep_id_hmac = :h WHERE id = :id"), {"h": digest, "id": enterprise_id})
    with op.batch_alter_table("enterprises") as batch:
        batch.alter_column("branch", existing_type=sa.String(length=16), nullable=False)
        batch.create_index("ix_enterprises_branch", ["branch"])
        batch.create_index("ix_enterprises_legal_rep_id_hmac", ["legal_rep_id_hmac"])
        batch.create_foreign_key(_fk("enterprises", "registered_by"), "users", ["registered_by"], ["id"])
        batch.drop_column("legal_rep_id_sha256")

    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("signer_user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(_fk("consents", "signer_user_id"), "users", ["signer_user_id"], ["id"])
        batch.drop_column("signer_id_sha256")

    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("initiated_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(_fk("decisions", "initiated_by"), "users", ["initiated_by"], ["id"])

    with op.batch_alter_table("offers") as batch:
        batch.drop_column("approved_by")
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("reviewed_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("review_opinion", sa.Text(), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(_fk("offers", "reviewed_by"), "users", ["reviewed_by"], ["id"])
        batch.create_foreign_key(_fk("offers", "approved_by"), "users", ["approved_by"], ["id"])
        batch.create_check_constraint("ck_offer_four_eyes", "reviewed_by IS NULL OR approved_by IS NULL OR reviewed_by <> approved_by")

    with op.batch_alter_table("credit_lines") as batch:
        batch.add_column(sa.Column("signed_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(_fk("credit_lines", "signed_by"), "users", ["signed_by"], ["id"])

    with op.batch_alter_table("drawings") as batch:
        batch.add_column(sa.Column("drawn_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(_fk("drawings", "drawn_by"), "users", ["drawn_by"], ["id"])


def downgrade() -> None:
    """Back to 0001's shape; identities and the audit trail are dropped, and the plain
    hashes of 0001 cannot be rebuilt from keyed ones (those columns come back empty)."""
    for table, column in (("drawings", "drawn_by"), ("credit_lines", "signed_by"), ("decisions", "initiated_by")):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(_fk(table, column), type_="foreignkey")
            batch.drop_column(column)
    with op.batch_alter_table("offers") as batch:
        batch.drop_constraint("ck_offer_four_eyes", type_="check")
        batch.drop_constraint(_fk("offers", "approved_by"), type_="foreignkey")
        batch.drop_constraint(_fk("offers", "reviewed_by"), type_="foreignkey")
        for column in ("approved_by", "review_opinion", "reviewed_at", "reviewed_by"):
            batch.drop_column(column)
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(length=64), nullable=True))
    with op.batch_alter_table("consents") as batch:
        batch.drop_constraint(_fk("consents", "signer_user_id"), type_="foreignkey")
        batch.drop_column("signer_user_id")
        batch.add_column(sa.Column("signer_id_sha256", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_constraint(_fk("enterprises", "registered_by"), type_="foreignkey")
        batch.drop_index("ix_enterprises_legal_rep_id_hmac")
        batch.drop_index("ix_enterprises_branch")
        for column in ("registered_by", "legal_rep_id_hmac", "branch"):
            batch.drop_column(column)
        batch.add_column(sa.Column("legal_rep_id_sha256", sa.String(length=64), nullable=False, server_default=""))
    for table in ("audit_head", "audit_log", "enterprise_members", "refresh_tokens", "users"):
        op.drop_table(table)
