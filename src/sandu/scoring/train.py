"""Train a WOE-binned logistic-regression scorecard and write its JSON artifact.

The only module of sandu that imports optbinning and scikit-learn (scoring reads the
artifact with `sandu.scoring.scorecard` alone). The steps, each recorded in the artifact:

1. **Read** — a polars DataFrame (the CLI reads CSV or Parquet). The target column's
   `bad` value marks the event; every other value is a good. Boolean columns are 0/1
   numbers; text and categorical columns are categorical; a numeric column may list
   special values (e.g. -999 for "not applicable") that get a bin of their own.
2. **Screen** — a candidate that is all missing or holds one value is dropped, with the
   reason; if nothing is left, `TrainingError`.
3. **Bin** — optbinning's `OptimalBinning` per feature: monotonic event rate where
   `monotonic="auto"` (the trend, ascending, descending, peak or valley, chosen by the
   data) or free bins (`"none"`); at least `min_bin_share` of the rows per bin; missing
   and special values in bins of their own.
4. **Select** — by information value (IV ≥ `min_iv`), then, strongest first, a feature is
   kept only if its WOE correlates with no kept feature beyond `max_corr`.
5. **Regress** — scikit-learn's L2 logistic regression on the WOE (bad-oriented: a bin's
   WOE = ln(bad share / good share), so every coefficient should be positive); a feature
   whose coefficient comes out ≤ 0 contradicts its own bins and is dropped, and the model
   refitted, until all are positive.
6. **Scale** — points on the PDO scale: `factor = pdo / ln 2`, `offset = base_score −
   factor × ln(base_odds)` (good:bad odds), a bin's points = −factor × coef × WOE, the base
   points = offset − factor × intercept; points are kept to 4 decimals.

The artifact is deterministic: the same data and options give the same bytes (no time
stamps; floats rounded; keys sorted).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import numpy as np
import polars as pl

from sandu.domain.errors import show
from sandu.domain.money import format_cn
from sandu.scoring import metrics
from sandu.scoring.scorecard import FORMAT, FORMAT_VERSION, MAX_FEATURES, MAX_SPECIAL_VALUES, RULE_TRAINED, RULE_WORST, scorecard_from_json
from sandu.sources.profile import canonical_sha256

MAX_TRAIN_ROWS = 20_000_000
MIN_TRAIN_ROWS = 20
MIN_CLASS_ROWS = 5
MONOTONIC = ("auto", "none")
WOE_SMOOTHING = 0.5  # added to a bin's bad and good counts, so an all-good or all-bad bin has a finite WOE
POINTS_PLACES = 4
WOE_PLACES = 6
LIBRARIES = ("optbinning", "scikit-learn", "numpy", "polars")


class TrainingError(ValueError):
    """Data or options that cannot train a scorecard: `field` names the option or column."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class TrainOptions:
    target: str
    bad: str  # compared with the target column's values as text
    features: tuple[str, ...] = ()  # () → every column but the target and `exclude`
    exclude: tuple[str, ...] = ()
    monotonic: str = "auto"
    special_values: tuple[float, ...] = ()
    min_iv: float = 0.02
    max_corr: float = 0.7
    min_bin_share: float = 0.02
    max_bins: int = 10
    regularization_c: float = 1.0
    pdo: float = 20.0
    base_odds: float = 50.0
    base_score: float = 600.0
    name: str = "risk-scorecard"
    version: str = "1"
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # feature → words for reasons

    def check(self) -> None:
        if self.monotonic not in MONOTONIC:
            raise TrainingError("--monotonic", f"must be one of {', '.join(MONOTONIC)}, got {show(self.monotonic)}")
        for name, value, low, high in (
            ("--min-iv", self.min_iv, 0.0, 10.0),
            ("--max-corr", self.max_corr, 0.0, 1.0),
            ("--min-bin-share", self.min_bin_share, 0.001, 0.5),
            ("--c", self.regularization_c, 1e-6, 1e6),
            ("--pdo", self.pdo, 1e-6, 1e6),
            ("--base-odds", self.base_odds, 1e-6, 1e6),
            ("--base-score", self.base_score, -1e6, 1e6),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high) or (name in ("--pdo", "--base-odds") and value <= 0):
                raise TrainingError(name, f"must be a number within {low:g}..{high:g}{' and above 0' if name in ('--pdo', '--base-odds') else ''}, got {show(value)}")
        if not 2 <= self.max_bins <= 50:
            raise TrainingError("--max-bins", f"must be within 2..50, got {self.max_bins}")
        if len(self.special_values) > MAX_SPECIAL_VALUES or not all(math.isfinite(v) for v in self.special_values):
            raise TrainingError("--special", f"must be at most {MAX_SPECIAL_VALUES} finite numbers, got {show(self.special_values)}")
        if overlap := set(self.features) & set(self.exclude):
            raise TrainingError("--exclude", f"{show(sorted(overlap)[0])} is both a feature and excluded")

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "bad": self.bad, "features": list(self.features), "exclude": list(self.exclude),
            "monotonic": self.monotonic, "special_values": list(self.special_values), "min_iv": self.min_iv,
            "max_corr": self.max_corr, "min_bin_share": self.min_bin_share, "max_bins": self.max_bins,
            "regularization_c": self.regularization_c,
        }


