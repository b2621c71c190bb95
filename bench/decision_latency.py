"""Decision latency (速度): one measurement end to end on a real SQLite file.

Prints p50 / p99 of the whole measurement (read consented sources, build the
profile, score, apply policy, store the decision) and of the pure scoring +
policy part. Usage: .venv/bin/python bench/decision_latency.py [N] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

os.environ.setdefault("SANDU_SECRET_KEY", secrets.token_urlsafe(48))  # the bench's own store and key

from _results import Results, json_option  # noqa: E402

from sandu.demo.seed import seed_universe  # noqa: E402
from sandu.demo.users import actor, demo_specs, ensure_users
from sandu.origination import actions as orig
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store.db import make_engine

MAX_RUNS = 100_000


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else values[0]


def main(n: int, results: Results) -> None:
    assert 1 <= n <= MAX_RUNS, f"N must be 1..{MAX_RUNS}"
    with tempfile.TemporaryDirectory() as tmp:
        now = datetime(2026, 11, 29, tzinfo=timezone.utc)
        rt = Runtime(engine=make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}"), bundle=load_bundle(), model=load_model(), clock=lambda: now)
        rt.upgrade_schema()
        seed_universe(rt.uow, 1000, 1, date(2026, 10, 31))
        s2 = STORY_ROWS[1]
        ensure_users(rt, demo_specs())
        rep = actor(rt, "rep-s2")
        orig.register(rt, rep, uscc=s2["uscc"], name=s2["name"])
        consent = orig.grant_consent(rt, rep, uscc=s2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", valid_days=30)
        wall, inner = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            d = orig.measure(rt, rep, uscc=s2["uscc"], consent_id=consent.id)
            inner.append(d.timings_ms["score_and_policy_ms"])
            wall.append((time.perf_counter() - t0) * 1000)
        print(f"measurements: {n} on SQLite (synchronous=FULL): a read, the pure step, one short write each")
        print(f"  end to end incl. commit: latency_ms_p50={pct(wall, 50):.2f} latency_ms_p99={pct(wall, 99):.2f}")
        print(f"  profile + scores + policy: latency_ms_p50={pct(inner, 50):.3f} latency_ms_p99={pct(inner, 99):.3f}")
        pure = "the pure step (profile + scores + policy) inside it"
        for q in (50, 99):
            results.add(f"decision end to end on SQLite, p{q}", pct(wall, q), "ms", reference=pure, reference_value=pct(inner, q),
                        notes=f"{n} measurements: read sources, pure step, one write with commit (synchronous=FULL)")
        for q in (50, 99):
            results.add(f"decision pure step (profile + scores + policy), p{q}", pct(inner, q), "ms", notes=f"{n} measurements")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=500, help="measurements")
    json_option(parser)
    args = parser.parse_args()
    main(args.n, Results("decision_latency", args.json))
