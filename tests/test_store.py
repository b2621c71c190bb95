"""The store: SQLite pragmas, migrations, database constraints, exact Decimals.

Runs against a real SQLite file and a real PostgreSQL database (see conftest).
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import BUSINESS_DATE, FIXED_NOW, PII_KEY, actor
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from sandu.domain.errors import NotFound
from sandu.origination import service as orig
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m
from sandu.store.db import make_engine
from sandu.store.migrate import current_revision, head_revision, upgrade

S2 = STORY_ROWS[1]


def open_s2_line(rt) -> int:
    """Register S2, consent, measure and accept its 经营快贷: the id of the new line."""
    with rt.uow.write() as s:
        try:
            orig.get_enterprise(s, S2["uscc"])
        except NotFound:
            orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=actor(rt, "rep-s2"), pii_key=PII_KEY, now=FIXED_NOW)
        consent = orig.grant_consent(
            s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement",
            signer=actor(rt, "rep-s2"), valid_days=30, now=FIXED_NOW,
        )
        d = orig.measure(s, uscc=S2["uscc"], consent_id=consent.id, as_of=BUSINESS_DATE, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech)
        line = orig.accept_offer(
            s, decision_id=d.id, product="jingying_kuaidai", signer=actor(rt, "rep-s2"), as_of=BUSINESS_DATE, now=FIXED_NOW
        )
        return line.id


# --- SQLite connection settings ---------------------------------------------------------


def test_sqlite_pragmas_in_force_on_every_connection(sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        # Two DBAPI connections held at once: the pragmas must be set on each,
        # not just on the first. (Raw connections: no BEGIN is issued.)
        raw1, raw2 = engine.raw_connection(), engine.raw_connection()
        try:
            assert raw1.driver_connection is not raw2.driver_connection
            for raw in (raw1, raw2):
                cur = raw.cursor()
                assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                assert cur.execute("PRAGMA foreign_keys").fetchone()[0] == 1
                assert cur.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
                assert cur.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
                cur.close()
        finally:
            raw1.close()
            raw2.close()
        # And through an ordinary SQLAlchemy connection.
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_write_transaction_takes_the_write_lock_at_begin(rt_sqlite):
    """BEGIN IMMEDIATE: as soon as a transaction has started, no other writer may begin."""
    path = rt_sqlite.engine.url.database
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with rt_sqlite.uow.write() as s:
            s.execute(select(1))  # only reads so far
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction has ended
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_sqlite_foreign_keys_are_enforced(rt_sqlite):
    with pytest.raises(IntegrityError):
        with rt_sqlite.uow.write() as s:
            s.execute(text("INSERT INTO source_reads (consent_id, source, read_at, found) VALUES ('no-such-consent', 'tax', '2026-11-29', 1)"))
    with rt_sqlite.uow.write() as s:
        assert s.scalar(text("SELECT count(*) FROM source_reads")) == 0


# --- migrations ----------------------------------------------------------------------


def test_migrations_reach_head_are_idempotent_and_match_the_models(empty_db_url):
    engine = make_engine(empty_db_url)
    try:
        assert current_revision(engine) is None
        head = head_revision(engine)
        assert upgrade(engine) == head
        assert current_revision(engine) == head
        tables_once = set(inspect(engine).get_table_names())
        # A second upgrade is a no-op: same revision, same tables, no error.
        assert upgrade(engine) == head
        assert current_revision(engine) == head
        assert set(inspect(engine).get_table_names()) == tables_once
        assert tables_once == set(m.Base.metadata.tables) | {"alembic_version"}
        # The migrated schema is what the models declare (no drift).
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), m.Base.metadata) == []
        # The safety constraints exist in the migrated schema.
        checks = {c["name"] for c in inspect(engine).get_check_constraints("credit_lines")}
        assert {"ck_line_no_overdraw", "ck_line_drawn_nonneg", "ck_line_status"} <= checks
    finally:
        engine.dispose()


# --- database constraints ------------------------------------------------------------


def test_check_constraint_rejects_overdraw_by_direct_update(rt):
    line_id = open_s2_line(rt)
    with rt.uow.write() as s:
        limit = s.get(m.CreditLine, line_id).limit_fen
    assert limit == 416_000_000
    with pytest.raises(IntegrityError, match="ck_line_no_overdraw|CHECK constraint failed"):
        with rt.uow.write() as s:
            s.execute(text("UPDATE credit_lines SET drawn_principal_fen = limit_fen + 1 WHERE id = :id"), {"id": line_id})
    # Exactly at the limit is allowed, and negative principal is not.
    with rt.uow.write() as s:
        s.execute(text("UPDATE credit_lines SET drawn_principal_fen = limit_fen WHERE id = :id"), {"id": line_id})
    with pytest.raises(IntegrityError, match="ck_line_drawn_nonneg|CHECK constraint failed"):
        with rt.uow.write() as s:
            s.execute(text("UPDATE credit_lines SET drawn_principal_fen = -1 WHERE id = :id"), {"id": line_id})
    with rt.uow.write() as s:
        assert s.scalar(text("SELECT drawn_principal_fen FROM credit_lines WHERE id = :id"), {"id": line_id}) == limit


def test_failed_transaction_leaves_nothing_behind(rt):
    with rt.uow.write() as s:
        before = s.scalar(select(text("count(*)")).select_from(m.Enterprise))
    with pytest.raises(RuntimeError):
        with rt.uow.write() as s:
            orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=actor(rt, "rep-s2"), pii_key=PII_KEY, now=FIXED_NOW)
            s.flush()
            raise RuntimeError("boom")
    with rt.uow.write() as s:
        assert s.scalar(select(text("count(*)")).select_from(m.Enterprise)) == before
        assert s.scalar(select(m.Enterprise).where(m.Enterprise.uscc == S2["uscc"])) is None


def test_insert_rows_writes_every_row_in_order_and_a_failure_leaves_none(rt):
    """One executemany: the rows land in list order (ascending ids) with their types (datetimes, JSON, booleans);
    a row that breaks a constraint fails the whole transaction and nothing of it stays."""
    from sandu.store.db import insert_rows

    with rt.uow.write() as s:
        ent = orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=actor(rt, "rep-s2"), pii_key=PII_KEY, now=FIXED_NOW)
        consent = orig.grant_consent(s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=30,
                                     signer=actor(rt, "rep-s2"), now=FIXED_NOW, bureau_authorization=True)
        ent_id, consent_id = ent.id, consent.id
    rows = [{"enterprise_id": ent_id, "consent_id": consent_id, "source": source, "payload": {"n": k, "名": "甲"}, "payload_sha256": f"{k:064x}",
             "read_at": FIXED_NOW, "keep_until": FIXED_NOW} for k, source in enumerate(ALL_SOURCES)]
    with rt.uow.write() as s:
        insert_rows(s, m.SourcePayload, rows)
        insert_rows(s, m.SourcePayload, [])
    with rt.uow.read() as s:
        kept = [(p.source, p.payload, p.payload_sha256, p.read_at)
                for p in s.scalars(select(m.SourcePayload).where(m.SourcePayload.consent_id == consent_id).order_by(m.SourcePayload.id))]
    assert kept == [(r["source"], r["payload"], r["payload_sha256"], FIXED_NOW) for r in rows]
    with pytest.raises(IntegrityError):
        with rt.uow.write() as s:
            insert_rows(s, m.SourcePayload, [rows[0], {**rows[1], "enterprise_id": 10**9}])  # no such enterprise
    with rt.uow.read() as s:
        assert s.scalar(select(text("count(*)")).select_from(m.SourcePayload)) == len(rows)


# --- exact Decimals ------------------------------------------------------------------

RATES = [
    Decimal("0.0380"),  # trailing zero kept
    Decimal("0.123456789012345678"),  # 18 places
    Decimal("1E-7"),
    Decimal("0"),
    Decimal("316666.66666666666666666666666666666666666666666667"),  # a 50-digit accrual
    Decimal("0.0000027777777777777777777777777777777777777777777777778"),
]


def test_decimal_rates_round_trip_exactly(rt):
    line_id = open_s2_line(rt)
    for rate in RATES:
        with rt.uow.write() as s:
            s.get(m.CreditLine, line_id).rate_annual = rate
        with rt.uow.write() as s:
            got = s.get(m.CreditLine, line_id).rate_annual
            raw = s.scalar(text("SELECT rate_annual FROM credit_lines WHERE id = :id"), {"id": line_id})
        assert isinstance(got, Decimal)
        assert got == rate and str(got) == str(rate)
        assert raw == str(rate)


def test_decimal_column_refuses_floats(rt_sqlite):
    line_id = open_s2_line(rt_sqlite)
    with pytest.raises(StatementError, match="needs a Decimal"):
        with rt_sqlite.uow.write() as s:
            s.get(m.CreditLine, line_id).rate_annual = 0.038  # type: ignore[assignment]
            s.flush()
    with rt_sqlite.uow.write() as s:
        assert s.get(m.CreditLine, line_id).rate_annual == Decimal("0.0380")


def test_reads_do_not_wait_for_a_writer_on_sqlite(rt_sqlite):
    """A read transaction runs deferred under WAL: it proceeds while a writer holds the lock."""
    with rt_sqlite.uow.write() as writer:
        writer.execute(text("UPDATE sim_enterprises SET name = name WHERE 1 = 0"))  # holds BEGIN IMMEDIATE
        with rt_sqlite.uow.read() as reader:
            assert reader.execute(text("SELECT COUNT(*) FROM sim_enterprises")).scalar_one() > 0


@pytest.mark.postgres
def test_read_sessions_are_read_only_transactions_on_postgres(tmp_path, pg_available):
    import sqlalchemy.exc
    from conftest import make_rt, new_db_url

    urls = new_db_url("postgres", tmp_path, pg_available)
    rt = make_rt(next(urls), n=0)
    try:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
            with rt.uow.read() as reader:
                reader.execute(text("UPDATE sim_enterprises SET name = name"))
    finally:
        rt.engine.dispose()
        urls.close()


@pytest.mark.postgres
def test_reads_end_keeping_what_psycopg_prepared_on_postgres(tmp_path, pg_available):
    """psycopg prepares a statement the 5th time a connection runs it, and forgets every statement it prepared at any
    ROLLBACK (DEALLOCATE ALL): reads end with COMMIT on PostgreSQL (their transactions are READ ONLY), so what every
    request reads stays prepared; a read whose block raises is still rolled back, and its connection serves the next."""
    import sqlalchemy.exc
    from conftest import make_rt, new_db_url

    urls = new_db_url("postgres", tmp_path, pg_available)
    rt = make_rt(next(urls), n=0)
    query = select(m.SimEnterprise.uscc).where(m.SimEnterprise.uscc == S2["uscc"])
    prepared = text("SELECT count(*) FROM pg_prepared_statements")
    try:
        for _ in range(6):
            with rt.uow.read() as s:
                s.execute(query).all()
            with rt.uow.read_rows() as conn:
                conn.execute(query).all()
        with rt.uow.read_rows() as conn:  # one request at a time: the pool's one connection
            assert conn.execute(prepared).scalar_one() >= 1
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="no_such_table"):
            with rt.uow.read() as s:
                s.execute(text("SELECT * FROM no_such_table"))
        with pytest.raises(LookupError):
            with rt.uow.read_rows() as conn:
                conn.execute(query).all()
                raise LookupError
        with rt.uow.read() as s:
            assert s.execute(query).scalar_one() == S2["uscc"]  # the connection serves the next read
            s.get(m.SimEnterprise, S2["uscc"]).name = "renamed in a read"  # not flushed when the read ends, nor refused
        with rt.uow.read() as s:
            assert s.get(m.SimEnterprise, S2["uscc"]).name == S2["name"]
            assert s.execute(prepared).scalar_one() == 0  # the rollbacks forgot them, as psycopg does
    finally:
        rt.engine.dispose()
        urls.close()


def test_what_a_read_writes_on_sqlite_is_rolled_back(rt_sqlite):
    """SQLite does not refuse a write in a read's transaction: the read ends with ROLLBACK, so nothing it wrote stays."""
    renamed = text("SELECT COUNT(*) FROM sim_enterprises WHERE name = 'renamed in a read'")
    with rt_sqlite.uow.read() as s:
        s.execute(text("UPDATE sim_enterprises SET name = 'renamed in a read'"))
        assert s.execute(renamed).scalar_one() > 0
    with rt_sqlite.uow.read_rows() as conn:
        conn.execute(text("UPDATE sim_enterprises SET name = 'renamed in a read'"))
    with rt_sqlite.uow.read() as s:
        assert s.execute(renamed).scalar_one() == 0


