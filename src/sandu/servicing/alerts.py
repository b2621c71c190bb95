"""Post-loan early warning on a session: scanning lines with the bundle's rules (`sandu.policy.warning`), and the
life of an alert — one table of transitions, a step row (UTC time, actor, role, note) for every change.

    raised ─acknowledge→ acknowledged
    raised | acknowledged | rejected ─propose→ proposed ─approve→ approved ─(the action takes effect)→ done
                                               proposed ─reject→ rejected
    raised | acknowledged | rejected ─dismiss→ dismissed

An officer proposes the rule's action or another (review, freeze drawing, reduce the limit); someone else — never
the proposer, and within their approval authority for the line (`origination.service.check_authority`: the
person's own authority and the bundle's matrix, over the line's limit) — approves, and only then, in the same unit
of work, is the line frozen or its limit reduced through the servicing functions the line actions use
(`freeze_line`, `reduce_limit`, the line state machine's checks included). Rejection and dismissal carry a note.
At most one open alert per rule and line (also a partial unique index); the same evidence never raises a rule twice
on a line. Like every service, a function here raises a `SanduError` before writing when it cannot be honoured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandu.domain.enums import OPEN_ALERT_STATUSES, AlertStatus, DrawingStatus, LineStatus
from sandu.domain.errors import Conflict, InvalidInput, NotFound, NotPermitted, show
from sandu.domain.keys import MAX_ROW_ID, is_row_id
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.domain.text import plain_text
from sandu.origination.service import check_authority
from sandu.policy.bundle import WARNING_ACTIONS, PolicyBundle
from sandu.policy.warning import DrawingFacts, LineFacts, ProfileFacts, evaluate, reduced_limit_fen
from sandu.security.actor import Actor
from sandu.security.service import staff_branch
from sandu.servicing import service as svc
from sandu.servicing.states import LineAction, next_state
from sandu.sources.profile import ProfileSnapshot, profile_from_json
from sandu.store import models as m

S = AlertStatus
RAISE = "raise"
# action → (the statuses it may start from, the status after)
TRANSITIONS: dict[str, tuple[frozenset[AlertStatus], AlertStatus]] = {
    "acknowledge": (frozenset({S.RAISED}), S.ACKNOWLEDGED),
    "propose": (frozenset({S.RAISED, S.ACKNOWLEDGED, S.REJECTED}), S.PROPOSED),
    "approve": (frozenset({S.PROPOSED}), S.APPROVED),
    "done": (frozenset({S.APPROVED}), S.DONE),
    "reject": (frozenset({S.PROPOSED}), S.REJECTED),
    "dismiss": (frozenset({S.RAISED, S.ACKNOWLEDGED, S.REJECTED}), S.DISMISSED),
}
OPEN = frozenset(OPEN_ALERT_STATUSES)
assert all(after in OPEN or after in (S.DONE, S.DISMISSED) for _, after in TRANSITIONS.values())
LINE_ACTION = {"freeze": LineAction.FREEZE, "reduce_limit": LineAction.REDUCE}  # "review" changes nothing on the line
SCANNED_LINES = (LineStatus.ACTIVE.value, LineStatus.FROZEN.value)  # open lines: drawn on, or blocked but owing
MAX_NOTE_LENGTH = 1000
MAX_ALERT_PAGE = 200
MAX_SCAN_BATCH = 1_000


def _who(actor: Actor) -> tuple[int | None, str]:
    return actor.user_id, (str(actor.role) if actor.user_id is not None else actor.username)[:32]


def step(session: Session, alert: m.Alert, action: str, actor: Actor, now: datetime, note: str = "") -> AlertStatus:
    """Move `alert` by `action` (a `Conflict` naming its status when the table does not allow it) and record the step."""
    allowed, after = TRANSITIONS[action]
    if alert.status not in allowed:
        raise Conflict("alert_id", f"alert {alert.id} is {alert.status}: it cannot {action}",
                       "an alert that is " + " or ".join(sorted(str(a) for a in allowed)))
    user_id, role = _who(actor)
    session.add(m.AlertStep(alert_id=alert.id, action=action, from_status=alert.status, to_status=after.value, at=now, actor_user_id=user_id,
                            actor_role=role, note=note))
    alert.status, alert.updated_at = after.value, now
    return after


# --- scanning ---------------------------------------------------------------------------------------------------


def profile_facts(row: m.Profile) -> ProfileFacts:
    return facts_of(profile_from_json(row.snapshot, row.sha256))  # hash-checked: an alert never rests on a tampered snapshot


def facts_of(snap: ProfileSnapshot) -> ProfileFacts:
    return ProfileFacts(sha256=snap.sha256, as_of=snap.as_of, features=snap.features)


def latest_profiles(session: Session, enterprise_id: int) -> tuple[ProfileFacts | None, ProfileFacts | None]:
    """(the snapshot before the latest, the latest) of an enterprise, by when they were kept."""
    rows = list(session.scalars(select(m.Profile).where(m.Profile.enterprise_id == enterprise_id)
                                .order_by(m.Profile.created_at.desc(), m.Profile.sha256).limit(2)))
    current = profile_facts(rows[0]) if rows else None
    previous = profile_facts(rows[1]) if len(rows) > 1 else None
    return previous, current


@dataclass(frozen=True)
class PageFacts:
    """What the ledger and the alerts table say of a page of lines, read in two queries: each line's open drawing
    furthest past due, and each line's alerts (rule, evidence, status)."""

    worst: dict[int, DrawingFacts]
    known: dict[int, list[tuple[str, str, str]]]


