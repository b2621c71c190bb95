"""The tech evaluation (科创评价) over a whole table: `evaluate_tech` column by column.

`evaluate_tech_frame(frame, config)` gives, for each row of a table of profile
features, what `sandu.scoring.tech.evaluate_tech` gives for that row's feature
dict: the 0–100 score, the grade, and the two official qualifications (MOST
科技型中小企业, MIIT 创新型中小企业). It reads the same config data
(`sandu.scoring.tech_config`): every band, weight, pass mark and grade comes from
there, and a test proves the two forms equal row for row (random tables and the
band edges). The words (indicators, strengths, weaknesses) stay with the scalar
form: a batch needs the numbers.

How a column is read mirrors how the scalar form reads one value ("no data is
never guessed"): a column that is absent, or of a type the scalar form would not
accept for every value (a count must be an integer column, a number an integer or
float column, a flag a boolean column, the education a string column, the
certifications a list of strings), is "no data" in every row; a null, a NaN or an
infinity, or a negative count, is "no data" in its row.

Exactness. The scalar form compares `Decimal(str(x))` with decimal thresholds. For
a float `x` and a threshold `m` of at most 15 significant digits that is the same as
comparing `x` with `float(m)` (`m` is then the shortest text of `float(m)`, and the
shortest text of any other float lies on its own side of `m`), so thresholds are
turned into floats once and refused beyond 15 digits. The patent density
(``invention_patents × 100 / headcount``) is compared in floats and recomputed
exactly (`Decimal`) in the rows whose density lies within a hair of a threshold.
The score is summed in hundredths of a point (integers) and rounded half-up to
tenths, as the scalar form rounds its `Decimal` sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal
from typing import Any

import numpy as np
import polars as pl

from sandu.scoring.tech_config import EDUCATION_LEVELS, Band, BelowBand, CountBand, TechConfig

MAX_THRESHOLD_DIGITS = 15  # significant digits of a threshold compared as a float
EDGE_TOLERANCE = 1e-9  # relative: a density this close to a threshold is recomputed exactly
OUTPUT_SCHEMA: dict[str, Any] = {
    "tech_score": pl.Decimal(38, 1),
    "tech_grade": pl.String,
    "tech_most_pass": pl.Boolean,
    "tech_innovative_pass": pl.Boolean,
}
COUNT_FEATURES = ("headcount", "revenue_fen", "total_assets_fen", "invention_patents", "utility_models", "software_copyrights",
                  "high_value_invention_patents", "invention_patents_12m_ago")
NUMBER_FEATURES = ("tech_staff_ratio", "rd_ratio", "rd_growth", "revenue_growth", "debt_to_assets", "main_business_share",
                   "management_tenure_years", "tech_revenue_share")
FEATURES = (*COUNT_FEATURES, *NUMBER_FEATURES, "certifications", "strategic_emerging_industry", "founder_education")


class _Known:
    """A column's values and where they are known (`ok`); unknown values are 0 and never read."""

    def __init__(self, values: np.ndarray, ok: np.ndarray):
        self.values = np.where(ok, values, 0)
        self.ok = ok


def _threshold(m: Decimal) -> float:
    if len(m.normalize().as_tuple().digits) > MAX_THRESHOLD_DIGITS:
        raise ValueError(f"tech config threshold {m} has more than {MAX_THRESHOLD_DIGITS} significant digits; the table form compares floats")
    return float(m)


def _column(frame: pl.DataFrame, name: str) -> pl.Series | None:
    return frame.get_column(name) if name in frame.columns else None


def _count(frame: pl.DataFrame, name: str) -> _Known:
    s, n = _column(frame, name), frame.height
    if s is None or not s.dtype.is_integer():
        return _Known(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))
    x = s.cast(pl.Int64).fill_null(-1).to_numpy()
    return _Known(x, x >= 0)


def _number(frame: pl.DataFrame, name: str) -> _Known:
    s, n = _column(frame, name), frame.height
    if s is None or not (s.dtype.is_integer() or s.dtype.is_float()):
        return _Known(np.zeros(n, dtype=np.float64), np.zeros(n, dtype=bool))
    x = s.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return _Known(x, np.isfinite(x))


