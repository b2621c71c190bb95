"""The closed sets of states and kinds, each declared once.

Services compare against these members, the store builds its check
constraints from them, and the API documents them: a new state is added here
and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What a decision says about an application as a whole."""

    APPROVE = "approve"  # every offer approved by the system
    PARTIAL = "partial"  # part approved at once, the rest referred
    REFER = "refer"  # everything waits for an officer
    DECLINE = "decline"  # no offer


class OfferStatus(StrEnum):
    OFFERED = "offered"  # an approved amount may be signed for
    REFERRED = "referred"  # nothing approved yet; an officer decides
    ACCEPTED = "accepted"  # signed: a credit line exists


class LineStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class Settlement(StrEnum):
    """When interest is settled: on the 20th of every month or of each quarter's last month."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


def sql_in(column: str, members: type[StrEnum]) -> str:
    """A CHECK constraint body: `column IN ('a','b',…)` over an enum's values."""
    return f"{column} IN (" + ",".join(f"'{m.value}'" for m in members) + ")"
