"""Shared fixtures: a real store on SQLite (a file) and on PostgreSQL.

PostgreSQL runs are skipped, with a message, when no server answers on
127.0.0.1:5432 — unless CI=true, where they must run and a missing server fails.

Migrating and seeding a store takes a few tenths of a second; a test session
does it once per backend into a template (an SQLite file; a PostgreSQL
template database) and each test gets a fresh copy of it: a copied file, or
`CREATE DATABASE … TEMPLATE`. Every test's store is its own, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import event

from sandu.demo.seed import seed_universe
from sandu.domain.enums import StoreKind
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.servicing.calendar import mark_store
from sandu.settings import Settings
from sandu.store.db import READ_ONLY_OPTION, make_engine
from sandu.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get("SANDU_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
AS_OF = date(2026, 10, 31)
BUSINESS_DATE = date(2026, 11, 29)
FIXED_NOW = datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc)
SEED_ENTERPRISES = 40
SEED = 7
TEST_SECRET = "sandu-test-secret-key-0123456789-abcdefghijklmnop"
# The tests' stores are named explicitly; passwords hash cheaply; limits do not get in the way.
TEST_SETTINGS = Settings(database_url="", secret_key=TEST_SECRET, argon2_time_cost=1, argon2_memory_kib=8,
                         rate_measure_per_minute=10_000, rate_movement_per_minute=100_000, rate_signup_per_hour=10_000)
TEST_PASSWORD = "correct horse battery staple"  # every demo user's password in the tests
PII_KEY = TEST_SETTINGS.derived_key("pii")


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


def _seed(url: str, n: int) -> None:
    """Migrate, seed the universe, and create the demo users (each with TEST_PASSWORD)."""
    from sandu.demo.users import demo_specs
    from sandu.security import actions as security

    engine = make_engine(url, TEST_SETTINGS)
    try:
        upgrade(engine)
        rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model(), settings=TEST_SETTINGS, clock=lambda: FIXED_NOW)
        seed_universe(rt.uow, n, SEED, AS_OF)
        with rt.uow.write() as s:
            mark_store(s, StoreKind.TEST)  # a test store: it may run on the simulated clock
        for spec in demo_specs():
            security.create_user(rt, None, username=spec.username, password=TEST_PASSWORD, role=spec.role, branch=spec.branch,
                                 authority_fen=spec.authority_fen, resident_id=spec.resident_id)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated and seeded SQLite file, made once per session (WAL checkpointed into it)."""
    path = tmp_path_factory.mktemp("template") / "sandu.db"
    _seed(f"sqlite:///{path}", SEED_ENTERPRISES)
    import sqlite3

    with sqlite3.connect(path) as conn:  # everything into the main file, so that a copy is complete
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_available) -> Iterator[str | None]:
    """The name of a migrated and seeded PostgreSQL template database, or None without a server."""
    if not pg_available:
        yield None
        return
    name = f"sandu_tpl_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    assert admin is not None
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        _seed(f"postgresql+psycopg://{admin.info.user}@127.0.0.1:5432/{name}", SEED_ENTERPRISES)
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def new_db_url(kind: str, tmp_path, pg_available: bool, template: str | None = None) -> Iterator[str]:
    """A new, empty (or, with `template`, copied) store of `kind`, dropped afterwards."""
    if kind == "sqlite":
        path = tmp_path / f"sandu-{uuid.uuid4().hex[:8]}.db"
        if template is not None:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    if not pg_available:
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL run (set CI=true to require it)")
    name = f"sandu_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    assert admin is not None
    user = admin.info.user
    admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, pg_available) -> Iterator[str]:
    """A seeded store (a copy of the session's template) on each backend."""
    if request.param == "sqlite":
        template = str(request.getfixturevalue("sqlite_template"))
    else:
        template = request.getfixturevalue("pg_template") if pg_available else None
    yield from new_db_url(request.param, tmp_path, pg_available, template)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request, tmp_path, pg_available) -> Iterator[str]:
    """An empty store (no schema) on each backend."""
    yield from new_db_url(request.param, tmp_path, pg_available)


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    """A seeded SQLite store (a copy of the session's template)."""
    return next(new_db_url("sqlite", tmp_path, False, str(sqlite_template)))


