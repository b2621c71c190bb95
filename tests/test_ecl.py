"""IFRS 9 expected credit loss: stages on both sides of every boundary, lifetime PD, ECL = PD × LGD × EAD exactly,
the undrawn part of a revolving line, and the provisions in the portfolio report as of a day, recomputed here
from the drawings and the decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from servicing_support import D0, draw, open_line

from sandu.analytics import actions
from sandu.analytics.book import DRAWING_SCHEMA
from sandu.analytics.ecl import DRAWING_RISK_SCHEMA, LINE_RISK_SCHEMA, Exposures, downgrade, exposure_columns, lifetime_pd, line_risk, provisions, stage
from sandu.analytics.service import LINE_SCHEMA
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.policy.bundle import ExpectedLoss, PolicyError, load_bundle
from sandu.store import models as m

# Lines and drawings written one by one, as rows of the frames `exposure_columns` reads (LINE_RISK_SCHEMA, DRAWING_RISK_SCHEMA)


@dataclass(frozen=True)
class DrawingRisk:
    line_id: int
    drawing_id: int
    owed_fen: int  # principal, interest, penalty and compound interest owed
    dpd: int
    risk_class: str
    maturity_on: date


@dataclass(frozen=True)
class LineRisk:
    line_id: int
    product: str
    kind: str  # the product's kind: credit | secured | project | guaranteed
    branch: str
    limit_fen: int
    drawn_principal_fen: int
    revolving_active: bool  # revolving and active: the undrawn limit may still be drawn
    origination_grade: str
    current_grade: str
    pd_12m: Decimal


def exposures(rules: ExpectedLoss, as_of: date, lines: list[LineRisk], drawings: list[DrawingRisk]) -> Exposures:
    """`exposure_columns` of lines and drawings written one by one."""
    return exposure_columns(rules, as_of, pl.DataFrame([{**vars(ln), "pd_12m": str(ln.pd_12m)} for ln in lines], schema=LINE_RISK_SCHEMA),
                            pl.DataFrame([vars(d) for d in drawings], schema=DRAWING_RISK_SCHEMA))


RULES = load_bundle().expected_loss
AS_OF = date(2026, 11, 29)


def _lines(*rows: dict) -> pl.DataFrame:
    base = {"enterprise_id": 1, "branch": "永嘉", "industry": "制造", "product": "jingying_kuaidai", "limit_fen": 100 * WAN, "opened_on": AS_OF,
            "inclusive": False, "revolving": True, "status": "active", "expires_on": AS_OF + timedelta(days=365), "tech_grade": "B",
            "risk_grade": "B", "tech_sector": True, "pd_12m": "0.02"}
    return pl.DataFrame([{**base, **r} for r in rows], schema=LINE_SCHEMA)


def test_a_lines_undrawn_limit_is_drawable_while_revolving_active_or_expiring_after_the_next_day():
    lines = _lines({"line_id": 1}, {"line_id": 2, "revolving": False}, {"line_id": 3, "status": "frozen"}, {"line_id": 4, "status": "closed"},
                   {"line_id": 5, "status": "expired", "expires_on": AS_OF + timedelta(days=1)},  # end of day expires it tonight
                   {"line_id": 6, "status": "expired", "expires_on": AS_OF + timedelta(days=2)},
                   {"line_id": 7, "opened_on": AS_OF + timedelta(days=1)})  # not opened yet: not in the risk
    none = pl.DataFrame(schema={"enterprise_id": pl.Int64, "grade_now": pl.String, "pd_now": pl.String})
    drawings = pl.DataFrame(schema=DRAWING_SCHEMA)
    out = line_risk(lines, none, drawings, {"jingying_kuaidai": "credit"}, AS_OF)
    assert dict(zip(out["line_id"].to_list(), out["revolving_active"].to_list(), strict=True)) == {
        1: True, 2: False, 3: False, 4: False, 5: False, 6: True}


def test_a_lines_current_grade_and_pd_are_its_borrowers_latest_decisions_else_its_own_else_certain_loss():
    lines = _lines({"line_id": 1}, {"line_id": 2, "enterprise_id": 2}, {"line_id": 3, "enterprise_id": 3, "risk_grade": "?", "pd_12m": None})
    current = pl.DataFrame([(1, "D", "0.3")], schema={"enterprise_id": pl.Int64, "grade_now": pl.String, "pd_now": pl.String}, orient="row")
    drawings = pl.DataFrame([(1, 10, 30 * WAN), (1, 11, 20 * WAN), (2, 12, 5 * WAN)], schema={"line_id": pl.Int64, "drawing_id": pl.Int64,
                                                                                               "principal_fen": pl.Int64}, orient="row")
    out = line_risk(lines, current, drawings, {}, AS_OF)
    assert out.select("line_id", "kind", "origination_grade", "current_grade", "pd_12m", "drawn_principal_fen").rows() == [
        (1, "credit", "B", "D", "0.3", 50 * WAN), (2, "credit", "B", "B", "0.02", 5 * WAN), (3, "credit", "?", "?", "1", 0)]


@pytest.mark.parametrize(("dpd", "risk_class", "down", "expected"), [
    (0, "normal", 0, 1), (30, "normal", 0, 1), (31, "normal", 0, 2), (90, "special_mention", 0, 2), (91, "special_mention", 0, 3),
    (0, "substandard", 0, 3), (0, "doubtful", 0, 3), (0, "loss", 0, 3), (0, "special_mention", 0, 1),
    (0, "normal", 1, 1), (0, "normal", 2, 2), (0, "normal", 4, 2), (91, "normal", 2, 3),
])
def test_each_stage_boundary_on_both_sides(dpd, risk_class, down, expected):
    assert stage(RULES, dpd, risk_class, down) == expected


def test_downgrades_count_grades_worse_only():
    assert (downgrade("B", "D"), downgrade("B", "C"), downgrade("C", "A"), downgrade("A", "E"), downgrade("?", "E")) == (2, 1, 0, 4, 0)


def test_lifetime_pd():
    assert lifetime_pd(Decimal("0.1"), Decimal(0)) == lifetime_pd(Decimal("0.1"), Decimal(1)) == Decimal("0.1")
    assert lifetime_pd(Decimal("0.1"), Decimal(2)) == Decimal("0.19")
    assert lifetime_pd(Decimal(0), Decimal(5)) == 0 and lifetime_pd(Decimal(1), Decimal(3)) == 1


def _line(**over) -> LineRisk:
    base = dict(line_id=1, product="jingying_kuaidai", kind="credit", branch="永嘉", limit_fen=416 * WAN, drawn_principal_fen=300 * WAN,
                revolving_active=True, origination_grade="B", current_grade="B", pd_12m=Decimal("0.02"))
    return LineRisk(**{**base, **over})


def test_ecl_is_pd_times_lgd_times_ead_with_the_undrawn_part_at_the_ccf():
    line, drawn = _line(), DrawingRisk(1, 10, 300 * WAN + 5_000, 0, "normal", AS_OF + timedelta(days=365))
    out = exposures(RULES, AS_OF, [line], [drawn])
    assert [(e.drawing_id, e.stage, e.ead_fen, e.ecl_fen) for e in out] == [
        (10, 1, 300 * WAN + 5_000, 2_700_045),  # 300.005万 × 0.02 × 0.45 = 27,000.45元 → 2,700,045 fen
        (None, 1, 58 * WAN, 522_000),  # (416万 − 300万) × 0.50 = 58万, × 0.02 × 0.45
    ]
    p = provisions(out)
    assert p["ecl_fen"] == 3_222_045 and p["by_stage"] == {"1": {"ead_fen": 358 * WAN + 5_000, "ecl_fen": 3_222_045}}
    frozen = exposures(RULES, AS_OF, [_line(revolving_active=False)], [drawn])
    assert [e.drawing_id for e in frozen] == [10]  # a frozen or term line adds no undrawn exposure


def test_stage_two_takes_the_lifetime_pd_over_the_remaining_term_and_stage_three_all_of_it():
    two_years = DrawingRisk(1, 10, 100 * WAN, 45, "special_mention", AS_OF + timedelta(days=730))
    [drawing, undrawn] = exposures(RULES, AS_OF, [_line(pd_12m=Decimal("0.1"))], [two_years])
    assert drawing.stage == 2 and drawing.pd == Decimal("0.19") and drawing.ecl_fen == int(Decimal("0.19") * Decimal("0.45") * 100 * WAN)
    assert undrawn.stage == 2 and undrawn.pd == Decimal("0.1")  # the undrawn part: the line's worst stage, 12 months
    impaired = DrawingRisk(1, 10, 100 * WAN, 120, "substandard", AS_OF + timedelta(days=30))
    [drawing, undrawn] = exposures(RULES, AS_OF, [_line()], [impaired])
    assert (drawing.stage, drawing.pd, drawing.ecl_fen) == (3, 1, 45 * WAN) and undrawn.pd == 1


@given(st.integers(0, 400), st.sampled_from(["normal", "special_mention", "substandard", "doubtful", "loss"]), st.sampled_from("ABCDE"),
       st.decimals(min_value=0, max_value=1, places=4), st.integers(1, 10**12), st.integers(0, 3_650))
def test_ecl_never_exceeds_what_is_exposed_and_rises_with_the_stage(dpd, risk_class, grade_now, pd, owed, days):
    line = _line(current_grade=grade_now, pd_12m=pd)
    [e, *_] = exposures(RULES, AS_OF, [line], [DrawingRisk(1, 1, owed, dpd, risk_class, AS_OF + timedelta(days=days))])
    assert 0 <= e.ecl_fen <= e.ead_fen == owed and pd <= e.pd <= 1
    [calmer, *_] = exposures(RULES, AS_OF, [_line(pd_12m=pd)], [DrawingRisk(1, 1, owed, 0, "normal", AS_OF + timedelta(days=days))])
    assert calmer.stage <= e.stage and calmer.ecl_fen <= e.ecl_fen


def test_every_product_kind_needs_a_loss_given_default():
    from test_policy import RAW

    from sandu.policy.bundle import parse_bundle

    with pytest.raises(PolicyError) as e:
        parse_bundle(RAW.replace(b', guaranteed = "0.20" }', b" }"))
    assert e.value.path == "expected_loss.lgd.guaranteed" and "danbao_kuaidai" in e.value.reason


def test_the_portfolio_report_carries_the_provisions_on_the_business_date(rt_sqlite):
    rt = rt_sqlite
    line_id = open_line(rt)
    draw(rt, line_id, 300 * WAN, on=D0)
    p = actions.portfolio_report(rt, None)
    assert rt.today() == D0 and p.expected_loss is not None
    with rt.uow.read() as s:
        line = s.get(m.CreditLine, line_id)
        pd = Decimal(repr(s.get(m.Decision, s.get(m.Offer, line.offer_id).decision_id).result["scores"]["risk"]["pd"]))
        owed = sum(d.principal_fen + d.interest_fen for d in s.query(m.Drawing).all())
        undrawn = line.limit_fen - line.drawn_principal_fen
    ead_undrawn = int((Decimal("0.50") * undrawn).quantize(Decimal(1)))
    want = int((pd * Decimal("0.45") * owed).quantize(Decimal(1))) + int((pd * Decimal("0.45") * ead_undrawn).quantize(Decimal(1)))
    assert p.expected_loss["ecl_fen"] == want and p.expected_loss["ead_fen"] == owed + ead_undrawn
    assert p.expected_loss["by_branch"] == {"永嘉": {"ead_fen": owed + ead_undrawn, "ecl_fen": want}}
    before = actions.portfolio_report(rt, None, as_of=D0 - timedelta(days=1)).expected_loss  # as of a day before the line: nothing exposed
    assert (before["ecl_fen"], before["ead_fen"], before["by_stage"]) == (0, 0, {})


def test_the_workbook_has_the_provisions_sheet(rt_sqlite, tmp_path):
    from openpyxl import load_workbook

    from sandu.analytics.exports import write_portfolio

    rt = rt_sqlite
    draw(rt, open_line(rt), 300 * WAN, on=D0)
    p = actions.portfolio_report(rt, None)
    write_portfolio(p, tmp_path / "p.xlsx")
    sheet = load_workbook(tmp_path / "p.xlsx")["预期信用损失"]
    total = [r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == "合计"]
    assert total == [("合计", pytest.approx(p.expected_loss["ead_fen"] / WAN), pytest.approx(p.expected_loss["ecl_fen"] / WAN))]
