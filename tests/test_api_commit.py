"""Acknowledged means committed, over every write route, on SQLite and PostgreSQL,
through a real HTTP server: a 2xx is followed at once by a read that sees the
write; with every commit made to fail, no route answers 2xx and nothing is stored."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from conftest import serve
from sqlalchemy import event, text

from sandu.api.app import create_app
from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES

API = "/api/v1"
S2, S4 = STORY_ROWS[1], STORY_ROWS[3]
ROUNDS = 15  # each write route, this many times: create, then read at once
TABLES = ("enterprises", "consents", "source_reads", "profiles", "decisions", "offers", "credit_lines", "drawings",
          "journal_entries", "postings", "interest_accruals")


@pytest.fixture
def client(rt):
    for base in serve(create_app(rt)):
        with httpx.Client(base_url=base, timeout=30) as c:
            yield c


def _outsider(k: int) -> dict[str, str]:
    """A valid enterprise the business registry does not know (so anyone valid may register it)."""
    body = f"{70_000_000 + k:08d}"
    uscc = make_uscc("9", "1", "330302", body + org_code_check_char(body))
    rep = make_resident_id("330302", date(1980, 1, 1) + timedelta(days=k), f"{(2 * k + 1) % 1000:03d}")
    return {"uscc": uscc, "name": f"测试科技{k}号有限公司", "legal_rep_id": rep}


def _ok(r: httpx.Response, status: int = 201) -> dict:
    assert r.status_code == status, r.text
    return r.json()


def _dump(rt) -> dict[str, list]:
    with rt.engine.connect() as conn:
        return {t: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in TABLES}


def _measured(client, row, scopes=ALL_SOURCES) -> tuple[str, dict]:
    consent = _ok(client.post(f"{API}/enterprises/{row['uscc']}/consents", json={"scopes": list(scopes), "signer_id": row["legal_rep_id"]}))
    return consent["id"], _ok(client.post(f"{API}/enterprises/{row['uscc']}/measurements", json={"consent_id": consent["id"]}))


def test_every_write_is_visible_to_the_next_read(client, rt):
    # register → read
    for k in range(ROUNDS):
        e = _outsider(k)
        assert _ok(client.post(f"{API}/enterprises", json=e))["uscc"] == e["uscc"]
        assert _ok(client.get(f"{API}/enterprises/{e['uscc']}"), 200)["name"] == e["name"]
    _ok(client.post(f"{API}/enterprises", json={k: S2[k] for k in ("uscc", "name", "legal_rep_id")}))
    _ok(client.post(f"{API}/enterprises", json={k: S4[k] for k in ("uscc", "name", "legal_rep_id")}))
    # consent → measurement (which reads the consent) → decision read
    for _ in range(ROUNDS):
        _, d = _measured(client, S2)
        assert _ok(client.get(f"{API}/decisions/{d['id']}"), 200)["comprehensive_limit_fen"] == d["comprehensive_limit_fen"]
    # revoke → a measurement at once sees the revocation
    for _ in range(ROUNDS):
        cid, _ = _measured(client, S2)
        assert _ok(client.post(f"{API}/consents/{cid}/revoke"), 200)["revoked_at"]
        r = client.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": cid})
        assert r.status_code == 403 and "revoked" in r.json()["error"]["message"], r.text
    # approve → read; accept → read the line
    for _ in range(ROUNDS):
        _, d = _measured(client, S4)
        approved = _ok(client.post(f"{API}/decisions/{d['id']}/offers/wangdaitong/approve", json={"officer": "龙湾支行 王经理"}), 200)
        assert _ok(client.get(f"{API}/decisions/{d['id']}"), 200)["offers"] == approved["offers"]
    _, d = _measured(client, S2)
    line = _ok(client.post(f"{API}/decisions/{d['id']}/offers/jingying_kuaidai/accept", json={"signer_id": S2["legal_rep_id"]}))
    assert _ok(client.get(f"{API}/lines/{line['id']}"), 200)["limit_fen"] == line["limit_fen"]
    # draw / repay → the line shows it at once
    drawn = 0
    for k in range(ROUNDS):
        amount = random.randint(1, 10_000)
        _ok(client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": amount, "idempotency_key": f"d{k}"}))
        drawn += amount
        assert _ok(client.get(f"{API}/lines/{line['id']}"), 200)["drawn_principal_fen"] == drawn
        _ok(client.post(f"{API}/lines/{line['id']}/repayments", json={"amount_fen": amount, "idempotency_key": f"r{k}"}))
        drawn -= amount
        assert _ok(client.get(f"{API}/lines/{line['id']}"), 200)["drawn_principal_fen"] == drawn
    # end of day → the line is accrued through that day
    _ok(client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 1_000_000, "idempotency_key": "eod-draw"}))
    today = rt.today()
    rt.clock.value = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=3)
    eod = _ok(client.post(f"{API}/eod", json={"business_date": today.isoformat()}), 200)
    assert eod["lines"] >= 1 and eod["remaining_lines"] == 0
    assert _ok(client.get(f"{API}/lines/{line['id']}"), 200)["accrued_through"] == today.isoformat()


class _CommitFails:
    """Make every commit on the engine fail, as a full disk or a lost server would."""

    def __init__(self, engine):
        self.engine = engine

    @staticmethod
    def _boom(_conn):
        raise OSError("commit failed (simulated)")

    def __enter__(self):
        event.listen(self.engine, "commit", self._boom)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "commit", self._boom)


def test_a_failed_commit_is_never_acknowledged_and_stores_nothing(client, rt):
    # What the write routes need to exist before the commits start failing.
    _ok(client.post(f"{API}/enterprises", json={k: S2[k] for k in ("uscc", "name", "legal_rep_id")}))
    _ok(client.post(f"{API}/enterprises", json={k: S4[k] for k in ("uscc", "name", "legal_rep_id")}))
    cid, d2 = _measured(client, S2)
    _, d4 = _measured(client, S4)
    line = _ok(client.post(f"{API}/decisions/{d2['id']}/offers/jingying_kuaidai/accept", json={"signer_id": S2["legal_rep_id"]}))
    _ok(client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 5_000, "idempotency_key": "before"}))
    outsider = _outsider(999)
    writes = [
        ("POST", f"{API}/enterprises", outsider),
        ("POST", f"{API}/enterprises/{S2['uscc']}/consents", {"scopes": list(ALL_SOURCES), "signer_id": S2["legal_rep_id"]}),
        ("POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"consent_id": cid}),
        ("POST", f"{API}/consents/{cid}/revoke", None),
        ("POST", f"{API}/decisions/{d4['id']}/offers/wangdaitong/approve", {"officer": "王经理"}),
        ("POST", f"{API}/decisions/{d4['id']}/offers/diya_xinyong/approve", {"officer": "王经理"}) if any(
            o["product"] == "diya_xinyong" for o in d4["offers"]) else None,
        ("POST", f"{API}/lines/{line['id']}/draws", {"amount_fen": 1_000, "idempotency_key": "during"}),
        ("POST", f"{API}/lines/{line['id']}/repayments", {"amount_fen": 1_000, "idempotency_key": "during-r"}),
        ("POST", f"{API}/eod", {"business_date": (rt.today() - timedelta(days=1)).isoformat()}),
    ]
    before = _dump(rt)
    with _CommitFails(rt.engine):
        for write in filter(None, writes):
            method, path, body = write
            r = client.request(method, path, json=body)
            assert r.status_code == 500, f"{path}: {r.status_code} {r.text}"
            err = r.json()["error"]
            assert err["code"] == "internal" and err["incident"] and err["incident"] in err["message"]
            assert "Traceback" not in r.text and "OSError" not in r.text
        r = client.post(f"{API}/decisions/{d2['id']}/offers/jingying_kuaidai/accept", json={"signer_id": S2["legal_rep_id"]})
        assert r.status_code == 409  # already accepted: refused before any commit
        page = client.post("/app/measure", data={**{k: S2[k] for k in ("uscc", "name", "legal_rep_id")}, "scopes": list(ALL_SOURCES)})
        assert page.status_code == 500 and "data-incident" in page.text and "text/html" in page.headers["content-type"]
    assert _dump(rt) == before
    # The same writes succeed once commits work again.
    assert client.post(f"{API}/enterprises", json=outsider).status_code == 201
    assert client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 1_000, "idempotency_key": "during"}).status_code == 201
