"""Risk scorecard: a logistic model stored as a JSON artifact.

Scoring needs only the artifact (no training library): log-odds of default =
intercept + Σ coefficient × transformed feature; PD = sigmoid(log-odds); points
on the PDO scale (base score at base odds, `pdo` points to double the odds).
Reason codes are the terms that push the PD up most against their reference
value. This is the expert-set artifact of the foundation (`risk_expert_v0.json`),
kept as the challenger; the model in production is a WOE scorecard trained by
`sandu model train` (`sandu.scoring.scorecard`). `load_model` reads either kind and
`score` scores with either, so the policy sees one `RiskScore`.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

from sandu.domain.errors import show
from sandu.scoring.scorecard import Scorecard, is_scorecard_artifact, score_record, scorecard_from_json
from sandu.sources.profile import canonical_sha256

DEFAULT_MODEL = "risk_scorecard_v1.json"  # trained on the synthetic universe's history (see README)
CHALLENGER_MODEL = "risk_expert_v0.json"
PD_PLACES = Decimal("0.000001")  # a PD is recorded, graded and priced at 6 decimal places
MAX_TERMS = 200
MAX_MAP_ENTRIES = 100  # categories of one `map` term
MAX_MODEL_NUMBER = 1e15  # |any number| in a model: sums of MAX_TERMS products stay finite
MAX_LOGIT = 30.0  # log-odds are held within ±30, so a PD is strictly within (0, 1): ≥ 9.4e-14
MAX_NAME_LENGTH = 200  # characters of a model's name, version, a feature or a reason
TRANSFORMS = ("clip", "map", "bool")
_MODEL_KEYS = {"name", "version", "description", "intercept", "terms", "points"}
_TERM_KEYS = {"feature", "transform", "coef", "missing", "reference", "lo", "hi", "map", "reason"}
_POINTS_KEYS = {"base_score", "base_odds", "pdo"}


class ModelError(ValueError):
    """A risk-model artifact that cannot be used: `path` names the key (e.g. `terms[2].coef`)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"risk model {path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Term:
    """One term of the log-odds: `coef × value(feature)`.

    `clip`: a number (int or finite float, not bool) held within `lo..hi`; `map`: a text
    value looked up in `mapping`; `bool`: True → 1, False → 0. A feature that is absent,
    None, of another type, not finite or (for `map`) not in the mapping scores `missing`."""

    feature: str
    transform: str  # "clip" | "map" | "bool"
    coef: float
    missing: float  # transformed value used when the feature is absent
    reference: float  # transformed value of a sound enterprise, for reason codes
    lo: float = -math.inf
    hi: float = math.inf
    mapping: dict[str, float] | None = None
    reason: str = ""

    def value(self, raw: Any) -> float:
        if self.transform == "bool":
            return (1.0 if raw else 0.0) if isinstance(raw, bool) else self.missing
        if self.transform == "map":
            return self.mapping.get(raw, self.missing) if isinstance(raw, str) and self.mapping is not None else self.missing
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (isinstance(raw, float) and math.isnan(raw)):
            return self.missing
        return float(min(self.hi, max(self.lo, raw)))  # int vs float compares exactly: a huge int is held at hi


@dataclass(frozen=True)
class RiskModel:
    name: str
    version: str
    intercept: float
    terms: tuple[Term, ...]
    base_score: float
    base_odds: float
    pdo: float
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class RiskScore:
    pd: float
    points: int
    reasons: tuple[str, ...]

    @property
    def pd_rounded(self) -> Decimal:
        """The PD as policy sees it: exact decimal, rounded half-up to `PD_PLACES`."""
        return Decimal(repr(self.pd)).quantize(PD_PLACES, rounding=ROUND_HALF_UP)

    def to_json(self) -> dict[str, Any]:
        return {"pd": float(self.pd_rounded), "points": self.points, "reasons": list(self.reasons)}


# ------------------------------------------------------------ reading an artifact


