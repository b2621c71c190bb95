"""Origination on a real store: register → consent → measure → decision → accept.

Decisions are records (inputs hash, versions, rule hits, reasons, timings) and
replay to the same result; bad input gets a specific SanduError naming the field
and leaves every table unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from conftest import BUSINESS_DATE, FIXED_NOW, PII_KEY, TEST_PASSWORD, actor, make_rt
from sqlalchemy import func, select

from sandu.demo.users import story_applicant
from sandu.domain.errors import Conflict, ConsentDenied, InvalidInput, NotFound, NotPermitted, SanduError
from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.domain.project import Project, project_from
from sandu.origination import actions as orig_actions
from sandu.origination import service as orig
from sandu.policy.bundle import load_bundle
from sandu.security import actions as security
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import build_profile, canonical_sha256, profile_from_json
from sandu.store import models as m

S1, S2, S3, S4, S5 = STORY_ROWS
from sandu.domain.money import FEN_PER_WAN as WAN

HEX64 = re.compile(r"[0-9a-f]{64}")
# A valid USCC and a valid resident ID that the registry does not know.
_BODY = "12345678"
OUTSIDER_USCC = make_uscc("9", "1", "330302", _BODY + org_code_check_char(_BODY))
OUTSIDER_REP = make_resident_id("330302", date(1980, 1, 1), "123")


def dump(rt) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    out = {}
    with rt.uow.write() as s:
        for table in m.Base.metadata.sorted_tables:
            out[table.name] = sorted((tuple(r) for r in s.execute(table.select()).all()), key=repr)
    return out


def rep(row: dict[str, Any]) -> str:
    """The username of a row's legal representative (story users are seeded; outsiders made here)."""
    return story_applicant(row["story"]) if row.get("story") else row["username"]


def outsider(rt) -> dict[str, Any]:
    """An enterprise the registry does not know, and its legal representative as a new applicant."""
    security.create_user(rt, None, username="outsider-rep", password=TEST_PASSWORD, role="applicant", resident_id=OUTSIDER_REP)
    return {"uscc": OUTSIDER_USCC, "name": "温州测试科技有限公司", "username": "outsider-rep"}


def register(rt, row: dict[str, Any]) -> int:
    with rt.uow.write() as s:
        return orig.register_enterprise(s, uscc=row["uscc"], name=row["name"], registrant=actor(rt, rep(row)), pii_key=PII_KEY, now=FIXED_NOW).id


def consent(rt, row: dict[str, Any], scopes: list[str] | None = None, valid_days: int = 30) -> str:
    with rt.uow.write() as s:
        c = orig.grant_consent(
            s, uscc=row["uscc"], scopes=list(ALL_SOURCES) if scopes is None else scopes, purpose="credit_measurement",
            signer=actor(rt, rep(row)), valid_days=valid_days, now=FIXED_NOW, bureau_authorization=scopes is None or "credit_bureau" in scopes,
        )
        return c.id


def measure(rt, row: dict[str, Any], consent_id: str, **kw: Any) -> str:
    with rt.uow.write() as s:
        return orig.measure(
            s, uscc=row["uscc"], consent_id=consent_id, as_of=BUSINESS_DATE, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech, **kw
        ).id


# --- the happy path ------------------------------------------------------------------


