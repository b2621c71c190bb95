"""What a portfolio report reads, on a session: the lines as signed, and each drawing's balances summed from the
journal through a day — never the balances kept on rows (the report reconciles to the journal by construction).

The reads are column-wise: each query's rows are taken from the driver as tuples (no row objects for hundreds of
thousands of rows) inside the session's read transaction, and turned into polars frames or numpy arrays at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Integer, Select, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from sandu.analytics.book import EPOCH_ORDINAL, Book
from sandu.ledger.overdue import RiskClass
from sandu.store import models as m

MAX_LINES = 2_000_000  # one report; the bank's whole book fits many times over
PAGE = 10_000
UNKNOWN_INDUSTRY = "未知"
UNKNOWN_GRADE = "?"


FETCH_ROWS = 100_000  # rows taken from the driver at a time: its tuples live only until their chunk is a frame


def _chunks(session: Session, stmt: Select[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """The driver's own tuples of `stmt` (no row objects), a chunk at a time, read inside the session's transaction."""
    result = session.connection().execute(stmt)
    try:
        while chunk := result.cursor.fetchmany(FETCH_ROWS):  # type: ignore[union-attr]
            yield chunk
    finally:
        result.close()


class epoch_days(FunctionElement[int]):
    """A DATE column as days since 1970-01-01 (an integer; NULL stays NULL): what a polars Date holds, read without
    making and parsing a string per value."""

    type = Integer()
    inherit_cache = True


@compiles(epoch_days, "sqlite")
def _days_sqlite(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


@compiles(epoch_days, "postgresql")
def _days_postgresql(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


def _frame(session: Session, stmt: Select[Any], schema: dict[str, Any]) -> pl.DataFrame:
    """`stmt`'s rows as a frame of `schema`: a `pl.Date` column is selected as `epoch_days(...)`; booleans come as the
    driver gives them (0/1 on SQLite, `bool` on PostgreSQL) and are typed here."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    raw = {k: (pl.Int64 if t == pl.Date or (sqlite and t == pl.Boolean) else t) for k, t in schema.items()}
    df = pl.concat([pl.DataFrame(chunk, schema=raw, orient="row") for chunk in _chunks(session, stmt)] or [pl.DataFrame(schema=raw)], rechunk=True)
    fix = [pl.col(k).cast(pl.Int32).cast(pl.Date) if t == pl.Date else pl.col(k).cast(pl.Boolean) for k, t in schema.items() if raw[k] != t]
    return df.with_columns(fix) if fix else df


LINE_SCHEMA = {"line_id": pl.Int64, "enterprise_id": pl.Int64, "branch": pl.String, "industry": pl.String, "product": pl.String,
               "limit_fen": pl.Int64, "opened_on": pl.Date, "inclusive": pl.Boolean, "revolving": pl.Boolean, "status": pl.String,
               "expires_on": pl.Date, "tech_grade": pl.String, "risk_grade": pl.String, "tech_sector": pl.Boolean, "pd_12m": pl.String}


def line_facts(session: Session, branch: str | None = None) -> pl.DataFrame:
    """Every credit line (of one sub-branch, or all) with what a report groups and stages it by: sub-branch, industry,
    product, limit, opening, 普惠型小微, revolving, status, expiry, and the grades, 科技型 and 12-month PD of the
    decision it was signed from (`LINE_SCHEMA`; unknown industry and grades as `UNKNOWN_INDUSTRY`/`UNKNOWN_GRADE`)."""
    ln, e = m.CreditLine, m.Enterprise
    stmt = (select(ln.id, ln.enterprise_id, e.branch, e.industry, ln.product, ln.limit_fen, epoch_days(ln.opened_on), ln.inclusive_small_micro,
                   ln.revolving, ln.status, epoch_days(ln.expires_on), ln.tech_grade, ln.risk_grade, ln.tech_sector, ln.pd_12m)
            .join(e, e.id == ln.enterprise_id).order_by(ln.id).limit(MAX_LINES))
    if branch is not None:
        stmt = stmt.where(e.branch == branch)
    lines = _frame(session, stmt, LINE_SCHEMA)
    assert len(lines) < MAX_LINES, f"at most {MAX_LINES:,} lines in one report"
    return lines.with_columns(
        pl.col("industry").fill_null(UNKNOWN_INDUSTRY), pl.col("tech_grade").fill_null(UNKNOWN_GRADE),
        pl.col("risk_grade").fill_null(UNKNOWN_GRADE), pl.col("tech_sector").fill_null(False), pl.col("inclusive").fill_null(False))


