"""`sandu batch precredit --engine spark`: the same kernel on PySpark (local mode) gives the local engine's file row for row."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch_support import assert_as_online, corrupt_page

from sandu.batch.kernel import Models
from sandu.batch.run import read_metadata, rejects_path, run_precredit
from sandu.batch.schema import BatchInputError
from sandu.batch.spark import SparkJobFailed, job_failure
from sandu.demo.seed import universe_frame
from sandu.policy.bundle import load_bundle
from sandu.scoring.risk import load_model
from sandu.scoring.tech_config import load_tech_config

pyspark = pytest.importorskip("pyspark", reason="pip install 'sandu[spark]'") if os.environ.get("CI") != "true" else __import__("pyspark")

# PySpark's notice on pandas 3 concerns pandas data; these sessions hand Spark Arrow only (as `sandu.batch.spark` does, which filters it too)
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
AS_OF = date(2026, 10, 31)
MODELS = Models(load_bundle(), load_model(), load_tech_config(), AS_OF)
SRC = Path(__file__).parents[1] / "src"


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers import sandu and polars from this interpreter
    session = (SparkSession.builder.master("local[2]").appName("sandu-test").config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.files.maxPartitionBytes", "1m").getOrCreate())  # several partitions of one file: order across parts
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_and_local_write_the_same_decisions_for_100000_enterprises(spark, tmp_path):
    src = tmp_path / "enterprises.parquet"
    frame = universe_frame(100_000, 13, AS_OF, include_stories=True)
    bad = frame["uscc"][17][:-1] + ("0" if frame["uscc"][17][-1] != "0" else "1")
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 17).then(pl.lit(bad)).otherwise(pl.col("uscc")).alias("uscc")).write_parquet(src, row_group_size=8_000)
    local, remote = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    run_precredit(MODELS, src, local, batch_rows=50_000)
    summary = run_precredit(MODELS, src, remote, engine="spark", batch_rows=25_000)
    a, b = pl.read_parquet(local), pl.read_parquet(remote)
    assert a.height == b.height == 100_004 and summary.rejected_rows == 1
    assert a.equals(b)
    assert spark.read.parquet(str(src)).rdd.getNumPartitions() > 2, "the file was read as several partitions"
    assert pl.read_parquet(rejects_path(local)).equals(pl.read_parquet(rejects_path(remote)))
    meta = read_metadata(remote)
    assert meta["engine"] == "spark" and {k: v for k, v in meta.items() if k != "engine"} == {k: v for k, v in read_metadata(local).items() if k != "engine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["enterprises.parquet", "local.parquet", "local.rejects.parquet", "spark.parquet",
                                                                 "spark.rejects.parquet"]), "the scratch directory is gone"
    rows = pl.read_parquet(src).filter(pl.col("uscc") != bad).head(1_000)
    got = b.filter(pl.col("uscc").is_in(rows["uscc"].implode()))
    assert got["uscc"].to_list() == rows["uscc"].to_list()
    for r, g in zip(rows.iter_rows(named=True), got.iter_rows(named=True), strict=True):
        assert_as_online(MODELS, r, g)


def test_spark_reads_every_file_the_local_engine_reads(spark, tmp_path):
    """Extra columns Spark cannot read (a pandas timestamp in nanoseconds, a time of day, a name twice, a schema
    column's name but for case), the schema's columns in narrower or unsigned types, and names Hadoop reads as a
    pattern or a URI: the same decisions as the local engine, and nothing left beside the output."""
    frame = universe_frame(40, 5, AS_OF).with_columns(pl.col("queries_3m").cast(pl.UInt32), pl.col("tech_staff").cast(pl.Int16),
                                                      pl.col("headcount").cast(pl.UInt8, strict=False).fill_null(255))
    table = frame.to_arrow()
    n = table.num_rows
    extra = {"Headcount": pa.array([-7] * n), "seen_at": pa.array([0] * n, pa.timestamp("ns")), "opens": pa.array([0] * n, pa.time64("ns")),
             "name": pa.array(["again"] * n)}
    table = pa.Table.from_arrays([*table.columns, *extra.values()], names=[*table.column_names, *extra])
    assert table.column_names.count("name") == 2
    src = tmp_path / "in[2026]:x.parquet"
    pq.write_table(table, src)
    local, remote = tmp_path / "local.parquet", tmp_path / "spark[1]:y.parquet"
    run_precredit(MODELS, src, local)
    assert run_precredit(MODELS, src, remote, engine="spark").rejected_rows == 0
    assert pq.read_table(local).equals(pq.read_table(remote)) and pq.read_table(remote).num_rows == n
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, "local.parquet", "local.rejects.parquet", remote.name,
                                                                 "spark[1]:y.rejects.parquet"])


def test_a_corrupt_page_read_by_spark_is_one_line_naming_the_input_and_nothing_is_left(spark, tmp_path):
    """The page's footer and statistics are intact, so the checks before the job read past it: Spark's reader meets it."""
    src = tmp_path / "in.parquet"
    pq.write_table(universe_frame(200, 9, AS_OF).to_arrow(), src, row_group_size=100, compression="none")
    corrupt_page(src, "revenue_fen_y3", 1)
    with pytest.raises(BatchInputError) as caught:
        run_precredit(MODELS, src, tmp_path / "out.parquet", engine="spark")
    assert caught.value.field == "--input" and caught.value.message.startswith(f"--input: {src} cannot be read by Spark: ")
    assert "\n" not in caught.value.message and len(caught.value.message) < 600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_a_failed_job_is_one_line_with_what_the_jvm_said():
    said = ("An error occurred while calling o198.parquet.\n: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 failed\n"
            "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:1)\n"
            "Caused by: java.lang.OutOfMemoryError: Java heap space\n\tat x.y(z.java:1)\nCaused by: something deeper")
    error = job_failure(RuntimeError(said), Path("in.parquet"))
    assert isinstance(error, SparkJobFailed) and error.message == ("Spark's job failed: org.apache.spark.SparkException: Job aborted due to stage "
                                                                   "failure: Task 0 failed (caused by java.lang.OutOfMemoryError: Java heap space)")


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from sandu.cli.main import main; sys.argv = ['sandu', *sys.argv[1:]]; main()", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(SRC), **env})


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spark") / "small.parquet"
    universe_frame(10, 3, AS_OF).write_parquet(path)
    return path


def test_the_cli_starts_its_own_spark_and_says_only_what_it_did(small, tmp_path):
    """A new session on a local master (the CLI's default): the local engine's file, and a quiet terminal — no Spark
    start-up chatter, no PySpark notice about pandas (the job hands Spark none); only the JVM's own incubator notice."""
    out, local = tmp_path / "o.parquet", tmp_path / "local.parquet"
    ran = _cli(["batch", "precredit", "--input", str(small), "--output", str(out), "--engine", "spark", "--as-of", "2026-10-31",
                "--spark-master", "local[1]"], {})
    assert ran.returncode == 0, ran.stderr
    n = pl.read_parquet(small).height
    assert f"decided {n} of {n} enterprises on 2026-10-31 (spark)" in " ".join(ran.stdout.split())
    noise = [line for line in ran.stderr.splitlines() if line.strip() and not line.startswith("WARNING: Using incubator modules")]
    assert noise == [], noise
    run_precredit(MODELS, small, local)
    assert pl.read_parquet(out).equals(pl.read_parquet(local))


def test_a_java_home_pointing_nowhere_is_one_clear_line(small, tmp_path):
    ran = _cli(["batch", "precredit", "--input", str(small), "--output", str(tmp_path / "o.parquet"), "--engine", "spark", "--as-of", "2026-10-31"],
               {"JAVA_HOME": str(tmp_path / "no-java")})
    assert ran.returncode == 2, ran.stderr
    assert f"Spark cannot start: JAVA_HOME={tmp_path / 'no-java'} has no bin/java" in " ".join(ran.stderr.split())
    assert "Traceback" not in ran.stderr and not (tmp_path / "o.parquet").exists()


def test_a_standalone_master_that_does_not_answer_is_named_at_once(small, tmp_path):
    """Spark would try it for a minute and print a hundred lines of the JVM's log; the CLI asks it first."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: refused
        ran = _cli(["batch", "precredit", "--input", str(small), "--output", str(tmp_path / "o.parquet"), "--engine", "spark", "--as-of", "2026-10-31",
                    "--spark-master", f"spark://127.0.0.1:{port}"], {})
    assert ran.returncode == 2, ran.stderr
    assert f"Spark cannot start: no master of spark://127.0.0.1:{port} answers (127.0.0.1:{port}: Connection refused)" in " ".join(ran.stderr.split())
    assert len(ran.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.parquet").exists()


def test_a_master_is_asked_only_when_it_is_a_standalone_one():
    from sandu.batch.spark import master_problem

    assert master_problem("local[*]") is None and master_problem("yarn") is None
    assert master_problem("spark://nohost") == "--spark-master spark://nohost: 'nohost' is not host:port"
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            dead = closed.getsockname()[1]
            assert master_problem(f"spark://127.0.0.1:{port}") is None
            assert master_problem(f"spark://127.0.0.1:{dead},127.0.0.1:{port}") is None  # one of a high-availability pair answers
            assert "no master of" in (master_problem(f"spark://127.0.0.1:{dead}") or "")


def test_a_java_that_fails_is_named_in_one_line(small, tmp_path):
    java = tmp_path / "broken-jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\nexit 1\n")
    java.chmod(0o755)
    ran = _cli(["batch", "precredit", "--input", str(small), "--output", str(tmp_path / "o.parquet"), "--engine", "spark", "--as-of", "2026-10-31",
                "--spark-master", "local[1]"], {"JAVA_HOME": str(tmp_path / "broken-jdk")})
    assert ran.returncode == 2, ran.stderr
    assert "Spark cannot start on local[1]:" in ran.stderr and "Traceback" not in ran.stderr


def test_without_pyspark_the_error_says_what_to_install(small, tmp_path):
    ran = subprocess.run([sys.executable, "-c", "import sys; sys.modules['pyspark'] = None; from sandu.cli.main import main; "
                          f"sys.argv = ['sandu', 'batch', 'precredit', '--input', {str(small)!r}, '--output', {str(tmp_path / 'o.parquet')!r}, "
                          "'--engine', 'spark', '--as-of', '2026-10-31']; main()"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert ran.returncode == 2 and "PySpark is not installed" in ran.stderr and "pip install 'sandu[spark]'" in " ".join(ran.stderr.split())
