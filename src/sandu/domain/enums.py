"""The closed sets of states and kinds, each declared once.

Services compare against these members, the store builds its check
constraints from them, and the API documents them: a new state is added here
and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
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


class ApplicationState(StrEnum):
    """Where an application for credit is; the transitions between them are the table in sandu.origination.states."""

    DRAFT = "draft"  # the enterprise is registered; nothing may be read yet
    AUTHORIZED = "authorized"  # a consent allows its sources to be read
    ASSESSED = "assessed"  # measured: a decision is recorded (at once followed by its outcome)
    APPROVED = "approved"  # everything offered may be signed for
    PARTIALLY_APPROVED = "partially_approved"  # part may be signed for, the rest waits for an officer
    REFERRED = "referred"  # everything waits for an officer (or a human review of a decline, PIPL art. 24)
    DECLINED = "declined"  # no offer
    ACCEPTED = "accepted"  # signed: a credit line exists
    ACTIVE = "active"  # the first drawing was made
    WITHDRAWN = "withdrawn"  # the applicant withdrew it
    EXPIRED = "expired"  # its decision's validity ran out without a signature


class HumanReviewStatus(StrEnum):
    """An applicant's request for a person to review an automated decline (PIPL art. 24)."""

    REQUESTED = "requested"  # in the sub-branch's referral queue
    REVIEWED = "reviewed"  # an officer proposed an outcome; someone else confirms it (审贷分离)
    UPHELD = "upheld"  # the decline stands
    REASSESS = "reassess"  # referred for a new assessment: the application is authorized again, to be measured anew
    SUPERSEDED = "superseded"  # a new measurement replaced the decision before the review was decided


class LineStatus(StrEnum):
    """A credit line's state; the transitions between them are the table in sandu.servicing.states."""

    ACTIVE = "active"  # may be drawn on
    FROZEN = "frozen"  # drawing blocked (by an officer or risk), repaying allowed
    EXPIRED = "expired"  # past its term: drawing blocked, what is drawn is repaid by its maturity
    CLOSED = "closed"  # nothing owed, nothing more to draw


class DrawingStatus(StrEnum):
    """A drawing (借据): open while anything is owed or accruing on it."""

    OPEN = "open"
    REPAID = "repaid"  # principal, interest, penalty and compound all paid, nothing accruing


class AlertStatus(StrEnum):
    """Where a post-loan early-warning alert is in its life (the transitions: `sandu.servicing.alerts.TRANSITIONS`)."""

    RAISED = "raised"  # a rule fired on a scan
    ACKNOWLEDGED = "acknowledged"  # an officer has seen it
    PROPOSED = "proposed"  # an officer proposed an action; an approver decides
    APPROVED = "approved"  # approved; the action takes effect in the same unit of work (then done)
    REJECTED = "rejected"  # the approver refused the proposal; another may be proposed, or the alert dismissed
    DONE = "done"  # the approved action took effect on the line
    DISMISSED = "dismissed"  # closed without an action, with a note


OPEN_ALERT_STATUSES = (AlertStatus.RAISED, AlertStatus.ACKNOWLEDGED, AlertStatus.PROPOSED, AlertStatus.APPROVED, AlertStatus.REJECTED)  # not closed


class StoreKind(StrEnum):
    """What a store holds; only a demo or test store may run on the simulated clock."""

    PRODUCTION = "production"
    DEMO = "demo"
    TEST = "test"


class EodStatus(StrEnum):
    RUNNING = "running"  # batches are being closed (the checkpoint says how far)
    DONE = "done"  # every line closed the date; the business calendar moved on


class Settlement(StrEnum):
    """When interest is settled: on the 20th of every month or of each quarter's last month."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class Role(StrEnum):
    """What a user is; the authorization table (sandu.security.authz) says what each may do."""

    APPLICANT = "applicant"  # acts for the enterprises it is a member of
    OFFICER = "officer"  # 客户经理: a sub-branch's customers; reviews referrals
    APPROVER = "approver"  # 审批人: approves within an authority, in a sub-branch
    RISK = "risk"  # portfolio and early-warning views
    OPERATIONS = "operations"  # end of day and other scheduled jobs
    ADMIN = "admin"  # creates and disables users
    AUDITOR = "auditor"  # reads everything, writes nothing

    @property
    def is_staff(self) -> bool:
        return self is not Role.APPLICANT


class MemberRelation(StrEnum):
    LEGAL_REP = "legal_rep"  # the legal representative (法定代表人), matched by resident ID
    DELEGATE = "delegate"  # a person the legal representative authorized


def sql_in(column: str, members: Iterable[str]) -> str:
    """A CHECK constraint body: `column IN ('a','b',…)` over an enum's values (or any strings)."""
    return f"{column} IN (" + ",".join(f"'{str(m)}'" for m in members) + ")"
