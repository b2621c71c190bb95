"""A bounded closed-loop HTTP load generator on loopback, and a `sandu serve` to aim it at.

`closed_loop(base, clients, requests_each, make_request)` runs `clients` threads,
each with its own connection, each sending `requests_each` requests one after
the other (bounded in count and, per request, in time); it returns the status
counts, the failures (timeouts, dropped connections), the throughput and the
latency percentiles. Used by `tests/test_api_load.py` (which asserts no 5xx and
no timeouts) and by `bench/http_load.py` (which prints the figures).
"""

from __future__ import annotations

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

import httpx

MAX_CLIENTS = 500
MAX_REQUESTS_EACH = 10_000
REQUEST_TIMEOUT_S = 60.0
SERVER_START_S = 30.0

# (client index, request index) → (method, path, json body)
RequestMaker = Callable[[int, int], tuple[str, str, dict | None]]


@dataclass
class LoadResult:
    clients: int
    requests: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # timeouts, dropped connections
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    def pct_ms(self, q: int) -> float:
        lat = sorted(self.latencies_ms)
        return statistics.quantiles(lat, n=100)[q - 1] if len(lat) >= 2 else (lat[0] if lat else 0.0)

    def line(self, label: str) -> str:
        codes = ", ".join(f"{code}×{n}" for code, n in sorted(self.statuses.items()))
        return (f"{label}: {self.clients} clients × {self.requests // max(self.clients, 1)} = {self.requests} requests in {self.seconds:.2f} s "
                f"→ {self.per_second:.0f}/s, latency_ms_p50={self.pct_ms(50):.1f} latency_ms_p99={self.pct_ms(99):.1f}; "
                f"{codes}; failures {len(self.failures)}")


def closed_loop(base: str, clients: int, requests_each: int, make_request: RequestMaker, headers: dict[str, str] | None = None) -> LoadResult:
    if not 1 <= clients <= MAX_CLIENTS or not 1 <= requests_each <= MAX_REQUESTS_EACH:
        raise ValueError(f"clients 1..{MAX_CLIENTS} and requests_each 1..{MAX_REQUESTS_EACH}")
    result = LoadResult(clients=clients, requests=clients * requests_each, seconds=0.0)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S, headers=headers) as http:
            start.wait()
            for i in range(requests_each):
                method, path, body = make_request(k, i)
                t0 = time.perf_counter()
                try:
                    r = http.request(method, path, json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        result.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    result.statuses[r.status_code] += 1
                    result.latencies_ms.append(ms)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    deadline = t0 + REQUEST_TIMEOUT_S * requests_each + 60
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.perf_counter()))
    result.seconds = time.perf_counter() - t0
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        result.failures.append(f"{stuck} clients still running at the deadline")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def sandu_server(database_url: str, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`sandu serve` in its own process on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "SANDU_DATABASE_URL": database_url, **(extra_env or {})}
    sandu = str(Path(sys.executable).with_name("sandu"))
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sandu, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def tail() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-2000:]

    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sandu serve exited: {tail()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandu serve did not answer within {SERVER_START_S} s")
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
