"""Migration 0011 keeps a decision's grades as columns (a decision: risk grade and 12-month PD; a line: the tech and
risk grades, PD and 科技型 of the decision it was signed from). On SQLite and PostgreSQL: what the services write equals
what the decision's JSON result says; taken back to 0010 (the columns go) and up again, the backfill writes the same
values, and the portfolio report reads the same figures."""

from __future__ import annotations

from servicing_support import D0, draw, open_line
from sqlalchemy import inspect, select

from sandu.analytics import actions
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m
from sandu.store.migrate import current_revision, downgrade, head_revision, upgrade

S3 = STORY_ROWS[2]
LINE_GRADES = ("tech_grade", "risk_grade", "pd_12m", "tech_sector")


def _stored(rt) -> tuple[dict, dict, dict]:
    """(line id → its grade columns, decision id → its grade columns, decision id → its result)."""
    with rt.uow.read() as s:
        lines = {r.id: tuple(getattr(r, c) for c in LINE_GRADES) for r in s.scalars(select(m.CreditLine))}
        decisions = {r.id: (r.risk_grade, r.pd_12m) for r in s.scalars(select(m.Decision))}
        results = {r.id: r.result for r in s.scalars(select(m.Decision))}
        signed = dict(s.execute(select(m.CreditLine.id, m.Offer.decision_id).join(m.Offer, m.Offer.id == m.CreditLine.offer_id)).all())
    return lines, decisions, {line_id: results[d] for line_id, d in signed.items()} | {"decisions": results}


def test_the_grades_are_written_as_the_result_says_and_backfilled_down_and_up_again(rt):
    lines_of = [open_line(rt), open_line(rt, S3, "keji_xinyong")]
    draw(rt, lines_of[0], 100 * WAN)
    lines, decisions, results = _stored(rt)
    assert set(lines) == set(lines_of) and len(decisions) >= 2
    for line_id, (tech_grade, risk_grade, pd, tech_sector) in lines.items():
        r = results[line_id]
        tech = r["scores"]["tech"]
        assert (tech_grade, risk_grade, pd) == (r["tech_grade"], r["risk_grade"], repr(float(r["scores"]["risk"]["pd"])))
        assert tech_sector is (bool(tech["most_pass"]) or bool(tech["innovative"]["passed"]))
    for decision_id, (risk_grade, pd) in decisions.items():
        r = results["decisions"][decision_id]
        assert (risk_grade, pd) == (r["risk_grade"], repr(float(r["scores"]["risk"]["pd"])))
    report = actions.portfolio_report(rt, None, as_of=D0).to_json()

    engine = rt.engine
    assert downgrade(engine, "0010") == "0010" == current_revision(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("credit_lines")} | {c["name"] for c in inspect(engine).get_columns("decisions")}
    assert not columns & {"tech_grade", "risk_grade", "pd_12m", "tech_sector"}
    assert upgrade(engine) == head_revision(engine) == current_revision(engine)
    assert _stored(rt)[:2] == (lines, decisions)
    assert actions.portfolio_report(rt, None, as_of=D0).to_json() == report
