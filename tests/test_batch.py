"""`sandu batch precredit` on the local engine: the same decisions as the online path, bad input refused or rejected."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import threading
import time
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch_support import assert_as_online, corrupt_page
from cli_support import sandu
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.batch.kernel import Models, features, pd_rounded, round_places
from sandu.batch.run import read_ahead, read_metadata, rejects_path, run_precredit
from sandu.batch.schema import AMOUNTS, ASSETS, COLUMNS, MAX_ROW_REASONS, MAX_SHOWN_PROBLEMS, BatchInputError, check_rows, uscc_column_validity
from sandu.demo.seed import universe_frame
from sandu.domain.errors import InvalidInput
from sandu.domain.ids import USCC_ALPHABET, is_valid_uscc, uscc_validity, validate_uscc
from sandu.policy.bundle import load_bundle
from sandu.scoring.risk import PD_PLACES, load_model
from sandu.scoring.tech_config import load_tech_config
from sandu.sources.schemas import MAX_SOURCE_INT, MAX_SOURCE_TEXT, TAX_GRADES

AS_OF = date(2026, 10, 31)
MODELS = Models(load_bundle(), load_model(), load_tech_config(), AS_OF)


@pytest.fixture(scope="module")
def universe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "enterprises.parquet"
    universe_frame(1_000, 5, AS_OF).write_parquet(path)
    return path


def _run(src: Path, out: Path, **kw):
    return run_precredit(MODELS, src, out, **kw)


def test_every_row_is_decided_as_the_online_path_decides_it(universe, tmp_path):
    out = tmp_path / "limits.parquet"
    summary = _run(universe, out, batch_rows=300)
    got = pl.read_parquet(out)
    frame = pl.read_parquet(universe)
    assert summary.decided_rows == got.height == frame.height == 1_005 and summary.rejected_rows == 0
    assert got["uscc"].to_list() == frame["uscc"].to_list()
    feats = features(frame)
    for i, r in enumerate(frame.iter_rows(named=True)):
        profile = assert_as_online(MODELS, r, got.row(i, named=True))
        f = feats.row(i, named=True)
        assert {k: f[k] for k in profile.features} == profile.features
        assert f["collateral"] == [{k: getattr(c, k) for k in ("kind", "appraised_value_fen", "secured_debt_fen")} for c in profile.collateral]
    assert set(got["outcome"]) == {"approve", "partial", "refer", "decline"}
    assert got["eligible"].any() and not got["eligible"].all()


def test_the_versions_and_counts_are_in_the_output_metadata(universe, tmp_path):
    out = tmp_path / "limits.parquet"
    _run(universe, out)
    meta = read_metadata(out)
    assert meta["policy"] == MODELS.bundle.label and meta["policy_sha256"] == MODELS.bundle.sha256
    assert meta["model"] == MODELS.card.label and meta["model_sha256"] == MODELS.card.sha256
    assert meta["tech_config_sha256"] == MODELS.tech.sha256 and meta["as_of"] == "2026-10-31" and meta["engine"] == "local"
    assert meta["input_sha256"] == hashlib.sha256(universe.read_bytes()).hexdigest()
    assert (meta["input_rows"], meta["decided_rows"], meta["rejected_rows"]) == (1_005, 1_005, 0)
    assert pq.read_table(rejects_path(out)).num_rows == 0


def test_the_batch_size_does_not_change_a_decision(universe, tmp_path):
    _run(universe, tmp_path / "a.parquet", batch_rows=97)  # 11 batches, the last one short
    _run(universe, tmp_path / "b.parquet", batch_rows=1_000_000)
    assert pl.read_parquet(tmp_path / "a.parquet").equals(pl.read_parquet(tmp_path / "b.parquet"))


def _write(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_parquet(path)
    return path


def _small(n: int = 20) -> pl.DataFrame:
    return universe_frame(n, 9, AS_OF, include_stories=False)


def test_a_bad_row_is_rejected_with_its_reason_and_the_rest_decided(tmp_path):
    frame = _small().with_row_index()
    bad_check = frame["uscc"][3][:-1] + ("0" if frame["uscc"][3][-1] != "0" else "1")
    frame = frame.with_columns(
        pl.when(pl.col("index") == 3).then(pl.lit(bad_check)).otherwise(pl.col("uscc")).alias("uscc"),
        pl.when(pl.col("index") == 7).then(-1).otherwise(pl.col("revenue_fen_y3")).alias("revenue_fen_y3"),
        pl.when(pl.col("index") == 8).then(pl.lit("Z")).otherwise(pl.col("tax_credit_grade")).alias("tax_credit_grade"),
        pl.when(pl.col("index") == 9).then(10**15 + 1).otherwise(pl.col("headcount")).alias("headcount"),
    ).drop("index")
    src, out = _write(frame, tmp_path / "in.parquet"), tmp_path / "out.parquet"
    summary = _run(src, out, batch_rows=6)
    rejected = pl.read_parquet(rejects_path(out))
    assert rejected["row"].to_list() == [3, 7, 8, 9]
    reasons = rejected["reason"].to_list()
    assert reasons[0].startswith("uscc: check character") and reasons[1] == "revenue_fen_y3: negative (allowed: 0..1000000000000000)"
    assert reasons[2].startswith("tax_credit_grade: not a grade (allowed: A/B/M/C/D)") and reasons[3].startswith("headcount: above 1000000000000000")
    assert rejected["uscc"][0] == bad_check
    decided = pl.read_parquet(out)
    assert summary.decided_rows == decided.height == 16 and bad_check not in decided["uscc"].to_list()
    assert read_metadata(out)["rejected_rows"] == 4 and read_metadata(rejects_path(out)) == read_metadata(out)  # the rejects tied to their run


def test_an_invalid_uscc_on_several_rows_rejects_each_row_and_refuses_nothing(tmp_path):
    """An extract may carry the same placeholder (an empty text, a wrong check character) on several rows: no enterprise,
    so no duplicate — each such row is rejected with its reason and the rest decided. A valid USCC twice still
    refuses the file, also when an invalid one repeats before it."""
    frame = _small(12).with_row_index()
    bad_check = frame["uscc"][2][:-1] + ("0" if frame["uscc"][2][-1] != "0" else "1")
    placeholders = frame.with_columns(
        pl.when(pl.col("index").is_in([2, 5, 9])).then(pl.lit(bad_check))
        .when(pl.col("index").is_in([3, 4])).then(pl.lit("")).otherwise(pl.col("uscc")).alias("uscc")).drop("index")
    out = tmp_path / "out.parquet"
    summary = _run(_write(placeholders, tmp_path / "in.parquet"), out, batch_rows=5)
    rejected = pl.read_parquet(rejects_path(out))
    assert rejected["row"].to_list() == [2, 3, 4, 5, 9] and summary.decided_rows == pl.read_parquet(out).height == 7
    assert rejected["reason"].str.starts_with("uscc: ").all()
    twice = placeholders.with_columns(pl.when(pl.int_range(pl.len()) == 11).then(pl.col("uscc").gather(7)).otherwise(pl.col("uscc")).alias("uscc"))
    with pytest.raises(BatchInputError) as caught:
        _run(_write(twice, tmp_path / "twice.parquet"), tmp_path / "out2.parquet", batch_rows=5)
    assert caught.value.message.startswith(f"uscc: {frame['uscc'][7]} appears 2 times (rows 7, 11); ")


def _reasons_of(row: dict) -> list[str]:
    """A row's reasons, found one value at a time (the reference the column-wise `check_rows` must equal)."""
    found = []
    try:
        validate_uscc(row["uscc"])
    except InvalidInput as exc:
        found.append(f"uscc: {exc.reason}")
    found += [f"{c}: negative (allowed: 0..{MAX_SOURCE_INT})" for c in AMOUNTS if row[c] < 0]
    found += [f"{c}: above {MAX_SOURCE_INT} (allowed: 0..{MAX_SOURCE_INT})" for c in AMOUNTS if row[c] > MAX_SOURCE_INT]
    found += [f"tax_credit_grade: not a grade (allowed: {'/'.join(TAX_GRADES)})"] if row["tax_credit_grade"] not in TAX_GRADES else []
    found += [f"col{k}_kind: longer than {MAX_SOURCE_TEXT} characters" for k in ASSETS if len(row[f"col{k}_kind"]) > MAX_SOURCE_TEXT]
    listed = "/".join(KINDS)
    for k in ASSETS:
        kind = row[f"col{k}_kind"]
        if kind and len(kind) <= MAX_SOURCE_TEXT and kind not in KINDS:
            found.append(f"col{k}_kind: not a kind of the policy's loan-to-value table (allowed: {listed}, or empty: no asset {k})")
        if not kind and (row[f"col{k}_appraised_fen"] > 0 or row[f"col{k}_secured_debt_fen"] > 0):
            found.append(f"col{k}_kind: empty (no asset {k}), yet col{k}_appraised_fen or col{k}_secured_debt_fen is above 0 (allowed: {listed})")
    return found


