"""What routes depend on: the process's runtime and the documented error responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from pydantic import AfterValidator

from sandu.api import schemas as s
from sandu.runtime import Runtime


def get_rt(request: Request) -> Runtime:
    return request.app.state.rt


RT = Annotated[Runtime, Depends(get_rt)]

UsccPath = Annotated[str, Path(json_schema_extra={"format": "uscc"}, description=s.USCC_DESCRIPTION), AfterValidator(s.checked_uscc)]
ConsentIdPath = Annotated[str, Path(min_length=36, max_length=36, pattern=s.UUID_PATTERN)]
DecisionIdPath = Annotated[str, Path(min_length=36, max_length=36, pattern=s.UUID_PATTERN)]
ProductPath = Annotated[str, Path(min_length=1, max_length=32, pattern=s.PRODUCT_PATTERN, description="product code, e.g. jingying_kuaidai")]
LineIdPath = Annotated[int, Path(ge=1, le=s.MAX_LINE_ID, description="credit line number")]

_DESCRIPTIONS = {
    403: "refused: the consent, the signer or the person may not do this",
    404: "no such object",
    409: "well-formed, but the current state forbids it (e.g. an overdraw, a date after the business date)",
    422: "malformed input: the field, the reason and what is allowed",
    503: "the store is busy; nothing was written; retry after the Retry-After seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a route: each in the one error format."""
    documented = {422, *codes}
    return {code: {"model": s.ErrorOut, "description": _DESCRIPTIONS[code]} for code in sorted(documented)}