@dataclass
class _Binned:
    name: str
    kind: str
    iv: float
    splits: list[float]
    bins: list[dict[str, Any]]  # label, categories?, count, bad, woe
    missing: dict[str, Any]
    special: dict[str, Any] | None
    woe_column: np.ndarray


def target_vector(frame: pl.DataFrame, target: str, bad: str) -> np.ndarray:
    """1 where the target equals `bad` (compared as text), 0 elsewhere; refuses what cannot train."""
    if target not in frame.columns:
        raise TrainingError("--target", f"{show(target)} is not a column of the data (columns: {', '.join(frame.columns[:30])})")
    col = frame.get_column(target)
    if col.null_count():
        row = int(col.is_null().arg_true()[0])
        raise TrainingError("--target", f"{show(target)} is empty on row {row + 1}: every row needs its outcome")
    text = col.cast(pl.String)
    values = sorted(text.unique().to_list())
    if len(values) < 2:
        raise TrainingError("--target", f"{show(target)} holds one class only ({show(values[0]) if values else 'no rows'}): a scorecard needs goods and bads")
    if bad not in values:
        raise TrainingError("--bad", f"{show(bad)} never occurs in {show(target)} (values: {', '.join(map(repr, values[:20]))})")
    y = (text == bad).to_numpy().astype(np.int8)
    n_bad = int(y.sum())
    if min(n_bad, y.size - n_bad) < MIN_CLASS_ROWS:
        raise TrainingError("--bad", f"{n_bad} bads and {y.size - n_bad} goods: each class needs at least {MIN_CLASS_ROWS} rows")
    return y


def candidate_columns(frame: pl.DataFrame, opts: TrainOptions) -> list[str]:
    for name in (*opts.features, *opts.exclude):
        if name not in frame.columns:
            flag = "--features" if name in opts.features else "--exclude"
            raise TrainingError(flag, f"{show(name)} is not a column of the data")
    if opts.target in opts.features:
        raise TrainingError("--features", f"{show(opts.target)} is the target; it cannot also be a feature")
    names = list(opts.features) if opts.features else [c for c in frame.columns if c != opts.target and c not in opts.exclude]
    if not names:
        raise TrainingError("--features", "no candidate feature is left")
    if len(names) > MAX_FEATURES * 5:
        raise TrainingError("--features", f"{len(names)} candidates, more than {MAX_FEATURES * 5}; pick with --features or --exclude")
    return names


def _kind(s: pl.Series) -> str | None:
    if s.dtype == pl.Boolean or s.dtype.is_numeric():
        return "numeric"
    if s.dtype in (pl.String, pl.Categorical, pl.Enum):
        return "categorical"
    return None