KINDS = tuple(sorted(MODELS.bundle.secured.ltv))
_SLIPS = {"negative": -1, "above": MAX_SOURCE_INT + 1, "grade": "A级", "kind": "地" * (MAX_SOURCE_TEXT + 1), "uscc": "91330000MA2ABCDE1X",
          "unknown kind": "Residential", "no kind": "", "a value": 10**8}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.sampled_from(sorted(_SLIPS)), st.integers(0, len(AMOUNTS) - 1)), max_size=40))
def test_every_reason_of_a_row_is_given_as_found_value_by_value(slips):
    frame = _small(12)
    for row, slip, k in slips:
        column = {"negative": AMOUNTS[k], "above": AMOUNTS[k], "grade": "tax_credit_grade", "kind": f"col{1 + k % 2}_kind", "uscc": "uscc",
                  "unknown kind": f"col{1 + k % 2}_kind", "no kind": f"col{1 + k % 2}_kind",
                  "a value": f"col{1 + k % 2}_{('appraised_fen', 'secured_debt_fen')[k // 2 % 2]}"}[slip]
        frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(_SLIPS[slip])).otherwise(pl.col(column)).alias(column))
    checks = check_rows(frame, KINDS)
    expected = {i: found for i, row in enumerate(frame.iter_rows(named=True)) if (found := _reasons_of(row))}
    assert checks.rejected.tolist() == sorted(expected) and checks.ok.tolist() == [i not in expected for i in range(frame.height)]
    shown = {i: "; ".join(f[:MAX_ROW_REASONS]) + (f"; … and {len(f) - MAX_ROW_REASONS} more" if len(f) > MAX_ROW_REASONS else "")
             for i, f in expected.items()}
    assert checks.reasons.to_list() == [shown[i] for i in sorted(expected)]


