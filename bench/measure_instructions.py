"""Instructions per measurement (callgrind): the CPU work of one measurement, as a figure the machine's speed and noise
do not move.

On a shared 2-core machine the CPU time of the same code moves by 20 % and more between runs minutes apart (the HTTP
figures of bench/http_load.py do, and the in-process CPU per measurement with them), so a change of a few per cent
cannot be seen in them. valgrind's callgrind counts the instructions a process executes. The figure is the difference
between a process making WARM + N measurements and one making WARM, divided by N — what a measurement adds once the
imports, the store's opening and the first measurements' caches are paid — each process on its own copy of the same
store, with PYTHONHASHSEED and the clock fixed: two processes on one store agree to 0.05 %; two runs of this benchmark,
each preparing its own store (new keys and ids, so other B-tree pages), to about 1 % (S2 20.53 and 20.28 M, 50
enterprises 26.03 and 25.87 M on 2026-12-03).

Loads: S2 measured again and again by its legal representative, and 50 enterprises in turn, each by its own (some
declined or short of a request, so searched for counterfactuals) — bench/http_load.py's loads, in process, on SQLite.
Instructions are not time (a C loop and a Python one differ in instructions per nanosecond), but a change that removes
work shows in them at once, and one that adds work too.

Needs valgrind (Debian's package valgrind); without it the figures are skipped rows naming what is missing.
Usage: .venv/bin/python bench/measure_instructions.py [--warm 50] [--runs 50] [--loads s2,spread] [--json FILE]  (≈ 4 min on 2 cores;
       each process under valgrind takes a minute before its first measurement)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path

os.environ.setdefault("SANDU_SECRET_KEY", secrets.token_urlsafe(48))  # the bench's own store and key (its children inherit it)
os.environ["PYTHONHASHSEED"] = "0"  # the children's dicts and sets laid out the same in every run
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Results, json_option  # noqa: E402
from http_load import Applicant, spread  # noqa: E402

from sandu.demo.seed import seed_universe  # noqa: E402
from sandu.demo.users import actor, demo_specs, ensure_users  # noqa: E402
from sandu.origination import actions as orig  # noqa: E402
from sandu.policy.bundle import load_bundle  # noqa: E402
from sandu.runtime import Runtime  # noqa: E402
from sandu.scoring.risk import load_model  # noqa: E402
from sandu.simulate.stories import STORY_ROWS  # noqa: E402
from sandu.sources.catalog import ALL_SOURCES  # noqa: E402
from sandu.store.db import make_engine  # noqa: E402

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc)  # every process's clock
BUSINESS_DATE = date(2026, 10, 31)
SPREAD = 50
LOADS = {"s2": "S2, again and again", "spread": f"{SPREAD} enterprises in turn, each by its own legal representative"}
MAX_RUNS = 1000
CHILD_TIMEOUT_S = 1200
COLLECTED = re.compile(r"Collected : (\d+)")


def runtime(path: Path) -> Runtime:
    return Runtime(engine=make_engine(f"sqlite:///{path}"), bundle=load_bundle(), model=load_model(), clock=lambda: NOW)


def prepare(path: Path) -> dict[str, list[Applicant]]:
    """A migrated store with the universe, S2 registered under a consent of every scope, and SPREAD more enterprises
    each registered by its own legal representative with such a consent (bench/http_load.py's `spread`): who measures
    what, by load."""
    rt = runtime(path)
    rt.upgrade_schema()
    seed_universe(rt.uow, 1000, 1, BUSINESS_DATE)
    ensure_users(rt, demo_specs())
    s2 = STORY_ROWS[1]
    rep = actor(rt, "rep-s2")
    orig.register(rt, rep, uscc=s2["uscc"], name=s2["name"])
    consent = orig.grant_consent(rt, rep, uscc=s2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement",
                                 valid_days=30)
    loads = {"s2": [Applicant("rep-s2", "", s2["uscc"], consent.id)], "spread": spread(rt, SPREAD)}
    rt.engine.dispose()
    return loads


def child(store: Path, who: list[Applicant], n: int) -> None:
    """`n` measurements, by `who` in turn, on `store` (run under callgrind by `instructions`)."""
    rt = runtime(store)
    reps = [actor(rt, w.username) for w in who]
    for i in range(n):
        w = who[i % len(who)]
        orig.measure(rt, reps[i % len(who)], uscc=w.uscc, consent_id=w.consent_id)
    rt.engine.dispose()


def instructions(store: Path, who: list[Applicant], counts: tuple[int, ...], tmp: Path) -> list[int]:
    """The instructions of a process making each of `counts` measurements (on a copy of `store` each), run side by side."""
    roster = tmp / "who.json"
    roster.write_text(json.dumps([asdict(w) for w in who]))
    procs = []
    for k, n in enumerate(counts):
        copy = tmp / f"run-{k}.db"
        shutil.copy(store, copy)
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--child", str(copy), str(roster), str(n)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        _, err = p.communicate(timeout=CHILD_TIMEOUT_S)
        found = COLLECTED.search(err)
        if p.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run failed (exit {p.returncode}): {err.strip().splitlines()[-1] if err.strip() else 'no output'}")
        out.append(int(found.group(1)))
    return out


def main(warm: int, runs: int, measured: list[str], results: Results) -> None:
    if not (1 <= warm <= MAX_RUNS and 1 <= runs <= MAX_RUNS):
        raise SystemExit(f"--warm and --runs: 1..{MAX_RUNS}")
    if not measured or not set(measured) <= set(LOADS):
        raise SystemExit(f"--loads: some of {', '.join(LOADS)}")
    if shutil.which("valgrind") is None:
        for load in measured:
            results.skipped(f"measurement instructions, {LOADS[load]}", "valgrind is not installed (Debian: apt-get install valgrind)")
        print("valgrind is not installed: nothing measured")
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        store = tmp / "prepared.db"
        loads = prepare(store)
        for load in measured:
            what = LOADS[load]
            few, many = instructions(store, loads[load], (warm, warm + runs), tmp)
            per = (many - few) / runs
            print(f"measurement in process, {what}: {per / 1e6:.3f} M instructions each "
                  f"({warm} measurements: {few / 1e6:.1f} M in all, {warm + runs}: {many / 1e6:.1f} M; callgrind)")
            results.add(f"measurement instructions, {what}", round(per / 1e6, 3), "M instructions",
                        notes=f"callgrind, in process on SQLite: (instructions of {warm + runs} measurements − of {warm}) ÷ {runs}; "
                              "within ~1 % from one run to the next, where the CPU time moves 20 %")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), [Applicant(**w) for w in json.loads(Path(sys.argv[3]).read_text())], int(sys.argv[4]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=SPREAD, help="measurements before the ones counted (caches; every enterprise's first "
                        "decision, so that each counted one supersedes one)")
    parser.add_argument("--runs", type=int, default=50, help="measurements counted")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"which loads, of {','.join(LOADS)}")
    json_option(parser)
    args = parser.parse_args()
    main(args.warm, args.runs, [x for x in args.loads.split(",") if x], Results("measure_instructions", args.json))
