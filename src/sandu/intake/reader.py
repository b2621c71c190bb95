"""Read many sources at once, each within its own deadline and all within one.

`read_all` runs the reads on at most `MAX_WORKERS` threads of its own and waits for
them no longer than the deadlines: a source that has not answered by then becomes a
``timeout`` outcome naming the deadline it missed. It never raises for what a source
or an adapter does, so a slow or broken source leaves a gap in the profile, never a
failed application.

Threads. The callers are sync code on request threads, so the reads run on threads
too: a process-wide pool of daemon threads, reused from call to call (starting eight
threads per call costs little on average but puts milliseconds on the tail). A call
puts at most `MAX_WORKERS` of them to work, fewer for fewer sources; they take the
call's sources in order until none is left. The pool grows when no thread is idle,
up to `MAX_LIVE_THREADS`, and an idle thread ends after `IDLE_S`. A thread left
behind in a hung read is simply busy: a later call gets other threads, and being a
daemon it does not hold the process's exit. The read finishes in its adapter's own
time (HTTP reads are cut at their deadline by their timeouts) and its result is
dropped. At `MAX_LIVE_THREADS` busy threads, a call's sources are ``refused`` rather
than queued behind reads that may hang.

An adapter that says `in_memory = True` (its answer is already in memory: no I/O, nothing
that can block) is read on the calling thread instead, before the others start: handing it to
a thread would cost more than the read.

Deadlines are seconds; `clock` (default `time.monotonic`) measures them. A source's
deadline runs from the moment its read starts, capped by the overall deadline, and
the adapter is given what is left of it.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sandu.domain.errors import show
from sandu.intake.outcome import ReadOutcome, SourceAdapter, clip

MAX_WORKERS = 8
MAX_LIVE_THREADS = 512  # reader threads of all calls in the process
MAX_SOURCES = 64  # sources one call may read
GRACE_S = 0.02  # waited past a source's own deadline for an adapter that keeps to it to report

IDLE_S = 60.0  # an idle pool thread ends after this long


class _DaemonPool:
    """Daemon threads that run submitted tasks, reused; grows on demand up to a bound.

    `_idle` counts threads waiting for a task minus the tasks already promised to
    them (a promised task is put on the queue under the lock, so a waiting thread
    that finds `_idle` at 0 knows a task is there for it)."""

    def __init__(self, max_threads: int, idle_s: float):
        self.max_threads, self.idle_s = max_threads, idle_s
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    def busy(self) -> int:
        with self._lock:
            return self._threads - self._idle

    def submit(self, task: Callable[[], None]) -> bool:
        """Run `task` on a pool thread; False when every thread is busy and the pool is full."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                self._queue.put(task)
                return True
            if self._threads >= self.max_threads:
                return False
            self._threads += 1
        try:
            threading.Thread(target=self._run, args=(task,), name="sandu-intake", daemon=True).start()
        except RuntimeError:  # the interpreter cannot start another thread
            with self._lock:
                self._threads -= 1
            return False
        return True

    def _run(self, task: Callable[[], None]) -> None:
        while True:
            try:
                task()
            except BaseException:  # noqa: BLE001 - a task reports through its call; nothing may kill a pool thread
                pass
            with self._lock:
                self._idle += 1
            try:
                task = self._queue.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # more threads wait than tasks were promised: this one may go
                        self._idle -= 1
                        self._threads -= 1
                        return
                task = self._queue.get()  # a task was promised and is on the queue


_POOL = _DaemonPool(MAX_LIVE_THREADS, IDLE_S)


def busy_reader_threads() -> int:
    """Pool threads at work now (in all calls, including reads left behind)."""
    return _POOL.busy()