def page_facts(session: Session, line_ids: list[int]) -> PageFacts:
    assert len(line_ids) <= MAX_SCAN_BATCH, len(line_ids)
    worst: dict[int, DrawingFacts] = {}
    for d in session.execute(select(m.Drawing.line_id, m.Drawing.id, m.Drawing.dpd, m.Drawing.oldest_due_on)
                             .where(m.Drawing.line_id.in_(line_ids), m.Drawing.status == DrawingStatus.OPEN.value, m.Drawing.dpd > 0)
                             .order_by(m.Drawing.line_id, m.Drawing.dpd.desc(), m.Drawing.id)):
        worst.setdefault(d.line_id, DrawingFacts(d.id, d.dpd, d.oldest_due_on))
    known: dict[int, list[tuple[str, str, str]]] = {}
    for a in session.execute(select(m.Alert.line_id, m.Alert.rule_id, m.Alert.evidence_key, m.Alert.status).where(m.Alert.line_id.in_(line_ids))):
        known.setdefault(a.line_id, []).append((a.rule_id, a.evidence_key, a.status))
    return PageFacts(worst, known)


def _new(found: list, known: list[tuple[str, str, str]]) -> list:
    """The alerts of `found` that are new: no open alert of their rule on the line, their evidence not seen before."""
    open_rules = {rule for rule, _, status in known if status in OPEN}
    seen = {(rule, key) for rule, key, _ in known}
    return [a for a in found if a.rule_id not in open_rules and (a.rule_id, a.evidence_key) not in seen]


def would_raise(line: m.CreditLine, bundle: PolicyBundle, *, as_of: date, profiles: tuple[ProfileFacts | None, ProfileFacts | None],
                page: PageFacts) -> bool:
    """Whether the bundle's rules give `line` an alert that is new by what `page` read: the screen of a scan, which
    needs no lock (`scan_line` evaluates again under the line's lock)."""
    if not bundle.early_warning or line.status not in SCANNED_LINES:
        return False
    facts = LineFacts(line.id, as_of, profiles[0], profiles[1], page.worst.get(line.id))
    return bool(_new(evaluate(bundle.early_warning, facts), page.known.get(line.id, [])))


