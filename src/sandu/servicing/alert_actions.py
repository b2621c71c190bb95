"""What a user can do with post-loan early-warning alerts, each in its own unit of work (see
`sandu.servicing.actions`): a view is returned only after its commit, and every change is on the audit trail in the
same transaction — the alert's step and, when an approval freezes a line or reduces its limit, the line's change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from sandu.audit import service as audit
from sandu.domain.errors import InvalidInput, show
from sandu.runtime import Runtime
from sandu.security.actor import Actor
from sandu.servicing import alerts as svc
from sandu.servicing.service import get_line
from sandu.sources.profile import ProfileIntegrityError, ProfileSnapshot
from sandu.store import models as m

MAX_SHOWN_IDS = 1_000  # alert ids a scan's answer lists; its count covers them all
MAX_SCAN_BATCHES = 100_000  # a hundred million lines a scan; more is reported, never silently left


class AlertStepView(BaseModel):
    action: str
    from_status: str | None
    to_status: str
    at: datetime = Field(description="when, UTC")
    actor_user_id: int | None = Field(description="null: a system job (the scan)")
    actor_role: str
    note: str


class AlertView(BaseModel):
    """An early-warning alert: the rule that fired on the line, its severity and evidence, where it is in its life."""

    id: int
    line_id: int
    branch: str
    rule_id: str
    severity: str
    status: str
    rule_action: str = Field(description="what the rule proposes: review, freeze or reduce_limit")
    summary: str
    evidence: dict[str, Any] = Field(description="the rule and its threshold, the values compared, the profiles and their dates, or the drawing")
    policy_version: str
    as_of: date = Field(description="the business date of the scan that raised it")
    raised_at: datetime
    updated_at: datetime
    proposed_action: str | None
    proposed_limit_fen: int | None
    proposed_by: int | None
    decided_by: int | None
    line_status: str
    line_limit_fen: int
    allowed_actions: list[str] = Field(description="what may be done next: acknowledge, propose, approve, reject, dismiss")
    steps: list[AlertStepView] | None = Field(None, description="the alert's life, oldest first (the detail only)")


class AlertPage(BaseModel):
    alerts: list[AlertView]
    next_after_id: int | None = Field(description="pass as after_id for the next page; null at the end")


class ScanView(BaseModel):
    as_of: date
    lines: int = Field(description="open lines scanned")
    raised: int
    by_rule: dict[str, int]
    refused: dict[str, str] = Field(default_factory=dict, description="line → why it could not be scanned (a stored profile failed its hash check)")
    alert_ids: list[int] = Field(default_factory=list, description=f"the alerts raised, the first {MAX_SHOWN_IDS:,} (raised says how many in all)")


def alert_view(session: Session, alert: m.Alert, *, detail: bool = False) -> AlertView:
    line = get_line(session, alert.line_id)
    allowed = [a for a, (start, _) in svc.TRANSITIONS.items() if alert.status in start and a != "done"]
    steps = [AlertStepView(action=s.action, from_status=s.from_status, to_status=s.to_status, at=s.at, actor_user_id=s.actor_user_id,
                           actor_role=s.actor_role, note=s.note) for s in svc.steps_of(session, alert.id)] if detail else None
    return AlertView(id=alert.id, line_id=alert.line_id, branch=alert.branch, rule_id=alert.rule_id, severity=alert.severity, status=alert.status,
                     rule_action=alert.rule_action, summary=alert.summary, evidence=alert.evidence, policy_version=alert.policy_version,
                     as_of=alert.as_of, raised_at=alert.raised_at, updated_at=alert.updated_at, proposed_action=alert.proposed_action,
                     proposed_limit_fen=alert.proposed_limit_fen, proposed_by=alert.proposed_by, decided_by=alert.decided_by,
                     line_status=line.status, line_limit_fen=line.limit_fen, allowed_actions=allowed, steps=steps)


def _snapshots_once(s: Session) -> Callable[[int], Any]:
    """An enterprise's latest two snapshots (`svc.latest_profiles`), read and hash-checked once per page of lines."""
    known: dict[int, Any] = {}

    def of(enterprise_id: int) -> Any:
        if enterprise_id not in known:
            known[enterprise_id] = svc.latest_profiles(s, enterprise_id)  # a tampered one raises, and is not kept
        return known[enterprise_id]

    return of