@dataclass
class _Call:
    """One read_all's shared state, guarded by `cond`."""

    todo: list[str]
    cond: threading.Condition = field(default_factory=threading.Condition)
    started: dict[str, float] = field(default_factory=dict)
    results: dict[str, ReadOutcome] = field(default_factory=dict)
    abandoned: bool = False


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def read_all(
    adapters: Mapping[str, SourceAdapter],
    sources: Sequence[str],
    uscc: str,
    as_of: date,
    *,
    per_source_deadline_s: float | Mapping[str, float],
    overall_deadline_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, ReadOutcome]:
    """source → its outcome, for every source in `sources` (in that order).

    `adapters` maps each source to the adapter that serves it (a source without one is
    ``refused``); `per_source_deadline_s` is one deadline for all, or one per source
    (a source not in the mapping gets the overall deadline)."""
    t0 = clock()
    if len(sources) > MAX_SOURCES or len(set(sources)) != len(sources):
        raise ValueError(f"sources must be distinct and at most {MAX_SOURCES}, got {show(list(sources))}")
    if not (math.isfinite(overall_deadline_s) and overall_deadline_s > 0):
        raise ValueError(f"overall_deadline_s must be > 0, got {overall_deadline_s!r}")
    per_source = {s: _deadline_of(per_source_deadline_s, s, overall_deadline_s) for s in sources}
    overall_end = t0 + overall_deadline_s
    outcomes: dict[str, ReadOutcome] = {}

    def declared(source: str, outcome: str, reason: str, attempts: int, since: float) -> ReadOutcome:
        return ReadOutcome(source, getattr(adapters.get(source), "name", "none"), outcome, None, clip(reason),
                           max(0.0, (clock() - since) * 1000), attempts=attempts)

    todo = []
    for s in sources:
        if s not in adapters:
            outcomes[s] = declared(s, "refused", f"no adapter serves {show(s)}", 0, t0)
        elif getattr(adapters[s], "in_memory", False) is True:  # nothing to wait for: read here, no thread hand-off
            start = clock()
            outcomes[s] = _read_one(adapters[s], s, uscc, as_of, min(per_source[s], overall_end - start), clock, start)
        else:
            todo.append(s)
    if not todo:
        return {s: outcomes[s] for s in sources}
    call = _Call(todo=list(todo))
    workers = _start_workers(call, adapters, uscc, as_of, per_source, overall_end, clock, min(MAX_WORKERS, len(todo)))
    if workers == 0 and todo:
        for s in todo:
            outcomes[s] = declared(s, "refused", f"no reader thread free ({MAX_LIVE_THREADS} busy)", 0, t0)
        return {s: outcomes[s] for s in sources}

    with call.cond:
        while True:
            now = clock()
            pending = [s for s in todo if s not in call.results]
            if not pending or now >= overall_end:
                break
            # Give up early when every pending read has begun and is past its own deadline.
            ends = [call.started[s] + per_source[s] + GRACE_S for s in pending if s in call.started]
            if len(ends) == len(pending) and now >= max(ends):
                break
            wake = min([overall_end, *(e for e in ends if e > now)])
            call.cond.wait(timeout=max(0.001, wake - now))
        call.abandoned = True  # reads that report after this are dropped; the remaining todo is not started
        call.todo.clear()
        results, started = dict(call.results), dict(call.started)

    for s in todo:
        if s in results:
            outcomes[s] = results[s]
            continue
        since = started.get(s, t0)
        own_end = since + per_source[s]
        if s in started and own_end < overall_end:
            reason = f"no answer within the source's deadline of {_ms(per_source[s])}"
        else:
            reason = f"no answer within the overall deadline of {_ms(overall_deadline_s)}"
        outcomes[s] = declared(s, "timeout", reason, 1 if s in started else 0, since)
    return {s: outcomes[s] for s in sources}


def _deadline_of(spec: float | Mapping[str, float], source: str, overall_s: float) -> float:
    value = spec.get(source, overall_s) if isinstance(spec, Mapping) else spec
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"the deadline of {source} must be > 0 seconds, got {value!r}")
    return float(value)


def _start_workers(call: _Call, adapters: Mapping[str, SourceAdapter], uscc: str, as_of: date, per_source: dict[str, float],
                   overall_end: float, clock: Callable[[], float], wanted: int) -> int:
    """Put up to `wanted` pool threads to work on `call` (fewer if the pool is full)."""
    started = 0
    for _ in range(wanted):
        if not _POOL.submit(lambda: _worker(call, adapters, uscc, as_of, per_source, overall_end, clock)):
            break
        started += 1
    return started


def _read_one(adapter: SourceAdapter, source: str, uscc: str, as_of: date, left_s: float, clock: Callable[[], float], start: float) -> ReadOutcome:
    """One adapter's read of one source with `left_s` seconds to go; what it raises is the read's error."""
    try:
        outcome = adapter.read(source, uscc, as_of, left_s)
        if not isinstance(outcome, ReadOutcome):
            raise TypeError(f"{type(adapter).__name__}.read returned {show(outcome)}, not a ReadOutcome")
    except Exception as e:  # an adapter must not raise; if one does, its read is this source's error
        outcome = ReadOutcome(source, getattr(adapter, "name", "?"), "error", None, clip(f"{type(e).__name__}: {e}"),
                              max(0.0, (clock() - start) * 1000))
    return outcome


def _worker(call: _Call, adapters: Mapping[str, SourceAdapter], uscc: str, as_of: date, per_source: dict[str, float],
            overall_end: float, clock: Callable[[], float]) -> None:
    while True:
        with call.cond:
            if call.abandoned or not call.todo:
                return
            source = call.todo.pop(0)
            start = clock()
            call.started[source] = start
        outcome = _read_one(adapters[source], source, uscc, as_of, min(per_source[source], overall_end - start), clock, start)
        with call.cond:
            if call.abandoned:
                return
            call.results[source] = outcome
            call.cond.notify_all()
