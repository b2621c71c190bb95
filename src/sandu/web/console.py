"""The staff console (/console): desktop pages in Simplified Chinese for officers, approvers, risk, admins and auditors.

Thin like the API: each handler parses its form, authorizes through `sandu.security` exactly as the API route it
stands for does (the staff-only `web.console` rule to enter, then `security.admit` with that route's name and object:
`referrals.list`, `decisions.review`, `decisions.approve`, `applications.decline`, `lines.freeze` …), calls the one
action that route calls with the logged-in person as the actor, and renders its view. Maker-checker, authority and
reach are the services' and the table's: a refusal is shown next to the action with the rule that refused it.

The session is the API's identity in HttpOnly, SameSite=Strict cookies scoped to /console (`sandu.web.session`
reads and checks them; only the cookie path differs from the applicant's /app). Every form carries the CSRF token.
Handlers are plain `def` functions (database work on a worker thread). Every script and style is served by sandu.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sandu.domain.errors import InvalidInput, NotAuthenticated, SanduError, show
from sandu.domain.money import format_cn, format_rate_pct, format_yuan, wan_to_fen
from sandu.origination import actions
from sandu.origination.views import ApplicationView, DecisionView, ReferralView, WhatIfView
from sandu.security import actions as security
from sandu.security.actor import Actor
from sandu.security.authz import rule_for
from sandu.security.views import TokenView
from sandu.servicing import actions as servicing
from sandu.servicing import alert_actions as alerts
from sandu.web import console_text as zh
from sandu.web import session as web

PATH = "/console"
ENTER = "web.console"  # the rule every console page needs first: staff only
QUEUE_PAGE = 50  # referrals per page
MAX_SHOWN_MOVEMENTS = 200  # statement movements on one page (more: the page says so, and a shorter period shows them)
MAX_SHOWN_CHANGES = 200  # outcome changes a what-if lists
MAX_FORM_TEXT = 2000  # characters kept of a free-text form value (the services allow 1,000: a longer one is refused by them, not cut)
MAX_POLICY_UPLOAD = actions.MAX_POLICY_BYTES
BEIJING = timezone(timedelta(hours=8))

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix=PATH, include_in_schema=False)


def _local(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _pct(rate: object) -> str:
    return "—" if rate is None else format_rate_pct(Decimal(str(rate)))


templates.env.filters.update(cn=format_cn, yuan=format_yuan, pct=_pct, local=_local)
templates.env.globals.update(zh=zh)


# --- the session ------------------------------------------------------------------------------------------------


def _set_session(response: Response, request: Request, tokens: TokenView, csrf: str | None = None) -> str:
    """The API's tokens in cookies scoped to /console (the same cookies as `web.set_session`, another path)."""
    secure = request.url.scheme == "https"
    csrf = csrf or secrets.token_urlsafe(24)
    for name, value, age in ((web.ACCESS, tokens.access_token, tokens.expires_in), (web.REFRESH, tokens.refresh_token, tokens.refresh_expires_in),
                             (web.CSRF, csrf, tokens.refresh_expires_in)):
        response.set_cookie(name, value, max_age=age, path=PATH, httponly=True, samesite="strict", secure=secure)
    return csrf


def _clear_session(response: Response) -> None:
    for name in (web.ACCESS, web.REFRESH, web.CSRF):
        response.delete_cookie(name, path=PATH)


def _staff(request: Request) -> web.WebSession | None:
    """The logged-in staff member (None: logged out); an applicant is refused by the table (`web.console`)."""
    return web.current(request.app.state.rt, request, ENTER)


def _reach(request: Request, check: Callable[[web.WebSession], Any]) -> tuple[web.WebSession, Any] | Response:
    """Every staff page's prologue: the session (the login page without one), then `check(session)` — the admission to
    what the page shows or acts on — giving (session, its result); a refusal on the way is its error page."""
    sess = None
    try:
        sess = _staff(request)
        if sess is None:
            return _redirect(f"{PATH}/login")
        return sess, check(sess)
    except SanduError as exc:
        return _error(request, exc, sess)


def _signed_in(request: Request, render: Callable[[web.WebSession], Response]) -> Response:
    """A staff page: `render(session)` after `_reach`'s prologue."""
    reached = _reach(request, render)
    return reached if isinstance(reached, Response) else reached[1]