def _scan_page(s: Session, rt: Runtime, actor: Actor, page: list[m.CreditLine], *, as_of: date, now: datetime, profiles=None
               ) -> tuple[list[m.Alert], dict[str, str]]:
    """Scan `page` (open lines) in the session: the alerts raised (recorded, on the audit trail) and the lines refused
    (line → why). Each enterprise's snapshots are read and hash-checked once (or `profiles` given: the refresh's pair)."""
    facts, snapshots = svc.page_facts(s, [line.id for line in page]), _snapshots_once(s)
    found: list[m.Alert] = []
    refused: dict[str, str] = {}
    with s.no_autoflush:  # the page's new alerts are written in one flush (`record_raised`)
        for line in page:
            try:  # a snapshot is checked before anything of the line is written
                pair = profiles or snapshots(line.enterprise_id)
                found += svc.scan_line(s, line, rt.bundle, as_of=as_of, now=now, actor=actor, profiles=pair, page=facts)
            except ProfileIntegrityError as exc:
                refused[str(line.id)] = str(exc)
    if found:
        svc.record_raised(s, found, actor, now)
        for alert in found:
            audit.note(s, actor, "alert.raise", "alert", alert.id, at=now, after=alert)
    return found, refused


def _scan_noted(s: Session, rt: Runtime, actor: Actor, lines: list[m.CreditLine], *, as_of: date, at: datetime, after_id: int, profiles=None
                ) -> tuple[list[m.Alert], dict[str, str]]:
    """`_scan_page`, and the scan of the page after `after_id` on the audit trail when it raised anything."""
    found, refused = _scan_page(s, rt, actor, lines, as_of=as_of, now=at, profiles=profiles)
    if found:
        audit.note(s, actor, "alerts.scan", "business_date", f"{as_of.isoformat()}#{after_id}", at=at)
    return found, refused


def _screen_page(s: Session, rt: Runtime, page: list[m.CreditLine], *, as_of: date) -> tuple[list[int], dict[str, str]]:
    """The lines of `page` the rules would raise a new alert on, by a read (`svc.would_raise`), and the lines refused
    (line → why): a page of a thousand lines costs up to a second of reading and evaluating, which the daily scan does
    without holding the store's writer — only the few lines found are scanned again in a write, under their locks."""
    facts, snapshots = svc.page_facts(s, [line.id for line in page]), _snapshots_once(s)
    candidates: list[int] = []
    refused: dict[str, str] = {}
    for line in page:
        try:
            if svc.would_raise(line, rt.bundle, as_of=as_of, profiles=snapshots(line.enterprise_id), page=facts):
                candidates.append(line.id)
        except ProfileIntegrityError as exc:
            refused[str(line.id)] = str(exc)
    return candidates, refused


def _scan_pages(rt: Runtime, actor: Actor, unit: Callable[[], AbstractContextManager[Session]], *, batch: int, enterprise_id: int | None = None,
                profiles=None, now: datetime | None = None, screen: Callable[[], AbstractContextManager[Session]] | None = None) -> ScanView:
    """Scan open lines (all, or one enterprise's) a page of `batch` at a time, each page in a `unit` of work (its own
    committed one, or the caller's), at `now` (default: the clock as each page starts). With `screen` (a read), each
    page is first screened in it (`_screen_page`) and only the lines found are scanned in a `unit`, if any."""
    as_of = rt.today()
    lines = raised = 0
    by_rule: Counter[str] = Counter()
    refused: dict[str, str] = {}
    ids: list[int] = []
    after_id = 0
    for _ in range(MAX_SCAN_BATCHES):
        at = now or rt.now()
        found: list[m.Alert] = []
        if screen is None:
            with unit() as s:
                page = svc.open_lines(s, enterprise_id=enterprise_id, after_id=after_id, limit=batch)
                found, refused_here = _scan_noted(s, rt, actor, page, as_of=as_of, at=at, after_id=after_id, profiles=profiles)
                page_ids = [line.id for line in page]
        else:
            with screen() as s:
                page = svc.open_lines(s, enterprise_id=enterprise_id, after_id=after_id, limit=batch)
                candidates, refused_here = _screen_page(s, rt, page, as_of=as_of)
                page_ids = [line.id for line in page]  # the read's objects expire when it ends
            if candidates:
                with unit() as s:  # read again in the write: still open, their snapshots and alerts as they are now (`scan_line`)
                    found, refused_scanning = _scan_noted(s, rt, actor, svc.open_lines(s, after_id=after_id, limit=batch, ids=candidates),
                                                          as_of=as_of, at=at, after_id=after_id, profiles=profiles)
                refused_here |= refused_scanning
        ids += [a.id for a in found][:MAX_SHOWN_IDS - len(ids)]
        refused |= refused_here
        by_rule.update(a.rule_id for a in found)
        lines += len(page_ids)
        raised += len(found)
        if len(page_ids) < batch:
            return ScanView(as_of=as_of, lines=lines, raised=raised, by_rule=dict(sorted(by_rule.items())), refused=refused, alert_ids=ids)
        after_id = page_ids[-1]
    raise RuntimeError(f"the early-warning scan did not finish in {MAX_SCAN_BATCHES} batches; run it again")