@pytest.mark.parametrize("bad", [MAX_ROW_REASONS - 1, MAX_ROW_REASONS, MAX_ROW_REASONS + 1, 2 * len(AMOUNTS)])
def test_a_row_gives_at_most_its_bound_of_reasons_then_how_many_more(bad):
    broken = [pl.lit(-1).alias(c) for c in AMOUNTS[:bad]] if bad <= len(AMOUNTS) else [pl.lit(-1).alias(c) for c in AMOUNTS]
    frame = _small(2).with_columns(pl.when(pl.int_range(pl.len()) == 1).then(e).otherwise(pl.col(e.meta.output_name())) for e in broken)
    if bad > len(AMOUNTS):
        frame = frame.with_columns(pl.lit("A级").alias("tax_credit_grade"))
        bad = len(AMOUNTS) + 1
    reason = check_rows(frame, KINDS).reasons.to_list()[-1]
    assert reason.count("; ") == min(bad, MAX_ROW_REASONS) - 1 + (bad > MAX_ROW_REASONS)
    assert reason.endswith(f"; … and {bad - MAX_ROW_REASONS} more") == (bad > MAX_ROW_REASONS)
    assert reason.startswith(f"{AMOUNTS[0]}: negative")


@pytest.mark.parametrize("length,reason", [(MAX_SOURCE_TEXT, "not a kind of the policy's loan-to-value table"),
                                           (MAX_SOURCE_TEXT + 1, f"longer than {MAX_SOURCE_TEXT} characters")])
def test_an_unknown_asset_kind_is_refused_at_any_length(length, reason):
    """At the longest text a source may send, an unknown kind is still unknown; one character more, it is too long."""
    frame = _small(2).with_columns(pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("厂" * length)).otherwise(pl.col("col1_kind")).alias("col1_kind"))
    checks = check_rows(frame, KINDS)
    assert checks.rejected.tolist() == [1] and checks.reasons.to_list() == [f"col1_kind: {reason}" + (
        f" (allowed: {'/'.join(KINDS)}, or empty: no asset 1)" if length == MAX_SOURCE_TEXT else "")]


def test_the_edge_values_of_a_row_are_accepted(tmp_path):
    frame = _small(3).with_columns(pl.lit(0).alias("revenue_fen_y3"), pl.lit(10**15).alias("headcount"), pl.lit("D").alias("tax_credit_grade"),
                                   pl.col("queries_3m").cast(pl.UInt32), pl.col("tech_staff").cast(pl.Int16))
    out = tmp_path / "out.parquet"
    assert _run(_write(frame, tmp_path / "in.parquet"), out).rejected_rows == 0


