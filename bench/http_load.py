"""HTTP under load: the measurement and the draw endpoints of a real `sandu serve` on loopback, on SQLite and
PostgreSQL, with 1 and 2 server processes: a closed loop of 50 clients (throughput, p50/p99) and an open loop at a
fixed rate (p50/p99 measured from each request's due time, errors). The measurement is loaded twice: every client
measuring one enterprise (S2, whose row each measurement locks: on PostgreSQL they queue there) and spread over 50
enterprises, each measured by its own legal representative. Besides the wall figures it measures the CPU
the server spent per request (all its processes, from /proc) and its event loops' part of it (their main threads; the
rest is the request threads'), and, in process, the CPU of one measurement of each load without HTTP and, on PostgreSQL,
the CPU the server spent on it (`postgres_cpu_s`) — on 2 cores the throughput ceiling is 2 cores ÷ the two together,
whatever the load on the machine — and how long it held the store's
writer (`held_ms_per_write`): on SQLite the writers of every process take turns, so 1000 ÷ that is a second ceiling,
whatever the cores — and where that CPU goes, the p50 of each of its steps (`steps_ms`). For each load of measurements it
reads back their write step (`write_steps_ms`) against the same in process: on SQLite one process writes at a time, so
what that step grows by under load (its writer waiting for its own process's interpreter) every writer waits too; and
for every load on sandu, its writer from the server's /metrics (`record_writer`): the ms each write held it — on SQLite,
with the share of the load's time it was held, 1000 ÷ that ms is what all processes together can write per second. The same
loads against FastAPI with nothing behind it (one process, `loadgen.empty_app`) are the reference: what the framework,
uvicorn and the load generator take on this machine. Last, the measurements of the 50 enterprises at a rate the server
keeps up with, alone and with a login every half second beside them (`with_logins`): a login must hold no writer.

Usage: .venv/bin/python bench/http_load.py [--in-process-only] [--requests N] [--rate R] [--seconds S] [--workers 1,2] [--stores sqlite,postgresql] [--json FILE]
Env:   SANDU_BENCH_PG_ADMIN  (default postgresql://postgres@127.0.0.1:5432/test)

Targets (issue 13): measurement on SQLite, closed loop of 50 clients ≥ 400 requests/s with p99 ≤ 150 ms; open loop at
200 requests/s with p99 ≤ 50 ms and no errors; the same reported on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

# The bench's own store, key and limits (the server it starts inherits them).
os.environ.setdefault("SANDU_SECRET_KEY", secrets.token_urlsafe(48))
os.environ.update(SANDU_RATE_MEASURE_PER_MINUTE="10000", SANDU_RATE_MOVEMENT_PER_MINUTE="100000")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Results, json_option  # noqa: E402
from loadgen import (  # noqa: E402
    MAX_WORKERS,
    LoadResult,
    RequestMaker,
    Served,
    busiest_share,
    closed_loop,
    cpu_s_by_process,
    framework_server,
    main_threads_cpu_s,
    open_loop,
    postgres_cpu_s,
    sandu_server,
)

from sandu.demo.seed import seed_universe  # noqa: E402
from sandu.demo.users import actor, demo_specs, ensure_users  # noqa: E402
from sandu.origination import actions as orig  # noqa: E402
from sandu.policy.bundle import load_bundle  # noqa: E402
from sandu.runtime import Runtime  # noqa: E402
from sandu.scoring.risk import load_model  # noqa: E402
from sandu.security import actions as security  # noqa: E402
from sandu.servicing.service import MAX_OPEN_DRAWINGS  # noqa: E402
from sandu.simulate.stories import STORY_ROWS  # noqa: E402
from sandu.sources.catalog import ALL_SOURCES  # noqa: E402
from sandu.store import models as m  # noqa: E402
from sandu.store.db import make_engine  # noqa: E402

API = "/api/v1"
S2 = STORY_ROWS[1]
PG_ADMIN = os.environ.get("SANDU_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
CLIENTS = 50  # the closed loop's clients (issue 13)
SPREAD = 50  # enterprises of the "many enterprises" runs, each measured by its own legal representative
WARM_UP = 20  # requests of each kind before measuring (connections, caches)
IN_PROCESS_RUNS = 100  # measurements timed in process for the CPU per request
MIXED_RATE_PER_S = 30.0  # an open loop of measurements the server keeps up with: what logins do to them shows in their p99
LOGIN_EVERY_S = 0.5  # a login meanwhile: its password check (argon2, ~100 ms of CPU by design) must hold no writer
MIXED_REQUESTS = 240  # measurements of each of the two runs (8 s at MIXED_RATE_PER_S): enough for a p99 that is not one request
ONE_CLIENT = 100  # requests of the one-client probe: GET /healthz, one after another on one connection
MAX_SECONDS = 600
MAX_REQUESTS_EACH = 1000
MAX_DECISIONS_READ = 10_000  # decisions whose write step is read back after one load (a load makes at most 1,000)
CEILING = "ceiling: 2 cores ÷ the CPU of a measurement in process (on PostgreSQL, the server's included)"
STEPS = {"read_sources_ms": "reading the sources", "score_and_policy_ms": "scoring and the policy, counterfactual search included",
         "record_ms": "the write step"}  # a measurement's steps, as its decision's timings_ms names them
TARGETS = {"closed": "target (issue 13, SQLite, 50 clients): ≥ 400 requests/s with p99 ≤ 150 ms",
           "open": "target (issue 13, SQLite, 200 requests/s): p99 ≤ 50 ms, no errors"}


@dataclass(frozen=True)
class Applicant:
    username: str
    password: str
    uscc: str
    consent_id: str


def spread(rt: Runtime, n: int) -> list[Applicant]:
    """`n` enterprises of the universe registered, each by its own legal representative (a new applicant named as the
    business registry names them) with a consent of every scope: load spread over many enterprises, as a region's
    applicants would bring it, instead of queuing on one enterprise's row."""
    with rt.uow.read() as s:
        registered = select(m.Enterprise.uscc)
        sims = s.execute(select(m.SimEnterprise.uscc, m.SimEnterprise.name, m.SimEnterprise.legal_rep_id)
                         .where(m.SimEnterprise.uscc.not_in(registered)).order_by(m.SimEnterprise.uscc).limit(n)).all()
    if len(sims) < n:
        raise RuntimeError(f"the universe has {len(sims)} unregistered enterprises, {n} wanted")
    out = []
    for k, (uscc, name, legal_rep_id) in enumerate(sims):
        username, password = f"bench-rep-{k:03d}", secrets.token_urlsafe(12)
        security.create_user(rt, None, username=username, password=password, role="applicant", resident_id=legal_rep_id)
        rep = actor(rt, username)
        orig.register(rt, rep, uscc=uscc, name=name)
        consent = orig.grant_consent(rt, rep, uscc=uscc, scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement",
                                     valid_days=30)
        out.append(Applicant(username, password, uscc, consent.id))
    return out


