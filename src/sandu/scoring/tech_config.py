"""Load and validate the tech-evaluation config (科创评价, TOML) into typed, frozen models.

The config holds every weight, threshold and grade band of `sandu.scoring.tech`;
nothing of the kind lives in code. Its identity is ``name@version`` plus a
canonical sha256 of the parsed document (`canonical_sha256`, so comments and
layout do not change it, any value does); each decision records both, and a
replay under another config is refused.

Loading fails loudly: every refusal is a `TechConfigError` whose message starts
with the dotted key path (``most.rd_ratio[1].min: …``), says why and what is
allowed. What the models guarantee, so that the engine never meets a surprise:

- every key is present and no unknown key is accepted;
- types are exact: thresholds are decimal strings (``"0.30"``) and become
  `Decimal`, points and counts are integers (a float or a bool is refused);
- weights are integers within 0..100 and add up to exactly 100; no band of a
  bank indicator gives more points than the indicator's weight;
- band tables read from the best band down: ``min`` strictly decreasing (``below``
  strictly increasing for lower-is-better tables), points never increasing;
- the official systems add up to their official 100 points (MOST: staff 20 +
  R&D 50 + IP 30; MIIT: innovation 40 + growth 30 + specialisation 30) and their
  pass marks lie within them;
- grades follow A/B/C/D/E, each once, ``min_score`` strictly decreasing from the
  best grade down to a last grade at ``"0"`` so that every score has a grade.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints, ValidationError, model_validator

from sandu.domain.errors import show
from sandu.domain.numbers import decimal_string
from sandu.sources.profile import canonical_sha256

__all__ = [
    "DEFAULT_TECH_CONFIG",
    "GRADES",
    "TechConfig",
    "TechConfigError",
    "load_tech_config",
    "parse_tech_config",
    "tech_config_from_document",
]

DEFAULT_TECH_CONFIG = "tech_v1.toml"
GRADES = ("A", "B", "C", "D", "E")
TOTAL_WEIGHT = 100
OFFICIAL_TOTAL = 100
MAX_BANDS = 20
MAX_TABLE_KEYS = 50
MAX_SHOWN_ERRORS = 5
EDUCATION_LEVELS = ("doctorate", "master", "bachelor", "college", "other")

Grade = Literal["A", "B", "C", "D", "E"]


class TechConfigError(ValueError):
    """The tech config is not valid. `path` is the dotted key of the first problem
    (``""`` for the file as a whole), `reason` says why and what is allowed; the
    message is ``"<path>: <reason>"`` and lists a few further problems."""

    def __init__(self, path: str, reason: str, more: Sequence[tuple[str, str]] = ()):
        problems = [(path, reason), *more]
        shown = "; ".join(f"{p}: {r}" if p else r for p, r in problems[:MAX_SHOWN_ERRORS])
        hidden = len(problems) - MAX_SHOWN_ERRORS
        super().__init__(shown + (f" (and {hidden} more)" if hidden > 0 else ""))
        self.path = path
        self.reason = reason
        self.problems = tuple(problems)


class _Refused(ValueError):
    """Raised by the config's own checks as ``_Refused(path, reason)``; `path` starts at the top."""


_decimal_string = decimal_string("0.30")


Threshold = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=-1_000_000, le=1_000_000)]
Points = Annotated[int, Field(ge=0, le=OFFICIAL_TOTAL)]
Weight = Annotated[int, Field(ge=0, le=TOTAL_WEIGHT)]
Fen = Annotated[int, Field(ge=0, le=10**15)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Certificates = Annotated[tuple[Annotated[str, StringConstraints(min_length=1, max_length=64)], ...], Strict(False), Field(max_length=MAX_TABLE_KEYS)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Band(_Model):
    """value ≥ min → points."""

    min: Threshold
    points: Points


class CountBand(_Model):
    """count ≥ min → points."""

    min: Count
    points: Points


class BelowBand(_Model):
    """value < below → points (lower is better)."""

    below: Threshold
    points: Points


def _bands(kind: Any) -> Any:
    return Annotated[tuple[kind, ...], Strict(False), Field(min_length=1, max_length=MAX_BANDS)]


class Meta(_Model):
    name: Name
    version: Name
    description: Annotated[str, StringConstraints(max_length=2_000)]


class Weights(_Model):
    most: Weight
    innovative: Weight
    invention_density: Weight
    invention_trend: Weight
    rd_intensity: Weight
    rd_growth: Weight
    tech_staff: Weight
    team_education: Weight
    team_tenure: Weight
    certifications: Weight
    commercialisation: Weight


class GradeBand(_Model):
    grade: Grade
    min_score: Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0, le=100)]


class Most(_Model):
    pass_points: Points
    staff_points_required: bool
    max_headcount: Count
    max_revenue_fen: Fen
    max_total_assets_fen: Fen
    automatic_pass: Certificates
    class_i_min: Annotated[int, Field(ge=1, le=1_000)]
    class_i_points: Points
    tech_staff_ratio: _bands(Band)
    rd_ratio: _bands(Band)
    class_ii: _bands(CountBand)