@pytest.mark.parametrize("change,field,words", [
    (lambda f: f.drop("headcount"), "headcount", "column missing"),
    (lambda f: f.rename({"uscc": "USCC"}), "uscc", "column missing (the file has 'USCC': names are case-sensitive)"),
    (lambda f: f.with_columns(pl.col("revenue_fen_y3").cast(pl.Decimal(20, 0))), "revenue_fen_y3", "a decimal column cast to int64"),
    (lambda f: f.with_columns(pl.col("revenue_fen_y3").cast(pl.String)), "revenue_fen_y3", "not integer"),
    (lambda f: f.with_columns(pl.col("revenue_fen_y3").cast(pl.Float64)), "revenue_fen_y3", "not integer"),
    (lambda f: f.with_columns(pl.col("cert_gaoxin").cast(pl.Int8)), "cert_gaoxin", "not boolean"),
    (lambda f: f.with_columns(pl.col("queries_3m").cast(pl.UInt64)), "queries_3m", "is uint64, not integer"),
    (lambda f: f.with_columns(pl.col("tax_credit_grade").cast(pl.Categorical)), "tax_credit_grade", "cast it to string"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("tech_staff")).alias("tech_staff")),
     "tech_staff", "null at row 5"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 11).then(pl.col("uscc").first()).otherwise(pl.col("uscc")).alias("uscc")),
     "uscc", "appears 2 times (rows 0, 11)"),
])
def test_a_bad_file_is_refused_naming_the_column_and_nothing_is_written(tmp_path, change, field, words):
    src, out = _write(change(_small()), tmp_path / "in.parquet"), tmp_path / "out.parquet"
    with pytest.raises(BatchInputError) as caught:
        _run(src, out, batch_rows=4)
    assert caught.value.field == field and words in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_a_duplicate_found_while_deciding_stops_the_run_at_the_next_batch_and_nothing_is_kept(tmp_path):
    """The local engine decides while the USCCs are checked: a duplicate stops it long before the file's end (the check
    of 60 USCCs takes a fraction of one batch's time), and nothing is kept."""
    frame = _small(60)
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 59).then(pl.col("uscc").first()).otherwise(pl.col("uscc")).alias("uscc"))
    src, out = _write(frame, tmp_path / "in.parquet"), tmp_path / "out.parquet"
    took: list[int] = []
    with pytest.raises(BatchInputError) as caught:
        _run(src, out, batch_rows=1, progress=lambda rows, total: took.append(rows))
    assert caught.value.field == "uscc" and "appears 2 times (rows 0, 59)" in caught.value.message
    assert len(took) < 30, "stopped at the batch after the check, not at the end"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
    # the engine's batches were closed by the run, their threads joined, while the error (whose traceback holds the
    # abandoned generator) is still held: not left to the garbage collector, which may run in one of those threads
    assert not [t.name for t in threading.enumerate() if t.name.startswith(("sandu-kernel", "sandu-read"))], caught


