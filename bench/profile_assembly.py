"""Profile assembly: reading an enterprise's eight sources and building its profile.

(a) eight simulated sources (the universe in memory, as the store would give it):
    `read_all` + `build_profile`, p50 / p99 over N runs, and `read_all` alone;
(b) eight HTTP sources on loopback, each answering after a fixed delay (50 ms by
    default): the wall time of one concurrent `read_all` against the sum of the
    same eight reads one after the other.

Figures only; nothing is asserted. Usage:
    .venv/bin/python bench/profile_assembly.py [--runs N] [--http-rounds R] [--http-delay-ms D] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _results import Results, json_option

from sandu.intake import HttpAdapter, SimulatedAdapter, payloads_for_profile, read_all
from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import build_profile

AS_OF = date(2026, 10, 31)
ENTERPRISES = 200
MAX_RUNS = 1_000_000


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else values[0]


def simulated(runs: int, results: Results) -> None:
    table = generate(ENTERPRISES, 11, AS_OF)
    payloads = {}
    for i in range(ENTERPRISES):
        r = row(table, i)
        payloads[r["uscc"]] = source_payloads(r, AS_OF)
    usccs = list(payloads)
    adapter = SimulatedAdapter(lambda uscc, source: payloads[uscc].get(source))
    adapters = {s: adapter for s in ALL_SOURCES}
    whole, reads = [], []
    for k in range(runs):
        uscc = usccs[k % len(usccs)]
        t0 = time.perf_counter()
        out = read_all(adapters, ALL_SOURCES, uscc, AS_OF, per_source_deadline_s=2.0, overall_deadline_s=5.0)
        t1 = time.perf_counter()
        profile = build_profile(uscc, AS_OF, payloads_for_profile(out))
        t2 = time.perf_counter()
        assert len(profile.sources_read) == len(ALL_SOURCES)
        whole.append((t2 - t0) * 1000)
        reads.append((t1 - t0) * 1000)
    print(f"(a) 8 simulated sources, {runs} runs: read_all + build_profile latency_ms_p50={pct(whole, 50):.3f} "
          f"latency_ms_p99={pct(whole, 99):.3f}; read_all alone latency_ms_p50={pct(reads, 50):.3f} latency_ms_p99={pct(reads, 99):.3f}")
    for q in (50, 99):
        results.add(f"profile: 8 simulated sources read + profile built, p{q}", pct(whole, q), "ms", notes=f"{runs} runs; read_all alone p{q} "
                    f"{pct(reads, q):.3f} ms")


def serve(delay_s: float) -> ThreadingHTTPServer:
    body = json.dumps({"months": 12, "inflow_fen": 100, "outflow_fen": 90}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real source would
        disable_nagle_algorithm = True  # headers and body go in two writes: without this, delayed ACKs add ~40 ms

        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def http(rounds: int, delay_ms: float, results: Results) -> None:
    server = serve(delay_ms / 1000)
    adapter = HttpAdapter(f"http://127.0.0.1:{server.server_address[1]}", read_timeout_s=5, breaker_failures=1000)
    uscc = str(generate(1, 11, AS_OF)["uscc"][0])
    adapters = {s: adapter for s in ALL_SOURCES}
    try:
        read_all(adapters, ALL_SOURCES, uscc, AS_OF, per_source_deadline_s=5, overall_deadline_s=10)  # warm the connection pool
        concurrent, sequential = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = read_all(adapters, ALL_SOURCES, uscc, AS_OF, per_source_deadline_s=5, overall_deadline_s=10)
            concurrent.append((time.perf_counter() - t0) * 1000)
            assert {o.outcome for o in out.values()} == {"found"}, out
            t0 = time.perf_counter()
            for s in ALL_SOURCES:
                assert adapter.read(s, uscc, AS_OF, 5).outcome == "found"
            sequential.append((time.perf_counter() - t0) * 1000)
        print(f"(b) 8 HTTP sources on loopback answering in {delay_ms:g} ms, {rounds} rounds: "
              f"concurrent read_all wall_ms_p50={statistics.median(concurrent):.1f} (max {max(concurrent):.1f}); "
              f"sequential sum wall_ms_p50={statistics.median(sequential):.1f} (max {max(sequential):.1f}); "
              f"speed-up x{statistics.median(sequential) / statistics.median(concurrent):.1f}")
        results.add("profile: 8 HTTP sources read concurrently, median", statistics.median(concurrent), "ms",
                    reference="the same 8 reads one after the other", reference_value=statistics.median(sequential),
                    notes=f"each source answers in {delay_ms:g} ms on loopback; {rounds} rounds; max {max(concurrent):.1f} ms")
    finally:
        adapter.close()
        server.shutdown()
        server.server_close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=2000, help="runs of (a)")
    p.add_argument("--http-rounds", type=int, default=10, help="rounds of (b)")
    p.add_argument("--http-delay-ms", type=float, default=50.0, help="how long each HTTP source takes to answer")
    json_option(p)
    a = p.parse_args()
    if not 1 <= a.runs <= MAX_RUNS or not 1 <= a.http_rounds <= 1000 or not 0 <= a.http_delay_ms <= 10_000:
        p.error(f"--runs must be 1..{MAX_RUNS}, --http-rounds 1..1000, --http-delay-ms 0..10000")
    results = Results("profile_assembly", a.json)
    simulated(a.runs, results)
    http(a.http_rounds, a.http_delay_ms, results)


if __name__ == "__main__":
    main()
