"""Pre-credit in batch (`sandu batch precredit`): the local engine against the Parquet floor, and Spark.

Prints, for a synthetic universe of ROWS enterprises written to Parquet (`sandu simulate --out`):
  * the floor: polars reading the file and writing it back (the least any Parquet-in, Parquet-out job costs);
  * the local engine over the same file: seconds, rows/s, the ratio to the floor (goal ≤ 3) and its peak RSS —
    the floor and the engine measured in turn ROUNDS times, the best of each (one run of either moves 10–20 % on a
    shared machine);
  * the local engine over a tenth of the rows: its peak RSS — memory follows the batch, not the file, so the two
    peaks stay close; and the same tenth with every row rejected (a systematic slip in an extract), against its time;
  * the Spark engine (local[2]) over SPARK_ROWS enterprises: seconds and rows/s (the JVM's start included).
Each engine runs in a child process of its own, so that its peak RSS is its own (not the universe's generation).

Usage: .venv/bin/python bench/batch_precredit.py [ROWS] [--spark-rows N] [--batch-rows N] [--json FILE]   (defaults 1000000, 100000, 100000)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl
from _results import Results, json_option

AS_OF = date(2026, 10, 31)
MAX_ROWS = 10_000_000
SEED = 7
ROUNDS = 3  # the floor and the local engine on the whole file, in turn: the ratio is of the best of each


def child(engine: str, src: str, out: str, batch_rows: int) -> None:
    """Run one engine in this process and print its seconds and peak RSS as JSON."""
    from sandu.batch.kernel import Models
    from sandu.batch.run import run_precredit
    from sandu.policy.bundle import load_bundle
    from sandu.scoring.risk import load_model
    from sandu.scoring.tech_config import load_tech_config

    models = Models(load_bundle(), load_model(), load_tech_config(), AS_OF)
    t0 = time.perf_counter()
    summary = run_precredit(models, Path(src), Path(out), engine=engine, batch_rows=batch_rows, overwrite=True, spark_master="local[2]")
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "rss_mib": peak_rss_mib(), "decided": summary.decided_rows, "rejected": summary.rejected_rows}))


def peak_rss_mib() -> float:
    """This process's peak RSS. Linux: VmHWM, which exec resets (ru_maxrss keeps the forking parent's peak)."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(engine: str, src: Path, out: Path, batch_rows: int) -> dict:
    ran = subprocess.run([sys.executable, __file__, "--child", engine, str(src), str(out), str(batch_rows)], capture_output=True, text=True, check=False)
    if ran.returncode != 0:
        raise RuntimeError(f"{engine} engine failed: {(ran.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(ran.stdout.strip().splitlines()[-1])


def universe(n: int, path: Path) -> int:
    from sandu.demo.seed import write_universe

    return write_universe(path, n, SEED, AS_OF, include_stories=False)  # part by part: ten million rows fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--spark-rows", type=int, default=100_000, help="0: no Spark figure")
    ap.add_argument("--batch-rows", type=int, default=100_000)
    ap.add_argument("--child", nargs=4, metavar=("ENGINE", "IN", "OUT", "BATCH_ROWS"), help=argparse.SUPPRESS)
    json_option(ap)
    args = ap.parse_args()
    if args.child:
        engine, src, out, batch_rows = args.child
        child(engine, src, out, int(batch_rows))
        return
    if not 10 <= args.rows <= MAX_ROWS or not 0 <= args.spark_rows <= MAX_ROWS:
        ap.error(f"ROWS must be within 10..{MAX_ROWS:,} and --spark-rows within 0..{MAX_ROWS:,}")
    results = Results("batch_precredit", args.json)
    with tempfile.TemporaryDirectory(prefix="sandu-bench-batch-") as tmp:
        d = Path(tmp)
        src, small = d / "enterprises.parquet", d / "small.parquet"
        t0 = time.perf_counter()
        n = universe(args.rows, src)
        tenth = universe(max(10, args.rows // 10), small)
        print(f"universe: {n:,} enterprises ({src.stat().st_size / 2**20:,.0f} MiB Parquet) in {time.perf_counter() - t0:.1f} s (not counted)")

        floors, runs = [], []
        for _ in range(ROUNDS):  # interleaved, so that a slow spell of the machine weighs on both; the best of each
            t0 = time.perf_counter()
            pl.read_parquet(src).write_parquet(d / "copy.parquet")
            floors.append(time.perf_counter() - t0)
            runs.append(run_child("local", src, d / "limits.parquet", args.batch_rows))
            assert runs[-1]["decided"] + runs[-1]["rejected"] == n
        floor_s = min(floors)
        local = min(runs, key=lambda r: r["seconds"]) | {"rss_mib": max(r["rss_mib"] for r in runs)}
        shown = ", ".join(f"{f:.2f}/{r['seconds']:.2f}" for f, r in zip(floors, runs, strict=True))
        print(f"floor: polars read + write of the same file: {floor_s:.2f} s (best of {ROUNDS})")
        ratio = local["seconds"] / floor_s
        print(f"local engine: {n:,} enterprises in {local['seconds']:.2f} s (best of {ROUNDS}) = {n / local['seconds']:,.0f} rows/s, "
              f"{ratio:.1f}× the floor (goal ≤ 3); peak RSS {local['rss_mib']:,.0f} MiB; floor/engine by round: {shown} s")
        results.add(f"batch precredit, local engine, {n:,} enterprises (Parquet in and out)", round(local["seconds"], 2), "s",
                    reference="polars read + write of the same Parquet file", reference_value=round(floor_s, 2),
                    notes=f"goal ratio ≤ 3; each the best of {ROUNDS} rounds, floor and engine in turn (by round: {shown} s); "
                          f"{n / local['seconds']:,.0f} rows/s; batches of {args.batch_rows:,}")
        results.add(f"batch precredit, local engine, peak RSS at {n:,} enterprises", round(local["rss_mib"]), "MiB")

        part = run_child("local", small, d / "limits-small.parquet", args.batch_rows)
        print(f"local engine on {tenth:,} enterprises: peak RSS {part['rss_mib']:,.0f} MiB ({local['rss_mib'] / part['rss_mib']:.2f}× at ten times the rows)")
        results.add(f"batch precredit, local engine, peak RSS at {n:,} vs {tenth:,} enterprises", round(local["rss_mib"]), "MiB",
                    reference=f"peak RSS at {tenth:,}", reference_value=round(part["rss_mib"]), notes="memory follows the batch, not the file")

        slipped = d / "slipped.parquet"  # an extract's systematic slip: every row refused (two reasons each), none decided
        pl.read_parquet(small).with_columns(pl.lit(-1).alias("headcount"), pl.lit("A级").alias("tax_credit_grade")).write_parquet(slipped)
        refused = run_child("local", slipped, d / "limits-slipped.parquet", args.batch_rows)
        assert refused["rejected"] == tenth and refused["decided"] == 0
        print(f"local engine on {tenth:,} enterprises, every row rejected: {refused['seconds']:.2f} s (all decided: {part['seconds']:.2f} s)")
        results.add(f"batch precredit, local engine, {tenth:,} enterprises every one rejected (two reasons each)", round(refused["seconds"], 2), "s",
                    reference=f"the same {tenth:,} decided", reference_value=round(part["seconds"], 2),
                    notes="the reasons found column by column: a file of bad rows costs no more than a good one")

        if args.spark_rows:
            spark_src = d / "spark.parquet"
            m = universe(args.spark_rows, spark_src)
            spark = run_child("spark", spark_src, d / "limits-spark.parquet", args.batch_rows)
            same = run_child("local", spark_src, d / "limits-spark-local.parquet", args.batch_rows)
            identical = pl.read_parquet(d / "limits-spark.parquet").equals(pl.read_parquet(d / "limits-spark-local.parquet"))
            print(f"spark engine (local[2]): {m:,} enterprises in {spark['seconds']:.2f} s = {m / spark['seconds']:,.0f} rows/s "
                  f"(the local engine: {same['seconds']:.2f} s); outputs identical: {identical}")
            results.add(f"batch precredit, Spark engine local[2], {m:,} enterprises", round(spark["seconds"], 2), "s",
                        reference="the local engine, same file", reference_value=round(same["seconds"], 2), notes="JVM start included")
            if not identical:
                results.failed("batch precredit, Spark output = local output", "the two engines' files differ")


if __name__ == "__main__":
    main()
