"""Concurrent clients against a real `sandu serve` process on loopback, on SQLite and
PostgreSQL: 4 clients × 10 requests and 50 clients × 5 requests on the measurement and the draw endpoints get
no 5xx and no timeout, and every request is answered as it should be. Throughput at
4 and at 50 clients is printed (run with -s); `bench/http_load.py` reports the figures."""

from __future__ import annotations

import re
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import TEST_SECRET, login

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from loadgen import closed_loop, loopback, sandu_server  # noqa: E402

from sandu.simulate.stories import STORY_ROWS  # noqa: E402
from sandu.sources.catalog import ALL_SOURCES  # noqa: E402

API = "/api/v1"
S2 = STORY_ROWS[1]
# Requests per client, by the number of clients. At 50 the server is saturated from the first request to the last
# (every client in flight at once: more than its 40 request threads and pooled connections; p50 latency ~0.9 s):
# 5 rounds each keep it there for 250 measurements and 250 draws on each backend.
REQUESTS_EACH = {4: 10, 50: 5}


# The server under load: the tests' key, and rate limits that do not get in the way of a load test.
SERVER_ENV = {"SANDU_SECRET_KEY": TEST_SECRET, "SANDU_RATE_MEASURE_PER_MINUTE": "10000", "SANDU_RATE_MOVEMENT_PER_MINUTE": "100000"}


def _setup(base: str) -> tuple[dict[str, str], str, int]:
    """S2 registered, authorized, measured and signed by its legal representative: (auth headers, consent id, line id)."""
    with httpx.Client(base_url=base, timeout=30) as c:
        auth = login(c, "rep-s2")
        assert c.post(f"{API}/enterprises", json={k: S2[k] for k in ("uscc", "name")}, headers=auth).status_code == 201
        consent = c.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": list(ALL_SOURCES), "bureau_authorization": True}, headers=auth).json()
        d = c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": consent["id"]}, headers=auth).json()
        line = c.post(f"{API}/decisions/{d['id']}/offers/jingying_kuaidai/accept", headers=auth)
        assert line.status_code == 201, line.text
        return auth, consent["id"], line.json()["id"]


@pytest.mark.parametrize("clients", [4, 50])
def test_concurrent_clients_get_no_5xx_and_no_timeout(db_url, clients):
    run = uuid.uuid4().hex[:8]
    with sandu_server(db_url, SERVER_ENV) as base:
        auth, consent_id, line_id = _setup(base)
        measure = closed_loop(base, clients, REQUESTS_EACH[clients], lambda k, i: ("POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"consent_id": consent_id}),
                              headers=auth)
        draw = closed_loop(base, clients, REQUESTS_EACH[clients],
                           lambda k, i: ("POST", f"{API}/lines/{line_id}/draws", {"amount_fen": 100, "idempotency_key": f"{run}-{k}-{i}"}), headers=auth)
        with httpx.Client(base_url=base, timeout=30, headers=auth) as c:
            line = c.get(f"{API}/lines/{line_id}").json()
            journal = c.get(f"{API}/lines/{line_id}/journal", params={"limit": 500}).json()
    store = db_url.split(":", 1)[0]
    print(f"\n{measure.line(f'measurement on {store}')}\n{draw.line(f'draw on {store}')}")
    for label, result in (("measurement", measure), ("draw", draw)):
        assert result.failures == [], f"{label}: {result.failures[:3]}"
        assert result.server_errors == 0, f"{label}: {result.statuses}"
        assert result.statuses == {201: clients * REQUESTS_EACH[clients]}, f"{label}: {result.statuses}"
    # every acknowledged draw is on the line, once
    assert line["drawn_principal_fen"] == 100 * clients * REQUESTS_EACH[clients]
    assert sum(e["kind"] == "draw" for e in journal["entries"]) == clients * REQUESTS_EACH[clients]


def _descendants(pid: int) -> int:
    children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    return len(children) + sum(_descendants(c) for c in children)


def _listening_sockets(port: int, want: int) -> int:
    """How many sockets listen on `port` (IPv4) once `want` do, or after 30 s (the server answers as soon as its
    first process is up)."""
    deadline = time.monotonic() + 30
    while True:
        rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        n = sum(1 for r in rows if int(r[1].rsplit(":", 1)[1], 16) == port and r[3] == "0A")  # 0A: LISTEN
        if n >= want or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def _draws_counted(base: str) -> float | None:
    """The draws answered 201 as one GET /metrics of `base` counts them (a new connection: any of its processes answers)."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    found = re.search(r'^sandu_http_requests_total\{method="POST",route="lines\.draw",status="201"\} (\S+)$', text, re.M)
    return None if found is None else float(found.group(1))


def test_two_server_processes_answer_every_request_once(db_url):
    """`sandu serve --workers 2`: each process builds its own app from the settings and listens on a socket of its own
    (so that the kernel spreads connections over them); draws from 8 clients at once, spread over both, are each
    acknowledged once and all on the line — and counted once in /metrics, whichever process answers it (each scrape
    on a connection of its own: by the hash of its ports, one process or the other; every one of 16 on the same
    process: 2 ** -15)."""
    run = uuid.uuid4().hex[:8]
    with sandu_server(db_url, SERVER_ENV, workers=2) as base:
        assert _descendants(base.pid) >= 2  # the two worker processes (and uvicorn's helper, if any)
        assert _listening_sockets(loopback(base)[1], want=2) == 2
        auth, consent_id, line_id = _setup(base)
        draw = closed_loop(base, 8, 3, lambda k, i: ("POST", f"{API}/lines/{line_id}/draws", {"amount_fen": 100, "idempotency_key": f"{run}-{k}-{i}"}),
                           headers=auth)
        with httpx.Client(base_url=base, timeout=30, headers=auth) as c:
            line = c.get(f"{API}/lines/{line_id}").json()
        counted = [_draws_counted(base) for _ in range(16)]
    assert draw.failures == [] and draw.statuses == {201: 24}, (draw.statuses, draw.failures[:3])
    assert line["drawn_principal_fen"] == 100 * 24
    assert counted == [24.0] * 16, f"the draws as each scrape of /metrics counted them: {counted}"
