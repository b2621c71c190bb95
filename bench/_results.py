"""Machine-readable results for the benchmarks: rows of figures that `bench/run` gathers into one table.

Every benchmark prints its figures in its own words; given `--json FILE` it also writes them as rows:

    {"figure": "ledger sqlite: draw + repay, empty journal", "value": 312.4, "unit": "commits/s",
     "reference": "raw commit floor (core insert, same engine)", "reference_value": 801.0, "ratio": 0.39,
     "notes": "2000 ops, 5 rounds", "status": "ok"}

The reference is a figure measured by the same run on the same machine (the raw commit floor, optbinning on the same
split, zen-engine on the same rows, the pure step inside the end-to-end one), so that the ratio stays comparable from one
machine and one load to another; ratio = value / reference value, and it is empty where there is no natural reference.
A part of a benchmark that could not run is a row of status "skipped" with the reason (PostgreSQL not reachable); with
CI=true that is an error instead. A check the benchmark makes on the way that does not hold (the ledger after end of
day) is a row of status "failed". The file is rewritten after every row, so that a benchmark that fails half-way still
leaves the figures it measured before failing.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

FORMAT = 1


class Results:
    """The rows one benchmark run writes; `path` None: collected in memory only (the benchmark run on its own)."""

    def __init__(self, benchmark: str, path: str | os.PathLike | None):
        self.benchmark = benchmark
        self.path = Path(path) if path else None
        self.rows: list[dict] = []
        self._flush()

    def add(self, figure: str, value: float | int, unit: str, *, reference: str | None = None, reference_value: float | int | None = None,
            ratio: float | None = None, notes: str = "") -> None:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{figure}: value must be a finite number, not {value!r}")
        if (reference is None) != (reference_value is None):
            raise ValueError(f"{figure}: a reference needs both its name and its value")
        if ratio is None and reference_value:
            ratio = value / reference_value
        self.rows.append({"figure": figure, "value": value, "unit": unit, "reference": reference, "reference_value": reference_value,
                          "ratio": ratio, "notes": notes, "status": "ok"})
        self._flush()

    def skipped(self, figure: str, reason: str) -> None:
        """A part that was not measured, and why; with CI=true a PostgreSQL that does not answer is an error, not a skip."""
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(f"{figure}: not measured with CI=true ({reason})")
        self.rows.append({"figure": figure, "value": None, "unit": "", "reference": None, "reference_value": None, "ratio": None,
                          "notes": reason, "status": "skipped"})
        self._flush()

    def failed(self, figure: str, reason: str) -> None:
        """A check the benchmark makes along the way that did not hold (the run goes on; bench/run reports it as failed)."""
        self.rows.append({"figure": figure, "value": None, "unit": "", "reference": None, "reference_value": None, "ratio": None,
                          "notes": reason, "status": "failed"})
        self._flush()

    def _flush(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "benchmark": self.benchmark, "rows": self.rows}, ensure_ascii=False, indent=1))
        tmp.replace(self.path)


def read(path: str | os.PathLike) -> list[dict]:
    """The rows a benchmark wrote (none if it wrote no file)."""
    p = Path(path)
    if not p.exists():
        return []
    data = json.loads(p.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{p}: results format {data.get('format')!r}, expected {FORMAT}")
    return data["rows"]


def json_option(parser) -> None:
    """The `--json FILE` option every benchmark takes."""
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the figures as rows of JSON (bench/run reads them)")
