"""A source behind HTTP: ``GET {base_url}/{source}/{uscc}?as_of=YYYY-MM-DD``.

* 200 with a JSON object → ``found``; 404 → ``no_record``;
* 200 with anything else (not JSON, not UTF-8, NaN, a duplicate key, an array, a body
  over `MAX_BODY_BYTES`) → ``invalid``;
* 401, 403 → ``refused``; 408, 429, 5xx, a connection failure → ``error`` (retried);
  any other status → ``error`` (not retried);
* no answer within the time left → ``timeout``.

Retries. A read is idempotent, so a transient failure (408, 429, 5xx, a connection
or protocol error, a timeout of one attempt) is tried again, at most `retries` more
times, after an exponential back-off with jitter: ``backoff_s · 2**k`` times a factor
drawn from [0.5, 1). A retry starts only if, after its back-off, at least
`MIN_ATTEMPT_S` would be left before the deadline: the read never runs past it. Each
attempt's connect and read timeouts are cut to the time left, and the body is read in
chunks with the deadline checked between them (a server that trickles bytes is cut
off too).

Circuit breaker, one per source: closed → open after `breaker_failures` reads in a
row failed (timeout, error, invalid; a read is one failure however many attempts it
made) → half-open after `breaker_cooldown_s`, when one read (and only one at a time)
goes through → closed when it succeeds (found or no record), open again for another
cool-down when it fails. While open, a read answers ``circuit_open`` at once, without
a request. ``refused`` counts neither way. The breaker's clock is injectable.

Headers (a gateway's credential): `headers` go with every read, `source_headers[source]`
with that source's reads, over them.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx

from sandu.domain.errors import show
from sandu.domain.ids import is_valid_uscc
from sandu.intake.outcome import ReadOutcome, clip
from sandu.sources.catalog import ALL_SOURCES

MAX_BODY_BYTES = 1024 * 1024  # a source's answer about one enterprise is a few kB
MAX_RETRIES = 5
MIN_ATTEMPT_S = 0.01  # an attempt is not started with less time than this left
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REFUSED_STATUSES = frozenset({401, 403})
BREAKER_FAILURES = ("timeout", "error", "invalid")


class CircuitBreaker:
    """closed → open → half-open → closed, for one source; thread-safe."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        if failures < 1 or not (math.isfinite(cooldown_s) and cooldown_s > 0):
            raise ValueError(f"a breaker needs failures >= 1 and a cool-down > 0 s, got {failures!r}, {cooldown_s!r}")
        self.failures, self.cooldown_s, self._clock = failures, cooldown_s, clock
        self._lock = threading.Lock()
        self._state = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> str:
        """closed, open or half_open (open turns half-open by itself when the cool-down is over)."""
        with self._lock:
            if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
                return "half_open"
            return self._state

    def allow(self) -> bool:
        """May a read go out now? In half-open, only one read at a time is let through."""
        with self._lock:
            if self._state == "open":
                if self._clock() - self._opened_at < self.cooldown_s:
                    return False
                self._state = "half_open"
            if self._state == "half_open":
                if self._trial_running:
                    return False
                self._trial_running = True
            return True

    def record(self, success: bool) -> None:
        with self._lock:
            self._trial_running = False
            if success:
                self._state, self._consecutive = "closed", 0
                return
            self._consecutive += 1
            if self._state == "half_open" or self._consecutive >= self.failures:
                self._state, self._opened_at = "open", self._clock()

    def release(self) -> None:
        """A read that was let through ended neither in success nor in failure (refused)."""
        with self._lock:
            self._trial_running = False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of the range of a number")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {show(k)}")
        out[k] = v
    return out


def parse_body(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the JSON object, "") or (None, why not). Never raises."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float,
                           object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as e:
        return None, f"the body is not UTF-8 ({e.reason} at byte {e.start})"
    except RecursionError:
        return None, "the body nests too deeply"
    except ValueError as e:  # json.JSONDecodeError is a ValueError; so are NaN and duplicate keys
        return None, f"the body is not JSON: {e}"
    if not isinstance(value, dict):
        return None, f"the body is JSON but not an object: {show(value)}"
    return value, ""


