"""What a user can do in servicing, each in its own unit of work (see
`sandu.origination.actions`): views are returned only after their commit, and every
change is on the audit trail in the same transaction."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date

from sandu.audit import service as audit
from sandu.origination import workflow
from sandu.runtime import Runtime
from sandu.security.actor import Actor
from sandu.servicing import eod, statements
from sandu.servicing import service as svc
from sandu.servicing.calendar import calendar_row
from sandu.servicing.close import ClassRules, CloseStats, class_rules
from sandu.servicing.statements import Statement
from sandu.servicing.views import (
    ClassifyView,
    DrawingPage,
    DrawingView,
    DrawView,
    EodDayView,
    EodView,
    JournalPage,
    LineView,
    PrepayView,
    RepayView,
)


def _rules(rt: Runtime) -> ClassRules:
    return class_rules(rt.bundle.classification)


def get_line(rt: Runtime, line_id: int) -> LineView:
    with rt.uow.read() as s:
        return svc.line_view(s, line_id, rt.today())


def get_drawing(rt: Runtime, line_id: int, drawing_id: int) -> DrawingView:
    with rt.uow.read() as s:
        svc.get_drawing(s, drawing_id, line_id=line_id)
        return svc.drawing_view(s, drawing_id)


def drawings(rt: Runtime, line_id: int, *, after_id: int = 0, limit: int = 100) -> DrawingPage:
    with rt.uow.read() as s:
        page, next_after = svc.drawings_of(s, line_id, after_id=after_id, limit=limit)
        return DrawingPage(drawings=page, next_after_id=next_after)


def statement(rt: Runtime, line_id: int, *, start: date, end: date, drawing_id: int | None = None) -> Statement:
    with rt.uow.read() as s:
        return statements.statement(s, line_id=line_id, start=start, end=end, drawing_id=drawing_id)


def _committed(rt: Runtime, entries: list[str]) -> None:
    rt.metrics.ledger_entries(entries)


def draw(rt: Runtime, actor: Actor, *, line_id: int, amount_fen: int, idempotency_key: str, on_date: date | None = None) -> DrawView:
    """Borrow: a drawing (借据) with its own term, rate and repayment method; repeating a request with its
    idempotency key returns the first result."""
    now = rt.now()
    with rt.uow.write() as s:
        r = svc.draw(s, line_id=line_id, amount_fen=amount_fen, on_date=on_date, idempotency_key=idempotency_key, now=now, rules=_rules(rt),
                     drawn_by=actor.user_id)
        d = r.drawing
        if not r.replayed:
            audit.note(s, actor, "line.draw", "drawing", d.id, at=now, after=d)
        view = DrawView(drawing_id=d.id, line_id=d.line_id, amount_fen=d.amount_fen, drawn_on=d.drawn_on, maturity_on=d.maturity_on,
                        repayment_method=d.repayment_method, rate_annual=str(d.rate_annual), replayed=r.replayed)
        entries = list(s.info.get(svc.ENTRIES_KEY, []))
    _committed(rt, entries)
    return view


def repay(rt: Runtime, actor: Actor, *, line_id: int, amount_fen: int, idempotency_key: str, on_date: date | None = None) -> RepayView:
    """Repay what is due on a line, in the product's allocation order."""
    now = rt.now()
    with rt.uow.write() as s:
        before = audit.state_sha256(svc.get_line(s, line_id))
        r = svc.repay(s, line_id=line_id, amount_fen=amount_fen, on_date=on_date, idempotency_key=idempotency_key, now=now, rules=_rules(rt))
        if not r.replayed:
            audit.note(s, actor, "line.repay", "line", line_id, at=now, before=before, after=svc.get_line(s, line_id))
        view = RepayView(line_id=line_id, allocations=r.allocations, by_drawing=r.by_drawing, interest_settled_fen=r.interest_settled_fen,
                         replayed=r.replayed)
        entries = list(s.info.get(svc.ENTRIES_KEY, []))
    _committed(rt, entries)
    return view


def prepay(rt: Runtime, actor: Actor, *, line_id: int, drawing_id: int, principal_fen: int, idempotency_key: str, on_date: date | None = None) -> PrepayView:
    """Prepay principal of a scheduled drawing; its schedule is re-computed."""
    now = rt.now()
    with rt.uow.write() as s:
        svc.get_drawing(s, drawing_id, line_id=line_id)
        r = svc.prepay(s, drawing_id=drawing_id, principal_fen=principal_fen, on_date=on_date, idempotency_key=idempotency_key, now=now,
                       rules=_rules(rt))
        if not r.replayed:
            audit.note(s, actor, "drawing.prepay", "drawing", drawing_id, at=now, after=r.drawing)
        view = PrepayView(drawing_id=drawing_id, principal_fen=r.principal_fen, interest_fen=r.interest_fen, schedule_version=r.schedule_version,
                          replayed=r.replayed)
        entries = list(s.info.get(svc.ENTRIES_KEY, []))
    _committed(rt, entries)
    return view


def classify(rt: Runtime, actor: Actor, *, line_id: int, drawing_id: int, risk_class: str, note: str) -> ClassifyView:
    """An officer's five-category classification of a drawing: worse than the rules, never better."""
    now = rt.now()
    with rt.uow.write() as s:
        before = audit.state_sha256(svc.get_drawing(s, drawing_id, line_id=line_id))
        d = svc.classify(s, drawing_id=drawing_id, risk_class=risk_class, note=note, on=rt.today(), by_user=actor.user_id, rules=_rules(rt))
        audit.note(s, actor, "drawing.classify", "drawing", d.id, at=now, before=before, after=d)
        view = ClassifyView(drawing_id=d.id, risk_class=d.risk_class, officer_class=d.officer_class)
    return view