def seeded(url: str) -> tuple[str, str, dict[str, float], dict[str, float], dict[str, dict[str, float]], dict[str, float], list[Applicant]]:
    """(url, the password of S2's legal representative, in-process CPU ms of one measurement by load, the CPU ms the
    local PostgreSQL server spent on it by load (`postgres_cpu_s`; none on SQLite, which runs in the process), the p50 of each of
    their steps by load (`steps_ms`: step → ms), the ms each held the store's writer by load (`held_ms_per_write`), SPREAD
    more applicants with their enterprises) of a migrated, seeded store with
    the demo users. The measurements timed in process are those the server will be loaded with: S2 under its own
    consent, and the SPREAD enterprises in turn, each by its own legal representative (some of them declined or short of
    a request, so searched for counterfactuals)."""
    engine = make_engine(url)
    rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model())
    rt.upgrade_schema()
    seed_universe(rt.uow, 1000, 1, date(2026, 10, 31))
    password = dict((spec.username, pw) for spec, pw in ensure_users(rt, demo_specs()))["rep-s2"]
    applicants = spread(rt, SPREAD)
    rep = actor(rt, "rep-s2")
    orig.register(rt, rep, uscc=S2["uscc"], name=S2["name"])
    consent = orig.grant_consent(rt, rep, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement",
                                 valid_days=30)
    reps = [actor(rt, a.username) for a in applicants]
    loads: dict[str, Callable[[int], object]] = {
        "measurement": lambda _n: orig.measure(rt, rep, uscc=S2["uscc"], consent_id=consent.id),
        f"measurement, {len(applicants)} enterprises": lambda n: orig.measure(rt, reps[n % len(reps)], uscc=applicants[n % len(reps)].uscc,
                                                                              consent_id=applicants[n % len(reps)].consent_id),
    }
    cpu_ms, db_ms, step_ms, held_ms = {}, {}, {}, {}
    server_cpu_s = postgres_cpu_s if engine.dialect.name == "postgresql" else None
    for what, measure in loads.items():
        since, before = datetime.now(timezone.utc), WriterTotals.in_process(rt)
        cpu_ms[what], server_ms = _cpu_ms(measure, server_cpu_s)
        if server_ms is not None:
            db_ms[what] = server_ms
        step_ms[what] = {step: _p50(ms) for step, ms in steps_ms(engine, since).items()}
        held_ms[what] = held_ms_per_write(before, WriterTotals.in_process(rt))
    engine.dispose()
    return url, password, cpu_ms, db_ms, step_ms, held_ms, applicants


