"""What the running service tells about itself: Prometheus metrics (prometheus-client)
and structured JSON logs (structlog) that carry the request id.

Each runtime has its own metrics registry (several apps in one test process do not
mix their counts); `/metrics` renders it. Served by several processes (`sandu serve
--workers N`), every process writes its metrics to files in one directory and
`/metrics` renders the sum of them all, whichever process answers it
(`metrics_across_processes`: prometheus-client's multiprocess mode). Logs never carry a resident ID, a phone
number, a password or a token: request bodies and headers are not logged, error
logs name the exception type, and the database driver hides SQL parameters.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

from sandu.context import current_request_id
from sandu.domain.errors import InvalidInput

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's: where the processes of one server keep their metrics
WRITE_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)  # a write holds the store for milliseconds


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("sandu_http_requests_total", "HTTP requests by route template, method and status", ("route", "method", "status"),
                                registry=self.registry)
        self.latency = Histogram("sandu_http_request_duration_seconds", "HTTP request latency by route template and method", ("route", "method"),
                                 buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.decisions = Counter("sandu_decisions_total", "decisions recorded, by outcome", ("outcome",), registry=self.registry)
        self.postings = Counter("sandu_ledger_entries_total", "journal entries committed, by kind", ("kind",), registry=self.registry)
        self.eod_seconds = Histogram("sandu_eod_duration_seconds", "end-of-day run time", buckets=(0.1, 1, 5, 15, 60, 300, 1800),
                                     registry=self.registry)
        self.eod_lines = Counter("sandu_eod_lines_total", "lines brought up to date by end of day", registry=self.registry)
        self.write_wait = Histogram("sandu_store_write_wait_seconds", "time a write transaction waited for the store's writer: this "
                                    "process's line and, on SQLite, the lock between processes", buckets=WRITE_BUCKETS_S, registry=self.registry)
        self.write_held = Histogram("sandu_store_write_held_seconds", "time a write transaction held the store's writer, its commit "
                                    "included; on SQLite the sum's rate is the share of the time the one writer of all processes was busy "
                                    "(as seen from this process)", buckets=WRITE_BUCKETS_S, registry=self.registry)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def write(self, waited_s: float, held_s: float) -> None:
        """A write transaction ended (`UnitOfWork.write`): how long it waited for the store's writer, then held it."""
        self.write_wait.observe(waited_s)
        self.write_held.observe(held_s)

    def decision(self, outcome: str) -> None:
        self.decisions.labels(str(outcome)).inc()

    def ledger_entries(self, kinds: Iterable[str]) -> None:
        for kind in kinds:
            self.postings.labels(kind).inc()

    def render(self) -> bytes:
        """The metrics in Prometheus's text format: this runtime's, or, when this process keeps its metrics in the
        directory of `metrics_across_processes`, those of every process of the server, summed."""
        if not files_backed():
            return generate_latest(self.registry)
        summed = CollectorRegistry()
        MultiProcessCollector(summed)  # reads every process's files, at each render
        return generate_latest(summed)


def files_backed() -> bool:
    """Whether this process's metrics are kept in files (prometheus-client chose so when it was imported, because
    `MULTIPROCESS_DIR_ENV` was set) rather than in its memory."""
    return values.ValueClass is not values.MutexValue


@contextmanager
def metrics_across_processes() -> Iterator[Path]:
    """For a server of several processes (`sandu serve --workers N`), started within the block: one directory where each
    process keeps its metrics in files, named to them by `MULTIPROCESS_DIR_ENV` (set here unless the operator set it: a
    directory of their choosing, of this server alone, made if missing), emptied first — a file left by an earlier run
    would be counted in this one's sums. A directory made here is removed when the block ends. Without it, `/metrics`
    rendered the counts of whichever process answered: each scrape another process's, counters jumping back and forth.
    A directory that cannot be made or emptied is refused (`InvalidInput` naming the variable) before anything starts."""
    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    try:
        path = Path(given) if given else Path(tempfile.mkdtemp(prefix="sandu-metrics-"))
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # prometheus-client's files (one per process and kind of metric); nothing else is touched
            stale.unlink()
    except OSError as exc:
        raise InvalidInput(MULTIPROCESS_DIR_ENV, f"cannot make or empty the directory of the server's metrics "
                           f"{given or tempfile.gettempdir()!r} ({exc.strerror or exc})",
                           "a directory this user may create and write, used by this server alone") from None
    os.environ[MULTIPROCESS_DIR_ENV] = str(path)
    try:
        yield path
    finally:
        if not given:
            del os.environ[MULTIPROCESS_DIR_ENV]
            shutil.rmtree(path, ignore_errors=True)


def _add_request_id(_logger, _method, event: dict) -> dict:
    rid = current_request_id()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


def configure_logging(level: int = logging.INFO, stream=None) -> None:
    """JSON lines on stderr: time, level, logger, event and its fields, the request id."""
    processors = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(ensure_ascii=False),
    ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )


def ensure_logging() -> None:
    """JSON logging unless the process configured logging already. Never structlog's
    development default: its rich tracebacks print every frame's local variables —
    passwords and tokens among them — and take seconds to render."""
    if not structlog.is_configured():
        configure_logging()


def logger(name: str):
    return structlog.get_logger(name)
