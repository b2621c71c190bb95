"""The HTTP application: the API under /api/v1, the web pages, health and metrics.

Thin: routers (one per resource, in `sandu.api.routers`) parse, call one
action of a service, and return its view. Every action commits before it
returns, so a 2xx is only ever sent for a committed write. Handlers are plain
`def` functions: FastAPI runs them on its worker threads, whose number
(`SANDU_WORKER_THREADS`) the connection pool matches — except the busiest
(measure, draw), `async def` handing their action to `sandu.api.routing.run_action`
themselves: one thread hand-off fewer, and none on a SQLite store with every source
served from it (`runs_on_loop`: the action then runs on the event loop). Every API route has a
rule in the authorization table and the admission dependency that rule needs;
the app refuses to start otherwise.
"""

from __future__ import annotations

import gc
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandu.api import errors
from sandu.api.deps import ADMISSION
from sandu.api.routers import alerts, applications, audit, auth, consents, decisions, enterprises, lines, operations, policy, referrals, reports, users
from sandu.api.routing import SanduRoute, Turns
from sandu.context import reset_request_id, set_request_id
from sandu.observability import ensure_logging, logger
from sandu.runtime import Runtime, make_runtime
from sandu.security.authz import rule_for
from sandu.web.pages import mount_web

API_PREFIX = "/api/v1"
REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
ROUTERS = (auth, users, enterprises, consents, decisions, applications, referrals, lines, alerts, operations, policy, reports, audit)
log = logger("sandu.http")


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID when well-formed), answers it
    in X-Request-ID, and counts and times the request by route for /metrics."""

    def __init__(self, app: ASGIApp, runtime: Runtime):
        self.app = app
        self.rt = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = set_request_id(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = (scope.get("state") or {}).get("route_name") or _path_group(scope.get("path", ""))
            self.rt.metrics.request(route, scope.get("method", ""), status, seconds)
            log.info("request", method=scope.get("method"), route=route, status=status, ms=round(seconds * 1000, 2))
            reset_request_id(token)


def _path_group(path: str) -> str:
    """A bounded label for requests outside the API's named routes."""
    for prefix in ("/static", "/app", "/docs", "/metrics", "/healthz", "/readyz"):
        if path.startswith(prefix):
            return prefix.strip("/")
    return "other"


def walk_routes(routes) -> Iterator:
    """Every route of the app, also inside included routers (kept as branches by FastAPI)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        yield from walk_routes(inner.routes) if inner is not None else [r]


def check_routes(app: FastAPI) -> None:
    """Every API route has a rule, and the admission dependency its rule's object needs."""
    for route in walk_routes(app.routes):
        if not isinstance(route, APIRoute) or not route.endpoint.__module__.startswith("sandu.api.routers."):
            continue
        if not isinstance(route, SanduRoute):
            raise RuntimeError(f"API route {route.name} does not use SanduRoute (authentication before the body)")
        rule = rule_for(route.name)
        calls = {d.call for d in route.dependant.dependencies}
        if not rule.public and ADMISSION[rule.object] not in calls:
            raise RuntimeError(f"API route {route.name} needs the admission dependency {ADMISSION[rule.object].__name__}")


def served_app() -> FastAPI:
    """The app of a `sandu serve` process (each process of several builds its own, by this name): `create_app` with
    what the process built to start frozen out of the cyclic garbage collector (`freeze_start_up`)."""
    return create_app(freeze_start_up=True)


def create_app(rt: Runtime | None = None, *, freeze_start_up: bool = False) -> FastAPI:
    """The app on `rt` (default: the runtime the settings describe). `freeze_start_up`, for a process that serves the
    app until it ends: once the app starts, everything built so far — the modules, the policy, the models, the routes,
    hundreds of thousands of objects that live as long as the process — is collected once and then frozen
    (`gc.freeze`), so the collector's full collections no longer walk them. Unfrozen, each full collection took about
    55 ms, a pause of the whole process that came every few seconds under load: measured with 2 processes on SQLite at
    200 measurements/s (`bench/http_load.py`), p99 15 to 80 ms from run to run, 15 to 28 ms frozen. Not for an app
    made in a process that goes on to make others (a test's): what was frozen stays until the process ends."""
    ensure_logging()
    runtime = rt or make_runtime()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # As many request threads as the pool has connections (see sandu.store.db).
        anyio.to_thread.current_default_thread_limiter().total_tokens = runtime.settings.worker_threads
        if freeze_start_up:
            gc.collect()
            gc.freeze()
        yield

    app = FastAPIOffline(  # /docs serves Swagger UI from sandu itself: bank intranets have no CDN
        title="sandu API",
        version="0.2.0",
        description="sandu (三度): one authorization, many sources → tech and risk scores → limits, products and prices → "
        "revolving lines on a double-entry ledger. Money is integer fen. Every error is {\"error\": {code, field, message, allowed, rule, "
        "request_id}}. Log in with POST /api/v1/auth/token and send `Authorization: Bearer <access_token>`.",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,  # operationId = the route's name in the authorization table
    )
    app.state.rt = runtime
    settings = runtime.settings
    app.state.measure_turns = Turns("measurements", settings.measure_concurrency, settings.write_queue_max, settings.write_wait_s)
    errors.install(app)
    app.add_middleware(errors.SizeLimitMiddleware, max_head_bytes=settings.max_head_bytes, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, runtime=runtime)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """The process can serve: its store answers."""
        try:
            runtime.check_store()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("not ready", error=type(exc).__name__)
            return JSONResponse({"status": "unavailable", "store": "not answering"}, status_code=503)
        return JSONResponse({"status": "ok", "store": "answering"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics (no personal data): requests, latency, decisions, ledger entries, end of day."""
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/app")

    for module in ROUTERS:  # each straight into the app: a router of routers is matched twice per request, at each level
        app.include_router(module.router, prefix=API_PREFIX)
    mount_web(app)
    check_routes(app)
    return app
