"""The HTTP API (/api/v1), the web pages (/app) and their error handling.

Thin: each route parses, calls one service inside one transaction, renders.
Every error a user can cause becomes a 4xx with {"error": {code, field,
message, allowed}}; nothing reaches the user as a 500 with a traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.orm import Session

from sandu.api import schemas as s
from sandu.domain.errors import SanduError
from sandu.origination import service as orig
from sandu.runtime import Runtime, make_runtime
from sandu.servicing import service as svc
from sandu.store import models as m
from sandu.store.db import transaction

API_PREFIX = "/api/v1"
log = logging.getLogger("sandu.api")


def get_rt(request: Request) -> Runtime:
    return request.app.state.rt


def get_session(rt: Annotated[Runtime, Depends(get_rt)]) -> Iterator[Session]:
    with transaction(rt.sessions) as session:
        yield session


def get_read_session(rt: Annotated[Runtime, Depends(get_rt)]) -> Iterator[Session]:
    with transaction(rt.read_sessions) as session:
        yield session


RT = Annotated[Runtime, Depends(get_rt)]
DB = Annotated[Session, Depends(get_session)]
ReadDB = Annotated[Session, Depends(get_read_session)]
LineId = Annotated[int, Path(ge=1, le=svc.MAX_LINE_ID, description="credit line number")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (403, 404, 409, 422)
}
router = APIRouter(prefix=API_PREFIX, responses=ERRORS)


def _error(status: int, code: str, field: str | None, message: str, allowed: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "field": field, "message": message, "allowed": allowed}})


def _enterprise_out(e: m.Enterprise) -> s.EnterpriseOut:
    return s.EnterpriseOut.model_validate(e, from_attributes=True)


DECISION_COLUMNS = ("id", "outcome", "comprehensive_limit_fen", "profile_sha256", "policy_version", "policy_sha256",
                    "model_versions", "timings_ms", "as_of", "decided_at")
DECISION_RESULT_KEYS = ("reasons", "tech_grade", "risk_grade", "tech_uplift_fen", "rule_hits", "scores", "quality_flags")


def decision_out(session: Session, d: m.Decision) -> s.DecisionOut:
    ent = session.get(m.Enterprise, d.enterprise_id)
    assert ent is not None
    status = {o.product: o for o in orig.offers_of(session, d.id)}
    offers = []
    for o in d.result["offers"]:
        row = status[o["product"]]
        offers.append(
            s.OfferOut(
                **{k: o[k] for k in ("product", "name", "kind", "limit_fen", "rate_annual", "annualized_rate", "repayment_method", "revolving", "basis_days")},
                approved_fen=row.approved_fen,
                referred_fen=row.limit_fen - row.approved_fen,
                status=row.status,
            )
        )
    return s.DecisionOut(
        **{c: getattr(d, c) for c in DECISION_COLUMNS},
        **{k: d.result[k] for k in DECISION_RESULT_KEYS},
        uscc=ent.uscc,
        offers=offers,
    )


LINE_COLUMNS = ("id", "product", "limit_fen", "drawn_principal_fen", "basis_days", "repayment_method", "revolving",
                "settlement_frequency", "opened_on", "expires_on", "status", "accrued_through")


def line_out(session: Session, line_id: int, today: date) -> s.LineOut:
    v = svc.line_view(session, line_id, today)
    return s.LineOut(
        **{c: getattr(v.line, c) for c in LINE_COLUMNS},
        rate_annual=str(v.line.rate_annual),
        available_fen=v.available_fen,
        interest_posted_fen=v.interest_posted_fen,
        interest_accrued_fen=v.interest_accrued_fen,
    )


@router.post("/enterprises", status_code=201, response_model=s.EnterpriseOut, tags=["origination"])
def register(body: s.EnterpriseIn, db: DB, rt: RT) -> s.EnterpriseOut:
    """Register an applicant enterprise (no bank account needed)."""
    return _enterprise_out(orig.register_enterprise(db, uscc=body.uscc, name=body.name, legal_rep_id=body.legal_rep_id, now=rt.now()))


@router.get("/enterprises/{uscc}", response_model=s.EnterpriseOut, tags=["origination"])
def get_enterprise(uscc: str, db: ReadDB) -> s.EnterpriseOut:
    return _enterprise_out(orig.get_enterprise(db, uscc))


@router.post("/enterprises/{uscc}/consents", status_code=201, response_model=s.ConsentOut, tags=["origination"])
def grant_consent(uscc: str, body: s.ConsentIn, db: DB, rt: RT) -> s.ConsentOut:
    """One authorization (一次授权) covering many data sources."""
    c = orig.grant_consent(
        db, uscc=uscc, scopes=body.scopes, purpose=body.purpose, signer_id=body.signer_id, valid_days=body.valid_days, now=rt.now()
    )
    return s.ConsentOut.model_validate(c, from_attributes=True)


@router.post("/consents/{consent_id}/revoke", response_model=s.ConsentOut, tags=["origination"])
def revoke_consent(consent_id: str, db: DB, rt: RT) -> s.ConsentOut:
    return s.ConsentOut.model_validate(orig.revoke_consent(db, consent_id=consent_id, now=rt.now()), from_attributes=True)


@router.post("/enterprises/{uscc}/measurements", status_code=201, response_model=s.DecisionOut, tags=["origination"])
def measure(uscc: str, body: s.MeasurementIn, db: DB, rt: RT) -> s.DecisionOut:
    """测额: read the consented sources, score, apply policy, record the decision."""
    project = body.project
    d = orig.measure(
        db, uscc=uscc, consent_id=body.consent_id, as_of=rt.today(), now=rt.now(), bundle=rt.bundle, model=rt.model,
        requested_fen=body.requested_fen, project=project,
    )
    return decision_out(db, d)


@router.get("/decisions/{decision_id}", response_model=s.DecisionOut, tags=["origination"])
def get_decision(decision_id: str, db: ReadDB) -> s.DecisionOut:
    return decision_out(db, orig.get_decision(db, decision_id))


@router.post("/decisions/{decision_id}/offers/{product}/approve", response_model=s.DecisionOut, tags=["origination"])
def approve_offer(decision_id: str, product: str, body: s.ApproveIn, db: DB, rt: RT) -> s.DecisionOut:
    """An officer approves the referred part of an offer."""
    orig.approve_offer(db, decision_id=decision_id, product=product, officer=body.officer, now=rt.now())
    return decision_out(db, orig.get_decision(db, decision_id))


@router.post("/decisions/{decision_id}/offers/{product}/accept", status_code=201, response_model=s.LineOut, tags=["origination"])
def accept_offer(decision_id: str, product: str, body: s.AcceptIn, db: DB, rt: RT) -> s.LineOut:
    """The legal representative signs online; the approved part becomes a revolving line."""
    line = orig.accept_offer(
        db, decision_id=decision_id, product=product, signer_id=body.signer_id, as_of=rt.today(), now=rt.now()
    )
    return line_out(db, line.id, rt.today())


@router.get("/lines/{line_id}", response_model=s.LineOut, tags=["servicing"])
def get_line(line_id: LineId, db: ReadDB, rt: RT) -> s.LineOut:
    return line_out(db, line_id, rt.today())


@router.post("/lines/{line_id}/draws", status_code=201, response_model=s.DrawOut, tags=["servicing"])
def draw(line_id: LineId, body: s.MovementIn, db: DB, rt: RT) -> s.DrawOut:
    """Borrow any time (随借随还). Repeating a request with the same idempotency key returns the first result."""
    r = svc.draw(db, line_id=line_id, amount_fen=body.amount_fen, on_date=body.on_date, idempotency_key=body.idempotency_key, now=rt.now())
    d = r.drawing
    return s.DrawOut(drawing_id=d.id, line_id=d.line_id, amount_fen=d.amount_fen, drawn_on=d.drawn_on, maturity_on=d.maturity_on, replayed=r.replayed)


@router.post("/lines/{line_id}/repayments", status_code=201, response_model=s.RepayOut, tags=["servicing"])
def repay(line_id: LineId, body: s.MovementIn, db: DB, rt: RT) -> s.RepayOut:
    """Repay any time: interest accrued to yesterday first, then principal."""
    r = svc.repay(db, line_id=line_id, amount_fen=body.amount_fen, on_date=body.on_date, idempotency_key=body.idempotency_key, now=rt.now())
    return s.RepayOut(line_id=line_id, allocations=r.allocations, interest_posted_fen=r.interest_posted_fen, replayed=r.replayed)


@router.get("/lines/{line_id}/journal", response_model=s.JournalPage, tags=["servicing"])
def journal(
    line_id: LineId,
    db: ReadDB,
    after_id: Annotated[int, Query(ge=0, le=svc.MAX_LINE_ID, description="the next_after_id of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=svc.MAX_JOURNAL_PAGE)] = 100,
) -> s.JournalPage:
    """The line's journal entries, oldest first, a page at a time."""
    svc.get_line(db, line_id)  # 404 for an unknown line
    entries, next_after_id = svc.journal_of(db, line_id, after_id=after_id, limit=limit)
    return s.JournalPage(
        entries=[
            s.EntryOut(
                id=e.id, kind=e.kind, effective_date=e.effective_date, idempotency_key=e.idempotency_key,
                postings=[s.PostingOut(account=p.account, amount_fen=p.amount_fen) for p in ps],
            )
            for e, ps in entries
        ],
        next_after_id=next_after_id,
    )