def test_a_duplicate_found_after_the_last_batch_still_refuses_the_run(tmp_path, monkeypatch):
    import sandu.batch.run as run

    check = run._check_unique

    def slow(*args):
        time.sleep(1.0)  # the check ends after the file's one batch was decided
        return check(*args)

    monkeypatch.setattr(run, "_check_unique", slow)
    frame = _small(5).with_columns(pl.when(pl.int_range(pl.len()) == 4).then(pl.col("uscc").first()).otherwise(pl.col("uscc")).alias("uscc"))
    src, out = _write(frame, tmp_path / "in.parquet"), tmp_path / "out.parquet"
    with pytest.raises(BatchInputError, match="appears 2 times"):
        _run(src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_a_null_is_found_without_statistics_too(tmp_path):
    frame = _small().with_columns(pl.when(pl.int_range(pl.len()) == 13).then(None).otherwise(pl.col("tax_credit_grade")).alias("tax_credit_grade"))
    src = tmp_path / "in.parquet"
    pq.write_table(frame.to_arrow(), src, write_statistics=False, row_group_size=8)
    with pytest.raises(BatchInputError, match="tax_credit_grade: null at row 13"):
        _run(src, tmp_path / "out.parquet")


def test_every_bad_column_is_named_in_one_error(tmp_path):
    """A bank's extract is mended in one go: the error names each bad column on its line, in the schema's order."""
    frame = _small().drop("headcount").with_columns(pl.col("revenue_fen_y3").cast(pl.String), pl.col("cert_gaoxin").cast(pl.Int8))
    src, out = _write(frame, tmp_path / "in.parquet"), tmp_path / "out.parquet"
    with pytest.raises(BatchInputError) as caught:
        _run(src, out)
    assert caught.value.field == "revenue_fen_y3"  # the first of them in COLUMNS
    assert caught.value.message.splitlines() == [
        "3 columns do not fit the pre-credit schema (README 'batch precredit'):",
        "  revenue_fen_y3: is large_string, not integer (allowed: int8 … int64 or uint8 … uint32 (amounts in whole fen: a decimal column cast to int64))",
        "  headcount: column missing",
        "  cert_gaoxin: is int8, not boolean (allowed: boolean)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


@pytest.mark.parametrize("dropped", [MAX_SHOWN_PROBLEMS, MAX_SHOWN_PROBLEMS + 1, MAX_SHOWN_PROBLEMS + 7])
def test_an_error_shows_at_most_its_bound_of_columns(tmp_path, dropped):
    names = [c for c in COLUMNS if c != "uscc"][:dropped]
    src = _write(_small().drop(names), tmp_path / "in.parquet")
    with pytest.raises(BatchInputError) as caught:
        _run(src, tmp_path / "out.parquet")
    lines = caught.value.message.splitlines()
    assert lines[0] == f"{dropped} columns do not fit the pre-credit schema (README 'batch precredit'):"
    assert lines[1:MAX_SHOWN_PROBLEMS + 1] == [f"  {c}: column missing" for c in names[:MAX_SHOWN_PROBLEMS]]
    assert lines[MAX_SHOWN_PROBLEMS + 1:] == ([f"  … and {dropped - MAX_SHOWN_PROBLEMS} more"] if dropped > MAX_SHOWN_PROBLEMS else [])


def test_nulls_are_named_for_every_column_over_the_whole_file(tmp_path):
    """Row groups of 8: tech_staff null at row 5 (the first group), headcount at rows 9 and 13 (the second), read
    without statistics; each column named once with its first row and its count over the file."""
    row = pl.int_range(pl.len())
    frame = _small().with_columns(pl.when(row == 5).then(None).otherwise(pl.col("tech_staff")).alias("tech_staff"),
                                  pl.when(row.is_in([9, 13])).then(None).otherwise(pl.col("headcount")).alias("headcount"))
    src = tmp_path / "in.parquet"
    pq.write_table(frame.to_arrow(), src, write_statistics=False, row_group_size=8)
    with pytest.raises(BatchInputError) as caught:
        _run(src, tmp_path / "out.parquet")
    assert caught.value.field == "headcount"  # before tech_staff in COLUMNS
    assert caught.value.message.splitlines() == [
        "2 columns hold nulls the schema forbids:",
        "  headcount: null at row 9 (2 nulls in the file) (allowed: a value in every row: the schema forbids nulls in headcount)",
        "  tech_staff: null at row 5 (1 null in the file) (allowed: a value in every row: the schema forbids nulls in tech_staff)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


@pytest.mark.parametrize("statistics", [True, False])
def test_each_column_is_judged_by_its_own_statistics_beside_a_nested_column(tmp_path, statistics):
    """An extra struct column first has two leaf columns: the schema's columns come one place later in the file's
    leaves than among its fields, and a null must still be found in the column that holds it."""
    frame = _small().with_columns(pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("headcount")).alias("headcount"))
    frame = frame.select(pl.struct(a=pl.lit(1), b=pl.lit(2)).alias("extra"), pl.all())
    src = tmp_path / "in.parquet"
    pq.write_table(frame.to_arrow(), src, write_statistics=statistics, row_group_size=8)
    with pytest.raises(BatchInputError, match=r"^headcount: null at row 5 \(1 null in the file\)"):
        _run(src, tmp_path / "out.parquet", batch_rows=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_a_schema_column_given_twice_is_refused(tmp_path):
    table = _small().to_arrow()
    src = tmp_path / "in.parquet"
    pq.write_table(table.append_column("headcount", table.column("headcount")), src)
    with pytest.raises(BatchInputError) as caught:
        _run(src, tmp_path / "out.parquet")
    assert caught.value.message == "headcount: appears 2 times (allowed: each column once)"


@pytest.mark.parametrize("column", ["revenue_fen_y3", "uscc"])
def test_a_corrupt_page_is_one_clear_error_and_nothing_is_left(tmp_path, column):
    src = tmp_path / "in.parquet"
    pq.write_table(_small(200).to_arrow(), src, row_group_size=100, compression="none")
    corrupt_page(src, column, 1)
    with pytest.raises(BatchInputError) as caught:
        _run(src, tmp_path / "out.parquet", batch_rows=50)
    assert caught.value.field == "--input" and caught.value.message.startswith(f"--input: {src} cannot be read: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_an_output_path_that_is_a_directory_is_refused_before_anything_runs(tmp_path):
    src = _write(_small(), tmp_path / "in.parquet")
    (tmp_path / "out.parquet").mkdir()
    with pytest.raises(BatchInputError, match=r"^--output: .*out.parquet exists and is not a file"):
        _run(src, tmp_path / "out.parquet", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


def test_paths_are_refused_saying_what_is_wrong_with_them(tmp_path):
    src = _write(_small(), tmp_path / "in.parquet")
    with pytest.raises(BatchInputError, match=r"^--input: .*nowhere.parquet does not exist \(allowed: an existing Parquet file\)$"):
        _run(tmp_path / "nowhere.parquet", tmp_path / "out.parquet")
    with pytest.raises(BatchInputError, match=r"^--input: .* is not a file"):
        _run(tmp_path, tmp_path / "out.parquet")
    for overwrite in (False, True):  # the input as the output: not "exists … or --overwrite", which would not do
        with pytest.raises(BatchInputError, match=r"^--output: .*in.parquet is the input file \(allowed: another path\)$"):
            _run(src, tmp_path / "." / "in.parquet", overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_an_output_that_cannot_be_put_in_place_takes_its_rejects_with_it(tmp_path, monkeypatch):
    import sandu.batch.run as run

    frame = _small().with_columns(pl.when(pl.int_range(pl.len()) == 2).then(-1).otherwise(pl.col("headcount")).alias("headcount"))
    src, out = _write(frame, tmp_path / "in.parquet"), tmp_path / "out.parquet"
    replace = os.replace

    def failing(a, b):
        if Path(b) == out:
            raise OSError(28, "No space left on device")
        replace(a, b)

    monkeypatch.setattr(run.os, "replace", failing)
    with pytest.raises(BatchInputError) as caught:
        _run(src, out)
    assert caught.value.message.startswith(f"--output: {out} cannot be written: No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_an_input_gone_after_its_checks_is_the_inputs_error_not_the_outputs(tmp_path, monkeypatch):
    """The file is removed once checked (as a cleanup job might): the run's other readers open it by name and fail; the
    error names the input, and nothing is left behind."""
    import sandu.batch.run as run

    src, out = _write(_small(), tmp_path / "in.parquet"), tmp_path / "out.parquet"
    check_nulls = run._check_nulls

    def then_removed(pf, input_path):
        check_nulls(pf, input_path)
        input_path.unlink()

    monkeypatch.setattr(run, "_check_nulls", then_removed)
    with pytest.raises(BatchInputError) as caught:
        _run(src, out)
    assert caught.value.message.startswith(f"--input: {src} cannot be read: "), caught.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_file_appended_to_itself_names_its_first_duplicate_and_the_count(tmp_path):
    frame = _small(30)
    src = _write(pl.concat([frame, frame]), tmp_path / "in.parquet")
    with pytest.raises(BatchInputError) as caught:
        _run(src, tmp_path / "out.parquet", batch_rows=7)
    assert caught.value.message == (f"uscc: {frame['uscc'][0]} appears 2 times (rows 0, 30); 30 USCCs appear more than once "
                                    "(allowed: each enterprise once: remove the duplicates)")


def test_texts_under_one_hash_are_told_apart(tmp_path, monkeypatch):
    """Every USCC given the same hash (a collision, forced): a file of distinct USCCs passes, and a true duplicate
    among the colliding texts is still found and named with its rows."""
    import sandu.batch.run as run

    monkeypatch.setattr(run, "_uscc_hashes", lambda usccs: np.zeros(usccs.len(), dtype=np.uint64))
    frame = _small(12)
    assert _run(_write(frame, tmp_path / "in.parquet"), tmp_path / "out.parquet", batch_rows=5).decided_rows == 12
    twice = frame.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(pl.col("uscc").gather(3)).otherwise(pl.col("uscc")).alias("uscc"))
    with pytest.raises(BatchInputError) as caught:
        _run(_write(twice, tmp_path / "twice.parquet"), tmp_path / "out2.parquet", batch_rows=5)
    assert caught.value.message.startswith(f"uscc: {frame['uscc'][3]} appears 2 times (rows 3, 7); ")
    # the first repeated hash a collision of rows 0 and 1 only, a true duplicate after it (rows 4 and 9): still found
    pair = frame["uscc"].head(2).implode()
    monkeypatch.setattr(run, "_uscc_hashes", lambda usccs: pl.select(pl.when(usccs.is_in(pair)).then(0).otherwise(usccs.hash(seed=0))).to_series().to_numpy())
    later = frame.with_columns(pl.when(pl.int_range(pl.len()) == 9).then(pl.col("uscc").gather(4)).otherwise(pl.col("uscc")).alias("uscc"))
    with pytest.raises(BatchInputError) as caught:
        _run(_write(later, tmp_path / "later.parquet"), tmp_path / "out3.parquet", batch_rows=5)
    assert caught.value.message.startswith(f"uscc: {frame['uscc'][4]} appears 2 times (rows 4, 9); 1 USCC appears more than once")


def test_the_helpers_beside_a_run_stop_when_told(tmp_path):
    import threading

    import sandu.batch.run as run

    frame = _small(30)
    src = _write(pl.concat([frame, frame]), tmp_path / "in.parquet")
    stop = threading.Event()
    assert run.file_sha256(src, stop) == hashlib.sha256(src.read_bytes()).hexdigest()
    with pytest.raises(BatchInputError, match="appears 2 times"):
        run._check_unique(pq.ParquetFile(src), src, 7, stop)
    stop.set()
    assert run.file_sha256(src, stop) is None
    assert run._check_unique(pq.ParquetFile(src), src, 7, stop) is None  # told to stop: nothing more checked, nothing raised


def test_a_failed_run_tells_its_helpers_to_stop_and_fails_at_once(tmp_path, monkeypatch):
    """The USCC check beside the batches would run for as long as the file is long: a run that fails elsewhere sets
    its stop, so that the error reaches the user without waiting for it."""
    import sandu.batch.run as run

    told: list[bool] = []

    def long_check(pf, input_path, batch_rows, stop):
        told.append(stop.wait(timeout=60))  # a very long file's check, ended by the stop

    def failing(models, frame):
        raise RuntimeError("the kernel failed")

    monkeypatch.setattr(run, "_check_unique", long_check)
    monkeypatch.setattr(run, "process", failing)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="the kernel failed"):
        _run(_write(_small(), tmp_path / "in.parquet"), tmp_path / "out.parquet")
    assert told == [True] and time.monotonic() - t0 < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_an_existing_output_is_refused_unless_overwrite(universe, tmp_path):
    out = tmp_path / "limits.parquet"
    out.write_bytes(b"keep me")
    with pytest.raises(BatchInputError, match="--output: .* exists"):
        _run(universe, out)
    assert out.read_bytes() == b"keep me" and not rejects_path(out).exists()
    _run(universe, out, overwrite=True)
    assert pl.read_parquet(out).height == 1_005


@pytest.mark.parametrize("kw,field", [({"engine": "dask"}, "--engine"), ({"batch_rows": 0}, "--batch-rows"), ({"batch_rows": 1_000_001}, "--batch-rows"),
                                      ({"rejects": Path("r.csv")}, "--rejects")])
def test_bad_options_are_refused(universe, tmp_path, kw, field):
    with pytest.raises(BatchInputError) as caught:
        _run(universe, tmp_path / "out.parquet", **kw)
    assert caught.value.field == field


def test_a_file_that_is_not_parquet_is_refused(tmp_path):
    src = tmp_path / "in.parquet"
    src.write_text("uscc,name\n")
    with pytest.raises(BatchInputError, match="--input: .* cannot be read as Parquet"):
        _run(src, tmp_path / "out.parquet")


def test_the_cli_decides_and_refuses_clearly(universe, tmp_path):
    out = tmp_path / "limits.parquet"
    ran = sandu(["batch", "precredit", "--input", str(universe), "--output", str(out), "--as-of", "2026-10-31"])
    assert ran.returncode == 0, ran.stderr
    assert "decided 1,005 of 1,005 enterprises on 2026-10-31 (local)" in ran.stdout
    again = sandu(["batch", "precredit", "--input", str(universe), "--output", str(out), "--as-of", "2026-10-31"])
    assert again.returncode == 2 and "--output:" in again.stderr and "exists" in again.stderr and "Traceback" not in again.stderr
    bad_day = sandu(["batch", "precredit", "--input", str(universe), "--output", str(tmp_path / "x.parquet"), "--as-of", "2026-13-01"])
    assert bad_day.returncode == 2 and "--as-of" in bad_day.stderr
    future = sandu(["batch", "precredit", "--input", str(universe), "--output", str(tmp_path / "f.parquet"), "--as-of", "2099-01-01"])
    assert future.returncode == 2 and "--as-of: 2099-01-01 is after the business date" in future.stderr and not (tmp_path / "f.parquet").exists()


def test_a_run_that_decides_no_enterprise_is_not_a_success(tmp_path):
    """A scheduled job would otherwise publish an empty list of pre-approved enterprises: an extract whose every row is
    rejected (here: every asset kind spelled as the policy does not), or one with no rows, exits 1 — the rejects file
    written, saying why."""
    src = _write(_small(6).with_columns(pl.lit("Residential").alias("col1_kind")), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    ran = sandu(["batch", "precredit", "--input", str(src), "--output", str(out), "--as-of", "2026-10-31"])
    assert ran.returncode == 1 and "no enterprise was decided: 6 rows" in ran.stderr and "every one rejected" in ran.stderr, ran.stderr
    assert pl.read_parquet(rejects_path(out))["reason"].str.contains("col1_kind: not a kind of the policy's loan-to-value table").all()
    empty = sandu(["batch", "precredit", "--input", str(_write(_small(0), tmp_path / "empty.parquet")), "--output", str(tmp_path / "e.parquet"),
                   "--as-of", "2026-10-31"])
    assert empty.returncode == 1 and "no enterprise was decided: 0 rows" in empty.stderr
    some = sandu(["batch", "precredit", "--input", str(_write(_small(6), tmp_path / "fine.parquet")), "--output", str(tmp_path / "s.parquet"),
                  "--as-of", "2026-10-31"])
    assert some.returncode == 0, some.stderr


def test_the_schema_documented_in_the_readme_is_the_one_checked():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### batch precredit"):]
    assert all(f"`{c}`" in section for c in COLUMNS)


usccs = st.one_of(
    st.builds(lambda s: s, st.text(alphabet=USCC_ALPHABET + "IOZSV-a\x00é", min_size=17, max_size=19)),
    st.builds(lambda body: body + USCC_ALPHABET[(31 - sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28),
                                                                                                         strict=True)) % 31) % 31],
              st.text(alphabet="0123456789ANY", min_size=2, max_size=2).flatmap(
                  lambda head: st.text(alphabet="0123456789", min_size=6, max_size=6).flatmap(
                      lambda region: st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9).map(lambda org: head + region + org)))),
    st.sampled_from(["91350100M000100Y43", "91110000600037341L", "911100000000000009", None, 12]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(usccs, max_size=8))
def test_uscc_validity_is_is_valid_uscc(values):
    expected = [is_valid_uscc(v) for v in values]
    assert uscc_validity(values).tolist() == expected
    texts = [v if isinstance(v, str) else None for v in values]  # a column holds texts (and nulls)
    assert uscc_column_validity(pl.Series(texts, dtype=pl.String)).tolist() == [is_valid_uscc(v) for v in texts]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.integers(-10**7, 10**7).map(lambda k: k / 10**7 + 5e-7), st.integers(0, 10**6).map(lambda k: (k + 0.5) / 10**6)),
                min_size=1, max_size=20))