WRITER_SAMPLES = ("sandu_store_write_held_seconds_count", "sandu_store_write_wait_seconds_sum", "sandu_store_write_held_seconds_sum")


@dataclass(frozen=True)
class WriterTotals:
    """Write transactions so far, as sandu's metrics count them (`WRITER_SAMPLES`): how many, and the seconds they
    waited for the store's writer and then held it."""

    writes: float
    waited_s: float
    held_s: float

    @classmethod
    def in_process(cls, rt: Runtime) -> WriterTotals:
        """As the runtime's own metrics count them."""
        return cls(*(rt.metrics.registry.get_sample_value(name) or 0.0 for name in WRITER_SAMPLES))

    @classmethod
    def of(cls, base: str) -> WriterTotals:
        """As the server at `base` counts them in its /metrics (summed over its processes)."""
        text = httpx.get(f"{base}/metrics", timeout=30).text
        sums = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name in WRITER_SAMPLES}
        return cls(*(sums.get(name, 0.0) for name in WRITER_SAMPLES))


def held_ms_per_write(before: WriterTotals, after: WriterTotals) -> float:
    """The mean ms a write held the store's writer between two readings (a measurement is one write)."""
    writes = after.writes - before.writes
    return (after.held_s - before.held_s) * 1000 / writes if writes else float("nan")


def steps_ms(engine: Engine, since: datetime) -> dict[str, list[float]]:
    """Each step (`STEPS`) of each measurement recorded since `since` (at most MAX_DECISIONS_READ), as its decision's
    `timings_ms` holds it: reading the sources, scoring and the policy (the counterfactual search included), and the write
    step — from locking the enterprise to the decision's row, inside the store's one write transaction at a time on SQLite
    (before the audit seal and the commit). Under load, what the write step grows by over the same step in process is the
    time the writer waited for its process's interpreter while holding the store — time every other writer waits too."""
    with engine.connect() as conn:
        rows = conn.execute(select(m.Decision.timings_ms).where(m.Decision.decided_at >= since).limit(MAX_DECISIONS_READ)).scalars().all()
    return {step: [float(t[step]) for t in rows] for step in STEPS}


def write_steps_ms(engine: Engine, since: datetime) -> list[float]:
    """The write step (`record_ms`) of each measurement recorded since `since`: `steps_ms`'s last."""
    return steps_ms(engine, since)["record_ms"]


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _cpu_ms(measure: Callable[[int], object], server_cpu_s: Callable[[], float] | None = None) -> tuple[float, float | None]:
    """In-process CPU ms of one call of `measure(n)`, over IN_PROCESS_RUNS calls after WARM_UP, and the CPU ms the
    database server spent on one meanwhile, as `server_cpu_s` reads it (None without it)."""
    for n in range(WARM_UP):
        measure(n)
    cpu0, server0 = time.process_time(), server_cpu_s() if server_cpu_s else 0.0
    for n in range(IN_PROCESS_RUNS):
        measure(n)
    cpu_ms = (time.process_time() - cpu0) * 1000 / IN_PROCESS_RUNS
    return cpu_ms, (server_cpu_s() - server0) * 1000 / IN_PROCESS_RUNS if server_cpu_s else None


def stores(names: list[str], results: Results) -> Iterator[tuple[str, tuple[str, str, dict[str, float], dict[str, float], dict[str, dict[str, float]],
                                                                          dict[str, float], list[Applicant]]]]:
    if "sqlite" in names:
        with tempfile.TemporaryDirectory() as tmp:
            yield "sqlite", seeded(f"sqlite:///{Path(tmp) / 'bench.db'}")
    if "postgresql" not in names:
        return
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


