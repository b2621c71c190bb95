"""Load and validate a versioned policy bundle (TOML).

The bundle's identity is its content hash: two decisions made under the same
hash used exactly the same rules. Loading fails loudly, naming the key, when
the file is not a well-formed bundle — a bad policy never reaches a decision.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from sandu.domain.errors import InvalidInput

DEFAULT_BUNDLE = "default.toml"
GRADE_ORDER = ("A", "B", "C", "D", "E")
TENORS = ("one_year", "over_five_year")
PRODUCT_KINDS = ("credit", "secured", "project")
SETTLEMENTS = ("monthly", "quarterly")  # interest settled on the 20th of each month / quarter-end month


class PolicyError(ValueError):
    """The policy file is not a valid bundle (names the key and the reason)."""


@dataclass(frozen=True)
class LprFixing:
    published_on: date
    one_year: Decimal
    over_five_year: Decimal


@dataclass(frozen=True)
class TechGrade:
    grade: str
    min_score: Decimal
    limit_multiplier: Decimal
    discount_bp: int


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    kind: str
    revolving: bool
    repayment_method: str
    tenor: str
    validity_months: int
    max_drawing_months: int
    basis_days: int
    settlement: str
    auto_approve_max_fen: int
    open_to_non_customers: bool


@dataclass(frozen=True)
class PolicyBundle:
    name: str
    version: str
    sha256: str
    lpr: tuple[LprFixing, ...]
    required_sources: tuple[str, ...]
    tech_grades: tuple[TechGrade, ...]
    risk_grades: tuple[tuple[str, Decimal], ...]
    eligibility: dict[str, Any]
    credit: dict[str, Any]
    secured: dict[str, Any]
    project: dict[str, Any]
    pricing: dict[str, Any]
    products: dict[str, Product]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def lpr_on(self, as_of: date) -> LprFixing:
        fixings = [f for f in self.lpr if f.published_on <= as_of]
        if not fixings:
            raise InvalidInput("as_of", f"policy {self.label} has no LPR published on or before {as_of.isoformat()}", f"{self.lpr[0].published_on} or later")
        return fixings[-1]


def _dec(value: Any, key: str) -> Decimal:
    if not isinstance(value, str):
        raise PolicyError(f"{key}: must be a decimal string like \"0.70\", got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise PolicyError(f"{key}: {value!r} is not a decimal number") from exc


def _int(value: Any, key: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyError(f"{key}: must be an integer ≥ {minimum}, got {value!r}")
    return value


def _get(table: dict[str, Any], key: str, path: str) -> Any:
    if key not in table:
        raise PolicyError(f"{path}.{key}: missing")
    return table[key]


def _product(code: str, t: dict[str, Any]) -> Product:
    p = f"products.{code}"
    kind = _get(t, "kind", p)
    if kind not in PRODUCT_KINDS:
        raise PolicyError(f"{p}.kind: {kind!r} is not one of {PRODUCT_KINDS}")
    tenor = _get(t, "tenor", p)
    if tenor not in TENORS:
        raise PolicyError(f"{p}.tenor: {tenor!r} is not one of {TENORS}")
    basis = _int(_get(t, "basis_days", p), f"{p}.basis_days")
    if basis not in (360, 365):
        raise PolicyError(f"{p}.basis_days: must be 360 or 365, got {basis}")
    settlement = _get(t, "settlement", p)
    if settlement not in SETTLEMENTS:
        raise PolicyError(f"{p}.settlement: {settlement!r} is not one of {SETTLEMENTS}")
    return Product(
        code=code,
        name=str(_get(t, "name", p)),
        kind=kind,
        revolving=bool(_get(t, "revolving", p)),
        repayment_method=str(_get(t, "repayment_method", p)),
        tenor=tenor,
        validity_months=_int(_get(t, "validity_months", p), f"{p}.validity_months", 1),
        max_drawing_months=_int(_get(t, "max_drawing_months", p), f"{p}.max_drawing_months", 1),
        basis_days=basis,
        settlement=settlement,
        auto_approve_max_fen=_int(_get(t, "auto_approve_max_fen", p), f"{p}.auto_approve_max_fen"),
        open_to_non_customers=bool(_get(t, "open_to_non_customers", p)),
    )


def parse_bundle(raw: bytes) -> PolicyBundle:
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy file is not valid TOML: {exc}") from exc
    meta = _get(doc, "bundle", "policy")
    lpr = tuple(
        sorted(
            (
                LprFixing(
                    published_on=date.fromisoformat(_get(f, "published_on", "lpr")),
                    one_year=_dec(_get(f, "one_year", "lpr"), "lpr.one_year"),
                    over_five_year=_dec(_get(f, "over_five_year", "lpr"), "lpr.over_five_year"),
                )
                for f in _get(doc, "lpr", "policy")
            ),
            key=lambda f: f.published_on,
        )
    )
    tech = tuple(
        sorted(
            (
                TechGrade(
                    grade=_get(g, "grade", "tech_grades"),
                    min_score=_dec(_get(g, "min_score", "tech_grades"), "tech_grades.min_score"),
                    limit_multiplier=_dec(_get(g, "limit_multiplier", "tech_grades"), "tech_grades.limit_multiplier"),
                    discount_bp=_int(_get(g, "discount_bp", "tech_grades"), "tech_grades.discount_bp"),
                )
                for g in _get(doc, "tech_grades", "policy")
            ),
            key=lambda g: -g.min_score,
        )
    )
    if not tech or tech[-1].min_score != 0:
        raise PolicyError("tech_grades: the lowest grade must have min_score \"0\" so every score has a grade")
    risk = tuple(
        sorted(
            ((_get(g, "grade", "risk_grades"), _dec(_get(g, "max_pd", "risk_grades"), "risk_grades.max_pd")) for g in _get(doc, "risk_grades", "policy")),
            key=lambda g: g[1],
        )
    )
    if not risk or risk[-1][1] != 1:
        raise PolicyError("risk_grades: the highest grade must have max_pd \"1\" so every PD has a grade")
    products = {code: _product(code, t) for code, t in _get(doc, "products", "policy").items()}
    bundle = PolicyBundle(
        name=str(_get(meta, "name", "bundle")),
        version=str(_get(meta, "version", "bundle")),
        sha256=hashlib.sha256(raw).hexdigest(),
        lpr=lpr,
        required_sources=tuple(_get(_get(doc, "sources", "policy"), "required", "sources")),
        tech_grades=tech,
        risk_grades=risk,
        eligibility=_get(doc, "eligibility", "policy"),
        credit=_get(doc, "credit", "policy"),
        secured=_get(doc, "secured", "policy"),
        project=_get(doc, "project", "policy"),
        pricing=_get(doc, "pricing", "policy"),
        products=products,
    )
    _check_references(bundle)
    return bundle


def _check_references(b: PolicyBundle) -> None:
    for key in ("quick_product", "tech_product"):
        if b.credit.get(key) not in b.products:
            raise PolicyError(f"credit.{key}: {b.credit.get(key)!r} is not a product of this bundle")
    for key in ("revolving_product", "combined_product"):
        if b.secured.get(key) not in b.products:
            raise PolicyError(f"secured.{key}: {b.secured.get(key)!r} is not a product of this bundle")
    if b.project.get("product") not in b.products:
        raise PolicyError(f"project.product: {b.project.get('product')!r} is not a product of this bundle")
    spreads = b.pricing.get("spread_bp", {})
    for code in b.products:
        for grade in GRADE_ORDER[:4]:
            if grade not in spreads.get(code, {}):
                raise PolicyError(f"pricing.spread_bp.{code}.{grade}: missing")
    for key, value in b.credit.get("quick_tax_multiplier", {}).items():
        _dec(value, f"credit.quick_tax_multiplier.{key}")
    for key, value in b.secured.get("ltv", {}).items():
        if not Decimal(0) <= _dec(value, f"secured.ltv.{key}") <= 1:
            raise PolicyError(f"secured.ltv.{key}: must be within 0..1")


def load_bundle(path: str | Path | None = None) -> PolicyBundle:
    """The bundle at `path`, or the default bundle shipped with sandu."""
    if path is None:
        raw = resources.files("sandu.policy.bundles").joinpath(DEFAULT_BUNDLE).read_bytes()
    else:
        raw = Path(path).read_bytes()
    return parse_bundle(raw)
