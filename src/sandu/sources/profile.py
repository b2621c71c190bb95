"""Turn what the sources returned into one validated, hashed profile snapshot.

Pure: payloads in, a frozen snapshot out. Every payload that is present is first
checked and normalized by `sandu.sources.schemas.validate` (the declared schema of
each source, `SCHEMA_VERSION`; the rules and the issue vocabulary are written there,
in one place); features are then computed from the normalized payload only. A payload
that is missing or malformed does not stop the profile: it becomes a data-quality
flag, and its features are absent (None), which the policy treats as "not evidenced".
`build_profile` never raises on what a source returned, whatever its shape; the flags are

* ``{source}:not_read`` — the consent did not cover the source;
* ``{source}:no_record`` — the source knows nothing of the enterprise (payload None);
* ``{source}:invalid`` — the payload is not a JSON object;
* ``{source}:unavailable`` — the source was asked and did not answer usefully in time
  (a timeout, an error, a malformed answer, an open circuit: the read log says which);
* ``{source}.{field}:{reason}`` (a tax year's: ``tax.years[{year}].{field}:{reason}``,
  ``tax.years[{year}]:{reason}``) — the issues `validate` found, in the order of the
  sources and of their declared fields (``invalid``, ``missing``, ``negative``,
  ``fraction``, ``unsupported``, ``future``, ``period``, ``duplicate``, ``conflict``,
  ``gap``, ``fewer_than_3``, ``more_than_{n}``).

Tax features compare calendar years: ``revenue_fen_y3`` is the latest year held,
``_y2`` and ``_y1`` the one and two years before it, each present only when that year
is held (a gap leaves its slot, and the growth that needs it, absent).

Every list is read up to a limit; more items are flagged, never silently dropped.

`profile_from_json` is the way back from a stored snapshot: it checks the schema,
every field and the hash, and raises `ProfileIntegrityError` when any of them is off.
A snapshot says which payload schemas it was validated by (``source_schema``, profile-v2);
one stored before that (profile-v1) is read as it was hashed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandu.domain.errors import show
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.schemas import MAX_CERTIFICATIONS as MAX_CERTIFICATIONS  # the limits are the schemas', re-exported
from sandu.sources.schemas import MAX_COLLATERAL_ASSETS as MAX_COLLATERAL_ASSETS
from sandu.sources.schemas import MAX_SOURCE_INT as MAX_SOURCE_INT
from sandu.sources.schemas import MAX_SOURCE_TEXT as MAX_SOURCE_TEXT
from sandu.sources.schemas import MAX_TAX_YEARS as MAX_TAX_YEARS
from sandu.sources.schemas import MIN_TAX_YEAR as MIN_TAX_YEAR
from sandu.sources.schemas import SCHEMA_VERSION as SCHEMA_VERSION
from sandu.sources.schemas import TAX_GRADES as TAX_GRADES
from sandu.sources.schemas import validate

PROFILE_SCHEMA_VERSION = "profile-v2"  # v2: the snapshot names the payload schemas it was validated by (`source_schema`)
PROFILE_SCHEMA_V1 = "profile-v1"  # stored before v2: read (and replayed) as it was hashed, never written again
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
    source_schema: str | None = None  # the `SCHEMA_VERSION` its payloads were validated by; None: a profile-v1 snapshot
    sha256: str = field(default="")

    def to_json(self) -> dict[str, Any]:
        out = {
            "schema": PROFILE_SCHEMA_V1 if self.source_schema is None else PROFILE_SCHEMA_VERSION,
            "uscc": self.uscc,
            "as_of": self.as_of.isoformat(),
            "features": self.features,
            "collateral": [c.__dict__ for c in self.collateral],
            "quality_flags": list(self.quality_flags),
            "sources_read": list(self.sources_read),
        }
        if self.source_schema is not None:
            out["source_schema"] = self.source_schema
        return out


def canonical_sha256(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()  # UTF-8


def _is_count(value: object, low: int, high: int) -> bool:
    """True for an ``int`` (not ``bool``) within ``low..high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _ratio(num: int | None, den: int | None, places: int = 6) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return round(num / den, places)


def _growth(now: int | None, before: int | None) -> float | None:
    return None if now is None or not before else round(now / before - 1, 6)


def _tax(p: dict[str, Any]) -> dict[str, Any]:
    """Features of the normalized tax payload (years distinct, oldest first)."""
    if not p["years"]:
        return {}
    by_year = {y["year"]: y for y in p["years"]}
    latest = p["years"][-1]
    prev, first = by_year.get(latest["year"] - 1), by_year.get(latest["year"] - 2)
    out: dict[str, Any] = {"tax_credit_grade": p["tax_credit_grade"]}
    for k, record in ((1, first), (2, prev), (3, latest)):
        if record is not None:
            out[f"revenue_fen_y{k}"] = record["revenue_fen"]
    vat, cit, rd = latest["vat_fen"], latest["cit_fen"], latest["rd_expense_fen"]
    out.update(vat_fen=vat, cit_fen=cit, rd_expense_fen=rd)
    out["tax_total_fen"] = None if vat is None or cit is None else vat + cit
    rev3, rev2, rev1 = out.get("revenue_fen_y3"), out.get("revenue_fen_y2"), out.get("revenue_fen_y1")
    out["revenue_fen"] = rev3
    out["rd_ratio"] = _ratio(rd, rev3)
    out["revenue_growth"] = _growth(rev3, rev2)
    out["revenue_growth_prev"] = _growth(rev2, rev1)
    out["cit_margin"] = _ratio(cit, rev3)
    out["rd_expense_fen_prev"] = prev_rd = None if prev is None else prev["rd_expense_fen"]
    out["rd_growth"] = _growth(rd, prev_rd)
    return out


