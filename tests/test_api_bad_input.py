"""Every malformed input is refused the same way on SQLite and on PostgreSQL: a 4xx in
the one error format, naming the field, echoing at most a short prefix of what was
sent, and changing nothing — through a real HTTP server, on both stores."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
from conftest import login, new_db_url, runtime_on, serve
from sqlalchemy import text

from sandu.api.app import create_app
from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES

API = "/api/v1"
S2, S4 = STORY_ROWS[1], STORY_ROWS[3]
TABLES = ("enterprises", "consents", "source_reads", "profiles", "decisions", "offers", "credit_lines", "drawings",
          "journal_entries", "postings", "instalments", "dues", "classification_changes", "business_calendar", "eod_runs", "users", "refresh_tokens", "enterprise_members", "audit_log", "audit_head", "source_payloads", "erasures",
          "applications", "application_transitions", "human_reviews")
MAX_MESSAGE = 400  # characters: what was sent is never echoed back in full
NASTY = {"NUL": "\x00", "SOH": "\x01", "ESC": "\x1b", "CRLF": "\r\n", "ZWSP": "\u200b", "RLO": "\u202e", "BOM": "\ufeff", "LSEP": "\u2028"}
BORN_2100 = make_resident_id("330302", date(2100, 1, 1), "001")
BIG_ID = "x" * 1_000_000


def _register(**over) -> dict:
    return {"uscc": S2["uscc"], "name": S2["name"], **over}


def probes(ctx: dict) -> list[tuple[str, str, str, dict]]:
    """(label, method, path, request kwargs); `ctx` holds ids made beforehand."""
    line, cid, did = ctx["line"], ctx["consent"], ctx["decision4"]
    d2, app2, app4 = ctx["decision2"], ctx["application2"], ctx["application4"]
    out: list[tuple[str, str, str, dict]] = []
    for label, ch in NASTY.items():
        out += [
            (f"name with {label}", "POST", f"{API}/enterprises", {"json": _register(uscc=ctx["outsider"], name=f"温州{ch}阀门")}),
            (f"opinion with {label}", "POST", f"{API}/decisions/{did}/offers/wangdaitong/review", {"json": {"opinion": f"同{ch}意"}, "as": "officer-longwan"}),
            (f"consent id with {label}", "POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"json": {"consent_id": cid[:10] + ch + cid[11:]}}),
            (f"idempotency key with {label}", "POST", f"{API}/lines/{line}/draws", {"json": {"amount_fen": 1, "idempotency_key": f"k{ch}1"}}),
            (f"scope with {label}", "POST", f"{API}/enterprises/{S2['uscc']}/consents", {"json": {"scopes": [f"tax{ch}"]}}),
            (f"username with {label}", "POST", f"{API}/auth/signup", {"json": {"username": f"a{ch}b", "password": "x" * 12, "resident_id": BORN_2100}}),
            (f"erasure reason with {label}", "POST", f"{API}/enterprises/{S4['uscc']}/erasures", {"json": {"reason": f"申请{ch}人"}, "as": "admin"}),
            (f"human review reason with {label}", "POST", f"{API}/decisions/{d2}/human-review", {"json": {"reason": f"复{ch}核"}}),
            (f"withdrawal reason with {label}", "POST", f"{API}/applications/{app2}/withdraw", {"json": {"reason": f"撤{ch}回"}}),
            (f"decline reason with {label}", "POST", f"{API}/applications/{app4}/decline", {"json": {"reason": f"拒{ch}绝"}, "as": "officer-longwan"}),
            (f"referral branch with {label}", "GET", f"{API}/referrals", {"params": {"branch": f"龙{ch}湾"}, "as": "admin"}),
            (f"project name with {label}", "POST", f"{API}/enterprises/{S2['uscc']}/measurements",
             {"json": {"consent_id": cid, "project": {"name": f"厂{ch}房", "capex_fen": 1, "annual_cash_flow_fen": 1, "tenor_years": 1}}}),
        ]
    out += [
        ("NUL in a path id", "GET", f"{API}/decisions/{did[:5]}%00{did[6:]}", {}),
        ("NUL in a consent path", "POST", f"{API}/consents/{cid[:5]}%00{cid[6:]}/revoke", {}),
        ("NUL in a uscc path", "GET", f"{API}/enterprises/913303%0024708100023B", {}),
        ("placeholder USCC", "POST", f"{API}/enterprises", {"json": _register(uscc="000000000000000000")}),
        ("placeholder USCC path", "GET", f"{API}/enterprises/000000000000000000", {}),
        ("person born in 2100", "POST", f"{API}/auth/signup", {"json": {"username": "future", "password": "x" * 12, "resident_id": BORN_2100}}),
        ("password too short", "POST", f"{API}/auth/signup", {"json": {"username": "shorty", "password": "x" * 11, "resident_id": S2["legal_rep_id"]}}),
        ("requested 2**63", "POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"json": {"consent_id": cid, "requested_fen": 2**63}}),
        ("project capex 2**63", "POST", f"{API}/enterprises/{S2['uscc']}/measurements",
         {"json": {"consent_id": cid, "project": {"name": "厂房", "capex_fen": 2**63, "annual_cash_flow_fen": 1, "tenor_years": 1}}}),
        ("guarantee negative", "POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"json": {"consent_id": cid, "guarantee_fen": -1}}),
        ("guarantee fractional", "POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"json": {"consent_id": cid, "guarantee_fen": 1.5}}),
        ("project beyond the longest tenor", "POST", f"{API}/enterprises/{S2['uscc']}/measurements",
         {"json": {"consent_id": cid, "project": {"name": "厂房", "capex_fen": 1, "annual_cash_flow_fen": 1, "tenor_years": 11}}}),
        ("amount 2**63", "POST", f"{API}/lines/{line}/draws", {"json": {"amount_fen": 2**63, "idempotency_key": "k"}}),
        ("amount 1e400", "POST", f"{API}/lines/{line}/draws", {"content": b'{"amount_fen": 1e400, "idempotency_key": "k"}', "headers": {"content-type": "application/json"}}),
        ("amount 1.5", "POST", f"{API}/lines/{line}/draws", {"json": {"amount_fen": 1.5, "idempotency_key": "k"}}),
        ("amount as text", "POST", f"{API}/lines/{line}/draws", {"json": {"amount_fen": "100", "idempotency_key": "k"}}),
        ("amount true", "POST", f"{API}/lines/{line}/draws", {"json": {"amount_fen": True, "idempotency_key": "k"}}),
        ("amount NaN", "POST", f"{API}/lines/{line}/draws", {"content": b'{"amount_fen": NaN, "idempotency_key": "k"}', "headers": {"content-type": "application/json"}}),
        ("date as 0", "POST", f"{API}/lines/{line}/draws", {"json": {"amount_fen": 1, "idempotency_key": "k", "on_date": 0}}),
        ("date as number", "POST", f"{API}/lines/{line}/draws", {"json": {"amount_fen": 1, "idempotency_key": "k", "on_date": 20261129}}),
        ("date as timestamp", "POST", f"{API}/lines/{line}/repayments", {"json": {"amount_fen": 1, "idempotency_key": "k", "on_date": "2026-11-29T00:00:00"}}),
        ("date not a day", "POST", f"{API}/eod", {"json": {"business_date": "2026-02-30"}, "as": "ops"}),
        ("eod date as 0", "POST", f"{API}/eod", {"json": {"business_date": 0}, "as": "ops"}),
        ("unparsable body", "POST", f"{API}/enterprises", {"content": b"{", "headers": {"content-type": "application/json"}}),
        ("not UTF-8", "POST", f"{API}/enterprises", {"content": b'{"name": "\xff\xfe"}', "headers": {"content-type": "application/json"}}),
        ("text body", "POST", f"{API}/enterprises", {"content": b"uscc=1", "headers": {"content-type": "text/plain"}}),
        ("array body", "POST", f"{API}/enterprises", {"json": [1, 2]}),
        ("empty body", "POST", f"{API}/enterprises", {}),
        ("unknown field", "POST", f"{API}/enterprises", {"json": _register(owner="me")}),
        ("1 MB consent id", "POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"json": {"consent_id": BIG_ID}}),
        ("20 kB consent id", "POST", f"{API}/enterprises/{S2['uscc']}/measurements", {"json": {"consent_id": BIG_ID[:20_000]}}),
        ("20 kB name", "POST", f"{API}/enterprises", {"json": _register(uscc=ctx["outsider"], name=BIG_ID[:20_000])}),
        ("1 MB name", "POST", f"{API}/enterprises", {"json": _register(uscc=ctx["outsider"], name=BIG_ID)}),
        ("10 kB path id", "GET", f"{API}/decisions/{'y' * 10_000}", {}),
        ("scopes twice", "POST", f"{API}/enterprises/{S2['uscc']}/consents", {"json": {"scopes": ["tax", "tax"]}}),
        ("scopes empty", "POST", f"{API}/enterprises/{S2['uscc']}/consents", {"json": {"scopes": []}}),
        ("valid days 0", "POST", f"{API}/enterprises/{S2['uscc']}/consents", {"json": {"scopes": list(ALL_SOURCES), "bureau_authorization": True, "valid_days": 0}}),
        ("valid days 2.5", "POST", f"{API}/enterprises/{S2['uscc']}/consents", {"json": {"scopes": list(ALL_SOURCES), "bureau_authorization": True, "valid_days": 2.5}}),
        ("signer in the body", "POST", f"{API}/enterprises/{S2['uscc']}/consents", {"json": {"scopes": ["tax"], "signer_id": S2["legal_rep_id"]}}),
        ("no token", "POST", f"{API}/enterprises", {"json": _register(), "as": None}),
        ("a forged token", "GET", f"{API}/auth/me", {"headers": {"Authorization": "Bearer e30.e30.AAAA"}, "as": None}),
        ("an officer's role on eod", "POST", f"{API}/eod", {"json": {"business_date": "2026-11-28"}, "as": "officer-longwan"}),
        ("a user id 0", "POST", f"{API}/users/0/disable", {"as": "admin"}),
        ("a role that does not exist", "POST", f"{API}/users", {"json": {"username": "who", "password": "x" * 12, "role": "king"}, "as": "admin"}),
        ("refresh token garbage", "POST", f"{API}/auth/refresh", {"json": {"refresh_token": "nope"}, "as": None}),
        ("refresh under another enterprise's consent", "POST", f"{API}/enterprises/{S4['uscc']}/refresh", {"json": {"consent_id": cid}, "as": "officer-longwan"}),
        ("refresh consent id not a uuid", "POST", f"{API}/enterprises/{S4['uscc']}/refresh", {"json": {"consent_id": "c-1"}, "as": "officer-longwan"}),
        ("refresh of an unregistered enterprise", "POST", f"{API}/enterprises/{ctx['outsider']}/refresh", {"json": {}, "as": "officer-longwan"}),
        ("refresh by the applicant", "POST", f"{API}/enterprises/{S2['uscc']}/refresh", {"json": {}}),
        ("erasure without a reason", "POST", f"{API}/enterprises/{S4['uscc']}/erasures", {"json": {}, "as": "admin"}),
        ("erasure reason empty", "POST", f"{API}/enterprises/{S4['uscc']}/erasures", {"json": {"reason": ""}, "as": "admin"}),
        ("erasure reason 501 characters", "POST", f"{API}/enterprises/{S4['uscc']}/erasures", {"json": {"reason": "x" * 501}, "as": "admin"}),
        ("erasure of an unregistered enterprise", "POST", f"{API}/enterprises/{ctx['outsider']}/erasures", {"json": {"reason": "申请"}, "as": "admin"}),
        ("erasure by the applicant", "POST", f"{API}/enterprises/{S2['uscc']}/erasures", {"json": {"reason": "申请"}}),
        ("line id 2**70", "GET", f"{API}/lines/{2**70}", {}),
        ("line id 0", "GET", f"{API}/lines/0", {}),
        ("journal limit 501", "GET", f"{API}/lines/{line}/journal?limit=501", {}),
        ("journal after -1", "GET", f"{API}/lines/{line}/journal?after_id=-1", {}),
        ("product not a code", "POST", f"{API}/decisions/{did}/offers/Wang%20Dai/approve", {"as": "approver-longwan"}),
        ("human review of an approved decision", "POST", f"{API}/decisions/{d2}/human-review", {"json": {"reason": "请复核"}}),
        ("human review without a reason", "POST", f"{API}/decisions/{d2}/human-review", {"json": {}}),
        ("human review reason 1001 characters", "POST", f"{API}/decisions/{d2}/human-review", {"json": {"reason": "x" * 1001}}),
        ("human review reason not text", "POST", f"{API}/decisions/{d2}/human-review", {"json": {"reason": 1}}),
        ("human review outcome unknown", "POST", f"{API}/decisions/{did}/human-review/review", {"json": {"outcome": "maybe", "opinion": "x"},
                                                                                                "as": "officer-longwan"}),
        ("human review never requested", "POST", f"{API}/decisions/{did}/human-review/review", {"json": {"outcome": "upheld", "opinion": "x"},
                                                                                                "as": "officer-longwan"}),
        ("human review decided unrequested", "POST", f"{API}/decisions/{did}/human-review/decide", {"as": "approver-longwan"}),
        ("human review by an officer", "POST", f"{API}/decisions/{did}/human-review", {"json": {"reason": "x"}, "as": "officer-longwan"}),
        ("withdrawal of a signed application", "POST", f"{API}/applications/{app2}/withdraw", {"json": {"reason": "撤回"}}),
        ("withdrawal without a reason", "POST", f"{API}/applications/{app2}/withdraw", {"json": {}}),
        ("withdrawal of another enterprise's application", "POST", f"{API}/applications/{app4}/withdraw", {"json": {"reason": "撤回"}}),
        ("decline without a reason", "POST", f"{API}/applications/{app4}/decline", {"json": {}, "as": "officer-longwan"}),
        ("decline reason empty", "POST", f"{API}/applications/{app4}/decline", {"json": {"reason": ""}, "as": "officer-longwan"}),
        ("decline of a partially approved application", "POST", f"{API}/applications/{app4}/decline", {"json": {"reason": "拒绝"}, "as": "officer-longwan"}),
        ("decline of another sub-branch's application", "POST", f"{API}/applications/{app2}/decline", {"json": {"reason": "拒绝"}, "as": "officer-longwan"}),
        ("decline by the applicant", "POST", f"{API}/applications/{app2}/decline", {"json": {"reason": "拒绝"}}),
        ("decline by an approver", "POST", f"{API}/applications/{app4}/decline", {"json": {"reason": "拒绝"}, "as": "approver-longwan"}),
        ("application id 0", "GET", f"{API}/applications/0", {}),
        ("application id 2**70", "GET", f"{API}/applications/{2**70}", {}),
        ("application id not a number", "GET", f"{API}/applications/abc", {}),
        ("referrals limit 201", "GET", f"{API}/referrals", {"params": {"limit": 201}, "as": "officer-longwan"}),
        ("referrals limit 0", "GET", f"{API}/referrals", {"params": {"limit": 0}, "as": "officer-longwan"}),
        ("referrals offset -1", "GET", f"{API}/referrals", {"params": {"offset": -1}, "as": "officer-longwan"}),
        ("referrals of another sub-branch", "GET", f"{API}/referrals", {"params": {"branch": "永嘉"}, "as": "officer-longwan"}),
        ("referrals branch 17 characters", "GET", f"{API}/referrals", {"params": {"branch": "x" * 17}, "as": "admin"}),
        ("referrals by the applicant", "GET", f"{API}/referrals", {}),
        ("unknown path", "GET", f"{API}/nothing-here", {}),
        ("wrong method", "DELETE", f"{API}/lines/{line}", {}),
    ]
    return out


def _dump(rt) -> dict[str, list]:
    with rt.engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in TABLES}


def _setup(c: httpx.Client) -> dict:
    rep2, rep4 = login(c, "rep-s2"), login(c, "rep-s4")
    for row, auth in ((S2, rep2), (S4, rep4)):
        assert c.post(f"{API}/enterprises", json={k: row[k] for k in ("uscc", "name")}, headers=auth).status_code == 201
    consent = c.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": list(ALL_SOURCES), "bureau_authorization": True}, headers=rep2).json()["id"]
    m2 = c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": consent}, headers=rep2).json()
    d2 = m2["id"]
    c4 = c.post(f"{API}/enterprises/{S4['uscc']}/consents", json={"scopes": list(ALL_SOURCES), "bureau_authorization": True}, headers=rep4).json()["id"]
    m4 = c.post(f"{API}/enterprises/{S4['uscc']}/measurements", json={"consent_id": c4}, headers=rep4).json()
    d4 = m4["id"]
    line = c.post(f"{API}/decisions/{d2}/offers/jingying_kuaidai/accept", headers=rep2).json()["id"]
    body = "70000000"
    return {"consent": consent, "decision4": d4, "line": line, "outsider": make_uscc("9", "1", "330302", body + org_code_check_char(body)),
            "decision2": d2, "application2": m2["application_id"], "application4": m4["application_id"]}


def _answers(url: str) -> dict[str, tuple]:
    rt = runtime_on(url)
    try:
        for base in serve(create_app(rt)):
            with httpx.Client(base_url=base, timeout=30) as c:
                ctx = _setup(c)
                tokens = {u: login(c, u) for u in ("rep-s2", "officer-longwan", "approver-longwan", "ops", "admin")}
                before = _dump(rt)
                answers = {}
                for label, method, path, kw in probes(ctx):
                    who = kw.pop("as", "rep-s2")
                    kw["headers"] = {**(tokens[who] if who else {}), **kw.get("headers", {})}
                    r = c.request(method, path, **kw)
                    assert 400 <= r.status_code < 500, f"{label}: {r.status_code} {r.text[:300]}"
                    err = r.json()["error"]
                    assert err["code"] and err["message"], label
                    assert len(r.text) <= MAX_MESSAGE * 3 and len(err["message"]) <= MAX_MESSAGE, f"{label}: echoes {len(err['message'])} characters"
                    answers[label] = (r.status_code, err["code"], err["field"])
                assert _dump(rt) == before, "a refused request changed the store"
                assert c.get(f"{API}/lines/{ctx['line']}", headers=tokens["rep-s2"]).status_code == 200  # the connection and the server are fine
        return answers
    finally:
        rt.engine.dispose()


def test_the_same_bad_input_gets_the_same_4xx_on_sqlite_and_postgresql(tmp_path, sqlite_template, pg_available, request):
    on_sqlite = _answers(next(new_db_url("sqlite", tmp_path, False, str(sqlite_template))))
    expected = {
        "placeholder USCC": (422, "invalid_input", "uscc"), "person born in 2100": (422, "invalid_input", "resident_id"),
        "no token": (401, "not_authenticated", None), "an officer's role on eod": (403, "not_permitted", None),
        "signer in the body": (422, "invalid_input", "signer_id"), "password too short": (422, "invalid_input", "password"),
        "requested 2**63": (422, "invalid_input", "requested_fen"), "date as 0": (422, "invalid_input", "on_date"),
        "unparsable body": (422, "invalid_input", "body"), "1 MB name": (413, "too_large", "body"),
        "20 kB name": (422, "invalid_input", "name"), "unknown path": (404, "not_found", None), "wrong method": (405, "method_not_allowed", None),
        "name with NUL": (422, "invalid_input", "name"), "opinion with RLO": (422, "invalid_input", "opinion"),
        "refresh under another enterprise's consent": (404, "not_found", "consent_id"), "refresh consent id not a uuid": (422, "invalid_input", "consent_id"),
        "refresh of an unregistered enterprise": (404, "not_found", "uscc"), "refresh by the applicant": (403, "not_permitted", None),
        "erasure without a reason": (422, "invalid_input", "reason"), "erasure reason 501 characters": (422, "invalid_input", "reason"),
        "erasure reason with CRLF": (422, "invalid_input", "reason"), "erasure of an unregistered enterprise": (404, "not_found", "uscc"),
        "erasure by the applicant": (403, "not_permitted", None),
        "human review of an approved decision": (409, "conflict", "decision_id"), "human review without a reason": (422, "invalid_input", "reason"),
        "human review reason 1001 characters": (422, "invalid_input", "reason"), "human review reason with NUL": (422, "invalid_input", "reason"),
        "human review outcome unknown": (422, "invalid_input", "outcome"), "human review never requested": (404, "not_found", "decision_id"),
        "human review decided unrequested": (404, "not_found", "decision_id"), "human review by an officer": (403, "not_permitted", None),
        "withdrawal of a signed application": (409, "conflict", "application"), "withdrawal without a reason": (422, "invalid_input", "reason"),
        "withdrawal of another enterprise's application": (404, "not_found", "application_id"),
        "decline without a reason": (422, "invalid_input", "reason"), "decline reason empty": (422, "invalid_input", "reason"),
        "decline reason with ZWSP": (422, "invalid_input", "reason"), "decline of a partially approved application": (409, "conflict", "application"),
        "decline of another sub-branch's application": (404, "not_found", "application_id"), "decline by the applicant": (403, "not_permitted", None),
        "decline by an approver": (409, "conflict", "application"),
        "application id 0": (422, "invalid_input", "application_id"), "application id not a number": (422, "invalid_input", "application_id"),
        "referrals limit 201": (422, "invalid_input", "limit"), "referrals offset -1": (422, "invalid_input", "offset"),
        "referrals of another sub-branch": (403, "not_permitted", "branch"), "referrals branch 17 characters": (422, "invalid_input", "branch"),
        "referrals by the applicant": (403, "not_permitted", None), "referral branch with NUL": (422, "invalid_input", "branch"),
    }
    assert {k: on_sqlite[k] for k in expected} == expected
    if not pg_available:
        pytest.skip("PostgreSQL not reachable: the SQLite half ran; set CI=true to require both")
    urls = new_db_url("postgres", tmp_path, pg_available, request.getfixturevalue("pg_template"))
    try:
        on_postgres = _answers(next(urls))
    finally:
        urls.close()
    assert json.dumps(on_postgres, sort_keys=True) == json.dumps(on_sqlite, sort_keys=True)
