"""Consent you can prove: the exact text agreed to (hashed, stored, verified), the separate credit-bureau
authorization (征信授权书), scope enforcement, revocation in the middle of a measurement, and every read
logged with adapter, duration, outcome, reason and payload hash — through the services, the API and the CLI,
on SQLite and PostgreSQL alike."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from cli_support import sandu
from conftest import FIXED_NOW, PII_KEY, TEST_SECRET, actor, login, serve
from sqlalchemy import func, select, text

from sandu.api.app import create_app
from sandu.domain.errors import ConsentDenied, InvalidInput
from sandu.origination import actions
from sandu.origination import service as orig
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.consent_text import SCOPE_TEXTS, TEXT_VERSION, render_bureau_authorization, render_consent, sha256_text
from sandu.sources.profile import canonical_sha256
from sandu.store import models as m

S2, S3 = STORY_ROWS[1], STORY_ROWS[2]
API = "/api/v1"
SANDU = str(Path(sys.executable).with_name("sandu"))
TABLES = ("enterprises", "consents", "consent_texts", "source_reads", "profiles", "decisions", "offers", "audit_log")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _counts(rt) -> dict[str, int]:
    with rt.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}


def _register(rt, row=S2) -> None:
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=row["uscc"], name=row["name"], registrant=actor(rt, f"rep-{row['story'].lower()}"), pii_key=PII_KEY,
                                 now=FIXED_NOW)


def _grant(rt, row=S2, scopes=ALL_SOURCES, **kw) -> str:
    rep = actor(rt, f"rep-{row['story'].lower()}")
    args = {"purpose": "credit_measurement", "valid_days": 30, "bureau_authorization": "credit_bureau" in scopes, **kw}
    return actions.grant_consent(rt, rep, uscc=row["uscc"], scopes=list(scopes), **args).id


# --- the text agreed to -----------------------------------------------------------------------------------


def test_the_text_is_rendered_deterministically_stored_once_and_verified(rt_sqlite):
    rt = rt_sqlite
    _register(rt)
    cid = _grant(rt)
    again = _grant(rt)  # the same wording signed twice is stored once
    c = actions.get_consent(rt, cid)
    expected = render_consent(enterprise_name=S2["name"], uscc=S2["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=30)
    assert c.text == expected and c.text_sha256 == sha256_text(expected) and c.text_verified and c.problem is None
    assert c.text_version == TEXT_VERSION and c.language == "zh" and c.status == "live"
    bureau = render_bureau_authorization(enterprise_name=S2["name"], uscc=S2["uscc"], purpose="credit_measurement", valid_days=30)
    assert c.bureau_text == bureau and c.bureau_text_sha256 == sha256_text(bureau) and c.bureau_text_verified
    assert c.bureau_authorized_at is not None and "征信查询授权书" in bureau
    assert actions.get_consent(rt, again).text_sha256 == c.text_sha256
    with rt.uow.read() as s:
        assert s.scalar(select(func.count()).select_from(m.ConsentText)) == 2  # the consent text and the bureau text
    # every scope explained in plain Chinese in the text; the order of the request does not change the words
    for source in ALL_SOURCES:
        t = SCOPE_TEXTS[source]["zh"]
        assert f"读取什么：{t.what}" in c.text and f"用于什么：{t.purpose}" in c.text and f"保存多久：{t.retention}" in c.text
    assert render_consent(enterprise_name=S2["name"], uscc=S2["uscc"], scopes=list(reversed(ALL_SOURCES)), purpose="credit_measurement",
                          valid_days=30) == expected
    assert not re.search(r"[A-Za-z]{3,}", c.text.replace(TEXT_VERSION, "")), "no English words in a Chinese consent text"


def test_english_only_when_chosen(rt_sqlite):
    rt = rt_sqlite
    _register(rt)
    c = actions.get_consent(rt, _grant(rt, scopes=["tax", "credit_bureau"], language="en"))
    assert c.language == "en" and "What is read: " in c.text and "读取什么" not in c.text
    assert not CJK.search(c.text.replace(S2["name"], "")) and not CJK.search(c.bureau_text.replace(S2["name"], ""))
    assert [x.source for x in c.scopes_explained] == ["tax", "credit_bureau"] and not CJK.search(c.scopes_explained[0].what)


def test_an_altered_stored_text_is_detected(rt_sqlite, tmp_path):
    rt = rt_sqlite
    _register(rt)
    cid = _grant(rt)
    with rt.engine.begin() as conn:
        conn.execute(text("UPDATE consent_texts SET text = replace(text, '30天', '365天') WHERE sha256 = "
                          "(SELECT text_sha256 FROM consents WHERE id = :c)"), {"c": cid})
    c = actions.get_consent(rt, cid)
    assert not c.text_verified and "365天" in c.text and "altered" in c.problem and c.bureau_text_verified
    r = _cli(["consent", "show", cid], rt, tmp_path, process=True)  # a real process (exit 1); the other cases in this one
    assert r.returncode == 1 and "NOT verified" in r.stdout and "altered" in r.stderr, r.stdout + r.stderr


# --- refused grants: the field named, nothing written ------------------------------------------------------


@pytest.mark.parametrize(("over", "field"), [
    ({"scopes": ["tax", "credit_bureau"], "bureau_authorization": False}, "bureau_authorization"),
    ({"scopes": ["tax"], "bureau_authorization": True}, "bureau_authorization"),
    ({"scopes": ["tax", "astrology"]}, "scopes"),
    ({"language": "fr"}, "language"),
    ({"bureau_authorization": "yes"}, "bureau_authorization"),
])
def test_a_refused_grant_names_the_field_and_writes_nothing(rt_sqlite, over, field):
    rt = rt_sqlite
    _register(rt)
    before = _counts(rt)
    args = {"scopes": ["tax", "credit_bureau"], "purpose": "credit_measurement", "valid_days": 30, "bureau_authorization": True, **over}
    with pytest.raises(InvalidInput) as exc:
        actions.grant_consent(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], **args)
    assert exc.value.field == field and exc.value.http_status == 422
    assert _counts(rt) == before


@pytest.fixture
def api(rt):
    """The app on a real server over the test store (SQLite and PostgreSQL), S2 and S3 registered, one live consent each."""
    for base in serve(create_app(rt)):
        with httpx.Client(base_url=base, timeout=30) as c:
            rep2, rep3 = login(c, "rep-s2"), login(c, "rep-s3")
            for row, rep in ((S2, rep2), (S3, rep3)):
                assert c.post(f"{API}/enterprises", json={"uscc": row["uscc"], "name": row["name"]}, headers=rep).status_code == 201
            cid3 = c.post(f"{API}/enterprises/{S3['uscc']}/consents", json={"scopes": list(ALL_SOURCES), "bureau_authorization": True},
                          headers=rep3).json()["id"]
            yield SimpleNamespace(c=c, rt=rt, rep2=rep2, rep3=rep3, cid3=cid3)


def _error(r: httpx.Response, status: int, field: str | None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field, err
    return err


GRANT_REFUSALS = [  # (label, body, status, field, words in the message) — the same on SQLite and PostgreSQL
    ("bureau without its own authorization", {"scopes": ["tax", "credit_bureau"]}, 422, "bureau_authorization", "征信授权书"),
    ("bureau authorization without the scope", {"scopes": ["tax"], "bureau_authorization": True}, 422, "bureau_authorization", "credit_bureau"),
    ("unknown scope", {"scopes": ["tax", "astrology"], "bureau_authorization": False}, 422, "scopes.1", None),
    ("bureau authorization not a boolean", {"scopes": ["tax", "credit_bureau"], "bureau_authorization": "yes"}, 422, "bureau_authorization", None),
    ("unknown language", {"scopes": ["tax"], "language": "fr"}, 422, "language", None),
]


@pytest.mark.parametrize(("label", "body", "status", "field", "words"), GRANT_REFUSALS, ids=[g[0] for g in GRANT_REFUSALS])
def test_bad_grants_answer_the_same_4xx_on_both_backends_and_write_nothing(api, label, body, status, field, words):
    before = _counts(api.rt)
    err = _error(api.c.post(f"{API}/enterprises/{S2['uscc']}/consents", json=body, headers=api.rep2), status, field)
    assert words is None or words in err["message"], err
    assert _counts(api.rt) == before


def test_consent_for_another_enterprise_is_refused_and_writes_nothing(api):
    before = _counts(api.rt)
    # rep-s2 signs for S3, whose legal representative they are not: not within reach, like an unknown enterprise
    _error(api.c.post(f"{API}/enterprises/{S3['uscc']}/consents", json={"scopes": ["tax"]}, headers=api.rep2), 404, "uscc")
    # …nor measures S2 under S3's consent
    _error(api.c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": api.cid3}, headers=api.rep2), 404, "consent_id")
    # …nor reads S3's consent or its reads
    _error(api.c.get(f"{API}/consents/{api.cid3}/reads", headers=api.rep2), 404, "consent_id")
    assert _counts(api.rt) == before


def test_expired_and_revoked_consents_are_refused_and_write_nothing(api):
    c, rt = api.c, api.rt
    short = c.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": ["tax", "credit_bureau"], "bureau_authorization": True,
                                                                     "valid_days": 1}, headers=api.rep2).json()["id"]
    revoked = c.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": ["tax", "credit_bureau"], "bureau_authorization": True},
                     headers=api.rep2).json()["id"]
    assert c.post(f"{API}/consents/{revoked}/revoke", headers=api.rep2).json()["revoked_at"]
    rt.clock.value = FIXED_NOW + timedelta(days=2)
    rep2 = login(c, "rep-s2")  # (a log-in is audited: counted before the refusals)
    before = _counts(rt)
    err = _error(c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": revoked}, headers=rep2), 403, "consent_id")
    assert "revoked" in err["message"]
    err = _error(c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": short}, headers=rep2), 403, "consent_id")
    assert "expired" in err["message"]
    assert _counts(rt) == before
    # the whole history of the enterprise: live, revoked and expired, each with its scopes
    h = c.get(f"{API}/enterprises/{S2['uscc']}/consents", headers=rep2).json()
    assert {x["id"]: x["status"] for x in h["consents"]} == {short: "expired", revoked: "revoked"}
    assert all(x["scopes"] == ["credit_bureau", "tax"] and x["text_verified"] for x in h["consents"])
    rt.clock.value = FIXED_NOW


# --- reads: scope enforcement, the bureau, revocation in the middle ----------------------------------------


def test_a_read_outside_scope_is_refused_and_logged_and_the_application_proceeds(api):
    c, rt = api.c, api.rt
    cid = c.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": ["tax", "credit_bureau", "ip"], "bureau_authorization": True},
                 headers=api.rep2).json()["id"]
    d = c.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": cid}, headers=api.rep2)
    assert d.status_code == 201, d.text
    assert {f.split(":")[0] for f in d.json()["quality_flags"] if f.endswith(":not_read")} == set(ALL_SOURCES) - {"tax", "credit_bureau", "ip"}
    reads = c.get(f"{API}/consents/{cid}/reads", headers=api.rep2).json()
    assert reads["status"] == "live" and reads["uscc"] == S2["uscc"]
    by_source = {r["source"]: r for r in reads["reads"]}
    assert set(by_source) == set(ALL_SOURCES)
    with rt.uow.read() as s:
        payloads = {r.source: r.payload for r in s.scalars(select(m.SourceRecord).where(m.SourceRecord.uscc == S2["uscc"]))}
    for source, r in by_source.items():
        if source in ("tax", "credit_bureau", "ip"):
            assert (r["outcome"], r["adapter"], r["payload_sha256"]) == ("found", "simulated", canonical_sha256(payloads[source])), r
        else:
            assert (r["outcome"], r["payload_sha256"], r["reason"]) == ("refused", None, orig.OUTSIDE_SCOPE), r
    # staff of the enterprise's sub-branch see the same log; the consent itself, explained
    officer = login(c, "officer-yongjia")
    assert c.get(f"{API}/consents/{cid}/reads", headers=officer).json() == reads
    detail = c.get(f"{API}/consents/{cid}", headers=officer).json()
    assert detail["text_verified"] and [x["source"] for x in detail["scopes_explained"]] == ["tax", "ip", "credit_bureau"]
    assert detail["scopes_explained"][0]["what"] == SCOPE_TEXTS["tax"]["zh"].what


def test_a_consent_without_its_bureau_authorization_reads_no_bureau(rt):
    """A consent of before bureau authorizations were kept (revision 0006) lists the bureau without one: refused before any read."""
    _register(rt)
    cid = _grant(rt, scopes=["tax", "credit_bureau"])
    with rt.engine.begin() as conn:
        conn.execute(text("UPDATE consents SET bureau_authorized_at = NULL, bureau_text_sha256 = NULL WHERE id = :c"), {"c": cid})
    before = _counts(rt)
    with pytest.raises(ConsentDenied) as exc:
        actions.measure(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], consent_id=cid)
    assert exc.value.field == "consent_id" and "征信授权书" in exc.value.message and exc.value.http_status == 403
    assert _counts(rt) == before


def test_revocation_between_reading_and_recording_records_no_decision_but_logs_the_reads(rt, monkeypatch):
    _register(rt)
    cid = _grant(rt)
    rep = actor(rt, "rep-s2")
    real = orig.compute_measurement

    def revoke_while_scoring(*args, **kw):  # runs after the read transaction, before the write one
        actions.revoke_consent(rt, rep, cid)
        return real(*args, **kw)

    monkeypatch.setattr(orig, "compute_measurement", revoke_while_scoring)
    before = _counts(rt)
    with pytest.raises(ConsentDenied) as exc:
        actions.measure(rt, rep, uscc=S2["uscc"], consent_id=cid)
    assert exc.value.field == "consent_id" and exc.value.http_status == 403 and "no decision was recorded" in exc.value.message
    after = _counts(rt)
    assert after["decisions"] == before["decisions"] and after["profiles"] == before["profiles"] and after["offers"] == before["offers"]
    assert after["source_reads"] == before["source_reads"] + len(ALL_SOURCES)  # the reads made are logged
    reads = actions.consent_reads(rt, cid)
    assert reads.status == "revoked" and all(r.outcome == "found" and "not used" in r.reason for r in reads.reads)
    with rt.uow.read() as s:
        assert s.scalar(select(m.Enterprise.live_decision_id).where(m.Enterprise.uscc == S2["uscc"])) is None


def test_reads_carry_what_the_adapter_reported_in_the_api_and_the_cli(rt_sqlite, tmp_path):
    """When the reading step reports each read (adapter, outcome, reason, duration, payload hash), the log keeps exactly that."""
    rt = rt_sqlite
    _register(rt)
    cid = _grant(rt)
    with rt.uow.read() as s:
        prepared = orig.prepare_measurement(s, uscc=S2["uscc"], consent_id=cid, as_of=rt.today(), now=rt.now(), bundle=rt.bundle)
    computed = orig.compute_measurement(prepared, rt.today(), rt.bundle, rt.model, rt.tech)
    reported = {source: SimpleNamespace(adapter="simulated", outcome="found", reason="", duration_ms=1.25,
                                        payload_sha256=canonical_sha256(payload)) for source, payload in prepared.payloads.items()}
    reported["bank_flows"] = SimpleNamespace(adapter="http", outcome="timeout", reason="no answer within 2000 ms", duration_ms=2000.5,
                                             payload_sha256=None)
    with rt.uow.write() as s:
        orig.record_measurement(s, SimpleNamespace(**{**prepared.__dict__, "reads": reported}), computed, as_of=rt.today(), now=rt.now(),
                                bundle=rt.bundle, model=rt.model, tech=rt.tech)
    reads = {r.source: r for r in actions.consent_reads(rt, cid).reads}
    assert (reads["bank_flows"].adapter, reads["bank_flows"].outcome, reads["bank_flows"].duration_ms) == ("http", "timeout", 2000.5)
    assert reads["tax"].duration_ms == 1.25 and reads["tax"].payload_sha256 == reported["tax"].payload_sha256
    r = _cli(["consent", "show", cid], rt, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified" in r.stdout and actions.get_consent(rt, cid).text_sha256 in r.stdout and "读取什么" in r.stdout
    assert "http" in r.stdout and "timeout" in r.stdout and "2000.500" in r.stdout and reported["tax"].payload_sha256 in r.stdout
    h = _cli(["consent", "history", "--enterprise", S2["uscc"]], rt, tmp_path)
    assert h.returncode == 0 and cid in h.stdout and "live" in h.stdout, h.stdout + h.stderr
    bad = _cli(["consent", "show", "not-a-consent"], rt, tmp_path)
    assert bad.returncode == 2 and "consent" in bad.stderr and "Traceback" not in bad.stderr


def test_scopes_are_explained_before_signing_in_chinese_and_in_english_only_when_chosen(api):
    zh = api.c.get(f"{API}/consents/scopes", headers=api.rep2).json()
    assert zh["language"] == "zh" and [x["source"] for x in zh["scopes"]] == list(ALL_SOURCES)
    assert all(CJK.search(x["what"]) and CJK.search(x["purpose"]) and CJK.search(x["retention"]) for x in zh["scopes"])
    assert [x["source"] for x in zh["scopes"] if x["needs_own_authorization"]] == ["credit_bureau"]
    en = api.c.get(f"{API}/consents/scopes", params={"lang": "en"}, headers=api.rep2).json()
    assert all(not CJK.search(x["what"] + x["purpose"] + x["retention"]) for x in en["scopes"])
    _error(api.c.get(f"{API}/consents/scopes", params={"lang": "fr"}, headers=api.rep2), 422, "lang")


def test_the_web_page_explains_each_scope_and_asks_for_the_bureau_authorization_separately(api):
    c = api.c
    r = c.post("/app/login", data={"username": "rep-s2", "password": "correct horse battery staple"}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get("/app").text
    for source in ALL_SOURCES:
        t = SCOPE_TEXTS[source]["zh"]
        assert t.what in page and t.purpose in page
    assert page.count("<dt>读取什么</dt>") == len(ALL_SOURCES) and "征信查询授权书" in page
    assert re.search(r'name="bureau_authorization" value="yes"\s*>', page), "the bureau authorization is never ticked in advance"


def _cli(args: list[str], rt, tmp_path: Path, process: bool = False):
    """`sandu` on the store of `rt`: in this process (tests/cli_support.py), or with `process` a real `sandu` process."""
    env = {"SANDU_DATABASE_URL": rt.engine.url.render_as_string(hide_password=False), "COLUMNS": "250", "SANDU_SECRET_KEY": TEST_SECRET}
    if process:
        return subprocess.run([SANDU, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}, cwd=tmp_path)
    return sandu(args, env=env, cwd=tmp_path)
