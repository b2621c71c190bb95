"""The simulated universe as a source: a lookup the service layer supplies.

`lookup(uscc, source)` returns the payload the store holds (the `SourceRecord` rows
of the simulated universe) or None; the adapter does not import the store. It runs
the lookup on the calling thread: a lookup that blocks is bounded by `read_all`'s
deadline, not by the adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sandu.domain.errors import show
from sandu.domain.ids import is_valid_uscc
from sandu.intake.outcome import ReadOutcome, clip
from sandu.sources.catalog import ALL_SOURCES

Lookup = Callable[[str, str], Any]


class SimulatedAdapter:
    name = "simulated"

    def __init__(self, lookup: Lookup, *, in_memory: bool = False):
        """`in_memory`: the lookup only reads memory (no I/O, never blocks), so `read_all` reads it on the caller's thread."""
        if not callable(lookup):
            raise TypeError(f"lookup must be a callable (uscc, source) -> dict | None, got {show(lookup)}")
        self._lookup = lookup
        self.in_memory = in_memory

    def read(self, source: str, uscc: str, as_of: date, timeout_s: float) -> ReadOutcome:
        t0 = time.perf_counter()

        def done(outcome: str, payload: dict[str, Any] | None = None, reason: str = "", attempts: int = 1) -> ReadOutcome:
            return ReadOutcome(source, self.name, outcome, payload, clip(reason), (time.perf_counter() - t0) * 1000, attempts=attempts)

        if source not in ALL_SOURCES:
            return done("refused", reason=f"{show(source)} is not a data source", attempts=0)
        if not is_valid_uscc(uscc):
            return done("refused", reason=f"{show(uscc)} is not a valid USCC", attempts=0)
        if timeout_s <= 0:
            return done("timeout", reason="no time left before the read began", attempts=0)
        try:
            payload = self._lookup(uscc, source)
        except Exception as e:  # the lookup is the service's code; whatever it raises is this read's error
            return done("error", reason=f"lookup failed: {type(e).__name__}: {e}")
        if payload is None:
            return done("no_record")
        if not isinstance(payload, dict):
            return done("invalid", reason=f"the record is not a JSON object: {show(payload)}")
        return done("found", payload)
