"""The route class of every API router: who is asking is settled before anything is read,
and JSON bodies are read exactly.

Before the body is read or validated, the bearer token is authenticated and the role
checked against the authorization table (`sandu.security.authz`): without a valid token
every non-public route answers 401, a role the table does not allow answers 403. The
actor is kept on the request for the route's admission dependency (object, freshness,
rate limit; see `sandu.api.deps`).

A number with a fraction or an exponent is parsed as a `Decimal`, never a binary
float, so `2.0` can be accepted as the whole number 2 while `0.1` stays 0.1 and
`1e400` does not become infinity; `NaN` and `Infinity`, which JSON does not have,
are refused as malformed JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from sandu.security import actions as security

BEARER = "bearer "
T = TypeVar("T")


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal, parse_constant=_no_constants)
        return self._json


async def in_worker_thread(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking action (a unit of work) on a request thread, from an `async def` route. A plain `def` route is
    run there by FastAPI too, but its answer is then checked against the response model in a second trip to a
    worker thread; an `async def` route whose action answers the view model has it checked and serialized on the event
    loop (no blocking there: the view is built). For the busiest routes (measure, draw): one thread hand-off fewer."""
    return await run_in_threadpool(action, *args, **kwargs)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[: len(BEARER)].lower() == BEARER:
        return header[len(BEARER):].strip() or None
    return None


class SanduRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        route_name = self.name

        async def guarded_handler(request: Request) -> Response:
            request = ExactJSONRequest(request.scope, request.receive)
            request.state.route_name = route_name
            rt = request.app.state.rt
            request.state.actor = await run_in_threadpool(security.authenticate, rt, route_name, bearer_token(request))
            return await handler(request)

        return guarded_handler
