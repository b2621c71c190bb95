"""Errors users see. Each names the field, the reason and what is allowed.

Interfaces map them to HTTP 4xx / CLI exit codes; nothing else should be raised
to a user. A service raises one of these *before* it changes anything, or inside
a transaction that is then rolled back.
"""

from __future__ import annotations


class SanduError(Exception):
    """Base of every error a user may see. `code` is stable and machine-readable."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, allowed: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.allowed = allowed

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "field": self.field, "message": self.message, "allowed": self.allowed}


class FieldError(SanduError):
    """An error about one field: `field: reason (allowed: …)`."""

    def __init__(self, field: str, reason: str, allowed: str | None = None):
        message = f"{field}: {reason}" + (f" (allowed: {allowed})" if allowed else "")
        super().__init__(message, field=field, allowed=allowed)
        self.reason = reason


class InvalidInput(FieldError):
    """A value is malformed or out of range."""

    code = "invalid_input"
    http_status = 422


class NotFound(SanduError):
    code = "not_found"
    http_status = 404

    def __init__(self, entity: str, key: object, field: str | None = None):
        super().__init__(f"{entity} {key!s} does not exist", field=field or entity)
        self.entity = entity
        self.key = key


class Conflict(FieldError):
    """The request is well-formed but the current state forbids it (e.g. overdraw)."""

    code = "conflict"
    http_status = 409


class ConsentDenied(FieldError):
    """No live consent covers the data source that was asked for, or the signer may not sign."""

    code = "consent_denied"
    http_status = 403
