"""The application workflow on a session: each application's state, changed only through the table of
`sandu.origination.states`, with a transition row (UTC time, actor, reason) for every change; the referral queue
of a sub-branch; the applicant's request for human review of an automated decline (PIPL art. 24) and its
maker-checker outcome; the expiry of decisions not signed in time; measurement-to-first-drawing.

Origination's services call the hooks here inside their own unit of work (`on_register`, `on_consent`,
`on_decision`, `on_approve`, `on_accept`); servicing's draw moves an application to `active` with one statement
of its own (`first_draw_statements`). Like every service, a function here raises a `SanduError` before writing
when the request cannot be honoured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sandu.domain.enums import ApplicationState, HumanReviewStatus, OfferStatus, Outcome, Role
from sandu.domain.errors import Conflict, InvalidInput, NotFound, NotPermitted, show
from sandu.domain.keys import is_row_id
from sandu.domain.text import plain_text
from sandu.origination.states import FIRST_DRAW_FROM, FIRST_DRAW_TO, OUTCOME_ACTION, QUEUED, TRANSITIONS, AppAction, next_state
from sandu.origination.states import OPEN as OPEN_STATES
from sandu.security.actor import Actor
from sandu.security.service import is_legal_rep, staff_branch
from sandu.store import models as m
from sandu.store.db import insert_rows, set_columns

OPENED = "open"  # the action of an application's first row (from no state to draft): not a transition of the table
MAX_REVIEW_REASON_LENGTH = 1000
MAX_REFERRAL_PAGE = 200
MAX_REFERRAL_OFFSET = 100_000
EXPIRY_BATCH = 1_000  # applications expired per transaction by end of day
REVIEW_OUTCOMES = ("upheld", "reassess")
PENDING_REVIEW = (HumanReviewStatus.REQUESTED.value, HumanReviewStatus.REVIEWED.value)


def _who(actor: Actor) -> tuple[int | None, str]:
    """(user id, role) as a transition records them; a system job by its name (`system:eod`)."""
    return actor.user_id, (str(actor.role) if actor.user_id is not None else actor.username)[:16]


def transition(session: Session, app: m.Application, action: AppAction, actor: Actor, now: datetime, reason: str = "") -> ApplicationState:
    """Move `app` by `action` (a `Conflict` naming its state when the table does not allow it) and record it."""
    after = next_state(app.state, action, app.id)
    _record(session, app, app.state, after.value, action.value, actor, now, reason)
    app.state, app.updated_at = after.value, now
    if after not in QUEUED:
        app.queued_at = None
    return after


def _row(application_id: int, from_state: str | None, to_state: str, action: str, actor: Actor, now: datetime, reason: str,
         decision_id: str | None) -> dict[str, Any]:
    """One row of `application_transitions`."""
    user_id, role = _who(actor)
    return {"application_id": application_id, "from_state": from_state, "to_state": to_state, "action": action, "at": now,
            "actor_user_id": user_id, "actor_role": role, "reason": reason, "decision_id": decision_id}


def _record(session: Session, app: m.Application, from_state: str | None, to_state: str, action: str, actor: Actor, now: datetime,
            reason: str) -> None:
    """The transition row, inserted at once (a Core INSERT, not an ORM object): rows of one application ascend in the
    order its changes were made."""
    insert_rows(session, m.ApplicationTransition, [_row(app.id, from_state, to_state, action, actor, now, reason, app.decision_id)])


def new_application(session: Session, ent: m.Enterprise, actor: Actor, now: datetime, reason: str) -> m.Application:
    app = m.Application(enterprise_id=ent.id, branch=ent.branch, state=ApplicationState.DRAFT.value, created_at=now, updated_at=now)
    session.add(app)
    session.flush()
    _record(session, app, None, app.state, OPENED, actor, now, reason)
    return app


_APPS, _TRANSITIONS = m.Application.__table__, m.ApplicationTransition.__table__
_EXPIRABLE = sorted(s.value for s in TRANSITIONS[AppAction.EXPIRE])
assert {TRANSITIONS[AppAction.EXPIRE][ApplicationState(s)] for s in _EXPIRABLE} == {ApplicationState.EXPIRED}, "expire moves every state it applies to to expired"
assert ApplicationState.EXPIRED not in QUEUED, "an expired application waits in no queue (its queued_at is cleared)"
_OPEN_APPLICATION = (select(m.Application).where(m.Application.enterprise_id == bindparam("enterprise_id"),
                                                  m.Application.state.in_([s.value for s in OPEN_STATES]))
                     .order_by(m.Application.id.desc()).limit(1).with_for_update().execution_options(populate_existing=True))
_REVIEWS = m.HumanReview.__table__
_SUPERSEDE_REVIEWS = (update(_REVIEWS).where(_REVIEWS.c.application_id == bindparam("of_application"), _REVIEWS.c.status.in_(PENDING_REVIEW))
                      .values(status=HumanReviewStatus.SUPERSEDED.value))


def open_application(session: Session, enterprise_id: int) -> m.Application | None:
    """The enterprise's application not yet signed, withdrawn or expired (its latest), locked for a change."""
    return session.scalar(_OPEN_APPLICATION, {"enterprise_id": enterprise_id})