def journal(rt: Runtime, line_id: int, *, after_id: int = 0, limit: int = 100) -> JournalPage:
    with rt.uow.read() as s:
        return svc.journal_page(s, line_id, after_id=after_id, limit=limit)


def ledger_check(rt: Runtime) -> svc.LedgerCheck:
    with rt.uow.read() as s:
        return svc.ledger_check(s)


EodProgress = Callable[[date, int, int], None]  # (date, lines closed so far, lines to close)


def end_of_day(rt: Runtime, actor: Actor, business_date: date, progress: EodProgress | None = None) -> EodView:
    """Close every date after the last one closed through `business_date`, in order; each date in batches of
    lines, one transaction each, resumable from its checkpoint (`servicing.eod`)."""
    started = time.perf_counter()
    owner = eod.new_owner()
    limit, rules = rt.settings.eod_batch_lines, _rules(rt)
    with rt.uow.read() as s:
        dates = eod.plan(s, business_date, rt.now(), simulated=rt.settings.clock == "simulated")
    days: list[EodDayView] = []
    for day in dates:
        with rt.uow.write() as s:
            p = eod.begin(s, day, owner, rt.now())
        if p.done:
            continue
        stats, batches, done = CloseStats(), 0, False
        max_batches = math.ceil(p.lines_left / limit) + 10  # lines opened meanwhile are few: a run that keeps going is reported
        while not done:
            if batches >= max_batches:
                raise RuntimeError(f"end of day for {day} did not finish in {max_batches} batches; run it again to resume")
            now = rt.now()
            with rt.uow.write() as s:
                b = eod.batch(s, day, owner, now, rules, limit)
                if b is None:  # every line after the checkpoint is closed: close the date
                    b, done = eod.finish(s, day, owner, now, rules, limit)
                audit.note(s, actor, "eod.close" if done else "eod.batch", "business_date", f"{day.isoformat()}#{batches}", at=now)
                entries = list(s.info.get(svc.ENTRIES_KEY, []))
            _committed(rt, entries)
            batches += 1
            stats.add(b)
            if progress:
                progress(day, stats.lines, max(p.lines_left, stats.lines))
        rt.metrics.eod_lines.inc(stats.lines)
        days.append(EodDayView(business_date=day, lines=stats.lines, batches=batches, drawings_accrued=stats.drawings_accrued,
                               charged_fen=stats.charged_fen, overdue_fen=stats.overdue_fen, raised_fen=stats.raised_fen,
                               reclassified=stats.reclassified, repaid=stats.repaid, expired=stats.expired, resumed=p.resumed))
        if progress:
            progress(day, stats.lines, stats.lines)
    with rt.uow.read() as s:
        last = calendar_row(s).last_closed_on
    expired = 0 if last is None else expire_applications(rt, actor, last)
    rt.metrics.eod_seconds.observe(time.perf_counter() - started)
    return EodView(business_date=business_date, days=days, last_closed_on=last, applications_expired=expired)


MAX_EXPIRY_BATCHES = 10_000  # ten million applications a run; more is reported, never silently left


def expire_applications(rt: Runtime, actor: Actor, through: date) -> int:
    """Expire the applications whose decision could be signed through `through` at the latest and was not
    (`workflow.expire_due`), a batch per transaction; how many."""
    total = 0
    for _ in range(MAX_EXPIRY_BATCHES):
        now = rt.now()
        with rt.uow.write() as s:
            n = workflow.expire_due(s, through=through, actor=actor, now=now, limit=workflow.EXPIRY_BATCH)
            if n:
                audit.note(s, actor, "applications.expire", "business_date", f"{through.isoformat()}#{total}", at=now)
        total += n
        if n < workflow.EXPIRY_BATCH:
            return total
    raise RuntimeError(f"expiring applications through {through} did not finish in {MAX_EXPIRY_BATCHES} batches; run end of day again")


def _line_change(rt: Runtime, actor: Actor, action: str, line_id: int, change) -> LineView:
    now, today = rt.now(), rt.today()
    with rt.uow.write() as s:
        before = audit.state_sha256(svc.get_line(s, line_id))
        line = change(s)
        audit.note(s, actor, f"line.{action}", "line", line.id, at=now, before=before, after=line)
        view = svc.line_view(s, line.id, today)
    return view


def freeze(rt: Runtime, actor: Actor, *, line_id: int) -> LineView:
    """Block drawing on a line (repaying stays allowed)."""
    return _line_change(rt, actor, "freeze", line_id, lambda s: svc.freeze_line(s, line_id=line_id))


def unfreeze(rt: Runtime, actor: Actor, *, line_id: int) -> LineView:
    return _line_change(rt, actor, "unfreeze", line_id, lambda s: svc.unfreeze_line(s, line_id=line_id))


def reduce_limit(rt: Runtime, actor: Actor, *, line_id: int, limit_fen: int) -> LineView:
    """Lower a line's limit, never below what is drawn on it."""
    return _line_change(rt, actor, "reduce", line_id, lambda s: svc.reduce_limit(s, line_id=line_id, limit_fen=limit_fen))


def renew(rt: Runtime, actor: Actor, *, line_id: int) -> LineView:
    """Renew a line into a new term, within the enterprise's decision in force."""
    return _line_change(rt, actor, "renew", line_id, lambda s: svc.renew_line(s, line_id=line_id, today=rt.today()))


def close(rt: Runtime, actor: Actor, *, line_id: int) -> LineView:
    """Close a line on which nothing is owed."""
    return _line_change(rt, actor, "close", line_id, lambda s: svc.close_line(s, line_id=line_id))
