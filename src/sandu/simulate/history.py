"""What a simulated enterprise does on a business day: the behaviour model of `sandu simulate --history`.

Pure: no store, no clock. Every choice is a function of (seed, day, the enterprise's USCC, what is being decided)
through a keyed hash, so the same store, seed and first day give the same history whatever order the enterprises are
visited in (the default days are drawn from the run's first day: a run resumed later draws its own). The hidden `latent_risk` of the universe
(standard normal, higher = riskier) and its `default_12m` flag drive what the enterprise does:

- it applies now and then (and again some time after a decline, or after closing a line);
- once a line is open it draws part of what is available, now and then, while nothing is in arrears and the line
  has more than a month to run;
- what falls due (the interest settled on the 20th, principal at maturity, arrears) it pays on time — or, the riskier
  it is, late (some days after) or in part;
- it repays principal now and then (sometimes all of it), and all of it in the last month of the line; a line with nothing owed and nothing
  accruing is closed in its last month, or now and then once it has been used;
- an enterprise flagged `default_12m` stops paying altogether on its default day, drawn within the year after the
  history starts: its line goes overdue and down the five categories through end of day.

Amounts are integer fen: draws in whole thousands of yuan, part-repayments rounded down to the yuan.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

MAX_MONTHS = 24  # the longest history one run simulates
DRAW_STEP_FEN = 100_000  # draws in whole thousands of yuan
MIN_DRAW_FEN = 10 * DRAW_STEP_FEN  # nobody draws less than 1万
YUAN_FEN = 100
DEFAULT_WITHIN_DAYS = 365  # `default_12m`: the default falls within a year of the history's start
REAPPLY_AFTER_DAYS = 90  # after a decline (or a decision not signed), an enterprise waits this long to apply again
LAST_MONTH_DAYS = 30  # in the last month of a line: no new drawing, everything repaid, the line closed


class Act(str, Enum):
    APPLY = "apply"
    DRAW = "draw"
    REPAY = "repay"
    CLOSE = "close"


@dataclass(frozen=True)
class Traits:
    """What the universe fixed about an enterprise (the hidden truth a bank never sees)."""

    uscc: str
    latent_risk: float
    default_12m: bool


@dataclass(frozen=True)
class LineState:
    """An enterprise's open line as its owner sees it on the day (`servicing.views.LineView`, reduced)."""

    line_id: int
    available_fen: int
    principal_fen: int  # principal outstanding, overdue included
    due_fen: int  # what must be paid now: arrears, interest charged, principal fallen due
    accrued_fen: int  # interest, penalty and compound interest accrued, not yet charged
    open_drawings: int
    drawings_ever: int  # drawings made on the line, repaid ones included
    expires_on: date
    active: bool  # drawable (neither frozen, expired nor closed)


@dataclass(frozen=True)
class Action:
    act: Act
    uscc: str
    line_id: int | None = None
    amount_fen: int = 0


@dataclass(frozen=True)
class Rates:
    """The model's daily probabilities; the defaults give a book where a few percent go bad and most pay on time."""

    apply: float = 0.012  # an enterprise without a line applies (≈ 1 in 80 days)
    draw_idle: float = 0.08  # a line with nothing drawn is drawn on
    draw_more: float = 0.01  # a line with money out is drawn on again
    repay_part: float = 0.02  # some principal is repaid early
    close_used: float = 0.01  # a used line with nothing owed is closed before its last month
    pay_off: float = 0.3  # an early repayment pays off all the principal
    default_within_days: int = DEFAULT_WITHIN_DAYS  # `default_12m`: the default day falls within this many days of the start


DEFAULT_RATES = Rates()


def uniform(seed: int, day: date, uscc: str, what: str) -> float:
    """A uniform number in [0, 1) fixed by its arguments (BLAKE2b: independent of visiting order and of the process)."""
    digest = hashlib.blake2b(f"{seed}|{day.isoformat()}|{uscc}|{what}".encode(), digest_size=8).digest()
    return struct.unpack(">Q", digest)[0] / 2**64


