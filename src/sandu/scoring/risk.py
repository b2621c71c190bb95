"""Risk scorecard: a logistic model stored as a JSON artifact.

Scoring needs only the artifact (no training library): log-odds of default =
intercept + Σ coefficient × transformed feature; PD = sigmoid(log-odds); points
on the PDO scale (base score at base odds, `pdo` points to double the odds).
Reason codes are the terms that push the PD up most against their reference
value. The foundation ships an expert-set artifact (`risk_expert_v0.json`);
`sandu model train` replaces it with a fitted one of the same format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

from sandu.sources.profile import canonical_sha256

DEFAULT_MODEL = "risk_expert_v0.json"
PD_PLACES = Decimal("0.000001")  # a PD is recorded, graded and priced at 6 decimal places
MAX_TERMS = 200


@dataclass(frozen=True)
class Term:
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
        if raw is None:
            return self.missing
        if self.transform == "bool":
            return 1.0 if raw else 0.0
        if self.transform == "map":
            assert self.mapping is not None
            return self.mapping.get(str(raw), self.missing)
        return min(self.hi, max(self.lo, float(raw)))


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


def model_from_json(data: dict[str, Any]) -> RiskModel:
    terms_data = data["terms"]
    assert 0 < len(terms_data) <= MAX_TERMS, f"a model needs 1..{MAX_TERMS} terms"
    terms = tuple(
        Term(
            feature=t["feature"],
            transform=t["transform"],
            coef=float(t["coef"]),
            missing=float(t["missing"]),
            reference=float(t["reference"]),
            lo=float(t.get("lo", -math.inf)),
            hi=float(t.get("hi", math.inf)),
            mapping={k: float(v) for k, v in t["map"].items()} if "map" in t else None,
            reason=t.get("reason", t["feature"]),
        )
        for t in terms_data
    )
    for t in terms:
        assert t.transform in ("clip", "map", "bool"), f"unknown transform {t.transform!r}"
    pts = data["points"]
    return RiskModel(
        name=data["name"],
        version=data["version"],
        intercept=float(data["intercept"]),
        terms=terms,
        base_score=float(pts["base_score"]),
        base_odds=float(pts["base_odds"]),
        pdo=float(pts["pdo"]),
        sha256=canonical_sha256(data),
    )


def load_model(name: str = DEFAULT_MODEL) -> RiskModel:
    text = resources.files("sandu.scoring.models").joinpath(name).read_text(encoding="utf-8")
    return model_from_json(json.loads(text))


def score(model: RiskModel, features: dict[str, Any], max_reasons: int = 4) -> RiskScore:
    values = [(t, t.value(features.get(t.feature))) for t in model.terms]
    logit = model.intercept + sum(t.coef * v for t, v in values)
    pd = 1.0 / (1.0 + math.exp(-logit))
    odds_good = math.exp(-logit)
    points = round(model.base_score + model.pdo / math.log(2) * math.log(odds_good / model.base_odds))
    adverse = sorted(
        ((t.coef * (v - t.reference), t) for t, v in values if t.coef * (v - t.reference) > 1e-9),
        key=lambda cv: -cv[0],
    )
    return RiskScore(pd=pd, points=points, reasons=tuple(t.reason for _, t in adverse[:max_reasons]))
