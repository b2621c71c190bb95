"""Each web page's server time and size, on a real server on loopback.

Seeds a store on a temporary SQLite file, walks story S2 through the applicant's pages (apply, decision, sign,
line, borrow confirmation, home) and S5 through the staff console (queue, application, line, policy what-if),
and the portfolio dashboard, then requests each page N times: p50 / p99 of the time to the full response (server + loopback, no browser)
and the HTML's size in bytes (the one stylesheet each page loads is listed once).

Usage: .venv/bin/python bench/web_pages.py [N] [--json FILE]   (default 50)
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import statistics
import tempfile
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

os.environ.setdefault("SANDU_SECRET_KEY", secrets.token_urlsafe(48))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from _results import Results, json_option  # noqa: E402

from sandu.api.app import create_app  # noqa: E402
from sandu.demo.seed import seed_universe  # noqa: E402
from sandu.demo.users import demo_specs  # noqa: E402
from sandu.origination import actions as orig  # noqa: E402
from sandu.policy.bundle import load_bundle  # noqa: E402
from sandu.runtime import Runtime  # noqa: E402
from sandu.scoring.risk import load_model  # noqa: E402
from sandu.security import actions as security  # noqa: E402
from sandu.simulate.stories import STORY_ROWS  # noqa: E402
from sandu.sources.catalog import ALL_SOURCES  # noqa: E402
from sandu.store.db import make_engine  # noqa: E402

PASSWORD = "bench horse battery staple"
MAX_N = 10_000


def serve(app) -> tuple[str, uvicorn.Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=sock.getsockname()[1], log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def measure(client: httpx.Client, path: str, n: int) -> tuple[float, float, int]:
    times, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        size = len(r.content)
    q = statistics.quantiles(times, n=100) if len(times) >= 2 else times * 99
    return q[49], q[98], size


def main(n: int, results: Results) -> None:
    assert 1 <= n <= MAX_N
    with tempfile.TemporaryDirectory() as tmp:
        now = datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc)
        rt = Runtime(engine=make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}"), bundle=load_bundle(), model=load_model(), clock=lambda: now)
        rt.upgrade_schema()
        seed_universe(rt.uow, 200, 1, date(2026, 10, 31))
        for spec in demo_specs():
            security.create_user(rt, None, username=spec.username, password=PASSWORD, role=spec.role, branch=spec.branch,
                                 authority_fen=spec.authority_fen, resident_id=spec.resident_id)
        s5 = STORY_ROWS[4]
        rep5 = security.actor_by_username(rt, "rep-s5")
        orig.register(rt, rep5, uscc=s5["uscc"], name=s5["name"])
        consent = orig.grant_consent(rt, rep5, uscc=s5["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement",
                                     valid_days=30)
        d5 = orig.measure(rt, rep5, uscc=s5["uscc"], consent_id=consent.id)
        base, server = serve(create_app(rt))
        rows: list[tuple[str, str, float, float, int]] = []
        s2 = STORY_ROWS[1]
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as app:
            r = app.post("/app/login", data={"username": "rep-s2", "password": PASSWORD})
            r = app.post("/app/measure", data={"uscc": s2["uscc"], "name": s2["name"], "scopes": list(ALL_SOURCES), "bureau_authorization": "yes",
                                               "csrf": csrf(r.text)})
            decision = r.url.path
            r = app.post(f"{decision}/sign", data={"product": "jingying_kuaidai", "password": PASSWORD, "csrf": csrf(r.text)})
            line = r.url.path
            token = csrf(r.text)
            for name, path in (("login", "/app/login"), ("apply", "/app"), ("decision", decision), ("line + statement", line), ("home", "/app/home")):
                rows.append(("applicant", name, *measure(app, path, n)))
            times, size = [], 0
            for _ in range(n):
                t = time.perf_counter()
                r = app.post(f"{line}/draw/confirm", data={"amount_wan": "300", "csrf": token})
                times.append((time.perf_counter() - t) * 1000)
                size = len(r.content)
            q = statistics.quantiles(times, n=100)
            rows.append(("applicant", "borrow confirmation (POST)", q[49], q[98], size))
            css = len(app.get("/static/sandu.css").content)
        with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as console:
            console.post("/console/login", data={"username": "officer-cangnan", "password": PASSWORD})
            application = f"/console/applications/{orig.get_decision(rt, d5.id).application_id}"
            for name, path in (("queue", "/console/queue"), ("application detail", application)):
                rows.append(("console", name, *measure(console, path, n)))
        with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as risk:
            risk.post("/console/login", data={"username": "risk", "password": PASSWORD})
            rows.append(("console", "policy what-if (form)", *measure(risk, "/console/policy", n)))
            rows.append(("console", "portfolio dashboard", *measure(risk, "/console/dashboard", n)))
        server.should_exit = True
    print(f"web pages on a real server on loopback (SQLite), {n} requests each: time to the full response, HTML size")
    print("| app | page | p50 ms | p99 ms | bytes |")
    print("|---|---|---:|---:|---:|")
    for app_name, name, p50, p99, size in rows:
        print(f"| {app_name} | {name} | {p50:.1f} | {p99:.1f} | {size:,} |")
        results.add(f"web {app_name}: {name}, time to full response p50", p50, "ms", notes=f"{n} requests; p99 {p99:.1f} ms; SQLite, loopback")
        results.add(f"web {app_name}: {name}, HTML size", size, "bytes")
    print(f"every applicant page also loads /static/sandu.css once ({css:,} bytes); the dashboard also ECharts (served by sandu, ~1 MB, "
          "cached); no page loads anything from another host")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=50, help="requests per page")
    json_option(parser)
    args = parser.parse_args()
    main(args.n, Results("web_pages", args.json))
