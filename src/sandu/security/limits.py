"""Rate limits per identity (a user, or a client address for sign-up): a sliding window
of one minute or one hour, kept in this process and bounded in size. A request over
its limit gets 429 with the seconds to wait (Retry-After) and changes nothing.

Per process: with several API processes each enforces its own share; the limits are
abuse brakes, not quotas, and the bound on remembered identities keeps memory flat."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from sandu.domain.errors import TooManyRequests

MAX_IDENTITIES = 100_000  # the least recently seen are forgotten first


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_s: float


class RateLimiter:
    def __init__(self, max_identities: int = MAX_IDENTITIES):
        self._lock = threading.Lock()
        self._hits: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self.max_identities = max_identities

    def hit(self, limit: Limit, identity: str, now_s: float) -> None:
        """Count one request of `identity` under `limit` at `now_s` (monotonic seconds), or refuse it."""
        key = (limit.name, identity)
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
                while len(self._hits) > self.max_identities:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= now_s - limit.window_s:
                hits.popleft()
            if len(hits) >= limit.count:
                wait = int(hits[0] + limit.window_s - now_s) + 1
                raise TooManyRequests(f"more than {limit.count} {limit.name} requests in {limit.window_s:g} s; retry in {wait} s", wait)
            hits.append(now_s)
