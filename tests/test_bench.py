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
