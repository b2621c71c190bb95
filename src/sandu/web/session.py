"""Web sessions: the same identities as the API, carried in cookies.

The access token and the refresh token live in HttpOnly, SameSite=Strict cookies
scoped to /app (script on a page cannot read them; another site cannot make the
browser send them). Every form carries a CSRF token that must equal the session's
CSRF cookie, and a POST whose Origin is another site is refused.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from sandu.domain.errors import NotAuthenticated, NotPermitted
from sandu.runtime import Runtime
from sandu.security import actions as security
from sandu.security.actor import Actor
from sandu.security.views import TokenView

ACCESS, REFRESH, CSRF = "sandu_session", "sandu_refresh", "sandu_csrf"
COOKIE_PATH = "/app"


@dataclass(frozen=True)
class WebSession:
    actor: Actor
    csrf: str
    renewed: TokenView | None  # new tokens, when the access token had expired and was refreshed


def set_session(response: Response, request: Request, tokens: TokenView, csrf: str | None = None) -> str:
    secure = request.url.scheme == "https"
    csrf = csrf or secrets.token_urlsafe(24)
    response.set_cookie(ACCESS, tokens.access_token, max_age=tokens.expires_in, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure)
    response.set_cookie(REFRESH, tokens.refresh_token, max_age=tokens.refresh_expires_in, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=secure)
    response.set_cookie(CSRF, csrf, max_age=tokens.refresh_expires_in, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure)
    return csrf


def clear_session(response: Response) -> None:
    for name in (ACCESS, REFRESH, CSRF):
        response.delete_cookie(name, path=COOKIE_PATH)


def current(rt: Runtime, request: Request, route: str) -> WebSession | None:
    """The logged-in applicant or staff member, refreshing an expired access token once; None when logged out."""
    access, refresh = request.cookies.get(ACCESS), request.cookies.get(REFRESH)
    csrf = request.cookies.get(CSRF) or ""
    renewed = None
    try:
        actor = security.authenticate(rt, route, access)
    except NotAuthenticated:
        if not refresh:
            return None
        try:
            renewed = security.refresh(rt, refresh_token=refresh)
        except NotAuthenticated:
            return None
        actor = security.authenticate(rt, route, renewed.access_token)
    assert actor is not None, f"{route} is not a public page"
    return WebSession(actor, csrf, renewed)


def check_form(request: Request, session: WebSession, form_csrf: str) -> None:
    """A state-changing form: same-origin, with the session's CSRF token."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise NotPermitted(None, "the form was sent from another site", "this site's own pages", rule="web.same_origin")
    if not session.csrf or not hmac.compare_digest(session.csrf.encode(), (form_csrf or "").encode()):
        raise NotPermitted(None, "the form's security token does not match your session; reload the page", "a form from this session",
                           rule="web.csrf")
