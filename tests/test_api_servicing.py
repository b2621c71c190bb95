"""Drawings over HTTP: a scheduled drawing's schedule, dues and prepayment, an officer's classification, end of day —
as the people who use them, on a real server, and their bad input (named field, nothing changed)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import httpx
import pytest
from conftest import login
from servicing_support import D0, check_ledger, draw, eod, open_line
from sqlalchemy import text

from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.simulate.stories import STORY_ROWS

API = "/api/v1"
S2, S5 = STORY_ROWS[1], STORY_ROWS[4]


@pytest.fixture
def client(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as c:
        yield c


def _rows(rt) -> dict[str, list]:
    tables = ["credit_lines", "drawings", "instalments", "dues", "classification_changes", "journal_entries", "postings", "business_calendar",
              "eod_runs"]
    with rt.engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in tables}


def _error(r: httpx.Response, status: int, field: str | None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["field"] == field, body
    return body


def test_a_scheduled_drawing_over_http(client, rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt, S5, "diya_xinyong", approve=True)
    rt.clock.value = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
    rep = login(client, "rep-s5")
    r = client.post(f"{API}/lines/{line_id}/draws", json={"amount_fen": 1_000 * WAN, "idempotency_key": "d1"}, headers=rep)
    assert r.status_code == 201, r.text
    drawn = r.json()
    assert (drawn["repayment_method"], drawn["drawn_on"], drawn["maturity_on"]) == ("按月付息到期还本", "2026-11-29", "2027-11-29")
    d = client.get(f"{API}/lines/{line_id}/drawings/{drawn['drawing_id']}", headers=rep).json()
    assert len(d["schedule"]) == 12 and sum(i["principal_fen"] for i in d["schedule"]) == 1_000 * WAN
    assert d["schedule"][0]["due_on"] == "2026-12-29" and d["days_past_due"] == 0 and d["risk_class"] == "normal"
    before = _rows(rt)
    for body, status, field in (({"principal_fen": 0, "idempotency_key": "p0"}, 422, "principal_fen"),
                                ({"principal_fen": 1_000 * WAN + 1, "idempotency_key": "p1"}, 409, "principal_fen"),
                                ({"principal_fen": WAN, "idempotency_key": "p2", "on_date": "2026-12-01"}, 409, "on_date"),
                                ({"principal_fen": WAN, "idempotency_key": "bad key"}, 422, "idempotency_key"),
                                ({"principal_fen": WAN}, 422, "idempotency_key")):
        _error(client.post(f"{API}/lines/{line_id}/drawings/{drawn['drawing_id']}/prepayments", json=body, headers=rep), status, field)
    _error(client.post(f"{API}/lines/{line_id}/drawings/999999/prepayments", json={"principal_fen": WAN, "idempotency_key": "p3"}, headers=rep),
           404, "drawing_id")
    assert _rows(rt) == before
    r = client.post(f"{API}/lines/{line_id}/drawings/{drawn['drawing_id']}/prepayments", json={"principal_fen": 400 * WAN, "idempotency_key": "p4"},
                    headers=rep)
    assert r.status_code == 201, r.text
    assert r.json() == {"drawing_id": drawn["drawing_id"], "principal_fen": 400 * WAN, "interest_fen": 0, "schedule_version": 2, "replayed": False}
    d = client.get(f"{API}/lines/{line_id}/drawings/{drawn['drawing_id']}", headers=rep).json()
    assert d["schedule_version"] == 2 and sum(i["principal_fen"] for i in d["schedule"]) == 600 * WAN
    assert d["balances"]["principal_fen"] == 600 * WAN
    check_ledger(rt)


def test_classification_and_end_of_day_over_http(client, rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    drawing_id = draw(rt, line_id, 100 * WAN, D0).drawing.id
    eod(rt, date(2026, 12, 25))  # the settlement of 12-20 unpaid: 关注
    officer, rep = login(client, "officer-yongjia"), login(client, "rep-s2")
    path = f"{API}/lines/{line_id}/drawings/{drawing_id}/classification"
    before = _rows(rt)
    _error(client.post(path, json={"risk_class": "normal", "note": "承诺还款"}, headers=officer), 409, "risk_class")
    _error(client.post(path, json={"risk_class": "worse", "note": "x"}, headers=officer), 422, "risk_class")
    _error(client.post(path, json={"risk_class": "loss", "note": ""}, headers=officer), 422, "note")
    _error(client.post(path, json={"risk_class": "loss", "note": "x"}, headers=rep), 403, None)
    assert _rows(rt) == before
    r = client.post(path, json={"risk_class": "doubtful", "note": "经营恶化，担保人失联"}, headers=officer)
    assert r.status_code == 200, r.text
    assert r.json() == {"drawing_id": drawing_id, "risk_class": "doubtful", "officer_class": "doubtful"}
    line = client.get(f"{API}/lines/{line_id}", headers=rep).json()
    assert line["risk_class"] == "doubtful" and line["balances"]["overdue_interest_fen"] > 0
    page = client.get(f"{API}/lines/{line_id}/drawings", headers=rep).json()
    assert [x["id"] for x in page["drawings"]] == [drawing_id] and page["next_after_id"] is None
    rt.clock.value = datetime(2026, 12, 27, 2, 0, tzinfo=timezone.utc)
    ops, rep = login(client, "ops"), login(client, "rep-s2")
    _error(client.post(f"{API}/eod", json={"business_date": "2026-12-24"}, headers=ops), 409, "business_date")  # before the last closed
    _error(client.post(f"{API}/eod", json={"business_date": "2026-12-28"}, headers=ops), 409, "business_date")  # in the future
    _error(client.post(f"{API}/eod", json={"business_date": "2026-12-32"}, headers=ops), 422, "business_date")
    r = client.post(f"{API}/eod", json={"business_date": "2026-12-27"}, headers=ops)
    assert r.status_code == 200, r.text
    assert [x["business_date"] for x in r.json()["days"]] == ["2026-12-26", "2026-12-27"] and r.json()["last_closed_on"] == "2026-12-27"
    assert client.get(f"{API}/lines/{line_id}/drawings/{drawing_id}", headers=rep).json()["days_past_due"] == 6
    check_ledger(rt)
