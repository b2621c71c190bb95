"""Schema migrations (Alembic), run programmatically so no alembic.ini is needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head", pii_key: bytes | None = None) -> str:
    """Bring the schema to `revision`; returns the revision now current. `pii_key` keys
    the hashes of resident IDs (needed to upgrade a store that holds enterprises to 0002)."""
    return _migrate(engine, command.upgrade, revision, pii_key)


def downgrade(engine: Engine, revision: str) -> str:
    """Take the schema back to `revision` (each migration's downgrade says what is lost); returns the revision now current."""
    return _migrate(engine, command.downgrade, revision, None)


def _migrate(engine: Engine, step, revision: str, pii_key: bytes | None) -> str:
    cfg = alembic_config(engine)
    cfg.attributes["pii_key"] = pii_key
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, revision)
        return current_revision(engine) or ""
    # SQLite alters a table by copying it (batch mode): foreign keys are switched off for
    # the copy — outside the transaction, where SQLite allows it — and checked afterwards.
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                step(cfg, revision)
            broken = raw.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left {len(broken)} rows that break a foreign key, e.g. {broken[0]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None, "no migrations found"
    return head
