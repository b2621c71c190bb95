"""The life of a credit line as a state machine: every action a line can undergo, the
states it may be in for that action, and the state it is in afterwards — one table.

Pure: a state and an action in, the next state out (or `Conflict` naming the states
the action needs). Services call `next_state` before they change a line; the store's
CHECK constraint lists the states (from `LineStatus`).
"""

from __future__ import annotations

from enum import StrEnum

from sandu.domain.enums import LineStatus
from sandu.domain.errors import Conflict


class LineAction(StrEnum):
    DRAW = "draw"
    REPAY = "repay"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    EXPIRE = "expire"  # end of day, when the line's term is over
    RENEW = "renew"  # into a new term
    REDUCE = "reduce"  # lower the limit, never below what is drawn
    CLOSE = "close"  # nothing owed


A, F, E, C = LineStatus.ACTIVE, LineStatus.FROZEN, LineStatus.EXPIRED, LineStatus.CLOSED

# action → (the states it may start from, the state after; None: the state does not change)
TRANSITIONS: dict[LineAction, tuple[frozenset[LineStatus], LineStatus | None]] = {
    LineAction.DRAW: (frozenset({A}), None),
    LineAction.REPAY: (frozenset({A, F, E}), None),
    LineAction.FREEZE: (frozenset({A}), F),
    LineAction.UNFREEZE: (frozenset({F}), A),
    LineAction.EXPIRE: (frozenset({A, F}), E),
    LineAction.RENEW: (frozenset({A, E}), A),
    LineAction.REDUCE: (frozenset({A, F}), None),
    LineAction.CLOSE: (frozenset({A, F, E}), C),
}


def next_state(state: str, action: LineAction, line_id: int | None = None) -> LineStatus:
    """The state a line is in after `action`, or `Conflict` when its state does not allow it."""
    allowed, after = TRANSITIONS[action]
    current = LineStatus(state)
    if current not in allowed:
        which = f"line {line_id}" if line_id is not None else "the line"
        raise Conflict("line_id", f"{which} is {current}: it cannot {action}", "a line that is " + " or ".join(sorted(allowed)))
    return after if after is not None else current