def record_held(results: Results, store: str, rest: str, held_ms: float, cpu_ms: float) -> None:
    """The ms one measurement held the store's writer in process (its write transaction, commit included), against
    its CPU: on SQLite the writers of every server process take turns on the one file, so whatever the cores they
    record at most 1000 ÷ this measurements/s; on PostgreSQL writers wait only on the rows they lock."""
    bound = f"the writers of all processes take turns: at most {1000 / held_ms:.0f} measurements/s, whatever the cores" if store == "sqlite" \
        else "writers wait on the rows they lock, not on one writer"
    print(f"{store}: in process, a measurement{rest} held the store's writer {held_ms:.2f} ms ({held_ms / cpu_ms:.0%} of its CPU): {bound}")
    results.add(f"http {store}: in-process writer held per measurement{rest}", held_ms, "ms", reference="in-process CPU per measurement",
                reference_value=cpu_ms, notes=f"its write transaction, from the writer's turn to the end of its commit "
                                              f"(sandu_store_write_held_seconds); {bound}")


def record_steps(results: Results, store: str, rest: str, p50_ms: dict[str, float], cpu_ms: float) -> None:
    """Where one measurement's time goes in process: the p50 of each of its steps (`steps_ms`) against its CPU. What the
    three leave out is the audit seal and the commit, the answer's view, and the read and write transactions' own cost."""
    said = ", ".join(f"{STEPS[step]} {ms:.2f}" for step, ms in p50_ms.items())
    print(f"{store}: in process, the steps of a measurement{rest} (p50, ms): {said}")
    for step, ms in p50_ms.items():
        results.add(f"http {store}: in-process step p50 per measurement{rest}: {STEPS[step]}", ms, "ms", reference="in-process CPU per measurement",
                    reference_value=cpu_ms, notes=f"{IN_PROCESS_RUNS + WARM_UP} decisions' timings_ms.{step}; the steps leave out the audit seal "
                                                  "and the commit, the answer's view and the transactions' own cost")


def record(results: Results, label: str, r: LoadResult, server_cpu_s: float, loop_cpu_s: float, ceiling_per_s: float | None, *,
           busiest: float) -> None:
    """Rows of one run: throughput (against the ceiling, when there is one), p50, p99, errors, server CPU per request and
    the event loops' part of it (the rest is the request threads') — each naming backend, mode, workers and load; the
    notes say what part of that CPU the busiest server process took (`busiest`: with 2 processes evenly loaded, ½)."""
    answered = max(sum(r.statuses.values()), 1)
    codes = ", ".join(f"{code}×{n}" for code, n in sorted(r.statuses.items()))
    server_ms, client_ms, loop_ms = server_cpu_s * 1000 / answered, r.client_cpu_s * 1000 / answered, loop_cpu_s * 1000 / answered
    print(f"  {r.line(label)}; server CPU {server_ms:.2f} ms/request (event loop {loop_ms:.2f}; busiest process {busiest:.0%})")
    notes = (f"{r.requests} requests in {r.seconds:.1f} s; {r.per_second:.0f}/s; p50 {r.pct_ms(50):.1f} ms; p99 {r.pct_ms(99):.1f} ms; "
             f"{codes}; errors {r.errors}; CPU per request: server {server_ms:.2f} ms (event loop {loop_ms:.2f} ms, request threads "
             f"{server_ms - loop_ms:.2f} ms), load generator {client_ms:.2f} ms; busiest server process {busiest:.0%} of the server CPU")
    head = _head(label, r)
    if "measurement" in label:
        notes += f"; {TARGETS[r.mode]}"
    ceiling = {} if ceiling_per_s is None else {"reference": CEILING, "reference_value": ceiling_per_s}
    results.add(f"{head}: throughput", r.per_second, "requests/s", notes=notes, **ceiling)
    results.add(f"{head}: latency p50", r.pct_ms(50), "ms", notes=notes)
    results.add(f"{head}: latency p99", r.pct_ms(99), "ms", notes=notes)
    results.add(f"{head}: errors", r.errors, "requests", notes=f"answers outside 2xx and requests without an answer; {notes}")
    results.add(f"{head}: server CPU per request", server_ms, "ms", notes=notes)
    results.add(f"{head}: event loop CPU per request", loop_ms, "ms", notes=f"the server processes' main threads (uvicorn's event loop: "
                f"HTTP, routing, dependencies, thread hand-offs, serializing); {notes}")
    if r.errors:
        results.failed(f"{head}: no errors", f"{codes}; {len(r.failures)} failures ({(r.failures or ['-'])[0][:120]})")


