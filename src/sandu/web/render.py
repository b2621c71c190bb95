"""Rendering the applicant's pages: the templates, the page's language (remembered in a cookie), and errors said
in that language next to the field they concern."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from sandu.domain.errors import SanduError
from sandu.domain.money import format_capital, format_cn, format_rate_pct
from sandu.web import i18n
from sandu.web import session as web

HERE = Path(__file__).parent
MAX_FORM_TEXT = 200  # characters kept of any form value (the form's own fields are shorter)
# Service fields → the form input that carries them.
FORM_FIELDS = {"requested_fen": "requested_wan", "consent_id": "scopes", "amount_fen": "amount_wan"}

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["cn"] = format_cn
templates.env.filters["pct"] = lambda r: format_rate_pct(Decimal(str(r)))
templates.env.filters["capital"] = format_capital
templates.env.globals.update(lang="zh", t=lambda key: i18n.t(key, "zh"), L=lambda zh, en: zh)  # a template rendered outside a request speaks Chinese


def clip(value: str) -> str:
    return value[:MAX_FORM_TEXT]


def lang_of(request: Request) -> str:
    return i18n.language(request.cookies.get(i18n.LANG_COOKIE))


def page(request: Request, template: str, context: dict[str, Any], status: int = 200, sess: web.WebSession | None = None) -> HTMLResponse:
    """A page in the visitor's language; an `error` in the context is said in it, pointed at its form input."""
    lang = lang_of(request)
    error = context.get("error")
    extra: dict[str, Any] = {"lang": lang, "t": lambda key: i18n.t(key, lang), "L": lambda zh, en: zh if lang == "zh" else en}
    if isinstance(error, SanduError):
        extra["error_field"] = FORM_FIELDS.get(error.field or "", error.field or "")
        extra["error_text"] = i18n.message(error, lang)
    response = templates.TemplateResponse(request, template, {"session": sess, **context, **extra}, status_code=status)
    if sess is not None and sess.renewed is not None:
        web.set_session(response, request, sess.renewed, sess.csrf)
    return response


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/app/login", status_code=303)