def current_grades(session: Session, as_of: date, branch: str | None = None) -> pl.DataFrame:
    """Each enterprise's latest decision made as of a day on or before `as_of` (the newest decided, then the highest
    id): its risk grade and 12-month PD (enterprise_id, grade_now, pd_now)."""
    d = m.Decision
    newest = func.row_number().over(partition_by=d.enterprise_id, order_by=(d.decided_at.desc(), d.id.desc()))
    ranked = select(d.enterprise_id, d.risk_grade, d.pd_12m, newest.label("n")).where(d.as_of <= as_of)
    if branch is not None:
        ranked = ranked.join(m.Enterprise, m.Enterprise.id == d.enterprise_id).where(m.Enterprise.branch == branch)
    sub = ranked.subquery()
    stmt = select(sub.c.enterprise_id, sub.c.risk_grade, sub.c.pd_12m).where(sub.c.n == 1).limit(MAX_LINES)
    return _frame(session, stmt, {"enterprise_id": pl.Int64, "grade_now": pl.String, "pd_now": pl.String})


APPROVALS_DAYS = 30  # the decisions a report counts: those of the last 30 days through its day


def decisions_by_outcome(session: Session, as_of: date, branch: str | None = None) -> dict[str, int]:
    """Decisions made in the `APPROVALS_DAYS` days through `as_of`, by outcome (of one sub-branch's enterprises, or all)."""
    stmt = (select(m.Decision.outcome, func.count()).join(m.Enterprise, m.Enterprise.id == m.Decision.enterprise_id)
            .where(m.Decision.as_of <= as_of, m.Decision.as_of > as_of - timedelta(days=APPROVALS_DAYS)).group_by(m.Decision.outcome))
    if branch is not None:
        stmt = stmt.where(m.Enterprise.branch == branch)
    return {outcome: int(n) for outcome, n in session.execute(stmt)}


MAX_DAYS_READ = 32  # days one pass over the journal sums through (its array holds drawings × buckets × days of int64)
MAX_HISTORY_ROWS = 50_000_000  # ageing or classification rows one report reads
MAX_POSTINGS = 200_000_000  # loan postings one report reads


def _ordinals(column: pl.Series) -> np.ndarray:
    """A date column as proleptic ordinals (`date.toordinal`), nulls as -1 (`NO_DUE`)."""
    return (column.cast(pl.Int64) + EPOCH_ORDINAL).fill_null(-1).to_numpy()


