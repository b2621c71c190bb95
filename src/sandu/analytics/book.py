"""The loan book on several days at once, from one pass over the journal and the histories: pure (numpy arrays in).

The service (`sandu.analytics.service.book_through`) reads the loan postings and their entries' days once, and sums
each loan account's postings by period — the periods cut by the days asked for (through the first day, then through
each next one), the draw entries apart — and reads the ageing and classification histories once. Balances through day k are then the running sums of
the first k + 1 periods; the oldest unpaid due date and the class as of a day are each drawing's last history row on or
before it. All in integer fen (int64: a bank's book fits many times over), never a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from sandu.ledger.overdue import NO_DUE, RiskClass, days_past_due_vector

PRINCIPAL = ("principal", "overdue_principal")
OVERDUE = ("overdue_principal", "overdue_interest", "penalty", "compound")
DRAWING_SCHEMA = {"line_id": pl.Int64, "drawing_id": pl.Int64, "principal_fen": pl.Int64, "receivable_fen": pl.Int64,
                  "overdue_fen": pl.Int64, "dpd": pl.Int64, "risk_class": pl.String, "maturity_on": pl.Date}
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # polars dates count days from 1970-01-01
_KEY = 1 << 24  # a drawing's rows keyed by drawing index × _KEY + day ordinal (ordinals stay below 2^22)


def last_rows(drawing: np.ndarray, on: np.ndarray, drawings: int, day: date) -> np.ndarray:
    """Of history rows sorted by (drawing index, day, id), the index of each drawing's last row on or before `day`
    (-1 where it has none)."""
    keys = drawing.astype(np.int64) * _KEY + on
    want = np.arange(drawings, dtype=np.int64) * _KEY + day.toordinal()
    at = np.searchsorted(keys, want, side="right") - 1
    ok = (at >= 0) & (drawing[np.clip(at, 0, None)] == np.arange(drawings)) if drawing.size else np.zeros(drawings, dtype=bool)
    return np.where(ok, at, -1)


@dataclass(frozen=True)
class Book:
    """`days` (ascending); `line_ids`, `drawing_ids`, `grace_days` and `maturity_on` per drawing; `buckets` the loan buckets;
    `sums[drawing, bucket, day]` the balance through each day and `drawn[drawing, day]` what its draw entries put
    into principal through it; histories as arrays sorted by (drawing index, day, id)."""

    days: tuple[date, ...]
    line_ids: np.ndarray
    drawing_ids: np.ndarray
    grace_days: np.ndarray
    maturity_on: np.ndarray  # proleptic ordinals
    buckets: tuple[str, ...]
    sums: np.ndarray
    drawn: np.ndarray
    ageing: tuple[np.ndarray, np.ndarray, np.ndarray]  # drawing index, on (ordinal), oldest unpaid due (ordinal, NO_DUE)
    classes: tuple[np.ndarray, np.ndarray, np.ndarray]  # drawing index, on (ordinal), class index (RiskClass order)

    def _k(self, day: date) -> int:
        assert day in self.days, f"{day} is one of the days read"
        return self.days.index(day)

    def _measure(self, names: Sequence[str], k: int) -> np.ndarray:
        return self.sums[:, [self.buckets.index(b) for b in names if b in self.buckets], k].sum(axis=1)

    def dpd(self, day: date) -> np.ndarray:
        """Each drawing's days past due at the end of `day`."""
        drawing, on, oldest = self.ageing
        at = last_rows(drawing, on, len(self.drawing_ids), day)
        due = np.where(at >= 0, oldest[np.clip(at, 0, None)] if oldest.size else NO_DUE, NO_DUE)
        return days_past_due_vector(due, day, self.grace_days)

    def risk_classes(self, day: date) -> np.ndarray:
        """Each drawing's 五级分类 as of `day` (its last change on or before it; normal before any), as strings."""
        drawing, on, cls = self.classes
        at = last_rows(drawing, on, len(self.drawing_ids), day)
        names = np.array([c.value for c in RiskClass], dtype=object)
        ranks = np.where(at >= 0, cls[np.clip(at, 0, None)] if cls.size else 0, 0)
        return names[ranks]

    def owing(self, day: date) -> np.ndarray:
        """The indices of the drawings with anything receivable through `day`."""
        return np.nonzero(self.sums[:, :, self._k(day)].any(axis=1))[0]

    def drawings(self, day: date) -> pl.DataFrame:
        """Every drawing owing anything through `day` (`DRAWING_SCHEMA`): its line, principal, receivable and overdue
        amounts through the day, its days past due and its 五级分类 as of the day, its maturity."""
        k = self._k(day)
        rows = self.owing(day)
        return pl.DataFrame({"line_id": self.line_ids[rows], "drawing_id": self.drawing_ids[rows],
                             "principal_fen": self._measure(PRINCIPAL, k)[rows], "receivable_fen": self.sums[rows, :, k].sum(axis=1),
                             "overdue_fen": self._measure(OVERDUE, k)[rows], "dpd": self.dpd(day)[rows],
                             "risk_class": pl.Series(self.risk_classes(day)[rows].tolist(), dtype=pl.String),
                             "maturity_on": self.maturity_on[rows] - EPOCH_ORDINAL}, schema=DRAWING_SCHEMA)

    def line_sums(self, day: date) -> pl.DataFrame:
        """Per line with a drawing, through `day`: what its draw entries put into principal (drawn_fen), and what is
        overdue (overdue_fen)."""
        k = self._k(day)
        return (pl.DataFrame({"line_id": self.line_ids, "drawn_fen": self.drawn[:, k], "overdue_fen": self._measure(OVERDUE, k)},
                             schema={"line_id": pl.Int64, "drawn_fen": pl.Int64, "overdue_fen": pl.Int64})
                .group_by("line_id").agg(pl.col("drawn_fen").sum(), pl.col("overdue_fen").sum()))
