"""Reading and writing the data files of `sandu model …`: CSV or Parquet, by the file's suffix (polars)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

SUFFIXES = (".csv", ".parquet")
CSV_SCHEMA_ROWS = 100_000  # rows read to decide a CSV column's type (a column of numbers with text further down is text)
MAX_FILE_BYTES = 20 * 1024**3


class TableError(ValueError):
    """A data file that cannot be read or written: `field` names the option (`--data`, `--out`)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _suffix(path: Path, field: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise TableError(field, f"{path} is neither CSV nor Parquet (allowed suffixes: {', '.join(SUFFIXES)})")
    return suffix


def read_table(path: Path, field: str = "--data") -> tuple[pl.DataFrame, str]:
    """The file's table and the sha256 of its bytes."""
    suffix = _suffix(path, field)
    try:
        blob = path.read_bytes() if path.stat().st_size <= MAX_FILE_BYTES else None
    except OSError as exc:
        raise TableError(field, f"cannot read {path}: {exc.strerror or exc}") from None
    if blob is None:
        raise TableError(field, f"{path} is larger than {MAX_FILE_BYTES // 1024**3} GiB")
    try:
        if suffix == ".csv":
            frame = pl.read_csv(blob, infer_schema_length=CSV_SCHEMA_ROWS, null_values=["", "NA", "null"])
        else:
            frame = pl.read_parquet(blob)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TableError(field, f"{path} is not a readable {suffix[1:].upper()} file: {first[:300]}") from None
    if frame.width == 0:
        raise TableError(field, f"{path} has no columns")
    return frame, hashlib.sha256(blob).hexdigest()


def write_table(frame: pl.DataFrame, path: Path, field: str = "--out") -> None:
    suffix = _suffix(path, field)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            frame.write_csv(path)
        else:
            frame.write_parquet(path)
    except OSError as exc:
        raise TableError(field, f"cannot write {path}: {exc.strerror or exc}") from None