def scan_line(session: Session, line: m.CreditLine, bundle: PolicyBundle, *, as_of: date, now: datetime, actor: Actor,
              profiles: tuple[ProfileFacts | None, ProfileFacts | None], page: PageFacts) -> list[m.Alert]:
    """Raise the alerts the bundle's rules give on `line`: none for a rule that already has an open alert on the line,
    or that raised one on the same evidence before. The line is locked, and its alerts read again, only when something
    new was found (two scans at once raise it once). The new rows are added, not flushed: `record_raised` writes their
    first steps once a page's alerts have their ids."""
    if not would_raise(line, bundle, as_of=as_of, profiles=profiles, page=page):
        return []
    facts = LineFacts(line.id, as_of, profiles[0], profiles[1], page.worst.get(line.id))
    svc.lock_line(session, line.id)
    known = [(r.rule_id, r.evidence_key, r.status) for r in
             session.execute(select(m.Alert.rule_id, m.Alert.evidence_key, m.Alert.status).where(m.Alert.line_id == line.id))]
    ent = session.get(m.Enterprise, line.enterprise_id)
    assert ent is not None, "a line has its enterprise"
    raised = []
    for a in _new(evaluate(bundle.early_warning, facts), known):
        alert = m.Alert(line_id=line.id, enterprise_id=line.enterprise_id, branch=ent.branch, rule_id=a.rule_id, severity=a.severity,
                        status=S.RAISED.value, rule_action=a.action, summary=a.summary, evidence=a.evidence, evidence_key=a.evidence_key,
                        policy_version=bundle.label, as_of=as_of, raised_at=now, updated_at=now)
        session.add(alert)
        raised.append(alert)
    return raised


def record_raised(session: Session, raised: list[m.Alert], actor: Actor, now: datetime) -> None:
    """The first step (raised, by the scan's actor, the rule's summary as its note) of alerts just added, in one flush."""
    session.flush()
    user_id, role = _who(actor)
    for alert in raised:
        assert alert.id is not None and alert.status == S.RAISED, alert.status
        session.add(m.AlertStep(alert_id=alert.id, action=RAISE, from_status=None, to_status=S.RAISED.value, at=now, actor_user_id=user_id,
                                actor_role=role, note=alert.summary))


def open_lines(session: Session, *, enterprise_id: int | None = None, after_id: int = 0, limit: int = MAX_SCAN_BATCH,
               ids: list[int] | None = None) -> list[m.CreditLine]:
    """Open lines (active or frozen) by id after `after_id`, at most `limit` (a scan's batch); of `ids` only, if given."""
    assert 1 <= limit <= MAX_SCAN_BATCH and (ids is None or len(ids) <= limit), (limit, ids)
    q = select(m.CreditLine).where(m.CreditLine.status.in_(SCANNED_LINES), m.CreditLine.id > after_id)
    if enterprise_id is not None:
        q = q.where(m.CreditLine.enterprise_id == enterprise_id)
    if ids is not None:
        q = q.where(m.CreditLine.id.in_(ids))
    return list(session.scalars(q.order_by(m.CreditLine.id).limit(limit)))


# --- reading ----------------------------------------------------------------------------------------------------


def get_alert(session: Session, alert_id: object, *, lock: bool = False) -> m.Alert:
    if not is_row_id(alert_id):
        raise InvalidInput("alert_id", f"must be an alert number, got {show(alert_id)}", f"1..{MAX_ROW_ID}")
    stmt = select(m.Alert).where(m.Alert.id == alert_id)
    alert = session.scalar(stmt.with_for_update().execution_options(populate_existing=True) if lock else stmt)
    if alert is None:
        raise NotFound("alert", alert_id, field="alert_id")
    return alert


def steps_of(session: Session, alert_id: int) -> list[m.AlertStep]:
    return list(session.scalars(select(m.AlertStep).where(m.AlertStep.alert_id == alert_id).order_by(m.AlertStep.id)))


