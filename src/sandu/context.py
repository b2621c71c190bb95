"""The request a piece of work belongs to: its id, for logs, error answers and the audit trail; and how long it may
still wait in sandu's lines.

A request may wait in more than one line — a measurement first for its turn (`sandu.api.routing.Turns`), then, after
reading its sources, for the store's writer (`sandu.store.db.WriterQueue`). `waiting_until` gives the work one
deadline for all of them: the turn's bound, counted from when the turn was asked for, instead of one bound each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("sandu_request_id", default=None)
_wait_deadline: ContextVar[float | None] = ContextVar("sandu_wait_deadline", default=None)  # time.monotonic()


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):  # -> Token
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


@contextmanager
def waiting_until(deadline: float) -> Iterator[None]:
    """Within the block, no line is waited in past `deadline` (`time.monotonic()`); an earlier deadline already set
    stays. The context is copied into worker threads (`anyio.to_thread`), so the deadline follows the work there."""
    current = _wait_deadline.get()
    token = _wait_deadline.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        _wait_deadline.reset(token)


def wait_budget_s(own_bound_s: float) -> float:
    """How long a line may be waited in now: its own bound, or less when the work's deadline comes sooner (0 when it
    has passed)."""
    deadline = _wait_deadline.get()
    if deadline is None:
        return own_bound_s
    return max(0.0, min(own_bound_s, deadline - time.monotonic()))
