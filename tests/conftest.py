"""Shared fixtures: a real store on SQLite (a file) and on PostgreSQL.

PostgreSQL runs are skipped, with a message, when no server answers on
127.0.0.1:5432 — unless CI=true, where they must run and a missing server fails.
Each PostgreSQL test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone

import pytest

from sandu.demo.seed import seed_universe
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.store.db import make_engine
from sandu.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get("SANDU_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
AS_OF = date(2026, 10, 31)
BUSINESS_DATE = date(2026, 11, 29)
FIXED_NOW = datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc)


def _pg_admin():
    import psycopg

    urls = [PG_ADMIN_URL] if "SANDU_TEST_PG_ADMIN" in os.environ else [PG_ADMIN_URL, "postgresql://root@127.0.0.1:5432/test"]
    for url in urls:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError:
            continue
    return None


@pytest.fixture(scope="session")
def pg_available() -> bool:
    conn = _pg_admin()
    if conn is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and CI=true requires the PostgreSQL runs")
        return False
    conn.close()
    return True


def new_db_url(kind: str, tmp_path, pg_available: bool) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'sandu.db'}"
        return
    if not pg_available:
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL run (set CI=true to require it)")
    name = f"sandu_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    assert admin is not None
    user = admin.info.user
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, pg_available) -> Iterator[str]:
    yield from new_db_url(request.param, tmp_path, pg_available)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sandu.db'}"


class Clock:
    """A settable clock for tests (services take time as an argument)."""

    def __init__(self, now: datetime = FIXED_NOW):
        self.value = now

    def __call__(self) -> datetime:
        return self.value


def make_rt(url: str, n: int = 40) -> Runtime:
    engine = make_engine(url)
    upgrade(engine)
    rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model(), clock=Clock())
    seed_universe(rt.sessions, n, 7, AS_OF)
    return rt


@pytest.fixture
def rt(db_url) -> Iterator[Runtime]:
    runtime = make_rt(db_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def rt_sqlite(sqlite_url) -> Iterator[Runtime]:
    runtime = make_rt(sqlite_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def live_server(rt_sqlite) -> Iterator[str]:
    """The real app on a real uvicorn server on a free loopback port."""
    import socket
    import threading
    import time

    import uvicorn

    from sandu.api.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(rt_sqlite), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "server did not start within 15 s"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
