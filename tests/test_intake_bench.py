"""bench/profile_assembly.py keeps running as the code changes (its figures are its own to print)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_profile_assembly_runs_and_prints_its_figures():
    r = subprocess.run([sys.executable, str(BENCH / "profile_assembly.py"), "--runs", "20", "--http-rounds", "1", "--http-delay-ms", "20"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    for words in ("(a) 8 simulated sources", "latency_ms_p50=", "latency_ms_p99=", "concurrent read_all wall_ms_p50=", "sequential sum wall_ms_p50="):
        assert words in r.stdout, r.stdout
