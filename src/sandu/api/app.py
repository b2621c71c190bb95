"""The HTTP application: the API under /api/v1, the web pages, health.

Thin: routers (one per resource, in `sandu.api.routers`) parse, call one
action of a service, and return its view. Every action commits before it
returns, so a 2xx is only ever sent for a committed write. Handlers are plain
`def` functions: FastAPI runs them on its worker threads, whose number
(`SANDU_WORKER_THREADS`) the connection pool matches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline

from sandu.api import errors
from sandu.api.routers import consents, decisions, enterprises, lines, operations
from sandu.runtime import Runtime, make_runtime
from sandu.web.pages import mount_web

API_PREFIX = "/api/v1"


def create_app(rt: Runtime | None = None) -> FastAPI:
    runtime = rt or make_runtime()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # As many request threads as the pool has connections (see sandu.store.db).
        anyio.to_thread.current_default_thread_limiter().total_tokens = runtime.settings.worker_threads
        yield

    app = FastAPIOffline(  # /docs serves Swagger UI from sandu itself: bank intranets have no CDN
        title="sandu API",
        version="0.1.0",
        description="sandu (三度): one authorization, many sources → tech and risk scores → limits, products and prices → "
        "revolving lines on a double-entry ledger. Money is integer fen. Every error is {\"error\": {code, field, message, allowed}}.",
        lifespan=lifespan,
    )
    app.state.rt = runtime
    errors.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/app")

    api = APIRouter(prefix=API_PREFIX)
    for module in (enterprises, consents, decisions, lines, operations):
        api.include_router(module.router)
    app.include_router(api)
    mount_web(app)
    return app
