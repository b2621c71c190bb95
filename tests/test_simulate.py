"""The synthetic universe: deterministic, valid identifiers, plausible shape; Parquet and the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import AS_OF

from sandu.demo.seed import universe_frame
from sandu.domain.ids import is_valid_resident_id, is_valid_uscc
from sandu.simulate.stories import STORY_ROWS
from sandu.simulate.universe import SOURCES, generate, row, source_payloads

N = 20_000


@pytest.fixture(scope="module")
def big() -> dict[str, np.ndarray]:
    return generate(N, 42, AS_OF)


def _money_columns(table: dict[str, np.ndarray]) -> list[str]:
    return [k for k in table if k.endswith("_fen") or "_fen_" in k]


def test_generate_is_deterministic():
    a, b = generate(500, 7, AS_OF), generate(500, 7, AS_OF)
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert np.array_equal(a[k], b[k]), k
    c = generate(500, 8, AS_OF)
    assert not np.array_equal(a["latent_risk"], c["latent_risk"])
    assert not np.array_equal(a["uscc"], c["uscc"])
    assert not np.array_equal(a["revenue_fen_y3"], c["revenue_fen_y3"])
    # A prefix of a larger universe is not required, but the size must be what was asked.
    assert all(len(v) == 500 for v in a.values())


def test_generate_rejects_sizes_out_of_range():
    assert all(len(v) == 0 for v in generate(0, 1, AS_OF).values())
    with pytest.raises(ValueError, match="n must be"):
        generate(-1, 1, AS_OF)


def test_identifiers_are_valid_and_unique(big):
    usccs = big["uscc"].tolist()
    assert all(is_valid_uscc(u) for u in usccs)
    assert len(set(usccs)) == N
    assert all(is_valid_resident_id(r) for r in big["legal_rep_id"].tolist())
    stories = [r["uscc"] for r in STORY_ROWS]
    assert not set(stories) & set(usccs), "a story enterprise collides with the universe"


def test_money_columns_are_non_negative_int64(big):
    cols = _money_columns(big)
    assert len(cols) >= 20 and "revenue_fen_y3" in cols and "loans_outstanding_fen" in cols
    for k in cols:
        assert big[k].dtype == np.int64, k
        assert (big[k] >= 0).all(), k
        assert (big[k] % 100 == 0).all(), k  # built to the yuan
    assert (big["revenue_fen_y3"] > 0).all()


def test_sizes_are_heavy_tailed(big):
    """Log-normal revenue (σ ≈ 1.06): the top 1 % hold about 10 % of all revenue
    (8 % is the bar, ten times less noisy than 10 %), the top 10 % about 40 %."""
    revenue = np.sort(big["revenue_fen_y3"].astype(np.float64))[::-1]
    total = revenue.sum()
    top1, top10 = revenue[: N // 100].sum() / total, revenue[: N // 10].sum() / total
    assert top1 > 0.08, f"top 1 % holds only {top1:.1%} of revenue"
    assert top10 > 0.35, f"top 10 % hold only {top10:.1%} of revenue"
    median = np.median(revenue)
    assert np.mean(revenue) > 1.5 * median
    assert revenue[0] > 30 * median


def test_default_rate_is_plausible_and_tracks_latent_risk(big):
    default = big["default_12m"].astype(bool)
    rate = default.mean()
    assert 0.01 < rate < 0.15, rate
    risk = big["latent_risk"]
    assert risk[default].mean() > risk[~default].mean() + 0.3
    # Observables carry the signal too: worse tax grades default more often.
    grade = big["tax_credit_grade"]
    assert default[grade == "A"].mean() < default[np.isin(grade, ["C", "D"])].mean()


def test_story_rows_are_valid_and_payloads_cover_every_source():
    assert [r["story"] for r in STORY_ROWS] == ["S1", "S2", "S3", "S4", "S5"]
    assert len({r["uscc"] for r in STORY_ROWS}) == 5
    for r in STORY_ROWS:
        assert is_valid_uscc(r["uscc"]), r["story"]
        assert is_valid_resident_id(r["legal_rep_id"]), r["story"]
        payloads = source_payloads(r, AS_OF)
        assert set(payloads) == set(SOURCES)
        assert payloads["tax"]["tax_credit_grade"] == "A"
    assert STORY_ROWS[1]["has_bank_account"] is False  # S2 is not yet a customer
    # A generated row gives a payload of plain JSON values.
    r = row(generate(3, 1, AS_OF), 0)
    p = source_payloads(r, AS_OF)
    assert isinstance(p["tax"]["years"][0]["revenue_fen"], int)
    assert [y["year"] for y in p["tax"]["years"]] == [AS_OF.year - 3, AS_OF.year - 2, AS_OF.year - 1]


def test_universe_frame_round_trips_through_parquet(tmp_path):
    frame = universe_frame(300, 3, AS_OF)
    assert frame.height == 300 + len(STORY_ROWS)
    assert frame["uscc"].n_unique() == frame.height
    assert set(frame.filter(pl.col("story") != "")["story"].to_list()) == {"S1", "S2", "S3", "S4", "S5"}
    path = tmp_path / "universe.parquet"
    frame.write_parquet(path)
    back = pl.read_parquet(path)
    assert back.height == frame.height
    assert back.columns == frame.columns
    assert back.schema == frame.schema
    assert back.equals(frame)
    assert back["revenue_fen_y3"].dtype == pl.Int64


def _sandu_cli() -> list[str]:
    exe = Path(sys.executable).parent / "sandu"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("sandu")
    if found:
        return [found]
    return [sys.executable, "-m", "sandu.cli.main"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SANDU_DATABASE_URL": f"sqlite:///{cwd / 'cli.db'}", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(_sandu_cli() + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_simulate_writes_parquet(tmp_path):
    out = tmp_path / "u" / "universe.parquet"
    proc = _run(["simulate", "--enterprises", "200", "--seed", "1", "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    frame = pl.read_parquet(out)
    assert frame.height == 200 + len(STORY_ROWS)
    assert frame.equals(universe_frame(200, 1, date(2026, 10, 31)))
    assert not (tmp_path / "cli.db").exists(), "--out must not touch the store"


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--enterprises", "-1"], "--enterprises"),
        (["--enterprises", "200", "--as-of", "2026-13-01"], "--as-of"),
        (["--enterprises", "200", "--out", "universe.csv"], "--out"),
    ],
)
def test_cli_simulate_rejects_bad_options_without_a_traceback(tmp_path, args, names):
    proc = _run(["simulate", *args] + ([] if "--out" in args else ["--out", str(tmp_path / "x.parquet")]), tmp_path)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert names in output, output
    assert "Traceback" not in output, output
    assert not (tmp_path / "x.parquet").exists()
