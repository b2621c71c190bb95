"""Run a pre-credit batch: a Parquet file of enterprises in, a Parquet file of decisions out.

`run_precredit` checks everything that can refuse the whole file before a row is
kept — the output path (refused when it exists, unless `overwrite`, and when it is not a
file), the schema (every bad column named at once), nulls (from the file's statistics, read
where they are absent), unique USCCs (one pass over that column: 8 bytes a row, more passes
only to name a duplicate; the local engine starts deciding meanwhile, and
a duplicate stops the run at the next batch, before anything is kept; Spark, whose job
runs the whole file before handing anything back, waits for it) — then streams the file through the kernel
(`sandu.batch.kernel.process`) in batches of `batch_rows`, on the local engine
(pyarrow + polars, in this process; the next batch is read and the last one written in
threads while a batch is decided, one batch each way) or on Spark (`sandu.batch.spark`). Decisions go
to the output file, rejected rows with their reason to the rejects file; both are
written under temporary names and renamed only when the run is complete, so a run
that fails leaves nothing behind. A part of the input that cannot be read, or an output
that cannot be written, is a `BatchInputError` naming which, never a traceback. The output's Parquet metadata holds the versions:
policy label and hash, scorecard label and hash, tech config label and hash, the
as-of day, the input's sha256 and the row counts; the rejects file holds the same, tying it to its run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sandu.batch.kernel import BATCH_SCHEMA, OUTPUT_SCHEMA, REJECT, ROW, Models, process
from sandu.batch.schema import COLUMNS, MAX_SHOWN_ROWS, BatchInputError, Nulls, check_schema, find_nulls, refuse_nulls
from sandu.domain.ids import is_valid_uscc

DEFAULT_BATCH_ROWS = 100_000
MAX_BATCH_ROWS = 1_000_000
MAX_INPUT_ROWS = 100_000_000
HASH_CHUNK_BYTES = 8 << 20
T = TypeVar("T")
ENGINES = ("local", "spark")
METADATA_KEY = b"sandu.precredit"
REJECTS_SCHEMA = pa.schema([("row", pa.int64()), ("uscc", pa.string()), ("reason", pa.string())])


@dataclass(frozen=True)
class Summary:
    input_rows: int
    decided_rows: int
    rejected_rows: int
    output: Path
    rejects: Path
    metadata: dict[str, Any]


def rejects_path(output: Path) -> Path:
    """Where the rejected rows go by default: beside the output (``limits.parquet`` → ``limits.rejects.parquet``)."""
    return output.with_name(output.stem + ".rejects.parquet")


def _check_paths(input_path: Path, output: Path, rejects: Path, overwrite: bool) -> None:
    if not input_path.exists():
        raise BatchInputError("--input", f"{input_path} does not exist", "an existing Parquet file")
    if not input_path.is_file():
        raise BatchInputError("--input", f"{input_path} is not a file", "an existing Parquet file")
    for name, path in (("--output", output), ("--rejects", rejects)):
        if path.suffix != ".parquet":
            raise BatchInputError(name, f"{path} does not end in .parquet", "a path ending in .parquet")
        if path.resolve() == input_path.resolve():  # before "exists": --overwrite would not make it right
            raise BatchInputError(name, f"{path} is the input file", "another path")
        if path.exists() and not path.is_file():
            raise BatchInputError(name, f"{path} exists and is not a file", "a new path, or an existing file with --overwrite")
        if path.exists() and not overwrite:
            raise BatchInputError(name, f"{path} exists", "a new path, or --overwrite to replace it")
        if not path.parent.is_dir():
            raise BatchInputError(name, f"the directory {path.parent} does not exist", "a path in an existing directory")
    if output.resolve() == rejects.resolve():
        raise BatchInputError("--rejects", "is the output file", "another path")


def _unreadable(input_path: Path, exc: BaseException) -> BatchInputError:
    first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return BatchInputError("--input", f"{input_path} cannot be read: {first}", "a Parquet file that reads whole")


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def input_batches(pf: pq.ParquetFile, input_path: Path, batch_rows: int, columns: list[str], stop: threading.Event | None = None,
                  ) -> Iterator[pa.RecordBatch]:
    """The file's batches of `columns` (no more once `stop` is set); a part of the file that cannot be read (a corrupt
    page, the file cut short) is `BatchInputError` naming the input, not a traceback."""
    batches = pf.iter_batches(batch_size=batch_rows, columns=columns)
    while not _stopped(stop):
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(input_path, exc) from None
        yield batch


def _reader(input_path: Path) -> pq.ParquetFile:
    """Another reader of the input, for a thread of its own: a file gone or changed since it was opened is the input's
    error, not the output's."""
    try:
        return pq.ParquetFile(input_path)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(input_path, exc) from None