class HttpAdapter:
    name = "http"

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.05,
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 30.0,
        breaker_clock: Callable[[], float] = time.monotonic,
        headers: dict[str, str] | None = None,
        source_headers: dict[str, dict[str, str]] | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_connections: int = 64,
    ):
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {show(base_url)}")
        if not 0 <= retries <= MAX_RETRIES:
            raise ValueError(f"retries must be within 0..{MAX_RETRIES}, got {retries!r}")
        for what, v in (("connect_timeout_s", connect_timeout_s), ("read_timeout_s", read_timeout_s), ("backoff_s", backoff_s)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{what} must be > 0, got {v!r}")
        self.base_url = str(url).rstrip("/")
        self.connect_timeout_s, self.read_timeout_s = connect_timeout_s, read_timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self._breaker_args = (breaker_failures, breaker_cooldown_s, breaker_clock)
        CircuitBreaker(*self._breaker_args)  # the arguments are checked now, not at the first read
        self._breakers: dict[str, CircuitBreaker] = {}
        self._breakers_lock = threading.Lock()
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep = sleep
        self._source_headers = dict(source_headers or {})  # source → headers sent with its reads, over `headers`
        self._client = httpx.Client(
            headers=headers, transport=transport, follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def close(self) -> None:
        self._client.close()

    def breaker(self, source: str) -> CircuitBreaker:
        with self._breakers_lock:
            if source not in self._breakers:
                self._breakers[source] = CircuitBreaker(*self._breaker_args)
            return self._breakers[source]

    def read(self, source: str, uscc: str, as_of: date, timeout_s: float) -> ReadOutcome:
        t0 = time.monotonic()
        deadline = t0 + max(0.0, timeout_s)

        def done(outcome: str, payload: dict[str, Any] | None = None, reason: str = "", attempts: int = 0) -> ReadOutcome:
            return ReadOutcome(source, self.name, outcome, payload, clip(reason), (time.monotonic() - t0) * 1000, attempts=attempts)

        if source not in ALL_SOURCES:
            return done("refused", reason=f"{show(source)} is not a data source")
        if not is_valid_uscc(uscc):  # also keeps the path segment to the USCC alphabet
            return done("refused", reason=f"{show(uscc)} is not a valid USCC")
        breaker = self.breaker(source)
        if not breaker.allow():
            return done("circuit_open", reason=f"{source} failed {breaker.failures} times in a row; retrying after {breaker.cooldown_s:g} s")
        attempts = 0
        outcome, payload, reason, retry = "timeout", None, "no time left before the first attempt", False
        try:
            while True:
                if deadline - time.monotonic() < MIN_ATTEMPT_S:
                    break
                attempts += 1
                outcome, payload, reason, retry = self._attempt(source, uscc, as_of, deadline)
                if not retry or attempts > self.retries:
                    break
                with self._rng_lock:
                    pause = self.backoff_s * 2 ** (attempts - 1) * (0.5 + self._rng.random() / 2)
                if deadline - time.monotonic() - pause < MIN_ATTEMPT_S:
                    reason += f"; no time left for retry {attempts} of {self.retries}"
                    break
                self._sleep(pause)
        finally:
            if outcome == "refused" or attempts == 0:  # refused, or given no time: not the source's doing
                breaker.release()
            else:
                breaker.record(outcome in ("found", "no_record"))
        if attempts > 1 and outcome not in ("found", "no_record"):
            reason = f"{reason} (after {attempts} attempts)"
        return done(outcome, payload, reason, attempts)

    def _attempt(self, source: str, uscc: str, as_of: date, deadline: float) -> tuple[str, dict[str, Any] | None, str, bool]:
        """One GET: (outcome, payload, reason, worth retrying)."""
        left = deadline - time.monotonic()
        timeout = httpx.Timeout(connect=min(self.connect_timeout_s, left), read=min(self.read_timeout_s, left), write=left, pool=left)
        url = f"{self.base_url}/{source}/{uscc}"
        try:
            with self._client.stream("GET", url, params={"as_of": as_of.isoformat()}, headers=self._source_headers.get(source),
                                     timeout=timeout) as r:
                status = r.status_code
                if status == 404:
                    return "no_record", None, "", False
                if status in REFUSED_STATUSES:
                    return "refused", None, f"the source answered HTTP {status}", False
                if status != 200:
                    return "error", None, f"the source answered HTTP {status}", status in RETRY_STATUSES
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        return "invalid", None, f"the body is longer than {MAX_BODY_BYTES} bytes", False
                    if time.monotonic() > deadline:
                        return "timeout", None, "the body was still arriving at the deadline", False
        except httpx.TimeoutException as e:
            return "timeout", None, f"{type(e).__name__}: no answer in time", True
        except httpx.TransportError as e:  # connection refused or reset, protocol errors
            return "error", None, f"{type(e).__name__}: {e}", True
        except httpx.HTTPError as e:  # anything else httpx raises (an invalid URL, a decoding error)
            return "error", None, f"{type(e).__name__}: {e}", False
        payload, why = parse_body(bytes(body))
        if payload is None:
            return "invalid", None, why, False
        return "found", payload, "", False
