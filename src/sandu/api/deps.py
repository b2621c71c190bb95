"""What routes depend on: the runtime, the admitted actor, the documented error responses.

Each route declares the admission dependency of its object kind (`AsEnterpriseActor`,
`AsLineActor`, …, or `AsActor` for a route without an object); it runs after the
path parameters are validated and checks, against the authorization table, that the
object is within the actor's reach (404 otherwise), that a fresh password was given
where the route needs one, and the rate limit. `create_app` refuses to start when a
route's dependency does not match its rule.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import AfterValidator

from sandu.api import schemas as s
from sandu.api.routing import blocking
from sandu.domain.keys import MAX_ROW_ID
from sandu.runtime import Runtime
from sandu.security import actions as security
from sandu.security.actor import Actor
from sandu.security.authz import ObjectKind

# Documents the bearer scheme in OpenAPI; authentication itself happens in SanduRoute.
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_rt(request: Request) -> Runtime:
    # async: FastAPI calls it on the event loop (a plain def would cost every request a trip to a worker thread).
    return request.app.state.rt


RT = Annotated[Runtime, Depends(get_rt)]

UsccPath = Annotated[str, Path(json_schema_extra={"format": "uscc"}, description=s.USCC_DESCRIPTION), AfterValidator(s.checked_uscc)]
ConsentIdPath = Annotated[str, Path(min_length=36, max_length=36, pattern=s.UUID_PATTERN)]
DecisionIdPath = Annotated[str, Path(min_length=36, max_length=36, pattern=s.UUID_PATTERN)]
ProductPath = Annotated[str, Path(min_length=1, max_length=32, pattern=s.PRODUCT_PATTERN, description="product code, e.g. jingying_kuaidai")]
LineIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="credit line number")]
ApplicationIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="application number")]
AlertIdPath = s.AlertIdPath
UserIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="user number")]


async def _admit(request: Request, key: object = None) -> Actor:
    rt = request.app.state.rt
    return await blocking(rt, security.admit, rt, request.state.route_name, request.state.actor, key)


async def admit_none(request: Request, _token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    return await _admit(request)


async def admit_enterprise(request: Request, uscc: UsccPath, _token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    return await _admit(request, uscc)


async def admit_consent(request: Request, consent_id: ConsentIdPath, _token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    return await _admit(request, consent_id)


async def admit_decision(request: Request, decision_id: DecisionIdPath, _token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    return await _admit(request, decision_id)


async def admit_line(request: Request, line_id: LineIdPath, _token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    return await _admit(request, line_id)


async def admit_application(request: Request, application_id: ApplicationIdPath, _token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    return await _admit(request, application_id)


async def admit_alert(request: Request, alert_id: AlertIdPath, _token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    return await _admit(request, alert_id)


AsActor = Annotated[Actor, Depends(admit_none)]
AsEnterpriseActor = Annotated[Actor, Depends(admit_enterprise)]
AsConsentActor = Annotated[Actor, Depends(admit_consent)]
AsDecisionActor = Annotated[Actor, Depends(admit_decision)]
AsLineActor = Annotated[Actor, Depends(admit_line)]
AsApplicationActor = Annotated[Actor, Depends(admit_application)]
AsAlertActor = Annotated[Actor, Depends(admit_alert)]
ADMISSION = {None: admit_none, ObjectKind.ENTERPRISE: admit_enterprise, ObjectKind.CONSENT: admit_consent,
             ObjectKind.DECISION: admit_decision, ObjectKind.LINE: admit_line, ObjectKind.APPLICATION: admit_application,
             ObjectKind.ALERT: admit_alert}

_DESCRIPTIONS = {
    401: "no acceptable identity: no token, an invalid or expired one, a disabled account; or a fresh password is needed",
    403: "refused: the role, the consent or the person may not do this (the rule is named)",
    404: "no such object, or not one you may see",
    409: "well-formed, but the current state forbids it (e.g. an overdraw, a date after the business date)",
    413: "the request body is too large",
    431: "the request line and headers are too large",
    422: "malformed input: the field, the reason and what is allowed",
    429: "too many requests from this identity; retry after the Retry-After seconds",
    503: "the store is busy; nothing was written; retry after the Retry-After seconds",
}


def errors(*codes: int, public: bool = False) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a route: each in the one error format."""
    documented = {422, 413, 431, *codes} | (set() if public else {401, 403})
    return {code: {"model": s.ErrorOut, "description": _DESCRIPTIONS[code]} for code in sorted(documented)}