def _features(payloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Features of the normalized payloads (a rejected field is None)."""
    f: dict[str, Any] = {}
    if (p := payloads.get("tax")) is not None:
        f.update(_tax(p))
    if (p := payloads.get("invoices")) is not None:
        f["sales_invoice_fen_12m"] = p["sales_invoice_fen"]
        f["customer_count_12m"] = p["customer_count"]
    if (p := payloads.get("social_insurance")) is not None:
        head, tech = p["headcount"], p["tech_staff"]
        f.update(headcount=head, tech_staff=tech, tech_staff_ratio=_ratio(tech, head))
        f["headcount_growth"] = _growth(head, p["headcount_12m_ago"])
        f["si_arrears_months"] = p["arrears_months"]
    if (p := payloads.get("utilities")) is not None:
        f["electricity_growth"] = _growth(p["electricity_kwh_12m"], p["electricity_kwh_prev_12m"])
        f["utility_arrears"] = p["arrears"]
    if (p := payloads.get("ip")) is not None:
        for key in ("invention_patents", "utility_models", "software_copyrights"):
            f[key] = p[key]
        f["certifications"] = None if p["certifications"] is None else sorted(p["certifications"])
    if (p := payloads.get("credit_bureau")) is not None:
        for key in ("loans_outstanding_fen", "secured_debt_fen", "overdue_count_24m", "max_overdue_days_24m", "queries_3m"):
            f[key] = p[key]
        if p.get("court_enforcements") is not None:  # reported: a feature; not reported: not evidenced
            f["court_enforcements"] = p["court_enforcements"]
    if (p := payloads.get("bank_flows")) is not None:
        f["inflow_fen_12m"] = p["inflow_fen"]
        f["outflow_fen_12m"] = p["outflow_fen"]
    if f.get("revenue_fen") and f.get("loans_outstanding_fen") is not None:
        f["debt_to_revenue"] = _ratio(f["loans_outstanding_fen"], f["revenue_fen"])
    if f.get("revenue_fen") and f.get("inflow_fen_12m") is not None:
        f["flow_to_revenue"] = _ratio(f["inflow_fen_12m"], f["revenue_fen"])
    return f


# The numeric features `_features` may give, by what they measure: an amount in fen, a count of things, or a ratio
# (a growth rate, a share). Early-warning rules (`sandu.policy.warning`) watch these; a drop needs an amount or a
# count, a rise a count. A feature absent from a profile (not evidenced) is never compared.
FEATURE_KINDS: dict[str, str] = {
    **{f"revenue_fen_y{k}": "fen" for k in (1, 2, 3)},
    **dict.fromkeys(("revenue_fen", "vat_fen", "cit_fen", "rd_expense_fen", "tax_total_fen", "rd_expense_fen_prev", "sales_invoice_fen_12m",
                     "loans_outstanding_fen", "secured_debt_fen", "inflow_fen_12m", "outflow_fen_12m"), "fen"),
    **dict.fromkeys(("customer_count_12m", "headcount", "tech_staff", "si_arrears_months", "invention_patents", "utility_models",
                     "software_copyrights", "overdue_count_24m", "max_overdue_days_24m", "queries_3m", "court_enforcements"), "count"),
    **dict.fromkeys(("rd_ratio", "revenue_growth", "revenue_growth_prev", "cit_margin", "rd_growth", "tech_staff_ratio", "headcount_growth",
                     "electricity_growth", "debt_to_revenue", "flow_to_revenue"), "ratio"),
}


def build_profile(uscc: str, as_of: date, payloads: dict[str, Any], unavailable: frozenset[str] | set[str] = frozenset()) -> ProfileSnapshot:
    """`payloads` maps each source that was read to its payload, or None when the
    source had no record of the enterprise. Sources not in `payloads` were not read;
    sources in `unavailable` were asked and gave no usable answer (a gap, flagged).

    A payload may be any JSON value: what is not as expected becomes a flag. A key of
    `payloads` or `unavailable` that is not a source of the catalog, or a source in both,
    is the caller's error (`ValueError`)."""
    return CheckedSources(as_of, payloads, unavailable).profile(uscc)


class CheckedSources:
    """The payloads of one profile, each checked (`validate`) once: `profile` is `build_profile` of them, and
    `changed(source, payload)` the same payloads with one source's replaced — only that one checked again. For searches
    that try many changes of one source at a time (`sandu.origination.counterfactual`)."""

    def __init__(self, as_of: date, payloads: dict[str, Any], unavailable: frozenset[str] | set[str] = frozenset()):
        if not isinstance(payloads, dict):
            raise ValueError(f"payloads must map source names to payloads, got {show(payloads)}")
        for source in (*payloads, *sorted(unavailable)):  # no more keys than a dict holds; stops at the first unknown
            if source not in ALL_SOURCES:
                raise ValueError(f"payloads: {show(source)} is not a data source (allowed: {', '.join(ALL_SOURCES)})")
        if both := sorted(set(payloads) & set(unavailable)):
            raise ValueError(f"unavailable: {show(both[0])} also has a payload; a source either answered or did not")
        self.as_of = as_of
        self.unavailable = frozenset(unavailable)
        # source → (its flag when it gave no payload to read, or None; its payload normalized; the issues found in it)
        self._checked = {source: self._check(source, payloads[source]) for source in ALL_SOURCES if source in payloads}

    def _check(self, source: str, payload: Any) -> tuple[str | None, dict[str, Any] | None, list[str]]:
        if payload is None:
            return f"{source}:no_record", None, []
        if not isinstance(payload, dict):
            return f"{source}:invalid", None, []
        read, issues = validate(source, payload, self.as_of)
        return None, read, issues

    def reads(self) -> dict[str, dict[str, Any] | None]:
        """Each source read, in catalog order, as its check read it: its payload normalized (`validate`), or None when it
        gave none to read (no record, not an object, figures of a day to come)."""
        return {source: read for source, (_gap, read, _issues) in self._checked.items()}

    def changed(self, source: str, payload: Any) -> CheckedSources:
        """These payloads with `source`'s replaced by `payload` (a source not read becomes read)."""
        if source not in ALL_SOURCES or source in self.unavailable:
            raise ValueError(f"changed: {show(source)} is not a source that answered or was not read")
        out = object.__new__(CheckedSources)
        out.as_of, out.unavailable = self.as_of, self.unavailable
        checked = {**self._checked, source: self._check(source, payload)}
        out._checked = {s: checked[s] for s in ALL_SOURCES if s in checked}  # in catalog order, as the flags are
        return out

    def profile(self, uscc: str, *, hashed: bool = True) -> ProfileSnapshot:
        """The profile of the sources as checked; with its `sha256` only when `hashed` (a profile that is tried, never
        recorded — the counterfactual search's — has none: "")."""
        flags: list[str] = []
        for source in ALL_SOURCES:
            if source in self.unavailable:
                flags.append(f"{source}:unavailable")
            elif source not in self._checked:
                flags.append(f"{source}:not_read")
            elif (gap := self._checked[source][0]) is not None:
                flags.append(gap)
        normalized: dict[str, dict[str, Any]] = {}
        for source, (gap, read, issues) in self._checked.items():  # in catalog order: the issues follow the sources
            if gap is None:
                flags.extend(issues)
                if read is not None:
                    normalized[source] = read
        features = _features(normalized)
        assets = normalized["collateral"]["assets"] if "collateral" in normalized else []
        collateral = tuple(Collateral(**a) for a in assets)
        snap = ProfileSnapshot(
            uscc=uscc,
            as_of=self.as_of,
            features=features,
            collateral=collateral,
            quality_flags=tuple(flags),
            sources_read=tuple(sorted({*self._checked, *self.unavailable})),
            source_schema=SCHEMA_VERSION,
        )
        return ProfileSnapshot(**{**snap.__dict__, "sha256": canonical_sha256(snap.to_json())}) if hashed else snap


# ------------------------------------------------------------------ replay

_SNAPSHOT_KEYS_V1 = ("schema", "uscc", "as_of", "features", "collateral", "quality_flags", "sources_read")
_SNAPSHOT_KEYS = {PROFILE_SCHEMA_V1: _SNAPSHOT_KEYS_V1, PROFILE_SCHEMA_VERSION: (*_SNAPSHOT_KEYS_V1, "source_schema")}
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
    version = data.get("schema")
    if not isinstance(version, str) or version not in _SNAPSHOT_KEYS:
        raise ProfileIntegrityError("schema", f"unknown profile schema {show(version)}, expected one of {', '.join(map(repr, _SNAPSHOT_KEYS))}")
    if extra := sorted(str(k) for k in data if k not in _SNAPSHOT_KEYS[version]):
        raise ProfileIntegrityError(show(extra[0]), f"is not a field of {version}")
    source_schema = _stored(data, "source_schema", str, "a string") if version == PROFILE_SCHEMA_VERSION else None
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
        source_schema=source_schema,
    )
    try:
        digest = canonical_sha256(snap.to_json())
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProfileIntegrityError("features", f"are not JSON ({type(exc).__name__})") from None
    if digest != expected_sha256:
        raise ProfileIntegrityError("sha256", f"content hashes to {digest[:16]}…, not the expected {expected_sha256[:16]}…")
    return ProfileSnapshot(**{**snap.__dict__, "sha256": digest})
