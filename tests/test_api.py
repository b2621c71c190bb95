"""The HTTP API end to end on a real server: the thin path as the people who use it, and its bad input."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
from conftest import login
from sqlalchemy import text

from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES

S1, S2, S4 = STORY_ROWS[0], STORY_ROWS[1], STORY_ROWS[3]
API = "/api/v1"


@pytest.fixture
def client(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as c:
        yield c


def _row_counts(rt) -> dict[str, list]:
    """Every row of every table sandu writes: "changes nothing" means this is identical."""
    tables = ["enterprises", "consents", "source_reads", "profiles", "decisions", "offers", "credit_lines", "drawings", "journal_entries",
              "postings", "instalments", "dues", "classification_changes", "business_calendar", "eod_runs", "audit_log"]
    with rt.engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in tables}


def _error(r: httpx.Response, status: int, field: str | None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["field"] == field, body
    assert body["message"] and body["request_id"]
    return body


def _register_and_measure(client, auth, row=S2, scopes=ALL_SOURCES) -> dict:
    r = client.post(f"{API}/enterprises", json={"uscc": row["uscc"], "name": row["name"]}, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["legal_rep_id_masked"] == row["legal_rep_id"][:6] + "********" + row["legal_rep_id"][-4:]
    r = client.post(f"{API}/enterprises/{row['uscc']}/consents", json={"scopes": list(scopes), "bureau_authorization": "credit_bureau" in scopes}, headers=auth)
    assert r.status_code == 201, r.text
    r = client.post(f"{API}/enterprises/{row['uscc']}/measurements", json={"consent_id": r.json()["id"]}, headers=auth)
    assert r.status_code == 201, r.text
    return r.json()


def test_thin_path_register_consent_measure_accept_draw_repay(client, rt_sqlite):
    rep = login(client, "rep-s2")
    d = _register_and_measure(client, rep)
    assert d["outcome"] == "approve"
    assert d["policy_version"] and len(d["policy_sha256"]) == 64 and len(d["profile_sha256"]) == 64
    offer = d["offers"][0]
    assert offer["product"] == "jingying_kuaidai" and offer["approved_fen"] == offer["limit_fen"] <= 500_000_000
    assert Decimal(offer["annualized_rate"]) > Decimal(offer["rate_annual"])  # 365-day annualization of a /360 rate
    r = client.post(f"{API}/decisions/{d['id']}/offers/jingying_kuaidai/accept", headers=rep)
    assert r.status_code == 201, r.text
    line = r.json()
    assert line["limit_fen"] == offer["limit_fen"] and line["available_fen"] == offer["limit_fen"]

    r = client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 300_000_000, "idempotency_key": "d1", "on_date": "2026-11-29"}, headers=rep)
    assert r.status_code == 201, r.text
    again = client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 300_000_000, "idempotency_key": "d1", "on_date": "2026-11-29"}, headers=rep)
    assert again.status_code == 201 and again.json()["replayed"] is True and again.json()["drawing_id"] == r.json()["drawing_id"]

    # 10 days later (same settlement period) repay the principal: the interest (300万 × rate × 10 / 360, rounded
    # half-up once) is settled on the 20th and not due before the 21st, so it is not part of what is owed now.
    future = client.post(f"{API}/lines/{line['id']}/repayments", json={"amount_fen": 1, "idempotency_key": "early", "on_date": "2026-12-09"}, headers=rep)
    _error(future, 409, "on_date")
    rt_sqlite.clock.value = datetime(2026, 12, 9, 10, 0, tzinfo=timezone.utc)
    rep = login(client, "rep-s2")  # ten days on, the first session has long expired
    rate = Decimal(line["rate_annual"])
    interest = int((Decimal(300_000_000) * rate * 10 / 360).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    over = client.post(f"{API}/lines/{line['id']}/repayments", json={"amount_fen": 300_000_000 + interest, "idempotency_key": "r0",
                                                                      "on_date": "2026-12-09"}, headers=rep)
    assert "300000000 fen owed now" in _error(over, 409, "amount_fen")["message"]
    r = client.post(f"{API}/lines/{line['id']}/repayments", json={"amount_fen": 300_000_000, "idempotency_key": "r1", "on_date": "2026-12-09"},
                    headers=rep)
    assert r.status_code == 201, r.text
    assert r.json()["allocations"] == {"principal": 300_000_000}
    state = client.get(f"{API}/lines/{line['id']}", headers=rep).json()
    assert state["drawn_principal_fen"] == 0 and state["available_fen"] == line["limit_fen"]
    assert state["balances"]["interest_fen"] == 0 and state["balances"]["interest_accrued_fen"] == interest
    drawings = client.get(f"{API}/lines/{line['id']}/drawings", headers=rep).json()["drawings"]
    assert [(x["id"], x["status"], x["balances"]["principal_fen"]) for x in drawings] == [(r_id := drawings[0]["id"], "open", 0)]
    assert client.get(f"{API}/lines/{line['id']}/drawings/{r_id}", headers=rep).json()["balances"]["interest_accrued_fen"] == interest
    page = client.get(f"{API}/lines/{line['id']}/journal", headers=rep).json()
    assert [e["kind"] for e in page["entries"]] == ["draw", "repayment"] and page["next_after_id"] is None
    assert all(sum(p["amount_fen"] for p in e["postings"]) == 0 for e in page["entries"])
    first = client.get(f"{API}/lines/{line['id']}/journal", params={"limit": 1}, headers=rep).json()
    rest = client.get(f"{API}/lines/{line['id']}/journal", params={"after_id": first["next_after_id"]}, headers=rep).json()
    assert [e["id"] for e in first["entries"] + rest["entries"]] == [e["id"] for e in page["entries"]]
    _error(client.get(f"{API}/lines/{line['id']}/journal", params={"limit": 501}, headers=rep), 422, "limit")


def test_overdraw_is_refused_and_changes_nothing(client, rt_sqlite):
    rep = login(client, "rep-s2")
    d = _register_and_measure(client, rep)
    line = client.post(f"{API}/decisions/{d['id']}/offers/jingying_kuaidai/accept", headers=rep).json()
    before = _row_counts(rt_sqlite)
    r = client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": line["limit_fen"] + 1, "idempotency_key": "big"}, headers=rep)
    body = _error(r, 409, "amount_fen")
    assert str(line["limit_fen"]) in body["message"]
    assert _row_counts(rt_sqlite) == before
    assert client.get(f"{API}/lines/{line['id']}", headers=rep).json() == line


@pytest.mark.parametrize(("amount", "field"), [(-100, "amount_fen"), (0, "amount_fen"), (1.5, "amount_fen"), ("100", "amount_fen"), (True, "amount_fen")])
def test_bad_amounts_are_refused_with_the_field(client, rt_sqlite, amount, field):
    rep = login(client, "rep-s2")
    d = _register_and_measure(client, rep)
    line = client.post(f"{API}/decisions/{d['id']}/offers/jingying_kuaidai/accept", headers=rep).json()
    before = _row_counts(rt_sqlite)
    r = client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": amount, "idempotency_key": "k"}, headers=rep)
    _error(r, 422, field)
    assert _row_counts(rt_sqlite) == before


def test_bad_identifiers_and_unknowns(client, rt_sqlite):
    rep = login(client, "rep-s2")
    before = _row_counts(rt_sqlite)
    bad_uscc = S2["uscc"][:-1] + ("0" if S2["uscc"][-1] != "0" else "1")
    _error(client.post(f"{API}/enterprises", json={"uscc": bad_uscc, "name": "x"}, headers=rep), 422, "uscc")
    _error(client.post(f"{API}/enterprises", json={"uscc": S2["uscc"].lower(), "name": "x"}, headers=rep), 422, "uscc")
    _error(client.post(f"{API}/enterprises", json={"uscc": S1["uscc"], "name": "x"}, headers=rep), 403, "uscc")  # S1's legal rep is another person
    _error(client.get(f"{API}/enterprises/{S1['uscc']}", headers=rep), 404, "uscc")
    _error(client.post(f"{API}/enterprises/{S1['uscc']}/consents", json={"scopes": ["tax"]}, headers=rep), 404, "uscc")
    _error(client.get(f"{API}/decisions/nope", headers=rep), 422, "decision_id")
    _error(client.get(f"{API}/decisions/00000000-0000-0000-0000-000000000000", headers=rep), 404, "decision_id")
    _error(client.get(f"{API}/lines/abc", headers=rep), 422, "line_id")
    _error(client.post(f"{API}/enterprises", json={"uscc": S2["uscc"], "name": "x", "extra": 1}, headers=rep), 422, "extra")
    _error(client.post(f"{API}/enterprises", json={"uscc": S2["uscc"], "name": "x", "legal_rep_id": S2["legal_rep_id"]}, headers=rep), 422, "legal_rep_id")
    assert _row_counts(rt_sqlite) == before


def test_consent_must_cover_the_sources_measurement_needs(client, rt_sqlite):
    rep = login(client, "rep-s2")
    client.post(f"{API}/enterprises", json={"uscc": S2["uscc"], "name": S2["name"]}, headers=rep)
    c = client.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": ["tax", "invoices"]}, headers=rep).json()
    before = _row_counts(rt_sqlite)
    body = _error(client.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": c["id"]}, headers=rep), 403, "consent_id")
    assert "credit_bureau" in body["message"]
    assert _row_counts(rt_sqlite) == before
    r = client.post(f"{API}/consents/{c['id']}/revoke", headers=rep)
    assert r.status_code == 200 and r.json()["revoked_at"]
    _error(client.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": ["tax", "weather"]}, headers=rep), 422, "scopes.1")


def test_referred_offer_is_reviewed_then_approved_by_someone_else_then_signed(client, rt_sqlite):
    rep4 = login(client, "rep-s4")
    d = _register_and_measure(client, rep4, row=S4)  # S4: 网贷通 is referred (mortgage registration)
    w = next(o for o in d["offers"] if o["product"] == "wangdaitong")
    assert w["approved_fen"] == 0 and w["status"] == "referred"
    url = f"{API}/decisions/{d['id']}/offers/wangdaitong"
    _error(client.post(f"{url}/accept", headers=rep4), 409, "product")
    officer, approver = login(client, "officer-longwan"), login(client, "approver-longwan")
    _error(client.post(f"{url}/approve", headers=approver), 409, "product")  # review first
    _error(client.post(f"{url}/review", json={"opinion": "押品足值"}, headers=login(client, "officer-yueqing")), 404, "decision_id")  # another branch
    _error(client.post(f"{url}/approve", headers=rep4), 403, None)  # an applicant approves nothing
    r = client.post(f"{url}/review", json={"opinion": "押品足值，同意"}, headers=officer)
    assert r.status_code == 200, r.text
    body = _error(client.post(f"{url}/approve", headers=officer), 403, None)
    assert body["rule"] == "maker_checker.reviewer"
    r = client.post(f"{url}/approve", headers=approver)
    assert r.status_code == 200, r.text
    w = next(o for o in r.json()["offers"] if o["product"] == "wangdaitong")
    assert w["approved_fen"] == w["limit_fen"] and w["referred_fen"] == 0
    assert client.post(f"{url}/accept", headers=rep4).status_code == 201


def test_openapi_documents_the_api_and_every_page_is_offline_ready(client):
    import re

    spec = client.get("/openapi.json").json()
    assert f"{API}/lines/{{line_id}}/draws" in spec["paths"]
    assert "OAuth2PasswordBearer" in spec["components"]["securitySchemes"]
    for page in ("/docs", "/app/login", "/app/signup"):
        html = client.get(page)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets and all(a.startswith("/") for a in assets), assets  # nothing from a CDN
        assert all(client.get(a).status_code == 200 for a in assets if not a.startswith("/app")), assets


def test_out_of_range_line_numbers_are_a_4xx(client):
    rep = login(client, "rep-s2")
    for path in (f"{API}/lines/{2**70}", f"{API}/lines/{2**64}/journal", f"{API}/lines/0"):
        _error(client.get(path, headers=rep), 422, "line_id")
    _error(client.post(f"{API}/lines/{2**70}/draws", json={"amount_fen": 1, "idempotency_key": "k"}, headers=rep), 422, "line_id")
    _error(client.post(f"{API}/lines/1/draws", json={"amount_fen": 1, "idempotency_key": "k"}, headers=rep), 404, "line_id")
    _error(client.post(f"{API}/eod", json={"business_date": "2999-01-01"}, headers=login(client, "ops")), 409, "business_date")


def test_health_readiness_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["store"] == "answering"
    rep = login(client, "rep-s2")
    client.get(f"{API}/auth/me", headers=rep)
    text_ = client.get("/metrics").text
    assert 'sandu_http_requests_total{method="GET",route="auth.me",status="200"}' in text_
    assert "sandu_http_request_duration_seconds_bucket" in text_ and "sandu_decisions_total" in text_
    r = client.get("/healthz", headers={"X-Request-ID": "probe-123"})
    assert r.headers["x-request-id"] == "probe-123"
    assert len(client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers["x-request-id"]) == 32  # not echoed: a new one