def _supersede_reviews(session: Session, application_id: int) -> None:
    """A human review still pending on the application is closed as superseded (one statement built once); a review
    the session holds gets its new status, as an ORM-enabled UPDATE would have synchronized it (after a flush)."""
    session.flush()
    if session.connection().execute(_SUPERSEDE_REVIEWS, {"of_application": application_id}).rowcount:
        for obj in list(session.identity_map.values()):
            if isinstance(obj, m.HumanReview) and obj.application_id == application_id and obj.status in PENDING_REVIEW:
                set_committed_value(obj, "status", HumanReviewStatus.SUPERSEDED.value)


def _locked(session: Session, application_id: int) -> m.Application:
    stmt = select(m.Application).where(m.Application.id == application_id).with_for_update()
    app = session.scalar(stmt.execution_options(populate_existing=True))
    assert app is not None, f"application {application_id} exists"
    return app


def get_application(session: Session, application_id: object) -> m.Application:
    app = session.get(m.Application, application_id) if is_row_id(application_id) else None
    if app is None:
        raise NotFound("application", application_id, field="application_id")
    return app


def application_of_decision(session: Session, decision: m.Decision) -> m.Application:
    assert decision.application_id is not None, f"decision {decision.id} belongs to an application"
    return _locked(session, decision.application_id)


# --- the hooks origination's services call ------------------------------------------------------------------------


def on_register(session: Session, ent: m.Enterprise, actor: Actor, now: datetime) -> m.Application:
    return new_application(session, ent, actor, now, "the enterprise registered")


def authorized_application(session: Session, ent: m.Enterprise, actor: Actor, now: datetime, reason: str) -> m.Application:
    """The enterprise's open application, authorized (a new one when none is open: the last was signed, withdrawn or
    expired)."""
    app = open_application(session, ent.id) or new_application(session, ent, actor, now, "a new application")
    if app.state == ApplicationState.DRAFT:
        transition(session, app, AppAction.AUTHORIZE, actor, now, reason)
    return app


def on_consent(session: Session, ent: m.Enterprise, consent: m.Consent, actor: Actor, now: datetime) -> m.Application:
    return authorized_application(session, ent, actor, now, f"consent {consent.id} granted for {', '.join(consent.scopes)}")


def _outcome_reason(decision: m.Decision) -> str:
    reasons = decision.result.get("reasons") or []
    if decision.outcome == Outcome.APPROVE:
        return "approved by the policy within the system's delegated authority (each product's auto_approve_max_fen)"
    head = {Outcome.PARTIAL: "part approved by the policy within the system's delegated authority, the rest referred to an officer",
            Outcome.REFER: "referred to an officer", Outcome.DECLINE: "declined by the policy"}[Outcome(decision.outcome)]
    return head + (f": {reasons[0]}" if reasons else "")


def application_to_assess(session: Session, ent: m.Enterprise, actor: Actor, now: datetime, *, consent_id: str) -> m.Application:
    """The first half of recording a measurement: the enterprise's open application (a new one when none is open),
    authorized under the consent in force, locked; the decision is written against it, then `on_decision`."""
    return authorized_application(session, ent, actor, now, f"consent {consent_id} in force")


