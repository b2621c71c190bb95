"""Bounded HTTP load generators on loopback, and a `sandu serve` to aim them at.

Two ways to load a server, both bounded in count and in time, both counting every answer by status and every
request that got none (a timeout, a dropped connection, one never sent by the deadline) as a failure:

- `closed_loop(base, clients, requests_each, make_request)`: `clients` threads, each with its own keep-alive
  connection, each sending `requests_each` requests one after the other — throughput is what the server gives
  (a slow server slows its clients down: the queue never grows beyond `clients`).
- `open_loop(base, rate_per_s, requests, make_request)`: request `i` is due at `start + i / rate_per_s` whatever
  happened to the ones before (the clock schedules them, not the answers); senders (at most `max_in_flight`, each
  with its own connection) take the next due request, wait for its time and send it. Latency is measured from the
  time the request was *due*, not from when a sender got to it, so a server that falls behind shows its queue in
  the latency instead of hiding it (no coordinated omission).

The HTTP client is the standard library's `http.client` (a fraction of httpx's CPU per request: on a 2-core machine
the load generator's own CPU is taken from the server's). `process_cpu_s(pid)` reads the CPU time a process and its
children (uvicorn's workers) have used, and `main_threads_cpu_s(pid)` the part their event loops used, so the server's
CPU per request can be measured beside the wall figures, and split between the event loop and the request threads.
`framework_server()` serves `empty_app` — FastAPI with nothing behind it — as `sandu serve` serves: the same load against
it is the reference of the HTTP figures (what the framework and the load generator take on this machine).
Used by `tests/test_api_load.py` and `tests/test_loadgen.py` (which check the counting) and by
`bench/http_load.py` (which prints the figures).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_CLIENTS = 500
MAX_REQUESTS_EACH = 10_000
MAX_OPEN_REQUESTS = 100_000
MAX_RATE_PER_S = 10_000.0
MAX_IN_FLIGHT = 500
REQUEST_TIMEOUT_S = 60.0
OPEN_GRACE_S = 30.0  # an open loop stops this long after its last request was due; what is left is a failure
SERVER_START_S = 90.0  # the import of the app takes seconds, more on a loaded machine and for each extra worker
MAX_WORKERS = 8

# (client index, request index) → (method, path, json body), or with the request's own headers as a fourth item (on top of
# the run's: e.g. each client acting as another user)
RequestMaker = Callable[[int, int], tuple[str, str, dict | None] | tuple[str, str, dict | None, dict[str, str]]]


@dataclass
class LoadResult:
    clients: int  # closed loop: the clients; open loop: the senders (the most requests in flight at once)
    requests: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # timeouts, dropped connections, requests not sent by the deadline
    latencies_ms: list[float] = field(default_factory=list)
    rate_per_s: float | None = None  # open loop: the rate requests were due at; None: closed loop
    client_cpu_s: float = 0.0  # the CPU the load generator's process used during the run

    @property
    def mode(self) -> str:
        return "closed" if self.rate_per_s is None else "open"

    @property
    def per_second(self) -> float:
        """Answers per second (whatever their status), over the whole run."""
        return sum(self.statuses.values()) / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    @property
    def errors(self) -> int:
        """Requests not answered with success: answers outside 2xx (a refusal too) and requests without an answer."""
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300) + len(self.failures)

    def pct_ms(self, q: int) -> float:
        lat = sorted(self.latencies_ms)
        return statistics.quantiles(lat, n=100)[q - 1] if len(lat) >= 2 else (lat[0] if lat else 0.0)

    def line(self, label: str) -> str:
        codes = ", ".join(f"{code}×{n}" for code, n in sorted(self.statuses.items()))
        load = (f"{self.clients} clients × {self.requests // max(self.clients, 1)}" if self.rate_per_s is None
                else f"open loop at {self.rate_per_s:g}/s ({self.clients} senders)")
        return (f"{label}: {load} = {self.requests} requests in {self.seconds:.2f} s "
                f"→ {self.per_second:.0f}/s, latency_ms_p50={self.pct_ms(50):.1f} latency_ms_p99={self.pct_ms(99):.1f}; "
                f"{codes}; failures {len(self.failures)}")


def loopback(base: str) -> tuple[str, int]:
    """(host, port) of `base`, which must be plain HTTP on loopback."""
    u = urlsplit(base)
    if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"base: the load generators aim at loopback only (http://127.0.0.1:PORT), not {base!r}")
    return u.hostname, u.port or 80


class _Connection:
    """One keep-alive HTTP/1.1 connection to `base` (reopened after a failure)."""

    def __init__(self, base: str, headers: dict[str, str] | None):
        self.host, self.port = loopback(base)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict | None, headers: dict[str, str] | None = None) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            self.conn.request(method, path, body=None if body is None else json.dumps(body),
                              headers=self.headers if not headers else {**self.headers, **headers})
            r = self.conn.getresponse()
            r.read()
            if r.will_close:
                self.close()
            return r.status
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _send(conn: _Connection, make_request: RequestMaker, k: int, i: int, since: float, result: LoadResult, lock: threading.Lock) -> None:
    """Send request (k, i) and record its status and its latency from `since` (a perf_counter time), or its failure."""
    method, path, body, *own = make_request(k, i)
    try:
        status = conn.request(method, path, body, own[0] if own else None)
    except (OSError, http.client.HTTPException) as exc:
        with lock:
            result.failures.append(f"{type(exc).__name__}: {exc}")
        return
    ms = (time.perf_counter() - since) * 1000
    with lock:
        result.statuses[status] += 1
        result.latencies_ms.append(ms)


def _run(threads: list[threading.Thread], start: threading.Barrier, deadline_s: float, result: LoadResult) -> None:
    """Start `threads` together, wait for them until `deadline_s` after the start, time the run."""
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=max(0.0, t0 + deadline_s - time.perf_counter()))
    result.seconds = time.perf_counter() - t0
    result.client_cpu_s = time.process_time() - cpu0
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        result.failures.append(f"{stuck} senders still running at the deadline")


def closed_loop(base: str, clients: int, requests_each: int, make_request: RequestMaker, headers: dict[str, str] | None = None) -> LoadResult:
    if not 1 <= clients <= MAX_CLIENTS or not 1 <= requests_each <= MAX_REQUESTS_EACH:
        raise ValueError(f"clients 1..{MAX_CLIENTS} and requests_each 1..{MAX_REQUESTS_EACH}")
    loopback(base)
    result = LoadResult(clients=clients, requests=clients * requests_each, seconds=0.0)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        conn = _Connection(base, headers)
        try:
            start.wait()
            for i in range(requests_each):
                _send(conn, make_request, k, i, time.perf_counter(), result, lock)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    _run(threads, start, REQUEST_TIMEOUT_S * requests_each + 60, result)
    return result


def open_loop(base: str, rate_per_s: float, requests: int, make_request: RequestMaker, headers: dict[str, str] | None = None,
              max_in_flight: int = 64) -> LoadResult:
    """`requests` requests due at `rate_per_s` from the start, sent by at most `max_in_flight` senders; latency from
    each request's due time. Requests not yet sent `OPEN_GRACE_S` after the last one was due are failures (not sent)."""
    if not 0 < rate_per_s <= MAX_RATE_PER_S or not 1 <= requests <= MAX_OPEN_REQUESTS or not 1 <= max_in_flight <= MAX_IN_FLIGHT:
        raise ValueError(f"rate_per_s in (0, {MAX_RATE_PER_S:g}], requests 1..{MAX_OPEN_REQUESTS}, max_in_flight 1..{MAX_IN_FLIGHT}")
    loopback(base)
    senders = min(max_in_flight, requests)
    result = LoadResult(clients=senders, requests=requests, seconds=0.0, rate_per_s=rate_per_s)
    lock = threading.Lock()
    start = threading.Barrier(senders + 1)
    schedule = {"t0": 0.0, "next": 0}
    last_due_s = (requests - 1) / rate_per_s
    deadline_s = last_due_s + OPEN_GRACE_S

    def take() -> int | None:
        with lock:
            if not schedule["t0"]:
                schedule["t0"] = time.perf_counter()
            i = schedule["next"]
            if i >= requests:
                return None
            schedule["next"] = i + 1
            return i

    def sender(k: int) -> None:
        conn = _Connection(base, headers)
        try:
            start.wait()
            while (i := take()) is not None:
                due = schedule["t0"] + i / rate_per_s
                if time.perf_counter() > schedule["t0"] + deadline_s:
                    with lock:
                        result.failures.append(f"not sent: request {i} was due {i / rate_per_s:.2f} s in, the run ended at {deadline_s:.2f} s")
                    continue
                if (wait := due - time.perf_counter()) > 0:
                    time.sleep(wait)
                _send(conn, make_request, k, i, due, result, lock)
        finally:
            conn.close()

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(senders)]
    _run(threads, start, deadline_s + REQUEST_TIMEOUT_S, result)
    return result


