"""The load generators of bench/ count what they should: every request answered or failed, statuses as sent, and in
the open loop latency from each request's due time (a server that falls behind shows its queue, instead of the
generator waiting for it and hiding it). Against a real HTTP server on loopback that answers one request at a time.
No speed is asserted: the latency checks are lower bounds that a slower machine only raises."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import loadgen  # noqa: E402
from loadgen import busiest_share, closed_loop, cpu_s_by_process, main_threads_cpu_s, open_loop, process_cpu_s  # noqa: E402

HOLD_S = 0.02  # what the test server takes for each request (one at a time)
SEEN: list[tuple[str | None, str | None]] = []  # (X-Run, X-Who) of each request the test server answered


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: the single-threaded server serves them in turn

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/drop":  # no answer at all
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        SEEN.append((self.headers.get("X-Run"), self.headers.get("X-Who")))
        time.sleep(HOLD_S)
        status = {"/fail": 500, "/refuse": 409}.get(self.path, 201)
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _Server(HTTPServer):
    request_queue_size = 128  # every waiting connection is queued, none refused


@contextmanager
def one_at_a_time() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_open_loop_measures_from_the_due_time_so_a_queue_shows():
    """20 requests due within 19 ms at a server that takes 20 ms each, one at a time: the last is answered at least
    20 × 20 ms after the start, so its latency from its due time is at least 400 − 19 ms. A generator that timed from
    the moment it sent would show about 20 ms (each request alone at the server)."""
    n, rate = 20, 1000.0
    with one_at_a_time() as base:
        r = open_loop(base, rate, n, lambda k, i: ("POST", "/ok", {"i": i}), max_in_flight=n)
    assert r.failures == [] and r.statuses == {201: n} and len(r.latencies_ms) == n
    assert r.mode == "open" and r.rate_per_s == rate and r.clients == n
    assert max(r.latencies_ms) >= (n * HOLD_S - (n - 1) / rate) * 1000
    assert r.per_second == n / r.seconds and r.errors == 0


def test_the_open_loop_counts_refusals_server_errors_and_requests_without_an_answer():
    with one_at_a_time() as base:
        r = open_loop(base, 500.0, 12, lambda k, i: ("POST", ("/ok", "/fail", "/drop", "/refuse")[i % 4], None), max_in_flight=3)
    assert r.statuses == {201: 3, 500: 3, 409: 3}
    assert len(r.failures) == 3 and all("RemoteDisconnected" in f or "Connection" in f for f in r.failures), r.failures
    assert r.server_errors == 3 and r.errors == 9 and len(r.latencies_ms) == 9


def test_the_open_loop_stops_at_its_deadline_and_counts_what_it_did_not_send(monkeypatch):
    """One sender, a grace of 10 ms past the last due time: the first request holds the sender for 20 ms, so the
    other four were never sent — each a failure, none silently dropped."""
    monkeypatch.setattr(loadgen, "OPEN_GRACE_S", 0.01)
    with one_at_a_time() as base:
        r = open_loop(base, 1000.0, 5, lambda k, i: ("POST", "/ok", None), max_in_flight=1)
    assert r.statuses == {201: 1}
    assert len(r.failures) == 4 and all(f.startswith("not sent: request ") for f in r.failures)
    assert sum(r.statuses.values()) + len(r.failures) == r.requests == 5


def test_the_closed_loop_sends_every_request_of_every_client_and_counts_each_answer():
    with one_at_a_time() as base:
        r = closed_loop(base, 3, 4, lambda k, i: ("POST", "/fail" if (k, i) == (1, 2) else "/ok", {"k": k, "i": i}))
    assert r.mode == "closed" and r.rate_per_s is None
    assert r.statuses == {201: 11, 500: 1} and r.failures == [] and len(r.latencies_ms) == 12 and r.errors == 1
    assert min(r.latencies_ms) >= HOLD_S * 1000  # each waited at least for its own answer
    assert r.client_cpu_s > 0


def test_a_request_may_carry_its_own_headers_on_top_of_the_runs():
    SEEN.clear()
    with one_at_a_time() as base:
        closed_loop(base, 2, 2, lambda k, i: ("POST", "/ok", None, {"X-Who": f"client-{k}"}) if i == 0 else ("POST", "/ok", None),
                    headers={"X-Run": "r1"})
        r = open_loop(base, 200, 3, lambda k, i: ("POST", "/ok", None, {"X-Who": f"request-{i}", "X-Run": "own"}), headers={"X-Run": "r2"})
    assert r.statuses == {201: 3}
    assert sorted(SEEN[:4], key=str) == sorted([("r1", "client-0"), ("r1", "client-1"), ("r1", None), ("r1", None)], key=str)
    assert sorted(SEEN[4:]) == [("own", f"request-{i}") for i in range(3)]  # a request's own header wins over the run's


@pytest.mark.parametrize("kwargs", [{"rate_per_s": 0}, {"rate_per_s": loadgen.MAX_RATE_PER_S + 1}, {"requests": 0},
                                    {"requests": loadgen.MAX_OPEN_REQUESTS + 1}, {"max_in_flight": 0}, {"max_in_flight": loadgen.MAX_IN_FLIGHT + 1}])
def test_the_open_loop_refuses_unbounded_or_empty_runs(kwargs):
    args = {"rate_per_s": 10.0, "requests": 10, "max_in_flight": 2, **kwargs}
    with pytest.raises(ValueError, match="rate_per_s"):
        open_loop("http://127.0.0.1:9", args["rate_per_s"], args["requests"], lambda k, i: ("GET", "/", None), max_in_flight=args["max_in_flight"])


def test_the_generators_aim_at_loopback_only():
    for base in ("http://example.com:80", "https://127.0.0.1:443", "http://10.0.0.1:8000"):
        with pytest.raises(ValueError, match="loopback"):
            closed_loop(base, 1, 1, lambda k, i: ("GET", "/", None))
    with pytest.raises(ValueError):
        closed_loop("http://127.0.0.1:9", 0, 1, lambda k, i: ("GET", "/", None))


def test_process_cpu_counts_the_process_and_its_children():
    """A child that burns 0.3 s of CPU and then waits: the parent's figure grows by at least that much beyond its own."""
    code = "import time, sys\nwhile time.process_time() < 0.3: pass\nprint('done', flush=True)\nsys.stdin.read()"
    before = process_cpu_s(os.getpid()) - time.process_time()
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"
        assert process_cpu_s(os.getpid()) - time.process_time() - before >= 0.3 - 0.02  # /proc counts in ticks of 10 ms
        assert process_cpu_s(child.pid) >= 0.28
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert process_cpu_s(2**22 + 12345) == 0.0  # no such process


