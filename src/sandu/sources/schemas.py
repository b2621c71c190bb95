"""The declared schema of every data source's payload, and the one place it is checked.

Pure: a payload and the profile's ``as_of`` in, a normalized payload and a list of
issues out. No database, no HTTP, no settings, no clock. `validate` never raises on
what a source returned, whatever its shape.

Versioning
    `SCHEMA_VERSION` labels the whole set of models below. Any change of a model (a
    field added, removed or renamed, a unit, a range, a rule) bumps it, so that a
    profile can be told apart from one validated under other rules.

What a payload may hold (one pydantic model per source, fields in the order they are read)
    * amounts are named ``*_fen`` and are integer fen 0..`MAX_SOURCE_INT` in the canonical
      form; counts are integers 0..`MAX_SOURCE_INT`; an ``int`` is an ``int`` — never a
      ``bool``, never a float, never a numeric string;
    * a payload that holds amounts may carry an envelope: ``currency`` (only ``"CNY"``;
      anything else is ``{source}.currency:unsupported`` and no amount of the payload is
      read) and ``unit`` of its amounts: ``"fen"`` (the default), ``"yuan"`` or ``"wan"``
      (万元). Yuan and wan amounts may be integers, decimal strings (``"12.34"``) or JSON
      numbers, and are converted to integer fen exactly: a yuan amount has at most 2
      decimals, a wan amount at most 6, anything finer is ``{source}.{field}:fraction``
      (never rounded). An unknown unit is ``{source}.unit:unsupported`` and no amount of
      the payload is read;
    * any payload may carry ``as_of`` (an ISO date, the day the source's figures are as
      of): after the profile's ``as_of`` it is ``{source}.as_of:future`` and the whole
      payload is rejected (None);
    * ``invoices`` and ``bank_flows`` are 12-month figures: ``months`` may be omitted
      (then it is the 12 months the source contract promises), any other period is
      ``{source}.months:period`` and the period's figures are absent (a different period
      is never silently annualised);
    * tax ``years`` are calendar years ``MIN_TAX_YEAR`` .. ``as_of.year - 1``: the year of
      ``as_of`` is not closed (its annual settlement, 汇算清缴, is due by 31 May of the next
      year), so it and any later year are ``tax.years[{year}]:future``. A record repeated
      identically is kept once (``tax.years[{year}]:duplicate``); records of one year that
      differ reject that year (``tax.years[{year}]:conflict``); a field of a year's record
      is flagged with its year (``tax.years[2024].vat_fen:negative``). Held years that are not consecutive are
      ``tax.years:gap``; fewer than 3 of the latest three calendar years are
      ``tax.years:fewer_than_3``. At most `MAX_TAX_YEARS` records (more refuse the list).
      A record without a valid year cannot be placed: ``tax.year:invalid`` (also when the
      year is absent), and the record is left out;
    * lists are read up to a limit and more items are flagged (``more_than_{n}``); a
      certification that is not a name is dropped (``ip.certifications:invalid``); an
      asset with any rejected field is left out whole.

Issues are flag strings ``{source}.{field}:{reason}`` with ``reason`` one of
``invalid`` (wrong type, out of range, not a known value), ``missing`` (a required field
is absent), ``negative``, ``fraction``, ``unsupported``, ``future``, ``period``,
``duplicate``, ``conflict``, ``gap``, ``fewer_than_3``, ``more_than_{n}``; and
``{source}:invalid`` for a payload that is not a JSON object. A rejected field is None in
the normalized payload (a rejected list item is left out), so nothing is half-read: a
feature is computed from valid values only, or is absent.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, localcontext
from functools import cache
from typing import Annotated, Any, NoReturn

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from sandu.domain.money import MAX_AMOUNT_FEN

SCHEMA_VERSION = "sources@2026.2"  # bump on any change of a model or a rule below (2026.2: a tax year's issues name the year)

MAX_SOURCE_INT = MAX_AMOUNT_FEN  # the largest amount (fen) or count a source may report
MAX_SOURCE_TEXT = 64  # characters of an asset id or kind, or of a certification's name
MIN_TAX_YEAR = 1949  # a tax year is a calendar year of the People's Republic
MAX_TAX_YEARS = 10  # a longer tax history is refused whole (flagged): its latest 3 years are not read from a guess
TAX_YEARS_READ = 3  # the latest calendar years the features compare
MAX_CERTIFICATIONS = 20  # certifications read per enterprise; more are flagged
MAX_COLLATERAL_ASSETS = 50  # assets read per enterprise; more are flagged, never silently dropped
TAX_GRADES = ("A", "B", "M", "C", "D")  # 纳税信用等级
PERIOD_MONTHS = 12  # invoices and bank flows are 12-month figures
CURRENCY = "CNY"
UNIT_FEN = {"fen": 1, "yuan": 100, "wan": 1_000_000}  # fen per unit; its decimals allowed: 0, 2, 6
_MAX_DECIMAL_TEXT = 40  # characters of an amount written as text
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _reject(reason: str, why: str) -> NoReturn:
    raise PydanticCustomError(reason, why)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: Any) -> int:
    if not _is_int(value):
        _reject("invalid", "must be a whole number (not bool, float or text)")
    if value < 0:
        _reject("negative", "must not be negative")
    if value > MAX_SOURCE_INT:
        _reject("invalid", f"must be at most {MAX_SOURCE_INT}")
    return value


def _decimal(value: Any) -> Decimal:
    if _is_int(value):
        return Decimal(value)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return Decimal(repr(value))  # the shortest text of the number, as the source wrote it
    if isinstance(value, str) and len(value) <= _MAX_DECIMAL_TEXT and _DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    _reject("invalid", "must be a number or a decimal text")


def _fen(value: Any, info: ValidationInfo) -> int:
    """An amount in the payload's unit, as integer fen (exactly, or rejected)."""
    unit = (info.context or {}).get("unit", "fen")
    if unit == "fen":
        return _count(value)
    amount = _decimal(value)
    if amount < 0:
        _reject("negative", "must not be negative")
    if amount > MAX_SOURCE_INT:  # before scaling: keeps the digits within the context's precision
        _reject("invalid", f"must be at most {MAX_SOURCE_INT} fen")
    with localcontext() as ctx:
        ctx.prec = 60
        fen = amount * UNIT_FEN[unit]
    if fen != fen.to_integral_value():
        _reject("fraction", f"{unit} amounts have at most {len(str(UNIT_FEN[unit])) - 1} decimals")
    return _count(int(fen))


