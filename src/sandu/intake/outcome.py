"""What one read of one source came to, and the interface every adapter keeps.

An adapter answers `read(source, uscc, as_of, timeout_s)` with a `ReadOutcome` and
never raises for anything the source did: a hung server, a garbage body, a broken
file are outcomes with a reason, not exceptions. `timeout_s` is the time the
adapter has left, in seconds, counted from the moment `read` is called (not an
absolute clock value: the caller's clock need not be the adapter's). The adapter
keeps to it as well as its transport allows; `read_all` stops waiting at the
deadline whatever the adapter does.

Outcomes:

* ``found``        — the source answered with a JSON object (`payload`, hashed);
* ``no_record``    — the source knows nothing of the enterprise;
* ``timeout``      — no answer within the deadline;
* ``error``        — the source failed (5xx, connection refused, unreadable file…);
* ``invalid``      — the source answered, but not with a JSON object;
* ``circuit_open`` — the source failed too often lately; it was not asked;
* ``refused``      — the read was not made or was refused: unknown source, malformed
  USCC, no adapter configured, the source said 401/403, no reader thread free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, runtime_checkable

from sandu.sources.profile import canonical_sha256

OUTCOMES = ("found", "no_record", "timeout", "error", "invalid", "circuit_open", "refused")
MAX_REASON_CHARS = 300  # a reason quotes what a source sent; never more than this


def clip(text: str) -> str:
    """`text` cut to `MAX_REASON_CHARS` characters."""
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


@dataclass(frozen=True)
class ReadOutcome:
    source: str
    adapter: str
    outcome: str
    payload: dict[str, Any] | None = None
    reason: str = ""
    duration_ms: float = 0.0
    payload_sha256: str | None = None
    attempts: int = 1

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        if (self.payload is not None) != (self.outcome == "found") or (self.payload is not None and not isinstance(self.payload, dict)):
            raise ValueError(f"a payload (a dict) comes with outcome 'found' and only with it; outcome {self.outcome!r}")
        if (self.reason == "") != (self.outcome in ("found", "no_record")):
            raise ValueError(f"outcome {self.outcome!r} {'needs' if self.reason == '' else 'takes no'} reason")
        if not (math.isfinite(self.duration_ms) and self.duration_ms >= 0) or self.attempts < 0:
            raise ValueError(f"duration_ms must be finite and >= 0 and attempts >= 0, got {self.duration_ms!r}, {self.attempts!r}")
        if self.payload_sha256 is None and self.payload is not None:
            object.__setattr__(self, "payload_sha256", canonical_sha256(self.payload))
        if self.payload is None and self.payload_sha256 is not None:
            raise ValueError("payload_sha256 without a payload")

    @property
    def ok(self) -> bool:
        """The source answered (found or no record): its word can go into a profile."""
        return self.outcome in ("found", "no_record")


@runtime_checkable
class SourceAdapter(Protocol):
    """Reads one source about one enterprise. Implementations must be thread-safe:
    `read_all` calls one adapter for several sources at once."""

    name: str

    def read(self, source: str, uscc: str, as_of: date, timeout_s: float) -> ReadOutcome:
        """Read `source` about `uscc` as of `as_of`, within `timeout_s` seconds from now.
        Never raises for what the source does."""
        ...


def payloads_for_profile(outcomes: dict[str, ReadOutcome]) -> dict[str, dict[str, Any] | None]:
    """What `sandu.sources.profile.build_profile` takes: found → the payload, no record → None.
    A source that did not answer (timeout, error, invalid, circuit open, refused) is left
    out, so the profile flags it ``{source}:not_read``; `gaps` says why."""
    return {s: o.payload for s, o in outcomes.items() if o.ok}


def gaps(outcomes: dict[str, ReadOutcome]) -> dict[str, str]:
    """source → "outcome: reason" for every source that did not answer."""
    return {s: f"{o.outcome}: {o.reason}" for s, o in outcomes.items() if not o.ok}