def on_decision(session: Session, app: m.Application, decision: m.Decision, actor: Actor, now: datetime, *, valid_days: int) -> None:
    """A measurement recorded `decision` for `app` (from `application_to_assess`): the application is assessed, then
    moved to the decision's outcome (by the policy, a system actor). A human review still pending on the decision it
    supersedes is closed as superseded."""
    assert decision.application_id == app.id, f"decision {decision.id} is written against application {app.id}"
    if app.decision_id is not None:
        _supersede_reviews(session, app.id)
    # Both moves in one INSERT and the application in one UPDATE (the same rows `transition` would write, one by one).
    moves = ((AppAction.ASSESS, actor, f"decision {decision.id} under policy {decision.policy_version}"),
             (OUTCOME_ACTION[Outcome(decision.outcome)], Actor.system("policy"), _outcome_reason(decision)))
    state, rows = app.state, []
    for action, who, reason in moves:
        after = next_state(state, action, app.id)
        rows.append(_row(app.id, state, after.value, action.value, who, now, reason, decision.id))
        state = after.value
    insert_rows(session, m.ApplicationTransition, rows)
    requested = decision.application.get("requested_fen")
    set_columns(session, app, decision_id=decision.id, state=state, updated_at=now,
                requested_fen=requested if isinstance(requested, int) and requested > 0 else None,
                valid_through=decision.as_of + timedelta(days=valid_days), queued_at=now if ApplicationState(state) in QUEUED else None)


def _current(session: Session, decision: m.Decision) -> m.Application | None:
    """The decision's application when the decision is still the one in force for it (else None: a newer
    measurement superseded it, and the application is the newer decision's business)."""
    app = application_of_decision(session, decision)
    return app if app.decision_id == decision.id else None


def on_approve(session: Session, decision: m.Decision, offers: list[m.Offer], actor: Actor, now: datetime, product: str) -> None:
    """An approver approved a referred part: the application is approved, or still partially approved when
    another offer has a referred part."""
    app = _current(session, decision)
    if app is None:
        return
    left = [o.product for o in offers if o.approved_fen < o.limit_fen and o.status != OfferStatus.ACCEPTED]
    action = AppAction.APPROVE_PART if left else AppAction.APPROVE
    transition(session, app, action, actor, now, f"{product} approved" + (f"; still referred: {', '.join(left)}" if left else ""))


def check_may_accept(session: Session, decision: m.Decision) -> m.Application:
    """The application of a decision about to be signed, in a state that allows it (409 otherwise), locked."""
    app = application_of_decision(session, decision)
    next_state(app.state, AppAction.ACCEPT, app.id)
    return app


def on_accept(session: Session, app: m.Application, line: m.CreditLine, actor: Actor, now: datetime) -> None:
    line.application_id = app.id
    transition(session, app, AppAction.ACCEPT, actor, now, f"{line.product} signed: credit line {line.id}")


def withdraw(session: Session, *, application_id: int, actor: Actor, reason: str, now: datetime) -> m.Application:
    """The applicant (the legal representative, in person) withdraws an application not yet signed."""
    plain_text(reason, "reason", max_length=MAX_REVIEW_REASON_LENGTH)
    app = _locked(session, get_application(session, application_id).id)
    ent = session.get(m.Enterprise, app.enterprise_id)
    assert ent is not None, "an application has its enterprise"
    if not is_legal_rep(session, actor, ent):
        raise NotPermitted(None, "only the enterprise's legal representative, in person, may withdraw its application",
                           "the legal representative's own session", rule="origination.withdraw.legal_rep")
    transition(session, app, AppAction.WITHDRAW, actor, now, reason)
    return app


