"""Web pages for applicants (/app), server-rendered, mobile-first, zh-CN.

Offline-ready: every style the page needs is served by sandu from /static.
The pages are thin like the API: parse a form, call one action of a service
(which commits before it returns), render its view. Handlers are plain `def`
functions: the database work runs on a worker thread, never on the event loop.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from sandu.domain.errors import SanduError
from sandu.domain.money import format_cn, format_rate_pct, wan_to_fen
from sandu.origination import actions
from sandu.sources.catalog import ALL_SOURCES, SOURCE_DESCRIPTIONS

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["cn"] = format_cn
templates.env.filters["pct"] = lambda r: format_rate_pct(Decimal(str(r)))

# Service fields → the form input that carries them.
FORM_FIELDS = {"requested_fen": "requested_wan", "consent_id": "scopes", "signer_id": "legal_rep_id"}
OUTCOME_TEXT = {
    "approve": "已为您核定额度，可立即签约用款",
    "partial": "部分额度已先行核定，其余额度正在审批",
    "refer": "额度已测算，等待客户经理审批",
    "decline": "暂未能为您核定额度",
}
MAX_FORM_TEXT = 200  # characters kept of any form value (the form's own fields are shorter)


def _form_page(request: Request, values: dict[str, Any], error: SanduError | None, status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "apply.html",
        {"values": values, "error": error, "sources": SOURCE_DESCRIPTIONS, "all_sources": ALL_SOURCES},
        status_code=status,
    )


def mount_web(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/app", response_class=HTMLResponse, include_in_schema=False)
    def apply_page(request: Request) -> HTMLResponse:
        return _form_page(request, {"scopes": list(ALL_SOURCES)}, None)

    @app.post("/app/measure", response_class=HTMLResponse, include_in_schema=False)
    def apply_submit(
        request: Request,
        uscc: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        legal_rep_id: Annotated[str, Form()] = "",
        requested_wan: Annotated[str, Form()] = "",
        scopes: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults per request
    ):
        values = {
            "uscc": uscc[:MAX_FORM_TEXT],
            "name": name[:MAX_FORM_TEXT],
            "legal_rep_id": legal_rep_id[:MAX_FORM_TEXT],
            "requested_wan": requested_wan[:MAX_FORM_TEXT],
            "scopes": [v[:MAX_FORM_TEXT] for v in scopes[: len(ALL_SOURCES) + 1]],
        }
        rt = request.app.state.rt
        try:
            requested = wan_to_fen(values["requested_wan"], field="requested_wan") if values["requested_wan"] else None
            d = actions.apply_online(
                rt, uscc=values["uscc"], name=values["name"], legal_rep_id=values["legal_rep_id"], scopes=values["scopes"], requested_fen=requested
            )
        except SanduError as exc:
            exc.field = FORM_FIELDS.get(exc.field or "", exc.field)  # point at the input the applicant sees
            return _form_page(request, values, exc, status=exc.http_status)
        return RedirectResponse(f"/app/decisions/{d.id}", status_code=303)

    @app.get("/app/decisions/{decision_id}", response_class=HTMLResponse, include_in_schema=False)
    def decision_page(request: Request, decision_id: str) -> HTMLResponse:
        try:
            d = actions.get_decision(request.app.state.rt, decision_id[:MAX_FORM_TEXT])
        except SanduError as exc:
            return templates.TemplateResponse(request, "error.html", {"error": exc}, status_code=exc.http_status)
        return templates.TemplateResponse(request, "decision.html", {"d": d, "outcome_text": OUTCOME_TEXT[d.outcome]})
