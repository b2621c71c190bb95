"""The `sandu` command as a user runs it: real processes, real SQLite files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_SECRET

SANDU = str(Path(sys.executable).with_name("sandu"))


def run(args: list[str], tmp_path: Path, timeout: int = 180, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SANDU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "200", "SANDU_SECRET_KEY": TEST_SECRET,
           **(env_extra or {})}
    return subprocess.run([SANDU, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def test_stories_prints_five_matching_rows(tmp_path):
    r = run(["stories"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("│ S")]
    assert [line.split("│")[1].strip() for line in rows] == ["S1", "S2", "S3", "S4", "S5"]
    assert all(line.rstrip().rstrip("│").strip().endswith("✓") for line in rows), r.stdout
    assert "1.00亿" in r.stdout  # S1's comprehensive credit above 1亿 (9,520万 project loan + 500万 经营快贷)
    assert "repaid" in r.stdout and "accrued" in r.stdout  # S4 repays ten days after drawing (its ✓ checks the interest)
    future = run(["stories", "--as-of", "2999-01-01"], tmp_path)
    assert future.returncode == 2 and "--as-of" in future.stderr and "Traceback" not in future.stderr


def test_db_upgrade_eod_and_bad_input(tmp_path):
    r = run(["db", "upgrade"], tmp_path)
    from alembic.script import ScriptDirectory

    from sandu.store.migrate import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert r.returncode == 0 and f"schema at revision {head}" in r.stdout, r.stderr
    r = run(["eod", "--date", "2026-11-20"], tmp_path)
    assert r.returncode == 0 and "end of day through 2026-11-20" in r.stdout and "last closed 2026-11-20" in r.stdout, r.stderr
    r = run(["eod", "--date", "2026-11-20"], tmp_path)  # idempotent
    assert r.returncode == 0 and "already closed" in r.stdout, r.stderr
    r = run(["eod", "--date", "2026-11-19"], tmp_path)  # never a date before the last closed
    assert r.returncode != 0 and "business_date" in r.stdout + r.stderr
    r = run(["ledger", "check"], tmp_path)
    assert r.returncode == 0 and "every balance kept on a row equals the journal" in r.stdout, r.stdout + r.stderr
    r = run(["eod", "--date", "2026-13-01"], tmp_path)
    assert r.returncode == 2 and "--date" in r.stderr and "YYYY-MM-DD" in r.stderr and "Traceback" not in r.stderr
    r = run(["simulate", "--enterprises", "-1"], tmp_path)
    assert r.returncode == 2 and "--enterprises" in r.stderr and "Traceback" not in r.stderr
    r = run(["simulate", "--enterprises", "10", "--out", "x.csv"], tmp_path)
    assert r.returncode == 2 and ".parquet" in r.stderr
    r = run(["referrals", "--branch", "龙湾"], tmp_path)
    assert r.returncode == 0 and "referral queue — 龙湾: 0 waiting" in r.stdout, r.stdout + r.stderr
    r = run(["referrals", "--limit", "0"], tmp_path)
    assert r.returncode == 2 and "limit" in r.stderr and "1..200" in r.stderr and "Traceback" not in r.stderr


def test_simulate_into_the_store_is_idempotent(tmp_path):
    first = run(["simulate", "--enterprises", "50", "--seed", "3"], tmp_path)
    assert first.returncode == 0 and "added 55 enterprises" in first.stdout, first.stdout + first.stderr
    again = run(["simulate", "--enterprises", "50", "--seed", "3"], tmp_path)
    assert again.returncode == 0 and "added 0 enterprises" in again.stdout


def test_serve_refuses_a_number_of_processes_outside_its_bounds(tmp_path):
    for workers in ("0", "9"):
        r = run(["serve", "--port", "8999", "--workers", workers], tmp_path, timeout=60)
        assert r.returncode == 2 and "--workers: must be within 1..8" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_serve_refuses_a_port_in_use_with_a_clear_error(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        r = run(["serve", "--port", port, "--workers", "2"], tmp_path, timeout=60)
    assert r.returncode == 2 and f"--port: cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_a_metrics_directory_it_cannot_make_with_a_clear_error(tmp_path, workers):
    """PROMETHEUS_MULTIPROC_DIR, where the server's processes keep their metrics, under a plain file: refused before
    anything is served, naming the variable."""
    (tmp_path / "a-file").write_text("not a directory")
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = str(probe.getsockname()[1])
    r = run(["serve", "--port", port, "--workers", workers], tmp_path, timeout=60,
            env_extra={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "a-file" / "metrics")})
    assert r.returncode == 2 and "PROMETHEUS_MULTIPROC_DIR: cannot make or empty the directory of the server's metrics" in r.stderr, r.stderr
    assert "allowed: a directory this user may create and write" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "is serving" not in r.stdout, r.stdout
