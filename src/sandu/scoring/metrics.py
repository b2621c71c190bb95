"""Measures of a score, in numpy alone (the scorer and the report import no training library).

Convention: `y` is 1 for a bad (the event), 0 for a good; `p` is any score that grows
with the risk of being bad (a PD, or minus the points). Ties are handled exactly:
the AUC is the Mann-Whitney statistic with mid-ranks, the ROC and KS step over
distinct score values, so a constant score has AUC 0.5 and KS 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PSI_FLOOR = 1e-4  # share given to an empty band on either side, so the PSI stays finite
MAX_BANDS = 100


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(np.int8, copy=False)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y and p must be two 1-d arrays of one length, got shapes {y.shape} and {p.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must hold 0 (good) and 1 (bad) only")
    if np.isnan(p).any():
        raise ValueError("p must not hold NaN")
    return y, p


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve; needs at least one good and one bad."""
    y, p = _check(y, p)
    n_bad = int(y.sum())
    n_good = y.size - n_bad
    if n_bad == 0 or n_good == 0:
        raise ValueError(f"the AUC needs goods and bads, got {n_good} goods and {n_bad} bads")
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    ranks = np.empty(p.size, dtype=np.float64)
    # mid-ranks of ties: each run of equal scores gets the mean of its positions
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]
    ends = np.r_[starts[1:], p.size]
    mid = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mid, ends - starts)
    return float((ranks[y == 1].sum() - n_bad * (n_bad + 1) / 2) / (n_bad * n_good))


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate), from (0, 0) to (1, 1), one step per distinct score."""
    y, p = _check(y, p)
    n_bad = int(y.sum())
    n_good = y.size - n_bad
    if n_bad == 0 or n_good == 0:
        raise ValueError(f"the ROC needs goods and bads, got {n_good} goods and {n_bad} bads")
    order = np.argsort(-p, kind="mergesort")
    sorted_p, sorted_y = p[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_p)), p.size - 1]
    tp = np.cumsum(sorted_y)[last_of_run]
    fp = (last_of_run + 1) - tp
    return np.r_[0.0, fp / n_good], np.r_[0.0, tp / n_bad]


def ks(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the bads' and the goods' cumulative shares (either way round)."""
    fpr, tpr = roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bands (each sums to 1)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_edges(values: np.ndarray, bands: int) -> np.ndarray:
    """Inner edges cutting `values` into at most `bands` bands of about equal size (distinct edges)."""
    if not 2 <= bands <= MAX_BANDS:
        raise ValueError(f"bands must be within 2..{MAX_BANDS}, got {bands}")
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(v, np.linspace(0, 1, bands + 1)[1:-1], method="lower"))


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of `values` in each band of `edges` (len(edges) + 1 bands, left-closed), NaN in one more band at the end."""
    v = np.asarray(values, dtype=np.float64)
    nan = np.isnan(v)
    idx = np.where(nan, edges.size + 1, np.searchsorted(edges, np.where(nan, 0.0, v), side="right"))
    counts = np.bincount(idx, minlength=edges.size + 2).astype(np.float64)
    return counts / max(1, v.size)


@dataclass(frozen=True)
class Band:
    """One score band of a calibration table: how many, how many bad, the mean PD predicted."""

    low: float
    high: float
    count: int
    bad: int
    pd_mean: float

    @property
    def bad_rate(self) -> float:
        return self.bad / self.count if self.count else math.nan


def calibration(y: np.ndarray, score: np.ndarray, pd: np.ndarray, bands: int = 10) -> list[Band]:
    """Observed bad rate against the mean predicted PD in `bands` score bands of about equal size, low scores first."""
    y, pd = _check(y, pd)
    score = np.asarray(score, dtype=np.float64)
    edges = quantile_edges(score, bands)
    idx = np.searchsorted(edges, score, side="right")
    out = []
    for k in range(edges.size + 1):
        mask = idx == k
        if not mask.any():
            continue
        out.append(Band(float(score[mask].min()), float(score[mask].max()), int(mask.sum()), int(y[mask].sum()), float(pd[mask].mean())))
    return out
