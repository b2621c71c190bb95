"""Engines and the unit of work.

SQLite by default (a file, WAL, foreign keys on, synchronous=FULL, every write
transaction opened with BEGIN IMMEDIATE); PostgreSQL when the settings name it.

`UnitOfWork` is the one way any part of sandu (API, web pages, CLI, demo)
reads or writes: `with uow.write() as session:` is one transaction that has
committed when the block ends without an exception — so an interface that
answers after the block answers only what is durable; an exception (a failed
commit included) rolls everything back and propagates. `uow.read()` is a
read-only snapshot.

Writers on SQLite queue in this process, first come first served, without
busy-waiting on the file lock: SQLite admits one writer at a time anyway, and
its busy loop (sleeping and retrying) is neither fair nor bounded. A writer
that cannot get its turn within the configured wait, or finds the queue full,
gets `Busy` (503, retry later) and nothing is written. Between processes on one
SQLite file (the server's workers, the CLI's end of day) the writer whose turn
it is takes a lock on a file beside the store (`FileWriteLock`, flock(2))
before it begins: the kernel wakes it the moment the other process's writer
releases it, where SQLite's busy loop would sleep 1, 2, 5 … 100 ms between
tries and let the same process win again and again. On PostgreSQL writers
go straight to the database, which serialises them on the rows they lock.
The connection pool holds one connection per request thread, so no request
ever waits for a connection while holding none of the locks it needs.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Dialect, Engine, Select, Table, bindparam, create_engine, event, inspect, select, text, update
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from sandu.context import wait_budget_s
from sandu.domain.errors import Busy, InvalidInput, show
from sandu.settings import Settings, get_settings

READ_ONLY_OPTION = "sandu_read_only"
POOL_TIMEOUT_S = 30


def _normalise(url: str) -> str:
    # Plain postgresql:// means the psycopg 3 driver sandu ships, not psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class EncodedJSON:
    """A value of a JSON column encoded ahead (`encode_json`): an engine of `make_engine` writes its text as it is, where
    any other value is encoded as it is bound — so a big document (a decision's result, a profile, a payload) can be
    encoded before a write transaction begins rather than while it holds the store's writer. Not a `str`: an engine
    that does not know it refuses it (json.dumps raises TypeError) instead of storing it as a JSON string."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def encode_json(value: Any) -> EncodedJSON:
    """`value` as its JSON column would encode it when bound (`bind_json`), now."""
    return EncodedJSON(json.dumps(value))


def bind_json(value: Any) -> str:
    """How the engines of `make_engine` encode a JSON column's value: as json.dumps does (SQLAlchemy's default), or
    the text of an `EncodedJSON` as it is."""
    return value.text if isinstance(value, EncodedJSON) else json.dumps(value)


def make_engine(url: str | None = None, settings: Settings | None = None) -> Engine:
    """An engine whose pool has a connection for every request thread (and a few for
    end of day and the CLI), so a thread never waits for a connection."""
    settings = settings or get_settings()
    url = _normalise(url or settings.store_url())
    pool = {"pool_size": settings.worker_threads, "max_overflow": 5, "pool_timeout": POOL_TIMEOUT_S}
    if url.startswith("sqlite"):
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000, "check_same_thread": False},
                               json_serializer=bind_json, **pool)
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    # No statement runs for ever: a stuck query or lock wait ends with an error (a 500 with an incident), not a hung request.
    timeouts = {"options": f"-c statement_timeout={settings.statement_timeout_ms}"}
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=timeouts, json_serializer=bind_json, **pool)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        # Let SQLAlchemy issue BEGIN itself (below) instead of pysqlite's implicit one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        # Another *process* (the CLI's end of day while the server runs) may hold the lock.
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every SQLite test
        # Writers take the write lock up front (no failed lock upgrades); readers
        # run deferred and, under WAL, never wait for a writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY_OPTION) else "BEGIN IMMEDIATE")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def keyset_page(session: Session, query: Select, key: Any, *, after: int, limit: int, max_limit: int) -> tuple[list[Any], int | None]:
    """One page of `query`'s rows with `key` > `after`, in key order: (rows, the `after` of the
    next page, or None on the last page). Every list sandu serves is paged this way, bounded
    by `max_limit`; a limit outside 1..max_limit is refused naming the field `limit`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise InvalidInput("limit", f"got {show(limit)}", f"1..{max_limit}")
    rows = list(session.scalars(query.where(key > after).order_by(key).limit(limit + 1)))
    page = rows[:limit]
    return page, (getattr(page[-1], key.key) if len(rows) > limit else None)


# Statements built once per table (and dialect, or set of columns) and executed with their values as parameters:
# SQLAlchemy keeps a built statement's cache key, so a request neither rebuilds the statement nor walks it to find
# its compiled form (what a statement built per call costs on every request). Core statements run on the session's
# connection (`session.connection().execute`): the same transaction, without the ORM's execution path, which a Core
# statement passes through without effect (no autoflush, no ORM events in sandu).


@cache
def _insert_ignoring(dialect: type[Dialect], table: Table, key: str, columns: tuple[str, ...]) -> Any:
    """INSERT INTO table (columns) VALUES (…) ON CONFLICT (key) DO NOTHING for the store's dialect, as a text statement
    with a typed parameter per column: the dialects' own INSERT … ON CONFLICT is never cached (`inherit_cache = False`),
    so built per call it is compiled again on every request (on PostgreSQL half a millisecond of a measurement's CPU);
    this one is compiled once. Its text is rendered without the casts PostgreSQL's driver puts after each parameter
    (``:sha256::VARCHAR``, which text() would not read as a parameter); the typed parameters render them again."""
    from sqlalchemy.dialects import postgresql, sqlite

    assert dialect.name in ("sqlite", "postgresql"), f"insert_if_absent: unsupported database {dialect.name}"
    make = sqlite.insert if dialect.name == "sqlite" else postgresql.insert
    stmt = make(table).values({c: bindparam(c) for c in columns}).on_conflict_do_nothing(index_elements=[key])
    plain = dialect(paramstyle="named")  # :name parameters, as text() reads them
    plain.bind_typing = BindTyping.NONE
    return text(str(stmt.compile(dialect=plain))).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


@cache
def _insert(table: Table) -> Any:
    return table.insert()


@cache
def _update_by_key(table: Table, keys: tuple[str, ...]) -> Any:
    """UPDATE table SET (the columns a call's parameters name) WHERE each primary-key column = :pk_<column>."""
    return update(table).where(*(table.c[k] == bindparam(f"pk_{k}") for k in keys))


@cache
def _by_key(mapper: Any) -> Select:
    return select(mapper).where(*(c == bindparam(f"pk_{c.key}") for c in mapper.primary_key))


def get_row(session: Session, model: type, key: tuple[Any, ...]) -> Any:
    """`session.get(model, key)` with a statement built once per model: an object the session holds is its own
    answer (no SQL); any other is loaded into the session by primary key (`session.get` builds that statement anew
    on every call)."""
    mapper = inspect(model)
    if mapper.identity_key_from_primary_key(list(key)) in session.identity_map:
        return session.get(model, key)
    return session.scalars(_by_key(mapper), {f"pk_{c.key}": v for c, v in zip(mapper.primary_key, key, strict=True)}).one_or_none()


def insert_if_absent(session: Session, model: type, *, key: str, row: dict[str, object]) -> None:
    """INSERT … ON CONFLICT (key) DO NOTHING: for content-addressed rows, where two
    concurrent writers of the same content must both succeed and store it once."""
    connection = session.connection()
    connection.execute(_insert_ignoring(type(connection.dialect), model.__table__, key, tuple(row)), row)


def insert_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows of `model`'s table in one statement (executemany), without building ORM objects: for
    append-only rows that nothing in the transaction reads back (read logs, kept payloads). The rows go to the
    database at once, in order (their ids ascend in list order); every row names the same columns."""
    if rows:
        assert all(r.keys() == rows[0].keys() for r in rows), "every row of one insert names the same columns"
        session.connection().execute(_insert(model.__table__), rows)


def row_values(obj: Any, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """Column → value of a mapped object that is not in a session: the row `insert_rows` writes for it. Every column
    must be set (a column left unset would be written as NULL, or skip a default the ORM would have applied)."""
    state = inspect(obj)
    assert state.transient, f"{type(obj).__name__}: only an object no session holds is written as a plain row"
    values = {a.key: state.dict[a.key] for a in state.mapper.column_attrs if a.key not in without and a.key in state.dict}
    missing = [a.key for a in state.mapper.column_attrs if a.key not in without and a.key not in values]
    assert not missing, f"{type(obj).__name__}: columns not set: {', '.join(missing)}"
    return values


def attach_written(session: Session, obj: Any) -> None:
    """Put an object whose row was just inserted with `insert_rows` into the session as that stored row (persistent
    and unchanged: no INSERT or UPDATE follows), so the rest of the transaction reads and changes it as if loaded."""
    make_transient_to_detached(obj)
    session.add(obj)


def update_row(session: Session, model: type, key: tuple[Any, ...], **values: Any) -> int:
    """UPDATE the row of `model` whose primary key is `key` with a Core statement (built once per table and set of
    columns), as an ORM-enabled UPDATE would: pending changes flushed first, and an object of that row the session
    already holds given the values as stored. The number of rows updated (0 or 1)."""
    session.flush()
    mapper = inspect(model)
    table = mapper.local_table
    names = tuple(c.key for c in mapper.primary_key)
    assert values and set(values) <= set(table.c.keys()) - set(names), f"{model.__name__}: update_row sets columns of its table, not the key"
    done = session.connection().execute(_update_by_key(table, names), {**values, **{f"pk_{k}": v for k, v in zip(names, key, strict=True)}})
    held = session.identity_map.get(mapper.identity_key_from_primary_key(list(key)))
    if held is not None:
        for k, v in values.items():
            set_committed_value(held, k, v)
    return done.rowcount


def set_columns(session: Session, obj: Any, **values: Any) -> None:
    """UPDATE one persistent object's row by its primary key with a Core statement, and record the values on the
    object as stored (no ORM flush follows for them)."""
    state = inspect(obj)
    assert state.persistent and state.identity is not None, f"{type(obj).__name__}: set_columns needs a stored row"
    table = state.mapper.local_table
    key = dict(zip([c.key for c in state.mapper.primary_key], state.identity, strict=True))
    assert values and set(values) <= set(table.c.keys()) - set(key), f"{type(obj).__name__}: set_columns sets columns of its table, not the key"
    done = session.connection().execute(_update_by_key(table, tuple(key)), {**values, **{f"pk_{k}": v for k, v in key.items()}})
    assert done.rowcount == 1, f"{type(obj).__name__} {key}: exactly one row updated"
    for k, v in values.items():
        set_committed_value(obj, k, v)


class WriterQueue:
    """First come, first served admission of one writer at a time, bounded in
    length and in waiting time (`wait_s`, or less when the request's deadline,
    `sandu.context.waiting_until`, comes sooner). The finishing writer hands the turn directly to
    the next in line, so nobody can overtake a waiting writer."""

    def __init__(self, max_waiting: int, wait_s: float):
        self.max_waiting = max_waiting
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _busy(self, why: str) -> Busy:
        return Busy(f"the store is busy ({why}); nothing was written, retry in a moment", field=None, allowed=None)

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._lock:
            if not self._held and not self._waiting:
                self._held = True
                ticket = None
            elif len(self._waiting) >= self.max_waiting:
                raise self._busy(f"{len(self._waiting)} writes already waiting")
            else:
                ticket = threading.Event()
                self._waiting.append(ticket)
        wait_s = wait_budget_s(self.wait_s)  # less when the request already waited in another line
        if ticket is not None and not ticket.wait(wait_s):
            with self._lock:
                if not ticket.is_set():  # not granted while we gave up: leave the line
                    self._waiting.remove(ticket)
                    raise self._busy(f"waited {wait_s:.3g} s for a turn")
        try:
            yield
        finally:
            with self._lock:
                assert self._held, "a writer released a turn it did not hold"
                if self._waiting:
                    self._waiting.popleft().set()  # the turn passes on; _held stays True
                else:
                    self._held = False


class FileWriteLock:
    """One writer at a time among the processes writing one SQLite file: an exclusive flock(2) on a file beside it
    (``<store>.writer-lock``), taken before BEGIN IMMEDIATE and released after COMMIT or ROLLBACK. A writer that finds
    it held blocks in the kernel (no polling) and is woken when it is released; the wait is bounded: past `wait_s` (or
    the request's deadline, `sandu.context.waiting_until`, when it comes sooner) the
    writer gets `Busy` and writes nothing, and the lock, if it comes later, is given back at once. In one process only
    the writer whose turn it is (`WriterQueue`) asks for it, so there is at most one waiter per process."""

    def __init__(self, path: str, wait_s: float):
        self.path = path
        self.wait_s = wait_s

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # a lock per open file: one per writer
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            wait_s = wait_budget_s(self.wait_s)  # less when the request already waited in another line
            if not self._wait(fd, wait_s):  # fd is the waiter's now: it closes it
                raise Busy(f"the store is busy (another process has been writing for {wait_s:.3g} s); nothing was written, "
                           "retry in a moment", field=None, allowed=None) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _wait(self, fd: int, wait_s: float) -> bool:
        """Block for the lock on `fd` in a thread of its own, at most `wait_s`: True when it was granted in time. When
        not, that thread keeps `fd`, and gives the lock back and closes `fd` as soon as it gets it. When no thread can
        be started, `fd` is closed and the writer gets `Busy`."""
        granted, gate = threading.Event(), threading.Lock()
        abandoned = False

        def block() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with gate:
                if not abandoned:
                    granted.set()
                    return
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        try:
            threading.Thread(target=block, name="sandu-writer-lock", daemon=True).start()
        except RuntimeError as exc:  # no thread to wait in (the process is out of threads): fd is still ours to close
            os.close(fd)
            raise Busy(f"the store is busy (no thread to wait for the writer lock in: {exc}); nothing was written, retry in a moment",
                       field=None, allowed=None) from None
        if granted.wait(wait_s):
            return True
        with gate:
            if granted.is_set():
                return True
            abandoned = True
        return False


def writer_lock_path(engine: Engine) -> str | None:
    """Where a SQLite store's `FileWriteLock` lives (beside the database file, also when it is named by a ``file:``
    URI); None for an in-memory store."""
    database = engine.url.database
    if database and database.startswith("file:"):  # file:a.db, file:/a/b.db, file:///a/b.db (percent-encoded)
        database = unquote(urlsplit(database).path)
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        return None
    return os.path.abspath(database) + ".writer-lock"


class UnitOfWork:
    """The transactions of one process against one store (see the module docstring)."""

    def __init__(self, engine: Engine, settings: Settings | None = None, before_commit: Callable[[Session], object] | None = None,
                 on_write: Callable[[float, float], object] | None = None):
        settings = settings or get_settings()
        self.engine = engine
        self.before_commit = before_commit  # e.g. the audit trail, sealed in the same transaction
        self.on_write = on_write  # told (waited_s, held_s) of every write transaction once it ended: see `write`
        self._writes = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
        read_options: dict[str, object] = {READ_ONLY_OPTION: True}
        if engine.dialect.name == "postgresql":
            # One snapshot for the whole read, so a view never mixes before and after a concurrent write.
            read_options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True, postgresql_deferrable=True)
        self._read_engine = engine.execution_options(**read_options)
        self._reads = sessionmaker(bind=self._read_engine, expire_on_commit=False, autoflush=False)
        # How a read ends. On PostgreSQL with COMMIT: the server refuses any write in its READ ONLY transaction, so
        # there is nothing to commit, and psycopg answers every ROLLBACK by forgetting the statements it prepared on
        # that connection (DEALLOCATE ALL, one more round trip): a read per request ending in ROLLBACK kept every
        # statement of sandu from ever being prepared. On SQLite, where nothing stops a write in a read, ROLLBACK.
        self._commit_reads = engine.dialect.name == "postgresql"
        self.queue = WriterQueue(settings.write_queue_max, settings.write_wait_s) if is_sqlite(engine) else None
        lock_path = writer_lock_path(engine) if is_sqlite(engine) else None
        self.file_lock = FileWriteLock(lock_path, settings.sqlite_busy_timeout_ms / 1000) if lock_path else None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception. Once it ended (committed
        or not), `on_write` is told how long it waited for the store's writer (this process's line and, on SQLite, the
        lock between processes; none on PostgreSQL) and how long it then held it, its commit included: on SQLite the
        writers of every process take turns, so the time held per write bounds the writes per second of them all."""
        asked = time.perf_counter()
        with self.queue.turn() if self.queue is not None else nullcontext(), self.file_lock.held() if self.file_lock else nullcontext():
            granted = time.perf_counter()
            session = self._writes()
            try:
                with session.begin():
                    yield session
                    if self.before_commit is not None:
                        self.before_commit(session)
            finally:
                session.close()
                if self.on_write is not None:
                    self.on_write(granted - asked, time.perf_counter() - granted)

    @contextmanager
    def read_rows(self) -> Iterator[Connection]:
        """The same read-only snapshot as `read`, on a plain connection (Core statements, no ORM session to set up and
        tear down): for a read of a few columns by key on every request, such as the user behind a token."""
        with self._read_engine.connect() as conn:
            yield from self._within_read(conn.begin(), conn)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot (deferred on SQLite, READ ONLY REPEATABLE READ on PostgreSQL), ended with the block
        (`_within_read`): a read has nothing to commit."""
        session = self._reads()
        try:
            yield from self._within_read(session.begin(), session)
        finally:
            session.close()

    def _within_read(self, tx: Any, handle: Any) -> Iterator[Any]:
        """Yield `handle` inside the read transaction `tx` (a session's or a connection's), then end it: rolled back when
        the block raised; when it did not, committed on PostgreSQL and rolled back on SQLite (`_commit_reads`)."""
        try:
            yield handle
        except BaseException:
            tx.rollback()
            raise
        if self._commit_reads:
            if isinstance(handle, Session):
                handle.expunge_all()  # what the block changed on the objects it read is not flushed at COMMIT: a read writes nothing
            tx.commit()
        else:
            tx.rollback()
