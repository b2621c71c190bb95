"""Turn what the sources returned into one validated, hashed profile snapshot.

Pure: payloads in, a frozen snapshot out. A payload that is missing or malformed
does not stop the profile: it becomes a data-quality flag, and its features are
absent (None), which the policy treats as "not evidenced". `build_profile`
never raises on what a source returned, whatever its shape; the flags are

* ``{source}:not_read`` — the consent did not cover the source;
* ``{source}:no_record`` — the source knows nothing of the enterprise (payload None);
* ``{source}:invalid`` — the payload is not a JSON object;
* ``{source}.{key}:invalid`` — a field is absent, of the wrong type or out of range
  (amounts and counts are integers 0..`MAX_SOURCE_INT`, never bool or float;
  texts 1..`MAX_SOURCE_TEXT` characters);
* ``tax.rd_expense_fen_prev:invalid`` — the year before the latest has no valid R&D
  expense (``rd_growth`` is then absent);
* ``tax.years:missing``, ``tax.years:fewer_than_3``, ``tax.year:duplicate``,
  ``{source}.{list}:more_than_{n}`` — about the lists a payload holds.

Every list is read up to a limit; more items are flagged, never silently dropped.

`profile_from_json` is the way back from a stored snapshot: it checks the schema,
every field and the hash, and raises `ProfileIntegrityError` when any of them is off.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandu.domain.errors import show
from sandu.domain.money import MAX_AMOUNT_FEN
from sandu.sources.catalog import ALL_SOURCES

PROFILE_SCHEMA_VERSION = "profile-v1"
MAX_COLLATERAL_ASSETS = 50  # assets read per enterprise; more are flagged, never silently dropped
MAX_TAX_YEARS = 10  # a longer tax history is refused whole (flagged): its latest 3 years are not read from a guess
MAX_CERTIFICATIONS = 20  # certifications read per enterprise; more are flagged
MAX_SOURCE_INT = MAX_AMOUNT_FEN  # the largest amount (fen) or count a source may report
MAX_SOURCE_TEXT = 64  # characters of an asset id or kind, or of a certification's name
MIN_TAX_YEAR, MAX_TAX_YEAR = 1949, 9999  # a tax year is a calendar year of the People's Republic
TAX_GRADES = ("A", "B", "M", "C", "D")  # 纳税信用等级
_SHA256_HEX = frozenset("0123456789abcdef")


class ProfileIntegrityError(Exception):
    """A stored profile snapshot cannot be trusted: unknown schema, a missing or
    malformed field, or content that does not hash to the expected sha256.

    A data-integrity failure of the store, not a user error (hence not a `SanduError`)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"stored profile snapshot refused: {field}: {reason}")
        self.field = field
        self.reason = reason


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
    return hashlib.sha256(blob.encode()).hexdigest()  # UTF-8


def _is_count(value: object, low: int, high: int) -> bool:
    """True for an ``int`` (not ``bool``) within ``low..high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _int(payload: dict[str, Any], key: str, flags: list[str], source: str) -> int | None:
    value = payload.get(key)
    if not _is_count(value, 0, MAX_SOURCE_INT):
        flags.append(f"{source}.{key}:invalid")
        return None
    return value  # type: ignore[return-value]


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_SOURCE_TEXT


def _ratio(num: int | None, den: int | None, places: int = 6) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return round(num / den, places)


def _tax_years(p: dict[str, Any], flags: list[str]) -> list[dict[str, Any]]:
    """The payload's yearly records with a valid, distinct year, oldest first."""
    years = p.get("years")
    if years is None or years == []:
        flags.append("tax.years:missing")
        return []
    if not isinstance(years, list):
        flags.append("tax.years:invalid")
        return []
    if len(years) > MAX_TAX_YEARS:
        flags.append(f"tax.years:more_than_{MAX_TAX_YEARS}")
        return []
    kept: dict[int, dict[str, Any]] = {}
    for item in years:  # at most MAX_TAX_YEARS
        if not isinstance(item, dict):
            flags.append("tax.years:invalid")
        elif not _is_count(year := item.get("year"), MIN_TAX_YEAR, MAX_TAX_YEAR):
            flags.append("tax.year:invalid")
        elif year in kept:
            flags.append("tax.year:duplicate")
        else:
            kept[year] = item
    if not kept:
        flags.append("tax.years:missing")
    return [kept[y] for y in sorted(kept)]


