"""A drop folder of a bank's batch extracts as a source: one file per source,
``{folder}/{source}.csv``, ``.parquet`` or ``.json`` (exactly one of them), read
with polars. A JSON file is an array of flat objects, one per row.

Columns (`LAYOUTS`). Every file has ``uscc``; amounts are integer fen and counts are
integers, ``0..MAX_SOURCE_INT``. Extra columns are ignored; a missing column refuses
the whole file.

======================  ==========================================================  ==============
file                    columns                                                     one row per
======================  ==========================================================  ==============
tax                     uscc, year, revenue_fen, vat_fen, cit_fen, rd_expense_fen,  (uscc, year)
                        tax_credit_grade (A, B, M, C, D; the same on every year)
invoices                uscc, months, sales_invoice_fen, sales_invoice_count,       uscc
                        customer_count
social_insurance        uscc, headcount, headcount_12m_ago, tech_staff,             uscc
                        arrears_months
utilities               uscc, electricity_kwh_12m, electricity_kwh_prev_12m,        uscc
                        arrears (true/false, 1/0)
ip                      uscc, invention_patents, utility_models,                    uscc
                        software_copyrights, certifications (names joined by ";",
                        empty for none; a list column in Parquet also does)
credit_bureau           uscc, loans_outstanding_fen, secured_debt_fen,              uscc
                        overdue_count_24m, max_overdue_days_24m, queries_3m;
                        optional: court_enforcements (公共记录 · 强制执行; an
                        empty cell, or no such column, says "not reported")
bank_flows              uscc, months, inflow_fen, outflow_fen                       uscc
collateral              uscc, asset_id, kind, appraised_value_fen,                  (uscc, asset_id)
                        secured_debt_fen; a row with the four asset columns
                        empty says "registered, no assets"
======================  ==========================================================  ==============

The payloads assembled are those `sandu.simulate.universe.source_payloads` produces:
tax ``{"tax_credit_grade", "years": [{"year", "revenue_fen", …}]}`` with the years
before `as_of`'s year, oldest first; collateral ``{"assets": [{"id", "kind", …}]}`` in
file order; the others the row's columns without ``uscc``.

Every cell is read as text, whatever the format (a Parquet integer 5 reads "5", a
float 5.0 reads "5.0" and is refused), and checked by one rule. A malformed row — a
missing or invalid USCC, a missing value, a wrong type, a negative or too large
amount, a future or impossible year, an unknown grade — is rejected, that row only;
so is every row of a duplicated key, and every tax row of an enterprise whose rows
disagree on its grade. `rejected(source)` lists them as `Rejection(row, column,
reason)`, `row` counting records from 1 (in a CSV, the line is row + 1). The good rows
are served. An enterprise all of whose rows were rejected reads ``invalid``; one
with no row, ``no_record``. The file is read again when its mtime or size changes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from sandu.domain.errors import show
from sandu.domain.ids import is_valid_uscc
from sandu.intake.outcome import ReadOutcome, clip
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import MAX_SOURCE_INT, MAX_SOURCE_TEXT, MIN_TAX_YEAR, TAX_GRADES

FORMATS = ("csv", "parquet", "json")
CERT_SEPARATOR = ";"
MAX_REJECTIONS_QUOTED = 3  # rejections quoted in an `invalid` outcome's reason; all are in `rejected`
_DIGITS = re.compile(r"[0-9]+")

# column → kind. Kinds: uscc, int, year, grade, bool, text, certs.
_AMOUNTS = ("revenue_fen", "vat_fen", "cit_fen", "rd_expense_fen")
LAYOUTS: dict[str, dict[str, str]] = {
    "tax": {"uscc": "uscc", "year": "year", **dict.fromkeys(_AMOUNTS, "int"), "tax_credit_grade": "grade"},
    "invoices": {"uscc": "uscc", **dict.fromkeys(("months", "sales_invoice_fen", "sales_invoice_count", "customer_count"), "int")},
    "social_insurance": {"uscc": "uscc", **dict.fromkeys(("headcount", "headcount_12m_ago", "tech_staff", "arrears_months"), "int")},
    "utilities": {"uscc": "uscc", "electricity_kwh_12m": "int", "electricity_kwh_prev_12m": "int", "arrears": "bool"},
    "ip": {"uscc": "uscc", **dict.fromkeys(("invention_patents", "utility_models", "software_copyrights"), "int"), "certifications": "certs"},
    "credit_bureau": {
        "uscc": "uscc",
        **dict.fromkeys(("loans_outstanding_fen", "secured_debt_fen", "overdue_count_24m", "max_overdue_days_24m", "queries_3m"), "int"),
    },
    "bank_flows": {"uscc": "uscc", "months": "int", "inflow_fen": "int", "outflow_fen": "int"},
    "collateral": {"uscc": "uscc", "asset_id": "text", "kind": "text", "appraised_value_fen": "int", "secured_debt_fen": "int"},
}
# column → kind of the columns a file may leave out: absent, or an empty cell, is "not reported" (the key is left out
# of the payload, as the bureau leaves it out), never zero
OPTIONAL: dict[str, dict[str, str]] = {"credit_bureau": {"court_enforcements": "int"}}
KEYS: dict[str, tuple[str, ...]] = {s: ("uscc",) for s in ALL_SOURCES} | {"tax": ("uscc", "year"), "collateral": ("uscc", "asset_id")}
_ASSET_COLUMNS = ("asset_id", "kind", "appraised_value_fen", "secured_debt_fen")
assert set(LAYOUTS) == set(ALL_SOURCES)


@dataclass(frozen=True)
class Rejection:
    row: int  # 1-based record number in the file
    column: str
    reason: str


class DropFileError(Exception):
    """A source's file cannot be used at all (absent, ambiguous, unreadable, a column missing)."""