def reject(session: Session, *, application_id: int, actor: Actor, reason: str, now: datetime) -> m.Application:
    """拒绝: an officer or approver of the sub-branch declines an application referred to them (`referred`), with a
    reason the applicant sees in its history. Not one whose decision they initiated (审贷分离), and not one waiting for
    a human review of a decline: that review is decided through its own maker-checker (uphold or reassess)."""
    plain_text(reason, "reason", max_length=MAX_REVIEW_REASON_LENGTH)
    app = _locked(session, get_application(session, application_id).id)
    next_state(app.state, AppAction.REJECT, app.id)
    pending = session.scalar(select(m.HumanReview).where(m.HumanReview.application_id == app.id, m.HumanReview.status.in_(PENDING_REVIEW)))
    if pending is not None:
        raise Conflict("application", f"application {app.id} waits for the human review of decision {pending.decision_id} ({pending.status})",
                       "decide the human review: uphold the decline or refer for a new assessment")
    decision = session.get(m.Decision, app.decision_id) if app.decision_id is not None else None
    if decision is not None and actor.user_id is not None and actor.user_id == decision.initiated_by:
        raise NotPermitted(None, "you initiated this decision and may not decide it", "another officer (审贷分离)", rule="maker_checker.initiator")
    transition(session, app, AppAction.REJECT, actor, now, f"declined by the {actor.role}: {reason}")
    return app


def expire_due(session: Session, *, through: date, actor: Actor, now: datetime, limit: int = EXPIRY_BATCH) -> int:
    """End of day: expire (at most `limit`) applications whose decision could be signed through `through` at the
    latest and was not — unless a human review of their decline is pending, which waits for its person. Returns
    how many were expired (the caller repeats while it is `limit`). Set-based, as the table's `expire` moves every
    decided state to `expired`: one read of the due rows, one INSERT of their transitions, one UPDATE — no object per
    application (a thousand of them held the store's writer 100–350 ms a batch on SQLite)."""
    a = _APPS
    pending = select(_REVIEWS.c.id).where(_REVIEWS.c.application_id == a.c.id, _REVIEWS.c.status.in_(PENDING_REVIEW)).exists()
    due = session.execute(select(a.c.id, a.c.state, a.c.valid_through, a.c.decision_id)
                          .where(a.c.state.in_(_EXPIRABLE), a.c.valid_through <= through, ~pending)
                          .order_by(a.c.id).limit(limit).with_for_update()).all()
    if not due:
        return 0
    insert_rows(session, m.ApplicationTransition, [
        _row(app_id, state, next_state(state, AppAction.EXPIRE, app_id).value, AppAction.EXPIRE.value, actor, now,
             f"its decision could be signed through {valid_through} and was not", decision_id)
        for app_id, state, valid_through, decision_id in due])
    moved = session.execute(update(a).where(a.c.id.in_([row.id for row in due]), a.c.state.in_(_EXPIRABLE))
                            .values(state=ApplicationState.EXPIRED.value, updated_at=now, queued_at=None)).rowcount
    assert moved == len(due), f"{moved} of {len(due)} due applications expired: each was read under the write lock"
    return len(due)


# --- the first drawing (servicing's draw) -------------------------------------------------------------------------

assert len(FIRST_DRAW_FROM) == 1, "a first drawing moves an application out of one state"
(_FROM,) = FIRST_DRAW_FROM


def activation_column(line_application_id: Any):
    """A column for the draw's read: the line's application when a drawing now is its first (it is `accepted`), else NULL."""
    return (select(_APPS.c.id).where(_APPS.c.id == line_application_id, _APPS.c.state == _FROM.value)
            .scalar_subquery().label("activate_application_id"))


def _first_draw_pg():
    moved = (update(_APPS).where(_APPS.c.id == bindparam("app_id"), _APPS.c.state == _FROM.value)
             .values(state=FIRST_DRAW_TO.value, updated_at=bindparam("now"), queued_at=None)
             .returning(_APPS.c.id, _APPS.c.decision_id).cte("moved"))
    return insert(_TRANSITIONS).from_select(
        ["application_id", "from_state", "to_state", "action", "at", "actor_user_id", "actor_role", "reason", "decision_id"],
        select(moved.c.id, literal(_FROM.value), literal(FIRST_DRAW_TO.value), literal(AppAction.FIRST_DRAW.value), bindparam("at_"),
               bindparam("user_id"), bindparam("role"), bindparam("reason"), moved.c.decision_id))


