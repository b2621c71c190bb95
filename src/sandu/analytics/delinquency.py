"""Delinquency as of any day: pure.

Days past due (DPD) of a drawing on day D come from its ageing history (`delinquency_history`: its oldest unpaid due
date as of D, `sandu.ledger.overdue.days_past_due`), its balances from the journal through D. This module groups them:

- **overdue by DPD bucket** — the drawings, principal, overdue amount and receivable in each bucket of `DPD_BUCKETS`
  (``current`` is DPD 0), on one day;
- **roll rates** — at consecutive month ends, where each drawing in a bucket at the first went by the next: another
  bucket or ``paid_off`` (nothing owed any more; sandu writes nothing off, so there is no charged-off state), by count
  and by the principal it had at the first month end; drawings opened between the two are not in the matrix;
- **stage movement** — IFRS 9 exposures at D0 and at D1: a matrix from the stage at D0 to the stage at D1 (count,
  EAD and ECL at each end), and the exposures that are new at D1 and those derecognised since D0, by stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from sandu.analytics.ecl import Exposures

# (label, lowest DPD, highest DPD; None: no upper end) — the one place the buckets are defined
DPD_BUCKETS: tuple[tuple[str, int, int | None], ...] = (("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("91-180", 91, 180),
                                                         ("180+", 181, None))
CURRENT = "current"
PAID_OFF = "paid_off"
STATES = (CURRENT, *(label for label, _, _ in DPD_BUCKETS))
MAX_ROLL_MONTHS = 24  # month-end transitions a report shows
STAGES = (1, 2, 3)


_LOWS = np.array([low for _, low, _ in DPD_BUCKETS], dtype=np.int64)
_LABELS = np.array([CURRENT, *(label for label, _, _ in DPD_BUCKETS)], dtype=object)
assert all(high is not None and high + 1 == nxt for (_, _, high), (_, nxt, _) in zip(DPD_BUCKETS, DPD_BUCKETS[1:], strict=False)) \
    and DPD_BUCKETS[0][1] == 1 and DPD_BUCKETS[-1][2] is None, "the buckets follow each other from DPD 1 up, the last open-ended"


def buckets(dpd: np.ndarray) -> np.ndarray:
    """The bucket of each of `dpd` (non-negative days past due; ``current`` at 0)."""
    dpd = np.asarray(dpd, dtype=np.int64)
    assert not dpd.size or dpd.min() >= 0, "days past due are never negative"
    return _LABELS[np.searchsorted(_LOWS, dpd, side="right")]


def bucket(dpd: int) -> str:
    """The bucket of `dpd` days past due (``current`` at 0)."""
    if not isinstance(dpd, int) or isinstance(dpd, bool) or dpd < 0:
        raise ValueError(f"days past due must be a non-negative integer, got {dpd!r}")
    return str(buckets(np.array([dpd]))[0])


def overdue_by_bucket(drawings: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Drawings (a frame with dpd, principal_fen, overdue_fen, receivable_fen) by DPD bucket: how many, their
    principal, overdue amount and receivable; every bucket present, ``current`` first."""
    out = {s: {"drawings": 0, "principal_fen": 0, "overdue_fen": 0, "receivable_fen": 0} for s in STATES}
    sums = (drawings.with_columns(pl.Series("bucket", buckets(drawings["dpd"].to_numpy()).tolist(), dtype=pl.String))
            .group_by("bucket").agg(pl.len().alias("drawings"), pl.col("principal_fen").sum(), pl.col("overdue_fen").sum(),
                                    pl.col("receivable_fen").sum()))
    for row in sums.iter_rows(named=True):
        out[row["bucket"]] = {k: int(row[k]) for k in ("drawings", "principal_fen", "overdue_fen", "receivable_fen")}
    return out