@dataclass(frozen=True)
class _Table:
    stamp: tuple[str, int, int]  # path, mtime_ns, size
    good: dict[str, list[tuple[int, dict[str, Any]]]]  # uscc → [(row, parsed record)]
    rejected: tuple[Rejection, ...]
    rejected_by_uscc: dict[str, list[Rejection]]


def _cell(kind: str, text: str | None, today: date) -> tuple[Any, str]:
    """(value, "") or (None, why not) for one cell read as text."""
    if text is None or text == "":
        if kind == "certs":
            return [], ""
        return None, "missing value"
    if kind == "uscc":
        return (text, "") if is_valid_uscc(text) else (None, f"{show(text)} is not a valid USCC")
    if kind in ("int", "year"):
        body = text[1:] if text.startswith("-") else text
        if not _DIGITS.fullmatch(body):
            return None, f"{show(text)} is not a whole number"
        value = int(text)
        if value < 0:
            return None, f"{value} is negative"
        if value > MAX_SOURCE_INT:
            return None, f"{value} is above the largest allowed, {MAX_SOURCE_INT}"
        if kind == "year" and value > today.year:
            return None, f"year {value} is in the future (today is {today.isoformat()})"
        if kind == "year" and value < MIN_TAX_YEAR:
            return None, f"year {value} is before {MIN_TAX_YEAR}"
        return value, ""
    if kind == "grade":
        return (text, "") if text in TAX_GRADES else (None, f"{show(text)} is not a tax credit grade ({', '.join(TAX_GRADES)})")
    if kind == "bool":
        low = text.lower()
        if low in ("true", "1"):
            return True, ""
        if low in ("false", "0"):
            return False, ""
        return None, f"{show(text)} is not true/false/1/0"
    if kind == "text":
        return (text, "") if len(text) <= MAX_SOURCE_TEXT else (None, f"longer than {MAX_SOURCE_TEXT} characters")
    if kind == "certs":
        names = text.split(CERT_SEPARATOR)
        bad = [n for n in names if not 0 < len(n) <= MAX_SOURCE_TEXT]
        if bad:
            return None, f"certification names are 1..{MAX_SOURCE_TEXT} characters, joined by {CERT_SEPARATOR!r}: {show(text)}"
        return names, ""
    raise AssertionError(f"unknown column kind {kind!r}")


def _read_text_frame(path: Path, columns: Iterable[str], optional: Iterable[str] = ()) -> pl.DataFrame:
    """The file as a frame of text columns: the layout's `columns`, then those of `optional` it has."""
    wanted = list(columns)
    suffix = path.suffix[1:]
    if suffix == "csv":
        frame = pl.read_csv(path, infer_schema=False)
    elif suffix == "parquet":
        frame = pl.read_parquet(path)
    else:
        present = pl.read_json(path, infer_schema_length=None).columns
        missing = [c for c in wanted if c not in present]
        if missing:
            raise DropFileError(f"{path.name} lacks the columns {', '.join(missing)}")
        frame = pl.read_json(path, schema={c: pl.String for c in [*wanted, *(c for c in optional if c in present)]})
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DropFileError(f"{path.name} lacks the columns {', '.join(missing)}")
    frame = frame.select([*wanted, *(c for c in optional if c in frame.columns)])
    lists = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
    if lists:
        frame = frame.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(CERT_SEPARATOR) for c in lists)
    return frame.cast(pl.String)


