"""The benchmark scripts keep running as the code changes (their figures are theirs to print)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_SECRET

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_decision_latency_runs_and_prints_its_figures():
    r = subprocess.run([sys.executable, str(BENCH / "decision_latency.py"), "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "latency_ms_p50=" in r.stdout and "latency_ms_p99=" in r.stdout


def test_ledger_throughput_runs_and_prints_its_figures():
    r = subprocess.run([sys.executable, str(BENCH / "ledger_throughput.py"), "10", "--journal", "100", "--rounds", "1"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "service/floor" in r.stdout and "against the empty journal" in r.stdout


def test_eod_speed_runs_and_prints_its_figures():
    r = subprocess.run([sys.executable, str(BENCH / "eod_speed.py"), "--drawings", "50"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "settlement date" in r.stdout and "ledger check ok" in r.stdout


def test_report_portfolio_runs_and_prints_its_figures():
    r = subprocess.run([sys.executable, str(BENCH / "report_portfolio.py"), "--lines", "40"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ledger check ok" in r.stdout and "--format xlsx" in r.stdout and "peak RSS" in r.stdout


def test_scorecard_quality_runs_and_prints_its_figures():
    r = subprocess.run([sys.executable, str(BENCH / "scorecard_quality.py"), "--rows", "5000", "--rounds", "1", "--universe", "2000"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for words in ("| sandu |", "| optbinning Scorecard |", "| toad (chi-merge + WOE + LR) |", "expert scorecard (challenger)", "rows/s"):
        assert words in r.stdout, r.stdout


def test_policy_engine_runs_and_prints_its_figures_and_agrees_with_zen():
    r = subprocess.run([sys.executable, str(BENCH / "policy_engine.py"), "3000", "300", "1000"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for words in ("decision_us_p99=", "rows_per_s=", "ratio table form / zen"):
        assert words in r.stdout, r.stdout
    agreement = next(line for line in r.stdout.splitlines() if "agreement on the" in line)
    compared, agreed = (int(x.replace(",", "")) for x in (agreement.split("the ")[1].split(" rows")[0], agreement.split(": ")[1].split(" (")[0]))
    assert compared > 50 and agreed == compared, agreement  # the JDM of the same tables decides the same


def test_early_warning_runs_and_prints_its_figures():
    r = subprocess.run([sys.executable, str(BENCH / "early_warning.py"), "--lines", "20"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "alerts raised 20 " in r.stdout and "daily scan, nothing new" in r.stdout and "raised 0" in r.stdout, r.stdout


def test_web_pages_runs_and_prints_each_pages_time_and_size():
    r = subprocess.run([sys.executable, str(BENCH / "web_pages.py"), "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for page in ("| applicant | decision |", "| applicant | line + statement |", "| console | queue |", "| console | application detail |"):
        assert page in r.stdout, r.stdout


# -- bench/run: one table of every benchmark's figures -------------------------------------------------------------------

RUN = BENCH / "run"
HEADER = "| benchmark | figure | value | unit | reference (same run) | ratio | vs previous | notes |"


def _runner(path: Path = RUN):
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader

    loader = SourceFileLoader(f"bench_run_{abs(hash(str(path)))}", str(path))
    module = module_from_spec(spec_from_loader(loader.name, loader))
    saved = list(sys.path)
    sys.modules[loader.name] = module  # its dataclasses look their module up
    try:
        loader.exec_module(module)
    finally:
        sys.path[:] = saved
        del sys.modules[loader.name]
    return module


def _table(markdown: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = lines.index(HEADER)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_bench_run_writes_one_table_of_the_figures(tmp_path):
    out = tmp_path / "results.md"
    r = subprocess.run([sys.executable, str(RUN), "--quick", "--only", "decision_latency,profile_assembly", "--out", str(out),
                        "--logs", str(tmp_path / "logs")], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    text = out.read_text()
    assert text.startswith("# sandu benchmark results")
    for words in ("- **When**:", "quick sizes", "- **Where**:", f"{os.cpu_count()} cores", "Python 3.", "SQLite 3.",
                  "PostgreSQL", "- **Code**: commit", "- **Load average**", "- **Result**: 9 rows ok\n"):
        assert words in text, (words, text[:1500])
    rows = _table(text)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert [(c[0], c[1]) for c in rows] == [(row["benchmark"], row["figure"]) for row in sidecar["rows"]]  # a row per figure
    assert {c[0] for c in rows} == {"machine", "decision_latency", "profile_assembly"}
    assert [c[1] for c in rows[:2]] == [f"machine speed: a fixed pure-Python workload, best of 3 ({when} the run)" for when in ("before", "after")]
    assert all(c[3] == "ms" and float(c[2].replace(",", "")) > 0 for c in rows[:2])  # how fast the machine itself was
    by_figure = {c[1]: c for c in rows}
    e2e = by_figure["decision end to end on SQLite, p99"]
    assert e2e[3] == "ms" and float(e2e[2].replace(",", "")) > 0
    assert e2e[4].startswith("the pure step") and float(e2e[5]) >= 1  # the whole decision takes at least its pure step
    concurrent = by_figure["profile: 8 HTTP sources read concurrently, median"]
    assert concurrent[4].startswith("the same 8 reads one after the other") and 0 < float(concurrent[5]) < 1
    for c in rows:
        assert len(c) == 8 and c[3] and c[2] not in ("", "**FAILED**", "skipped"), c
    assert "| decision_latency | `30` |" in text  # the runs, with their sizes
    assert "latency_ms_p99=" in (tmp_path / "logs" / "decision_latency.log").read_text()  # each benchmark's own output is kept


def test_bench_run_reports_a_failing_benchmark_as_failed_and_exits_non_zero(tmp_path):
    copy = tmp_path / "bench"
    shutil.copytree(BENCH, copy, ignore=shutil.ignore_patterns("__pycache__", "results.*"))
    source = (copy / "profile_assembly.py").read_text()
    broken = source.replace("    http(a.http_rounds, a.http_delay_ms, results)", "    raise RuntimeError('made to fail\\nsecond line')")
    assert broken != source
    (copy / "profile_assembly.py").write_text(broken)
    out = tmp_path / "results.md"
    r = subprocess.run([sys.executable, str(copy / "run"), "--quick", "--only", "profile_assembly", "--out", str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 FAILED" in r.stdout and "RuntimeError: made to fail" in r.stdout
    text = out.read_text()
    assert "- **Result**: 4 rows ok, **1 FAILED**" in text  # the machine's speed before and after, and what it measured
    rows = {c[1]: c for c in _table(text)}
    failed = rows["profile_assembly (whole benchmark)"]
    assert failed[2] == "**FAILED**" and failed[7] == "RuntimeError: made to fail", failed  # its error's first line
    assert rows["profile: 8 simulated sources read + profile built, p50"][3] == "ms"  # what it measured before failing is kept
    assert "| profile_assembly | `--runs 200 --http-rounds 2` |" in text and "| failed |" in text


def test_a_machine_speed_probe_that_cannot_run_is_a_failed_row(tmp_path):
    runner = _runner()
    assert runner.machine_speed_ms(str(tmp_path / "no-python")) is None
    row = runner.speed_row("before", None)
    assert row["status"] == "failed" and row["value"] is None and row["benchmark"] == "machine"
    assert runner.speed_row("after", 12.34)["value"] == 12.3


def test_every_benchmark_is_run_by_bench_run_and_an_unlisted_one_fails(tmp_path):
    runner = _runner()
    assert runner.unlisted() == [], "a bench/*.py that bench/run does not run"
    assert all((BENCH / f"{b.name}.py").exists() for b in runner.BENCHMARKS)
    copy = tmp_path / "bench"
    shutil.copytree(BENCH, copy, ignore=shutil.ignore_patterns("__pycache__", "results.*"))
    (copy / "precredit_speed.py").write_text("print('new')\n")
    (failed,) = _runner(copy / "run").unlisted()
    assert failed["status"] == "failed" and "precredit_speed.py is not listed" in failed["notes"]


def test_a_postgresql_that_does_not_answer_is_skipped_with_its_reason_but_fails_with_ci(tmp_path, monkeypatch):
    sys.path.insert(0, str(BENCH))
    try:
        from _results import Results, read
    finally:
        sys.path.remove(str(BENCH))
    monkeypatch.delenv("CI", raising=False)
    results = Results("x", tmp_path / "x.json")
    results.add("a figure", 2.0, "ms", reference="its floor", reference_value=4.0)
    results.skipped("ledger postgresql", "PostgreSQL not reachable: refused")
    rows = read(tmp_path / "x.json")
    assert [(r["status"], r["ratio"]) for r in rows] == [("ok", 0.5), ("skipped", None)] and rows[1]["notes"].endswith("refused")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match="not measured with CI=true"):
        results.skipped("ledger postgresql", "PostgreSQL not reachable: refused")


def test_batch_precredit_runs_and_prints_its_figures(tmp_path):
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, str(BENCH / "batch_precredit.py"), "2000", "--spark-rows", "0", "--batch-rows", "700", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for words in ("floor: polars read + write", "local engine: 2,000 enterprises in", "× the floor (goal ≤ 3); peak RSS", "local engine on 200 enterprises: peak RSS",
                  "local engine on 200 enterprises, every row rejected:"):
        assert words in r.stdout, r.stdout
    rounds = re.search(r"floor/engine by round: (.*) s$", r.stdout, re.M)
    assert rounds and len(rounds.group(1).split(", ")) == 3, r.stdout  # the floor and the engine in turn, three times: the best of each
    rows = json.loads(out.read_text())["rows"]
    assert [row["unit"] for row in rows] == ["s", "MiB", "MiB", "s"] and all(row["status"] == "ok" for row in rows)
    floor_s, engine_s = rows[0]["reference_value"], rows[0]["value"]
    pairs = [tuple(map(float, pair.split("/"))) for pair in rounds.group(1).split(", ")]
    assert floor_s == round(min(f for f, _ in pairs), 2) and engine_s == round(min(e for _, e in pairs), 2)


@pytest.mark.parametrize(("args", "open_drawings"), [(["--requests", "20"], "1,020"), (["--requests", "1", "--rate", "1001", "--seconds", "1"], "1,001")])
def test_http_load_refuses_draw_loads_that_the_line_would_refuse(args, open_drawings):
    """The draw loads run on one line, which takes at most MAX_OPEN_DRAWINGS open drawings (repaid after each loop):
    a run that would pass it is refused before it starts, naming the options, instead of measuring 409s."""
    r = subprocess.run([sys.executable, str(BENCH / "http_load.py"), "--stores", "sqlite", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert f"would leave {open_drawings} drawings open on one line, which takes at most 1,000" in r.stderr, r.stderr[-2000:]
    assert "--rate × --seconds ≤ 1,000" in r.stderr and "HTTP on loopback" not in r.stdout


def test_http_load_runs_draw_loads_the_line_takes():
    """At the edge the line takes (the open loop's 1,000 draws; the closed loop's 20 + 50 × 19 = 970), the run goes
    ahead: with no store named, only the empty FastAPI reference is loaded, in a few seconds."""
    r = subprocess.run([sys.executable, str(BENCH / "http_load.py"), "--stores", "", "--workers", "1", "--requests", "19", "--rate", "1000",
                        "--seconds", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "HTTP on loopback" in r.stdout and "50 clients × 19 = 950 requests" in r.stdout and "= 1000 requests" in r.stdout


def test_http_load_reads_back_the_write_step_of_the_measurements_recorded_since_a_time(sqlite_url):
    """What `bench/http_load.py` reports as a load's write step: each decision recorded since the load began, its
    `timings_ms.record_ms` — in a process of its own, as the script sets the rate limits of the server it starts."""
    script = f"""
