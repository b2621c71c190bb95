"""A trained WOE scorecard read from its JSON artifact, scoring one record or a whole table.

This module imports numpy and polars only: a decision or a batch scores with the file
alone, never with the training libraries (`sandu.scoring.train` writes the file).

The artifact (format `sandu.scorecard`, version 1) holds, per feature, its bins with
their training counts, weight of evidence and points; the scale; the training metrics;
the data's hash and the library versions; and `sha256`, the canonical hash of
everything else, so an edited artifact is refused.

Reading a value (the same rule in the scalar and the vectorized form, proven equal by tests):

- numeric feature: the bins are `(-inf, s1), [s1, s2), …, [sk, +inf)` over its `splits`,
  so a value beyond anything seen in training falls into the first or the last bin;
  a boolean counts as 0/1; a value listed in `special.values` scores the special bin;
  an absent value, None or NaN scores the missing bin; in the scalar form a value of
  another type (text, a list) also scores the missing bin, in a table a column that
  cannot be read as numbers is refused naming the column, the row and the value;
- categorical feature: a text value scores the bin that lists it; an absent value or
  None scores the missing bin; a category not seen in training scores the `unseen` bin;
- a missing or special bin that held no training record, and the `unseen` bin, score
  **the feature's worst bin** (fewest points): data the model never learned from is
  never rewarded. The artifact states this as each bin's `rule`.

Score: `points = base_points + Σ bin points`, rounded half-up to a whole point. The PD
comes from the same points on the PDO scale — log-odds of bad =
(offset − points) / factor with factor = pdo / ln 2 and offset = base_score − factor ×
ln(base_odds) — so points and PD never disagree. Reasons: the features whose bin cost
the most points against the feature's best bin, largest first, in words.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from sandu.domain.errors import show
from sandu.sources.profile import canonical_sha256

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "sandu.scorecard"
FORMAT_VERSION = 1
MAX_FEATURES = 200
MAX_BINS = 100  # bins of one feature, besides missing / special / unseen
MAX_CATEGORIES = 10_000  # categories of one categorical feature
MAX_SPECIAL_VALUES = 20
MAX_TEXT = 500
MAX_NUMBER = 1e12
MAX_LOGIT = 30.0
MAX_REASONS = 3
KINDS = ("numeric", "categorical")
RULE_TRAINED = "trained"
RULE_WORST = "worst bin"
_TOP_KEYS = {
    "format", "format_version", "name", "version", "description", "target", "scaling", "intercept", "features",
    "selection", "metrics", "data", "options", "libraries", "sha256",
}
_FEATURE_KEYS = {"name", "kind", "description", "coef", "iv", "splits", "bins", "missing", "special", "unseen"}
_BIN_KEYS = {"label", "categories", "count", "bad", "woe", "points"}
_EXTRA_BIN_KEYS = {"count", "bad", "woe", "points", "rule", "values"}


class ArtifactError(ValueError):
    """A scorecard artifact that cannot be used; `path` names the key (e.g. `features[2].bins[0].points`)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"scorecard {path}: {reason}")
        self.path = path
        self.reason = reason


class ScoringInputError(ValueError):
    """A table that cannot be scored: `column` names the column, the message the row and the value."""

    def __init__(self, column: str, reason: str):
        super().__init__(f"column {column!r}: {reason}")
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" | "categorical"
    description: str
    splits: tuple[float, ...]  # numeric: k inner edges → k + 1 bins
    labels: tuple[str, ...]  # one per bin
    bin_points: tuple[float, ...]
    categories: dict[str, int]  # categorical: category → bin index
    missing_points: float
    special_values: tuple[float, ...]
    special_points: float
    unseen_points: float  # categorical only (numeric bins are open-ended)

    @property
    def best_points(self) -> float:
        return max(self.bin_points)

    def reason(self, label: str) -> str:
        return f"{self.description}: {label}"


