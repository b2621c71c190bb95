"""Print the mutation score per engine from mutmut's results (run by `make mutate`).

Reads `mutmut results --all true` (one `name: status` line per mutant, names like
`sandu.ledger.interest.x_accrue__mutmut_12`) and prints, per engine, how many
mutants the tests killed. A timeout counts as killed (the mutant changed
behaviour enough to hang a test); "no tests" and "survived" count against.
Exit status 1 when an engine listed in --require is below its goal.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ENGINES = ("domain", "ledger", "policy", "scoring", "sources")
DETECTED = ("killed", "timeout")


def results(mutmut: str) -> list[tuple[str, str]]:
    out = subprocess.run([mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.startswith("sandu."):
            rows.append((name, status.strip()))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mutmut", default=str(Path(sys.executable).with_name("mutmut")))
    parser.add_argument("--require", default="", help="engine=percent pairs, e.g. ledger=90,policy=90")
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), help="report these engines only")
    args = parser.parse_args()
    by_engine: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in results(args.mutmut):
        engine = name.split(".")[1]
        if engine in args.engines:
            by_engine[engine][status] += 1
    goals = {k: float(v) for k, v in (p.split("=") for p in args.require.split(",") if p)}
    print(f"{'engine':<10}{'mutants':>9}{'killed':>9}{'timeout':>9}{'survived':>10}{'no tests':>10}{'score':>9}")
    failed = False
    for engine in sorted(by_engine):
        c = by_engine[engine]
        total = sum(c.values())
        detected = sum(c[s] for s in DETECTED)
        score = 100.0 * detected / total if total else 0.0
        if c["not checked"]:
            print(f"{engine:<10}{total:>9}  ({c['not checked']} not checked yet: run make mutate ENGINES={engine})")
            failed |= engine in goals
            continue
        goal = goals.get(engine)
        mark = "" if goal is None else ("  ✓" if score >= goal else f"  ✗ goal {goal:.0f} %")
        failed |= goal is not None and score < goal
        print(f"{engine:<10}{total:>9}{c['killed']:>9}{c['timeout']:>9}{c['survived']:>10}{c['no tests']:>10}{score:>8.1f}%{mark}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