def test_non_customer_registers_consents_and_gets_a_complete_decision_record(rt_sqlite):
    rt = rt_sqlite
    ent_id = register(rt, S2)
    cid = consent(rt, S2)
    did = measure(rt, S2, cid)
    with rt.uow.write() as s:
        ent = s.get(m.Enterprise, ent_id)
        assert ent.has_bank_account is False  # a non-customer may apply
        assert ent.district == S2["district"] and ent.industry == S2["industry"]
        # The resident ID is stored masked and hashed, never in clear.
        assert ent.legal_rep_id_masked == S2["legal_rep_id"][:6] + "********" + S2["legal_rep_id"][-4:]
        # looked up by a keyed hash: the mask and a plain SHA-256 cannot be combined to recover the ID
        assert ent.legal_rep_id_hmac == hmac.new(PII_KEY, S2["legal_rep_id"].encode(), hashlib.sha256).hexdigest()
        assert ent.legal_rep_id_hmac != hashlib.sha256(S2["legal_rep_id"].encode()).hexdigest()
        assert ent.branch == "永嘉" and ent.registered_by == actor(rt, "rep-s2").user_id

        d = s.get(m.Decision, did)
        assert d.enterprise_id == ent_id and d.as_of == BUSINESS_DATE
        # inputs
        prof = s.get(m.Profile, d.profile_sha256)
        assert prof is not None and prof.consent_id == cid and HEX64.fullmatch(d.profile_sha256)
        # versions
        assert d.policy_version == rt.bundle.label and "@" in d.policy_version
        assert d.policy_sha256 == rt.bundle.sha256 and HEX64.fullmatch(d.policy_sha256)
        assert d.model_versions["risk"] == rt.model.label
        assert d.model_versions["risk_sha256"] == rt.model.sha256
        assert rt.model.label == "risk-scorecard@1.0.0" and d.model_versions["risk_challenger"] == "risk-expert@0.1.0"
        risk, challenger = d.result["scores"]["risk"], d.result["scores"]["risk_challenger"]
        assert challenger["model"] == "risk-expert@0.1.0" and 0 < challenger["pd"] < 1 and challenger["pd"] != risk["pd"]
        grades = {g.grade: g.max_pd for g in rt.bundle.risk_grades}  # the production model's PD decides the grade
        assert Decimal(str(risk["pd"])) <= grades[d.result["risk_grade"]]
        assert d.model_versions["source_schemas"] == "sources@2026.2"  # the payload schemas the profile was validated by
        assert d.model_versions["tech"] == rt.tech.label == "sandu-tech@2026.1"
        assert d.model_versions["tech_sha256"] == rt.tech.sha256 and HEX64.fullmatch(d.model_versions["tech_sha256"])
        tech = d.result["scores"]["tech"]
        assert (tech["model"], tech["sha256"], tech["grade"]) == (rt.tech.label, rt.tech.sha256, d.result["tech_grade"])
        assert set(tech["most"]) >= {"passed", "rule", "points"} and set(tech["innovative"]) >= {"passed", "rule", "points"}
        assert 1 <= len(tech["strengths"]) <= 3 and 1 <= len(tech["weaknesses"]) <= 3
        assert all(set(t) == {"zh", "en"} for t in tech["strengths"] + tech["weaknesses"])
        # rule hits, reasons, scores
        assert d.result["rule_hits"], "every rule that fired is recorded"
        assert all(set(h) == {"rule", "detail"} and h["rule"] and h["detail"] for h in d.result["rule_hits"])
        assert {"eligibility.general", "credit.quick", "pricing"} <= {h["rule"] for h in d.result["rule_hits"]}
        assert isinstance(d.result["reasons"], list)
        assert Decimal(d.result["scores"]["risk"]["pd"]) > 0
        assert d.result["scores"]["risk"]["reasons"]
        # timings
        t = d.timings_ms
        assert set(t) == {"read_sources_ms", "score_and_policy_ms", "record_ms", "total_ms"}
        assert all(v >= 0 for v in t.values())
        assert t["total_ms"] >= t["read_sources_ms"] + t["score_and_policy_ms"] + t["record_ms"] - 0.01
        # outcome and the stored offers
        assert d.outcome == "approve" == d.result["outcome"]
        assert d.comprehensive_limit_fen == 416 * WAN == d.result["comprehensive_limit_fen"]
        features = s.get(m.Profile, d.profile_sha256).snapshot["features"]  # S2 is a small firm with 416万 of credit: 普惠型小微
        assert features["headcount"] < rt.bundle.inclusive.medium_min_headcount and d.result["inclusive_small_micro"] is True
        assert orig_actions.get_decision(rt, did).inclusive_small_micro is True
        offers = orig.offers_of(s, did)
        assert [(o.product, o.limit_fen, o.approved_fen, o.status) for o in offers] == [
            ("jingying_kuaidai", 416 * WAN, 416 * WAN, "offered")
        ]
        assert offers[0].rate_annual == Decimal(d.result["offers"][0]["rate_annual"])
        assert d.application == {"has_bank_account": False, "requested_fen": None, "project": None}