def _head(label: str, r: LoadResult) -> str:
    """The name of one load's figures: backend, workers, endpoint, mode and load."""
    return f"{label}, {r.mode} loop {f'{r.clients} clients' if r.mode == 'closed' else f'{r.rate_per_s:g}/s'}"


def record_writer(results: Results, head: str, store: str, before: WriterTotals, after: WriterTotals, seconds: float,
                  in_process_ms: float | None) -> None:
    """The store's writer under one load, from the server's /metrics before and after it: the ms each write held it (against
    the same in process, when known) and waited for it, and — on SQLite, where the processes' writers take turns — the
    share of the load's time it was held: near 100 %, the writer is the ceiling, whatever the cores."""
    writes = after.writes - before.writes
    if writes <= 0:
        return
    held_ms, waited_ms = held_ms_per_write(before, after), (after.waited_s - before.waited_s) * 1000 / writes
    busy = (after.held_s - before.held_s) / seconds
    one_writer = store == "sqlite"
    print(f"    writer: held {held_ms:.2f} ms per write, waited {waited_ms:.2f} ms ({writes:.0f} writes)"
          + (f"; held {busy:.0%} of the time: at most {1000 / held_ms:.0f} writes/s" if one_writer else ""))
    notes = (f"{writes:.0f} write transactions under this load, summed over the server's processes (its /metrics: "
             f"sandu_store_write_held_seconds); waited {waited_ms:.2f} ms each")
    reference = {} if in_process_ms is None else {"reference": "the same in process, one measurement at a time", "reference_value": in_process_ms}
    results.add(f"{head}: writer held per write", held_ms, "ms", **reference, notes=notes + (
        f"; the processes' writers take turns on SQLite: at most {1000 / held_ms:.0f} writes/s" if one_writer else ""))
    if one_writer:
        results.add(f"{head}: writer busy", round(100 * busy, 1), "% of the time", notes=f"the one writer of all the server's processes "
                    f"held by a write for this share of the load's {seconds:.1f} s; {notes}")


def record_write_step(results: Results, head: str, steps_ms: list[float], in_process_ms: float) -> None:
    """The p50 of the measurements' write step under one load (`write_steps_ms`) against the same in process."""
    p50 = _p50(steps_ms)
    print(f"    write step p50 {p50:.2f} ms under this load, {in_process_ms:.2f} ms in process ({len(steps_ms)} decisions)")
    results.add(f"{head}: write step p50", p50, "ms", reference="the same in process, one measurement at a time", reference_value=in_process_ms,
                notes=f"{len(steps_ms)} decisions' timings_ms.record_ms: from locking the enterprise to the decision's row, inside the "
                      "store's one write transaction at a time on SQLite; what it grows by under load is time every writer waits")