def _text(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_SOURCE_TEXT:
        _reject("invalid", f"must be a text of 1..{MAX_SOURCE_TEXT} characters")
    return value


def _yes_no(value: Any) -> bool:
    if not isinstance(value, bool):
        _reject("invalid", "must be true or false")
    return value


def _grade(value: Any) -> str:
    if not isinstance(value, str) or value not in TAX_GRADES:
        _reject("invalid", f"must be one of {', '.join(TAX_GRADES)}")
    return value


def _months(value: Any) -> int:
    if _count(value) != PERIOD_MONTHS:
        _reject("period", f"must be {PERIOD_MONTHS} months")
    return value


def _year(value: Any, info: ValidationInfo) -> int:
    if not _is_int(value) or value < MIN_TAX_YEAR:
        _reject("invalid", f"must be a calendar year from {MIN_TAX_YEAR}")
    as_of: date = (info.context or {})["as_of"]
    if value >= as_of.year:
        _reject("future", f"must be a closed year, at most {as_of.year - 1}")
    return value


def _currency(value: Any) -> str:
    if value != CURRENCY:
        _reject("unsupported", f"must be {CURRENCY}")
    return value


def _unit(value: Any) -> str:
    if not isinstance(value, str) or value not in UNIT_FEN:
        _reject("unsupported", f"must be one of {', '.join(UNIT_FEN)}")
    return value


def _source_as_of(value: Any, info: ValidationInfo) -> date:
    try:
        day = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        _reject("invalid", "must be an ISO date YYYY-MM-DD")
    if day > (info.context or {})["as_of"]:
        _reject("future", "must not be after the profile's as_of")
    return day


Count = Annotated[int, BeforeValidator(_count)]
Fen = Annotated[int, BeforeValidator(_fen)]  # integer fen after normalization
Text = Annotated[str, BeforeValidator(_text)]
YesNo = Annotated[bool, BeforeValidator(_yes_no)]
Grade = Annotated[str, BeforeValidator(_grade)]
Months = Annotated[int, BeforeValidator(_months)]
TaxYearNumber = Annotated[int, BeforeValidator(_year)]
Currency = Annotated[str, BeforeValidator(_currency)]
Unit = Annotated[str, BeforeValidator(_unit)]
SourceAsOf = Annotated[date, BeforeValidator(_source_as_of)]


class _Payload(BaseModel):
    """Every payload: unknown keys are ignored; ``as_of`` is optional."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    as_of: SourceAsOf | None = None


class _MoneyPayload(_Payload):
    """A payload with amounts: an optional envelope of currency and unit."""

    currency: Currency = CURRENCY
    unit: Unit = "fen"


class TaxYear(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    year: TaxYearNumber
    revenue_fen: Fen
    vat_fen: Fen
    cit_fen: Fen
    rd_expense_fen: Fen


class Tax(_MoneyPayload):
    years: list[TaxYear]  # checked item by item: see `_tax_years`
    tax_credit_grade: Grade


class Invoices(_MoneyPayload):
    months: Months = PERIOD_MONTHS
    sales_invoice_fen: Fen
    customer_count: Count
    sales_invoice_count: Count | None = None  # informative; not a feature


class SocialInsurance(_Payload):
    headcount: Count
    tech_staff: Count
    headcount_12m_ago: Count
    arrears_months: Count


class Utilities(_Payload):
    electricity_kwh_12m: Count
    electricity_kwh_prev_12m: Count
    arrears: YesNo


class Ip(_Payload):
    invention_patents: Count
    utility_models: Count
    software_copyrights: Count
    certifications: list[Text]  # checked item by item: see `_certifications`


class CreditBureau(_MoneyPayload):
    loans_outstanding_fen: Fen
    secured_debt_fen: Fen
    overdue_count_24m: Count
    max_overdue_days_24m: Count
    queries_3m: Count
    # 公共记录 · 强制执行: court enforcement cases against the enterprise on the report; None: the report says nothing of them
    court_enforcements: Count | None = None


class BankFlows(_MoneyPayload):
    months: Months = PERIOD_MONTHS
    inflow_fen: Fen
    outflow_fen: Fen


class Asset(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    appraised_value_fen: Fen
    secured_debt_fen: Fen
    kind: Text
    id: Annotated[str, BeforeValidator(lambda v: v if v == "" else _text(v))] = ""  # may be absent (empty)


class CollateralRegistry(_MoneyPayload):
    assets: list[Asset]  # checked item by item: see `_assets`


MODELS: dict[str, type[BaseModel]] = {
    "tax": Tax,
    "invoices": Invoices,
    "social_insurance": SocialInsurance,
    "utilities": Utilities,
    "ip": Ip,
    "credit_bureau": CreditBureau,
    "bank_flows": BankFlows,
    "collateral": CollateralRegistry,
}
_LISTS = {"years", "certifications", "assets"}  # fields read item by item, below
# Fields added after the sources' payloads were first pinned: left out of the normalized payload when a source does not
# send them (rather than written as None), so that every earlier payload normalizes — and hashes — exactly as before.
_ABSENT_UNLESS_SENT = {"court_enforcements"}
_ENVELOPE = ("as_of", "currency", "unit")
_PERIOD_FIELDS = {"invoices": ("sales_invoice_fen", "customer_count", "sales_invoice_count"), "bank_flows": ("inflow_fen", "outflow_fen")}


@cache
def _plan(model: type[BaseModel]) -> dict[str, tuple[TypeAdapter[Any], bool, Any]]:
    """Each field of `model`: its validator (the field's annotation), whether it is required, its default."""
    return {
        name: (TypeAdapter(info.rebuild_annotation()), info.is_required(), None if info.is_required() else info.get_default(call_default_factory=True))
        for name, info in model.model_fields.items()
    }


def _field(model: type[BaseModel], name: str, raw: dict[str, Any], context: dict[str, Any]) -> tuple[Any, str | None]:
    """The field's normalized value and None, or None and the reason it is rejected."""
    adapter, required, default = _plan(model)[name]
    if name not in raw:
        return (None, "missing") if required else (default, None)
    try:
        return adapter.validate_python(raw[name], context=context), None
    except ValidationError as e:
        return None, str(e.errors()[0]["type"])


def _fields(model: type[BaseModel], raw: dict[str, Any], context: dict[str, Any], skip: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Every scalar field of `model` read from `raw` (rejected or skipped ones None), and the
    rejected fields with their reasons, in declaration order."""
    out: dict[str, Any] = {}
    rejected: list[tuple[str, str]] = []
    for name in _plan(model):
        if name in _LISTS or name in _ENVELOPE:
            continue
        if name in skip:
            out[name] = None
            continue
        if name in _ABSENT_UNLESS_SENT and name not in raw:
            continue
        out[name], reason = _field(model, name, raw, context)
        if reason is not None:
            rejected.append((name, reason))
    return out, rejected


def _tax_years(raw: dict[str, Any], context: dict[str, Any], issues: list[str], skip: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """The distinct valid year records, oldest first, and the issues of their fields (reported later)."""
    years = raw.get("years")
    if years is None or years == []:
        issues.append("tax.years:missing")
        return [], []
    if not isinstance(years, list):
        issues.append("tax.years:invalid")
        return [], []
    if len(years) > MAX_TAX_YEARS:
        issues.append(f"tax.years:more_than_{MAX_TAX_YEARS}")
        return [], []
    kept: dict[int, tuple[dict[str, Any], list[str]]] = {}
    conflicting: set[int] = set()
    for item in years:  # at most MAX_TAX_YEARS
        if not isinstance(item, dict):
            issues.append("tax.years:invalid")
            continue
        year, reason = _field(TaxYear, "year", item, context)
        if reason == "future":  # a closed-year check: the year itself is known and named
            issues.append(f"tax.years[{item['year']}]:future")
            continue
        if reason is not None:
            issues.append(f"tax.year:{'invalid' if reason == 'missing' else reason}")  # no year to name
            continue
        record, rejected = _fields(TaxYear, item, context, (*skip, "year"))
        record["year"] = year  # read above
        field_issues = [f"tax.years[{year}].{n}:{r}" for n, r in rejected]
        if year in conflicting:
            issues.append(f"tax.years[{year}]:conflict")
        elif year not in kept:
            kept[year] = (record, field_issues)
        elif kept[year] == (record, field_issues):
            issues.append(f"tax.years[{year}]:duplicate")  # the same record again: kept once
        else:
            issues.append(f"tax.years[{year}]:conflict")  # two versions of one year: neither is trusted
            conflicting.add(year)
            del kept[year]
    if not kept:
        issues.append("tax.years:missing")
    ordered = sorted(kept)
    return [kept[y][0] for y in ordered], [i for y in ordered for i in kept[y][1]]


def _tax(raw: dict[str, Any], context: dict[str, Any], issues: list[str], skip: tuple[str, ...]) -> dict[str, Any]:
    years, year_issues = _tax_years(raw, context, issues, skip)
    out, rejected = _fields(Tax, raw, context)
    issues.extend(f"tax.{n}:{r}" for n, r in rejected)
    issues.extend(year_issues)
    if years:
        held = [y["year"] for y in years]
        if held[-1] - held[0] + 1 != len(held):
            issues.append("tax.years:gap")
        if sum(1 for y in held if y > held[-1] - TAX_YEARS_READ) < TAX_YEARS_READ:
            issues.append(f"tax.years:fewer_than_{TAX_YEARS_READ}")
    return {"tax_credit_grade": out["tax_credit_grade"], "years": years}


_TEXT: TypeAdapter[str] = TypeAdapter(Text)


def _is_valid(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _certifications(raw: dict[str, Any], issues: list[str]) -> list[str] | None:
    if "certifications" not in raw:
        issues.append("ip.certifications:missing")
        return None
    certs = raw["certifications"]
    if not isinstance(certs, list):
        issues.append("ip.certifications:invalid")
        return None
    if len(certs) > MAX_CERTIFICATIONS:
        issues.append(f"ip.certifications:more_than_{MAX_CERTIFICATIONS}")
    read = certs[:MAX_CERTIFICATIONS]
    names = [c for c in read if _is_valid(_TEXT, c)]
    if len(names) < len(read):
        issues.append("ip.certifications:invalid")
    return names


def _assets(raw: dict[str, Any], context: dict[str, Any], issues: list[str], skip: tuple[str, ...]) -> list[dict[str, Any]]:
    if "assets" not in raw:
        issues.append("collateral.assets:missing")
        return []
    assets = raw["assets"]
    if not isinstance(assets, list):
        issues.append("collateral.assets:invalid")
        return []
    if len(assets) > MAX_COLLATERAL_ASSETS:
        issues.append(f"collateral.assets:more_than_{MAX_COLLATERAL_ASSETS}")
    out = []
    for a in assets[:MAX_COLLATERAL_ASSETS]:
        if not isinstance(a, dict):
            issues.append("collateral.assets:invalid")
            continue
        record, rejected = _fields(Asset, a, context, skip)
        issues.extend(f"collateral.{n}:{r}" for n, r in rejected)
        if not rejected and not skip:  # an asset is read whole or not at all
            out.append({"id": record["id"], "kind": record["kind"], "appraised_value_fen": record["appraised_value_fen"], "secured_debt_fen": record["secured_debt_fen"]})
    return out


def validate(source: str, payload: Any, as_of: date) -> tuple[dict[str, Any] | None, list[str]]:
    """Check `payload` of `source` against its model; return it normalized (amounts in
    integer fen, tax years sorted and distinct, rejected fields None, rejected list items
    left out, the envelope dropped) with the issues found, in the order the fields are
    declared. None when the payload cannot be read at all. Never raises on `payload`;
    an unknown `source` is the caller's error (`KeyError`)."""
    model = MODELS[source]
    if not isinstance(payload, dict):
        return None, [f"{source}:invalid"]
    issues: list[str] = []
    context: dict[str, Any] = {"as_of": as_of, "unit": "fen"}
    if "as_of" in payload and (reason := _field(model, "as_of", payload, context)[1]) is not None:
        issues.append(f"{source}.as_of:{reason}")
        if reason == "future":
            return None, issues  # figures of a day to come: nothing of the payload is read
    skip: tuple[str, ...] = ()
    if issubclass(model, _MoneyPayload):
        for name in ("currency", "unit"):
            value, reason = _field(model, name, payload, context)
            if reason is not None:
                issues.append(f"{source}.{name}:{reason}")
                skip = tuple(n for n in (*model.model_fields, *TaxYear.model_fields, *Asset.model_fields) if n.endswith("_fen"))
            elif name == "unit":
                context["unit"] = value
    if source == "tax":
        return _tax(payload, context, issues, skip), issues
    out, rejected = _fields(model, payload, context, skip)
    issues.extend(f"{source}.{n}:{r}" for n, r in rejected)
    if source in _PERIOD_FIELDS and out["months"] != PERIOD_MONTHS:
        out.update(dict.fromkeys(_PERIOD_FIELDS[source]))  # not this period's figures: absent, not annualised
    if source == "ip":
        out["certifications"] = _certifications(payload, issues)
    if source == "collateral":
        out["assets"] = _assets(payload, context, issues, skip)
    return out, issues

