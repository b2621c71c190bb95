"""The Spark engine: the pre-credit kernel on PySpark, through Arrow.

Spark reads the input file (with each row's number in it, ``_metadata.row_index``),
runs `sandu.batch.kernel.process_arrow` — the function the local engine runs — on
each Arrow batch of each partition (`DataFrame.mapInArrow`) and writes the results as
Parquet parts into a scratch directory beside the output, one part per partition (no
shuffle, the kernel runs once per row); `spark_batches` then streams the parts back by
their first row number, checking that the rows come in the file's order, for
`sandu.batch.run` to split into decisions and rejects exactly as for the local engine.

A Spark that cannot start is `SparkUnavailable`, one line naming what is missing:
PySpark itself, Java (``JAVA_HOME`` pointing nowhere, or no ``java`` on the ``PATH``),
or the error the JVM gave. A job that fails is one line too: the input named when Spark
could not read it (`BatchInputError`), else `SparkJobFailed` with what the JVM said.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sandu.batch.kernel import ROW, Models, process_arrow
from sandu.batch.schema import COLUMNS, BatchInputError
from sandu.domain.errors import SanduError


class SparkUnavailable(SanduError):
    code = "spark_unavailable"


class SparkJobFailed(SanduError):
    code = "spark_job_failed"


MAX_SAID_CHARS = 300  # of the JVM's words in one error line


def job_failure(exc: BaseException, input_path: Path) -> SanduError:
    """One line for a failed Spark job, from the JVM's error (thousands of lines of stack): a file Spark could not read
    is the input's fault, named as the local engine names it; anything else is the job's, with what the JVM said and
    its first cause."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = next((line.lstrip(": ") for line in lines if "Exception:" in line or "Error:" in line), lines[0] if lines else type(exc).__name__)
    cause = next((line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")), None)
    if "FAILED_READ_FILE" in said:
        return BatchInputError("--input", f"{input_path} cannot be read by Spark: {(cause or said)[:MAX_SAID_CHARS]}", "a Parquet file that reads whole")
    return SparkJobFailed(f"Spark's job failed: {said[:MAX_SAID_CHARS]}" + (f" (caused by {cause[:MAX_SAID_CHARS]})" if cause else ""))


LOGGING = Path(__file__).with_name("log4j2.properties")  # a local master's Spark logs errors only


@contextmanager
def _no_pandas_notice() -> Iterator[None]:
    """PySpark 4 warns, when a session starts and a job is planned, that it does not yet fully support pandas 3.
    The engine hands Spark no pandas data (Arrow batches in and out, `mapInArrow`), so the notice says nothing of
    this run, and `tests/test_batch_spark.py` proves its output identical to the local engine's row for row."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


def java_problem() -> str | None:
    """Why Spark would find no Java, or None."""
    home = os.environ.get("JAVA_HOME")
    if home:
        if not (Path(home) / "bin" / "java").is_file():
            return f"JAVA_HOME={home} has no bin/java: point JAVA_HOME at a Java 17 installation (or unset it to use the java on the PATH)"
        return None
    if shutil.which("java") is None:
        return "no Java: install Java 17 (java on the PATH) or set JAVA_HOME"
    return None


MASTER_CONNECT_TIMEOUT_S = 5.0  # a standalone master that does not answer this soon is named (Spark itself tries for a minute)


def master_problem(master: str) -> str | None:
    """Why a standalone master (``spark://host:port``, or several for high availability, comma-separated) cannot be
    used — none of them accepts a connection — or None (also for any other kind of master, left to Spark)."""
    if not master.startswith("spark://"):
        return None
    tried = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            return f"--spark-master {master}: {address!r} is not host:port"
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=MASTER_CONNECT_TIMEOUT_S):
                return None
        except OSError as exc:
            tried.append(f"{address}: {exc.strerror or type(exc).__name__}")
    return f"no master of {master} answers ({'; '.join(tried)}): start it, or use --spark-master local[*] on this machine"


def start_spark(master: str) -> tuple[Any, bool]:
    """(the active SparkSession or a new one on `master`, whether this call started it)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("Spark cannot start: PySpark is not installed (pip install 'sandu[spark]': pyspark>=4.0,<5 and pyarrow)") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    problem = java_problem() or master_problem(master)
    if problem is not None:
        raise SparkUnavailable(f"Spark cannot start: {problem}")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers run this interpreter, which imports sandu
    builder = (SparkSession.builder.master(master).appName("sandu-precredit").config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").config("spark.sql.execution.arrow.pyspark.enabled", "true"))
    if master.startswith("local"):  # one machine: Spark listens on loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOGGING.as_uri()}")  # the driver logs errors only
    try:
        with _no_pandas_notice():
            spark = builder.getOrCreate()
    except Exception as exc:  # the JVM's failure, whatever its class: one line, the cause named
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        said = next((line.lstrip(": ") for line in lines if "Exception:" in line or "Error:" in line), lines[0] if lines else type(exc).__name__)
        raise SparkUnavailable(f"Spark cannot start on {master}: {said[:MAX_SAID_CHARS]}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True


def plain(schema: pa.Schema) -> pa.Schema:
    """`schema` with large strings and lists as plain ones (what Spark's Arrow types map to)."""
    def one(t: pa.DataType) -> pa.DataType:
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pa.string()
        if pa.types.is_large_list(t) or pa.types.is_list(t):
            return pa.list_(one(t.value_type))
        return t
    return pa.schema([pa.field(f.name, one(f.type)) for f in schema])


def _in_row_order(scratch: Path) -> list[Path]:
    """The part files that hold rows, by their first row. A partition of one Parquet file is a run of its row
    groups, and the kernel keeps the order within it: each part is a run of consecutive rows (checked as read)."""
    firsts = []
    for part in scratch.glob("part-*.parquet"):
        pf = pq.ParquetFile(part)
        if pf.metadata.num_rows:
            firsts.append((next(pf.iter_batches(batch_size=1, columns=[ROW])).column(0)[0].as_py(), part))
    assert len({first for first, _ in firsts}) == len(firsts), "each row is in one part"
    return [part for _, part in sorted(firsts)]


def _readable(spark: Any, input_path: Path, file_schema: pa.Schema, at: Path) -> Any:
    """A reader of the input as the local engine reads it: the kernel's columns only, as the file types them — a
    column the kernel does not read is never converted (a pandas timestamp in nanoseconds, a time of day, a name
    twice: what Spark refuses to read) — from a path Spark takes as it is (a link named here: Hadoop reads ``[…]`` in a
    path as a pattern, and refuses a ``:``). The types are those Spark gives the same columns in an empty file of them."""
    at.mkdir()
    empty = at / "columns.parquet"
    pq.write_table(pa.schema([file_schema.field(c) for c in COLUMNS]).empty_table(), empty)
    link = at / "input.parquet"
    link.symlink_to(input_path.resolve())
    return spark.read.schema(spark.read.parquet(str(empty)).schema).parquet(str(link))


def spark_batches(models: Models, input_path: Path, schema: pa.Schema, rows: int, batch_rows: int, master: str, scratch: Path,
                  file_schema: pa.Schema) -> Generator[pa.Table, None, None]:
    """The kernel's output (`schema`: `sandu.batch.kernel.BATCH_SCHEMA`) for every row of the file (whose Arrow schema is
    `file_schema`, its columns checked), in the file's order."""
    spark, started = start_spark(master)
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    out_schema = plain(schema)
    reading = scratch.with_name(scratch.name + ".input")  # `_readable`'s

    def kernel(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from process_arrow(models, batch).cast(out_schema).to_batches()

    try:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        spark.conf.set("spark.sql.caseSensitive", "true")  # the schema's names exactly, as the local engine reads them: `Headcount` is another column
        try:
            df = _readable(spark, input_path, file_schema, reading).select(*(F.col(c) for c in COLUMNS), F.col("_metadata.row_index").alias(ROW))
            with _no_pandas_notice():
                df.mapInArrow(kernel, from_arrow_schema(out_schema)).write.mode("overwrite").parquet(str(scratch))
        except Exception as exc:  # the JVM's error, whatever its class (Py4J's): one line
            raise job_failure(exc, input_path) from None
        expected = 0
        for part in _in_row_order(scratch):
            for batch in pq.ParquetFile(part).iter_batches(batch_size=batch_rows):
                numbers = batch.column(ROW).to_numpy()
                if not np.array_equal(numbers, np.arange(expected, expected + batch.num_rows)):
                    raise RuntimeError(f"Spark's output is not in the file's order at row {expected} ({part.name})")
                expected += batch.num_rows
                yield pa.Table.from_batches([batch])
        if expected != rows:
            raise RuntimeError(f"Spark returned {expected:,} rows for {rows:,}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(reading, ignore_errors=True)
        if started:
            spark.stop()