class Innovative(_Model):
    pass_points: Points
    min_innovation: Points
    min_growth: Points
    min_specialisation: Points
    automatic_pass: Certificates
    ip_high_value_points: Points
    ip_class_i_points: Points
    ip_class_ii_points: Points
    strategic_emerging_points: Points
    other_field_points: Points
    rd_ratio: _bands(Band)
    revenue_growth: _bands(Band)
    debt_ratio: _bands(BelowBand)
    main_business_share: _bands(Band)


class TeamEducation(_Model):
    doctorate: Points
    master: Points
    bachelor: Points
    college: Points
    other: Points


class Bank(_Model):
    invention_density: _bands(Band)
    invention_trend: _bands(Band)
    rd_intensity: _bands(Band)
    rd_growth: _bands(Band)
    tech_staff: _bands(Band)
    team_tenure: _bands(Band)
    commercialisation: _bands(Band)
    team_education: TeamEducation
    certifications: Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Points], Field(max_length=MAX_TABLE_KEYS)]


class ConfigFile(_Model):
    """The TOML document, validated."""

    meta: Meta = Field(alias="model")
    weights: Weights
    grades: Annotated[tuple[GradeBand, ...], Strict(False), Field(min_length=1, max_length=len(GRADES))]
    most: Most
    innovative: Innovative
    bank: Bank

    @model_validator(mode="after")
    def _consistent(self) -> ConfigFile:
        _check_weights(self.weights)
        _check_grades(self.grades)
        _check_most(self.most)
        _check_innovative(self.innovative)
        _check_bank(self.bank, self.weights)
        return self


# -- the checks --------------------------------------------------------------------------


def _descending(bands: Sequence[Any], path: str, key: str = "min") -> None:
    """Best band first: `key` strictly decreasing (``below``: strictly increasing), points never increasing."""
    for i in range(1, len(bands)):
        before, now = getattr(bands[i - 1], key), getattr(bands[i], key)
        if key == "below" and now <= before:
            raise _Refused(f"{path}[{i}].below", f"must be listed from the best band down, strictly increasing; {show(str(now))} follows {show(str(before))}")
        if key == "min" and now >= before:
            raise _Refused(f"{path}[{i}].min", f"must be listed from the best band down, strictly decreasing; {show(str(now))} follows {show(str(before))}")
        if bands[i].points > bands[i - 1].points:
            raise _Refused(f"{path}[{i}].points", f"a lower band may not give more points; {bands[i].points} follows {bands[i - 1].points}")


def _check_weights(w: Weights) -> None:
    total = sum(w.model_dump().values())
    if total != TOTAL_WEIGHT:
        raise _Refused("weights", f"must add up to {TOTAL_WEIGHT}, got {total} ({', '.join(f'{k} {v}' for k, v in w.model_dump().items())})")


def _check_grades(grades: Sequence[GradeBand]) -> None:
    for i in range(1, len(grades)):
        if GRADES.index(grades[i].grade) <= GRADES.index(grades[i - 1].grade):
            raise _Refused(f"grades[{i}].grade", f"grades must be listed in the order {'/'.join(GRADES)}, each once; {grades[i].grade} follows {grades[i - 1].grade}")
        if grades[i].min_score >= grades[i - 1].min_score:
            raise _Refused(f"grades[{i}].min_score", f"must be listed from the best grade down, strictly decreasing; "
                                                     f"{show(str(grades[i].min_score))} follows {show(str(grades[i - 1].min_score))}")
    if grades[-1].min_score != 0:
        raise _Refused(f"grades[{len(grades) - 1}].min_score", 'the last grade must have min_score "0" so that every score has a grade')


def _check_most(m: Most) -> None:
    for name in ("tech_staff_ratio", "rd_ratio", "class_ii"):
        _descending(getattr(m, name), f"most.{name}")
    total = m.tech_staff_ratio[0].points + m.rd_ratio[0].points + m.class_i_points
    if total != OFFICIAL_TOTAL:
        raise _Refused("most", f"the best bands (tech_staff_ratio {m.tech_staff_ratio[0].points} + rd_ratio {m.rd_ratio[0].points} "
                               f"+ class_i_points {m.class_i_points}) must add up to {OFFICIAL_TOTAL}, got {total}")
    if m.class_ii[0].points > m.class_i_points:
        raise _Refused("most.class_ii[0].points", f"Class-II IP may not score more than Class-I ({m.class_i_points}), got {m.class_ii[0].points}")


