"""Migration 0006 adds consent texts, the credit-bureau authorization and the read details; existing consents
and reads carry over (adapter simulated, outcome from `found`, no text kept, no bureau authorization), and
downgrade goes back to 0005's shape — upgrade, downgrade and upgrade again on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from conftest import AS_OF, FIXED_NOW, PII_KEY, SEED, TEST_PASSWORD, TEST_SETTINGS
from sqlalchemy import text

from sandu.demo.seed import seed_universe
from sandu.demo.users import demo_specs
from sandu.domain.errors import ConsentDenied
from sandu.origination import service as orig
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.security import actions as security
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES
from sandu.store.db import make_engine
from sandu.store.migrate import current_revision, downgrade, head_revision, upgrade

S2 = STORY_ROWS[1]
NEW_CONSENT_COLUMNS = {"text_sha256", "text_version", "language", "bureau_authorized_at", "bureau_text_sha256"}
NEW_READ_COLUMNS = {"adapter", "duration_ms", "outcome", "reason", "payload_sha256"}


def _columns(conn, table: str) -> set[str]:
    return {c["name"] for c in conn.dialect.get_columns(conn, table)}


def test_consents_and_reads_carry_over_up_down_and_up_again(empty_db_url):
    engine = make_engine(empty_db_url, TEST_SETTINGS)
    assert upgrade(engine) == head_revision(engine)  # today's services write the head's schema; then back to 0005
    rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model(), settings=TEST_SETTINGS, clock=lambda: FIXED_NOW)
    seed_universe(rt.uow, 40, SEED, AS_OF)
    spec = next(s for s in demo_specs() if s.username == "rep-s2")
    security.create_user(rt, None, username=spec.username, password=TEST_PASSWORD, role=spec.role, branch=spec.branch,
                         authority_fen=spec.authority_fen, resident_id=spec.resident_id)
    rep = security.actor_by_username(rt, "rep-s2")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=S2["uscc"], scopes=["tax", "credit_bureau", "ip"], bureau_authorization=True, purpose="credit_measurement",
                               signer=rep, valid_days=30, now=FIXED_NOW)
        orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=AS_OF, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech)
        cid, ent_id = c.id, c.enterprise_id
    # back to 0005: the additions go, the refused reads (never made) with them; the reads made stay
    assert downgrade(engine, "0005") == "0005" == current_revision(engine)
    with engine.begin() as conn:
        assert "consent_texts" not in set(conn.dialect.get_table_names(conn))
        assert not _columns(conn, "consents") & NEW_CONSENT_COLUMNS and not _columns(conn, "source_reads") & NEW_READ_COLUMNS
        assert sorted(conn.execute(text("SELECT source FROM source_reads WHERE consent_id = :c"), {"c": cid}).scalars()) == ["credit_bureau", "ip", "tax"]
        # a consent and reads of the old shape: one read found, one with no record
        conn.execute(text("INSERT INTO consents (id, enterprise_id, scopes, purpose, signer_id_masked, signer_user_id, granted_at, expires_at, revoked_at) "
                          "VALUES ('00000000-0000-4000-8000-000000000001', :e, :s, 'credit_measurement', 'x', NULL, :t, :x, NULL)"),
                     {"e": ent_id, "s": '["credit_bureau", "tax"]', "t": FIXED_NOW, "x": FIXED_NOW.replace(year=2027)})
        for source, found in (("tax", True), ("credit_bureau", False)):
            conn.execute(text("INSERT INTO source_reads (consent_id, source, read_at, found) VALUES ('00000000-0000-4000-8000-000000000001', :s, :t, :f)"),
                         {"s": source, "t": FIXED_NOW, "f": found})
    # up again: old reads are the simulated adapter's, their outcome from `found`; old consents have no text and no bureau authorization
    assert upgrade(engine) == head_revision(engine)  # through 0006, and on to the schema today's services write
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source, adapter, outcome, reason, duration_ms, payload_sha256 FROM source_reads "
                                 "WHERE consent_id = '00000000-0000-4000-8000-000000000001' ORDER BY source")).all()
        assert [tuple(r) for r in rows] == [("credit_bureau", "simulated", "no_record", "", None, None), ("tax", "simulated", "found", "", None, None)]
        old = conn.execute(text("SELECT text_sha256, text_version, language, bureau_authorized_at FROM consents "
                                "WHERE id = '00000000-0000-4000-8000-000000000001'")).one()
        assert tuple(old) == (None, None, "zh", None)
        assert conn.execute(text("SELECT COUNT(*) FROM consent_texts")).scalar_one() == 0
    with rt.uow.read() as s:
        check = orig.consent_text(s, "00000000-0000-4000-8000-000000000001")
        assert not check.verified and "before consent texts were stored" in check.problem
        assert orig.consent_status(orig.get_consent(s, cid), FIXED_NOW) == "live"
    with rt.uow.write() as s, pytest.raises(ConsentDenied, match="征信授权书"):  # the old consent reads no bureau
        orig.measure(s, uscc=S2["uscc"], consent_id="00000000-0000-4000-8000-000000000001", as_of=AS_OF, now=FIXED_NOW, bundle=rt.bundle,
                     model=rt.model, tech=rt.tech)
    # and a new consent on the upgraded store works end to end
    with rt.uow.write() as s:
        c = orig.grant_consent(s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement",
                               signer=rep, valid_days=30, now=FIXED_NOW)
        orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=AS_OF, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech)
        assert orig.consent_text(s, c.id).verified and len(orig.reads_of(s, c.id)) == len(ALL_SOURCES)
    assert downgrade(engine, "0005") == "0005" and upgrade(engine, "0006") == "0006"
    engine.dispose()
