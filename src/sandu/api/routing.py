"""The route class of every API router: who is asking is settled before anything is read,
and JSON bodies are read exactly.

Before the body is read or validated, the bearer token is authenticated and the role
checked against the authorization table (`sandu.security.authz`): without a valid token
every non-public route answers 401, a role the table does not allow answers 403. The
actor is kept on the request for the route's admission dependency (object, freshness,
rate limit; see `sandu.api.deps`).

Blocking work (a route's action, the authentication and admission reads) runs on a request thread, or, when every
wait in it is local and short, here on the event loop (`runs_on_loop`).

A number with a fraction or an exponent is parsed as a `Decimal`, never a binary
float, so `2.0` can be accepted as the whole number 2 while `0.1` stays 0.1 and
`1e400` does not become infinity; `NaN` and `Infinity`, which JSON does not have,
are refused as malformed JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, nullcontext
from decimal import Decimal
from typing import Any, TypeVar

import anyio
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from sandu.context import waiting_until
from sandu.domain.errors import Busy
from sandu.runtime import Runtime
from sandu.security import actions as security

BEARER = "bearer "
T = TypeVar("T")
ON_LOOP_WAIT_S = 1.0  # the longest blocking work on the event loop waits for the store's writer: the process answers nothing meanwhile


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal, parse_constant=_no_constants)
        return self._json


class Turns:
    """At most `slots` actions of one kind at once in this process; the others wait in line on the event loop (holding
    no thread), first come first served. The line is bounded: a caller that finds `max_waiting` already in it, or waits
    `wait_s`, gets `Busy` (503, retry later) and nothing is done.

    Why: a measurement is CPU work in Python, and a process runs one thread of Python at a time. Forty request threads
    measuring at once only take turns on that one core, each stretching the others, and every wait in the database
    (a round trip, a row lock, the audit chain's head) is then held that much longer — on PostgreSQL, two server
    processes measured 34/s with 4 at once against 24/s with 40, p99 1.6–2.2 s against 5.6 s (bench/http_load.py)."""

    def __init__(self, what: str, slots: int, max_waiting: int, wait_s: float):
        self.what, self.slots, self.max_waiting, self.wait_s = what, slots, max_waiting, wait_s
        self.waiting = 0
        self._free: anyio.Semaphore | None = None  # made on the event loop, at the first turn

    @property
    def in_use(self) -> int:
        return 0 if self._free is None else self.slots - self._free.value

    def _busy(self, why: str) -> Busy:
        return Busy(f"too many {self.what} at once ({why}); nothing was done, retry in a moment", field=None, allowed=None)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[float]:
        """Wait for a turn; yields the deadline (`time.monotonic()`) by which the holder's other waits must end: `wait_s`
        after it came, the one bound of all its waits (`sandu.context.waiting_until`)."""
        deadline = time.monotonic() + self.wait_s
        if self._free is None:
            self._free = anyio.Semaphore(self.slots)
        if self._free.value == 0 and self.waiting >= self.max_waiting:
            raise self._busy(f"{self.waiting} waiting")
        self.waiting += 1
        try:
            with anyio.fail_after(self.wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise self._busy(f"waited {self.wait_s:g} s for a turn") from None
        finally:
            self.waiting -= 1
        try:
            yield deadline
        finally:
            self._free.release()


def runs_on_loop(rt: Runtime, *, reads_sources: bool = False) -> bool:
    """Whether a request's blocking work runs on the event loop itself rather than on a request thread: when the store
    is a local file (SQLite) and, for work that reads the sources, every source is served from the store — every wait
    in it is then another process's write transaction of a few milliseconds, bounded by `ON_LOOP_WAIT_S`. Over a network
    (PostgreSQL, an HTTP source) a wait is a round trip or a row lock held by another server, and stays on a thread.

    Why: a process runs one thread of Python at a time. Forty request threads (and the event loop) take turns on it at
    every hand-off and at every SQLite call, which lets go of the interpreter, each turn refilling the caches; on SQLite,
    one process, 50 clients, a measurement cost 6.2 ms of server CPU on request threads against 3.9 ms on the loop
    (bench/http_load.py; 4.7 ms with only the authentication and admission on the loop)."""
    return rt.store_is_local and (not reads_sources or rt.sources_are_local)


async def run_action(action: Callable[..., T], *args: Any, on_loop: bool = False, turns: Turns | None = None, **kwargs: Any) -> T:
    """Run a blocking action (a unit of work) from an `async def` route — in one of `turns` when given — on a request
    thread, or here on the event loop when `on_loop` (`runs_on_loop`), its waits then bounded by `ON_LOOP_WAIT_S`. A
    plain `def` route is run on a request thread by FastAPI too, but its answer is then checked against the response
    model in a second trip to a worker thread; an `async def` route whose action answers the view model has it checked
    and serialized on the event loop (no blocking there: the view is built). For the busiest routes (measure, draw)."""
    async with turns.turn() if turns is not None else nullcontext(None) as deadline:
        if on_loop:
            bound = time.monotonic() + ON_LOOP_WAIT_S
            with waiting_until(bound if deadline is None else min(deadline, bound)):
                return action(*args, **kwargs)
        with waiting_until(deadline) if deadline is not None else nullcontext():  # the writers' line gets what is left of the turn's bound
            return await run_in_threadpool(action, *args, **kwargs)


async def blocking(rt: Runtime, call: Callable[..., T], *args: Any) -> T:
    """A short blocking read of every request (authentication, admission): on the loop or a request thread, by
    `runs_on_loop`."""
    if runs_on_loop(rt):
        return call(*args)
    return await run_in_threadpool(call, *args)


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
            request.state.actor = await blocking(rt, security.authenticate, rt, route_name, bearer_token(request))
            return await handler(request)

        return guarded_handler
