"""The benchmark scripts keep running as the code changes (their figures are theirs to print)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_web_pages_runs_and_prints_each_pages_time_and_size():
    r = subprocess.run([sys.executable, str(BENCH / "web_pages.py"), "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for page in ("| applicant | decision |", "| applicant | line + statement |", "| console | queue |", "| console | application detail |"):
        assert page in r.stdout, r.stdout