def roll_rates(month_ends: Sequence[tuple[date, pl.DataFrame]]) -> list[dict[str, Any]]:
    """Transition matrices between consecutive month ends. `month_ends`: (day, the drawings owing anything that day —
    drawing_id, dpd, principal_fen), oldest first. Each matrix: from each state to each state or ``paid_off``, the
    count and the principal at the first month end."""
    out = []
    for (start, before), (end, after) in zip(month_ends, month_ends[1:], strict=False):
        assert start < end, "month ends in order"
        counts = {s: {t: 0 for t in (*STATES, PAID_OFF)} for s in STATES}
        principal = {s: {t: 0 for t in (*STATES, PAID_OFF)} for s in STATES}
        moved = before.select("drawing_id", "dpd", "principal_fen").join(
            after.select("drawing_id", pl.col("dpd").alias("dpd_after")), on="drawing_id", how="left")
        came = buckets(moved["dpd"].to_numpy())
        went = np.where(moved["dpd_after"].is_null().to_numpy(), PAID_OFF, buckets(moved["dpd_after"].fill_null(0).to_numpy()))
        cells = (pl.DataFrame({"came": came.tolist(), "went": went.tolist(), "fen": moved["principal_fen"]},
                              schema={"came": pl.String, "went": pl.String, "fen": pl.Int64})
                 .group_by("came", "went").agg(pl.len().alias("n"), pl.col("fen").sum()))
        for a, b, n, fen in cells.iter_rows():
            counts[a][b], principal[a][b] = int(n), int(fen)
        out.append({"from": start.isoformat(), "to": end.isoformat(), "count": counts, "principal_fen": principal})
    return out


def _cell() -> dict[str, int]:
    return {"exposures": 0, "ead_from_fen": 0, "ead_to_fen": 0, "ecl_from_fen": 0, "ecl_to_fen": 0}


def _exposure_frame(e: Exposures) -> pl.DataFrame:
    return pl.DataFrame({"line_id": e.line_id, "drawing_id": e.drawing_id, "stage": e.stage, "ead_fen": e.ead_fen, "ecl_fen": e.ecl_fen},
                        schema={"line_id": pl.Int64, "drawing_id": pl.Int64, "stage": pl.Int64, "ead_fen": pl.Int64, "ecl_fen": pl.Int64})


def stage_movement(start: date, end: date, before: Exposures, after: Exposures) -> dict[str, Any]:
    """From the stage of each exposure (a drawing, or a line's undrawn part) at `start` to its stage at `end`: counts,
    EAD and ECL at both ends; the exposures new at `end` and those derecognised since `start`, by stage."""
    then, now = _exposure_frame(before), _exposure_frame(after)
    for frame, when in ((then, start), (now, end)):
        assert not frame.select("line_id", "drawing_id").is_duplicated().any(), f"one exposure per drawing or undrawn part on {when}"
    matrix = {str(a): {str(b): _cell() for b in STAGES} for a in STAGES}
    new = {str(s): {"exposures": 0, "ead_fen": 0, "ecl_fen": 0} for s in STAGES}
    gone = {str(s): {"exposures": 0, "ead_fen": 0, "ecl_fen": 0} for s in STAGES}
    both = then.join(now, on=["line_id", "drawing_id"], how="full", suffix="_to", coalesce=True)
    kept = (both.filter(pl.col("stage").is_not_null() & pl.col("stage_to").is_not_null()).group_by("stage", "stage_to")
            .agg(pl.len().alias("n"), pl.col("ead_fen").sum(), pl.col("ead_fen_to").sum(), pl.col("ecl_fen").sum(), pl.col("ecl_fen_to").sum()))
    for a, b, n, ead_from, ead_to, ecl_from, ecl_to in kept.iter_rows():
        matrix[str(a)][str(b)] = {"exposures": int(n), "ead_from_fen": int(ead_from), "ead_to_fen": int(ead_to), "ecl_from_fen": int(ecl_from),
                                  "ecl_to_fen": int(ecl_to)}
    for table, only, suffix in ((new, pl.col("stage").is_null(), "_to"), (gone, pl.col("stage_to").is_null(), "")):
        sums = (both.filter(only).group_by(f"stage{suffix}")
                .agg(pl.len().alias("n"), pl.col(f"ead_fen{suffix}").sum(), pl.col(f"ecl_fen{suffix}").sum()))
        for s, n, ead, ecl in sums.iter_rows():
            table[str(s)] = {"exposures": int(n), "ead_fen": int(ead), "ecl_fen": int(ecl)}
    return {"from": start.isoformat(), "to": end.isoformat(), "matrix": matrix, "new": new, "derecognised": gone}