import sys
sys.path.insert(0, {str(BENCH)!r})
from datetime import datetime, timezone
import http_load as H
from sandu.demo.users import actor
from sandu.origination import actions as orig
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.sources.catalog import ALL_SOURCES
from sandu.store.db import make_engine

engine = make_engine({sqlite_url!r})
rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model())
rep = actor(rt, "rep-s2")
orig.register(rt, rep, uscc=H.S2["uscc"], name=H.S2["name"])
consent = orig.grant_consent(rt, rep, uscc=H.S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True,
                             purpose="credit_measurement", valid_days=30)
first = orig.measure(rt, rep, uscc=H.S2["uscc"], consent_id=consent.id)
since = datetime.now(timezone.utc)
views = [orig.measure(rt, rep, uscc=H.S2["uscc"], consent_id=consent.id) for _ in range(2)]
after = datetime.now(timezone.utc)
steps = H.write_steps_ms(engine, since)
assert sorted(steps) == sorted(v.timings_ms["record_ms"] for v in views), (steps, first.timings_ms)
assert H.write_steps_ms(engine, after) == []
print("write steps", steps)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SANDU_SECRET_KEY": TEST_SECRET})  # the key the store's resident-ID hashes were made with
    assert r.returncode == 0, r.stderr[-2000:]
    assert "write steps [" in r.stdout