def test_round_places_is_pythons_round(values):
    assert round_places(np.asarray(values, dtype=np.float64)).tolist() == [round(v, 6) for v in values]


def _points_of_pd(card, pd: float) -> float:
    """The points whose PD is `pd` (up to the float arithmetic): the inverse of `Scorecard.logit_of_points`."""
    return card.offset - card.factor * math.log(pd / (1 - pd))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(-2000, 3000), st.integers(0, 10**6 - 1).map(lambda k: (k + 0.5) / 10**6), st.integers(-3, 3)),
                min_size=1, max_size=20))
def test_the_pd_is_rounded_as_the_online_path_rounds_it(values):
    # points anywhere, and points whose PD is within a few bits of a half-millionth (where the last bit decides the rounding)
    card = load_model()
    points, bit = [], 0
    for v in values:
        if isinstance(v, int):
            bit = v  # the next PD's points this many floats away
        elif 0 < v < 1:
            points.append(_nudge(_points_of_pd(card, v), bit))
        else:
            points.append(v)
    if not points:
        return
    want = [Decimal(repr(float(card.pd_of_points(p)))).quantize(PD_PLACES, rounding=ROUND_HALF_UP) for p in points]
    assert pd_rounded(card, np.asarray(points, dtype=np.float64)).to_list() == want
    assert all(math.isfinite(float(w)) for w in want)


