"""Acknowledged means committed, over every write route, on SQLite and PostgreSQL,
through a real HTTP server: a 2xx is followed at once by a read that sees the
write; with every commit made to fail, no route answers 2xx and nothing is stored."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from conftest import TEST_PASSWORD, CommitFails, known_to_decline, login, serve
from sqlalchemy import text

from sandu.api.app import create_app
from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES

API = "/api/v1"
S1, S2, S4, S5 = STORY_ROWS[0], STORY_ROWS[1], STORY_ROWS[3], STORY_ROWS[4]
ROUNDS = 15  # each write route, this many times: create, then read at once
TABLES = ("enterprises", "consents", "source_reads", "profiles", "decisions", "offers", "credit_lines", "drawings",
          "journal_entries", "postings", "instalments", "dues", "classification_changes", "business_calendar", "eod_runs", "users", "refresh_tokens", "enterprise_members", "audit_log", "audit_head", "source_payloads", "erasures",
          "applications", "application_transitions", "human_reviews")


@pytest.fixture
def client(rt):
    for base in serve(create_app(rt)):
        with httpx.Client(base_url=base, timeout=30) as c:
            yield c


def _outsider(k: int) -> dict[str, str]:
    """A valid enterprise the business registry does not know, and a person to sign up as its legal representative."""
    body = f"{70_000_000 + k:08d}"
    uscc = make_uscc("9", "1", "330302", body + org_code_check_char(body))
    rep = make_resident_id("330302", date(1980, 1, 1) + timedelta(days=k), f"{(2 * k + 1) % 1000:03d}")
    return {"uscc": uscc, "name": f"测试科技{k}号有限公司", "username": f"outsider-{k}", "password": TEST_PASSWORD, "resident_id": rep}


def _ok(r: httpx.Response, status: int = 201) -> dict:
    assert r.status_code == status, r.text
    return r.json()


def _dump(rt) -> dict[str, list]:
    with rt.engine.connect() as conn:
        return {t: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in TABLES}


def _measured(client, auth, row, scopes=ALL_SOURCES) -> tuple[str, dict]:
    consent = _ok(client.post(f"{API}/enterprises/{row['uscc']}/consents", json={"scopes": list(scopes), "bureau_authorization": "credit_bureau" in scopes}, headers=auth))
    return consent["id"], _ok(client.post(f"{API}/enterprises/{row['uscc']}/measurements", json={"consent_id": consent["id"]}, headers=auth))


def _register(client, auth, row) -> dict:
    return _ok(client.post(f"{API}/enterprises", json={"uscc": row["uscc"], "name": row["name"]}, headers=auth))


def test_every_write_is_visible_to_the_next_read(client, rt):
    # sign up → log in; register → read
    for k in range(ROUNDS):
        e = _outsider(k)
        assert _ok(client.post(f"{API}/auth/signup", json={x: e[x] for x in ("username", "password", "resident_id")}))["username"] == e["username"]
        auth = login(client, e["username"])
        assert _ok(client.get(f"{API}/auth/me", headers=auth), 200)["username"] == e["username"]
        assert _register(client, auth, e)["uscc"] == e["uscc"]
        assert _ok(client.get(f"{API}/enterprises/{e['uscc']}", headers=auth), 200)["name"] == e["name"]
    rep2, rep4 = login(client, "rep-s2"), login(client, "rep-s4")
    _register(client, rep2, S2)
    _register(client, rep4, S4)
    # consent → measurement (which reads the consent) → decision read
    for _ in range(ROUNDS):
        _, d = _measured(client, rep2, S2)
        assert _ok(client.get(f"{API}/decisions/{d['id']}", headers=rep2), 200)["comprehensive_limit_fen"] == d["comprehensive_limit_fen"]
    # revoke → a measurement at once sees the revocation
    for _ in range(ROUNDS):
        cid, _ = _measured(client, rep2, S2)
        assert _ok(client.post(f"{API}/consents/{cid}/revoke", headers=rep2), 200)["revoked_at"]
        r = client.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": cid}, headers=rep2)
        assert r.status_code == 403 and "revoked" in r.json()["error"]["message"], r.text
    # review → read; approve → read
    officer, approver = login(client, "officer-longwan"), login(client, "approver-longwan")
    for _ in range(ROUNDS):
        _, d = _measured(client, rep4, S4)
        url = f"{API}/decisions/{d['id']}/offers/wangdaitong"
        reviewed = _ok(client.post(f"{url}/review", json={"opinion": "押品足值，同意"}, headers=officer), 200)
        assert _ok(client.get(f"{API}/decisions/{d['id']}", headers=officer), 200)["offers"] == reviewed["offers"]
        approved = _ok(client.post(f"{url}/approve", headers=approver), 200)
        assert _ok(client.get(f"{API}/decisions/{d['id']}", headers=rep4), 200)["offers"] == approved["offers"]
    # decline (拒绝) a referred application → the applicant sees it declined at once
    rep5, officer5 = login(client, "rep-s5"), login(client, "officer-cangnan")
    _register(client, rep5, S5)
    for _ in range(3):
        _, d = _measured(client, rep5, S5)
        assert d["outcome"] == "refer"
        declined = _ok(client.post(f"{API}/applications/{d['application_id']}/decline", json={"reason": "押品估值存疑"}, headers=officer5), 200)
        seen = _ok(client.get(f"{API}/applications/{d['application_id']}", headers=rep5), 200)
        assert seen["state"] == declined["state"] == "declined" and seen["transitions"] == declined["transitions"]
        assert seen["transitions"][-1]["action"] == "reject" and "押品估值存疑" in seen["transitions"][-1]["reason"]
    # accept → read the line
    _, d = _measured(client, rep2, S2)
    line = _ok(client.post(f"{API}/decisions/{d['id']}/offers/jingying_kuaidai/accept", headers=rep2))
    assert _ok(client.get(f"{API}/lines/{line['id']}", headers=rep2), 200)["limit_fen"] == line["limit_fen"]
    # draw / repay → the line shows it at once
    drawn = 0
    for k in range(ROUNDS):
        amount = random.randint(1, 10_000)
        _ok(client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": amount, "idempotency_key": f"d{k}"}, headers=rep2))
        drawn += amount
        assert _ok(client.get(f"{API}/lines/{line['id']}", headers=rep2), 200)["drawn_principal_fen"] == drawn
        _ok(client.post(f"{API}/lines/{line['id']}/repayments", json={"amount_fen": amount, "idempotency_key": f"r{k}"}, headers=rep2))
        drawn -= amount
        assert _ok(client.get(f"{API}/lines/{line['id']}", headers=rep2), 200)["drawn_principal_fen"] == drawn
    # end of day → the line is accrued through that day
    _ok(client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 1_000_000, "idempotency_key": "eod-draw"}, headers=rep2))
    today = rt.today()
    rt.clock.value = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=3)
    ops = login(client, "ops")
    eod = _ok(client.post(f"{API}/eod", json={"business_date": today.isoformat()}, headers=ops), 200)
    assert eod["last_closed_on"] == today.isoformat() and eod["days"][-1]["lines"] >= 1
    assert _ok(client.get(f"{API}/lines/{line['id']}", headers=login(client, "rep-s2")), 200)["accrued_through"] == today.isoformat()
    # delegate → the delegate reads the enterprise at once; disable → the user is refused at once
    e = _outsider(500)
    _ok(client.post(f"{API}/auth/signup", json={x: e[x] for x in ("username", "password", "resident_id")}))
    rep2 = login(client, "rep-s2")
    _ok(client.post(f"{API}/enterprises/{S2['uscc']}/delegates", json={"username": e["username"]}, headers=rep2))
    delegate = login(client, e["username"])
    assert _ok(client.get(f"{API}/enterprises/{S2['uscc']}", headers=delegate), 200)["uscc"] == S2["uscc"]
    admin = login(client, "admin")
    staff = _ok(client.post(f"{API}/users", json={"username": "officer-new", "password": TEST_PASSWORD, "role": "officer", "branch": "永嘉",
                                                   "authority_fen": 1_000_000}, headers=admin))
    assert login(client, "officer-new")
    _ok(client.post(f"{API}/users/{staff['id']}/disable", headers=admin), 200)
    assert client.post(f"{API}/auth/token", data={"username": "officer-new", "password": TEST_PASSWORD}).status_code == 401
    # refresh → the next refresh sees the snapshot it kept; erasure → the enterprise's erasure list shows it at once
    risk, previous = login(client, "risk"), None
    for _ in range(3):
        done = _ok(client.post(f"{API}/enterprises/{S4['uscc']}/refresh", json={}, headers=risk), 200)
        assert previous is None or done["previous_sha256"] == previous
        previous = done["profile_sha256"]
    for k in range(3):
        rt.clock.value += timedelta(minutes=1)  # newest first: each request a minute after the last
        erased = _ok(client.post(f"{API}/enterprises/{S4['uscc']}/erasures", json={"reason": f"申请人书面申请 第{k}号"}, headers=admin))
        listed = _ok(client.get(f"{API}/enterprises/{S4['uscc']}/erasures", headers=admin), 200)["erasures"]
        assert [e["id"] for e in listed][0] == erased["id"] and len(listed) == k + 1
    r = client.post(f"{API}/enterprises/{S4['uscc']}/refresh", json={}, headers=risk)
    assert r.status_code == 403 and "no live consent" in r.json()["error"]["message"], r.text  # erasure stopped the reads
    # the workflow: an outsider is declined → asks for a human review → the application and the 鹿城 queue show it at once;
    # reviewed → decided → the applicant sees the outcome at once; a new measurement → withdrawn → the application says so
    e = _outsider(700)
    known_to_decline(rt, e["uscc"], e["name"], e["resident_id"])
    _ok(client.post(f"{API}/auth/signup", json={x: e[x] for x in ("username", "password", "resident_id")}))
    for name, role in (("officer-lucheng", "officer"), ("approver-lucheng", "approver")):
        _ok(client.post(f"{API}/users", json={"username": name, "password": TEST_PASSWORD, "role": role, "branch": "鹿城", "authority_fen": 1_000_000},
                        headers=admin))
    auth, officer_lc, approver_lc = login(client, e["username"]), login(client, "officer-lucheng"), login(client, "approver-lucheng")
    _register(client, auth, e)
    _, d = _measured(client, auth, e)
    assert d["outcome"] == "decline"
    asked = _ok(client.post(f"{API}/decisions/{d['id']}/human-review", json={"reason": "请人工复核"}, headers=auth))
    assert _ok(client.get(f"{API}/applications/{d['application_id']}", headers=auth), 200)["human_review"] == asked["human_review"]
    assert [r["application_id"] for r in _ok(client.get(f"{API}/referrals", headers=officer_lc), 200)["referrals"]] == [d["application_id"]]
    _ok(client.post(f"{API}/decisions/{d['id']}/human-review/review", json={"outcome": "reassess", "opinion": "重新测额"}, headers=officer_lc), 200)
    decided = _ok(client.post(f"{API}/decisions/{d['id']}/human-review/decide", headers=approver_lc), 200)
    seen = _ok(client.get(f"{API}/applications/{d['application_id']}", headers=auth), 200)
    assert seen["state"] == decided["state"] == "authorized" and seen["human_review"]["status"] == "reassess"
    assert _ok(client.get(f"{API}/referrals", headers=officer_lc), 200)["total"] == 0
    withdrawn = _ok(client.post(f"{API}/applications/{d['application_id']}/withdraw", json={"reason": "不再申请"}, headers=auth), 200)
    assert _ok(client.get(f"{API}/applications/{d['application_id']}", headers=auth), 200)["transitions"] == withdrawn["transitions"]


def test_a_failed_commit_is_never_acknowledged_and_stores_nothing(client, rt):
    # What the write routes need to exist before the commits start failing (logging in writes too).
    rep2, rep4, officer, approver, ops, admin = (login(client, u) for u in ("rep-s2", "rep-s4", "officer-longwan", "approver-longwan", "ops", "admin"))
    _register(client, rep2, S2)
    _register(client, rep4, S4)
    cid, d2 = _measured(client, rep2, S2)
    _, d4 = _measured(client, rep4, S4)
    _, d4b = _measured(client, rep4, S4)
    _ok(client.post(f"{API}/decisions/{d4b['id']}/offers/wangdaitong/review", json={"opinion": "同意"}, headers=officer), 200)
    line = _ok(client.post(f"{API}/decisions/{d2['id']}/offers/jingying_kuaidai/accept", headers=rep2))
    _ok(client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 5_000, "idempotency_key": "before"}, headers=rep2))
    declined = _outsider(998)  # declined: its legal representative asks for a human review, which an officer reviews
    known_to_decline(rt, declined["uscc"], declined["name"], declined["resident_id"])
    _ok(client.post(f"{API}/auth/signup", json={x: declined[x] for x in ("username", "password", "resident_id")}))
    rep_x = login(client, declined["username"])
    _register(client, rep_x, declined)
    _, dx = _measured(client, rep_x, declined)
    _, dy = _measured(client, rep_x, declined)  # a second decline of the same application: the first is superseded
    for name, role in (("officer-lucheng", "officer"), ("approver-lucheng", "approver")):
        _ok(client.post(f"{API}/users", json={"username": name, "password": TEST_PASSWORD, "role": role, "branch": "鹿城", "authority_fen": 1_000_000},
                        headers=admin))
    officer_lc, approver_lc = login(client, "officer-lucheng"), login(client, "approver-lucheng")
    _ok(client.post(f"{API}/decisions/{dy['id']}/human-review", json={"reason": "请复核"}, headers=rep_x))
    _ok(client.post(f"{API}/decisions/{dy['id']}/human-review/review", json={"outcome": "upheld", "opinion": "维持"}, headers=officer_lc), 200)
    declined_more = []  # two more declined outsiders: one to ask for a review while commits fail, one whose request an officer reviews then
    for k in (996, 997):
        o = _outsider(k)
        known_to_decline(rt, o["uscc"], o["name"], o["resident_id"])
        _ok(client.post(f"{API}/auth/signup", json={x: o[x] for x in ("username", "password", "resident_id")}))
        rep_o = login(client, o["username"])
        _register(client, rep_o, o)
        declined_more.append((rep_o, _measured(client, rep_o, o)[1]))
    (rep_w, dw), (rep_z, dz) = declined_more
    _ok(client.post(f"{API}/decisions/{dz['id']}/human-review", json={"reason": "请复核"}, headers=rep_z))
    _, d4c = _measured(client, rep4, S4)  # S4's application, open, to withdraw
    rep5 = login(client, "rep-s5")
    _register(client, rep5, S5)
    _, d5 = _measured(client, rep5, S5)  # S5's application, referred, to decline
    officer5 = login(client, "officer-cangnan")
    outsider = _outsider(999)
    writes = [
        ("POST", f"{API}/auth/signup", {x: outsider[x] for x in ("username", "password", "resident_id")}, None),
        ("POST", f"{API}/enterprises", {"uscc": S1["uscc"], "name": S1["name"]}, login(client, "rep-s1")),
        ("POST", f"{API}/enterprises/{S2['uscc']}/consents", {"scopes": list(ALL_SOURCES), "bureau_authorization": True}, rep2),
        ("POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"consent_id": cid}, rep2),
        ("POST", f"{API}/consents/{cid}/revoke", None, rep2),
        ("POST", f"{API}/decisions/{d4['id']}/offers/wangdaitong/review", {"opinion": "同意"}, officer),
        ("POST", f"{API}/decisions/{d4b['id']}/offers/wangdaitong/approve", None, approver),
        ("POST", f"{API}/lines/{line['id']}/draws", {"amount_fen": 1_000, "idempotency_key": "during"}, rep2),
        ("POST", f"{API}/lines/{line['id']}/repayments", {"amount_fen": 1_000, "idempotency_key": "during-r"}, rep2),
        ("POST", f"{API}/eod", {"business_date": (rt.today() - timedelta(days=1)).isoformat()}, ops),
        ("POST", f"{API}/users", {"username": "new-auditor", "password": TEST_PASSWORD, "role": "auditor"}, admin),
        ("POST", f"{API}/enterprises/{S2['uscc']}/refresh", {}, login(client, "risk")),
        ("POST", f"{API}/enterprises/{S2['uscc']}/erasures", {"reason": "申请人书面申请"}, admin),
        ("POST", f"{API}/decisions/{dy['id']}/human-review/decide", None, approver_lc),
        ("POST", f"{API}/decisions/{dw['id']}/human-review", {"reason": "请人工复核"}, rep_w),
        ("POST", f"{API}/decisions/{dz['id']}/human-review/review", {"outcome": "reassess", "opinion": "重新测额"}, officer_lc),
        ("POST", f"{API}/applications/{d4c['application_id']}/withdraw", {"reason": "不再申请"}, rep4),
        ("POST", f"{API}/applications/{d5['application_id']}/decline", {"reason": "押品估值存疑"}, officer5),
    ]
    before = _dump(rt)
    with CommitFails(rt.engine):
        for method, path, body, auth in writes:
            r = client.request(method, path, json=body, headers=auth)
            assert r.status_code == 500, f"{path}: {r.status_code} {r.text}"
            err = r.json()["error"]
            assert err["code"] == "internal" and err["incident"] and err["incident"] in err["message"]
            assert "Traceback" not in r.text and "OSError" not in r.text
        r = client.post(f"{API}/decisions/{d2['id']}/offers/jingying_kuaidai/accept", headers=rep2)
        assert r.status_code == 409  # already accepted: refused before any commit
        r = client.post(f"{API}/decisions/{dx['id']}/human-review", json={"reason": "请复核"}, headers=rep_x)
        assert r.status_code == 409  # superseded: refused before any commit
        r = client.post(f"{API}/auth/token", data={"username": "rep-s2", "password": TEST_PASSWORD})
        assert r.status_code == 500  # logging in writes (the session) and is not acknowledged either
    assert _dump(rt) == before
    # The same writes succeed once commits work again.
    assert client.post(f"{API}/auth/signup", json={x: outsider[x] for x in ("username", "password", "resident_id")}).status_code == 201
    assert client.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 1_000, "idempotency_key": "during"}, headers=rep2).status_code == 201