def test_measure_instructions_prepares_its_loads_and_its_child_measures_them(tmp_path, monkeypatch, request):
    """bench/measure_instructions.py without valgrind (its figures are callgrind's): the store it prepares has S2 and
    SPREAD enterprises, each with its legal representative and a consent, and its child process's work — the
    measurements callgrind counts — records a decision for each."""
    from importlib.util import module_from_spec, spec_from_file_location

    from sqlalchemy import create_engine, func, select

    from sandu.settings import get_settings
    from sandu.store import models as m

    # set by the module (and bench/http_load.py, which it imports) on import: put back after the test, and the settings
    # read again then, so that the bench's rate limits stay with this test
    for name, value in (("PYTHONHASHSEED", "0"), ("SANDU_SECRET_KEY", TEST_SECRET), ("SANDU_RATE_MEASURE_PER_MINUTE", None),
                        ("SANDU_RATE_MOVEMENT_PER_MINUTE", None)):
        monkeypatch.setenv(name, os.environ.get(name, value or ""))
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    spec = spec_from_file_location("bench_measure_instructions", BENCH / "measure_instructions.py")
    mi = module_from_spec(spec)
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec.loader.exec_module(mi)
    store = tmp_path / "prepared.db"
    loads = mi.prepare(store)
    assert len(loads["s2"]) == 1 and len(loads["spread"]) == mi.SPREAD == len({w.uscc for w in loads["spread"]})
    mi.child(store, loads["s2"] + loads["spread"][:2], 5)
    engine = create_engine(f"sqlite:///{store}")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(m.Decision)) == 5
    engine.dispose()
    assert mi.COLLECTED.search("==123== Collected : 20530123\n==123== ").group(1) == "20530123"  # callgrind's last line, as it prints it