def _nudge(x: float, steps: int) -> float:
    for _ in range(abs(steps)):
        x = math.nextafter(x, math.inf if steps > 0 else -math.inf)
    return x


def test_the_pd_at_a_half_millionth_is_rounded_from_its_exact_value():
    card = load_model()
    halves = [p for p in (_points_of_pd(card, (k + 0.5) / 10**6) for k in range(0, 10**6, 997))
              if abs(float(card.pd_of_points(p)) * 1e6 % 1 - 0.5) < 1e-7]  # PDs that land within a hair of the half
    assert len(halves) > 100
    want = [Decimal(repr(float(card.pd_of_points(p)))).quantize(PD_PLACES, rounding=ROUND_HALF_UP) for p in halves]
    assert pd_rounded(card, np.asarray(halves)).to_list() == want
    # Points whose exact PD is a half-millionth exactly, while numpy's exponential (AVX-512 on the machine they were
    # found on) puts it a bit below: rounded from numpy's value they would go down, from the exact one they go up.
    edge = [float.fromhex(h) for h in ("0x1.1b566b6cfc392p+9", "0x1.18d31234c5ed8p+9", "0x1.17c5f1194ded9p+9", "0x1.1798974ab04d6p+9",
                                       "0x1.0e68dd3b50b16p+9", "0x1.0d4cb4e522413p+9")]
    exact = [float(card.pd_of_points(p)) for p in edge]
    assert all(round(pd * 1e6 % 1, 9) == 0.5 for pd in exact)
    assert pd_rounded(card, np.asarray(edge)).to_list() == [Decimal(repr(pd)).quantize(PD_PLACES, rounding=ROUND_HALF_UP) for pd in exact]


