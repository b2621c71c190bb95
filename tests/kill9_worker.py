"""The process tests/test_kill9.py kills with SIGKILL: draws and repayments on a line, or end of day.

Started as `python kill9_worker.py` it is a fork server: it imports sandu once, then reads one job (JSON) a line on
stdin and forks a child for each. The child connects to the store, prints ``ready <pid>`` and works until it is done
or killed; the server reaps it and prints ``exit <pid> <code>`` (``-9`` for SIGKILL). Forking keeps every kill's
restart at a few milliseconds instead of the ~1 s Python takes to import sandu, so that 50+ kills per backend fit in
the test's time. `python kill9_worker.py '<job json>'` runs one job in this process (for a manual run).

Jobs:
- ``{"job": "postings", "url", "log", "line_id", "seed", "start", "now", "ops_per_day", "deadline_s", "max_ops"?}``: draws and
  repayments with idempotency keys. Each operation is logged (append, flush, fsync) as ``begin`` with its full request
  before it starts, and as ``ack`` only after its commit has returned (``refused`` after a refusal rolled back). On
  start the worker reads the log: an operation begun and never answered (the kill came in between) is retried first
  with the same key and request — replayed if it had committed, else written now. It stops after `deadline_s`, or
  once `max_ops` operations were begun (in all runs together).
- ``{"job": "eod", "url", "target", "now", "batch_lines"}``: `actions.end_of_day` through `target` at the fixed
  moment `now` (a UTC ISO time); exits 3 when another run's lease refuses it.

The environment needs SANDU_SECRET_KEY (the audit trail and the store's keys).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from datetime import date, datetime, timedelta

from sandu.domain.errors import Conflict, SanduError
from sandu.domain.money import FEN_PER_WAN
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.security.actor import Actor
from sandu.servicing import actions
from sandu.servicing import service as svc
from sandu.servicing.close import class_rules
from sandu.settings import Settings
from sandu.store.db import make_engine

EXIT_REFUSED = 3  # end of day refused: another run holds the lease
BUNDLE = load_bundle()
MODEL = load_model()
MAX_DRAW_FEN = 50 * FEN_PER_WAN


def runtime(url: str, now: datetime, batch_lines: int = 1000) -> Runtime:
    settings = Settings(database_url=url, secret_key=os.environ["SANDU_SECRET_KEY"], eod_batch_lines=batch_lines)
    return Runtime(engine=make_engine(url, settings), bundle=BUNDLE, model=MODEL, settings=settings, clock=lambda: now)


def ready(rt: Runtime) -> None:
    with rt.engine.connect():  # connected (and, on SQLite, the PRAGMAs set) before the parent starts its clock
        pass
    sys.stdout.write(f"ready {os.getpid()}\n")
    sys.stdout.flush()


# --- postings ------------------------------------------------------------------------------------


def read_log(path: str) -> tuple[list[dict], set[str], set[str]]:
    """The operations begun (in order), the keys acknowledged and the keys refused; a torn last line is ignored."""
    begun, acked, refused = [], set(), set()
    if not os.path.exists(path):
        return begun, acked, refused
    with open(path, encoding="utf-8") as f:
        for raw in f:
            if not raw.endswith("\n"):
                break
            kind, *rest = raw.rstrip("\n").split("\t")
            if kind == "begin":
                n, key, op, amount, on = rest
                begun.append({"n": int(n), "key": key, "op": op, "amount": int(amount), "on": date.fromisoformat(on)})
            elif kind == "ack":
                acked.add(rest[0])
            elif kind == "refused":
                refused.add(rest[0])
    return begun, acked, refused


class Log:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, *fields: object) -> None:
        os.write(self.fd, ("\t".join(str(f) for f in fields) + "\n").encode())
        os.fsync(self.fd)


def _next_op(rt: Runtime, job: dict, n: int) -> dict:
    rng = random.Random(f"{job['seed']}:{n}")
    day = date.fromisoformat(job["start"]) + timedelta(days=n // job["ops_per_day"])
    with rt.uow.read() as s:
        line = svc.get_line(s, job["line_id"])
        drawn, limit = line.drawn_principal_fen, line.limit_fen
    if drawn == 0 or (drawn < limit and rng.random() < 0.5):
        op, amount = "draw", rng.randint(1, min(limit - drawn, MAX_DRAW_FEN))
    else:
        op, amount = "repay", rng.randint(1, drawn)  # a 随借随还 line's principal is repayable any day: never above what is owed
    return {"n": n, "key": f"k9-{job['seed']}-{n}", "op": op, "amount": amount, "on": day}


def postings(job: dict) -> None:
    now = datetime.fromisoformat(job["now"])
    rt = runtime(job["url"], now)
    rules = class_rules(rt.bundle.classification)
    begun, acked, refused = read_log(job["log"])
    pending = begun[-1] if begun and begun[-1]["key"] not in acked | refused else None
    log = Log(job["log"])
    ready(rt)
    n = len(begun)
    deadline = time.monotonic() + job.get("deadline_s", 60)
    while time.monotonic() < deadline:
        if pending is not None:
            op, pending = pending, None  # the same key and request as before the kill
        elif n >= job.get("max_ops", n + 1):
            return
        else:
            op = _next_op(rt, job, n)
            log.write("begin", n, op["key"], op["op"], op["amount"], op["on"].isoformat())
            n += 1
        call = svc.draw if op["op"] == "draw" else svc.repay
        try:
            with rt.uow.write() as s:
                r = call(s, line_id=job["line_id"], amount_fen=op["amount"], on_date=op["on"], idempotency_key=op["key"], now=now, rules=rules)
        except SanduError as exc:
            log.write("refused", op["key"], exc.field)
        else:
            log.write("ack", op["key"], int(r.replayed))


# --- end of day ----------------------------------------------------------------------------------


def eod(job: dict) -> None:
    rt = runtime(job["url"], datetime.fromisoformat(job["now"]), job["batch_lines"])
    ready(rt)
    try:
        actions.end_of_day(rt, Actor.system("eod"), date.fromisoformat(job["target"]))
    except Conflict as exc:
        sys.stderr.write(f"eod refused: {exc}\n")
        sys.stderr.flush()
        os._exit(EXIT_REFUSED)


JOBS = {"postings": postings, "eod": eod}


def run_child(job: dict) -> None:
    """In the forked child: do the job and leave without running the server's exit handlers."""
    code = 0
    try:
        JOBS[job["job"]](job)
    except SystemExit as exc:
        code = int(exc.code or 0)
    except BaseException:  # noqa: BLE001 - reported to the parent by the exit code and stderr
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    for raw in sys.stdin:
        if not raw.strip():
            continue
        job = json.loads(raw)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_child(job)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f"exit {pid} {os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        JOBS[json.loads(sys.argv[1])["job"]](json.loads(sys.argv[1]))
    else:
        serve()
