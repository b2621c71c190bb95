"""The logs of a whole run — sign-up, logins (good and bad), the five stories' acts through
the API, refusals and an incident — carry request ids and routes, and never a resident ID,
a password or a token."""

from __future__ import annotations

import io
import json
import logging

import httpx
import structlog
from conftest import TEST_PASSWORD, serve
from sqlalchemy import event

from sandu.api.app import create_app
from sandu.observability import configure_logging
from sandu.simulate.stories import STORY_ROWS

API = "/api/v1"
NEW_PERSON = "33030219850601017X"


def test_a_full_run_logs_no_personal_data_and_no_secret(rt_sqlite, caplog):
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [TEST_PASSWORD, NEW_PERSON, *(r["legal_rep_id"] for r in STORY_ROWS)]
    try:
        for base in serve(create_app(rt_sqlite)):
            with httpx.Client(base_url=base, timeout=30) as c:
                assert c.post(f"{API}/auth/signup", json={"username": "log-probe", "password": TEST_PASSWORD, "resident_id": NEW_PERSON}).status_code == 201
                assert c.post(f"{API}/auth/token", data={"username": "rep-s2", "password": "a wrong password!"}).status_code == 401
                for row in STORY_ROWS:
                    tokens = c.post(f"{API}/auth/token", data={"username": f"rep-{row['story'].lower()}", "password": TEST_PASSWORD}).json()
                    secrets += [tokens["access_token"], tokens["refresh_token"]]
                    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
                    c.post(f"{API}/enterprises", json={"uscc": row["uscc"], "name": row["name"]}, headers=auth)
                    cid = c.post(f"{API}/enterprises/{row['uscc']}/consents", json={"scopes": ["tax", "credit_bureau", "collateral"], "bureau_authorization": True}, headers=auth).json()["id"]
                    d = c.post(f"{API}/enterprises/{row['uscc']}/measurements", json={"consent_id": cid}, headers=auth).json()
                    for o in d["offers"]:
                        if o["approved_fen"]:
                            line = c.post(f"{API}/decisions/{d['id']}/offers/{o['product']}/accept", headers=auth).json()
                            c.post(f"{API}/lines/{line['id']}/draws", json={"amount_fen": 10_000, "idempotency_key": "log"}, headers=auth)
                    c.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
                assert c.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {secrets[-2]}x"}).status_code == 401
                assert c.post(f"{API}/enterprises", json={"uscc": STORY_ROWS[0]["legal_rep_id"], "name": "x"}, headers=auth).status_code == 422

                def boom(_conn):
                    raise OSError("commit failed (simulated)")

                event.listen(rt_sqlite.engine, "commit", boom)
                try:
                    assert c.post(f"{API}/auth/token", data={"username": "rep-s1", "password": TEST_PASSWORD}).status_code == 500
                finally:
                    event.remove(rt_sqlite.engine, "commit", boom)
    finally:
        structlog.reset_defaults()
    logs = buffer.getvalue() + "\n" + caplog.text
    lines = [json.loads(x) for x in buffer.getvalue().splitlines() if x.startswith("{")]
    assert len(lines) > 30 and all(x.get("request_id") for x in lines if x.get("event") == "request")
    assert {"auth.token", "enterprises.measure", "lines.draw"} <= {x.get("route") for x in lines}
    assert "incident" in logs and "OSError" in logs  # the incident is logged, with its id
    leaked = [s[:12] + "…" for s in secrets if s in logs]
    assert leaked == [], f"secrets in the logs: {leaked}"