def _flag(frame: pl.DataFrame, name: str) -> _Known:
    s, n = _column(frame, name), frame.height
    if s is None or s.dtype != pl.Boolean:
        return _Known(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    return _Known(s.fill_null(False).to_numpy(), s.is_not_null().to_numpy())


def _band(x: _Known, bands: Sequence[Band] | Sequence[CountBand]) -> np.ndarray:
    """The points of the first band (best first) the value reaches; 0 without data or below every band."""
    pts = np.zeros(x.ok.size, dtype=np.int64)
    for b in reversed(bands):  # worst first: a better band overrides
        limit = b.min if isinstance(b, CountBand) else _threshold(b.min)
        pts = np.where(x.ok & (x.values >= limit), b.points, pts)
    return pts


def _below(x: _Known, bands: Sequence[BelowBand]) -> np.ndarray:
    pts = np.zeros(x.ok.size, dtype=np.int64)
    for b in reversed(bands):
        pts = np.where(x.ok & (x.values < _threshold(b.below)), b.points, pts)
    return pts


def _density_band(inv: _Known, head: _Known, bands: Sequence[Band]) -> np.ndarray:
    """Invention patents per 100 staff (no data without a positive headcount), exact at the thresholds."""
    ok = inv.ok & head.ok & (head.values > 0)
    density = np.where(ok, inv.values * 100.0 / np.where(ok, head.values, 1), 0.0)
    pts = _band(_Known(density, ok), bands)
    limits = np.array([_threshold(b.min) for b in bands])
    near = ok & (np.abs(density[:, None] - limits[None, :]) <= EDGE_TOLERANCE * np.maximum(1.0, np.abs(limits[None, :]))).any(axis=1)
    for i in np.flatnonzero(near):  # a handful of rows at most: the scalar form's own arithmetic
        exact = Decimal(int(inv.values[i])) * 100 / Decimal(int(head.values[i]))
        pts[i] = next((b.points for b in bands if exact >= b.min), 0)
    return pts


def _certificates(frame: pl.DataFrame) -> tuple[np.ndarray, pl.Series | None]:
    """(known, the list column) — a list of strings; a null list is no data."""
    s = _column(frame, "certifications")
    if s is None or s.dtype != pl.List(pl.String):
        return np.zeros(frame.height, dtype=bool), None
    return s.is_not_null().to_numpy(), s


class _Holds:
    """Which rows' certifications (the list column, or None: no column) hold a name: each name looked for once per
    frame, and in the lists only when some row holds it (a config names a dozen certificates, a frame holds a few)."""

    def __init__(self, certs: pl.Series | None, n: int):
        self._certs, self._n = certs, n
        self._names = frozenset() if certs is None else frozenset(certs.explode(empty_as_null=False).drop_nulls().unique().to_list())
        self._held: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        """One bool per row (read-only: shared by every caller of the same name)."""
        if (held := self._held.get(name)) is None:
            held = self._certs.list.contains(name).fill_null(False).to_numpy() if self._certs is not None and name in self._names \
                else np.zeros(self._n, dtype=bool)
            held.flags.writeable = False
            self._held[name] = held
        return held

    def any_of(self, names: Sequence[str]) -> np.ndarray:
        held = np.zeros(self._n, dtype=bool)
        for name in names:
            held |= self(name)
        return held


def _most(frame: pl.DataFrame, c: TechConfig, ip: tuple[_Known, _Known], holds: _Holds) -> tuple[np.ndarray, np.ndarray]:
    """(points 0–100, qualified) of 科技型中小企业."""
    m, n = c.most, frame.height
    invention, class_ii = ip
    staff_pts = _band(_number(frame, "tech_staff_ratio"), m.tech_staff_ratio)
    rd_pts = _band(_number(frame, "rd_ratio"), m.rd_ratio)
    ip_pts = np.where(invention.ok & (invention.values >= m.class_i_min), m.class_i_points, _band(class_ii, m.class_ii))
    total = staff_pts + rd_pts + ip_pts
    exceeded = np.zeros(n, dtype=bool)
    for key, limit in (("headcount", m.max_headcount), ("revenue_fen", m.max_revenue_fen), ("total_assets_fen", m.max_total_assets_fen)):
        x = _count(frame, key)
        exceeded |= x.ok & (x.values > limit)
    automatic = holds.any_of(m.automatic_pass)
    staff_fails = np.full(n, m.staff_points_required) & (staff_pts == 0)
    passed = ~exceeded & (automatic | (~staff_fails & (total >= m.pass_points)))
    return total, passed


def _innovative(frame: pl.DataFrame, c: TechConfig, ip: tuple[_Known, _Known], holds: _Holds) -> tuple[np.ndarray, np.ndarray]:
    """(points 0–100, qualified) of 创新型中小企业."""
    k = c.innovative
    invention, class_ii = ip
    high_value = _count(frame, "high_value_invention_patents")
    ip_pts = np.where(high_value.ok & (high_value.values >= 1), k.ip_high_value_points,
                      np.where(invention.ok & (invention.values >= 1), k.ip_class_i_points,
                               np.where(class_ii.ok & (class_ii.values >= 1), k.ip_class_ii_points, 0)))
    rd_pts = _band(_number(frame, "rd_ratio"), k.rd_ratio)
    growth_pts = _band(_number(frame, "revenue_growth"), k.revenue_growth)
    debt_pts = _below(_number(frame, "debt_to_assets"), k.debt_ratio)
    main_pts = _band(_number(frame, "main_business_share"), k.main_business_share)
    field = _flag(frame, "strategic_emerging_industry")
    field_pts = np.where(field.ok, np.where(field.values, k.strategic_emerging_points, k.other_field_points), 0)
    total = ip_pts + rd_pts + growth_pts + debt_pts + field_pts + main_pts
    groups_pass = ((ip_pts + rd_pts >= k.min_innovation) & (growth_pts + debt_pts >= k.min_growth)
                   & (field_pts + main_pts >= k.min_specialisation) & (total >= k.pass_points))
    return total, holds.any_of(k.automatic_pass) | groups_pass


def _education(frame: pl.DataFrame, c: TechConfig) -> np.ndarray:
    s = _column(frame, "founder_education")
    if s is None or s.dtype != pl.String:
        return np.zeros(frame.height, dtype=np.int64)
    levels = list(EDUCATION_LEVELS)
    points = [getattr(c.bank.team_education, level) for level in levels]
    return s.replace_strict(levels, points, default=0, return_dtype=pl.Int64).fill_null(0).to_numpy()


def _bank_hundredths(frame: pl.DataFrame, c: TechConfig, known_certs: np.ndarray, holds: _Holds) -> np.ndarray:
    """The bank's indicators, in hundredths of a point."""
    b, w, n = c.bank, c.weights, frame.height
    inv, head, prev = _count(frame, "invention_patents"), _count(frame, "headcount"), _count(frame, "invention_patents_12m_ago")
    trend = _Known(inv.values - prev.values, inv.ok & prev.ok)
    cert_pts = np.zeros(n, dtype=np.int64)
    for name, points in b.certifications.items():
        cert_pts += np.where(known_certs & holds(name), points, 0)
    points = (
        _density_band(inv, head, b.invention_density)
        + _band(trend, b.invention_trend)
        + _band(_number(frame, "rd_ratio"), b.rd_intensity)
        + _band(_number(frame, "rd_growth"), b.rd_growth)
        + _band(_number(frame, "tech_staff_ratio"), b.tech_staff)
        + _education(frame, c)
        + _band(_number(frame, "management_tenure_years"), b.team_tenure)
        + np.minimum(w.certifications, cert_pts)
        + _band(_number(frame, "tech_revenue_share"), b.commercialisation)
    )
    return points * 100


def _grades(c: TechConfig, tenths: np.ndarray) -> pl.Series:
    """The best grade whose min_score the score (in tenths) reaches — `TechConfig.grade_of` on whole tenths."""
    at = np.full(tenths.size, len(c.grades) - 1, dtype=np.int64)  # below every min_score: the last grade
    for k in reversed(range(len(c.grades))):  # worst first: a better grade overrides
        least = int((c.grades[k].min_score * 10).to_integral_value(rounding=ROUND_CEILING))
        at = np.where(tenths >= least, k, at)
    return pl.Series("tech_grade", [g.grade for g in c.grades], dtype=pl.String).gather(at)  # a native gather, no Python strings per row


def evaluate_tech_frame(frame: pl.DataFrame, config: TechConfig) -> pl.DataFrame:
    """One row per row of `frame` (columns named as the profile's features, see `FEATURES`; others are
    ignored), in order: ``tech_score`` (0–100, one decimal), ``tech_grade``, ``tech_most_pass``,
    ``tech_innovative_pass`` — what `evaluate_tech` gives for each row."""
    n = frame.height
    utility, software = _count(frame, "utility_models"), _count(frame, "software_copyrights")
    ip = (_count(frame, "invention_patents"), _Known(utility.values + software.values, utility.ok | software.ok))
    known_certs, certs = _certificates(frame)
    holds = _Holds(certs, n)
    most_points, most_pass = _most(frame, config, ip, holds)
    innovative_points, innovative_pass = _innovative(frame, config, ip, holds)
    hundredths = (config.weights.most * most_points + config.weights.innovative * innovative_points
                  + _bank_hundredths(frame, config, known_certs, holds))
    tenths = (hundredths + 5) // 10  # half-up: the sum is never negative
    assert n == 0 or (0 <= tenths.min() and tenths.max() <= 1000), "the config's weights add up to 100 and no indicator exceeds its weight"
    return pl.DataFrame([
        (pl.Series("tech_score", tenths, dtype=pl.Int64).cast(pl.Decimal(38, 0)) * Decimal("0.1")).cast(OUTPUT_SCHEMA["tech_score"]),
        _grades(config, tenths),
        pl.Series("tech_most_pass", most_pass, dtype=pl.Boolean),
        pl.Series("tech_innovative_pass", innovative_pass, dtype=pl.Boolean),
    ])