def _process_tree(pid: int) -> list[int]:
    """Process `pid` and its live descendants (Linux /proc), at most 10,000."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = {pid}, list(children.get(pid, []))
    while todo and len(tree) < 10_000:
        p = todo.pop()
        if p not in tree:
            tree.add(p)
            todo += children.get(p, [])
    return sorted(tree)


def _cpu_s(stat_path: str) -> float:
    """utime + stime (fields 14 and 15) of one /proc stat file, in seconds; 0 when it is gone."""
    try:
        fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds (user + system) used so far by every PostgreSQL process of this machine (Linux /proc; 0.0 when there
    is none): a local server's backends, WAL writer, checkpointer … — the database's part of what a request costs the
    machine's cores, which the client's own CPU leaves out (another user's work on the same server counts too)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue  # gone meanwhile
        total += _cpu_s(f"/proc/{entry.name}/stat")
    return total


def cpu_s_by_process(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by process `pid` and by each of its live descendants (Linux /proc)."""
    return {p: _cpu_s(f"/proc/{p}/stat") for p in _process_tree(pid)}


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its live descendants (Linux /proc)."""
    return sum(cpu_s_by_process(pid).values())


def busiest_share(before: dict[int, float], after: dict[int, float]) -> float:
    """The busiest process's part (0..1) of the CPU the processes used between two `cpu_s_by_process` readings (1.0
    when they used none): with N server processes evenly loaded about 1/N."""
    used = {p: after[p] - before.get(p, 0.0) for p in after}
    total = sum(used.values())
    return max(used.values()) / total if total > 0 else 1.0


def main_threads_cpu_s(pid: int) -> float:
    """The part of `process_cpu_s(pid)` used by each process's main thread — in a server, its event loop (uvicorn runs
    it there); the rest is the request threads'."""
    return sum(_cpu_s(f"/proc/{p}/task/{p}/stat") for p in _process_tree(pid))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served(str):
    """The base URL of a running server, with the id of its process (`process_cpu_s(served.pid)`)."""

    pid: int

    def __new__(cls, base: str, pid: int) -> Served:
        s = super().__new__(cls, base)
        s.pid = pid
        return s