def load_table(source: str, path: Path, today: date) -> _Table:
    """Read and check one source's file. Raises `DropFileError` when it cannot be used."""
    st = path.stat()
    stamp = (str(path), st.st_mtime_ns, st.st_size)
    optional = OPTIONAL.get(source, {})
    try:
        frame = _read_text_frame(path, LAYOUTS[source], optional)
    except DropFileError:
        raise
    except Exception as e:  # polars' errors (ComputeError, SchemaError, …) and OSError: the file is unusable
        raise DropFileError(f"cannot read {path.name}: {type(e).__name__}: {clip(str(e))}") from e
    layout = {c: LAYOUTS[source].get(c) or optional[c] for c in frame.columns}
    rejected: list[Rejection] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    for row, values in enumerate(frame.iter_rows(), start=1):
        record: dict[str, Any] = {}
        problems = []
        marker = source == "collateral" and all(values[list(layout).index(c)] in (None, "") for c in _ASSET_COLUMNS)
        for (column, kind), text in zip(layout.items(), values, strict=True):
            if marker and column in _ASSET_COLUMNS:
                record[column] = ""
                continue
            if column in optional and text in (None, ""):
                continue  # not reported: no key
            value, why = _cell(kind, text, today)
            if why:
                problems.append(Rejection(row, column, why))
            record[column] = value
        if problems:
            rejected.extend(problems)
        else:
            parsed.append((row, record))
    key_cols = KEYS[source]
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for row, record in parsed:
        by_key.setdefault(tuple(record[c] for c in key_cols), []).append(row)
    dup_rows = {row: rows for rows in by_key.values() if len(rows) > 1 for row in rows}
    good: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for row, record in parsed:
        if row in dup_rows:
            others = ", ".join(str(r) for r in dup_rows[row] if r != row)
            rejected.append(Rejection(row, ",".join(key_cols), f"duplicate key ({', '.join(key_cols)}): also on row {others}"))
        else:
            good.setdefault(record["uscc"], []).append((row, record))
    for uscc, rows in list(good.items()):
        why = _enterprise_problem(source, rows)
        if why:
            column, reason, bad_rows = why
            rejected.extend(Rejection(row, column, reason) for row in bad_rows)
            good[uscc] = [(r, rec) for r, rec in rows if r not in bad_rows]
            if not good[uscc]:
                del good[uscc]
    rejected.sort(key=lambda j: j.row)
    by_uscc: dict[str, list[Rejection]] = {}
    uscc_at = {row + 1: v[0] for row, v in enumerate(frame.select("uscc").iter_rows())}
    for j in rejected:
        u = uscc_at.get(j.row)
        if u is not None and is_valid_uscc(u):
            by_uscc.setdefault(u, []).append(j)
    return _Table(stamp, good, tuple(rejected), by_uscc)


def _enterprise_problem(source: str, rows: list[tuple[int, dict[str, Any]]]) -> tuple[str, str, set[int]] | None:
    """Rows of one enterprise that contradict each other: (column, reason, the rows)."""
    if source == "tax":
        grades = {rec["tax_credit_grade"] for _, rec in rows}
        if len(grades) > 1:
            shown = ", ".join(f"row {r}: {rec['tax_credit_grade']}" for r, rec in rows)
            return "tax_credit_grade", f"the enterprise's rows disagree on its grade ({shown})", {r for r, _ in rows}
    if source == "collateral" and len(rows) > 1:
        markers = {r for r, rec in rows if rec["asset_id"] == "" and rec["kind"] == ""}
        if markers:
            return "asset_id", "a no-asset row beside the enterprise's assets", markers
    return None


def assemble(source: str, rows: list[dict[str, Any]], as_of: date) -> dict[str, Any]:
    """The payload of one enterprise from its good rows (in file order)."""
    if source == "tax":
        years = sorted((r for r in rows if r["year"] < as_of.year), key=lambda r: r["year"])
        return {
            "tax_credit_grade": rows[0]["tax_credit_grade"],
            "years": [{"year": r["year"], **{a: r[a] for a in _AMOUNTS}} for r in years],
        }
    if source == "collateral":
        return {
            "assets": [
                {"id": r["asset_id"], "kind": r["kind"], "appraised_value_fen": r["appraised_value_fen"], "secured_debt_fen": r["secured_debt_fen"]}
                for r in rows
                if r["kind"] != ""
            ]
        }
    (only,) = rows  # one row per uscc: duplicates were rejected
    return {k: v for k, v in only.items() if k != "uscc"}