def _check_innovative(n: Innovative) -> None:
    for name in ("rd_ratio", "revenue_growth", "main_business_share"):
        _descending(getattr(n, name), f"innovative.{name}")
    _descending(n.debt_ratio, "innovative.debt_ratio", "below")
    if not n.ip_high_value_points >= n.ip_class_i_points >= n.ip_class_ii_points:
        raise _Refused("innovative.ip_class_i_points", "IP points must not increase from high-value to Class-I to Class-II "
                                                       f"(got {n.ip_high_value_points}, {n.ip_class_i_points}, {n.ip_class_ii_points})")
    if n.other_field_points > n.strategic_emerging_points:
        raise _Refused("innovative.other_field_points", f"may not exceed strategic_emerging_points ({n.strategic_emerging_points}), got {n.other_field_points}")
    groups = {
        "min_innovation": n.ip_high_value_points + n.rd_ratio[0].points,
        "min_growth": n.revenue_growth[0].points + n.debt_ratio[0].points,
        "min_specialisation": n.strategic_emerging_points + n.main_business_share[0].points,
    }
    total = sum(groups.values())
    if total != OFFICIAL_TOTAL:
        raise _Refused("innovative", f"innovation {groups['min_innovation']} + growth {groups['min_growth']} + specialisation "
                                     f"{groups['min_specialisation']} must add up to {OFFICIAL_TOTAL}, got {total}")
    for key, most in groups.items():
        if getattr(n, key) > most:
            raise _Refused(f"innovative.{key}", f"must be within 0..{most} (the most its group can score), got {getattr(n, key)}")


def _check_bank(b: Bank, w: Weights) -> None:
    for name in ("invention_density", "invention_trend", "rd_intensity", "rd_growth", "tech_staff", "team_tenure", "commercialisation"):
        bands, weight = getattr(b, name), getattr(w, name)
        _descending(bands, f"bank.{name}")
        if bands[0].points > weight:
            raise _Refused(f"bank.{name}[0].points", f"must be within 0..{weight} (the weight of {name}), got {bands[0].points}")
    for level, points in b.team_education.model_dump().items():
        if points > w.team_education:
            raise _Refused(f"bank.team_education.{level}", f"must be within 0..{w.team_education} (the weight of team_education), got {points}")


# -- the config ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TechConfig:
    """A validated config, identified by `label` and the hash of its parsed content."""

    name: str
    version: str
    sha256: str
    weights: Weights
    grades: tuple[GradeBand, ...]  # best first; the last starts at 0
    most: Most
    innovative: Innovative
    bank: Bank

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def grade_names(self) -> tuple[str, ...]:
        return tuple(g.grade for g in self.grades)

    def grade_of(self, score: Decimal) -> str:
        """The best grade whose `min_score` the score reaches — the one place a tech score becomes a grade."""
        return next(g.grade for g in self.grades if score >= g.min_score)


# -- errors as dotted paths --------------------------------------------------------------------


def _dotted(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _allowed_keys(loc: Sequence[int | str]) -> list[str]:
    tp: Any = ConfigFile
    for part in loc:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        if get_origin(tp) is tuple:
            tp = get_args(tp)[0]
        else:
            tp = {f.alias or n: f for n, f in tp.model_fields.items()}[str(part)].annotation
    while get_origin(tp) is Annotated or get_origin(tp) is tuple:
        tp = get_args(tp)[0]
    return [f.alias or n for n, f in tp.model_fields.items()]


def _problem(err: Any) -> tuple[str, str]:
    loc = list(err["loc"])
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, _Refused):
        return cause.args[0], cause.args[1]
    if loc and loc[-1] == "[key]":
        loc.pop()
    path, kind = _dotted(loc), err["type"]
    if kind == "missing":
        return path, "missing"
    if kind == "extra_forbidden":
        return path, f"unknown key (allowed: {', '.join(_allowed_keys(loc[:-1]))})"
    reason = err["msg"]
    if kind != "decimal_string":
        reason += f", got {show(err.get('input'))}"
    return path, reason


def tech_config_from_document(doc: dict[str, Any]) -> TechConfig:
    """Validate a parsed TOML document; `TechConfigError` names the first bad key."""
    try:
        f = ConfigFile.model_validate(doc)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise TechConfigError(*problems[0], more=problems[1:]) from None
    return TechConfig(name=f.meta.name, version=f.meta.version, sha256=canonical_sha256(doc), weights=f.weights,
                      grades=f.grades, most=f.most, innovative=f.innovative, bank=f.bank)


def parse_tech_config(raw: bytes) -> TechConfig:
    try:
        doc = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TechConfigError("", f"tech config is not valid TOML: {exc}") from exc
    return tech_config_from_document(doc)


def load_tech_config(path: str | Path | None = None) -> TechConfig:
    """The config at `path`, or the default shipped with sandu (`scoring/models/tech_v1.toml`)."""
    if path is None:
        raw = resources.files("sandu.scoring.models").joinpath(DEFAULT_TECH_CONFIG).read_bytes()
    else:
        raw = Path(path).read_bytes()
    return parse_tech_config(raw)
