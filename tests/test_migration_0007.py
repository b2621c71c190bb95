"""Migration 0007 adds the raw-payload store and the erasure record; up, down and up again on
SQLite and PostgreSQL, with rows written through the services in between."""

from __future__ import annotations

from dataclasses import replace

from conftest import AS_OF, FIXED_NOW, PII_KEY, SEED, TEST_PASSWORD, TEST_SETTINGS
from sqlalchemy import text

from sandu.demo.seed import seed_universe
from sandu.demo.users import demo_specs
from sandu.origination import actions
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


def _tables(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.dialect.get_table_names(conn))


def test_payloads_and_erasures_up_down_and_up_again(empty_db_url):
    engine = make_engine(empty_db_url, TEST_SETTINGS)
    assert upgrade(engine) == head_revision(engine)  # the services write the head's schema (0008 and later keep 0007's tables)
    rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model(), settings=TEST_SETTINGS, clock=lambda: FIXED_NOW)
    seed_universe(rt.uow, 40, SEED, AS_OF)
    spec = next(s for s in demo_specs() if s.username == "rep-s2")
    security.create_user(rt, None, username=spec.username, password=TEST_PASSWORD, role=spec.role, resident_id=spec.resident_id)
    rep = security.actor_by_username(rt, "rep-s2")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        cid = orig.grant_consent(s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement",
                                 signer=rep, valid_days=30, now=FIXED_NOW).id
    rt = replace(rt, settings=TEST_SETTINGS.model_copy(update={"sources_retention_days": 30}))
    actions.measure(rt, rep, uscc=S2["uscc"], consent_id=cid)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM source_payloads")).scalar_one() == 8
    assert downgrade(engine, "0006") == "0006" == current_revision(engine)
    assert not {"source_payloads", "erasures"} & _tables(engine)
    assert upgrade(engine) == head_revision(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM source_payloads")).scalar_one() == 0  # what was kept went with the table
    out = actions.erase_enterprise(rt, security.actor_by_username(rt, "rep-s2"), uscc=S2["uscc"], reason="ref 7")
    assert out.removed["live_consents_revoked"] == 1
