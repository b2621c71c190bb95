"""Model monitoring: is the population the scorecard now scores the one it was trained on? Pure.

For each feature, the population stability index (PSI) between its bins' shares in the training data (the counts
the artifact keeps for every bin and for missing values) and its shares among recent applications; for the score,
the PSI between the first week of the period and each later week (the artifact does not keep the training scores'
distribution). Weekly: the applications are grouped by ISO week of their decision day; a week whose PSI reaches
`PSI_SHIFTED` for any feature or for the score raises an alert naming them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from sandu.scoring import metrics
from sandu.scoring.report import PSI_SHIFTED, SCORE_BANDS, Stability, _bin_shares
from sandu.scoring.scorecard import Scorecard, score_frame

MIN_ROWS_PER_WEEK = 30  # fewer applications in a week: its PSI is not computed (too noisy to alert on)


def training_shares(card: Scorecard) -> dict[str, np.ndarray]:
    """Per feature, the training data's share of each bin, then missing, special and unseen (as `_bin_shares` orders them)."""
    out = {}
    for f in card.artifact["features"]:
        counts = [b["count"] for b in f["bins"]] + [f["missing"].get("count", 0), 0, 0]
        total = sum(counts)
        out[f["name"]] = np.asarray(counts, dtype=np.float64) / max(1, total)
    return out


@dataclass(frozen=True)
class Week:
    starts_on: date  # the Monday
    applications: int
    score: Stability | None  # None for the reference (first) week, or too few applications
    features: tuple[Stability, ...]

    @property
    def alerts(self) -> tuple[str, ...]:
        shifted = [s for s in (self.score, *self.features) if s is not None and s.psi >= PSI_SHIFTED]
        return tuple(s.name for s in shifted)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly(card: Scorecard, frame: pl.DataFrame, days: list[date]) -> list[Week]:
    """`frame`'s rows (the scorecard's features, one application each, decided on `days`) week by week."""
    assert frame.height == len(days)
    if frame.height == 0:
        return []
    train = training_shares(card)
    mondays = [_monday(d) for d in days]
    frame = frame.with_columns(pl.Series("_week", mondays))
    scores = score_frame(card, frame, max_reasons=0).get_column("score").to_numpy().astype(np.float64)
    frame = frame.with_columns(pl.Series("_score", scores))
    weeks = sorted(set(mondays))
    reference = frame.filter(pl.col("_week") == weeks[0])["_score"].to_numpy()
    cut = metrics.quantile_edges(reference, SCORE_BANDS)
    out = []
    for k, monday in enumerate(weeks):
        rows = frame.filter(pl.col("_week") == monday)
        if rows.height < MIN_ROWS_PER_WEEK:
            out.append(Week(monday, rows.height, None, ()))
            continue
        now = _bin_shares(card, rows)
        features = tuple(Stability(name, metrics.psi(train[name], now[name][1]),
                                   tuple((band, float(b), float(c)) for band, b, c in zip(now[name][0], train[name], now[name][1], strict=True)
                                         if b or c))
                         for name in train)
        score = None
        if k and cut.size:
            e, a = metrics.shares(reference, cut)[:-1], metrics.shares(rows["_score"].to_numpy(), cut)[:-1]
            score = Stability("score", metrics.psi(e, a), ())
        out.append(Week(monday, rows.height, score, features))
    return out
