"""HTTP under concurrent load: measurement and draw endpoints of a real `sandu serve`
on loopback, on SQLite and (when it answers) PostgreSQL, at 4 and at 50 closed-loop
clients. Prints throughput, p50/p99 latency, status counts and failures.

Usage: .venv/bin/python bench/http_load.py [REQUESTS_PER_CLIENT] [--json FILE]   (default 10)
Env:   SANDU_BENCH_PG_ADMIN  (default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path

import httpx

# The bench's own store, key and limits (the server it starts inherits them).
os.environ.setdefault("SANDU_SECRET_KEY", secrets.token_urlsafe(48))
os.environ.update(SANDU_RATE_MEASURE_PER_MINUTE="10000", SANDU_RATE_MOVEMENT_PER_MINUTE="100000")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Results, json_option  # noqa: E402
from loadgen import LoadResult, closed_loop, sandu_server  # noqa: E402

from sandu.demo.seed import seed_universe  # noqa: E402
from sandu.demo.users import demo_specs, ensure_users  # noqa: E402
from sandu.policy.bundle import load_bundle  # noqa: E402
from sandu.runtime import Runtime  # noqa: E402
from sandu.scoring.risk import load_model  # noqa: E402
from sandu.simulate.stories import STORY_ROWS  # noqa: E402
from sandu.sources.catalog import ALL_SOURCES  # noqa: E402
from sandu.store.db import make_engine  # noqa: E402

API = "/api/v1"
S2 = STORY_ROWS[1]
PG_ADMIN = os.environ.get("SANDU_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


def seeded(url: str) -> tuple[str, str]:
    """(url, the password of S2's legal representative) of a migrated, seeded store with the demo users."""
    engine = make_engine(url)
    rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model())
    rt.upgrade_schema()
    seed_universe(rt.uow, 1000, 1, date(2026, 10, 31))
    password = dict((spec.username, pw) for spec, pw in ensure_users(rt, demo_specs()))["rep-s2"]
    engine.dispose()
    return url, password


def stores(results: Results):
    with tempfile.TemporaryDirectory() as tmp:
        yield "sqlite", seeded(f"sqlite:///{Path(tmp) / 'bench.db'}")
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001
        print(f"postgresql: not measured ({type(exc).__name__})")
        results.skipped("http postgresql", f"PostgreSQL not reachable at {PG_ADMIN}: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
        return
    name = f"sandu_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield "postgresql", seeded(f"postgresql+psycopg://{admin.info.user}@127.0.0.1:5432/{name}")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def record(results: Results, label: str, r: LoadResult) -> None:
    codes = ", ".join(f"{code}×{n}" for code, n in sorted(r.statuses.items()))
    notes = f"{r.requests} requests; p50 {r.pct_ms(50):.1f} ms; {codes}; failures {len(r.failures)}"
    results.add(f"{label}, {r.clients} clients: throughput", r.per_second, "requests/s", notes=notes)
    results.add(f"{label}, {r.clients} clients: latency p99", r.pct_ms(99), "ms", notes=notes)
    if r.server_errors or r.failures:
        results.failed(f"{label}, {r.clients} clients: errors", f"{r.server_errors} server errors, {len(r.failures)} failures "
                       f"({(r.failures or ['-'])[0][:120]})")


def main(requests_each: int, results: Results) -> None:
    print(f"closed loop on loopback, {requests_each} requests per client, one `sandu serve` process")
    for store, (url, password) in stores(results):
        with sandu_server(url) as base, httpx.Client(base_url=base, timeout=30) as c:
            token = c.post(f"{API}/auth/token", data={"username": "rep-s2", "password": password}).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            c.post(f"{API}/enterprises", json={k: S2[k] for k in ("uscc", "name")}, headers=auth).raise_for_status()
            cid = c.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": list(ALL_SOURCES), "bureau_authorization": True}, headers=auth).json()["id"]
            did = c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": cid}, headers=auth).json()["id"]
            line = c.post(f"{API}/decisions/{did}/offers/jingying_kuaidai/accept", headers=auth).json()["id"]
            for clients in (4, 50):
                m = closed_loop(base, clients, requests_each, lambda k, i, c=cid: ("POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"consent_id": c}),
                                headers=auth)
                print(m.line(f"{store:10} measurement"))
                record(results, f"http {store}: POST measurement, closed loop", m)
                run = uuid.uuid4().hex[:6]
                d = closed_loop(base, clients, requests_each,
                                lambda k, i, r=run, n=line: ("POST", f"{API}/lines/{n}/draws", {"amount_fen": 100, "idempotency_key": f"{r}-{k}-{i}"}),
                                headers=auth)
                print(d.line(f"{store:10} draw"))
                record(results, f"http {store}: POST draw, closed loop", d)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requests_each", nargs="?", type=int, default=10, help="requests per client")
    json_option(parser)
    args = parser.parse_args()
    main(args.requests_each, Results("http_load", args.json))
