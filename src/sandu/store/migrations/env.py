"""Alembic environment: runs on the connection sandu hands it (see sandu.store.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sandu.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():  # pragma: no cover - sandu never migrates offline
    raise SystemExit("sandu migrations run online only: use `sandu db upgrade`")
run_migrations_online()