def load_both_ways(results: Results, base: Served, label: str, make: Callable[[str], RequestMaker], requests_each: int, rate_per_s: float,
                   seconds: float, ceiling_per_s: float | None, headers: dict[str, str] | None = None,
                   after: Callable[[str], None] | None = None, write_steps: tuple[Engine, float] | None = None,
                   writer: tuple[str, float | None] | None = None) -> None:
    """Warm `base` up, then load it with the closed loop of CLIENTS and the open loop at `rate_per_s` for `seconds`
    (`make(tag)` gives each its request maker) and record both, with the server CPU each took; `after(mode)` runs after
    each of the two loops, outside its figures. `write_steps`: (an engine on the server's store, the p50 of the write
    step in process) for a load of measurements, whose write steps are then read back (`write_steps_ms`). `writer`: (the
    store, the ms a write held its writer in process, when known) for a sandu server, whose writer is then recorded
    (`record_writer`)."""
    closed_loop(base, 4, WARM_UP // 4, make("warm"), headers=headers)
    for mode in ("closed", "open"):
        since = datetime.now(timezone.utc)
        writes0 = WriterTotals.of(base) if writer is not None else None
        cpu0, loop0 = cpu_s_by_process(base.pid), main_threads_cpu_s(base.pid)
        if mode == "closed":
            r = closed_loop(base, CLIENTS, requests_each, make(mode), headers=headers)
        else:
            r = open_loop(base, rate_per_s, max(1, round(rate_per_s * seconds)), make(mode), headers=headers)
        cpu1 = cpu_s_by_process(base.pid)
        record(results, label, r, sum(cpu1.values()) - sum(cpu0.values()), main_threads_cpu_s(base.pid) - loop0, ceiling_per_s,
               busiest=busiest_share(cpu0, cpu1))
        if writer is not None and writes0 is not None:
            record_writer(results, _head(label, r), writer[0], writes0, WriterTotals.of(base), r.seconds, writer[1])
        if write_steps is not None:
            reader, in_process_ms = write_steps
            record_write_step(results, _head(label, r), write_steps_ms(reader, since), in_process_ms)
        if after is not None:
            after(mode)


def setup(base: str, password: str) -> tuple[dict[str, str], str, int]:
    """S2's legal representative logged in, a consent of every scope, a measurement and the signed line: (auth, consent, line)."""
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post(f"{API}/auth/token", data={"username": "rep-s2", "password": password})
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        cid = c.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": list(ALL_SOURCES), "bureau_authorization": True}, headers=auth).json()["id"]
        did = c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": cid}, headers=auth).json()["id"]
        line = c.post(f"{API}/decisions/{did}/offers/jingying_kuaidai/accept", headers=auth)
        line.raise_for_status()
        return auth, cid, line.json()["id"]


def one_of_many(applicants: list[Applicant], heads: list[dict[str, str]], n: int) -> tuple[str, str, dict, dict[str, str]]:
    """A measurement by applicant n (mod their number), as them: in the closed loop client k measures its own
    enterprise; in the open loop request i the next enterprise in turn."""
    a = n % len(applicants)
    return "POST", f"{API}/enterprises/{applicants[a].uscc}/measurements", {"consent_id": applicants[a].consent_id}, heads[a]


def log_in(base: str, applicants: list[Applicant]) -> list[dict[str, str]]:
    """Each applicant's Authorization header."""
    with httpx.Client(base_url=base, timeout=30) as c:
        heads = []
        for a in applicants:
            r = c.post(f"{API}/auth/token", data={"username": a.username, "password": a.password})
            r.raise_for_status()
            heads.append({"Authorization": f"Bearer {r.json()['access_token']}"})
        return heads


def draws_open_at_most(requests_each: int, rate_per_s: float, seconds: float) -> int:
    """The most drawings the draw loads leave open on the line at once: the warm-up and the closed loop, or the open
    loop (the line is repaid after each loop)."""
    return max(WARM_UP + CLIENTS * requests_each, max(1, round(rate_per_s * seconds)))


def repay_all(base: str, auth: dict[str, str], line: int, run: str) -> None:
    """Repay what the draws took, the same day (no interest): the drawings close, so the next load starts again far
    below the line's limit on open drawings (`MAX_OPEN_DRAWINGS`). `run` names this repayment (its idempotency key)."""
    with httpx.Client(base_url=base, timeout=30, headers=auth) as c:
        drawn = c.get(f"{API}/lines/{line}").json()["drawn_principal_fen"]
        if drawn:
            c.post(f"{API}/lines/{line}/repayments", json={"amount_fen": drawn, "idempotency_key": f"{run}-repaid"}).raise_for_status()
        left = c.get(f"{API}/lines/{line}").json()["drawn_principal_fen"]
    if left != 0:
        raise RuntimeError(f"line {line}: {left} fen still drawn after repaying {drawn} fen")


def with_logins(results: Results, base: Served, label: str, applicants: list[Applicant], heads: list[dict[str, str]], password: str) -> None:
    """MIXED_REQUESTS measurements of the spread enterprises in an open loop at MIXED_RATE_PER_S, alone, then with S2's
    legal representative logging in every LOGIN_EVERY_S: their p99 with the logins against without. A login that held
    the store's writer while it checks the password stalled every measurement behind it (p99 ~230 ms against ~45 ms,
    2026-12-03); what is left is the check's CPU (argon2 lets go of the interpreter, not of the core: on 2 cores a
    login every half second takes a third of one)."""
    def make(_k: int, i: int) -> tuple[str, str, dict, dict[str, str]]:
        return one_of_many(applicants, heads, i)

    requests = MIXED_REQUESTS
    alone = open_loop(base, MIXED_RATE_PER_S, requests, make)
    stop, logins = threading.Event(), Counter()

    def log_in_again() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            while not stop.is_set():
                logins[c.post(f"{API}/auth/token", data={"username": "rep-s2", "password": password}).status_code] += 1
                stop.wait(LOGIN_EVERY_S)

    beside = threading.Thread(target=log_in_again, name="bench-logins", daemon=True)
    beside.start()
    try:
        mixed = open_loop(base, MIXED_RATE_PER_S, requests, make)
    finally:
        stop.set()
        beside.join(timeout=60)
    head = f"{label}: POST measurement, {len(applicants)} enterprises, open loop {MIXED_RATE_PER_S:g}/s, a login every {LOGIN_EVERY_S:g} s"
    said = ", ".join(f"{code}×{n}" for code, n in sorted(logins.items()))
    print(f"  {mixed.line(head)}; alone p99 {alone.pct_ms(99):.1f} ms; logins {said}")
    results.add(f"{head}: latency p99", mixed.pct_ms(99), "ms", reference="the same load without logins: p99", reference_value=alone.pct_ms(99),
                notes=f"{requests} requests each; p50 {mixed.pct_ms(50):.1f} ms with logins, {alone.pct_ms(50):.1f} ms without; logins {said}")
    if mixed.errors or alone.errors or set(logins) != {200}:
        results.failed(f"{head}: no errors", f"measurements {mixed.errors} + {alone.errors} errors; logins {said}")


def one_client(results: Results, base: Served, label: str, reference_ms: float | None) -> float:
    """The p50 latency of GET /healthz sent by one client, one request after another on one keep-alive connection: what
    a request costs the served stack when nothing queues (a response held back by Nagle's algorithm until the client's
    delayed ACK shows here as 40 ms). Set against the same probe of the empty FastAPI app."""
    r = closed_loop(base, 1, ONE_CLIENT, lambda k, i: ("GET", "/healthz", None))
    codes = ", ".join(f"{code}×{n}" for code, n in sorted(r.statuses.items()))
    print(f"  {r.line(f'{label}: GET /healthz, 1 client')}")
    reference = {} if reference_ms is None else {"reference": "the empty FastAPI app, the same probe", "reference_value": reference_ms}
    results.add(f"{label}: GET /healthz, 1 client: latency p50", r.pct_ms(50), "ms", **reference,
                notes=f"{r.requests} requests one after another on one connection; p99 {r.pct_ms(99):.2f} ms; {codes}")
    if r.errors:
        results.failed(f"{label}: GET /healthz, 1 client: no errors", f"{codes}; {(r.failures or ['-'])[0][:120]}")
    return r.pct_ms(50)


def framework(results: Results, requests_each: int, rate_per_s: float, seconds: float) -> float:
    """The reference: the same loads against FastAPI with nothing behind it (`loadgen.empty_app`, one process) — what the
    framework, uvicorn and the load generator take on this machine, so that a target out of reach is seen to be sandu's.
    Returns the one-client probe's p50 (ms)."""
    with framework_server() as base:
        probe_ms = one_client(results, base, "http reference: empty FastAPI, 1 worker", None)
        load_both_ways(results, base, "http reference: empty FastAPI endpoint (POST /echo: a JSON object in a plain def), 1 worker",
                       lambda tag: lambda k, i: ("POST", "/echo", {"client": k, "request": i, "run": tag}), requests_each, rate_per_s, seconds, None)
    return probe_ms


def main(requests_each: int, rate_per_s: float, seconds: float, workers: list[int], names: list[str], results: Results,
         in_process_only: bool = False) -> None:
    if not 1 <= requests_each <= MAX_REQUESTS_EACH or not 0 < seconds <= MAX_SECONDS or not all(1 <= w <= MAX_WORKERS for w in workers):
        raise SystemExit(f"--requests 1..{MAX_REQUESTS_EACH}, --seconds (0, {MAX_SECONDS}], --workers each 1..{MAX_WORKERS}")
    if not in_process_only and draws_open_at_most(requests_each, rate_per_s, seconds) > MAX_OPEN_DRAWINGS:
        raise SystemExit(f"--requests {requests_each}, --rate {rate_per_s:g}, --seconds {seconds:g}: the draw loads would leave "
                         f"{draws_open_at_most(requests_each, rate_per_s, seconds):,} drawings open on one line, which takes at most "
                         f"{MAX_OPEN_DRAWINGS:,} (the rest would be refused, 409); allowed: {WARM_UP} + {CLIENTS} × --requests ≤ "
                         f"{MAX_OPEN_DRAWINGS:,} and --rate × --seconds ≤ {MAX_OPEN_DRAWINGS:,}")
    print(f"HTTP on loopback: closed loop {CLIENTS} clients × {requests_each}; open loop {rate_per_s:g}/s for {seconds:g} s; "
          f"server processes {', '.join(map(str, workers))}; load average {os.getloadavg()[0]:.2f}")
    probe_ms = None if in_process_only else framework(results, requests_each, rate_per_s, seconds)
    for store, (url, password, cpu_ms, db_ms, step_ms, held_ms, applicants) in stores(names, results):
        # the loads of the measurement, by what they measure: the cores a measurement takes are its process's and, on
        # PostgreSQL, the server's (SQLite runs in the process)
        ceilings = {what: 2 * 1000 / (ms + db_ms.get(what, 0.0)) for what, ms in cpu_ms.items()}
        for what, ms in cpu_ms.items():
            rest, server_ms = what.removeprefix("measurement"), db_ms.get(what)
            with_server = "" if server_ms is None else f" + the PostgreSQL server's {server_ms:.2f} ms"
            print(f"{store}: in-process CPU per measurement{rest} {ms:.2f} ms{with_server} → ceiling on 2 cores {ceilings[what]:.0f}/s "
                  "(no HTTP, no load generator)")
            results.add(f"http {store}: in-process CPU per measurement{rest}", ms, "ms",
                        notes=f"{IN_PROCESS_RUNS} measurements through the action, no HTTP; 2 cores ÷ this{with_server} = {ceilings[what]:.0f}/s")
            if server_ms is not None:
                results.add(f"http {store}: PostgreSQL server CPU per measurement in process{rest}", server_ms, "ms",
                            reference="in-process CPU per measurement", reference_value=ms,
                            notes=f"the same {IN_PROCESS_RUNS} measurements: every PostgreSQL process of this machine (backends, WAL writer, "
                                  "checkpointer; /proc), which the client's CPU leaves out and the 2 cores share")
            record_held(results, store, rest, held_ms[what], ms)
            record_steps(results, store, rest, step_ms[what], ms)
        ready: tuple[dict[str, str], str, int] | None = None  # set up once per store: a second acceptance of the offer is refused
        reader = make_engine(url)  # the write steps of the decisions each load of measurements recorded
        for n in [] if in_process_only else workers:
            with sandu_server(url, workers=n) as base:
                auth, cid, line = ready = ready or setup(base, password)
                heads = log_in(base, applicants)
                one_client(results, base, f"http {store}, {n} worker{'s' if n > 1 else ''}", probe_ms)
                run = uuid.uuid4().hex[:6]

                makers = {  # what → (tag → request maker); a draw's idempotency key is new for every request
                    "measurement": lambda tag, c=cid: lambda k, i: ("POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"consent_id": c}),
                    f"measurement, {len(applicants)} enterprises": lambda tag, who=applicants, heads=heads: lambda k, i: one_of_many(
                        who, heads, k if tag == "closed" else i),
                    "draw": lambda tag, ln=line, r=run: lambda k, i: ("POST", f"{API}/lines/{ln}/draws",
                                                              {"amount_fen": 100, "idempotency_key": f"{r}-{tag}-{k}-{i}"}),
                }
                for what, make in makers.items():
                    label = f"http {store}, {n} worker{'s' if n > 1 else ''}: POST {what}"
                    repay = (lambda mode, b=base, a=auth, ln=line, r=run: repay_all(b, a, ln, f"{r}-{mode}")) if what == "draw" else None
                    steps = (reader, step_ms[what]["record_ms"]) if what in step_ms else None
                    load_both_ways(results, base, label, make, requests_each, rate_per_s, seconds, ceilings.get(what), headers=auth, after=repay,
                                   write_steps=steps, writer=(store, held_ms.get(what)))
                with_logins(results, base, f"http {store}, {n} worker{'s' if n > 1 else ''}", applicants, heads, password)
        reader.dispose()


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10, help=f"closed loop: requests per client ({CLIENTS} clients)")
    parser.add_argument("--rate", type=float, default=200.0, help="open loop: requests per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="open loop: for how long requests are due")
    parser.add_argument("--workers", default="1,2", help="server processes to measure, e.g. 1,2")
    parser.add_argument("--stores", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--in-process-only", action="store_true", help="only the in-process CPU per measurement (no server, no HTTP)")
    json_option(parser)
    args = parser.parse_args()
    unknown = set(_list(args.stores)) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"--stores: unknown {', '.join(sorted(unknown))}; allowed: sqlite, postgresql")
    main(args.requests, args.rate, args.seconds, [int(w) for w in _list(args.workers)], _list(args.stores), Results("http_load", args.json),
         args.in_process_only)