def book_through(session: Session, days: Iterable[date]) -> Book:
    """The loan book through each of `days` in one pass over the journal's loan postings (summed by account and by
    period between the days, the draw entries apart), with the ageing and classification histories read once."""
    cuts = tuple(sorted(set(days)))
    assert 1 <= len(cuts) <= MAX_DAYS_READ, f"1..{MAX_DAYS_READ} days in one pass"
    e, p = m.JournalEntryRow, m.PostingRow
    # The postings and their entries' days are read as they are and summed here: on SQLite, grouping 1,000,000
    # postings by account and period in the database costs more than reading them.
    postings = _frame(session, select(p.account, p.entry_id, p.amount_fen).where(p.account.like("loan:%")).limit(MAX_POSTINGS),
                      {"account": pl.String, "entry_id": pl.Int64, "fen": pl.Int64})
    entries = _frame(session, select(e.id, case((e.kind == "draw", 1), else_=0), epoch_days(e.effective_date)).where(e.effective_date <= cuts[-1]),
                     {"entry_id": pl.Int64, "draw": pl.Int64, "day": pl.Date})
    period = np.searchsorted(np.array([c.toordinal() for c in cuts], dtype=np.int64), _ordinals(entries["day"]), side="left")
    assert len(postings) < MAX_POSTINGS, f"at most {MAX_POSTINGS:,} loan postings in one report"
    sums = (postings.join(entries.with_columns(pl.Series("k", period, dtype=pl.Int64)), on="entry_id", how="inner")
            .group_by("account", "draw", "k").agg(pl.col("fen").sum()))
    parts = sums["account"].str.extract_groups(r"^loan:(\d+)-(\d+):(.+)$").struct
    sums = sums.with_columns(parts.field("1").cast(pl.Int64).alias("line_id"), parts.field("2").cast(pl.Int64).alias("drawing_id"),
                             parts.field("3").alias("bucket"))
    assert sums["drawing_id"].null_count() == 0, "every loan account is loan:{line}-{drawing}:{bucket}"
    owners = sums.select("line_id", "drawing_id").unique().sort("line_id", "drawing_id")
    line_ids, drawing_ids = owners["line_id"].to_numpy(), owners["drawing_id"].to_numpy()
    by_id = np.argsort(drawing_ids, kind="stable")

    def index(ids: np.ndarray) -> np.ndarray:
        """Each of `ids`' drawing index (-1 for a drawing with no loan posting)."""
        if not len(drawing_ids):
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.clip(np.searchsorted(drawing_ids, ids, sorter=by_id), 0, len(drawing_ids) - 1)
        found = by_id[at]
        return np.where(drawing_ids[found] == ids, found, -1)

    buckets = tuple(sorted(sums["bucket"].unique().to_list()))
    d_at = index(sums["drawing_id"].to_numpy()).astype(np.int64)
    b_at = sums["bucket"].replace_strict({b: i for i, b in enumerate(buckets)}, return_dtype=pl.Int64).to_numpy().astype(np.int64)
    k_at, fen = sums["k"].to_numpy().astype(np.int64), sums["fen"].to_numpy().astype(np.int64)
    totals = np.zeros((len(owners), len(buckets), len(cuts)), dtype=np.int64)
    np.add.at(totals, (d_at, b_at, k_at), fen)
    drawn = np.zeros((len(owners), len(cuts)), dtype=np.int64)
    draws = (sums["draw"].to_numpy() == 1) & (sums["bucket"].to_numpy() == "principal")
    np.add.at(drawn, (d_at[draws], k_at[draws]), fen[draws])
    terms = _frame(session, select(m.Drawing.id, m.CreditLine.grace_days, epoch_days(m.Drawing.maturity_on))
                   .join(m.CreditLine, m.CreditLine.id == m.Drawing.line_id).limit(MAX_HISTORY_ROWS),
                   {"drawing_id": pl.Int64, "grace_days": pl.Int64, "maturity_on": pl.Date})
    grace_days, maturity = np.zeros(len(owners), dtype=np.int64), np.zeros(len(owners), dtype=np.int64)
    at = index(terms["drawing_id"].to_numpy())
    assert (at >= 0).sum() == len(owners), "every drawing with loan postings is a drawing of a line"
    grace_days[at[at >= 0]] = terms["grace_days"].to_numpy()[at >= 0]
    maturity[at[at >= 0]] = _ordinals(terms["maturity_on"])[at >= 0]
    h, c = m.DelinquencyChange, m.ClassificationChange
    ageing = _frame(session, select(h.drawing_id, epoch_days(h.on_date), epoch_days(h.oldest_due_on), h.id).where(h.on_date <= cuts[-1]).limit(MAX_HISTORY_ROWS),
                    {"drawing_id": pl.Int64, "on": pl.Date, "value": pl.Date, "id": pl.Int64})
    classes = _frame(session, select(c.drawing_id, epoch_days(c.on_date), c.to_class, c.id).where(c.on_date <= cuts[-1]).limit(MAX_HISTORY_ROWS),
                     {"drawing_id": pl.Int64, "on": pl.Date, "value": pl.String, "id": pl.Int64})
    assert max(len(terms), len(ageing), len(classes)) < MAX_HISTORY_ROWS, f"at most {MAX_HISTORY_ROWS:,} rows of each history in one report"
    ranks = {r.value: i for i, r in enumerate(RiskClass)}

    def history(rows: pl.DataFrame, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(drawing index, day ordinal, value) of the rows of the book's drawings, by drawing, then day, then as written."""
        d = index(rows["drawing_id"].to_numpy())
        keep = d >= 0
        on, ids = _ordinals(rows["on"])[keep], rows["id"].to_numpy()[keep]
        order = np.lexsort((ids, on, d[keep]))
        return d[keep][order], on[order], values[keep][order]

    return Book(cuts, line_ids, drawing_ids, grace_days, maturity, buckets, np.cumsum(totals, axis=2, out=totals), np.cumsum(drawn, axis=1, out=drawn),
                history(ageing, _ordinals(ageing["value"])),
                history(classes, classes["value"].replace_strict(ranks, return_dtype=pl.Int64).to_numpy()))


def days_past_due_as_of(session: Session, as_of: date) -> dict[int, int]:
    """The drawings past due at the end of `as_of`, with their days past due: each one's oldest unpaid due date as of
    that day (the last row of its ageing history on or before it) aged by its line's grace period — what end of day
    computed that day."""
    book = book_through(session, [as_of])
    dpd = book.dpd(as_of)
    return {int(i): int(v) for i, v in zip(book.drawing_ids.tolist(), dpd.tolist(), strict=True) if v}


MAX_MONITORED = 200_000  # applications one monitoring run reads


def scored_applications(session: Session, since: date, until: date, features: tuple[str, ...]) -> tuple[list[dict[str, object]], list[date]]:
    """The features the scorecard reads of every decision made on a day in since..until (oldest first), each from
    its stored profile (checked against its hash), with the day it was decided."""
    from sandu.sources.profile import profile_from_json

    stmt = (select(m.Decision.profile_sha256, m.Decision.as_of, m.Profile.snapshot)
            .join(m.Profile, m.Profile.sha256 == m.Decision.profile_sha256)
            .where(m.Decision.as_of >= since, m.Decision.as_of <= until).order_by(m.Decision.as_of, m.Decision.id).limit(MAX_MONITORED))
    rows, days = [], []
    for sha, day, snapshot in session.execute(stmt.execution_options(yield_per=PAGE)):
        profile = profile_from_json(snapshot, sha)
        rows.append({name: profile.features.get(name) for name in features})
        days.append(day)
    return rows, days
