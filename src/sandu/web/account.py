"""The applicant's pages after the limit: sign (签约), the home screen per line, borrow (借款) and repay (还款) with a
confirmation that shows the amount in Chinese capitals (大写), statements and schedules, and a request for human review
of a decline (申请人工复核).

Thin like the API: each form is parsed, authorized by the same table (`sandu.security.authz`, by the API route's
name), and handed to one action that commits before it returns. Signing and borrowing need the password again
(the API's fresh-password rule): the form carries it, the login that checks it renews the session, and the
action runs as that fresh identity. A borrowing's idempotency key is made when its confirmation is shown, so a
form sent twice borrows once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sandu.domain.errors import InvalidInput, NotAuthenticated, SanduError
from sandu.domain.money import format_capital, wan_to_fen
from sandu.origination import actions
from sandu.security import actions as security
from sandu.servicing import actions as servicing
from sandu.web import session as web
from sandu.web.render import clip, lang_of, page, to_login

OUTCOME_TEXT = {
    "zh": {"approve": "已为您核定额度，可立即签约用款", "partial": "部分额度已先行核定，其余额度正在审批",
           "refer": "额度已测算，等待客户经理审批", "decline": "暂未能为您核定额度"},
    "en": {"approve": "Your limit is approved: sign and draw now", "partial": "Part of your limit is approved now, the rest is with an officer",
           "refer": "Your limit is measured and waits for an officer's approval", "decline": "We cannot grant a limit now"},
}

router = APIRouter(include_in_schema=False)
MAX_DRAWINGS_SHOWN = 50
STATEMENT_DAYS = 366  # a statement page covers at most the last year of the line


def _session(request: Request, route: str) -> web.WebSession | None:
    return web.current(request.app.state.rt, request, route)


def _fresh(request: Request, sess: web.WebSession, password: str, route: str) -> tuple[Any, Any]:
    """The same person, with the password given just now: (fresh actor, the renewed tokens)."""
    rt = request.app.state.rt
    if not password:
        raise InvalidInput("password", "must not be empty", "your login password")
    try:
        tokens = security.login(rt, username=sess.actor.username, password=password[:200])
    except NotAuthenticated:
        raise InvalidInput("password", "is not your login password", "your login password") from None
    return security.authenticate(rt, route, tokens.access_token), tokens


def _redirect(request: Request, url: str, sess: web.WebSession, tokens: Any = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if tokens is not None:
        web.set_session(response, request, tokens, sess.csrf)
    elif sess.renewed is not None:
        web.set_session(response, request, sess.renewed, sess.csrf)
    return response


def _error_page(request: Request, exc: SanduError, sess: web.WebSession | None = None) -> HTMLResponse:
    return page(request, "error.html", {"error": exc}, exc.http_status, sess)


def _posted(request: Request, route: str, csrf: str) -> tuple[web.WebSession | None, Response | None]:
    """The session of a form posted for `route` (logged in, same origin, its CSRF token): (session, None), or (None, the
    page to answer instead)."""
    try:
        sess = _session(request, route)
        if sess is None:
            return None, to_login(request)
        web.check_form(request, sess, csrf)
    except NotAuthenticated:
        return None, to_login(request)
    except SanduError as exc:
        return None, _error_page(request, exc)
    return sess, None


@router.get("/app/home", response_class=HTMLResponse)
def home(request: Request) -> Response:
    try:
        sess = _session(request, "web.apply")
    except SanduError as exc:
        return _error_page(request, exc)
    if sess is None:
        return to_login(request)
    return page(request, "home.html", {"credit": actions.my_credit(request.app.state.rt, sess.actor)}, sess=sess)


@router.post("/app/decisions/{decision_id}/sign", response_class=HTMLResponse)
def sign(request: Request, decision_id: str, product: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
         csrf: Annotated[str, Form()] = "") -> Response:
    rt = request.app.state.rt
    decision_id = clip(decision_id)
    sess, answer = _posted(request, "decisions.accept", csrf)
    if sess is None:
        return answer
    try:
        actor, tokens = _fresh(request, sess, password, "decisions.accept")
        security.admit(rt, "decisions.accept", actor, decision_id)
        line = actions.accept_offer(rt, actor, decision_id=decision_id, product=clip(product))
    except SanduError as exc:
        return decision_page_for(request, sess, decision_id, sign_error=exc, status=exc.http_status)
    return _redirect(request, f"/app/lines/{line.id}?signed=1", sess, tokens)


def _line_context(request: Request, sess: web.WebSession, line_id: int) -> dict[str, Any]:
    rt = request.app.state.rt
    security.admit(rt, "lines.get", sess.actor, line_id)
    line = servicing.get_line(rt, line_id)
    start = max(line.opened_on, rt.today() - timedelta(days=STATEMENT_DAYS - 1))
    statement = servicing.statement(rt, line_id, start=start, end=rt.today())
    drawings = servicing.drawings(rt, line_id, limit=MAX_DRAWINGS_SHOWN).drawings
    return {"line": line, "statement": statement, "drawings": drawings}


def _line_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("line_id", f"is not a line number, got {raw[:20]!r}", "a line number")
    return int(raw)


@router.get("/app/lines/{line_id}", response_class=HTMLResponse)
def line_page(request: Request, line_id: str, signed: str = "", done: str = "") -> Response:
    try:
        sess = _session(request, "lines.get")
        if sess is None:
            return to_login(request)
        context = _line_context(request, sess, _line_id(clip(line_id)))
    except NotAuthenticated:
        return to_login(request)
    except SanduError as exc:
        return _error_page(request, exc)
    return page(request, "line.html", {**context, "signed": signed == "1", "done": clip(done)}, sess=sess)


def _movement_form(request: Request, line_id: str, kind: str, amount_wan: str, csrf: str) -> Response:
    """Step 1 of 借款 / 还款: check the amount, then show it in capitals for the applicant to confirm."""
    route = "lines.draw" if kind == "draw" else "lines.repay"
    sess, answer = _posted(request, route, csrf)
    if sess is None:
        return answer
    try:
        number = _line_id(clip(line_id))
        context = _line_context(request, sess, number)
    except SanduError as exc:
        return _error_page(request, exc, sess)
    values = {"amount_wan": clip(amount_wan)}
    try:
        amount_fen = wan_to_fen(values["amount_wan"], field="amount_wan") if values["amount_wan"] else None
        if amount_fen is None or amount_fen <= 0:
            raise InvalidInput("amount_wan", "must be greater than 0", "an amount in 万元 greater than 0")
        if kind == "draw" and amount_fen > context["line"].available_fen:
            raise InvalidInput("amount_wan", f"exceeds the available limit of {context['line'].available_fen} fen", "at most the available limit")
    except SanduError as exc:
        return page(request, "line.html", {**context, "error": exc, "error_form": kind, "values": values}, exc.http_status, sess)
    return page(request, "confirm.html", {**context, "kind": kind, "amount_fen": amount_fen, "capital": format_capital(amount_fen),
                                          "key": secrets.token_urlsafe(16)}, sess=sess)


@router.post("/app/lines/{line_id}/draw/confirm", response_class=HTMLResponse)
def draw_confirm(request: Request, line_id: str, amount_wan: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    return _movement_form(request, line_id, "draw", amount_wan, csrf)


@router.post("/app/lines/{line_id}/repay/confirm", response_class=HTMLResponse)
def repay_confirm(request: Request, line_id: str, amount_wan: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    return _movement_form(request, line_id, "repay", amount_wan, csrf)


def _movement(request: Request, line_id: str, kind: str, amount_fen: str, key: str, password: str, csrf: str) -> Response:
    """Step 2: the confirmed amount moves (the password again for a drawing); back to the line, updated."""
    rt = request.app.state.rt
    route = "lines.draw" if kind == "draw" else "lines.repay"
    sess, answer = _posted(request, route, csrf)
    if sess is None:
        return answer
    try:
        number = _line_id(clip(line_id))
        if not amount_fen.isdigit() or len(amount_fen) > 18:
            raise InvalidInput("amount_fen", "is not an amount in fen", "the confirmed amount")
    except SanduError as exc:
        return _error_page(request, exc, sess)
    tokens = None
    try:
        actor = sess.actor
        if kind == "draw":
            actor, tokens = _fresh(request, sess, password, route)
        security.admit(rt, route, actor, number)
        move = servicing.draw if kind == "draw" else servicing.repay
        move(rt, actor, line_id=number, amount_fen=int(amount_fen), idempotency_key=clip(key)[:64])
    except SanduError as exc:
        context = _line_context(request, sess, number)
        return page(request, "confirm.html", {**context, "kind": kind, "amount_fen": int(amount_fen), "capital": format_capital(int(amount_fen)),
                                              "key": clip(key)[:64], "error": exc}, exc.http_status, sess)
    return _redirect(request, f"/app/lines/{number}?done={kind}", sess, tokens)


@router.post("/app/lines/{line_id}/draw", response_class=HTMLResponse)
def draw(request: Request, line_id: str, amount_fen: Annotated[str, Form()] = "", key: Annotated[str, Form()] = "",
         password: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    return _movement(request, line_id, "draw", clip(amount_fen), key, password, csrf)


@router.post("/app/lines/{line_id}/repay", response_class=HTMLResponse)
def repay(request: Request, line_id: str, amount_fen: Annotated[str, Form()] = "", key: Annotated[str, Form()] = "",
          csrf: Annotated[str, Form()] = "") -> Response:
    return _movement(request, line_id, "repay", clip(amount_fen), key, "", csrf)


@router.post("/app/decisions/{decision_id}/human-review", response_class=HTMLResponse)
def human_review(request: Request, decision_id: str, reason: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    rt = request.app.state.rt
    decision_id = clip(decision_id)
    sess, answer = _posted(request, "decisions.human_review.request", csrf)
    if sess is None:
        return answer
    try:
        security.admit(rt, "decisions.human_review.request", sess.actor, decision_id)
        actions.request_human_review(rt, sess.actor, decision_id=decision_id, reason=reason[:1001])
    except SanduError as exc:
        return decision_page_for(request, sess, decision_id, review_error=exc, review_reason=clip(reason), status=exc.http_status)
    return _redirect(request, f"/app/decisions/{decision_id}", sess)


def decision_page_for(request: Request, sess: web.WebSession, decision_id: str, *, sign_error: SanduError | None = None,
                      review_error: SanduError | None = None, review_reason: str = "", status: int = 200) -> Response:
    """A decision as its applicant sees it: the limit, each offer with 年化利率 and, where approved, a form to sign it
    (签约, with the password); for a decline, the request for human review (申请人工复核) and its status."""
    rt = request.app.state.rt
    try:
        d = actions.get_decision(rt, decision_id)
        application = actions.get_application(rt, d.application_id) if d.application_id is not None else None
    except SanduError as exc:
        return page(request, "error.html", {"error": exc}, exc.http_status)
    error = sign_error or review_error
    return page(request, "decision.html", {"d": d, "outcome_text": OUTCOME_TEXT[lang_of(request)][d.outcome], "application": application, "error": error,
                                           "error_form": "sign" if sign_error else "review" if review_error else None,
                                           "review_reason": review_reason, "lang_now": lang_of(request)}, status, sess)
