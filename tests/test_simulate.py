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

from sandu.demo.seed import universe_frame, universe_parts, write_universe
from sandu.domain.ids import is_valid_resident_id, is_valid_uscc
from sandu.simulate.stories import STORY_ROWS
from sandu.simulate.universe import MAX_ENTERPRISES, MAX_PARTED, SOURCES, generate, generate_parts, row, source_payloads

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


def _org_bodies(usccs: np.ndarray) -> np.ndarray:
    """The 8-digit body of each USCC's organisation code (after 91 and the 6-digit region)."""
    return np.array([int(u[8:16]) for u in usccs.tolist()], dtype=np.int64)


def test_generate_parts_make_one_universe_whose_rows_never_share_an_identifier():
    parts = list(generate_parts(2_500, 7, AS_OF, part_rows=1_000))
    assert [len(p["uscc"]) for p in parts] == [1_000, 1_000, 500]
    assert all(list(p) == list(parts[0]) and all(len(v) == len(p["uscc"]) for v in p.values()) for p in parts)
    one = generate(1_000, 7, AS_OF)  # part 0 is the universe of one part
    assert all(np.array_equal(parts[0][k], one[k]) for k in one)
    assert not np.array_equal(parts[1]["latent_risk"], parts[0]["latent_risk"]), "each part draws values of its own"
    assert not np.array_equal(parts[2]["latent_risk"], parts[1]["latent_risk"][:500])
    usccs = np.concatenate([p["uscc"] for p in parts])
    assert all(is_valid_uscc(u) for u in usccs.tolist())
    assert all(is_valid_resident_id(r) for p in parts for r in p["legal_rep_id"].tolist())
    bodies = _org_bodies(usccs)
    assert len(np.unique(bodies)) == len(bodies) == 2_500, "no two rows share an organisation code, whatever their region"
    # one bijection of the row's index in the whole: the step from one row's code to the next is the same across parts
    assert len(np.unique(np.diff(bodies) % 10**8)) == 1
    again = list(generate_parts(2_500, 7, AS_OF, part_rows=1_000))
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(parts, again, strict=True) for k in a)


@pytest.mark.parametrize(("n", "part_rows", "message"), [
    (-1, 1_000, "n must be within 0..20,000,000, got -1"),
    (MAX_PARTED + 1, 1_000, "n must be within 0..20,000,000, got 20000001"),
    (10, 0, "part_rows must be within 1..5,000,000, got 0"),
    (10, MAX_ENTERPRISES + 1, "part_rows must be within 1..5,000,000, got 5000001"),
])
def test_generate_parts_refuse_sizes_out_of_range_at_once(n, part_rows, message):
    with pytest.raises(ValueError) as refused:
        generate_parts(n, 1, AS_OF, part_rows)  # refused when called, before a part is asked for
    assert str(refused.value) == message
    assert list(generate_parts(0, 1, AS_OF, 1)) == []
    assert len(next(generate_parts(MAX_PARTED, 1, AS_OF, 2))["uscc"]) == 2  # the largest universe, its first part


def test_write_universe_writes_the_parts_in_order_and_leaves_no_file_when_interrupted(tmp_path):
    path = tmp_path / "universe.parquet"
    assert write_universe(path, 250, 5, AS_OF, part_rows=100) == 250 + len(STORY_ROWS)
    back = pl.read_parquet(path)
    assert back.equals(pl.concat(list(universe_parts(250, 5, AS_OF, part_rows=100))))
    assert back["uscc"].n_unique() == back.height
    assert back.tail(len(STORY_ROWS))["uscc"].to_list() == [r["uscc"] for r in STORY_ROWS]
    one = tmp_path / "one.parquet"  # a universe of one part is `universe_frame`
    assert write_universe(one, 250, 5, AS_OF, include_stories=False) == 250
    assert pl.read_parquet(one).equals(universe_frame(250, 5, AS_OF, include_stories=False))
    empty = tmp_path / "empty.parquet"  # no enterprise at all: the universe's columns, no row
    assert write_universe(empty, 0, 5, AS_OF, include_stories=False) == 0
    assert pl.read_parquet(empty).equals(universe_frame(0, 5, AS_OF, include_stories=False))
    assert universe_frame(0, 5, AS_OF, include_stories=False).schema == back.schema

    seen: list[int] = []

    def interrupt(rows: int) -> None:
        seen.append(rows)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_universe(path, 300, 6, AS_OF, progress=interrupt, part_rows=100)
    assert seen == [100, 100]
    assert pl.read_parquet(path).equals(back), "the file written before is left as it was"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.parquet", "one.parquet", "universe.parquet"], "no partial file is left"


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
        (["--enterprises", "20000001"], "--enterprises: must be within 0..20,000,000 with --out, got 20,000,001"),
    ],
)
def test_cli_simulate_rejects_bad_options_without_a_traceback(tmp_path, args, names):
    proc = _run(["simulate", *args] + ([] if "--out" in args else ["--out", str(tmp_path / "x.parquet")]), tmp_path)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert names in output, output
    assert "Traceback" not in output, output
    assert not (tmp_path / "x.parquet").exists()


def test_cli_simulate_into_the_store_is_bounded_by_what_one_generation_holds(tmp_path):
    proc = _run(["simulate", "--enterprises", "5000001"], tmp_path)
    assert proc.returncode == 2
    assert "--enterprises: must be within 0..5,000,000 (a Parquet file, --out: 0..20,000,000), got 5,000,001" in proc.stderr, proc.stderr
    assert not (tmp_path / "cli.db").exists()