def test_accepting_an_offer_opens_a_line_on_the_offer_terms(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    did = measure(rt, S2, consent(rt, S2))
    with rt.uow.write() as s:
        line = orig.accept_offer(s, decision_id=did, product="jingying_kuaidai", signer=actor(rt, "rep-s2"), as_of=BUSINESS_DATE, now=FIXED_NOW)
        offer = s.get(m.Offer, line.offer_id)
        assert offer.status == "accepted"
        assert line.limit_fen == offer.approved_fen == 416 * WAN
        assert line.drawn_principal_fen == 0 and line.status == "active"
        assert line.accrued_through == BUSINESS_DATE - timedelta(days=1)  # nothing closed for it yet
        assert (line.penalty_uplift, line.grace_days, line.interest_with_principal, line.term_within_validity) == (Decimal("0.50"), 0, False, True)
        assert line.allocation_order == "penalty,compound,overdue_interest,overdue_principal,interest,principal" and line.risk_class == "normal"
        assert line.rate_annual == offer.rate_annual == Decimal("0.0380")
        assert line.basis_days == 360
        assert line.opened_on == BUSINESS_DATE and line.expires_on == date(2027, 11, 29)


def test_source_reads_are_logged_against_the_consent_one_per_scope(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    scopes = ["tax", "credit_bureau", "ip"]
    cid = consent(rt, S2, scopes)
    did = measure(rt, S2, cid)
    with rt.uow.write() as s:
        reads = list(s.scalars(select(m.SourceRead).where(m.SourceRead.consent_id == cid)))
        made = [r for r in reads if r.outcome != "refused"]
        assert sorted(r.source for r in made) == sorted(scopes)
        assert all(r.found for r in made)
        # nothing read beyond the consent: every other source is logged as refused, never found
        refused = [r for r in reads if r.outcome == "refused"]
        assert sorted(r.source for r in refused) == sorted(set(ALL_SOURCES) - set(scopes)) and not any(r.found for r in refused)
        assert s.scalar(select(func.count()).select_from(m.SourceRead)) == len(ALL_SOURCES)
        prof = s.get(m.Profile, s.get(m.Decision, did).profile_sha256)
        assert sorted(prof.snapshot["sources_read"]) == sorted(scopes)
        not_read = {f.split(":")[0] for f in prof.snapshot["quality_flags"] if f.endswith(":not_read")}
        assert not_read == set(ALL_SOURCES) - set(scopes)
    # A second measurement under the same consent logs a second round of reads.
    measure(rt, S2, cid)
    with rt.uow.write() as s:
        assert s.scalar(select(func.count()).select_from(m.SourceRead).where(m.SourceRead.consent_id == cid)) == 2 * len(ALL_SOURCES)


def test_enterprise_unknown_to_the_registry_may_register_and_is_referred_with_reasons(rt_sqlite):
    rt = rt_sqlite
    row = outsider(rt)
    ent_id = register(rt, row)
    did = measure(rt, row, consent(rt, row))
    with rt.uow.write() as s:
        ent = s.get(m.Enterprise, ent_id)
        assert ent.district is None and ent.has_bank_account is False
        assert ent.branch == "鹿城"  # its USCC's region code names the sub-branch
        d = s.get(m.Decision, did)
        assert d.outcome == "refer" and d.comprehensive_limit_fen == 0  # no data anywhere: an officer collects it
        assert d.result["reasons"][0].startswith("DATA_INSUFFICIENT: ")
        assert orig.offers_of(s, did) == []
        reads = list(s.scalars(select(m.SourceRead)))
        assert len(reads) == len(ALL_SOURCES) and not any(r.found for r in reads)


# --- profile hash and replay ---------------------------------------------------------


def test_profile_snapshot_hash_is_reproducible(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    cid = consent(rt, S2)
    d1, d2 = measure(rt, S2, cid), measure(rt, S2, cid)
    with rt.uow.write() as s:
        a, b = s.get(m.Decision, d1), s.get(m.Decision, d2)
        assert a.id != b.id
        assert a.profile_sha256 == b.profile_sha256  # same data → same snapshot
        assert s.scalar(select(func.count()).select_from(m.Profile)) == 1
        prof = s.get(m.Profile, a.profile_sha256)
        assert canonical_sha256(prof.snapshot) == prof.sha256
        assert profile_from_json(prof.snapshot, prof.sha256).sha256 == prof.sha256
        payloads = {r.source: r.payload for r in s.scalars(select(m.SourceRecord).where(m.SourceRecord.uscc == S2["uscc"]))}
    rebuilt = build_profile(S2["uscc"], BUSINESS_DATE, payloads)
    assert rebuilt.sha256 == prof.sha256
    # Another as-of date is another snapshot.
    assert build_profile(S2["uscc"], BUSINESS_DATE - timedelta(days=1), payloads).sha256 != prof.sha256


@pytest.mark.parametrize("story", ["S1", "S2", "S3", "S4", "S5"])
def test_replay_of_a_stored_decision_gives_the_stored_result(rt_sqlite, story):
    rt = rt_sqlite
    row = next(r for r in STORY_ROWS if r["story"] == story)
    register(rt, row)
    kw: dict[str, Any] = {}
    if story == "S1":  # with an application amount and a project, which must be replayed too
        kw = {"requested_fen": 5_000 * WAN, "project": Project("年产2.7万吨紧固件建设项目", 13_600 * WAN, 2_600 * WAN, 7)}
    did = measure(rt, row, consent(rt, row), **kw)
    with rt.uow.write() as s:
        d = s.get(m.Decision, did)
        replayed = orig.replay(s, did, rt.bundle, rt.model, rt.tech).to_json()
        stored = d.result
        for key in ("outcome", "offers", "comprehensive_limit_fen", "tech_grade", "risk_grade", "tech_uplift_fen", "rule_hits", "reasons"):
            assert replayed[key] == stored[key], key
        assert replayed["outcome"] == d.outcome and replayed["comprehensive_limit_fen"] == d.comprehensive_limit_fen
        stored_offers = {(o.product, o.limit_fen, o.approved_fen, o.rate_annual) for o in orig.offers_of(s, did)}
        assert stored_offers == {(o["product"], o["limit_fen"], o["approved_fen"], Decimal(o["rate_annual"])) for o in replayed["offers"]}


def test_sandu_decision_replay_says_identical_or_what_differs(rt_sqlite, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from cli_support import sandu as sandu_in_process
    from conftest import TEST_SECRET

    rt = rt_sqlite
    register(rt, S2)
    did = measure(rt, S2, consent(rt, S2))
    assert orig_actions.replay_decision(rt, did) == {"decision_id": did, "identical": True, "differences": [], "versions": []}
    other = dataclasses.replace(rt, bundle=dataclasses.replace(rt.bundle, version="2027.1.1", sha256="0" * 64))
    out = orig_actions.replay_decision(other, did)
    assert not out["identical"] and out["differences"] == [] and len(out["versions"]) == 1
    assert out["versions"][0].startswith(f"policy: made under {rt.bundle.label} ") and "now wenzhou-tech-default@2027.1.1 (000000000000…)" in out["versions"][0]
    sandu = str(Path(sys.executable).with_name("sandu"))
    env = {**os.environ, "SANDU_DATABASE_URL": str(rt.engine.url), "SANDU_SECRET_KEY": TEST_SECRET, "COLUMNS": "200"}
    r = sandu_in_process(["decision", "replay", did], env=env)  # in this process (tests/cli_support.py); the altered record in a real one
    assert r.returncode == 0 and f"decision {did}: replayed identically" in r.stdout, r.stdout + r.stderr
    with rt.uow.write() as s:  # the stored record altered behind the system's back
        d = s.get(m.Decision, did)
        d.result = {**d.result, "comprehensive_limit_fen": d.result["comprehensive_limit_fen"] + 1, "reasons": ["x"]}
    assert orig_actions.replay_decision(rt, did)["differences"] == ["comprehensive_limit_fen", "reasons"]
    r = subprocess.run([sandu, "decision", "replay", did], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "the replay differs in comprehensive_limit_fen, reasons" in r.stdout, r.stdout + r.stderr
    r = sandu_in_process(["decision", "replay", "not-a-decision"], env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "decision" in r.stderr, r.stderr


def test_replay_under_another_policy_or_model_version_is_refused(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    did = measure(rt, S2, consent(rt, S2))
    other_bundle = dataclasses.replace(load_bundle(), sha256="0" * 64)
    other_model = dataclasses.replace(rt.model, sha256="1" * 64)
    other_tech = dataclasses.replace(rt.tech, sha256="2" * 64)
    with rt.uow.write() as s:
        with pytest.raises(Conflict) as e:
            orig.replay(s, did, other_bundle, rt.model, rt.tech)
        assert e.value.field == "decision_id"
        with pytest.raises(Conflict):
            orig.replay(s, did, rt.bundle, other_model, rt.tech)
        with pytest.raises(Conflict) as tech:
            orig.replay(s, did, rt.bundle, rt.model, other_tech)
        assert tech.value.field == "decision_id" and f"tech {rt.tech.label}" in tech.value.allowed and "tech config" in tech.value.message
        with pytest.raises(NotFound) as nf:
            orig.replay(s, "no-such-decision", rt.bundle, rt.model, rt.tech)
        assert nf.value.field == "decision_id"


# --- bad input: the right error, the field named, nothing changed ---------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One store for all the bad-input cases (each checks the store is unchanged)."""
    rt = make_rt(f"sqlite:///{tmp_path_factory.mktemp('orig') / 'sandu.db'}")
    w: dict[str, Any] = {"rt": rt}
    for row in (S2, S5):
        register(rt, row)
    w["consent"] = consent(rt, S2)
    w["consent_tax_only"] = consent(rt, S2, ["tax", "invoices"])
    w["consent_revoked"] = consent(rt, S2)
    with rt.uow.write() as s:
        orig.revoke_consent(s, consent_id=w["consent_revoked"], now=FIXED_NOW)
    w["consent_short"] = consent(rt, S2, valid_days=1)
    w["consent_s5"] = consent(rt, S5)
    w["decision_s2"] = measure(rt, S2, w["consent"])
    w["decision_s2_accepted"] = measure(rt, S2, w["consent"])
    with rt.uow.write() as s:
        orig.accept_offer(s, decision_id=w["decision_s2_accepted"], product="jingying_kuaidai", signer=actor(rt, "rep-s2"), as_of=BUSINESS_DATE, now=FIXED_NOW)
    w["decision_s5"] = measure(rt, S5, w["consent_s5"])
    with rt.uow.write() as s:
        assert [o.status for o in orig.offers_of(s, w["decision_s5"])] == ["referred"]
    yield w
    rt.engine.dispose()


def _register(as_user: str = "rep-s3", **over: Any) -> Callable[[Any, dict[str, Any]], Any]:
    def call(s, w):
        args = {"uscc": S3["uscc"], "name": S3["name"], **over}
        return orig.register_enterprise(s, registrant=actor(w["rt"], as_user), pii_key=PII_KEY, now=FIXED_NOW, **args)

    return call


def _grant(as_user: str = "rep-s2", **over: Any) -> Callable[[Any, dict[str, Any]], Any]:
    def call(s, w):
        args = {"uscc": S2["uscc"], "scopes": list(ALL_SOURCES), "purpose": "credit_measurement", "valid_days": 30, "bureau_authorization": True, **over}
        return orig.grant_consent(s, signer=actor(w["rt"], as_user), now=FIXED_NOW, **args)

    return call


def _measure(consent_key: str = "consent", uscc: str = S2["uscc"], now=FIXED_NOW, **kw: Any) -> Callable[[Any, dict[str, Any]], Any]:
    def call(s, w):
        rt = w["rt"]
        cid = w.get(consent_key, consent_key)
        return orig.measure(s, uscc=uscc, consent_id=cid, as_of=BUSINESS_DATE, now=now, bundle=rt.bundle, model=rt.model, tech=rt.tech, **kw)

    return call


def _accept(decision_key: str = "decision_s2", product: str = "jingying_kuaidai", signer: str = "rep-s2", as_of: date = BUSINESS_DATE):
    def call(s, w):
        now = FIXED_NOW + (as_of - BUSINESS_DATE)  # the day the signature happens
        return orig.accept_offer(s, decision_id=w.get(decision_key, decision_key), product=product, signer=actor(w["rt"], signer), as_of=as_of, now=now)

    return call


ANOTHER_PERSON = make_resident_id("330302", date(1990, 5, 17), "456")
BAD_CHECK_USCC = S3["uscc"][:-1] + ("0" if S3["uscc"][-1] != "0" else "1")
BAD_CHECK_RID = S3["legal_rep_id"][:-1] + ("0" if S3["legal_rep_id"][-1] != "0" else "1")

CASES: list[tuple[str, Callable[[Any, dict[str, Any]], Any], type[SanduError], str | None, str | None]] = [
    # (id, call, error class, field, text the message must contain)
    ("register-uscc-check-char", _register(uscc=BAD_CHECK_USCC), InvalidInput, "uscc", None),
    ("register-uscc-lowercase", _register(uscc=OUTSIDER_USCC.lower()), InvalidInput, "uscc", None),
    ("register-uscc-short", _register(uscc=S3["uscc"][:17]), InvalidInput, "uscc", None),
    ("register-uscc-letter-O", _register(uscc="9133030O" + S3["uscc"][8:]), InvalidInput, "uscc", None),
    ("register-uscc-not-str", _register(uscc=913303), InvalidInput, "uscc", None),
    ("register-rep-not-registry", _register(as_user="rep-s5"), NotPermitted, "uscc", "another legal representative"),
    ("register-by-staff", _register(as_user="officer-yueqing"), NotPermitted, None, "origination.register.applicant"),
    ("register-name-empty", _register(name="  "), InvalidInput, "name", None),
    ("register-name-too-long", _register(name="公" * 121), InvalidInput, "name", None),
    ("register-twice", _register(as_user="rep-s2", uscc=S2["uscc"], name=S2["name"]), Conflict, "uscc", None),
    ("consent-uscc-malformed", _grant(uscc=BAD_CHECK_USCC), InvalidInput, "uscc", None),
    ("consent-unknown-enterprise", _grant(uscc=OUTSIDER_USCC), NotFound, "uscc", None),
    ("consent-signer-not-rep", _grant(as_user="rep-s5"), NotPermitted, None, "origination.consent.legal_rep"),
    ("consent-signer-staff", _grant(as_user="officer-yongjia"), NotPermitted, None, "origination.consent.legal_rep"),
    ("consent-unknown-scope", _grant(scopes=["tax", "astrology"]), InvalidInput, "scopes", "astrology"),
    ("consent-no-scopes", _grant(scopes=[]), InvalidInput, "scopes", None),
    ("consent-scope-twice", _grant(scopes=["tax", "tax"]), InvalidInput, "scopes", None),
    ("consent-scopes-not-list", _grant(scopes="tax"), InvalidInput, "scopes", None),
    ("consent-purpose", _grant(purpose="marketing"), InvalidInput, "purpose", "marketing"),
    ("consent-days-zero", _grant(valid_days=0), InvalidInput, "valid_days", None),
    ("consent-days-too-long", _grant(valid_days=366), InvalidInput, "valid_days", None),
    ("consent-days-bool", _grant(valid_days=True), InvalidInput, "valid_days", None),
    ("measure-uscc-malformed", _measure(uscc=BAD_CHECK_USCC), InvalidInput, "uscc", None),
    ("measure-unknown-enterprise", _measure(uscc=OUTSIDER_USCC), NotFound, "uscc", None),
    ("measure-consent-missing-bureau", _measure("consent_tax_only"), ConsentDenied, "consent_id", "'credit_bureau'"),
    ("measure-consent-revoked", _measure("consent_revoked"), ConsentDenied, "consent_id", "revoked"),
    ("measure-consent-expired", _measure("consent_short", now=FIXED_NOW + timedelta(days=2)), ConsentDenied, "consent_id", "expired"),
    ("measure-consent-unknown", _measure("00000000-0000-0000-0000-000000000000"), NotFound, "consent_id", None),
    ("measure-consent-of-another", _measure("consent_s5"), NotFound, "consent_id", None),
    ("measure-requested-negative", _measure(requested_fen=-1), InvalidInput, "requested_fen", None),
    ("measure-requested-zero", _measure(requested_fen=0), InvalidInput, "requested_fen", None),
    ("measure-requested-fraction", _measure(requested_fen=Fraction(3, 2)), InvalidInput, "requested_fen", None),
    ("measure-requested-decimal", _measure(requested_fen=Decimal("100.5")), InvalidInput, "requested_fen", None),
    ("measure-requested-float", _measure(requested_fen=1.5), InvalidInput, "requested_fen", None),
    ("measure-requested-whole-float", _measure(requested_fen=300_000_000.0), InvalidInput, "requested_fen", None),
    ("measure-requested-bool", _measure(requested_fen=True), InvalidInput, "requested_fen", None),
    ("measure-requested-str", _measure(requested_fen="300"), InvalidInput, "requested_fen", None),
    ("measure-project-beyond-longest-tenor", _measure(project=Project("厂房", 100 * WAN, 10 * WAN, 11)), InvalidInput, "project.tenor_years",
     "rule project.max_tenor_years"),
    ("accept-referred-offer", _accept("decision_s5", "diya_xinyong", "rep-s5"), Conflict, "product", None),
    ("accept-twice", _accept("decision_s2_accepted"), Conflict, "product", None),
    ("accept-signer-not-rep", _accept(signer="rep-s5"), NotPermitted, None, "origination.sign.legal_rep"),
    ("accept-unknown-product", _accept(product="wangdaitong"), NotFound, "product", None),
    ("accept-unknown-decision", _accept("no-such-decision"), NotFound, "decision_id", None),
    ("accept-decision-too-old", _accept(as_of=BUSINESS_DATE + timedelta(days=31)), Conflict, "decision_id", None),
    ("accept-before-decision", _accept(as_of=BUSINESS_DATE - timedelta(days=1)), Conflict, "decision_id", None),
]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "厂房", "capex_fen": 100 * WAN, "annual_cash_flow_fen": 10 * WAN, "tenor_years": 0}, "project.tenor_years"),
        ({"name": "厂房", "capex_fen": 1.5, "annual_cash_flow_fen": 10 * WAN, "tenor_years": 5}, "project.capex_fen"),
        ({"name": "厂房", "capex_fen": 2**63, "annual_cash_flow_fen": 10 * WAN, "tenor_years": 5}, "project.capex_fen"),
        ({"name": "厂\x00房", "capex_fen": 100 * WAN, "annual_cash_flow_fen": 10 * WAN, "tenor_years": 5}, "project.name"),
        ({"name": "厂房", "capex_fen": 100 * WAN, "annual_cash_flow_fen": 10 * WAN, "tenor_years": 5, "owner": "x"}, "project.owner"),
    ],
)
def test_a_project_record_refuses_bad_fields(data, field):
    with pytest.raises(InvalidInput) as info:
        project_from(data)
    assert info.value.field == field


@pytest.mark.parametrize(("call", "error", "field", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_the_field_and_changes_nothing(world, call, error, field, text):
    rt = world["rt"]
    before = dump(rt)
    with pytest.raises(SanduError) as info:
        with rt.uow.write() as s:
            call(s, world)
    err = info.value
    assert type(err) is error, f"{type(err).__name__}: {err}"
    assert err.field == field
    assert err.message and err.to_dict()["field"] == field
    if text is not None:
        assert text in err.message or text == getattr(err, "rule", None), err.message
    assert dump(rt) == before


def test_a_referred_offer_is_reviewed_by_one_person_and_approved_by_another_within_authority(world):
    """审贷分离: review first; the reviewer may not approve; the approval needs authority; then the legal representative signs."""
    rt, did, product = world["rt"], world["decision_s5"], "diya_xinyong"

    def refused(call, error, rule_or_field):
        before = dump(rt)
        with pytest.raises(error) as info:
            with rt.uow.write() as s:
                call(s)
        assert rule_or_field in (getattr(info.value, "rule", None), info.value.field), info.value
        assert dump(rt) == before

    approve = lambda who: lambda s: orig.approve_offer(s, decision_id=did, product=product, approver=actor(rt, who), now=FIXED_NOW, bundle=rt.bundle)  # noqa: E731
    review = lambda who: lambda s: orig.review_offer(s, decision_id=did, product=product, reviewer=actor(rt, who), opinion="押品足值，同意", now=FIXED_NOW)  # noqa: E731
    refused(approve("approver-cangnan"), Conflict, "product")  # not reviewed yet
    refused(lambda s: orig.review_offer(s, decision_id=did, product=product, reviewer=actor(rt, "officer-cangnan"), opinion=" ", now=FIXED_NOW),
            InvalidInput, "opinion")
    with rt.uow.write() as s:
        offer = review("officer-cangnan")(s)
        assert offer.reviewed_by == actor(rt, "officer-cangnan").user_id and offer.approved_fen == 0
    refused(review("officer-longwan"), Conflict, "product")  # reviewed once
    refused(approve("officer-cangnan"), NotPermitted, "maker_checker.reviewer")
    refused(approve("officer-longwan"), NotPermitted, "approval.authority")  # an officer's 500万 does not cover 6,300万
    with rt.uow.write() as s:
        offer = approve("approver-cangnan")(s)
        assert offer.status == "offered" and offer.approved_fen == offer.limit_fen > 500 * WAN
        assert offer.approved_by == actor(rt, "approver-cangnan").user_id != offer.reviewed_by
    refused(approve("approver-cangnan"), Conflict, "product")  # nothing left to approve
    refused(lambda s: orig.accept_offer(s, decision_id=did, product=product, signer=actor(rt, "rep-s2"), as_of=BUSINESS_DATE, now=FIXED_NOW),
            NotPermitted, "origination.sign.legal_rep")
    with rt.uow.write() as s:
        line = orig.accept_offer(s, decision_id=did, product=product, signer=actor(rt, "rep-s5"), as_of=BUSINESS_DATE, now=FIXED_NOW)
        assert line.limit_fen == offer.limit_fen and line.signed_by == actor(rt, "rep-s5").user_id
    refused(approve("approver-cangnan"), Conflict, "product")  # signed: approving again is refused


def test_the_initiator_of_a_decision_may_not_review_it(world):
    rt = world["rt"]
    with rt.uow.write() as s:
        d = orig.measure(s, uscc=S5["uscc"], consent_id=world["consent_s5"], as_of=BUSINESS_DATE, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech,
                         initiated_by=actor(rt, "officer-cangnan").user_id)
        did = d.id
    before = dump(rt)
    with pytest.raises(NotPermitted) as info:
        with rt.uow.write() as s:
            orig.review_offer(s, decision_id=did, product="diya_xinyong", reviewer=actor(rt, "officer-cangnan"), opinion="同意", now=FIXED_NOW)
    assert info.value.rule == "maker_checker.initiator"
    assert dump(rt) == before


def test_revocation_stops_reads(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    cid = consent(rt, S2)
    measure(rt, S2, cid)
    with rt.uow.write() as s:
        reads = s.scalar(select(func.count()).select_from(m.SourceRead))
        orig.revoke_consent(s, consent_id=cid, now=FIXED_NOW)
    with pytest.raises(ConsentDenied) as e:
        measure(rt, S2, cid)
    assert e.value.field == "consent_id"
    with rt.uow.write() as s:
        assert s.scalar(select(func.count()).select_from(m.SourceRead)) == reads
        with pytest.raises(NotFound):
            orig.revoke_consent(s, consent_id="no-such-consent", now=FIXED_NOW)


def test_a_measurement_after_the_lpr_tables_valid_through_date_reads_nothing_and_stores_nothing(rt_sqlite):
    from datetime import datetime, time, timedelta, timezone

    from sandu.domain.errors import PolicyOutdated
    from sandu.origination import actions

    rt = rt_sqlite
    register(rt, S2)
    cid = consent(rt, S2, valid_days=365)
    after = datetime.combine(rt.bundle.pricing.lpr_valid_through + timedelta(days=1), time(9), tzinfo=timezone.utc)

    def counts() -> tuple[int, int, int]:
        with rt.uow.read() as s:
            return tuple(s.scalar(select(func.count()).select_from(t)) for t in (m.SourceRead, m.Profile, m.Decision))

    before = counts()
    with pytest.raises(PolicyOutdated) as e:
        actions.measure(rt.with_clock(lambda: after), actor(rt, rep(S2)), uscc=S2["uscc"], consent_id=cid)
    assert e.value.field == "as_of" and e.value.http_status == 503 and "valid through 2027-06-30" in e.value.message
    assert counts() == before  # refused before any source was read
    last_day = datetime.combine(rt.bundle.pricing.lpr_valid_through, time(9), tzinfo=timezone.utc)
    assert actions.measure(rt.with_clock(lambda: last_day), actor(rt, rep(S2)), uscc=S2["uscc"], consent_id=cid).offers


# --- concurrent requests get clear errors, never a database error ---------------------


def _warm_pool(rt, n: int) -> None:
    """Open n connections once so that no thread pays for connecting while the others race."""
    conns = [rt.engine.connect() for _ in range(n)]
    for c in conns:
        c.close()


def _concurrently(rt, n: int, target) -> list[str]:
    """Run target() in n threads started together; the class name of each outcome ('ok' on success)."""
    import threading

    _warm_pool(rt, n)

    barrier = threading.Barrier(n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            target()
            result = "ok"
        except BaseException as exc:  # noqa: BLE001 - recorded and judged below
            result = type(exc).__name__
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sorted(outcomes)


def test_concurrent_acceptance_of_one_offer_opens_one_line_and_refuses_the_rest_cleanly(rt):
    register(rt, S2)
    did = measure(rt, S2, consent(rt, S2))

    signer = actor(rt, "rep-s2")

    def accept() -> None:
        with rt.uow.write() as s:
            orig.accept_offer(s, decision_id=did, product="jingying_kuaidai", signer=signer, as_of=BUSINESS_DATE, now=FIXED_NOW)

    assert _concurrently(rt, 4, accept) == ["Conflict", "Conflict", "Conflict", "ok"]
    with rt.uow.write() as s:
        assert s.scalar(select(func.count()).select_from(m.CreditLine)) == 1


def test_concurrent_registration_of_one_enterprise_registers_it_once_and_refuses_the_rest_cleanly(rt):
    assert _concurrently(rt, 4, lambda: register(rt, S2)) == ["Conflict", "Conflict", "Conflict", "ok"]
    with rt.uow.write() as s:
        assert s.scalar(select(func.count()).select_from(m.Enterprise)) == 1


def test_a_guarantee_arranged_adds_a_guaranteed_line_that_is_kept_and_replayed(rt_sqlite):
    rt = rt_sqlite
    register(rt, S2)
    did = measure(rt, S2, consent(rt, S2), guarantee_fen=400 * WAN)
    d = orig_actions.get_decision(rt, did)
    g = next(o for o in d.offers if o.product == "danbao_kuaidai")
    assert g.limit_fen == 500 * WAN and g.referred_fen == 500 * WAN  # 400万 ÷ 0.80; an officer checks the guarantee letter
    assert d.comprehensive_limit_fen == 416 * WAN + 500 * WAN and d.approved_fen == 416 * WAN and d.referred_fen == 500 * WAN
    with rt.uow.read() as s:
        assert s.get(m.Decision, did).application["guarantee_fen"] == 400 * WAN
    assert orig_actions.replay_decision(rt, did)["identical"]
    with pytest.raises(InvalidInput) as e:
        measure(rt, S2, consent(rt, S2), guarantee_fen=-1)
    assert e.value.field == "guarantee_fen"