def test_http_load_reads_the_servers_writer_from_its_metrics_and_records_it(sqlite_url):
    """What `bench/http_load.py` reports of the store's writer under a load: the server's /metrics read as the runtime
    counted its writes (`WriterTotals.of`), and the rows made of two readings (`record_writer`) — the busy share on
    SQLite only, where one writer serves every process; nothing for a load that wrote nothing."""
    script = f"""
import socket, sys, threading, time
sys.path.insert(0, {str(BENCH)!r})
import uvicorn
import http_load as H
from _results import Results
from sandu.api.app import create_app
from sandu.demo.users import actor
from sandu.origination import actions as orig
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.sources.catalog import ALL_SOURCES
from sandu.store.db import make_engine

rt = Runtime(engine=make_engine({sqlite_url!r}), bundle=load_bundle(), model=load_model())
rep = actor(rt, "rep-s2")
orig.register(rt, rep, uscc=H.S2["uscc"], name=H.S2["name"])
consent = orig.grant_consent(rt, rep, uscc=H.S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True,
                             purpose="credit_measurement", valid_days=30)
orig.measure(rt, rep, uscc=H.S2["uscc"], consent_id=consent.id)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
server = uvicorn.Server(uvicorn.Config(create_app(rt), log_level="warning"))
threading.Thread(target=server.run, kwargs={{"sockets": [sock]}}, daemon=True).start()
deadline = time.monotonic() + 15
while not server.started:
    assert time.monotonic() < deadline, "server did not start"
    time.sleep(0.02)
sample = rt.metrics.registry.get_sample_value
read = H.WriterTotals.of(f"http://127.0.0.1:{{sock.getsockname()[1]}}")
assert read == H.WriterTotals(sample("sandu_store_write_held_seconds_count"), sample("sandu_store_write_wait_seconds_sum"),
                              sample("sandu_store_write_held_seconds_sum")), read
assert read.writes >= 3 and read.held_s > 0, read  # the registration, the consent, the measurement
server.should_exit = True

results = Results("http_load", None)
before, after = H.WriterTotals(10, 0.5, 1.0), H.WriterTotals(14, 0.504, 1.010)
H.record_writer(results, "load", "sqlite", before, after, 0.1, 2.0)
H.record_writer(results, "pg load", "postgresql", before, after, 0.1, None)
H.record_writer(results, "idle", "sqlite", before, before, 0.1, 2.0)
rows = {{r["figure"]: r for r in results.rows}}
assert sorted(rows) == ["load: writer busy", "load: writer held per write", "pg load: writer held per write"], sorted(rows)
held = rows["load: writer held per write"]
assert abs(held["value"] - 2.5) < 1e-9 and held["reference_value"] == 2.0 and "at most 400 writes/s" in held["notes"], held
assert "waited 1.00 ms each" in held["notes"], held["notes"]
assert rows["load: writer busy"]["value"] == 10.0 and rows["load: writer busy"]["unit"] == "% of the time"
assert rows["pg load: writer held per write"]["reference_value"] is None
print("writer rows", len(rows))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SANDU_SECRET_KEY": TEST_SECRET})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "writer rows 3" in r.stdout