@dataclass(frozen=True)
class Scorecard:
    name: str
    version: str
    features: tuple[Feature, ...]
    base_points: float
    factor: float
    offset: float
    sha256: str
    artifact: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def logit_of_points(self, points: np.ndarray | float) -> np.ndarray:
        """The log-odds of bad of (unrounded) points, held within ±MAX_LOGIT."""
        return np.clip((self.offset - np.asarray(points, dtype=np.float64)) / self.factor, -MAX_LOGIT, MAX_LOGIT)

    def pd_of_points(self, points: np.ndarray | float) -> np.ndarray | float:
        """The PD of (unrounded) points. The exponential is libm's `math.exp`, value by value: numpy's
        vectorized exp may differ from the scalar one in the last bit, and one record must score
        exactly as it does in a whole file."""
        logit = self.logit_of_points(points)
        if logit.ndim == 0:
            return 1.0 / (1.0 + math.exp(-float(logit)))
        distinct, at = np.unique(logit, return_inverse=True)  # once per distinct value (rows sharing a bin tuple share it)
        e = np.fromiter((math.exp(-x) for x in distinct.tolist()), dtype=np.float64, count=distinct.size)
        return 1.0 / (1.0 + e[at.reshape(logit.shape)])


# ------------------------------------------------------------ reading an artifact