def _first_draw_sqlite():
    record = insert(_TRANSITIONS).from_select(
        ["application_id", "from_state", "to_state", "action", "at", "actor_user_id", "actor_role", "reason", "decision_id"],
        select(_APPS.c.id, literal(_FROM.value), literal(FIRST_DRAW_TO.value), literal(AppAction.FIRST_DRAW.value), bindparam("at_"),
               bindparam("user_id"), bindparam("role"), bindparam("reason"), _APPS.c.decision_id)
        .where(_APPS.c.id == bindparam("app_id"), _APPS.c.state == _FROM.value))
    move = (update(_APPS).where(_APPS.c.id == bindparam("app_id"), _APPS.c.state == _FROM.value)
            .values(state=FIRST_DRAW_TO.value, updated_at=bindparam("now"), queued_at=None))
    return record, move


_FIRST_DRAW = {"postgresql": (_first_draw_pg(),), "sqlite": _first_draw_sqlite()}


def first_draw(conn: Connection, *, application_id: int, line_id: int, drawing_id: int, user_id: int | None, now: datetime) -> None:
    """The application of a line's first drawing becomes `active` (accepted → active, the table's `first_draw`), with
    its transition: one statement on PostgreSQL (an UPDATE … RETURNING feeding the INSERT), two on SQLite."""
    params = {"app_id": application_id, "now": now, "at_": now, "user_id": user_id, "role": Role.APPLICANT.value if user_id else "system",
              "reason": f"first drawing {drawing_id} on credit line {line_id}"}
    for stmt in _FIRST_DRAW[conn.dialect.name]:
        conn.execute(stmt, params)


# --- human review of an automated decline (PIPL art. 24) ----------------------------------------------------------


def human_review_of(session: Session, decision_id: str, *, lock: bool = False) -> m.HumanReview:
    stmt = select(m.HumanReview).where(m.HumanReview.decision_id == decision_id)
    review = session.scalar(stmt.with_for_update().execution_options(populate_existing=True) if lock else stmt)
    if review is None:
        raise NotFound("human review", f"of decision {decision_id}", field="decision_id")
    return review


def request_human_review(session: Session, *, decision: m.Decision, ent: m.Enterprise, actor: Actor, reason: str, now: datetime) -> m.HumanReview:
    """The applicant asks for a person to review the automated decline `decision` (once per decision): the
    application goes to the sub-branch's referral queue with the decision attached. `ent` is locked by the caller."""
    plain_text(reason, "reason", max_length=MAX_REVIEW_REASON_LENGTH)
    if not is_legal_rep(session, actor, ent):
        raise NotPermitted(None, "only the enterprise's legal representative, in person, may ask for a human review of its decision",
                           "the legal representative's own session", rule="origination.human_review.legal_rep")
    if decision.outcome != Outcome.DECLINE:
        raise Conflict("decision_id", f"decision {decision.id} is {decision.outcome}, not a decline: there is no automated refusal to review",
                       "a declined decision")
    earlier = session.scalar(select(m.HumanReview).where(m.HumanReview.decision_id == decision.id))
    if earlier is not None:
        raise Conflict("decision_id", f"a human review of decision {decision.id} was already requested on {earlier.requested_at:%Y-%m-%d %H:%M} UTC "
                       f"({earlier.status})", "one request per decision: see its status on the application")
    app = application_of_decision(session, decision)
    if app.decision_id != decision.id:
        raise Conflict("decision_id", f"decision {decision.id} was superseded by a newer measurement", "the application's decision in force")
    transition(session, app, AppAction.REQUEST_REVIEW, actor, now, f"human review requested: {reason}")
    app.queued_at = now
    review = m.HumanReview(application_id=app.id, decision_id=decision.id, status=HumanReviewStatus.REQUESTED.value, requested_by=actor.user_id,
                           requested_at=now, reason=reason)
    session.add(review)
    session.flush()
    return review


def review_human_review(session: Session, *, decision: m.Decision, reviewer: Actor, outcome: str, opinion: str, now: datetime) -> m.HumanReview:
    """审: an officer reviews the request and proposes an outcome (upheld, or reassess: a new assessment)."""
    if outcome not in REVIEW_OUTCOMES:
        raise InvalidInput("outcome", f"got {show(outcome)}", ", ".join(REVIEW_OUTCOMES))
    plain_text(opinion, "opinion", max_length=MAX_REVIEW_REASON_LENGTH)
    review = human_review_of(session, decision.id, lock=True)
    if review.status != HumanReviewStatus.REQUESTED:
        raise Conflict("decision_id", f"the human review of decision {decision.id} is {review.status}", "a human review requested and not yet reviewed")
    _not_the_maker(reviewer, decision, review, "review")
    review.status, review.reviewed_by, review.reviewed_at = HumanReviewStatus.REVIEWED.value, reviewer.user_id, now
    review.proposed_outcome, review.opinion = outcome, opinion
    return review