@router.post("/eod", tags=["servicing"])
def eod(body: s.EodIn, db: DB, rt: RT) -> dict[str, int]:
    """End of day for a business date: accrue every active line; post interest on the 20th."""
    return svc.run_eod(db, business_date=body.business_date, now=rt.now())


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def create_app(rt: Runtime | None = None) -> FastAPI:
    from sandu.web.pages import mount_web

    app = FastAPIOffline(  # /docs serves Swagger UI from sandu itself: bank intranets have no CDN
        title="sandu API",
        version="0.1.0",
        description="sandu (三度): one authorization, many sources → tech and risk scores → limits, products and prices → revolving lines on a double-entry ledger. Money is integer fen.",
    )
    app.state.rt = rt or make_runtime()

    @app.exception_handler(SanduError)
    async def _sandu_error(_request: Request, exc: SanduError) -> JSONResponse:
        return _error(exc.http_status, exc.code, exc.field, exc.message, exc.allowed)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = _field_of(tuple(first.get("loc", ())))
        return _error(422, "invalid_input", field, f"{field}: {first.get('msg', 'invalid')}", None)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the user's fault: log it with an id, show no traceback.
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error, incident %s", incident, exc_info=exc)
        return _error(500, "internal", None, f"internal error (incident {incident}); nothing was changed", None)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/app")

    app.include_router(router)
    mount_web(app)
    return app
