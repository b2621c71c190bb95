"""The life of an application for credit as a state machine: every action an application can undergo, the
states it may be in for that action, and the state it is in afterwards — one table.

    draft ─authorize─► authorized ─assess─► assessed ─auto_approve─► approved ──────┐
                           ▲                    │ ─auto_partial─► partially_approved ┤─accept─► accepted ─first_draw─► active
                           │                    │ ─refer────────► referred ──approve─┘
                           │                    └─decline───────► declined ◄─reject─ referred   (an officer's 拒绝)
                           │                         referred ◄─request_review─ declined   (PIPL art. 24)
                           └────────reassess──────── referred ─uphold─► declined
    withdrawn: the applicant withdraws before signing; expired: the decision's validity ran out unsigned (end of day).

Pure: a state and an action in, the next state out (or `Conflict` naming the state and what it allows). Services call
`next_state` before they change an application; the store's CHECK constraint lists the states (`ApplicationState`);
the draw's one-statement hook (`sandu.servicing.service`) takes its states from `FIRST_DRAW_FROM` / `FIRST_DRAW_TO`.

A measurement again before signing (a new consent, new data, a human review's reassessment) is `assess` from any
decided state: the new decision supersedes the last. After signing, or once withdrawn or expired, an application is
done: a new measurement starts a new application.
"""

from __future__ import annotations

from enum import StrEnum

from sandu.domain.enums import ApplicationState, Outcome
from sandu.domain.errors import Conflict


class AppAction(StrEnum):
    AUTHORIZE = "authorize"  # the legal representative grants a consent
    ASSESS = "assess"  # a measurement records a decision
    AUTO_APPROVE = "auto_approve"  # the decision approves everything within the system's delegated authority
    AUTO_PARTIAL = "auto_partial"  # the decision approves a part at once, refers the rest
    REFER = "refer"  # the decision refers everything to an officer
    DECLINE = "decline"  # the decision declines
    APPROVE = "approve"  # an approver approves a referred part, and nothing is left referred
    APPROVE_PART = "approve_part"  # an approver approves a referred part, and something is still referred
    ACCEPT = "accept"  # the legal representative signs an offer: a credit line
    FIRST_DRAW = "first_draw"  # the first drawing on a line of the application
    WITHDRAW = "withdraw"  # the applicant withdraws
    EXPIRE = "expire"  # end of day: the decision's validity ran out unsigned
    REQUEST_REVIEW = "request_review"  # the applicant asks for a person to review an automated decline (PIPL art. 24)
    UPHOLD = "uphold"  # the review upholds the decline
    REASSESS = "reassess"  # the review refers the application for a new assessment
    REJECT = "reject"  # 拒绝: an officer or approver of the sub-branch declines an application referred to them


S = ApplicationState
DR, AU, AS, AP, PA, RE, DE, AC, AT, WD, EX = (S.DRAFT, S.AUTHORIZED, S.ASSESSED, S.APPROVED, S.PARTIALLY_APPROVED, S.REFERRED, S.DECLINED,
                                              S.ACCEPTED, S.ACTIVE, S.WITHDRAWN, S.EXPIRED)
DECIDED = (AP, PA, RE, DE)  # a decision is in force and not signed

# action → {the state it may start from: the state after}
TRANSITIONS: dict[AppAction, dict[ApplicationState, ApplicationState]] = {
    AppAction.AUTHORIZE: {DR: AU},
    AppAction.ASSESS: {AU: AS, **{s: AS for s in DECIDED}},
    AppAction.AUTO_APPROVE: {AS: AP},
    AppAction.AUTO_PARTIAL: {AS: PA},
    AppAction.REFER: {AS: RE},
    AppAction.DECLINE: {AS: DE},
    AppAction.APPROVE: {RE: AP, PA: AP, AC: AC, AT: AT},  # after signing one offer, another's referred part may still be approved
    AppAction.APPROVE_PART: {RE: PA, PA: PA, AC: AC, AT: AT},
    AppAction.ACCEPT: {AP: AC, PA: AC, AC: AC, AT: AT},  # a second offer of the decision signed
    AppAction.FIRST_DRAW: {AC: AT},
    AppAction.WITHDRAW: {DR: WD, AU: WD, **{s: WD for s in DECIDED}},
    AppAction.EXPIRE: {s: EX for s in DECIDED},
    AppAction.REQUEST_REVIEW: {DE: RE},
    AppAction.UPHOLD: {RE: DE},
    AppAction.REASSESS: {RE: AU},
    AppAction.REJECT: {RE: DE},  # not partially_approved: its approved part stays the applicant's to sign or let expire
}

OUTCOME_ACTION = {Outcome.APPROVE: AppAction.AUTO_APPROVE, Outcome.PARTIAL: AppAction.AUTO_PARTIAL, Outcome.REFER: AppAction.REFER,
                  Outcome.DECLINE: AppAction.DECLINE}
OPEN = frozenset({DR, AU, AS, *DECIDED})  # not yet signed, withdrawn or expired: a measurement continues it
QUEUED = frozenset({RE, PA})  # something waits for an officer: the sub-branch's referral queue
# the draw's hook: the states a first drawing moves an application out of, and into
FIRST_DRAW_FROM = frozenset(s for s, after in TRANSITIONS[AppAction.FIRST_DRAW].items() if after != s)
FIRST_DRAW_TO = ApplicationState.ACTIVE
assert all(TRANSITIONS[AppAction.FIRST_DRAW][s] == FIRST_DRAW_TO for s in FIRST_DRAW_FROM), "the draw's hook has one target"


def allowed_actions(state: str) -> list[AppAction]:
    """The actions an application in `state` may undergo."""
    current = ApplicationState(state)
    return [a for a, moves in TRANSITIONS.items() if current in moves]


def next_state(state: str, action: AppAction, application_id: int | None = None) -> ApplicationState:
    """The state an application is in after `action`, or `Conflict` (409) naming its state, the states the action
    needs and what the application may do now."""
    current = ApplicationState(state)
    moves = TRANSITIONS[action]
    if current not in moves:
        which = f"application {application_id}" if application_id is not None else "the application"
        now = ", ".join(allowed_actions(current)) or "nothing: it is closed"
        raise Conflict("application", f"{which} is {current}: it cannot {action} (it may now: {now})",
                       f"an application that is {' or '.join(sorted(moves))}")
    return moves[current]
