"""Web pages for applicants (/app), server-rendered, mobile-first, zh-CN.

Offline-ready: every style the page needs is served by sandu from /static.
The pages are thin like the API: parse a form, call one service, render.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from sandu.domain.errors import SanduError
from sandu.domain.money import format_cn, format_rate_pct, wan_to_fen
from sandu.origination import service as orig
from sandu.sources.catalog import ALL_SOURCES, SOURCE_DESCRIPTIONS
from sandu.store.db import transaction

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
    async def apply_submit(request: Request):
        form = await request.form()
        values = {
            "uscc": str(form.get("uscc", "")),
            "name": str(form.get("name", "")),
            "legal_rep_id": str(form.get("legal_rep_id", "")),
            "requested_wan": str(form.get("requested_wan", "")),
            "scopes": [str(v) for v in form.getlist("scopes")][: len(ALL_SOURCES) + 1],
        }
        rt = request.app.state.rt
        try:
            requested = wan_to_fen(values["requested_wan"], field="requested_wan") if values["requested_wan"] else None
            with transaction(rt.sessions) as session:
                d = orig.apply_online(
                    session, uscc=values["uscc"], name=values["name"], legal_rep_id=values["legal_rep_id"], scopes=values["scopes"],
                    as_of=rt.today(), now=rt.now(), bundle=rt.bundle, model=rt.model, requested_fen=requested,
                )
                decision_id = d.id
        except SanduError as exc:
            exc.field = FORM_FIELDS.get(exc.field or "", exc.field)  # point at the input the applicant sees
            return _form_page(request, values, exc, status=exc.http_status)
        return RedirectResponse(f"/app/decisions/{decision_id}", status_code=303)

    @app.get("/app/decisions/{decision_id}", response_class=HTMLResponse, include_in_schema=False)
    def decision_page(request: Request, decision_id: str) -> HTMLResponse:
        from sandu.api.app import decision_out

        rt = request.app.state.rt
        try:
            with transaction(rt.read_sessions) as session:
                d = decision_out(session, orig.get_decision(session, decision_id))
                name = orig.get_enterprise(session, d.uscc).name
        except SanduError as exc:
            return templates.TemplateResponse(request, "error.html", {"error": exc}, status_code=exc.http_status)
        return templates.TemplateResponse(request, "decision.html", {"d": d, "name": name, "outcome_text": OUTCOME_TEXT[d.outcome]})
