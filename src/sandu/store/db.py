"""Engines and transactions.

SQLite by default (a file, WAL, foreign keys on, synchronous=FULL, every write
transaction opened with BEGIN IMMEDIATE so writers queue instead of failing on
upgrade); PostgreSQL when ``SANDU_DATABASE_URL`` is set. Services open exactly
one transaction per operation with :func:`transaction`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE_PATH = Path("var/sandu.db")
SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "sandu_read_only"


def database_url() -> str:
    """``SANDU_DATABASE_URL`` or the default SQLite file under ./var."""
    url = os.environ.get("SANDU_DATABASE_URL", "").strip()
    if url:
        return url
    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def _normalise(url: str) -> str:
    # Plain postgresql:// means the psycopg 3 driver we ship, not psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None) -> Engine:
    url = _normalise(url or database_url())
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        # Let SQLAlchemy issue BEGIN itself (below) instead of pysqlite's implicit one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every SQLite test
        # Writers take the write lock up front (no failed lock upgrades); readers
        # run deferred and, under WAL, never wait for a writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY_OPTION) else "BEGIN IMMEDIATE")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads: a deferred BEGIN on SQLite (a WAL snapshot from the first
    read), a READ ONLY REPEATABLE READ transaction on PostgreSQL."""
    options: dict[str, object] = {READ_ONLY_OPTION: True}
    if engine.dialect.name == "postgresql":
        # One snapshot for the whole read, so a view never mixes before and after a concurrent write.
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True, postgresql_deferrable=True)
    return sessionmaker(bind=engine.execution_options(**options), expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