def _obj(value: object, path: str, keys: set[str], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArtifactError(path, f"must be an object, got {show(value)}")
    for key in required:
        if key not in value:
            raise ArtifactError(f"{path}.{key}" if path else key, "is missing")
    if unknown := sorted(str(k) for k in value if k not in keys):
        raise ArtifactError(path or "artifact", f"has unknown key {show(unknown[0])} (allowed: {', '.join(sorted(keys))})")
    return value


def _num(value: object, path: str, *, positive: bool = False, count: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (count and not isinstance(value, int)):
        raise ArtifactError(path, f"must be {'a whole number' if count else 'a number'}, got {show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ArtifactError(path, f"must be finite, got {value}")
    if abs(value) > MAX_NUMBER:
        raise ArtifactError(path, f"must be within ±{MAX_NUMBER:g}, got {show(value)}")
    if positive and value <= 0 or count and value < 0:
        raise ArtifactError(path, f"must be {'positive' if positive else 'zero or more'}, got {value}")
    return float(value)


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        raise ArtifactError(path, f"must be text of 1..{MAX_TEXT} characters, got {show(value)}")
    return value


def _list(value: object, path: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list) or not low <= len(value) <= high:
        got = f"{len(value)} items" if isinstance(value, list) else show(value)
        raise ArtifactError(path, f"must be a list of {low}..{high} items, got {got}")
    return value


def _extra(value: object, path: str, *, special: bool = False) -> tuple[float, str, tuple[float, ...]]:
    """(points, rule, special values) of a missing / special / unseen bin."""
    required = ("points", "rule") + (("values",) if special else ())
    d = _obj(value, path, _EXTRA_BIN_KEYS, required)
    rule = d["rule"]
    if rule not in (RULE_TRAINED, RULE_WORST):
        raise ArtifactError(f"{path}.rule", f"must be {RULE_TRAINED!r} or {RULE_WORST!r}, got {show(rule)}")
    values: tuple[float, ...] = ()
    if special:
        values = tuple(_num(v, f"{path}.values[{i}]") for i, v in enumerate(_list(d["values"], f"{path}.values", 0, MAX_SPECIAL_VALUES)))
    elif "values" in d:
        raise ArtifactError(f"{path}.values", "only the special bin lists values")
    return _num(d["points"], f"{path}.points"), rule, values


def _feature(value: object, path: str) -> Feature:
    f = _obj(value, path, _FEATURE_KEYS, ("name", "kind", "coef", "bins", "missing"))
    name = _text(f["name"], f"{path}.name")
    kind = f["kind"]
    if kind not in KINDS:
        raise ArtifactError(f"{path}.kind", f"must be one of {', '.join(KINDS)}, got {show(kind)}")
    _num(f["coef"], f"{path}.coef")
    bins = _list(f["bins"], f"{path}.bins", 1, MAX_BINS)
    labels, points, categories = [], [], {}
    for i, b in enumerate(bins):
        bp = f"{path}.bins[{i}]"
        b = _obj(b, bp, _BIN_KEYS, ("label", "points"))
        labels.append(_text(b["label"], f"{bp}.label"))
        points.append(_num(b["points"], f"{bp}.points"))
        if kind == "categorical":
            for j, c in enumerate(_list(b.get("categories"), f"{bp}.categories", 1, MAX_CATEGORIES)):
                if not isinstance(c, str):
                    raise ArtifactError(f"{bp}.categories[{j}]", f"must be text, got {show(c)}")
                if c in categories:
                    raise ArtifactError(f"{bp}.categories[{j}]", f"{show(c)} is already in bin {categories[c]}")
                categories[c] = i
            if len(categories) > MAX_CATEGORIES:
                raise ArtifactError(f"{path}.bins", f"must list at most {MAX_CATEGORIES} categories in all")
        elif "categories" in b:
            raise ArtifactError(f"{bp}.categories", "only a categorical feature's bins list categories")
    splits: tuple[float, ...] = ()
    if kind == "numeric":
        splits = tuple(_num(s, f"{path}.splits[{i}]") for i, s in enumerate(_list(f.get("splits"), f"{path}.splits", 0, MAX_BINS - 1)))
        if any(b <= a for a, b in zip(splits, splits[1:], strict=False)):
            raise ArtifactError(f"{path}.splits", "must be strictly increasing")
        if len(bins) != len(splits) + 1:
            raise ArtifactError(f"{path}.bins", f"must be one more than the splits ({len(splits) + 1}), got {len(bins)}")
        if "unseen" in f:
            raise ArtifactError(f"{path}.unseen", "only a categorical feature has an unseen bin (numeric bins are open-ended)")
    elif "splits" in f:
        raise ArtifactError(f"{path}.splits", "only a numeric feature has splits")
    missing_points, _, _ = _extra(f["missing"], f"{path}.missing")
    special_points, special_values = min(points), ()
    if "special" in f:
        if kind != "numeric":
            raise ArtifactError(f"{path}.special", "only a numeric feature has special values")
        special_points, _, special_values = _extra(f["special"], f"{path}.special", special=True)
    unseen_points = min(points)
    if kind == "categorical":
        if "unseen" not in f:
            raise ArtifactError(f"{path}.unseen", "is missing: a categorical feature says how an unseen category scores")
        unseen_points, _, _ = _extra(f["unseen"], f"{path}.unseen")
    return Feature(
        name=name,
        kind=kind,
        description=_text(f.get("description", name), f"{path}.description"),
        splits=splits,
        labels=tuple(labels),
        bin_points=tuple(points),
        categories=categories,
        missing_points=missing_points,
        special_values=special_values,
        special_points=special_points,
        unseen_points=unseen_points,
    )


def scorecard_from_json(data: object) -> Scorecard:
    """A `Scorecard` from its artifact, or `ArtifactError` naming the key path and the reason."""
    if not isinstance(data, dict):
        raise ArtifactError("artifact", f"must be a JSON object, got {show(data)}")
    if data.get("format") != FORMAT:
        raise ArtifactError("format", f"must be {FORMAT!r}, got {show(data.get('format'))} — is this a scorecard artifact?")
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ArtifactError("format_version", f"must be a whole number, got {show(version)}")
    if version > FORMAT_VERSION:
        raise ArtifactError("format_version", f"is {version}, newer than this sandu reads ({FORMAT_VERSION}): upgrade sandu to use it")
    if version < 1:
        raise ArtifactError("format_version", f"must be 1..{FORMAT_VERSION}, got {version}")
    d = _obj(data, "", _TOP_KEYS, ("name", "version", "scaling", "intercept", "features", "sha256"))
    body = {k: v for k, v in d.items() if k != "sha256"}
    digest = canonical_sha256(body)
    if d["sha256"] != digest:
        raise ArtifactError("sha256", f"does not match the content (the artifact was edited): recorded {show(d['sha256'])}, content {digest}")
    scaling = _obj(d["scaling"], "scaling", {"pdo", "base_odds", "base_score", "factor", "offset", "base_points"},
                   ("pdo", "base_odds", "base_score", "base_points"))
    pdo = _num(scaling["pdo"], "scaling.pdo", positive=True)
    base_odds = _num(scaling["base_odds"], "scaling.base_odds", positive=True)
    base_score = _num(scaling["base_score"], "scaling.base_score")
    factor = pdo / math.log(2)
    feats = tuple(_feature(f, f"features[{i}]") for i, f in enumerate(_list(d["features"], "features", 1, MAX_FEATURES)))
    names = [f.name for f in feats]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ArtifactError("features", f"name {show(dup)} appears twice")
    _num(d["intercept"], "intercept")
    return Scorecard(
        name=_text(d["name"], "name"),
        version=_text(d["version"], "version"),
        features=feats,
        base_points=_num(scaling["base_points"], "scaling.base_points"),
        factor=factor,
        offset=base_score - factor * math.log(base_odds),
        sha256=digest,
        artifact=data,
    )


def read_scorecard(path: Path) -> Scorecard:
    """The scorecard in the file at `path`; `ArtifactError` for anything that is not a valid artifact."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArtifactError("file", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError("file", f"{path} is not JSON: {exc}") from None
    return scorecard_from_json(data)


def is_scorecard_artifact(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


# ---------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class RecordScore:
    points: int
    pd: float
    feature_points: tuple[float, ...]
    reasons: tuple[str, ...]


def _numeric_points(f: Feature, raw: Any) -> tuple[float, int | None]:
    """(points, bin index or None for missing/special)."""
    if raw is None or isinstance(raw, (str, bytes, list, dict, tuple)) or not isinstance(raw, (int, float, bool)):
        return f.missing_points, None
    try:
        x = float(raw)
    except OverflowError:  # an int beyond float: it lies beyond every split
        x = math.inf if raw > 0 else -math.inf
    if math.isnan(x):
        return f.missing_points, None
    if x in f.special_values:
        return f.special_points, None
    i = bisect.bisect_right(f.splits, x)  # the splits are floats: as score_frame's searchsorted(side="right") places it
    return f.bin_points[i], i


def _categorical_points(f: Feature, raw: Any) -> tuple[float, int | None]:
    if raw is None:
        return f.missing_points, None
    key = raw if isinstance(raw, str) else str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else None
    if key is None or key not in f.categories:
        return f.unseen_points, None
    i = f.categories[key]
    return f.bin_points[i], i


def _label(f: Feature, raw: Any, i: int | None) -> str:
    """The bin's label, or the words for the missing, special and unseen bins (as `score_frame` writes them)."""
    if i is not None:
        return f.labels[i]
    if f.kind == "numeric" and isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw in f.special_values:
        return "special value"
    if f.kind == "categorical" and raw is not None:
        return "unseen category"
    return "missing"


def round_half_up(total: float) -> int:
    """Points to a whole point, half up; the same float operations as in `score_frame`."""
    return int(np.floor(np.round(total, 9) + 0.5))


def score_record(card: Scorecard, record: dict[str, Any], max_reasons: int = MAX_REASONS) -> RecordScore:
    """Score one record (a dict of feature → value; absent features are missing)."""
    if isinstance(max_reasons, bool) or not isinstance(max_reasons, int) or not 0 <= max_reasons <= MAX_FEATURES:
        raise ValueError(f"max_reasons must be an integer 0..{MAX_FEATURES}, got {show(max_reasons)}")
    if not isinstance(record, dict):
        raise ValueError(f"record must be a dict of feature → value, got {show(record)}")
    pts, costs = [], []
    for f in card.features:
        raw = record.get(f.name)
        p, i = (_numeric_points if f.kind == "numeric" else _categorical_points)(f, raw)
        pts.append(p)
        costs.append((f.best_points - p, f, raw, i))
    subtotal = 0.0
    for p in pts:  # in feature order, as `score_frame` adds the columns
        subtotal += p
    total = card.base_points + subtotal
    order = sorted(range(len(costs)), key=lambda k: (-costs[k][0], k))
    reasons = tuple(costs[k][1].reason(_label(costs[k][1], costs[k][2], costs[k][3])) for k in order[:max_reasons] if costs[k][0] > 0)
    return RecordScore(points=round_half_up(total), pd=float(card.pd_of_points(total)), feature_points=tuple(pts), reasons=reasons)


def _numeric_column(f: Feature, s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(points, bin index; -1 missing, -2 special) of a numeric column."""
    if s.dtype == pl.Boolean:
        s = s.cast(pl.Int8)
    if s.dtype == pl.Null:
        s = s.cast(pl.Float64)
    if not s.dtype.is_numeric():
        cast = s.cast(pl.Float64, strict=False)
        bad = cast.is_null() & s.is_not_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ScoringInputError(f.name, f"row {row + 1} holds {show(s[row])}, not a number (numeric feature; empty means missing)")
        s = cast
    x = s.cast(pl.Float64).fill_null(np.nan).to_numpy()
    missing = np.isnan(x)
    special = np.isin(x, np.asarray(f.special_values, dtype=np.float64)) if f.special_values else np.zeros(x.size, dtype=bool)
    idx = np.searchsorted(np.asarray(f.splits, dtype=np.float64), np.where(missing, 0.0, x), side="right")
    points = np.asarray(f.bin_points, dtype=np.float64)[idx]
    points = np.where(special, f.special_points, np.where(missing, f.missing_points, points))
    return points, np.where(missing, -1, np.where(special, -2, idx))


def _categorical_column(f: Feature, s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(points, bin index; -1 missing, -3 unseen) of a categorical column."""
    if s.dtype == pl.Boolean or s.dtype.is_float():
        raise ScoringInputError(f.name, f"is {s.dtype}, a categorical feature needs text (or whole-number codes)")
    s = s.cast(pl.String)
    cats = list(f.categories)
    idx = s.replace_strict(cats, [f.categories[c] for c in cats], default=-3, return_dtype=pl.Int32)
    idx = idx.set(s.is_null(), -1) if s.null_count() else idx
    idx_np = idx.to_numpy()
    points = np.asarray(f.bin_points, dtype=np.float64)[np.maximum(idx_np, 0)]
    points = np.where(idx_np == -1, f.missing_points, np.where(idx_np == -3, f.unseen_points, points))
    return points, idx_np


def read_column(f: Feature, s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(points, bin index) of each value of the column of feature `f`: index ≥ 0 a bin,
    -1 missing, -2 special, -3 unseen."""
    return (_numeric_column if f.kind == "numeric" else _categorical_column)(f, s)


def _costliest(cost: np.ndarray, k: int) -> np.ndarray:
    """The indices of each column's k largest costs (features × rows in; k × rows out), largest first, ties in feature
    order — `np.argsort(-cost, axis=0, kind="stable")[:k]`, without sorting every column whole: k passes of argmax
    (which gives the first of equal values), each taking the found cost out."""
    rows = np.array(cost.T, order="C")  # a copy: one row's costs side by side
    at, order = np.arange(rows.shape[0]), np.empty((min(k, rows.shape[1]), rows.shape[0]), dtype=np.int64)
    for r in range(order.shape[0]):
        order[r] = rows.argmax(axis=1)
        rows[at, order[r]] = -np.inf
    return order


def lists_by_row(present: np.ndarray, values: pa.Array) -> pl.Series:
    """One list per row of `present` (rows × slots, bool) holding `values` in row-major order of the true cells."""
    import pyarrow as pa  # here: the online scoring never needs it (its import costs the server's start)

    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    series = pl.from_arrow(pa.ListArray.from_arrays(pl.Series(offsets).to_arrow(), values))
    assert isinstance(series, pl.Series)
    return series


def _word_lists(present: np.ndarray, words: pl.Series, at: np.ndarray) -> pl.Series:
    """`lists_by_row(present, words[at])`, built as lists of the words' indices (numbers go to Arrow and back without a
    copy) mapped to the words in polars: no column of texts goes through Arrow, a copy made holding the interpreter."""
    indices = lists_by_row(present, pl.Series(at, dtype=pl.UInt32).to_arrow())
    return indices.list.eval(pl.element().replace_strict(pl.Series(np.arange(words.len(), dtype=np.uint32)), words, return_dtype=pl.String))


def score_frame(card: Scorecard, frame: pl.DataFrame, max_reasons: int = MAX_REASONS, *, pd: bool = True, codes: bool = False,
                lists: bool = False) -> pl.DataFrame:
    """`frame` with `score`, `pd` and `reason_1`…`reason_{max_reasons}` appended, rows in their order. With `pd=False`,
    `points` (the unrounded total, a float) instead of `pd`: for a caller that derives the PD itself. With `codes`, also
    `reason_code_1`… : the feature each reason is about, by its name (a code a system downstream maps to its own words).
    With `lists`, each row's reasons (and codes) as one list, `reasons` (and `reason_codes`), in place of the columns
    (the non-null of `reason_1`… in order): gathered from the card's words once, with no text column per reason.

    A feature absent from the frame is refused (`ScoringInputError`): a whole column
    missing is a wrong file, not a missing value."""
    if not 0 <= max_reasons <= MAX_REASONS:
        raise ValueError(f"max_reasons must be within 0..{MAX_REASONS}, got {max_reasons}")
    absent = [f.name for f in card.features if f.name not in frame.columns]
    if absent:
        raise ScoringInputError(absent[0], f"is not in the file; the scorecard needs {', '.join(f.name for f in card.features)}")
    reason_columns = ["reasons", *(["reason_codes"] if codes else [])] if lists else \
        [*(f"reason_{k}" for k in range(1, MAX_REASONS + 1)), *(f"reason_code_{k}" for k in range(1, MAX_REASONS + 1) if codes)]
    clash = [c for c in ("score", "pd" if pd else "points", *reason_columns) if c in frame.columns]
    if clash:
        raise ScoringInputError(clash[0], "is already in the file and would be overwritten by the score; rename it")
    n = frame.height
    pts = np.empty((len(card.features), n), dtype=np.float64)
    idx = np.empty((len(card.features), n), dtype=np.int64)
    for j, f in enumerate(card.features):
        pts[j], idx[j] = read_column(f, frame.get_column(f.name))
    subtotal = np.zeros(n, dtype=np.float64)
    for j in range(len(card.features)):  # in feature order, one addition per feature, as `score_record` adds
        subtotal += pts[j]  # (numpy's sum may add pairwise, which rounds differently)
    total = card.base_points + subtotal
    score = np.floor(np.round(total, 9) + 0.5).astype(np.int64)  # as `round_half_up`
    out = frame.with_columns(pl.Series("score", score),
                             pl.Series("pd", np.asarray(card.pd_of_points(total), dtype=np.float64)) if pd else pl.Series("points", total))
    named = [f"reason_{k + 1}" for k in range(max_reasons)] + [f"reason_code_{k + 1}" for k in range(max_reasons) if codes]
    if (max_reasons == 0 or n == 0) and not lists:
        return out.with_columns(*(pl.lit(None, dtype=pl.String).alias(c) for c in named))
    cost = np.asarray([f.best_points for f in card.features])[:, None] - pts
    order = _costliest(cost, max_reasons)
    texts, first = [], []  # every feature's reason texts in one list: bins, then missing, special, unseen
    for f in card.features:
        first.append(len(texts))
        texts += [f.reason(lbl) for lbl in f.labels] + [f.reason("missing"), f.reason("special value"), f.reason("unseen category")]
    words = pl.Series(texts, dtype=pl.String)
    starts = np.asarray(first, dtype=np.int64)
    labels = np.asarray([len(f.labels) for f in card.features], dtype=np.int64)
    names = pl.Series([f.name for f in card.features], dtype=pl.String)
    rows_at = np.arange(n)
    chosen = idx[order, rows_at]  # reasons × rows: each reason's bin (or missing, special, unseen) in its feature
    at = starts[order] + np.where(chosen >= 0, chosen, labels[order] + (-chosen - 1))  # … and its words
    present = (cost[order, rows_at] > 0).T  # rows × reasons: no cost, no reason
    if lists:
        rows, ks = np.nonzero(present)  # row-major: each row's reasons in order
        made = [_word_lists(present, words, at[ks, rows]).alias("reasons")]
        if codes:
            made.append(_word_lists(present, names, order[ks, rows]).alias("reason_codes"))
        return out.with_columns(made).select(*frame.columns, "score", "pd" if pd else "points", *reason_columns)
    reasons, reason_codes = [], []
    for k in range(len(order)):
        none = pl.Series(~present[:, k])
        reasons.append(words.gather(pl.Series(at[k]).set(none, None)).alias(f"reason_{k + 1}"))
        if codes:
            reason_codes.append(names.gather(pl.Series(order[k]).set(none, None)).alias(f"reason_code_{k + 1}"))
    columns = reasons + reason_codes
    columns += [pl.repeat(None, n, dtype=pl.String, eager=True).alias(c)  # a card of fewer features gives fewer reasons
                for c in named if c not in {s.name for s in columns}]
    return out.with_columns(columns).select(*frame.columns, "score", "pd" if pd else "points", *named)
