"""Profile snapshots: validated, hashed, with data-quality flags instead of crashes."""

from __future__ import annotations

from datetime import date

from sandu.simulate.stories import STORY_ROWS
from sandu.simulate.universe import source_payloads
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import build_profile, profile_from_json

AS_OF = date(2026, 10, 31)
S5 = dict(STORY_ROWS[4])


def test_profile_features_from_all_sources():
    p = build_profile(S5["uscc"], AS_OF, source_payloads(S5, AS_OF))
    f = p.features
    assert f["revenue_fen"] == 20_000 * 1_000_000 and f["revenue_fen_y1"] == 17_000 * 1_000_000
    assert f["tax_total_fen"] == (480 + 160) * 1_000_000
    assert f["rd_ratio"] == 0.041 and f["tech_staff_ratio"] == round(80 / 380, 6)
    assert "专精特新" in f["certifications"]
    assert [c.secured_debt_fen for c in p.collateral] == [1_500 * 1_000_000, 0]
    assert p.quality_flags == ()
    assert set(p.sources_read) == set(ALL_SOURCES)


def test_hash_is_stable_and_changes_with_content():
    a = build_profile(S5["uscc"], AS_OF, source_payloads(S5, AS_OF))
    b = build_profile(S5["uscc"], AS_OF, source_payloads(S5, AS_OF))
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    changed = source_payloads(S5, AS_OF)
    changed["credit_bureau"]["overdue_count_24m"] = 1
    assert build_profile(S5["uscc"], AS_OF, changed).sha256 != a.sha256
    assert profile_from_json(a.to_json()) == a


def test_missing_and_malformed_sources_become_flags():
    payloads = source_payloads(S5, AS_OF)
    del payloads["utilities"]
    payloads["ip"] = None
    payloads["tax"]["years"][2]["vat_fen"] = -5
    payloads["credit_bureau"]["queries_3m"] = "many"
    payloads["collateral"]["assets"][0]["appraised_value_fen"] = 1.5
    p = build_profile(S5["uscc"], AS_OF, payloads)
    assert "utilities:not_read" in p.quality_flags
    assert "ip:no_record" in p.quality_flags
    assert "tax.vat_fen:invalid" in p.quality_flags and p.features["vat_fen"] is None and p.features["tax_total_fen"] is None
    assert "credit_bureau.queries_3m:invalid" in p.quality_flags
    assert "collateral.appraised_value_fen:invalid" in p.quality_flags and len(p.collateral) == 1
    assert "invention_patents" not in p.features
