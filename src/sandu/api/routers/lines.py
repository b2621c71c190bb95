"""Credit lines: read, draw, repay (随借随还), the journal."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsLineActor, LineIdPath, errors
from sandu.api.routing import SanduRoute
from sandu.servicing import actions
from sandu.servicing.views import DrawView, JournalPage, LineView, RepayView

router = APIRouter(prefix="/lines", tags=["servicing"], route_class=SanduRoute)


@router.get("/{line_id}", name="lines.get", response_model=LineView, responses=errors(404))
def get_line(line_id: LineIdPath, actor: AsLineActor, rt: RT) -> LineView:
    return actions.get_line(rt, line_id)


@router.post("/{line_id}/draws", name="lines.draw", status_code=201, response_model=DrawView, responses=errors(404, 409, 429, 503))
def draw(line_id: LineIdPath, body: s.MovementIn, actor: AsLineActor, rt: RT) -> DrawView:
    """Borrow any time (随借随还), with a password given in the last minutes.
    Repeating a request with the same idempotency key returns the first result."""
    return actions.draw(rt, actor, line_id=line_id, amount_fen=body.amount_fen, idempotency_key=body.idempotency_key, on_date=body.on_date)


@router.post("/{line_id}/repayments", name="lines.repay", status_code=201, response_model=RepayView, responses=errors(404, 409, 429, 503))
def repay(line_id: LineIdPath, body: s.MovementIn, actor: AsLineActor, rt: RT) -> RepayView:
    """Repay any time: interest accrued to yesterday first, then principal."""
    return actions.repay(rt, actor, line_id=line_id, amount_fen=body.amount_fen, idempotency_key=body.idempotency_key, on_date=body.on_date)


@router.get("/{line_id}/journal", name="lines.journal", response_model=JournalPage, responses=errors(404))
def journal(line_id: LineIdPath, actor: AsLineActor, rt: RT, after_id: s.JournalAfterId = 0, limit: s.JournalLimit = 100) -> JournalPage:
    """The line's journal entries, oldest first, a page at a time."""
    return actions.journal(rt, line_id, after_id=after_id, limit=limit)


@router.post("/{line_id}/freeze", name="lines.freeze", response_model=LineView, responses=errors(404, 409, 503))
def freeze(line_id: LineIdPath, actor: AsLineActor, rt: RT) -> LineView:
    """Block drawing on a line (an early-warning signal, a dispute); repaying stays allowed."""
    return actions.freeze(rt, actor, line_id=line_id)


@router.post("/{line_id}/unfreeze", name="lines.unfreeze", response_model=LineView, responses=errors(404, 409, 503))
def unfreeze(line_id: LineIdPath, actor: AsLineActor, rt: RT) -> LineView:
    return actions.unfreeze(rt, actor, line_id=line_id)


@router.post("/{line_id}/reduce", name="lines.reduce", response_model=LineView, responses=errors(404, 409, 503))
def reduce_limit(line_id: LineIdPath, body: s.ReduceIn, actor: AsLineActor, rt: RT) -> LineView:
    """Lower the line's limit, never below what is drawn on it."""
    return actions.reduce_limit(rt, actor, line_id=line_id, limit_fen=body.limit_fen)


@router.post("/{line_id}/renew", name="lines.renew", response_model=LineView, responses=errors(404, 409, 503))
def renew(line_id: LineIdPath, actor: AsLineActor, rt: RT) -> LineView:
    """Renew the line into a new term of its product, within the enterprise's decision in force."""
    return actions.renew(rt, actor, line_id=line_id)


@router.post("/{line_id}/close", name="lines.close", response_model=LineView, responses=errors(404, 409, 503))
def close(line_id: LineIdPath, actor: AsLineActor, rt: RT) -> LineView:
    """Close a line on which nothing is owed."""
    return actions.close(rt, actor, line_id=line_id)