def _object(value: object, path: str, keys: set[str], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelError(path, f"must be an object, got {show(value)}")
    for key in required:
        if key not in value:
            raise ModelError(f"{path}.{key}" if path != "model" else key, "is missing")
    if unknown := sorted(str(k) for k in value if k not in keys):
        raise ModelError(path, f"has unknown key {show(unknown[0])} (allowed: {', '.join(sorted(keys))})")
    return value


def _number(value: object, path: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError(path, f"must be a number, got {show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ModelError(path, f"must be a finite number, got {value}")
    if abs(value) > MAX_MODEL_NUMBER:
        raise ModelError(path, f"must be within ±{MAX_MODEL_NUMBER:g}, got {show(value)}")
    if positive and value <= 0:
        raise ModelError(path, f"must be positive, got {value}")
    return float(value)


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise ModelError(path, f"must be text of 1..{MAX_NAME_LENGTH} characters, got {show(value)}")
    return value


def _mapping(value: object, path: str) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise ModelError(path, f"must be a non-empty object of category → value, got {show(value)}")
    if len(value) > MAX_MAP_ENTRIES:
        raise ModelError(path, f"has {len(value)} categories, more than {MAX_MAP_ENTRIES}")
    return {k: _number(v, f"{path}.{k}") for k, v in value.items()}


def _term(t: object, path: str) -> Term:
    t = _object(t, path, _TERM_KEYS, ("feature", "transform", "coef", "missing", "reference"))
    feature = _text(t["feature"], f"{path}.feature")
    transform = t["transform"]
    if transform not in TRANSFORMS:
        raise ModelError(f"{path}.transform", f"unknown transform {show(transform)} (allowed: {', '.join(TRANSFORMS)})")
    if transform == "map" and "map" not in t:
        raise ModelError(f"{path}.map", "is missing: a map term needs its mapping")
    if transform != "map" and "map" in t:
        raise ModelError(f"{path}.map", f"only a map term has a mapping, this one is {transform!r}")
    if transform == "clip":
        for key in ("lo", "hi"):
            if key not in t:
                raise ModelError(f"{path}.{key}", "is missing: a clip term needs its bounds lo < hi")
        lo, hi = _number(t["lo"], f"{path}.lo"), _number(t["hi"], f"{path}.hi")
        if not lo < hi:
            raise ModelError(f"{path}.hi", f"must be above lo ({lo:g}), got {hi:g}")
    else:
        if bounds := [k for k in ("lo", "hi") if k in t]:
            raise ModelError(f"{path}.{bounds[0]}", f"only a clip term has bounds, this one is {transform!r}")
        lo, hi = -math.inf, math.inf
    return Term(
        feature=feature,
        transform=transform,
        coef=_number(t["coef"], f"{path}.coef"),
        missing=_number(t["missing"], f"{path}.missing"),
        reference=_number(t["reference"], f"{path}.reference"),
        lo=lo,
        hi=hi,
        mapping=_mapping(t["map"], f"{path}.map") if transform == "map" else None,
        reason=_text(t.get("reason", feature), f"{path}.reason"),
    )


def model_from_json(data: dict[str, Any]) -> RiskModel:
    """A `RiskModel` from its JSON artifact, or `ModelError` naming the key path and the reason."""
    data = _object(data, "model", _MODEL_KEYS, ("name", "version", "intercept", "terms", "points"))
    terms_data = data["terms"]
    if not isinstance(terms_data, list) or not 0 < len(terms_data) <= MAX_TERMS:
        got = f"{len(terms_data)} terms" if isinstance(terms_data, list) else show(terms_data)
        raise ModelError("terms", f"must be a list of 1..{MAX_TERMS} terms, got {got}")
    terms = tuple(_term(t, f"terms[{i}]") for i, t in enumerate(terms_data))
    pts = _object(data["points"], "points", _POINTS_KEYS, ("base_score", "base_odds", "pdo"))
    return RiskModel(
        name=_text(data["name"], "name"),
        version=_text(data["version"], "version"),
        intercept=_number(data["intercept"], "intercept"),
        terms=terms,
        base_score=_number(pts["base_score"], "points.base_score"),
        base_odds=_number(pts["base_odds"], "points.base_odds", positive=True),
        pdo=_number(pts["pdo"], "points.pdo", positive=True),
        sha256=canonical_sha256(data),
    )


AnyRiskModel = RiskModel | Scorecard


@functools.cache
def challenger_model() -> AnyRiskModel:
    """The challenger (`CHALLENGER_MODEL`), loaded once: each decision records its score beside the production model's."""
    return load_model(CHALLENGER_MODEL)


def load_model(name: str = DEFAULT_MODEL) -> AnyRiskModel:
    """A model shipped in `sandu.scoring.models`: a trained scorecard or an expert logistic model."""
    blob = resources.files("sandu.scoring.models").joinpath(name).read_bytes()
    data = json.loads(blob)  # JSON is UTF-8; json.loads reads the bytes as such
    return scorecard_from_json(data) if is_scorecard_artifact(data) else model_from_json(data)


# ---------------------------------------------------------------------- scoring


def score(model: AnyRiskModel, features: dict[str, Any], max_reasons: int = 4) -> RiskScore:
    """Score one enterprise. Any value of any feature is accepted (see `Term.value` and
    `sandu.scoring.scorecard`); the PD is strictly within (0, 1) and the reasons are the at
    most `max_reasons` terms (features) that push the PD up most, largest first."""
    if isinstance(max_reasons, bool) or not isinstance(max_reasons, int) or not 0 <= max_reasons <= MAX_TERMS:
        raise ValueError(f"max_reasons must be an integer 0..{MAX_TERMS}, got {show(max_reasons)}")
    if isinstance(model, Scorecard):
        r = score_record(model, features, max_reasons=min(max_reasons, len(model.features)))
        return RiskScore(pd=r.pd, points=r.points, reasons=r.reasons)
    values = [(t, t.value(features.get(t.feature))) for t in model.terms]
    logit = min(MAX_LOGIT, max(-MAX_LOGIT, model.intercept + sum(t.coef * v for t, v in values)))
    pd = 1.0 / (1.0 + math.exp(-logit))
    odds_good = math.exp(-logit)
    points = round(model.base_score + model.pdo / math.log(2) * math.log(odds_good / model.base_odds))
    adverse = sorted(
        ((t.coef * (v - t.reference), t) for t, v in values if t.coef * (v - t.reference) > 1e-9),
        key=lambda cv: -cv[0],
    )
    return RiskScore(pd=pd, points=points, reasons=tuple(t.reason for _, t in adverse[:max_reasons]))