def _may(actor: Actor | None, route: str) -> bool:
    """Whether the table lets the actor's role use `route` at all: only to offer the buttons it may press (the
    service and `security.admit` decide)."""
    return actor is not None and actor.role in rule_for(route).roles


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200, sess: web.WebSession | None = None) -> HTMLResponse:
    actor = sess.actor if sess is not None else None
    response = templates.TemplateResponse(request, f"console/{template}", {
        "session": sess, "may": lambda route: _may(actor, route), "sla_hours": request.app.state.rt.settings.referral_sla_hours, **context,
    }, status_code=status)
    if sess is not None and sess.renewed is not None:
        _set_session(response, request, sess.renewed, sess.csrf)
    response.headers["Cache-Control"] = "no-store"
    return response


def _redirect(url: str, sess: web.WebSession | None = None, request: Request | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if sess is not None and sess.renewed is not None and request is not None:
        _set_session(response, request, sess.renewed, sess.csrf)
    return response


def _error(request: Request, exc: SanduError, sess: web.WebSession | None) -> Response:
    if isinstance(exc, NotAuthenticated):
        return _redirect(f"{PATH}/login")
    return _page(request, "error.html", {"error": zh.zh_error(exc)}, exc.http_status, sess)


# --- parsing what a form or a query sends -----------------------------------------------------------------------


def _text(value: str) -> str:
    return value[:MAX_FORM_TEXT]


def _whole(value: str, field: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 9 or not low <= int(text) <= high:
        raise InvalidInput(field, f"must be a whole number {low}..{high}, got {show(value[:40])}", f"{low}..{high}")
    return int(text)


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, f"is not a valid date: {show(value[:40])}", "YYYY-MM-DD") from None


def _wan(value: str, field: str) -> int:
    if not value.strip():
        raise InvalidInput(field, "must not be empty", "an amount in 万元, e.g. 300.5")
    return wan_to_fen(value.strip(), field=field)


# --- log-in -----------------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(request: Request) -> Response:
    try:
        sess = _staff(request)
    except SanduError as exc:
        return _error(request, exc, None)
    if sess is None:
        return _redirect(f"{PATH}/login")
    return _redirect(f"{PATH}/queue" if _may(sess.actor, "referrals.list") else f"{PATH}/lookup", sess, request)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", {"error": None, "values": {}})


@router.post("/login", response_class=HTMLResponse)
def login_submit(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "") -> Response:
    rt = request.app.state.rt
    values = {"username": username[:64]}
    try:
        if not values["username"]:
            raise InvalidInput("username", "must not be empty", "your staff username")
        tokens = security.login(rt, username=values["username"], password=password[:256])
    except SanduError as exc:
        error = zh.zh_error(exc, "password" if isinstance(exc, NotAuthenticated) else None)
        if isinstance(exc, NotAuthenticated):
            error = zh.ZhError("password", "密码", "用户名或密码不正确，或账户已被锁定或停用", None, None, exc.message, exc.code)
        return _page(request, "login.html", {"error": error, "values": values}, exc.http_status)
    try:
        security.authenticate(rt, ENTER, tokens.access_token)  # staff only: the table refuses an applicant (403, its rule)
    except SanduError as exc:
        security.logout(rt, refresh_token=tokens.refresh_token)  # the applicant's new session is ended at once
        error = zh.ZhError("username", "用户名", "申请人账户不能登录员工工作台：请在申请人页面 /app 登录", getattr(exc, "rule", None),
                           "岗位权限表：员工工作台仅限客户经理、审批人、风险管理、管理员和审计", exc.message, exc.code)
        return _page(request, "login.html", {"error": error, "values": values}, exc.http_status)
    response = _redirect(PATH)
    _set_session(response, request, tokens)
    return response


@router.post("/logout")
def logout_submit(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    rt = request.app.state.rt
    sess = None
    try:
        sess = _staff(request)
        if sess is not None:
            web.check_form(request, sess, csrf)
            if request.cookies.get(web.REFRESH):
                security.logout(rt, refresh_token=request.cookies[web.REFRESH])
    except SanduError as exc:
        if not isinstance(exc, NotAuthenticated):
            return _error(request, exc, sess)
    response = _redirect(f"{PATH}/login")
    _clear_session(response)
    return response


# --- the referral queue ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sla:
    deadline: datetime
    overdue: bool
    text: str  # 剩余 5小时12分 | 已超时 3小时
    level: str  # ok | due-soon | overdue


def sla_of(queued_at: datetime, now: datetime, hours: int) -> Sla:
    """The referral's service level: its deadline `hours` after it joined the queue, what is left or how late it is."""
    deadline = queued_at + timedelta(hours=hours)
    left = deadline - now
    minutes = int(abs(left).total_seconds() // 60)
    span = f"{minutes // (60 * 24)}天{minutes // 60 % 24}小时" if minutes >= 60 * 24 else f"{minutes // 60}小时{minutes % 60}分"
    if left < timedelta(0):
        return Sla(deadline, True, f"已超时 {span}", "overdue")
    return Sla(deadline, False, f"剩余 {span}", "due-soon" if left <= timedelta(hours=hours) / 4 else "ok")


def _product_names(request: Request) -> dict[str, str]:
    return {code: p.name for code, p in request.app.state.rt.bundle.products.items()}


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, offset: str = "0", branch: str = "") -> Response:
    rt = request.app.state.rt

    def render(sess: web.WebSession) -> Response:
        actor = security.admit(rt, "referrals.list", sess.actor)
        page = actions.referrals(rt, actor, branch=branch[:17] or None, limit=QUEUE_PAGE, offset=_whole(offset, "offset", 0, 100_000))
        now = rt.now()
        rows: list[tuple[ReferralView, Sla]] = [(r, sla_of(r.queued_at, now, rt.settings.referral_sla_hours)) for r in page.referrals]
        return _page(request, "queue.html", {"page": page, "rows": rows, "now": now, "names": _product_names(request), "branch": branch[:17]},
                     sess=sess)

    return _signed_in(request, render)


# --- looking up an application or a line by its number -----------------------------------------------------------


@router.get("/lookup", response_class=HTMLResponse)
def lookup(request: Request, application_id: str = "", line_id: str = "") -> Response:
    sess = None
    try:
        sess = _staff(request)
        if sess is None:
            return _redirect(f"{PATH}/login")
        if application_id:
            return _redirect(f"{PATH}/applications/{_whole(application_id, 'application_id', 1, 2**62)}", sess, request)
        if line_id:
            return _redirect(f"{PATH}/lines/{_whole(line_id, 'line_id', 1, 2**62)}", sess, request)
    except SanduError as exc:
        return _page(request, "lookup.html", {"error": zh.zh_error(exc), "values": {"application_id": application_id[:20], "line_id": line_id[:20]}},
                     exc.http_status, sess)
    return _page(request, "lookup.html", {"error": None, "values": {}}, sess=sess)


# --- an application: its decision, history, replay and the actions on it --------------------------------------------


DONE = {"review": "已提交上级审批", "approve": "已批准", "decline": "已拒绝", "hr_review": "复核意见已提交，待他人确认", "hr_decide": "复核结论已确认"}


def _detail(request: Request, sess: web.WebSession, application_id: int, *, decision_id: str | None = None, replay: bool = False,
            errors: dict[str, zh.ZhError] | None = None, values: dict[str, str] | None = None, status: int = 200, done: str | None = None) -> Response:
    rt = request.app.state.rt
    security.admit(rt, "applications.get", sess.actor, application_id)
    app: ApplicationView = actions.get_application(rt, application_id)
    shown = decision_id if decision_id in app.decision_ids else app.decision_id
    d: DecisionView | None = None
    replayed = None
    if shown is not None:
        security.admit(rt, "decisions.get", sess.actor, shown)
        d = actions.get_decision(rt, shown)
        if replay:
            replayed = actions.replay_decision(rt, shown)  # a read: admitted as reading the decision
    sla = sla_of(app.queued_at, rt.now(), rt.settings.referral_sla_hours) if app.queued_at else None
    return _page(request, "application.html", {
        "app": app, "d": d, "replayed": replayed, "errors": errors or {}, "values": values or {}, "sla": sla, "done": DONE.get(done or ""),
        "in_force": shown == app.decision_id, "me": sess.actor.user_id,
    }, status, sess)


@router.get("/applications/{application_id}", response_class=HTMLResponse)
def application_page(request: Request, application_id: str, decision: str = "", replay: str = "", done: str = "") -> Response:
    return _signed_in(request, lambda sess: _detail(request, sess, _whole(application_id, "application_id", 1, 2**62),
                                                    decision_id=decision[:36] or None, replay=replay == "1", done=done[:16]))


def _decision_action(request: Request, decision_id: str, route: str, csrf: str, key: str, values: dict[str, str], act) -> Response:
    """An action on a decision: the session, the form's token, admission by `route` on the decision, the action; then
    back to its application, with the refusal next to the action when there is one."""
    rt = request.app.state.rt
    decision_id = decision_id[:36]

    def application_of(sess: web.WebSession) -> int:
        security.admit(rt, "decisions.get", sess.actor, decision_id)
        application_id = actions.get_decision(rt, decision_id).application_id
        if application_id is None:
            raise InvalidInput("decision_id", f"decision {decision_id} belongs to no application", "a decision of an application")
        return application_id

    reached = _reach(request, application_of)
    if isinstance(reached, Response):
        return reached
    sess, application_id = reached
    try:
        web.check_form(request, sess, csrf)
        actor = security.admit(rt, route, sess.actor, decision_id)
        act(actor)
    except SanduError as exc:
        try:
            return _detail(request, sess, application_id, decision_id=decision_id, errors={key: zh.zh_error(exc)}, values=values, status=exc.http_status)
        except SanduError as again:
            return _error(request, again, sess)
    return _redirect(f"{PATH}/applications/{application_id}?decision={decision_id}&done={key.split(':')[0]}", sess, request)


@router.post("/decisions/{decision_id}/offers/{product}/review", response_class=HTMLResponse)
def review_offer(request: Request, decision_id: str, product: str, opinion: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """提交上级审批: the officer's review (审) with an opinion; an approver decides (贷)."""
    opinion, product = _text(opinion), product[:32]
    return _decision_action(request, decision_id, "decisions.review", csrf, f"review:{product}", {f"opinion:{product}": opinion},
                            lambda actor: actions.review_offer(request.app.state.rt, actor, decision_id=decision_id, product=product, opinion=opinion))


@router.post("/decisions/{decision_id}/offers/{product}/approve", response_class=HTMLResponse)
def approve_offer(request: Request, decision_id: str, product: str, csrf: Annotated[str, Form()] = "") -> Response:
    """批准: not the initiator, not the reviewer, within authority — the service refuses otherwise, naming the rule."""
    product = product[:32]
    return _decision_action(request, decision_id, "decisions.approve", csrf, f"approve:{product}", {},
                            lambda actor: actions.approve_offer(request.app.state.rt, actor, decision_id=decision_id, product=product))


@router.post("/decisions/{decision_id}/human-review/review", response_class=HTMLResponse)
def review_human_review(request: Request, decision_id: str, outcome: Annotated[str, Form()] = "", opinion: Annotated[str, Form()] = "",
                        csrf: Annotated[str, Form()] = "") -> Response:
    opinion, outcome = _text(opinion), outcome[:16]
    return _decision_action(request, decision_id, "decisions.human_review.review", csrf, "hr_review", {"hr_opinion": opinion, "hr_outcome": outcome},
                            lambda actor: actions.review_human_review(request.app.state.rt, actor, decision_id=decision_id, outcome=outcome,
                                                                      opinion=opinion))


@router.post("/decisions/{decision_id}/human-review/decide", response_class=HTMLResponse)
def decide_human_review(request: Request, decision_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    return _decision_action(request, decision_id, "decisions.human_review.decide", csrf, "hr_decide", {},
                            lambda actor: actions.decide_human_review(request.app.state.rt, actor, decision_id=decision_id))


@router.post("/applications/{application_id}/decline", response_class=HTMLResponse)
def decline(request: Request, application_id: str, reason: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """拒绝: an officer (or approver) declines a referred application, with a reason."""
    rt = request.app.state.rt
    reason = _text(reason)

    def within_reach(sess: web.WebSession) -> int:
        app_id = _whole(application_id, "application_id", 1, 2**62)
        security.admit(rt, "applications.get", sess.actor, app_id)
        return app_id

    reached = _reach(request, within_reach)
    if isinstance(reached, Response):
        return reached
    sess, app_id = reached
    try:
        web.check_form(request, sess, csrf)
        actor = security.admit(rt, "applications.decline", sess.actor, app_id)
        actions.reject_application(rt, actor, application_id=app_id, reason=reason)
    except SanduError as exc:
        try:
            return _detail(request, sess, app_id, errors={"decline": zh.zh_error(exc)}, values={"reason": reason}, status=exc.http_status)
        except SanduError as again:
            return _error(request, again, sess)
    return _redirect(f"{PATH}/applications/{app_id}?done=decline", sess, request)


# --- a credit line: servicing actions and its statement -------------------------------------------------------------


LINE_DONE = {"freeze": "额度已冻结", "unfreeze": "额度已解冻", "renew": "额度已续期", "reduce": "额度已调减"}


def _line(request: Request, sess: web.WebSession, line_id: int, *, start: str = "", end: str = "", errors: dict[str, zh.ZhError] | None = None,
          values: dict[str, str] | None = None, status: int = 200, done: str | None = None) -> Response:
    rt = request.app.state.rt
    security.admit(rt, "lines.get", sess.actor, line_id)
    line = servicing.get_line(rt, line_id)
    errors = dict(errors or {})
    period = {"from": start[:10] or line.opened_on.isoformat(), "to": end[:10] or rt.today().isoformat()}
    statement = None
    try:
        security.admit(rt, "lines.statement", sess.actor, line_id)
        statement = servicing.statement(rt, line_id, start=_day(period["from"], "from"), end=_day(period["to"], "to"))
    except InvalidInput as exc:
        errors["statement"] = zh.zh_error(exc)
        status = max(status, exc.http_status)
    return _page(request, "line.html", {"line": line, "statement": statement, "period": period, "errors": errors, "values": values or {},
                                        "done": LINE_DONE.get(done or ""), "max_movements": MAX_SHOWN_MOVEMENTS, "names": _product_names(request)},
                 status, sess)


@router.get("/lines/{line_id}", response_class=HTMLResponse)
def line_page(request: Request, line_id: str, done: str = "") -> Response:
    """The line, its servicing actions and its statement for a period (?from=&to=, by default since it opened)."""
    return _signed_in(request, lambda sess: _line(request, sess, _whole(line_id, "line_id", 1, 2**62), start=request.query_params.get("from", ""),
                                                  end=request.query_params.get("to", ""), done=done[:16]))


def _object_action(request: Request, raw_id: str, field: str, read_route: str, route: str, csrf: str, key: str, values: dict[str, str], act,
                   render, back: str) -> Response:
    """A form's action on a numbered object (a line, an alert): the session, the object within reach (`read_route`), the
    form's token, admission by `route` on it, the action; then back to its page, with the refusal next to the action."""
    rt = request.app.state.rt

    def within_reach(sess: web.WebSession) -> int:
        oid = _whole(raw_id, field, 1, 2**62)
        security.admit(rt, read_route, sess.actor, oid)
        return oid

    reached = _reach(request, within_reach)
    if isinstance(reached, Response):
        return reached
    sess, oid = reached
    try:
        web.check_form(request, sess, csrf)
        act(security.admit(rt, route, sess.actor, oid), oid)
    except SanduError as exc:
        try:
            return render(request, sess, oid, errors={key: zh.zh_error(exc, "limit_wan" if exc.field == "limit_fen" else None)}, values=values,
                          status=exc.http_status)
        except SanduError as again:
            return _error(request, again, sess)
    return _redirect(f"{PATH}/{back}/{oid}?done={key}", sess, request)


def _line_action(request: Request, line_id: str, route: str, csrf: str, key: str, values: dict[str, str], act) -> Response:
    return _object_action(request, line_id, "line_id", "lines.get", route, csrf, key, values, act, _line, "lines")


@router.post("/lines/{line_id}/freeze", response_class=HTMLResponse)
def freeze(request: Request, line_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    return _line_action(request, line_id, "lines.freeze", csrf, "freeze", {},
                        lambda actor, lid: servicing.freeze(request.app.state.rt, actor, line_id=lid))


@router.post("/lines/{line_id}/unfreeze", response_class=HTMLResponse)
def unfreeze(request: Request, line_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    return _line_action(request, line_id, "lines.unfreeze", csrf, "unfreeze", {},
                        lambda actor, lid: servicing.unfreeze(request.app.state.rt, actor, line_id=lid))


@router.post("/lines/{line_id}/renew", response_class=HTMLResponse)
def renew(request: Request, line_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    return _line_action(request, line_id, "lines.renew", csrf, "renew", {},
                        lambda actor, lid: servicing.renew(request.app.state.rt, actor, line_id=lid))


@router.post("/lines/{line_id}/reduce", response_class=HTMLResponse)
def reduce_limit(request: Request, line_id: str, limit_wan: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    limit_wan = limit_wan[:40]
    return _line_action(request, line_id, "lines.reduce", csrf, "reduce", {"limit_wan": limit_wan},
                        lambda actor, lid: servicing.reduce_limit(request.app.state.rt, actor, line_id=lid,
                                                                  limit_fen=_wan(limit_wan, "limit_wan")))


# --- early-warning alerts (贷后预警) ----------------------------------------------------------------------------------

ALERT_PAGE = 50
ALERT_DONE = {"acknowledge": "已记录知悉", "propose": "处置提议已提交，待他人审批", "approve": "已批准并执行", "reject": "提议已否决",
              "dismiss": "预警已撤销"}


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, status: str = "open", after_id: str = "0") -> Response:
    """The sub-branch's early-warning alerts, oldest first (the API's alerts.list)."""
    rt = request.app.state.rt

    def render(sess: web.WebSession) -> Response:
        actor = security.admit(rt, "alerts.list", sess.actor)
        page = alerts.list_alerts(rt, actor, status=status[:16], after_id=_whole(after_id, "after_id", 0, 2**62), limit=ALERT_PAGE)
        return _page(request, "alerts.html", {"page": page, "status": status[:16]}, sess=sess)

    return _signed_in(request, render)


def _alert(request: Request, sess: web.WebSession, alert_id: int, *, errors: dict[str, zh.ZhError] | None = None,
           values: dict[str, str] | None = None, status: int = 200, done: str | None = None) -> Response:
    rt = request.app.state.rt
    security.admit(rt, "alerts.get", sess.actor, alert_id)
    return _page(request, "alert.html", {"alert": alerts.get_alert(rt, alert_id), "errors": errors or {}, "values": values or {},
                                         "done": ALERT_DONE.get(done or "")}, status, sess)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: str, done: str = "") -> Response:
    """An alert with its evidence, its life and the actions the person may take."""
    return _signed_in(request, lambda sess: _alert(request, sess, _whole(alert_id, "alert_id", 1, 2**62), done=done[:16]))


def _alert_action(request: Request, alert_id: str, key: str, csrf: str, values: dict[str, str], act) -> Response:
    return _object_action(request, alert_id, "alert_id", "alerts.get", f"alerts.{key}", csrf, key, values, act, _alert, "alerts")


def _note(value: str) -> str | None:
    return _text(value) or None


@router.post("/alerts/{alert_id}/acknowledge", response_class=HTMLResponse)
def alert_acknowledge(request: Request, alert_id: str, note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    return _alert_action(request, alert_id, "acknowledge", csrf, {"note": note[:MAX_FORM_TEXT]},
                         lambda actor, aid: alerts.acknowledge(request.app.state.rt, actor, alert_id=aid, note=_note(note)))


@router.post("/alerts/{alert_id}/propose", response_class=HTMLResponse)
def alert_propose(request: Request, alert_id: str, action: Annotated[str, Form()] = "", limit_wan: Annotated[str, Form()] = "",
                  note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    action, limit_wan = action[:16], limit_wan[:40]
    return _alert_action(request, alert_id, "propose", csrf, {"action": action, "limit_wan": limit_wan, "note": note[:MAX_FORM_TEXT]},
                         lambda actor, aid: alerts.propose(request.app.state.rt, actor, alert_id=aid, action=action or None,
                                                           limit_fen=_wan(limit_wan, "limit_wan") if limit_wan.strip() else None, note=_note(note)))


@router.post("/alerts/{alert_id}/approve", response_class=HTMLResponse)
def alert_approve(request: Request, alert_id: str, note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    return _alert_action(request, alert_id, "approve", csrf, {"note": note[:MAX_FORM_TEXT]},
                         lambda actor, aid: alerts.approve(request.app.state.rt, actor, alert_id=aid, note=_note(note)))


@router.post("/alerts/{alert_id}/reject", response_class=HTMLResponse)
def alert_reject(request: Request, alert_id: str, note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    return _alert_action(request, alert_id, "reject", csrf, {"note": note[:MAX_FORM_TEXT]},
                         lambda actor, aid: alerts.reject(request.app.state.rt, actor, alert_id=aid, note=_text(note)))


@router.post("/alerts/{alert_id}/dismiss", response_class=HTMLResponse)
def alert_dismiss(request: Request, alert_id: str, note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    return _alert_action(request, alert_id, "dismiss", csrf, {"note": note[:MAX_FORM_TEXT]},
                         lambda actor, aid: alerts.dismiss(request.app.state.rt, actor, alert_id=aid, note=_text(note)))


# --- policy what-if ------------------------------------------------------------------------------------------------


def _policy_page(request: Request, sess: web.WebSession, *, result: WhatIfView | None = None, error: zh.ZhError | None = None,
                 values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    rt = request.app.state.rt
    values = values or {"since": (rt.today() - timedelta(days=90)).isoformat(), "max_changes": "50", "policy": ""}
    return _page(request, "policy.html", {"result": result, "error": error, "values": values, "bundle": rt.bundle.label,
                                          "names": _product_names(request)}, status, sess)


@router.get("/policy", response_class=HTMLResponse)
def policy_page(request: Request) -> Response:
    reached = _reach(request, lambda sess: security.admit(request.app.state.rt, "policy.simulate", sess.actor))
    return reached if isinstance(reached, Response) else _policy_page(request, reached[0])


@router.post("/policy", response_class=HTMLResponse)
def policy_simulate(request: Request, policy: Annotated[str, Form()] = "", since: Annotated[str, Form()] = "",
                    max_changes: Annotated[str, Form()] = "50", policy_file: Annotated[UploadFile | None, File()] = None,
                    csrf: Annotated[str, Form()] = "") -> Response:
    """Paste or upload a changed bundle and a first day: its figures against the bundle in force (stores nothing)."""
    rt = request.app.state.rt
    reached = _reach(request, lambda sess: security.admit(rt, "policy.simulate", sess.actor))
    if isinstance(reached, Response):
        return reached
    sess = reached[0]
    text = policy
    values = {"since": since[:10], "max_changes": max_changes[:6], "policy": policy[: actions.MAX_POLICY_BYTES]}
    try:
        web.check_form(request, sess, csrf)
        if policy_file is not None and policy_file.filename:
            raw = policy_file.file.read(MAX_POLICY_UPLOAD + 1)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("policy_file", "is not UTF-8 text", "a policy bundle (TOML, UTF-8)") from None
            values["policy"] = text[: actions.MAX_POLICY_BYTES]
        if not text.strip():
            raise InvalidInput("policy", "must not be empty", "a policy bundle (TOML): paste it or choose its file")
        changed = actions.policy_from_text(text)
        first_day = _day(since, "since")
        shown = _whole(max_changes, "max_changes", 0, MAX_SHOWN_CHANGES)
        result = WhatIfView.of(actions.simulate_policy(rt, policy=changed, since=first_day, max_changes=shown))
    except SanduError as exc:
        return _policy_page(request, sess, error=zh.zh_error(exc), values=values, status=exc.http_status)
    return _policy_page(request, sess, result=result, values=values)


# --- the portfolio dashboard ---------------------------------------------------------------------------------------


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, branch: str = "", as_of: str = "") -> Response:
    """The portfolio from the journal (`GET /api/v1/reports/portfolio`'s figures), drawn with ECharts served by sandu:
    officers and approvers see their sub-branch, risk, admin and auditors the bank or a sub-branch."""
    from sandu.analytics import actions as analytics
    from sandu.domain.dates import parse_iso_date

    rt = request.app.state.rt

    def render(sess: web.WebSession) -> Response:
        actor = security.admit(rt, "reports.portfolio", sess.actor)
        day = None
        if as_of:
            try:
                day = parse_iso_date(as_of[:10])
            except ValueError as exc:
                raise InvalidInput("as_of", str(exc), "YYYY-MM-DD") from None
        report = analytics.portfolio_report(rt, actor, as_of=day, branch=branch[:17] or None)
        return _page(request, "dashboard.html", {"p": report, "data": report.to_json(), "branch": branch[:17]}, sess=sess)

    return _signed_in(request, render)