def scan(rt: Runtime, actor: Actor, *, batch: int = svc.MAX_SCAN_BATCH) -> ScanView:
    """Scan every open line as of the business date with the bundle's rules, comparing each enterprise's latest
    snapshot with the one before, a batch of lines at a time: each batch screened in a read, and the lines that would
    raise an alert scanned again, under their locks, in a committed unit of work; a line whose stored snapshot fails
    its hash check is reported and skipped, the rest go on."""
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= svc.MAX_SCAN_BATCH:
        raise InvalidInput("batch", f"got {show(batch)}", f"1..{svc.MAX_SCAN_BATCH} lines")
    return _scan_pages(rt, actor, rt.uow.write, batch=batch, screen=rt.uow.read)


def scan_after_refresh(s: Session, rt: Runtime, actor: Actor, *, enterprise_id: int, previous: ProfileSnapshot | None, profile: ProfileSnapshot,
                       now: datetime) -> ScanView:
    """In the refresh's own unit of work: compare the enterprise's previous snapshot with the refreshed one (both in
    hand, checked: not read again) on each of its open lines, a page of lines at a time."""
    profiles = (None if previous is None else svc.facts_of(previous), svc.facts_of(profile))
    return _scan_pages(rt, actor, lambda: nullcontext(s), batch=svc.MAX_SCAN_BATCH, enterprise_id=enterprise_id, profiles=profiles, now=now)


def list_alerts(rt: Runtime, actor: Actor, *, branch: str | None = None, status: str = "open", after_id: int = 0, limit: int = 50) -> AlertPage:
    """Alerts of the actor's sub-branch (officers and approvers; another sub-branch is refused, 403), oldest first."""
    scope = svc.alert_branch(actor, branch)
    with rt.uow.read() as s:
        rows, next_after = svc.alerts_page(s, branch=scope, status=status, after_id=after_id, limit=limit)
        return AlertPage(alerts=[alert_view(s, a) for a in rows], next_after_id=next_after)


def get_alert(rt: Runtime, alert_id: int) -> AlertView:
    with rt.uow.read() as s:
        return alert_view(s, svc.get_alert(s, alert_id), detail=True)


def _change(rt: Runtime, actor: Actor, action: str, alert_id: int, change) -> AlertView:
    now = rt.now()
    with rt.uow.write() as s:
        before = audit.state_sha256(svc.get_alert(s, alert_id))
        alert = change(s, now)
        audit.note(s, actor, f"alert.{action}", "alert", alert.id, at=now, before=before, after=alert)
        view = alert_view(s, alert, detail=True)
    return view


def acknowledge(rt: Runtime, actor: Actor, *, alert_id: int, note: str | None = None) -> AlertView:
    return _change(rt, actor, "acknowledge", alert_id, lambda s, now: svc.acknowledge(s, alert_id=alert_id, actor=actor, note=note, now=now))


def propose(rt: Runtime, actor: Actor, *, alert_id: int, action: str | None = None, limit_fen: int | None = None, note: str | None = None) -> AlertView:
    """An officer proposes the rule's action (or `action`) for the alert's line; it takes effect only once approved."""
    return _change(rt, actor, "propose", alert_id, lambda s, now: svc.propose(s, alert_id=alert_id, actor=actor, action=action, limit_fen=limit_fen,
                                                                              note=note, now=now, bundle=rt.bundle))


def approve(rt: Runtime, actor: Actor, *, alert_id: int, note: str | None = None) -> AlertView:
    """Another person, within their authority, approves: the line is frozen or its limit reduced now, on the trail."""

    def change(s: Session, now):
        line_before = audit.state_sha256(get_line(s, svc.get_alert(s, alert_id).line_id))
        alert, line = svc.approve(s, alert_id=alert_id, actor=actor, note=note, now=now, bundle=rt.bundle)
        if alert.proposed_action in svc.LINE_ACTION:
            audit.note(s, actor, f"line.{svc.LINE_ACTION[alert.proposed_action]}", "line", line.id, at=now, before=line_before, after=line)
        return alert

    return _change(rt, actor, "approve", alert_id, change)


def reject(rt: Runtime, actor: Actor, *, alert_id: int, note: str) -> AlertView:
    return _change(rt, actor, "reject", alert_id, lambda s, now: svc.reject(s, alert_id=alert_id, actor=actor, note=note, now=now))


def dismiss(rt: Runtime, actor: Actor, *, alert_id: int, note: str) -> AlertView:
    return _change(rt, actor, "dismiss", alert_id, lambda s, now: svc.dismiss(s, alert_id=alert_id, actor=actor, note=note, now=now))
