"""The enterprise columns a pre-credit batch reads: the documented schema and its checks.

The columns are those `sandu simulate --out` writes (`sandu.simulate.universe`), one
row per enterprise; a bank's own extract uses the same names and types. Each row
holds what the data sources would return for the enterprise (`source_payloads`
turns a row into those payloads for the online path): three tax years (``_y1`` the
oldest, ``_y3`` the latest, the calendar years before the as-of day), invoices,
social insurance, utilities, IP, the credit bureau, bank flows and up to two
collateral assets (``colK_kind`` empty: no asset K). Columns not listed here
(``name``, ``district``, ``default_12m`` …) are not read, and not in the output.

Checks, each with the column, the reason and what is allowed:

- the file: every column present, of its type (integers: int8 … int64, uint8 … uint32),
  no null in any of them (`BatchInputError` naming every bad column at once, nothing written);
- a row: a valid USCC (GB 32100), amounts and counts within 0..`MAX_SOURCE_INT`,
  a tax credit grade of `TAX_GRADES`, an asset kind of the policy's loan-to-value table
  (or empty, with both of the asset's amounts 0: no asset) — else the row goes to the rejects file with every reason (at most
  `MAX_ROW_REASONS`, then how many more) and the rest are processed;
- USCCs unique over the whole file (`BatchInputError` naming the USCC and its rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa

from sandu.domain.errors import InvalidInput
from sandu.domain.ids import USCC_LENGTH, uscc_rows_validity, validate_uscc
from sandu.sources.schemas import MAX_SOURCE_INT, MAX_SOURCE_TEXT, TAX_GRADES

ASSETS = (1, 2)
TAX_YEARS = (1, 2, 3)
AMOUNTS = (
    *(f"{kind}_fen_y{y}" for kind in ("revenue", "vat", "cit", "rd_expense") for y in TAX_YEARS),
    "sales_invoice_fen_12m", "sales_invoice_count_12m", "customer_count_12m",
    "headcount", "headcount_12m_ago", "tech_staff", "si_arrears_months",
    "electricity_kwh_12m", "electricity_kwh_prev_12m",
    "invention_patents", "utility_models", "software_copyrights",
    "loans_outstanding_fen", "bureau_secured_debt_fen", "overdue_count_24m", "max_overdue_days_24m", "queries_3m",
    "inflow_fen_12m", "outflow_fen_12m",
    *(f"col{k}_{part}" for k in ASSETS for part in ("appraised_fen", "secured_debt_fen")),
)
FLAGS = ("has_bank_account", "utility_arrears", "cert_gaoxin", "cert_zhuanjingtexin", "cert_xiaojuren", "cert_kejixing")
TEXTS = ("uscc", "tax_credit_grade", *(f"col{k}_kind" for k in ASSETS))
COLUMNS: dict[str, str] = {**{c: "text" for c in TEXTS}, **{c: "integer" for c in AMOUNTS}, **{c: "boolean" for c in FLAGS}}
POLARS_TYPES = {"text": pl.String, "integer": pl.Int64, "boolean": pl.Boolean}
MAX_SHOWN_ROWS = 3  # rows named in a duplicate-USCC error
MAX_SHOWN_PROBLEMS = 20  # bad columns named, each on its line, in one error
MAX_ROW_REASONS = 5  # reasons given for one rejected row, then how many more
REASON = "reason"


class BatchInputError(InvalidInput):
    """The input file cannot be processed: `field` is the column (or ``uscc`` for duplicates, ``--output`` …)."""


def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_integer(t) and t != pa.uint64():  # every value must fit a signed 64-bit integer
        return "integer"
    if pa.types.is_boolean(t):
        return "boolean"
    return None


def refuse(problems: list[tuple[str, str, str | None]], what: str) -> None:
    """Raise one `BatchInputError` for every (column, reason, allowed) found, so that a file is mended in one go: its
    field is the first column; with more than one, the message names each on a line of its own (at most
    `MAX_SHOWN_PROBLEMS`), under "N columns `what`"."""
    if not problems:
        return
    field, reason, allowed = problems[0]
    error = BatchInputError(field, reason, allowed)
    if len(problems) > 1:
        shown = problems[:MAX_SHOWN_PROBLEMS]
        lines = [f"  {f}: {r}" + (f" (allowed: {a})" if a else "") for f, r, a in shown]
        if len(problems) > len(shown):
            lines.append(f"  … and {len(problems) - len(shown)} more")
        error.message = f"{len(problems)} columns {what}:\n" + "\n".join(lines)
        error.args = (error.message,)
    raise error


def check_schema(schema: pa.Schema) -> None:
    """Every column of `COLUMNS` present and of its kind, or one `BatchInputError` naming every bad one."""
    problems: list[tuple[str, str, str | None]] = []
    for name, kind in COLUMNS.items():
        if name not in schema.names:
            cased = [n for n in schema.names if n.lower() == name.lower()]
            problems.append((name, "column missing" + (f" (the file has {cased[0]!r}: names are case-sensitive)" if cased else ""), None))
            continue
        if (times := len(schema.get_all_field_indices(name))) > 1:
            problems.append((name, f"appears {times} times", "each column once"))
            continue
        got = schema.field(name).type
        if _kind(got) != kind:
            allowed = {"integer": "int8 … int64 or uint8 … uint32 (amounts in whole fen: a decimal column cast to int64)",
                       "text": "plain strings (a dictionary-encoded or categorical column: cast it to string)"}.get(kind, kind)
            problems.append((name, f"is {got}, not {kind}", allowed))
    if len(problems) == 1 and problems[0][2] is None:  # one missing column: the names it may have meant
        problems = [(problems[0][0], problems[0][1], f"the columns of the pre-credit schema ({', '.join(COLUMNS)}); see README 'batch precredit'")]
    refuse(problems, "do not fit the pre-credit schema (README 'batch precredit')")


@dataclass
class Nulls:
    """Where a column holds nulls: its first null's row in the file and how many there are."""

    first_row: int
    count: int


