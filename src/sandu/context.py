"""The request a piece of work belongs to: its id, for logs, error answers and the audit trail."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("sandu_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):  # -> Token
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)