@pytest.mark.parametrize("burner", ["main", "thread"])
def test_the_event_loop_share_is_the_main_threads_cpu(burner):
    """A child that burns 0.3 s of CPU in its main thread, or in another thread: only the first counts as its main
    thread's (a server's event loop), both count in the process's figure."""
    burn = "while time.thread_time() < 0.3: pass"
    code = (f"import sys, threading, time\n{burn}\n" if burner == "main" else
            f"import sys, threading, time\ndef burn():\n    {burn}\nt = threading.Thread(target=burn)\nt.start()\nt.join()\n")
    child = subprocess.Popen([sys.executable, "-c", code + "print('done', flush=True)\nsys.stdin.read()"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"
        total, main = process_cpu_s(child.pid), main_threads_cpu_s(child.pid)
        assert total >= 0.28  # /proc counts in ticks of 10 ms
        assert (main >= 0.28) if burner == "main" else (main <= total - 0.25)  # the start of Python itself is the main thread's
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert main_threads_cpu_s(2**22 + 12345) == 0.0  # no such process


def test_the_framework_reference_serves_its_empty_endpoint_as_a_route_would():
    """The reference of the HTTP figures is a real server: FastAPI behind uvicorn, validating the body it is given."""
    with loadgen.framework_server() as base:
        r = closed_loop(base, 2, 3, lambda k, i: ("POST", "/echo", {"client": k, "request": i}))
        bad = closed_loop(base, 1, 1, lambda k, i: ("POST", "/echo", None))  # no JSON object: refused, as a route refuses it
        assert process_cpu_s(base.pid) > 0
    assert r.statuses == {201: 6} and r.errors == 0
    assert bad.statuses == {422: 1} and bad.errors == 1


def test_the_busiest_process_share_of_the_cpu_used_between_two_readings():
    before = {1: 10.0, 2: 5.0, 3: 0.5}
    assert busiest_share(before, {1: 11.0, 2: 6.0, 3: 0.5}) == 0.5  # two processes evenly loaded; the supervisor idle
    assert busiest_share(before, {1: 13.0, 2: 6.0, 3: 0.5}) == 0.75
    assert busiest_share(before, {1: 10.0, 2: 5.0, 4: 2.0}) == 1.0  # a process started after the first reading: all of it new
    assert busiest_share(before, {1: 10.0, 2: 5.0, 3: 0.5}) == 1.0  # nothing used


def test_cpu_by_process_names_the_process_and_each_child():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        by_process = cpu_s_by_process(os.getpid())
        assert os.getpid() in by_process and child.pid in by_process
        assert sum(by_process.values()) == pytest.approx(process_cpu_s(os.getpid()), abs=0.05)
    finally:
        child.stdin.close()
        child.wait(timeout=10)
