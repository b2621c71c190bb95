"""Credit lines and their drawings (借据): read, draw, repay, prepay, classify, the journal, statements."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsLineActor, LineIdPath, errors
from sandu.api.routing import SanduRoute, run_action, runs_on_loop
from sandu.servicing import actions
from sandu.servicing.statements import Statement
from sandu.servicing.views import ClassifyView, DrawingPage, DrawingView, DrawView, JournalPage, LineView, PrepayView, RepayView

router = APIRouter(prefix="/lines", tags=["servicing"], route_class=SanduRoute)


@router.get("/{line_id}", name="lines.get", response_model=LineView, responses=errors(404))
def get_line(line_id: LineIdPath, actor: AsLineActor, rt: RT) -> LineView:
    return actions.get_line(rt, line_id)


@router.post("/{line_id}/draws", name="lines.draw", status_code=201, response_model=DrawView, responses=errors(404, 409, 429, 503))
async def draw(line_id: LineIdPath, body: s.MovementIn, actor: AsLineActor, rt: RT) -> DrawView:
    """Borrow: a drawing (借据) with its own term, the line's rate and repayment method, with a password given in the
    last minutes. Repeating a request with the same idempotency key returns the first result."""
    return await run_action(actions.draw, rt, actor, line_id=line_id, amount_fen=body.amount_fen, idempotency_key=body.idempotency_key,
                            on_date=body.on_date, on_loop=runs_on_loop(rt))


@router.post("/{line_id}/repayments", name="lines.repay", status_code=201, response_model=RepayView, responses=errors(404, 409, 429, 503))
def repay(line_id: LineIdPath, body: s.MovementIn, actor: AsLineActor, rt: RT) -> RepayView:
    """Repay what is due across the line's drawings, in the product's allocation order (penalty and compound →
    overdue interest → overdue principal → interest → principal); a 随借随还 drawing's principal any time. Interest
    not yet settled is not due (unless the product is 利随本清)."""
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


@router.get("/{line_id}/drawings", name="lines.drawings", response_model=DrawingPage, responses=errors(404))
def drawings(line_id: LineIdPath, actor: AsLineActor, rt: RT, after_id: s.JournalAfterId = 0, limit: s.JournalLimit = 100) -> DrawingPage:
    """The line's drawings, oldest first, with balances, class, schedule and unpaid dues."""
    return actions.drawings(rt, line_id, after_id=after_id, limit=limit)


@router.get("/{line_id}/drawings/{drawing_id}", name="lines.drawing", response_model=DrawingView, responses=errors(404))
def drawing(line_id: LineIdPath, drawing_id: s.DrawingIdPath, actor: AsLineActor, rt: RT) -> DrawingView:
    return actions.get_drawing(rt, line_id, drawing_id)


@router.post("/{line_id}/drawings/{drawing_id}/prepayments", name="lines.prepay", status_code=201, response_model=PrepayView,
             responses=errors(404, 409, 429, 503))
def prepay(line_id: LineIdPath, drawing_id: s.DrawingIdPath, body: s.PrepayIn, actor: AsLineActor, rt: RT) -> PrepayView:
    """Prepay principal of a scheduled drawing not yet due, with its interest for the current period; the
    schedule is re-computed on what is left, keeping its due dates."""
    return actions.prepay(rt, actor, line_id=line_id, drawing_id=drawing_id, principal_fen=body.principal_fen,
                          idempotency_key=body.idempotency_key, on_date=body.on_date)


@router.post("/{line_id}/drawings/{drawing_id}/classification", name="lines.classify", response_model=ClassifyView,
             responses=errors(404, 409, 503))
def classify(line_id: LineIdPath, drawing_id: s.DrawingIdPath, body: s.ClassifyIn, actor: AsLineActor, rt: RT) -> ClassifyView:
    """五级分类 by an officer: worse than the rules classify the drawing, never better; kept in its history."""
    return actions.classify(rt, actor, line_id=line_id, drawing_id=drawing_id, risk_class=body.risk_class, note=body.note)


@router.get("/{line_id}/statement", name="lines.statement", response_model=Statement, responses=errors(404))
def statement(line_id: LineIdPath, actor: AsLineActor, rt: RT, start: s.StatementFrom, end: s.StatementTo,
              drawing_id: s.DrawingIdQuery = None) -> Statement:
    """The line's (or one drawing's) statement for a period: opening balances, every movement, interest by kind,
    closing balances, what falls due next."""
    return actions.statement(rt, line_id, start=start, end=end, drawing_id=drawing_id)