def _tax(p: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    years = _tax_years(p, flags)[-3:]
    if not years:
        return {}
    latest = years[-1]
    grade = p.get("tax_credit_grade")
    out: dict[str, Any] = {"tax_credit_grade": grade if grade in TAX_GRADES else None}
    if out["tax_credit_grade"] is None:
        flags.append("tax.tax_credit_grade:invalid")
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
    prev_rd = years[-2].get("rd_expense_fen") if len(years) >= 2 else None
    if len(years) >= 2 and not _is_count(prev_rd, 0, MAX_SOURCE_INT):
        flags.append("tax.rd_expense_fen_prev:invalid")
        prev_rd = None
    out["rd_expense_fen_prev"] = prev_rd
    out["rd_growth"] = None if rd is None or not prev_rd else round(rd / prev_rd - 1, 6)
    if len(years) < 3:
        flags.append("tax.years:fewer_than_3")
    return out


def _certifications(p: dict[str, Any], flags: list[str]) -> list[str] | None:
    certs = p.get("certifications")
    if not isinstance(certs, list):
        flags.append("ip.certifications:invalid")
        return None
    if len(certs) > MAX_CERTIFICATIONS:
        flags.append(f"ip.certifications:more_than_{MAX_CERTIFICATIONS}")
    read = certs[:MAX_CERTIFICATIONS]
    names = [c for c in read if _is_text(c)]
    if len(names) < len(read):
        flags.append("ip.certifications:invalid")
    return sorted(names)


def _utility_arrears(p: dict[str, Any], flags: list[str]) -> bool | None:
    arrears = p.get("arrears")
    if not isinstance(arrears, bool):
        flags.append("utilities.arrears:invalid")
        return None
    return arrears


def _features(payloads: dict[str, dict[str, Any]], flags: list[str]) -> dict[str, Any]:
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
        f["utility_arrears"] = _utility_arrears(p, flags)
    if (p := payloads.get("ip")) is not None:
        for key in ("invention_patents", "utility_models", "software_copyrights"):
            f[key] = _int(p, key, flags, "ip")
        f["certifications"] = _certifications(p, flags)
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


def _asset(a: object, flags: list[str]) -> Collateral | None:
    if not isinstance(a, dict):
        flags.append("collateral.assets:invalid")
        return None
    value = _int(a, "appraised_value_fen", flags, "collateral")
    debt = _int(a, "secured_debt_fen", flags, "collateral")
    kind, ident = a.get("kind"), a.get("id", "")
    kind_ok, ident_ok = _is_text(kind), ident == "" or _is_text(ident)  # an asset's id may be absent (empty)
    if not kind_ok:
        flags.append("collateral.kind:invalid")
    if not ident_ok:
        flags.append("collateral.id:invalid")
    if value is None or debt is None or not kind_ok or not ident_ok:
        return None
    return Collateral(id=ident, kind=kind, appraised_value_fen=value, secured_debt_fen=debt)


def _collateral(payload: dict[str, Any] | None, flags: list[str]) -> tuple[Collateral, ...]:
    if payload is None:
        return ()
    assets = payload.get("assets")
    if not isinstance(assets, list):
        flags.append("collateral.assets:invalid")
        return ()
    if len(assets) > MAX_COLLATERAL_ASSETS:
        flags.append(f"collateral.assets:more_than_{MAX_COLLATERAL_ASSETS}")
    out = []
    for a in assets[:MAX_COLLATERAL_ASSETS]:
        if (c := _asset(a, flags)) is not None:
            out.append(c)
    return tuple(out)


def build_profile(uscc: str, as_of: date, payloads: dict[str, Any]) -> ProfileSnapshot:
    """`payloads` maps each source that was read to its payload, or None when the
    source had no record of the enterprise. Sources not in `payloads` were not read.

    A payload may be any JSON value: what is not as expected becomes a flag. A key of
    `payloads` that is not a source of the catalog is the caller's error (`ValueError`)."""
    if not isinstance(payloads, dict):
        raise ValueError(f"payloads must map source names to payloads, got {show(payloads)}")
    for source in payloads:  # no more keys than a dict holds; stops at the first unknown
        if source not in ALL_SOURCES:
            raise ValueError(f"payloads: {show(source)} is not a data source (allowed: {', '.join(ALL_SOURCES)})")
    flags: list[str] = []
    present: dict[str, dict[str, Any]] = {}
    for source in ALL_SOURCES:
        if source not in payloads:
            flags.append(f"{source}:not_read")
        elif payloads[source] is None:
            flags.append(f"{source}:no_record")
        elif not isinstance(payloads[source], dict):
            flags.append(f"{source}:invalid")
        else:
            present[source] = payloads[source]
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


# ------------------------------------------------------------------ replay

_SNAPSHOT_KEYS = ("schema", "uscc", "as_of", "features", "collateral", "quality_flags", "sources_read")
_COLLATERAL_KEYS = ("id", "kind", "appraised_value_fen", "secured_debt_fen")
MAX_STORED_LIST = 1_000  # items in any list or object of a stored snapshot (far above what build_profile writes)


def _stored(data: dict[str, Any], key: str, kind: type, what: str) -> Any:
    if key not in data:
        raise ProfileIntegrityError(key, "is missing")
    value = data[key]
    if not isinstance(value, kind):
        raise ProfileIntegrityError(key, f"must be {what}, got {show(value)}")
    if isinstance(value, (list, dict)) and len(value) > MAX_STORED_LIST:
        raise ProfileIntegrityError(key, f"has {len(value)} items, more than {MAX_STORED_LIST}")
    return value


def _stored_strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    items = _stored(data, key, list, "a list of strings")
    for i, item in enumerate(items):  # at most MAX_STORED_LIST
        if not isinstance(item, str):
            raise ProfileIntegrityError(f"{key}[{i}]", f"must be a string, got {show(item)}")
    return tuple(items)


def _stored_collateral(i: int, c: object) -> Collateral:
    where = f"collateral[{i}]"
    if not isinstance(c, dict) or sorted(c) != sorted(_COLLATERAL_KEYS):
        raise ProfileIntegrityError(where, f"must be an object with exactly {', '.join(_COLLATERAL_KEYS)}, got {show(c)}")
    for key in ("id", "kind"):
        if not isinstance(c[key], str):
            raise ProfileIntegrityError(f"{where}.{key}", f"must be a string, got {show(c[key])}")
    for key in ("appraised_value_fen", "secured_debt_fen"):
        if not _is_count(c[key], 0, MAX_SOURCE_INT):
            raise ProfileIntegrityError(f"{where}.{key}", f"must be integer fen 0..{MAX_SOURCE_INT}, got {show(c[key])}")
    return Collateral(**c)


def profile_from_json(data: dict[str, Any], expected_sha256: str) -> ProfileSnapshot:
    """Rebuild a stored snapshot (for replay) and prove it is the one that was hashed.

    Raises `ProfileIntegrityError` naming what is wrong: an unknown schema version,
    a missing, unexpected or malformed field, or a recomputed hash that differs
    from `expected_sha256` (the hash the decision recorded)."""
    if not isinstance(expected_sha256, str) or len(expected_sha256) != 64 or not set(expected_sha256) <= _SHA256_HEX:
        raise ProfileIntegrityError("expected_sha256", f"must be 64 lowercase hex digits, got {show(expected_sha256)}")
    if not isinstance(data, dict):
        raise ProfileIntegrityError("snapshot", f"must be an object, got {show(data)}")
    if data.get("schema") != PROFILE_SCHEMA_VERSION:
        raise ProfileIntegrityError("schema", f"unknown profile schema {show(data.get('schema'))}, expected {PROFILE_SCHEMA_VERSION!r}")
    if extra := sorted(str(k) for k in data if k not in _SNAPSHOT_KEYS):
        raise ProfileIntegrityError(show(extra[0]), f"is not a field of {PROFILE_SCHEMA_VERSION}")
    as_of_text = _stored(data, "as_of", str, "an ISO date YYYY-MM-DD")
    try:
        as_of = date.fromisoformat(as_of_text)
    except ValueError:
        as_of = None
    if as_of is None or as_of.isoformat() != as_of_text:
        raise ProfileIntegrityError("as_of", f"must be an ISO date YYYY-MM-DD, got {show(as_of_text)}")
    features = _stored(data, "features", dict, "an object")
    for key in features:  # at most MAX_STORED_LIST
        if not isinstance(key, str):
            raise ProfileIntegrityError("features", f"keys must be strings, got {show(key)}")
    collateral = _stored(data, "collateral", list, "a list of assets")
    snap = ProfileSnapshot(
        uscc=_stored(data, "uscc", str, "a string"),
        as_of=as_of,
        features=features,
        collateral=tuple(_stored_collateral(i, c) for i, c in enumerate(collateral)),
        quality_flags=_stored_strings(data, "quality_flags"),
        sources_read=_stored_strings(data, "sources_read"),
    )
    try:
        digest = canonical_sha256(snap.to_json())
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProfileIntegrityError("features", f"are not JSON ({type(exc).__name__})") from None
    if digest != expected_sha256:
        raise ProfileIntegrityError("sha256", f"content hashes to {digest[:16]}…, not the expected {expected_sha256[:16]}…")
    return ProfileSnapshot(**{**snap.__dict__, "sha256": digest})
