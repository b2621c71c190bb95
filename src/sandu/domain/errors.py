"""Errors users see. Each names the field, the reason and what is allowed.

Interfaces map them to HTTP 4xx / CLI exit codes; nothing else should be raised
to a user. A service raises one of these *before* it changes anything, or inside
a transaction that is then rolled back.
"""

from __future__ import annotations

MAX_SHOWN_CHARS = 50  # an error never echoes more of a rejected value than this


def show(value: object) -> str:
    """A short ``repr`` of a rejected value for an error message: bad input may be
    a megabyte long, and what a user sent is never echoed back in full."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def shorten(text: str) -> str:
    """`text` cut to `MAX_SHOWN_CHARS` characters (for keys quoted without repr)."""
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


class SanduError(Exception):
    """Base of every error a user may see. `code` is stable and machine-readable."""

    code = "error"
    http_status = 400
    retry_after_s: int | None = None  # when set, the request may be repeated after this many seconds

    def __init__(self, message: str, *, field: str | None = None, allowed: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.allowed = allowed

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "field": self.field, "message": self.message, "allowed": self.allowed, "rule": getattr(self, "rule", None)}


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
        super().__init__(f"{entity} {shorten(str(key))} does not exist", field=field or entity)
        self.entity = entity
        self.key = key


class Conflict(FieldError):
    """The request is well-formed but the current state forbids it (e.g. overdraw)."""

    code = "conflict"
    http_status = 409


class NotPermitted(FieldError):
    """The request is well-formed but this person may not do it (e.g. sign for an enterprise
    whose legal representative they are not). `rule` names the rule that refused it."""

    code = "not_permitted"
    http_status = 403

    def __init__(self, field: str | None, reason: str, allowed: str | None = None, *, rule: str | None = None):
        super().__init__(field or "", reason, allowed)
        self.field = field
        self.rule = rule
        if field is None:
            self.message = reason + (f" (allowed: {allowed})" if allowed else "")
        if rule:
            self.message = f"{self.message} [rule {rule}]"
        self.args = (self.message,)


class NotAuthenticated(SanduError):
    """No acceptable identity: no token, a bad or expired one, a disabled user, wrong password."""

    code = "not_authenticated"
    http_status = 401


class ReauthenticationRequired(NotAuthenticated):
    """The act needs a password given recently (signing, drawing): log in again."""

    code = "reauthentication_required"


class TooManyRequests(SanduError):
    code = "too_many_requests"
    http_status = 429

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class ConsentDenied(FieldError):
    """No live consent covers the data source that was asked for, or the signer may not sign."""

    code = "consent_denied"
    http_status = 403


class PolicyOutdated(FieldError):
    """The policy in force cannot decide on this date (its LPR table is not known to be current
    then); nothing was decided or stored. The bank updates the policy bundle, then asks again."""

    code = "policy_outdated"
    http_status = 503


class Busy(SanduError):
    """The store is too busy to take the write now; nothing was written. Retry in a moment."""

    code = "busy"
    http_status = 503
    retry_after_s = 1
