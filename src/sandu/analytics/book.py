"""The loan book on several days at once, from one pass over the journal and the histories: pure (numpy arrays in).

The service (`sandu.analytics.service.book_through`) reads, in one query, each loan account's postings summed by
period — the periods cut by the days asked for (through the first day, then through each next one), the draw
entries apart — and the ageing and classification histories once. Balances through day k are then the running sums of
the first k + 1 periods; the oldest unpaid due date and the class as of a day are each drawing's last history row on or
before it. All in integer fen (int64: a bank's book fits many times over), never a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from sandu.analytics.portfolio import DrawingBalance
from sandu.ledger.overdue import NO_DUE, RiskClass, days_past_due_vector

PRINCIPAL = ("principal", "overdue_principal")
OVERDUE = ("overdue_principal", "overdue_interest", "penalty", "compound")
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
    """`days` (ascending); `line_ids`, `drawing_ids` and `grace_days` per drawing; `buckets` the loan buckets;
    `sums[drawing, bucket, day]` the balance through each day and `drawn[drawing, day]` what its draw entries put
    into principal through it; histories as arrays sorted by (drawing index, day, id)."""

    days: tuple[date, ...]
    line_ids: np.ndarray
    drawing_ids: np.ndarray
    grace_days: np.ndarray
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

    def risk_classes(self, day: date) -> list[str]:
        drawing, on, cls = self.classes
        at = last_rows(drawing, on, len(self.drawing_ids), day)
        names = [c.value for c in RiskClass]
        return [names[cls[i]] if i >= 0 else RiskClass.NORMAL.value for i in at.tolist()]

    def owing(self, day: date) -> np.ndarray:
        """The indices of the drawings with anything receivable through `day`, by drawing id."""
        return np.nonzero(self.sums[:, :, self._k(day)].any(axis=1))[0]

    def balances(self, day: date) -> list[DrawingBalance]:
        """Every drawing owing anything through `day`: its buckets, class and DPD (as `drawing_balances`)."""
        k = self._k(day)
        rows = self.owing(day)
        dpd, classes = self.dpd(day), self.risk_classes(day)
        sums = self.sums[rows, :, k].tolist()
        return [DrawingBalance(int(self.line_ids[i]), int(self.drawing_ids[i]), {b: v for b, v in zip(self.buckets, s, strict=True) if v},
                               classes[i], int(dpd[i])) for i, s in zip(rows.tolist(), sums, strict=True)]

    def roll_state(self, day: date) -> dict[int, tuple[int, int, int]]:
        """Drawing id → (line id, DPD, principal) of the drawings owing anything through `day`."""
        rows = self.owing(day)
        dpd, principal = self.dpd(day)[rows], self._measure(PRINCIPAL, self._k(day))[rows]
        return dict(zip(self.drawing_ids[rows].tolist(), zip(self.line_ids[rows].tolist(), dpd.tolist(), principal.tolist(), strict=True),
                        strict=True))

    def line_sums(self, day: date) -> tuple[dict[int, int], dict[int, int]]:
        """Per line through `day`: what its draw entries put into principal, and what is overdue (as `line_sums_through`)."""
        k = self._k(day)
        lines, inverse = np.unique(self.line_ids, return_inverse=True)
        drawn, overdue = np.zeros(len(lines), dtype=np.int64), np.zeros(len(lines), dtype=np.int64)
        np.add.at(drawn, inverse, self.drawn[:, k])
        np.add.at(overdue, inverse, self._measure(OVERDUE, k))
        ids = lines.tolist()
        return ({i: v for i, v in zip(ids, drawn.tolist(), strict=True) if v}, {i: v for i, v in zip(ids, overdue.tolist(), strict=True) if v})