def find_nulls(frame: pl.DataFrame, first_row: int, columns: tuple[str, ...], found: dict[str, Nulls]) -> None:
    """Add the nulls of `columns` in `frame` (`first_row`: the file's row number of its first row) to `found`."""
    counts = frame.select(pl.col(list(columns)).null_count()).row(0)
    for name, nulls in zip(columns, counts, strict=True):
        if nulls:
            seen = found.setdefault(name, Nulls(first_row + int(frame.get_column(name).is_null().arg_true()[0]), 0))
            seen.count += nulls


def refuse_nulls(found: dict[str, Nulls]) -> None:
    """`BatchInputError` naming every column of the schema that holds a null (in the schema's order), if any."""
    refuse([(name, f"null at row {n.first_row} ({n.count:,} null{'s' if n.count > 1 else ''} in the file)",
             f"a value in every row: the schema forbids nulls in {name}") for name in COLUMNS if (n := found.get(name))],
           "hold nulls the schema forbids")


def typed(frame: pl.DataFrame) -> pl.DataFrame:
    """The schema's columns cast to their polars types (integers of any width to Int64)."""
    return frame.with_columns(pl.col(c).cast(POLARS_TYPES[k]) for c, k in COLUMNS.items())


def uscc_column_validity(usccs: pl.Series) -> np.ndarray:
    """`sandu.domain.ids.uscc_validity` of a text column, read as bytes (no Python string per row): the
    texts of 18 ASCII characters (18 bytes and 18 characters) checked by `uscc_rows_validity`, the others invalid."""
    shaped = np.flatnonzero(((usccs.str.len_bytes() == USCC_LENGTH) & (usccs.str.len_chars() == USCC_LENGTH)).fill_null(False).to_numpy())
    joined = usccs.gather(shaped).str.join("").item() if shaped.size else ""
    valid = np.zeros(usccs.len(), dtype=bool)
    valid[shaped] = uscc_rows_validity(np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(shaped.size, USCC_LENGTH))
    return valid


@dataclass(frozen=True)
class RowChecks:
    ok: np.ndarray  # one bool per row
    rejected: np.ndarray  # the index in the frame of each rejected row, in order
    reasons: pl.Series  # the reasons of each rejected row (texts)


