"""The five stories of STORIES.md, replayed end to end on a real store."""

from __future__ import annotations

from conftest import BUSINESS_DATE
from sqlalchemy import func, select

from sandu.demo.stories import CHECKS, Outcome, replay_all, replay_story
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m


def _report(outcomes: list[Outcome]) -> str:
    return "\n".join(f"{o.story}: {'ok' if o.ok else '; '.join(o.problems)}" for o in outcomes)


def test_all_five_stories_have_their_shape(rt_sqlite):
    outcomes = replay_all(rt_sqlite, BUSINESS_DATE)
    assert [o.story for o in outcomes] == ["S1", "S2", "S3", "S4", "S5"]
    assert all(o.ok for o in outcomes), _report(outcomes)
    by = {o.story: o for o in outcomes}
    # A few facts of the stories, beyond the shape checks themselves.
    s2 = by["S2"]
    assert not s2.has_bank_account and s2.manual_steps == 0 and s2.drawn_fen == 300 * WAN
    assert s2.result["outcome"] == "approve" and s2.offer("jingying_kuaidai")["approved_fen"] == 416 * WAN
    assert by["S4"].repaid_fen == 200 * WAN
    for o in outcomes:
        row = o.row()
        assert row["shape"] == "✓" and row["story"] == o.story
    with rt_sqlite.uow.write() as s:
        assert s.scalar(select(func.count()).select_from(m.Decision)) == 5
        assert s.scalar(select(func.count()).select_from(m.Enterprise)) == 5
        # every drawing is in the ledger, which balances
        assert s.scalar(select(func.coalesce(func.sum(m.PostingRow.amount_fen), 0))) == 0
        drawn = s.scalar(select(func.sum(m.Drawing.amount_fen)))
        assert drawn == sum(o.drawn_fen for o in outcomes)


def test_a_second_replay_on_the_same_store_decides_the_same_but_cannot_sign_again(rt_sqlite):
    """Measuring again gives the same decisions (new records that supersede the first); signing
    again is refused: the lines of the first replay already take each enterprise's comprehensive limit."""
    first = replay_all(rt_sqlite, BUSINESS_DATE)
    second = replay_all(rt_sqlite, BUSINESS_DATE)
    assert all(o.ok for o in first), _report(first)
    record_only = ("id", "application_id", "timings_ms", "decided_at")  # the second replay is a new application: the first was signed
    for a, b in zip(first, second, strict=True):
        assert a.decision_id != b.decision_id
        assert {k: v for k, v in a.result.items() if k not in record_only} == {k: v for k, v in b.result.items() if k not in record_only}
        assert not b.ok and any("comprehensive limit" in p for p in b.problems), b.problems
        assert b.row()["shape"].startswith("✗")
    with rt_sqlite.uow.write() as s:
        assert s.scalar(select(func.count()).select_from(m.Enterprise)) == 5  # registered once
        assert s.scalar(select(func.count()).select_from(m.Decision)) == 10
        assert s.scalar(select(func.count()).select_from(m.Decision).where(m.Decision.superseded_at.is_not(None))) == 5
        assert s.scalar(select(func.count()).select_from(m.CreditLine)) == 5  # nothing signed twice
        assert s.scalar(select(func.count()).select_from(m.Profile)) == 5  # identical snapshots are stored once


def test_a_story_fails_when_its_data_no_longer_supports_it(rt_sqlite):
    """S2 with a tax credit grade of D is not the quick-loan story any more: the check says so."""
    s2 = dict(STORY_ROWS[1])
    with rt_sqlite.uow.write() as s:
        rec = s.get(m.SourceRecord, (s2["uscc"], "tax"))
        assert rec.payload["tax_credit_grade"] == "A"
        rec.payload = {**rec.payload, "tax_credit_grade": "D"}
    with rt_sqlite.uow.write() as s:
        assert s.get(m.SourceRecord, (s2["uscc"], "tax")).payload["tax_credit_grade"] == "D"
    out = replay_story(rt_sqlite, s2, BUSINESS_DATE)
    assert not out.ok
    assert out.problems and all(isinstance(p, str) and p for p in out.problems)
    assert "no auto-approved pure-credit revolving limit ≤ 500万" in out.problems
    assert out.drawn_fen == 0
    # The decision itself says why, for the applicant and a human reviewer.
    assert out.result["outcome"] == "decline"
    assert out.result["reasons"] and any("TAX_GRADE" in r or "纳税信用" in r for r in out.result["reasons"])
    assert out.row()["shape"].startswith("✗")


def test_each_check_flags_an_empty_outcome():
    """Every story check can fail: an outcome with no offers and nothing drawn fails all five."""
    for story, check in CHECKS.items():
        o = Outcome(story, "x", "", True, "d", {"offers": [], "comprehensive_limit_fen": 0, "tech_uplift_fen": 0, "rule_hits": []})
        check(o)
        assert not o.ok, story