def rows_from_payload(source: str, uscc: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The inverse of `assemble`: the file rows that hold `payload` (for writing extracts)."""
    if source == "tax":
        g = payload["tax_credit_grade"]
        return [{"uscc": uscc, "year": y["year"], **{a: y[a] for a in _AMOUNTS}, "tax_credit_grade": g} for y in payload["years"]]
    if source == "collateral":
        assets = payload["assets"]
        if not assets:
            return [{"uscc": uscc, "asset_id": None, "kind": None, "appraised_value_fen": None, "secured_debt_fen": None}]
        return [{"uscc": uscc, "asset_id": a["id"], "kind": a["kind"], "appraised_value_fen": a["appraised_value_fen"],
                 "secured_debt_fen": a["secured_debt_fen"]} for a in assets]
    row = {"uscc": uscc, **payload}
    if source == "ip":
        row["certifications"] = CERT_SEPARATOR.join(payload["certifications"])
    return [row]


def write_source_file(folder: Path, source: str, rows: list[dict[str, Any]], fmt: str = "csv") -> Path:
    """Write `rows` (in `LAYOUTS[source]`'s columns, and those of `OPTIONAL[source]` that any row has) as
    `{folder}/{source}.{fmt}`."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    layout = LAYOUTS[source] | {c: k for c, k in OPTIONAL.get(source, {}).items() if any(c in r for r in rows)}
    schema = {c: (pl.Boolean if k == "bool" else pl.Int64 if k in ("int", "year") else pl.String) for c, k in layout.items()}
    frame = pl.DataFrame([{c: r.get(c) for c in layout} for r in rows], schema=schema, orient="row")
    path = Path(folder) / f"{source}.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        frame.write_json(path)
    return path


class FileAdapter:
    name = "file"

    def __init__(self, folder: Path | str, *, today: Callable[[], date] = date.today):
        self.folder = Path(folder)
        self._today = today
        self._tables: dict[str, _Table] = {}
        self._locks = {s: threading.Lock() for s in ALL_SOURCES}

    def path(self, source: str) -> Path:
        """The source's one file. Raises `DropFileError` when there is none or more than one."""
        found = [p for p in (self.folder / f"{source}.{fmt}" for fmt in FORMATS) if p.is_file()]
        if not found:
            raise DropFileError(f"no file {source}.csv, {source}.parquet or {source}.json in {self.folder}")
        if len(found) > 1:
            raise DropFileError(f"more than one file for {source} in {self.folder}: {', '.join(p.name for p in found)}")
        return found[0]

    def _table(self, source: str) -> _Table:
        with self._locks[source]:
            path = self.path(source)
            try:
                st = path.stat()
            except OSError as e:
                raise DropFileError(f"cannot read {path.name}: {e}") from e
            table = self._tables.get(source)
            if table is None or table.stamp != (str(path), st.st_mtime_ns, st.st_size):
                table = load_table(source, path, self._today())
                self._tables[source] = table
            return table

    def rejected(self, source: str) -> list[Rejection]:
        """The rejected rows of the source's current file (read if it changed)."""
        if source not in LAYOUTS:
            raise ValueError(f"{show(source)} is not a data source (allowed: {', '.join(ALL_SOURCES)})")
        return list(self._table(source).rejected)

    def read(self, source: str, uscc: str, as_of: date, timeout_s: float) -> ReadOutcome:
        t0 = time.perf_counter()

        def done(outcome: str, payload: dict[str, Any] | None = None, reason: str = "", attempts: int = 1) -> ReadOutcome:
            return ReadOutcome(source, self.name, outcome, payload, clip(reason), (time.perf_counter() - t0) * 1000, attempts=attempts)

        if source not in LAYOUTS:
            return done("refused", reason=f"{show(source)} is not a data source", attempts=0)
        if not is_valid_uscc(uscc):
            return done("refused", reason=f"{show(uscc)} is not a valid USCC", attempts=0)
        if timeout_s <= 0:
            return done("timeout", reason="no time left before the read began", attempts=0)
        try:
            table = self._table(source)
        except DropFileError as e:
            return done("error", reason=str(e))
        rows = table.good.get(uscc)
        if rows is None:
            bad = table.rejected_by_uscc.get(uscc)
            if bad:
                quoted = "; ".join(f"row {j.row} {j.column}: {j.reason}" for j in bad[:MAX_REJECTIONS_QUOTED])
                more = f" (and {len(bad) - MAX_REJECTIONS_QUOTED} more)" if len(bad) > MAX_REJECTIONS_QUOTED else ""
                return done("invalid", reason=f"every row of this enterprise in {Path(table.stamp[0]).name} was rejected: {quoted}{more}")
            return done("no_record")
        return done("found", assemble(source, [rec for _, rec in rows], as_of))