def decide_human_review(session: Session, *, decision: m.Decision, approver: Actor, now: datetime) -> m.HumanReview:
    """贷: someone other than the reviewer (and the applicant) confirms the proposed outcome: the decline is upheld
    (declined again), or the application is referred for a new assessment (authorized, to be measured anew)."""
    review = human_review_of(session, decision.id, lock=True)
    if review.status != HumanReviewStatus.REVIEWED:
        raise Conflict("decision_id", f"the human review of decision {decision.id} is {review.status}",
                       "a human review an officer has reviewed" if review.status == HumanReviewStatus.REQUESTED else "a human review not yet decided")
    _not_the_maker(approver, decision, review, "decide")
    if approver.user_id is not None and approver.user_id == review.reviewed_by:
        raise NotPermitted(None, "you reviewed this request and may not also decide it", "another officer or an approver (审贷分离)",
                           rule="maker_checker.reviewer")
    app = application_of_decision(session, decision)
    upheld = review.proposed_outcome == "upheld"
    transition(session, app, AppAction.UPHOLD if upheld else AppAction.REASSESS, approver, now,
               f"human review: {'the decline is upheld' if upheld else 'referred for a new assessment'} — {review.opinion}")
    review.status = (HumanReviewStatus.UPHELD if upheld else HumanReviewStatus.REASSESS).value
    review.decided_by, review.decided_at = approver.user_id, now
    return review


def _not_the_maker(actor: Actor, decision: m.Decision, review: m.HumanReview, act: str) -> None:
    if actor.user_id is not None and actor.user_id in (decision.initiated_by, review.requested_by):
        raise NotPermitted(None, f"you initiated this decision or asked for its review and may not {act} it", "another officer (审贷分离)",
                           rule="maker_checker.initiator")


# --- the referral queue -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Referral:
    application: m.Application
    uscc: str
    enterprise_name: str
    decision: m.Decision | None
    offers: list[m.Offer]
    review: m.HumanReview | None


def queue_branch(actor: Actor, branch: str | None) -> str | None:
    """Whose queue `actor` may read: an officer's or approver's own sub-branch (another is refused, 403); an admin's
    any (None: every sub-branch)."""
    return staff_branch(actor, branch, what="referral queue", rule="referrals.branch")


def referral_queue(session: Session, *, branch: str | None, limit: int, offset: int) -> tuple[list[Referral], int]:
    """The applications waiting for an officer (`states.QUEUED`) in `branch` (None: every sub-branch), oldest first:
    (the page, how many wait in all)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_REFERRAL_PAGE:
        raise InvalidInput("limit", f"got {show(limit)}", f"1..{MAX_REFERRAL_PAGE}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_REFERRAL_OFFSET:
        raise InvalidInput("offset", f"got {show(offset)}", f"0..{MAX_REFERRAL_OFFSET}")
    where = [m.Application.state.in_([s.value for s in QUEUED])]
    if branch is not None:
        where.append(m.Application.branch == branch)
    total = int(session.scalar(select(func.count()).select_from(m.Application).where(*where)) or 0)
    rows = session.execute(
        select(m.Application, m.Enterprise.uscc, m.Enterprise.name, m.Decision)
        .join(m.Enterprise, m.Enterprise.id == m.Application.enterprise_id)
        .outerjoin(m.Decision, m.Decision.id == m.Application.decision_id)
        .where(*where).order_by(m.Application.queued_at, m.Application.id).limit(limit).offset(offset)).all()
    ids = [r.Decision.id for r in rows if r.Decision is not None]
    offers: dict[str, list[m.Offer]] = {}
    reviews: dict[str, m.HumanReview] = {}
    if ids:
        for o in session.scalars(select(m.Offer).where(m.Offer.decision_id.in_(ids)).order_by(m.Offer.id)):
            offers.setdefault(o.decision_id, []).append(o)
        for r in session.scalars(select(m.HumanReview).where(m.HumanReview.decision_id.in_(ids), m.HumanReview.status.in_(PENDING_REVIEW))):
            reviews[r.decision_id] = r
    return [Referral(r.Application, r.uscc, r.name, r.Decision, offers.get(r.Decision.id, []) if r.Decision else [],
                     reviews.get(r.Decision.id) if r.Decision else None) for r in rows], total


# --- what happened when -----------------------------------------------------------------------------------------


def transitions_of(session: Session, application_id: int) -> list[m.ApplicationTransition]:
    return list(session.scalars(select(m.ApplicationTransition).where(m.ApplicationTransition.application_id == application_id)
                                .order_by(m.ApplicationTransition.id)))


def decisions_of(session: Session, application_id: int) -> list[str]:
    """The application's decisions, oldest first: by time, then in the order they were assessed (one clock tick may hold several)."""
    t = m.ApplicationTransition
    assessed = (select(func.min(t.id)).where(t.application_id == application_id, t.decision_id == m.Decision.id, t.action == AppAction.ASSESS.value)
                .scalar_subquery())
    return list(session.scalars(select(m.Decision.id).where(m.Decision.application_id == application_id)
                                .order_by(m.Decision.decided_at, func.coalesce(assessed, 0), m.Decision.id)))


