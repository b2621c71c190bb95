"""Web pages for applicants (/app), server-rendered, mobile-first, zh-CN.

Offline-ready: every style the page needs is served by sandu from /static.
The pages are thin like the API: parse a form, authorize through the same guard
and table as the API (`sandu.security`), call one action of a service (which
commits before it returns), render its view. Handlers are plain `def`
functions: the database work runs on a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from sandu.domain.errors import NotAuthenticated, SanduError
from sandu.domain.money import wan_to_fen
from sandu.origination import actions
from sandu.security import actions as security
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.consent_text import BUREAU_SOURCE
from sandu.web import account, console, i18n
from sandu.web import session as web
from sandu.web.account import decision_page_for
from sandu.web.render import HERE, MAX_FORM_TEXT, clip, lang_of, page, to_login


def _form_page(request: Request, sess: web.WebSession, values: dict[str, Any], error: SanduError | None, status: int = 200) -> HTMLResponse:
    """The application form: each scope explained in plain Chinese (读取什么, 用于什么, 保存多久) before the applicant
    signs, and the separate credit-bureau authorization (征信授权书), never ticked in advance."""
    return page(request, "apply.html", {"values": values, "error": error, "scopes": actions.consent_scopes(lang_of(request)).scopes,
                                         "bureau_source": BUREAU_SOURCE, "valid_days": actions.APPLY_CONSENT_DAYS}, status, sess)


def mount_web(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(console.router)  # the staff console (/console)

    @app.get("/app/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", {"error": None, "values": {}})

    @app.post("/app/login", response_class=HTMLResponse, include_in_schema=False)
    def login_submit(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "") -> Response:
        try:
            tokens = security.login(request.app.state.rt, username=clip(username), password=password[:MAX_FORM_TEXT])
        except SanduError as exc:
            return page(request, "login.html", {"error": exc, "values": {"username": clip(username)}}, exc.http_status)
        response = RedirectResponse("/app", status_code=303)
        web.set_session(response, request, tokens)
        return response

    @app.get("/app/signup", response_class=HTMLResponse, include_in_schema=False)
    def signup_page(request: Request) -> HTMLResponse:
        return page(request, "signup.html", {"error": None, "values": {}})

    @app.post("/app/signup", response_class=HTMLResponse, include_in_schema=False)
    def signup_submit(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                      resident_id: Annotated[str, Form()] = "") -> Response:
        rt = request.app.state.rt
        values = {"username": clip(username), "resident_id": clip(resident_id)}
        try:
            client = request.client.host if request.client else "unknown"
            security.signup(rt, username=values["username"], password=password[:MAX_FORM_TEXT], resident_id=values["resident_id"], client=client)
            tokens = security.login(rt, username=values["username"], password=password[:MAX_FORM_TEXT])
        except SanduError as exc:
            return page(request, "signup.html", {"error": exc, "values": values}, exc.http_status)
        response = RedirectResponse("/app", status_code=303)
        web.set_session(response, request, tokens)
        return response

    @app.post("/app/logout", include_in_schema=False)
    def logout_submit(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        rt = request.app.state.rt
        sess = web.current(rt, request, "web.apply")
        if sess is not None:
            try:
                web.check_form(request, sess, csrf)
                if request.cookies.get(web.REFRESH):
                    security.logout(rt, refresh_token=request.cookies[web.REFRESH])
            except SanduError as exc:
                return page(request, "error.html", {"error": exc}, exc.http_status, sess)
        response = RedirectResponse("/app/login", status_code=303)
        web.clear_session(response)
        return response

    @app.get("/app", response_class=HTMLResponse, include_in_schema=False)
    def apply_page(request: Request) -> Response:
        try:
            sess = web.current(request.app.state.rt, request, "web.apply")
        except SanduError as exc:  # e.g. a staff member: this page is for applicants
            return page(request, "error.html", {"error": exc}, exc.http_status)
        if sess is None:
            return to_login(request)
        return _form_page(request, sess, {"scopes": list(ALL_SOURCES)}, None)

    @app.post("/app/measure", response_class=HTMLResponse, include_in_schema=False)
    def apply_submit(
        request: Request,
        uscc: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        requested_wan: Annotated[str, Form()] = "",
        scopes: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults per request
        bureau_authorization: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> Response:
        rt = request.app.state.rt
        try:
            sess = web.current(rt, request, "web.apply")
        except SanduError as exc:
            return page(request, "error.html", {"error": exc}, exc.http_status)
        if sess is None:
            return to_login(request)
        values = {"uscc": clip(uscc), "name": clip(name), "requested_wan": clip(requested_wan),
                  "scopes": [clip(v) for v in scopes[: len(ALL_SOURCES) + 1]], "bureau_authorization": bureau_authorization == "yes"}
        try:
            web.check_form(request, sess, csrf)
            actor = security.admit(rt, "web.apply", sess.actor)
            requested = wan_to_fen(values["requested_wan"], field="requested_wan") if values["requested_wan"] else None
            d = actions.apply_online(rt, actor, uscc=values["uscc"], name=values["name"], scopes=values["scopes"], requested_fen=requested,
                                     bureau_authorization=values["bureau_authorization"], language=lang_of(request))
        except SanduError as exc:
            return _form_page(request, sess, values, exc, status=exc.http_status)
        response = RedirectResponse(f"/app/decisions/{d.id}", status_code=303)
        if sess.renewed is not None:
            web.set_session(response, request, sess.renewed, sess.csrf)
        return response

    @app.get("/app/decisions/{decision_id}", response_class=HTMLResponse, include_in_schema=False)
    def decision_page(request: Request, decision_id: str) -> Response:
        rt = request.app.state.rt
        try:
            sess = web.current(rt, request, "web.decision")
            if sess is None:
                return to_login(request)
            security.admit(rt, "web.decision", sess.actor, clip(decision_id))
        except NotAuthenticated:
            return to_login(request)
        except SanduError as exc:
            return page(request, "error.html", {"error": exc}, exc.http_status)
        return decision_page_for(request, sess, clip(decision_id))

    @app.get("/app/lang", include_in_schema=False)
    def switch_language(request: Request, to: str = "zh", back: str = "/app") -> Response:
        """中文 / English, remembered in a cookie (a year); back to a page of this site only."""
        target = back if back.startswith("/app") and "//" not in back and len(back) <= MAX_FORM_TEXT else "/app"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(i18n.LANG_COOKIE, i18n.language(to), max_age=365 * 86_400, path="/app", samesite="strict", httponly=True)
        return response

    app.include_router(account.router)