def test_read_ahead_gives_every_batch_in_order_and_raises_a_failure_where_it_happens():
    assert list(read_ahead(iter([]))) == []
    assert list(read_ahead(iter([3, None, 1]))) == [3, None, 1]

    def failing():
        yield 1
        raise OSError("disk")

    got = []
    with pytest.raises(OSError, match="disk"):
        for batch in read_ahead(failing()):
            got.append(batch)
    assert got == [1]


def test_an_empty_file_gives_an_empty_output(tmp_path):
    src = _write(_small(0), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    assert _run(src, out).decided_rows == 0
    assert pq.read_table(out).num_rows == 0 and pq.read_schema(out).field("tech_score").type == pa.decimal128(38, 1)


def test_deciding_a_batch_does_not_import_pandas(tmp_path):
    """pyarrow, handed a Python list or a numpy array, imports pandas to ask whether it is a pandas object: 0.3 s
    of a run's start. The local engine's run never does (Spark's does: PySpark needs pandas)."""
    src = _write(_small(30), tmp_path / "in.parquet")
    code = (f"import sys\nfrom pathlib import Path\nfrom datetime import date\nfrom sandu.batch.kernel import Models\n"
            f"from sandu.batch.run import run_precredit\nfrom sandu.policy.bundle import load_bundle\nfrom sandu.scoring.risk import load_model\n"
            f"from sandu.scoring.tech_config import load_tech_config\n"
            f"run_precredit(Models(load_bundle(), load_model(), load_tech_config(), date(2026, 10, 31)), Path({str(src)!r}), "
            f"Path({str(tmp_path / 'out.parquet')!r}))\nprint('pandas' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "False"