class Clock:
    """A settable clock for tests (services take time as an argument)."""

    def __init__(self, now: datetime = FIXED_NOW):
        self.value = now

    def __call__(self) -> datetime:
        return self.value


def runtime_on(url: str, settings: Settings = TEST_SETTINGS) -> Runtime:
    """A runtime on an existing store, with a settable test clock."""
    return Runtime(engine=make_engine(url, settings), bundle=load_bundle(), model=load_model(), clock=Clock(), settings=settings)


def make_rt(url: str, n: int = SEED_ENTERPRISES) -> Runtime:
    """Migrate and seed the store at `url` (for tests that need their own universe size)."""
    _seed(url, n)
    return runtime_on(url)


@pytest.fixture
def rt(db_url) -> Iterator[Runtime]:
    runtime = runtime_on(db_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def rt_sqlite(sqlite_url) -> Iterator[Runtime]:
    runtime = runtime_on(sqlite_url)
    yield runtime
    runtime.engine.dispose()


@contextmanager
def running(server, sock) -> Iterator[None]:
    """Run a uvicorn `server` on the bound socket `sock` in a thread until the block ends (at most 15 s to start)."""
    import threading
    import time

    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start within 15 s"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve(app) -> Iterator[str]:
    """Run an ASGI app on a real uvicorn server on a free loopback port; yields its base URL."""
    import socket

    import uvicorn

    # The socket is bound here and handed to uvicorn, never closed and re-bound: with the suite on several
    # workers (pytest-xdist), no other process can take the port in between. IPPROTO_TCP named explicitly: asyncio
    # sets TCP_NODELAY only on sockets whose proto says TCP (with proto 0 every response waits for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    with running(server, sock):
        yield f"http://127.0.0.1:{port}"
    sock.close()


@pytest.fixture
def live_server(rt_sqlite) -> Iterator[str]:
    """The real app on a real uvicorn server on a free loopback port."""
    from sandu.api.app import create_app

    yield from serve(create_app(rt_sqlite))


def actor(rt: Runtime, username: str):
    """A seeded user (see sandu.demo.users) as an actor, acting now."""
    from sandu.security import actions as security

    return security.actor_by_username(rt, username)


def login(client, username: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    """Authorization headers for a seeded user, through POST /api/v1/auth/token."""
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def known_to_decline(rt: Runtime, uscc: str, name: str, legal_rep_id: str, district: str = "鹿城") -> None:
    """Put an enterprise into the sources' world that the policy declines: S2's figures with a tax credit grade of D
    (no credit product), no collateral and no account (no secured product). An enterprise the sources do not know
    at all is referred (its data is missing), not declined."""
    from sandu.demo.seed import _insert_rows
    from sandu.simulate.stories import STORY_ROWS

    with rt.uow.write() as s:
        _insert_rows(s, [{**STORY_ROWS[1], "uscc": uscc, "name": name, "district": district, "legal_rep_id": legal_rep_id, "story": "",
                          "tax_credit_grade": "D"}], AS_OF)


# Files that take minutes: collected first, so that under `make test` (xdist, files handed out in collection order) one
# worker starts on them while the other takes the short files, instead of one of them starting last.
LONG_FILES = ("test_portfolio_scale.py", "test_history.py")


def pytest_collection_modifyitems(config, items) -> None:
    items.sort(key=lambda item: LONG_FILES.index(item.path.name) if item.path.name in LONG_FILES else len(LONG_FILES))  # stable


class CommitFails:
    """Make the commit of every write transaction on the engine fail, as a full disk would. A read's transaction is left
    to end as it does (on PostgreSQL with a COMMIT of a READ ONLY transaction, which writes nothing a disk could refuse)."""

    def __init__(self, engine):
        self.engine = engine

    @staticmethod
    def _boom(conn):
        if not conn.get_execution_options().get(READ_ONLY_OPTION):
            raise OSError("commit failed (simulated)")

    def __enter__(self):
        event.listen(self.engine, "commit", self._boom)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "commit", self._boom)
