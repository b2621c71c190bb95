"""What a user can do in servicing, each in its own unit of work (see
`sandu.origination.actions`): views are returned only after their commit, and every
change is on the audit trail in the same transaction."""

from __future__ import annotations

import math
import time
from datetime import date

from sandu.audit import service as audit
from sandu.domain.dates import require_not_future
from sandu.runtime import Runtime
from sandu.security.actor import Actor
from sandu.servicing import service as svc
from sandu.servicing.views import DrawView, EodView, JournalPage, LineView, RepayView


def get_line(rt: Runtime, line_id: int) -> LineView:
    with rt.uow.read() as s:
        return svc.line_view(s, line_id, rt.today())


def draw(rt: Runtime, actor: Actor, *, line_id: int, amount_fen: int, idempotency_key: str, on_date: date | None = None) -> DrawView:
    """Borrow any time (随借随还); repeating a request with its idempotency key returns the first result."""
    now = rt.now()
    with rt.uow.write() as s:
        r = svc.draw(s, line_id=line_id, amount_fen=amount_fen, on_date=on_date, idempotency_key=idempotency_key, now=now, drawn_by=actor.user_id)
        d = r.drawing
        if not r.replayed:
            audit.note(s, actor, "line.draw", "drawing", d.id, at=now, after=d)
        view = DrawView(drawing_id=d.id, line_id=d.line_id, amount_fen=d.amount_fen, drawn_on=d.drawn_on, maturity_on=d.maturity_on, replayed=r.replayed)
        entries = list(s.info.get(svc.ENTRIES_KEY, []))
    rt.metrics.ledger_entries(entries)
    return view


def repay(rt: Runtime, actor: Actor, *, line_id: int, amount_fen: int, idempotency_key: str, on_date: date | None = None) -> RepayView:
    """Repay any time: interest accrued to yesterday first, then principal."""
    now = rt.now()
    with rt.uow.write() as s:
        before = audit.state_sha256(svc.get_line(s, line_id))
        r = svc.repay(s, line_id=line_id, amount_fen=amount_fen, on_date=on_date, idempotency_key=idempotency_key, now=now)
        if not r.replayed:
            audit.note(s, actor, "line.repay", "line", line_id, at=now, before=before, after=svc.get_line(s, line_id))
        view = RepayView(line_id=line_id, allocations=r.allocations, interest_posted_fen=r.interest_posted_fen, replayed=r.replayed)
        entries = list(s.info.get(svc.ENTRIES_KEY, []))
    rt.metrics.ledger_entries(entries)
    return view


def journal(rt: Runtime, line_id: int, *, after_id: int = 0, limit: int = 100) -> JournalPage:
    with rt.uow.read() as s:
        return svc.journal_page(s, line_id, after_id=after_id, limit=limit)


def end_of_day(rt: Runtime, actor: Actor, business_date: date) -> EodView:
    """End of day for `business_date`, a batch of lines per transaction (so that draws
    and repayments are not held up for the whole run). Runs until every due line is
    done; the number of batches is bounded by what was due at the start (plus one for
    lines opened meanwhile), and anything left then is reported, never dropped silently."""
    require_not_future(business_date, rt.now(), "business_date")
    started = time.perf_counter()
    batch = rt.settings.eod_batch_lines
    with rt.uow.read() as s:
        due = svc.lines_due_for_eod(s, business_date)
    max_batches = math.ceil(due / batch) + 1
    lines = days = posted = batches = 0
    after = 0
    while batches < max_batches:
        now = rt.now()
        with rt.uow.write() as s:
            b = svc.run_eod(s, business_date=business_date, now=now, after_line_id=after, limit=batch)
            if b.lines:
                audit.note(s, actor, "eod.batch", "business_date", f"{business_date.isoformat()}#{after}-{b.last_line_id}", at=now)
            entries = list(s.info.get(svc.ENTRIES_KEY, []))
        rt.metrics.ledger_entries(entries)
        batches += 1
        lines, days, posted = lines + b.lines, days + b.days_accrued, posted + b.interest_posted_fen
        if b.last_line_id == 0:
            break
        after = b.last_line_id
    with rt.uow.read() as s:
        remaining = svc.lines_due_for_eod(s, business_date, after_line_id=after)  # every line up to `after` was visited
    rt.metrics.eod_seconds.observe(time.perf_counter() - started)
    rt.metrics.eod_lines.inc(lines)
    return EodView(business_date=business_date, lines=lines, days_accrued=days, interest_posted_fen=posted, batches=batches, remaining_lines=remaining)


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