def _fmt(x: float, name: str) -> str:
    """A split as a reader wants it: an amount in fen (a column named `…_fen…`, e.g. `revenue_fen_y1`) in 元/万/亿,
    anything else to 6 digits."""
    if "fen" in name.split("_") and abs(x) < 1e17:
        return format_cn(int(math.floor(x + 0.5)))
    return f"{x:.6g}"


def _woe(bad: np.ndarray, good: np.ndarray, n_bad: int, n_good: int) -> np.ndarray:
    return np.log(((bad + WOE_SMOOTHING) / (n_bad + WOE_SMOOTHING)) / ((good + WOE_SMOOTHING) / (n_good + WOE_SMOOTHING)))


def _bin_feature(name: str, kind: str, s: pl.Series, y: np.ndarray, opts: TrainOptions) -> _Binned:
    from optbinning import OptimalBinning

    n_bad, n_good = int(y.sum()), int(y.size - y.sum())
    if kind == "numeric":
        x = s.cast(pl.Float64).fill_null(np.nan).to_numpy()
        special = [v for v in opts.special_values if np.any(x == v)]
        ob = OptimalBinning(
            name=name, dtype="numerical", monotonic_trend="auto_asc_desc" if opts.monotonic == "auto" else None,
            min_prebin_size=opts.min_bin_share, min_bin_size=opts.min_bin_share, max_n_bins=opts.max_bins,
            special_codes=special or None,
        )
    else:
        x = s.cast(pl.String).to_numpy().astype(object)
        x[s.is_null().to_numpy()] = np.nan
        special = []
        ob = OptimalBinning(name=name, dtype="categorical", min_prebin_size=opts.min_bin_share, min_bin_size=opts.min_bin_share,
                            max_n_bins=opts.max_bins, cat_cutoff=opts.min_bin_share)
    with warnings.catch_warnings():  # optbinning's own deprecation notices (pandas) are not the user's concern
        warnings.simplefilter("ignore")
        ob.fit(x, y)
        table = ob.binning_table.build(show_digits=6)
    rows = table.iloc[:-1]  # the last row is the totals
    events = rows["Event"].to_numpy(dtype=np.int64)
    nonevents = rows["Non-event"].to_numpy(dtype=np.int64)
    labels = [str(v) for v in rows["Bin"].to_list()]
    k = len(labels) - 2  # the last two are Special and Missing
    woe = _woe(events.astype(float), nonevents.astype(float), n_bad, n_good)
    bins: list[dict[str, Any]] = []
    splits = [float(v) for v in ob.splits] if kind == "numeric" else []
    for i in range(k):
        b: dict[str, Any] = {"count": int(events[i] + nonevents[i]), "bad": int(events[i]), "woe": round(float(woe[i]), WOE_PLACES)}
        if kind == "numeric":
            lo = "-inf" if i == 0 else _fmt(splits[i - 1], name)
            hi = "+inf" if i == k - 1 else _fmt(splits[i], name)
            b["label"] = f"[{lo}, {hi})" if i else f"(-inf, {hi})"
        else:
            cats = sorted(str(c) for c in rows["Bin"].iloc[i])
            b["categories"] = cats
            b["label"] = " / ".join(cats) if len(cats) <= 4 else f"{' / '.join(cats[:3])} / … ({len(cats)})"
        bins.append(b)
    special_row = {"count": int(events[k] + nonevents[k]), "bad": int(events[k]), "woe": round(float(woe[k]), WOE_PLACES)}
    missing_row = {"count": int(events[k + 1] + nonevents[k + 1]), "bad": int(events[k + 1]), "woe": round(float(woe[k + 1]), WOE_PLACES)}
    # the WOE column the regression sees, by the scorer's own reading of values
    idx = _bin_index(kind, x, splits, bins, special)
    woe_of = np.array([b["woe"] for b in bins] + [missing_row["woe"], special_row["woe"]], dtype=np.float64)
    iv = float(np.sum(((events + WOE_SMOOTHING) / (n_bad + WOE_SMOOTHING) - (nonevents + WOE_SMOOTHING) / (n_good + WOE_SMOOTHING)) * woe))
    return _Binned(name, kind, iv, splits, bins, missing_row, {**special_row, "values": special} if kind == "numeric" else None, woe_of[idx])