def test_a_store_with_enterprises_upgrades_to_keyed_hashes_of_resident_ids(empty_db_url):
    """0001 → 0002 on a store that holds enterprises (and their consents, offers): the keyed
    hash comes from the registry's ID, the sub-branch from the district, nothing is lost,
    and without the key the upgrade is refused with the setting named."""
    import hashlib
    import hmac as hmac_

    from sandu.settings import SecretMissing

    engine = make_engine(empty_db_url)
    try:
        upgrade(engine, "0001")
        rep = S2["legal_rep_id"]
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO sim_enterprises (uscc, name, district, industry, legal_rep_id, has_bank_account, story, latent_risk, default_12m) "
                              "VALUES (:u, :n, '永嘉', '阀门泵业', :r, false, 'S2', 0.1, false)"), {"u": S2["uscc"], "n": S2["name"], "r": rep})
            conn.execute(text("INSERT INTO enterprises (uscc, name, district, industry, has_bank_account, legal_rep_id_masked, legal_rep_id_sha256, registered_at) "
                              "VALUES (:u, :n, '永嘉', '阀门泵业', false, :m, :h, :t)"),
                         {"u": S2["uscc"], "n": S2["name"], "m": rep[:6] + "********" + rep[-4:], "h": hashlib.sha256(rep.encode()).hexdigest(), "t": FIXED_NOW})
            ent_id = conn.execute(text("SELECT id FROM enterprises")).scalar_one()
            conn.execute(text("INSERT INTO consents (id, enterprise_id, scopes, purpose, signer_id_masked, signer_id_sha256, granted_at, expires_at) "
                              "VALUES ('c-1', :e, '[\"tax\"]', 'credit_measurement', 'x', 'y', :t, :t)"), {"e": ent_id, "t": FIXED_NOW})
        with pytest.raises(SecretMissing, match="SANDU_SECRET_KEY"):
            upgrade(engine)
        assert current_revision(engine) == "0001"  # refused as a whole
        assert upgrade(engine, pii_key=PII_KEY) == head_revision(engine)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT branch, legal_rep_id_hmac, legal_rep_id_masked FROM enterprises")).one()
            assert row == ("永嘉", hmac_.new(PII_KEY, rep.encode(), hashlib.sha256).hexdigest(), rep[:6] + "********" + rep[-4:])
            assert conn.execute(text("SELECT enterprise_id, signer_user_id FROM consents")).one() == (ent_id, None)
            assert conn.execute(text("SELECT seq FROM audit_head")).scalar_one() == 0
    finally:
        engine.dispose()
