"""Turn what the sources returned into one validated, hashed profile snapshot.

Pure: payloads in, a frozen snapshot out. A payload that is missing or malformed
does not stop the profile: it becomes a data-quality flag, and its features are
absent (None), which the policy treats as "not evidenced".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandu.sources.catalog import ALL_SOURCES

PROFILE_SCHEMA_VERSION = "profile-v1"
MAX_COLLATERAL_ASSETS = 50  # assets read per enterprise; more are flagged, never silently dropped


@dataclass(frozen=True)
class Collateral:
    id: str
    kind: str
    appraised_value_fen: int
    secured_debt_fen: int


@dataclass(frozen=True)
class ProfileSnapshot:
    uscc: str
    as_of: date
    features: dict[str, Any]
    collateral: tuple[Collateral, ...]
    quality_flags: tuple[str, ...]
    sources_read: tuple[str, ...]
    sha256: str = field(default="")

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": PROFILE_SCHEMA_VERSION,
            "uscc": self.uscc,
            "as_of": self.as_of.isoformat(),
            "features": self.features,
            "collateral": [c.__dict__ for c in self.collateral],
            "quality_flags": list(self.quality_flags),
            "sources_read": list(self.sources_read),
        }


def canonical_sha256(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _int(payload: dict[str, Any], key: str, flags: list[str], source: str) -> int | None:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        flags.append(f"{source}.{key}:invalid")
        return None
    return value


def _ratio(num: int | None, den: int | None, places: int = 6) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return round(num / den, places)


def _tax(p: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    years = p.get("years")
    if not isinstance(years, list) or not years:
        flags.append("tax.years:missing")
        return {}
    years = sorted(years, key=lambda y: y.get("year", 0))[-3:]
    latest = years[-1]
    out: dict[str, Any] = {"tax_credit_grade": p.get("tax_credit_grade")}
    if out["tax_credit_grade"] not in ("A", "B", "M", "C", "D"):
        flags.append("tax.tax_credit_grade:invalid")
        out["tax_credit_grade"] = None
    for k in range(len(years)):
        out[f"revenue_fen_y{3 - len(years) + k + 1}"] = _int(years[k], "revenue_fen", flags, "tax")
    vat = _int(latest, "vat_fen", flags, "tax")
    cit = _int(latest, "cit_fen", flags, "tax")
    rd = _int(latest, "rd_expense_fen", flags, "tax")
    out.update(vat_fen=vat, cit_fen=cit, rd_expense_fen=rd)
    out["tax_total_fen"] = None if vat is None or cit is None else vat + cit
    rev3, rev2, rev1 = out.get("revenue_fen_y3"), out.get("revenue_fen_y2"), out.get("revenue_fen_y1")
    out["revenue_fen"] = rev3
    out["rd_ratio"] = _ratio(rd, rev3)
    out["revenue_growth"] = None if rev2 in (None, 0) or rev3 is None else round(rev3 / rev2 - 1, 6)
    out["revenue_growth_prev"] = None if rev1 in (None, 0) or rev2 is None else round(rev2 / rev1 - 1, 6)
    out["cit_margin"] = _ratio(cit, rev3)
    if len(years) < 3:
        flags.append("tax.years:fewer_than_3")
    return out


def _features(payloads: dict[str, dict[str, Any] | None], flags: list[str]) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if (p := payloads.get("tax")) is not None:
        f.update(_tax(p, flags))
    if (p := payloads.get("invoices")) is not None:
        f["sales_invoice_fen_12m"] = _int(p, "sales_invoice_fen", flags, "invoices")
        f["customer_count_12m"] = _int(p, "customer_count", flags, "invoices")
    if (p := payloads.get("social_insurance")) is not None:
        head = _int(p, "headcount", flags, "social_insurance")
        tech = _int(p, "tech_staff", flags, "social_insurance")
        prev = _int(p, "headcount_12m_ago", flags, "social_insurance")
        f.update(headcount=head, tech_staff=tech, tech_staff_ratio=_ratio(tech, head))
        f["headcount_growth"] = None if head is None or not prev else round(head / prev - 1, 6)
        f["si_arrears_months"] = _int(p, "arrears_months", flags, "social_insurance")
    if (p := payloads.get("utilities")) is not None:
        now = _int(p, "electricity_kwh_12m", flags, "utilities")
        prev = _int(p, "electricity_kwh_prev_12m", flags, "utilities")
        f["electricity_growth"] = None if now is None or not prev else round(now / prev - 1, 6)
        f["utility_arrears"] = bool(p.get("arrears", False))
    if (p := payloads.get("ip")) is not None:
        for key in ("invention_patents", "utility_models", "software_copyrights"):
            f[key] = _int(p, key, flags, "ip")
        certs = p.get("certifications", [])
        f["certifications"] = sorted(c for c in certs if isinstance(c, str)) if isinstance(certs, list) else []
    if (p := payloads.get("credit_bureau")) is not None:
        for key in ("loans_outstanding_fen", "secured_debt_fen", "overdue_count_24m", "max_overdue_days_24m", "queries_3m"):
            f[key] = _int(p, key, flags, "credit_bureau")
    if (p := payloads.get("bank_flows")) is not None:
        f["inflow_fen_12m"] = _int(p, "inflow_fen", flags, "bank_flows")
        f["outflow_fen_12m"] = _int(p, "outflow_fen", flags, "bank_flows")
    if f.get("revenue_fen") and f.get("loans_outstanding_fen") is not None:
        f["debt_to_revenue"] = _ratio(f["loans_outstanding_fen"], f["revenue_fen"])
    if f.get("revenue_fen") and f.get("inflow_fen_12m") is not None:
        f["flow_to_revenue"] = _ratio(f["inflow_fen_12m"], f["revenue_fen"])
    return f


def _collateral(payload: dict[str, Any] | None, flags: list[str]) -> tuple[Collateral, ...]:
    if payload is None:
        return ()
    assets = payload.get("assets", [])
    out = []
    if isinstance(assets, list) and len(assets) > MAX_COLLATERAL_ASSETS:
        flags.append(f"collateral.assets:more_than_{MAX_COLLATERAL_ASSETS}")
    for a in assets[:MAX_COLLATERAL_ASSETS] if isinstance(assets, list) else []:
        value = _int(a, "appraised_value_fen", flags, "collateral")
        debt = _int(a, "secured_debt_fen", flags, "collateral")
        if value is None or debt is None or not a.get("kind"):
            continue
        out.append(Collateral(id=str(a.get("id", "")), kind=str(a["kind"]), appraised_value_fen=value, secured_debt_fen=debt))
    return tuple(out)


def build_profile(uscc: str, as_of: date, payloads: dict[str, dict[str, Any] | None]) -> ProfileSnapshot:
    """`payloads` maps each source that was read to its payload, or None when the
    source had no record of the enterprise. Sources not in `payloads` were not read."""
    flags: list[str] = []
    for source in ALL_SOURCES:
        if source not in payloads:
            flags.append(f"{source}:not_read")
        elif payloads[source] is None:
            flags.append(f"{source}:no_record")
    present = {k: v for k, v in payloads.items() if v is not None}
    features = _features(present, flags)
    collateral = _collateral(present.get("collateral"), flags)
    snap = ProfileSnapshot(
        uscc=uscc,
        as_of=as_of,
        features=features,
        collateral=collateral,
        quality_flags=tuple(flags),
        sources_read=tuple(sorted(payloads)),
    )
    return ProfileSnapshot(**{**snap.__dict__, "sha256": canonical_sha256(snap.to_json())})


def profile_from_json(data: dict[str, Any]) -> ProfileSnapshot:
    """Rebuild a stored snapshot (for replay); verifies its hash."""
    assert data.get("schema") == PROFILE_SCHEMA_VERSION, f"unknown profile schema {data.get('schema')!r}"
    snap = ProfileSnapshot(
        uscc=data["uscc"],
        as_of=date.fromisoformat(data["as_of"]),
        features=data["features"],
        collateral=tuple(Collateral(**c) for c in data["collateral"]),
        quality_flags=tuple(data["quality_flags"]),
        sources_read=tuple(data["sources_read"]),
    )
    digest = canonical_sha256(snap.to_json())
    return ProfileSnapshot(**{**snap.__dict__, "sha256": digest})