@contextmanager
def sandu_server(database_url: str, extra_env: dict[str, str] | None = None, workers: int = 1) -> Iterator[Served]:
    """`sandu serve --workers N` in its own process on a free loopback port; yields its base URL (and process id)."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers 1..{MAX_WORKERS}")
    port = free_port()
    env = {**os.environ, "SANDU_DATABASE_URL": database_url, **(extra_env or {})}
    sandu = str(Path(sys.executable).with_name("sandu"))
    with _served([sandu, "serve", "--port", str(port), "--workers", str(workers)], port, env, "sandu serve") as base:
        yield base


def empty_app() -> Any:
    """The reference of the HTTP figures: FastAPI with nothing behind it. `POST /echo` takes a JSON object (validated,
    as a route's body is) in a plain `def` (run on a worker thread, as sandu's routes are) and answers a small one."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/echo", status_code=201)
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "keys": len(body)}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@contextmanager
def framework_server() -> Iterator[Served]:
    """`empty_app` served by uvicorn as `sandu serve` serves (one process, its HTTP protocol, no access log) on a free
    loopback port."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "loadgen:empty_app", "--app-dir", str(Path(__file__).resolve().parent),
           "--port", str(port), "--log-level", "warning", "--no-access-log", "--http", "sandu.api.serving:NoDelayH11Protocol"]
    with _served(cmd, port, dict(os.environ), "the empty FastAPI app") as base:
        yield base


@contextmanager
def _served(cmd: list[str], port: int, env: dict[str, str], what: str) -> Iterator[Served]:
    """Run `cmd` (a server on `port`) until it answers GET /healthz; yield its base URL; stop it."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = Served(f"http://127.0.0.1:{port}", proc.pid)

    def tail() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-2000:]

    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {tail()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {SERVER_START_S} s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()