def alert_branch(actor: Actor, branch: str | None) -> str | None:
    """Whose alerts `actor` may list: an officer's or approver's own sub-branch (another is refused, 403); a system
    job (the command line on the server) any (None: every sub-branch)."""
    return staff_branch(actor, branch, what="early-warning alert list", rule="alerts.branch")


STATUS_FILTERS = ("open", *(s.value for s in AlertStatus))


def alerts_page(session: Session, *, branch: str | None, status: str, after_id: int, limit: int) -> tuple[list[m.Alert], int | None]:
    """Alerts of `branch` (None: every sub-branch) with `status` ("open": not done or dismissed), by id after
    `after_id`: (the page, the id to continue after, or None at the end)."""
    if status not in STATUS_FILTERS:
        raise InvalidInput("status", f"got {show(status)}", ", ".join(STATUS_FILTERS))
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ALERT_PAGE:
        raise InvalidInput("limit", f"got {show(limit)}", f"1..{MAX_ALERT_PAGE}")
    if isinstance(after_id, bool) or not isinstance(after_id, int) or not 0 <= after_id <= MAX_ROW_ID:
        raise InvalidInput("after_id", f"got {show(after_id)}", f"0..{MAX_ROW_ID}")
    q = select(m.Alert).where(m.Alert.id > after_id)
    q = q.where(m.Alert.status.in_([s.value for s in OPEN])) if status == "open" else q.where(m.Alert.status == status)
    if branch is not None:
        q = q.where(m.Alert.branch == branch)
    rows = list(session.scalars(q.order_by(m.Alert.id).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


# --- the life of an alert ---------------------------------------------------------------------------------------


def _note(note: object, required: bool) -> str:
    if note is None or note == "":
        if required:
            raise InvalidInput("note", "must not be empty: say why", f"1..{MAX_NOTE_LENGTH} printable characters")
        return ""
    return plain_text(note, "note", max_length=MAX_NOTE_LENGTH)


def acknowledge(session: Session, *, alert_id: int, actor: Actor, note: str | None, now: datetime) -> m.Alert:
    text = _note(note, required=False)
    alert = get_alert(session, alert_id, lock=True)
    step(session, alert, "acknowledge", actor, now, text)
    return alert


@dataclass(frozen=True)
class Proposal:
    action: str
    limit_fen: int | None


def _proposal(line: m.CreditLine, alert: m.Alert, bundle: PolicyBundle, action: object, limit_fen: object) -> Proposal:
    """The action proposed (the rule's when `action` is None) and, for reduce_limit, the limit: the one given, else
    the rule's reduce_to of the limit (never below what is drawn)."""
    chosen = alert.rule_action if action is None else action
    if chosen not in WARNING_ACTIONS:
        raise InvalidInput("action", f"got {show(chosen)}", ", ".join(WARNING_ACTIONS))
    if chosen != "reduce_limit":
        if limit_fen is not None:
            raise InvalidInput("limit_fen", f"only a reduce_limit proposal names a limit, this one proposes {chosen}", "leave it out")
        if chosen in LINE_ACTION:
            next_state(line.status, LINE_ACTION[chosen], line.id)
        return Proposal(str(chosen), None)
    next_state(line.status, LineAction.REDUCE, line.id)
    if limit_fen is None:
        rule = next((r for r in bundle.early_warning if r.id == alert.rule_id), None)
        if rule is None or rule.reduce_to is None:
            raise InvalidInput("limit_fen", f"rule {alert.rule_id} of policy {bundle.label} gives no share of the limit to keep: name the limit",
                               f"{line.drawn_principal_fen}..{line.limit_fen - 1} fen")
        limit_fen = reduced_limit_fen(line.limit_fen, line.drawn_principal_fen, rule.reduce_to, bundle.credit.round_down_fen)
    require_fen(limit_fen, field="limit_fen", allow_zero=True, max_fen=MAX_AMOUNT_FEN)
    assert isinstance(limit_fen, int)
    if not line.drawn_principal_fen <= limit_fen < line.limit_fen:
        raise Conflict("limit_fen", f"{limit_fen} fen is not below the line's limit of {line.limit_fen} fen and at least the "
                       f"{line.drawn_principal_fen} fen drawn on it", f"{line.drawn_principal_fen}..{line.limit_fen - 1} fen")
    return Proposal("reduce_limit", limit_fen)


def propose(session: Session, *, alert_id: int, actor: Actor, action: str | None, limit_fen: int | None, note: str | None, now: datetime,
            bundle: PolicyBundle) -> m.Alert:
    """An officer proposes the rule's action (or another) on the alert's line; an approver decides it."""
    text = _note(note, required=False)
    alert = get_alert(session, alert_id, lock=True)
    line = svc.get_line(session, alert.line_id)
    p = _proposal(line, alert, bundle, action, limit_fen)
    shown = p.action + (f" to {p.limit_fen} fen" if p.limit_fen is not None else "")
    step(session, alert, "propose", actor, now, f"proposes {shown}" + (f": {text}" if text else ""))
    alert.proposed_action, alert.proposed_limit_fen, alert.proposed_by, alert.decided_by = p.action, p.limit_fen, actor.user_id, None
    return alert


def _not_the_proposer(actor: Actor, alert: m.Alert, act: str) -> None:
    if actor.user_id is not None and actor.user_id == alert.proposed_by:
        raise NotPermitted(None, f"you proposed this action and may not {act} it", "another officer or an approver (审贷分离)",
                           rule="maker_checker.proposer")


def approve(session: Session, *, alert_id: int, actor: Actor, note: str | None, now: datetime, bundle: PolicyBundle) -> tuple[m.Alert, m.CreditLine]:
    """An approver (not the proposer, within their authority over the line's limit) approves the proposal; the action
    takes effect on the line in the same unit of work, and the alert is done."""
    text = _note(note, required=False)
    alert = get_alert(session, alert_id, lock=True)
    if alert.status != S.PROPOSED:
        step(session, alert, "approve", actor, now)  # refuses, naming the status
    _not_the_proposer(actor, alert, "approve")
    line = svc.get_line(session, alert.line_id)
    check_authority(bundle, actor, line.product, line.limit_fen, what=f"the limit of line {line.id}")
    step(session, alert, "approve", actor, now, text)
    alert.decided_by = actor.user_id
    if alert.proposed_action == "freeze":
        line = svc.freeze_line(session, line_id=line.id)
        done = f"line {line.id} frozen: drawing is blocked, repaying stays allowed"
    elif alert.proposed_action == "reduce_limit":
        assert alert.proposed_limit_fen is not None, "a reduce_limit proposal names its limit"
        line = svc.reduce_limit(session, line_id=line.id, limit_fen=alert.proposed_limit_fen)
        done = f"line {line.id} limit reduced to {line.limit_fen} fen"
    else:
        assert alert.proposed_action == "review", alert.proposed_action
        done = "reviewed: nothing changes on the line"
    step(session, alert, "done", actor, now, done)
    return alert, line


def reject(session: Session, *, alert_id: int, actor: Actor, note: str, now: datetime) -> m.Alert:
    """The proposal is refused, with a note; another may be proposed, or the alert dismissed."""
    text = _note(note, required=True)
    alert = get_alert(session, alert_id, lock=True)
    if alert.status != S.PROPOSED:
        step(session, alert, "reject", actor, now)  # refuses, naming the status
    _not_the_proposer(actor, alert, "reject")
    step(session, alert, "reject", actor, now, text)
    alert.decided_by = actor.user_id
    return alert


def dismiss(session: Session, *, alert_id: int, actor: Actor, note: str, now: datetime) -> m.Alert:
    """Close an alert without an action, saying why."""
    text = _note(note, required=True)
    alert = get_alert(session, alert_id, lock=True)
    step(session, alert, "dismiss", actor, now, text)
    return alert