def open_input(input_path: Path) -> pq.ParquetFile:
    try:
        pf = pq.ParquetFile(input_path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BatchInputError("--input", f"{input_path} cannot be read as Parquet: {str(exc).splitlines()[0]}", "a Parquet file") from None
    check_schema(pf.schema_arrow)
    if pf.metadata.num_rows > MAX_INPUT_ROWS:
        raise BatchInputError("--input", f"{pf.metadata.num_rows:,} rows", f"at most {MAX_INPUT_ROWS:,} rows in one run: split the file")
    return pf


def _check_nulls(pf: pq.ParquetFile, input_path: Path) -> None:
    """No nulls in the schema's columns: the row groups' statistics say so, or the row group's columns are read.
    Every row group is checked, so that the error names each column that holds a null, with its first row and its
    count. (A column's statistics are found by its path among the file's leaf columns: an extra nested column has
    several.)"""
    leaf = {pf.metadata.schema.column(i).path: i for i in range(pf.metadata.num_columns)}
    first = 0
    found: dict[str, Nulls] = {}
    for g in range(pf.metadata.num_row_groups):
        group = pf.metadata.row_group(g)
        unsure = []
        for name in COLUMNS:
            stats = group.column(leaf[name]).statistics if name in leaf else None
            if stats is None or not stats.has_null_count or stats.null_count > 0:
                unsure.append(name)
        if unsure:
            try:
                read = pf.read_row_group(g, columns=unsure)
            except (pa.ArrowException, OSError) as exc:
                raise _unreadable(input_path, exc) from None
            find_nulls(pl.from_arrow(read), first, tuple(unsure), found)
        first += group.num_rows
    refuse_nulls(found)


def _uscc_hashes(usccs: pl.Series) -> np.ndarray:
    return usccs.hash(seed=0).to_numpy()


def _check_unique(pf: pq.ParquetFile, input_path: Path, batch_rows: int, stop: threading.Event | None = None) -> None:
    """Every USCC once: their 64-bit hashes sorted in place (8 bytes a row); only when some repeat, the repeated
    hashes are taken in the order of their first row and the texts under each counted, until one text repeats — each
    a pass over the column a batch at a time, so that a file of duplicates needs no more memory than a good one.
    Returns early, having checked nothing more, once `stop` is set (the run failed elsewhere)."""
    hashes = np.empty(pf.metadata.num_rows, dtype=np.uint64)
    at = 0
    for batch in input_batches(pf, input_path, batch_rows, ["uscc"], stop):
        h = _uscc_hashes(pl.from_arrow(batch.column(0)))
        hashes[at:at + h.size] = h
        at += h.size
    if _stopped(stop):  # the hashes are not all there: nothing to conclude
        return
    hashes.sort()
    repeated = hashes[1:][hashes[1:] == hashes[:-1]]  # sorted: each repeated hash once where it changes
    repeated = repeated[np.concatenate(([True], repeated[1:] != repeated[:-1]))] if repeated.size else repeated
    del hashes
    if repeated.size == 0:
        return
    unseen = np.iinfo(np.int64).max
    first = np.full(repeated.size, unseen, dtype=np.int64)  # each repeated hash's first row
    at = 0
    for batch in input_batches(pf, input_path, batch_rows, ["uscc"], stop):
        h = _uscc_hashes(pl.from_arrow(batch.column(0)))
        at_or_after = np.minimum(np.searchsorted(repeated, h), repeated.size - 1)  # membership by binary search
        hit = np.flatnonzero(repeated[at_or_after] == h)
        which, earliest = np.unique(at_or_after[hit], return_index=True)  # rows come in order: the first seen is first
        new = first[which] == unseen
        first[which[new]] = hit[earliest[new]] + at
        at += h.size
    if _stopped(stop):
        return
    passed = 0  # repeated hashes that were no duplicate to refuse: a collision, or an invalid USCC its rows are rejected for
    for k in np.argsort(first, kind="stable"):  # a hash whose texts all differ was a collision (2⁻⁶⁴ a pair): the next one
        texts = _texts_under(pf, input_path, batch_rows, repeated[k], stop)
        # An invalid USCC is no enterprise: each of its rows is rejected with its reason (`check_rows`), however many there are.
        twice = [(rows, count, uscc) for uscc, (count, rows) in texts.items() if count > 1 and is_valid_uscc(uscc)]
        if _stopped(stop):
            return
        if not twice:
            passed += 1
            continue
        rows, count, uscc = min(twice)
        shown = ", ".join(map(str, rows)) + (" …" if count > len(rows) else "")
        n = repeated.size - passed  # the repeated hashes not looked into counted as one repeated USCC each
        raise BatchInputError("uscc", f"{uscc} appears {count} times (rows {shown}); {n} USCC{'s' if n > 1 else ''} appear{'' if n > 1 else 's'} "
                              "more than once", "each enterprise once: remove the duplicates")


def _texts_under(pf: pq.ParquetFile, input_path: Path, batch_rows: int, hash_value: np.uint64, stop: threading.Event | None,
                 ) -> dict[str, tuple[int, list[int]]]:
    """Each USCC whose hash is `hash_value`: how many rows hold it and the first `MAX_SHOWN_ROWS` of them."""
    texts: dict[str, tuple[int, list[int]]] = {}
    at = 0
    for batch in input_batches(pf, input_path, batch_rows, ["uscc"], stop):
        s = pl.from_arrow(batch.column(0))
        hit = np.flatnonzero(_uscc_hashes(s) == hash_value)
        if hit.size:
            found = pl.DataFrame({"uscc": s.gather(hit), "row": hit + at}).group_by("uscc", maintain_order=True).agg(
                pl.len().alias("count"), pl.col("row").head(MAX_SHOWN_ROWS))
            for uscc, count, rows in found.iter_rows():
                seen, kept = texts.get(uscc, (0, []))
                texts[uscc] = (seen + count, kept + rows[:MAX_SHOWN_ROWS - len(kept)])
        at += s.len()
    return texts


def file_sha256(path: Path, stop: threading.Event | None = None) -> str | None:
    """The file's sha256, or None when `stop` is set before the end (checked at every chunk)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            if _stopped(stop):
                return None
            digest.update(chunk)
    return digest.hexdigest()


def _input_sha256(input_path: Path, stop: threading.Event) -> str | None:
    try:
        return file_sha256(input_path, stop)
    except OSError as exc:
        raise _unreadable(input_path, exc) from None


def versions(models: Models) -> dict[str, str]:
    b, c, t = models.bundle, models.card, models.tech
    return {"policy": b.label, "policy_sha256": b.sha256, "model": c.label, "model_sha256": c.sha256, "tech_config": t.label,
            "tech_config_sha256": t.sha256, "as_of": models.as_of.isoformat()}


def output_arrow_schema() -> pa.Schema:
    return pl.DataFrame(schema=OUTPUT_SCHEMA).to_arrow().schema


def batch_arrow_schema() -> pa.Schema:
    return pl.DataFrame(schema=BATCH_SCHEMA).to_arrow().schema


def read_ahead(batches: Iterator[T]) -> Generator[T, None, None]:
    """The items of `batches` in order, the next one read (in a thread: Parquet decoding releases the GIL) while
    this one is decided: one batch ahead, no more. A failure to read is raised where that batch is asked for."""
    end = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandu-read") as pool:
        ahead = pool.submit(next, batches, end)
        while (batch := ahead.result()) is not end:
            ahead = pool.submit(next, batches, end)
            yield batch  # type: ignore[misc]


KERNELS_IN_FLIGHT = 2  # batches decided at once (threads: polars releases the GIL), so both cores work; results in order


def local_batches(models: Models, pf: pq.ParquetFile, input_path: Path, batch_rows: int) -> Generator[pa.Table, None, None]:
    """The local engine: each batch of the file through the kernel, in this process — up to KERNELS_IN_FLIGHT batches
    at once, handed on in the file's order (memory: that many batches, plus the one read ahead)."""
    def decide(batch: pa.RecordBatch, first: int) -> pa.Table:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        return process(models, frame.with_columns(pl.int_range(first, first + frame.height, dtype=pl.Int64).alias(ROW))).to_arrow()

    first = 0
    flying: deque[Future[pa.Table]] = deque()
    # the reading is closed with this generator: its thread is joined by the thread that closes it, never left to the
    # garbage collector, which may run in a thread of a pool being shut down ("cannot join current thread")
    with (closing(read_ahead(input_batches(pf, input_path, batch_rows, list(COLUMNS)))) as reading,
          ThreadPoolExecutor(max_workers=KERNELS_IN_FLIGHT, thread_name_prefix="sandu-kernel") as pool):
        for batch in reading:
            if len(flying) == KERNELS_IN_FLIGHT:
                yield flying.popleft().result()
            flying.append(pool.submit(decide, batch, first))
            first += batch.num_rows
        while flying:
            yield flying.popleft().result()


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def run_precredit(models: Models, input_path: Path, output: Path, *, engine: str = "local", rejects: Path | None = None, overwrite: bool = False,
                  batch_rows: int = DEFAULT_BATCH_ROWS, progress: Callable[[int, int], None] | None = None, spark_master: str = "local[*]") -> Summary:
    """Decide every enterprise of `input_path`; see the module's docstring. `progress` is called with the rows each batch
    took and the rows of the file."""
    if engine not in ENGINES:
        raise BatchInputError("--engine", f"{engine!r} is not an engine", "/".join(ENGINES))
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or not 1 <= batch_rows <= MAX_BATCH_ROWS:
        raise BatchInputError("--batch-rows", f"{batch_rows!r}", f"an integer 1..{MAX_BATCH_ROWS:,}")
    models.bundle.lpr_on(models.as_of)  # the policy prices on this day, or nothing is read
    rejects = rejects or rejects_path(output)
    _check_paths(input_path, output, rejects, overwrite)
    pf = open_input(input_path)
    _check_nulls(pf, input_path)
    if engine == "spark":
        _check_unique(pf, input_path, batch_rows)
        from sandu.batch.spark import spark_batches

        batches = spark_batches(models, input_path, batch_arrow_schema(), pf.metadata.num_rows, batch_rows, spark_master,
                                output.with_name(f".sandu-precredit-{os.getpid()}.spark"), pf.schema_arrow)  # not the output's name: Hadoop refuses some
    else:
        batches = local_batches(models, pf, input_path, batch_rows)
    out_tmp, rejects_tmp = _temporary(output), _temporary(rejects)
    decided = rejected = 0
    try:
        # the engine's batches are closed when the run ends, also when it fails midway: their threads are joined here
        with (closing(batches), pq.ParquetWriter(out_tmp, output_arrow_schema()) as writer,
              pq.ParquetWriter(rejects_tmp, REJECTS_SCHEMA) as rejects_writer, ThreadPoolExecutor(max_workers=3, thread_name_prefix="sandu-batch") as pool):
            # beside the batches (hashing and writing release the GIL); told to stop when the run fails, so that its error
            # reaches the user at once rather than when they would have ended (the pool waits for them)
            stop = threading.Event()
            digest = pool.submit(_input_sha256, input_path, stop)
            unique = pool.submit(_check_unique, _reader(input_path), input_path, batch_rows, stop) if engine == "local" else None

            def write(good: pa.Table, bad: pa.Table) -> None:
                writer.write_table(good.cast(writer.schema))
                rejects_writer.write_table(bad.cast(REJECTS_SCHEMA))

            try:
                written: Future[None] | None = None  # one batch written while the next is decided
                for table in batches:
                    if unique is not None and unique.done():
                        unique.result()  # a duplicate USCC stops the run here
                    reason = table.column(REJECT)
                    if reason.null_count == table.num_rows:  # nothing rejected: no copy
                        good, bad = table.drop_columns([ROW, REJECT]), table.slice(0, 0)
                    else:
                        ok = reason.is_null()
                        good, bad = table.filter(ok).drop_columns([ROW, REJECT]), table.filter(pa.compute.invert(ok))
                    bad = bad.select([ROW, "uscc", REJECT]).rename_columns(REJECTS_SCHEMA.names)
                    if written is not None:
                        written.result()  # in order, and a failed write stops the run
                    written = pool.submit(write, good, bad)
                    decided += good.num_rows
                    rejected += bad.num_rows
                    if progress is not None:
                        progress(table.num_rows, pf.metadata.num_rows)
                if written is not None:
                    written.result()
                if unique is not None:
                    unique.result()
                if decided + rejected != pf.metadata.num_rows:
                    raise RuntimeError(f"the engine returned {decided + rejected:,} rows for {pf.metadata.num_rows:,}")
                input_sha256 = digest.result()
                assert input_sha256 is not None, "the input was hashed whole (nothing stopped it)"
                meta = {**versions(models), "engine": engine, "input": input_path.name, "input_sha256": input_sha256,
                        "input_rows": pf.metadata.num_rows, "decided_rows": decided, "rejected_rows": rejected}
                writer.add_key_value_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})
                rejects_writer.add_key_value_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})  # tied to its run
            except BaseException:
                stop.set()
                raise
        os.replace(rejects_tmp, rejects)
        try:
            os.replace(out_tmp, output)
        except OSError:
            rejects.unlink(missing_ok=True)  # the run failed: its rejects go with it
            raise
    except OSError as exc:  # the input is read through `input_batches`, `_reader` and `_input_sha256`: what is left is the output
        raise BatchInputError("--output", f"{output} cannot be written: {exc.strerror or exc}",
                              "a path in a writable directory, on a disk with room") from None
    finally:
        for tmp in (out_tmp, rejects_tmp):
            tmp.unlink(missing_ok=True)
    return Summary(pf.metadata.num_rows, decided, rejected, output, rejects, meta)


def read_metadata(path: Path) -> dict[str, Any]:
    """The versions and counts a run wrote into its output."""
    return json.loads(pq.ParquetFile(path).metadata.metadata[METADATA_KEY])
