"""The project an applicant asks to finance: one record, used by the API body,
the origination service, the stored application and the policy engine.

A pydantic dataclass, so that constructing one validates it (strict types, no
extra fields) and the OpenAPI document states the same bounds the code enforces.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from pydantic.dataclasses import dataclass

from sandu.domain.errors import InvalidInput
from sandu.domain.money import MAX_AMOUNT_FEN
from sandu.domain.numbers import whole_number
from sandu.domain.text import MAX_NAME_LENGTH, PLAIN_TEXT_PATTERN, plain_text

MAX_PROJECT_TENOR_YEARS = 30  # what an application may ask; the policy bundle sets what it will lend


def _name(value: str) -> str:
    return plain_text(value, "project.name")


# Constraints before the validator, so that the JSON schema states them (minimum/maximum).
Fen = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT_FEN, description=f"fen, 1..{MAX_AMOUNT_FEN}"), BeforeValidator(whole_number)]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Project:
    """A project (land, construction, equipment) with its cost and cash flow."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra={"pattern": PLAIN_TEXT_PATTERN}), AfterValidator(_name)]
    capex_fen: Fen
    annual_cash_flow_fen: Fen
    tenor_years: Annotated[StrictInt, Field(ge=1, le=MAX_PROJECT_TENOR_YEARS), BeforeValidator(whole_number)]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "capex_fen": self.capex_fen, "annual_cash_flow_fen": self.annual_cash_flow_fen, "tenor_years": self.tenor_years}


def project_from(data: dict[str, Any], field: str = "project") -> Project:
    """A `Project` from plain data, or `InvalidInput` naming the first bad field."""
    if not isinstance(data, dict):
        raise InvalidInput(field, "must be an object with name, capex_fen, annual_cash_flow_fen, tenor_years")
    try:
        return Project(**data)
    except InvalidInput:
        raise
    except (ValidationError, TypeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        sub = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"{field}.{sub}" if sub else field, first.get("msg", "invalid")) from None