def _permille(low: int, high: int, u: float) -> int:
    """A share in whole permille within low..high (money is scaled by integers, never by a float)."""
    return low + int((high - low) * u)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def late_probability(latent_risk: float) -> float:
    """How likely a payment due is left unpaid on a given day: ~4 % at average risk, rising with it."""
    return _sigmoid(-3.2 + 1.1 * latent_risk)


def partial_probability(latent_risk: float) -> float:
    """How likely a payment made is only half of what is due."""
    return _sigmoid(-3.0 + 0.9 * latent_risk)


def default_day(seed: int, start: date, traits: Traits, within_days: int = DEFAULT_WITHIN_DAYS) -> date | None:
    """The day an enterprise flagged `default_12m` stops paying: within `within_days` (a year) of the history's `start`;
    None if never."""
    if not traits.default_12m:
        return None
    return start + timedelta(days=int(uniform(seed, start, traits.uscc, "default") * within_days))


def wants_to_apply(seed: int, day: date, traits: Traits, last_applied: date | None, rates: Rates = DEFAULT_RATES) -> bool:
    """An enterprise without an open line applies today?"""
    if last_applied is not None and (day - last_applied).days < REAPPLY_AFTER_DAYS:
        return False
    return uniform(seed, day, traits.uscc, "apply") < rates.apply


def line_actions(seed: int, day: date, start: date, traits: Traits, line: LineState, rates: Rates = DEFAULT_RATES) -> list[Action]:
    """What the enterprise does on its open line today: at most one repayment, then at most one draw or the close."""
    u = lambda what: uniform(seed, day, traits.uscc, what)  # noqa: E731
    defaulted_on = default_day(seed, start, traits, rates.default_within_days)
    if defaulted_on is not None and day >= defaulted_on:
        return []  # stopped paying: arrears build up, drawing is blocked by them
    last_month = (line.expires_on - day).days <= LAST_MONTH_DAYS
    out: list[Action] = []
    pay = 0
    if line.due_fen > 0 and u("late") >= late_probability(traits.latent_risk):
        pay = line.due_fen
        if u("partial") < partial_probability(traits.latent_risk):
            pay = max(YUAN_FEN, line.due_fen // 2 // YUAN_FEN * YUAN_FEN) if line.due_fen > YUAN_FEN else line.due_fen
    owed_principal = line.principal_fen  # 随借随还: repayable any day
    if owed_principal > 0 and line.due_fen == pay:  # nothing left due: principal may follow
        if last_month:
            pay += owed_principal
        elif u("repay") < rates.repay_part:
            share = 1000 if u("pay_off") < rates.pay_off else _permille(300, 1000, u("repay_share"))
            pay += max(YUAN_FEN, owed_principal * share // 1000 // YUAN_FEN * YUAN_FEN)
    pay = min(pay, line.due_fen + owed_principal)
    if pay > 0:
        out.append(Action(Act.REPAY, traits.uscc, line.line_id, pay))
    arrears_left = line.due_fen - min(pay, line.due_fen)
    nothing_owed = line.principal_fen == 0 and line.due_fen == 0 and line.accrued_fen == 0 and line.open_drawings == 0
    if nothing_owed and (last_month or not line.active or (line.drawings_ever > 0 and u("close") < rates.close_used)):
        out.append(Action(Act.CLOSE, traits.uscc, line.line_id))
        return out
    if line.active and not last_month and arrears_left == 0 and line.available_fen >= MIN_DRAW_FEN:
        p = rates.draw_idle if line.principal_fen == 0 else rates.draw_more
        if u("draw") < p:
            amount = line.available_fen * _permille(300, 900, u("draw_share")) // 1000 // DRAW_STEP_FEN * DRAW_STEP_FEN
            if amount >= MIN_DRAW_FEN:
                out.append(Action(Act.DRAW, traits.uscc, line.line_id, amount))
    return out