def _bin_index(kind: str, x: np.ndarray, splits: list[float], bins: list[dict[str, Any]], special: list[float]) -> np.ndarray:
    """Bin of each training value: 0..k-1, k for missing, k+1 for special."""
    k = len(bins)
    if kind == "numeric":
        missing = np.isnan(x)
        idx = np.searchsorted(np.asarray(splits, dtype=np.float64), np.where(missing, 0.0, x), side="right")
        idx = np.where(missing, k, idx)
        return np.where(np.isin(x, special), k + 1, idx) if special else idx
    lookup = {c: i for i, b in enumerate(bins) for c in b["categories"]}
    return np.fromiter((k if not isinstance(v, str) else lookup.get(v, k) for v in x), dtype=np.int64, count=x.size)


def data_sha256(frame: pl.DataFrame) -> str:
    """The hash of a table's content (its CSV form): the same rows and columns give the same hash."""
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def _fit(X: np.ndarray, y: np.ndarray, c: float) -> tuple[float, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, solver="lbfgs", max_iter=1000, tol=1e-8)
    lr.fit(X, y)
    return float(lr.intercept_[0]), lr.coef_[0].astype(np.float64)


def _versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:  # pragma: no cover - installed with sandu
            out[lib] = "unknown"
    return out


def train(frame: pl.DataFrame, opts: TrainOptions, *, data_hash: str | None = None,
          progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """The scorecard artifact (a JSON-ready dict, sealed with its sha256) trained on `frame`."""
    opts.check()
    if not MIN_TRAIN_ROWS <= frame.height <= MAX_TRAIN_ROWS:
        raise TrainingError("--data", f"has {frame.height:,} rows; training needs {MIN_TRAIN_ROWS}..{MAX_TRAIN_ROWS:,}")
    y = target_vector(frame, opts.target, opts.bad)
    names = candidate_columns(frame, opts)
    dropped: list[dict[str, str]] = []
    binned: list[_Binned] = []
    for done, name in enumerate(names):
        if progress:
            progress(name, done, len(names))
        s = frame.get_column(name)
        kind = _kind(s)
        if kind is None:
            dropped.append({"feature": name, "reason": f"type {s.dtype} is neither numbers nor text"})
            continue
        if s.null_count() == s.len():
            dropped.append({"feature": name, "reason": "all missing"})
            continue
        if s.drop_nulls().n_unique() < 2 or (kind == "numeric" and s.cast(pl.Float64).drop_nulls().drop_nans().n_unique() < 2):
            dropped.append({"feature": name, "reason": "constant (one value)"})
            continue
        b = _bin_feature(name, kind, s, y, opts)
        if len(b.bins) < 2 and b.missing["count"] == 0 and (b.special is None or b.special["count"] == 0):
            dropped.append({"feature": name, "reason": "one bin: no split separates goods from bads"})
            continue
        binned.append(b)
    if progress:
        progress("", len(names), len(names))
    kept = sorted((b for b in binned if b.iv >= opts.min_iv), key=lambda b: (-b.iv, b.name))
    dropped += [{"feature": b.name, "reason": f"IV {b.iv:.4f} below {opts.min_iv:g}"} for b in binned if b.iv < opts.min_iv]
    selected: list[_Binned] = []
    for b in kept:
        corr = [(abs(float(np.corrcoef(b.woe_column, s.woe_column)[0, 1])), s.name) for s in selected if np.std(b.woe_column) > 0]
        worst = max(corr, default=(0.0, ""))
        if worst[0] > opts.max_corr:
            dropped.append({"feature": b.name, "reason": f"WOE correlates {worst[0]:.2f} with {worst[1]} (above {opts.max_corr:g})"})
            continue
        selected.append(b)
        if len(selected) == MAX_FEATURES:
            dropped += [{"feature": r.name, "reason": f"beyond the {MAX_FEATURES} strongest"} for r in kept[kept.index(b) + 1:]]
            break
    if not selected:
        raise TrainingError("--features", "no feature separates goods from bads: " + "; ".join(f"{d['feature']}: {d['reason']}" for d in dropped[:10]))
    while True:
        X = np.column_stack([b.woe_column for b in selected])
        intercept, coef = _fit(X, y, opts.regularization_c)
        wrong = [i for i, c in enumerate(coef) if c <= 0]
        if not wrong or len(selected) == 1:
            break
        i = min(wrong, key=lambda k: (coef[k], selected[k].name))
        dropped.append({"feature": selected[i].name, "reason": f"coefficient {coef[i]:.4f} ≤ 0 contradicts its bins (collinear with others)"})
        selected.pop(i)
    if coef[0] <= 0 and len(selected) == 1:
        raise TrainingError("--features", f"the only feature left, {selected[0].name}, has a coefficient ≤ 0")
    return _artifact(frame, y, opts, selected, intercept, coef, dropped, len(names), data_hash)


def _artifact(frame: pl.DataFrame, y: np.ndarray, opts: TrainOptions, selected: list[_Binned], intercept: float, coef: np.ndarray,
              dropped: list[dict[str, str]], candidates: int, data_hash: str | None) -> dict[str, Any]:
    factor = opts.pdo / math.log(2)
    offset = opts.base_score - factor * math.log(opts.base_odds)
    features = []
    for b, c in zip(selected, coef, strict=True):
        def pts(woe: float, c: float = float(c)) -> float:
            return round(-factor * c * woe, POINTS_PLACES) + 0.0  # + 0.0: no negative zero in the file

        bins = [{**bb, "points": pts(bb["woe"])} for bb in b.bins]
        worst = min(bb["points"] for bb in bins)
        f: dict[str, Any] = {
            "name": b.name, "kind": b.kind, "description": opts.labels.get(b.name, b.name), "coef": round(float(c), 8),
            "iv": round(b.iv, 6), "bins": bins,
        }
        if b.kind == "numeric":
            f["splits"] = [float(v) for v in b.splits]
        for key, row in (("missing", b.missing), ("special", b.special)):
            if row is None:
                continue
            trained = row["count"] > 0
            f[key] = {**row, "points": pts(row["woe"]) if trained else worst, "rule": RULE_TRAINED if trained else RULE_WORST}
        if b.kind == "categorical":
            f["unseen"] = {"points": worst, "rule": RULE_WORST}
        features.append(f)
    body: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": opts.name,
        "version": opts.version,
        "description": opts.description or f"WOE logistic scorecard on {len(selected)} features, trained by `sandu model train`",
        "target": {"column": opts.target, "bad": opts.bad},
        "scaling": {
            "pdo": opts.pdo, "base_odds": opts.base_odds, "base_score": opts.base_score,
            "factor": round(factor, 8), "offset": round(offset, 8), "base_points": round(offset - factor * intercept, POINTS_PLACES),
        },
        "intercept": round(intercept, 8),
        "features": features,
        "selection": {"candidates": candidates, "selected": len(selected), "dropped": dropped},
        "data": {"sha256": data_hash or data_sha256(frame), "rows": frame.height, "bad": int(y.sum())},
        "options": opts.to_json(),
        "libraries": _versions(),
    }
    card = scorecard_from_json({**body, "sha256": canonical_sha256(body)})
    from sandu.scoring.scorecard import score_frame

    scored = score_frame(card, frame.select([f["name"] for f in features]), max_reasons=0)
    pd_train = scored.get_column("pd").to_numpy()
    a = metrics.auc(y, pd_train)
    body["metrics"] = {"train": {"rows": frame.height, "bad": int(y.sum()), "auc": round(a, 6), "gini": round(2 * a - 1, 6),
                                 "ks": round(metrics.ks(y, pd_train), 6)},
                       "iv": {f["name"]: f["iv"] for f in features}}
    return {**body, "sha256": canonical_sha256(body)}


def dumps(artifact: dict[str, Any]) -> str:
    """The artifact's file text: keys sorted, two-space indent, UTF-8, a final newline — the same bytes every time."""
    return json.dumps(artifact, sort_keys=True, ensure_ascii=False, indent=2) + "\n"