def lines_of(session: Session, application_id: int) -> list[int]:
    """The credit lines signed from the application, oldest first (one per signed offer: a few)."""
    return list(session.scalars(select(m.CreditLine.id).where(m.CreditLine.application_id == application_id).order_by(m.CreditLine.id)))


def latest_review(session: Session, application_id: int) -> m.HumanReview | None:
    return session.scalar(select(m.HumanReview).where(m.HumanReview.application_id == application_id).order_by(m.HumanReview.id.desc()).limit(1))


@dataclass(frozen=True)
class FirstDrawing:
    """How long an application took from its measurement (the last `assessed` before its first drawing) to its
    first drawing (`active`)."""

    application_id: int
    enterprise_id: int
    branch: str
    measured_at: datetime
    first_drawn_at: datetime

    @property
    def seconds(self) -> float:
        return (self.first_drawn_at - self.measured_at).total_seconds()


def measurement_to_first_drawing(session: Session, *, application_id: int | None = None, branch: str | None = None,
                                 drawn_since: datetime | None = None, limit: int = 100_000) -> list[FirstDrawing]:
    """Measurement → first drawing for every application that was drawn on (filtered by application, sub-branch,
    first drawing on or after `drawn_since`), by first drawing, at most `limit` (the analytics' reporting query)."""
    t, a = m.ApplicationTransition, m.Application
    first = (select(t.application_id, func.min(t.at).label("first_drawn_at"))
             .where(t.to_state == ApplicationState.ACTIVE.value, or_(t.from_state.is_(None), t.from_state != ApplicationState.ACTIVE.value))
             .group_by(t.application_id).subquery("first"))
    t2 = m.ApplicationTransition.__table__.alias("measured")
    measured = (select(func.max(t2.c.at)).where(t2.c.application_id == first.c.application_id, t2.c.to_state == ApplicationState.ASSESSED.value,
                                               t2.c.at <= first.c.first_drawn_at).scalar_subquery())
    q = (select(a.id, a.enterprise_id, a.branch, measured.label("measured_at"), first.c.first_drawn_at)
         .join(first, first.c.application_id == a.id))
    conditions = []
    if application_id is not None:
        conditions.append(a.id == application_id)
    if branch is not None:
        conditions.append(a.branch == branch)
    if drawn_since is not None:
        conditions.append(first.c.first_drawn_at >= drawn_since)
    if conditions:
        q = q.where(and_(*conditions))
    rows = session.execute(q.order_by(first.c.first_drawn_at, a.id).limit(limit)).all()
    return [FirstDrawing(r.id, r.enterprise_id, r.branch, _aware(r.measured_at), _aware(r.first_drawn_at)) for r in rows if r.measured_at is not None]


def _aware(value: Any) -> datetime:
    """Aggregates over a `UtcDateTime` column come back as the driver gives them (naive on SQLite): UTC, aware."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