@lru_cache(maxsize=8)
def _row_checks(kinds: tuple[str, ...]) -> list[tuple[pl.Expr, str]]:
    """(the expression true where a row breaks the check, the reason), in the order reasons are given. `kinds`: the
    asset kinds the policy's loan-to-value table knows — an extract's other spelling of one (``Residential``, a
    trailing space, 厂房) would otherwise count the asset as nothing, silently, as the policy counts an unknown kind."""
    checks = [(pl.col(c) < 0, f"{c}: negative (allowed: 0..{MAX_SOURCE_INT})") for c in AMOUNTS]
    checks += [(pl.col(c) > MAX_SOURCE_INT, f"{c}: above {MAX_SOURCE_INT} (allowed: 0..{MAX_SOURCE_INT})") for c in AMOUNTS]
    checks += [(~pl.col("tax_credit_grade").is_in(TAX_GRADES), f"tax_credit_grade: not a grade (allowed: {'/'.join(TAX_GRADES)})")]
    checks += [(pl.col(f"col{k}_kind").str.len_chars() > MAX_SOURCE_TEXT, f"col{k}_kind: longer than {MAX_SOURCE_TEXT} characters") for k in ASSETS]
    listed = "/".join(kinds)
    for k in ASSETS:
        kind = pl.col(f"col{k}_kind")
        unknown = (kind != "") & (kind.str.len_chars() <= MAX_SOURCE_TEXT) & ~kind.is_in(kinds)
        checks += [(unknown, f"col{k}_kind: not a kind of the policy's loan-to-value table (allowed: {listed}, or empty: no asset {k})"),
                   ((kind == "") & ((pl.col(f"col{k}_appraised_fen") > 0) | (pl.col(f"col{k}_secured_debt_fen") > 0)),
                    f"col{k}_kind: empty (no asset {k}), yet col{k}_appraised_fen or col{k}_secured_debt_fen is above 0 (allowed: {listed})")]
    return checks


def check_rows(frame: pl.DataFrame, kinds: tuple[str, ...]) -> RowChecks:
    """Which rows can be decided; the others each with every reason that refuses it ("; " between them, at most
    `MAX_ROW_REASONS` and then how many more), found column by column: as fast for a file whose every row is bad
    (an extract's systematic slip) as for a clean one. `kinds`: the asset kinds the policy lends against (its
    loan-to-value table's, sorted)."""
    checks = _row_checks(kinds)
    usccs = frame.get_column("uscc")
    uscc_reason = np.full(frame.height, None, dtype=object)
    invalid = np.flatnonzero(~uscc_column_validity(usccs))
    for i, uscc in zip(invalid, usccs.gather(invalid).to_list(), strict=True):  # the few invalid ones: their exact reason
        try:
            validate_uscc(uscc)
        except InvalidInput as exc:
            uscc_reason[i] = f"uscc: {exc.reason}"
    amounts = (pl.min_horizontal(AMOUNTS) < 0) | (pl.max_horizontal(AMOUNTS) > MAX_SOURCE_INT)  # the amounts' checks at once
    values_bad = frame.select((amounts | pl.any_horizontal(e for e, _ in checks[2 * len(AMOUNTS):])).fill_null(False)).to_series().to_numpy()
    bad = values_bad | np.not_equal(uscc_reason, None).astype(bool)
    rejected = np.flatnonzero(bad)
    if rejected.size == 0:
        return RowChecks(~bad, rejected, pl.Series(REASON, [], dtype=pl.String))
    rows = frame.gather(rejected).with_columns(pl.Series("_uscc_reason", uscc_reason[rejected].tolist(), dtype=pl.String))
    fired = rows.select(e.fill_null(False).any().alias(str(k)) for k, (e, _) in enumerate(checks)).row(0)  # only the checks broken build texts
    every = pl.concat_list(pl.col("_uscc_reason"), *(pl.when(e.fill_null(False)).then(pl.lit(r))
                                                     for (e, r), f in zip(checks, fired, strict=True) if f)).list.drop_nulls()
    more = every.list.len().cast(pl.Int64) - MAX_ROW_REASONS
    text = every.list.head(MAX_ROW_REASONS).list.join("; ") + pl.when(more > 0).then(pl.format("; … and {} more", more)).otherwise(pl.lit(""))
    reasons = rows.select(text.alias(REASON)).get_column(REASON)
    assert reasons.null_count() == 0 and bool((reasons.str.len_bytes() > 0).all()), "a rejected row has a reason"
    return RowChecks(~bad, rejected, reasons)
