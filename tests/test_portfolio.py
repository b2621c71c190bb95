"""The portfolio report reconciles to the ledger: every figure recomputed here from the journal's postings (raw SQL,
not the report's code) and, on the business date, from the balances kept on the drawings; on SQLite and PostgreSQL.
Who may read which sub-branch's report; the CLI's formats; the API."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from conftest import TEST_PASSWORD, actor, login
from openpyxl import load_workbook
from portfolio_support import journal as _journal
from portfolio_support import reconcile
from servicing_support import D0, SERVICE_NOW, check_ledger, draw, eod, open_line, repay
from sqlalchemy import text

from sandu.analytics import actions
from sandu.domain.errors import Conflict, NotPermitted
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m

S2, S3, S5 = STORY_ROWS[1], STORY_ROWS[2], STORY_ROWS[4]
DAYS = 45


@pytest.fixture
def book(rt):
    """Three lines in three sub-branches: S2 (永嘉, 经营快贷), S3 (乐清, 科创信用额度, its online part), S5 (苍南, 抵押+信用,
    approved by two officers); drawings, a repayment, 45 days of end of day."""
    lines = {"S2": open_line(rt), "S3": open_line(rt, S3, "keji_xinyong"), "S5": open_line(rt, S5, "diya_xinyong", approve=True)}
    draw(rt, lines["S2"], 300 * WAN)
    draw(rt, lines["S3"], 200 * WAN)
    draw(rt, lines["S5"], 2_000 * WAN)
    repay(rt, lines["S2"], 50 * WAN, D0 + timedelta(days=10))
    eod(rt, D0 + timedelta(days=DAYS))
    check_ledger(rt)
    rt.clock.value = SERVICE_NOW  # the day the movements were made: every value date above is past
    return rt, lines


@pytest.mark.parametrize("offset", [-1, 0, 9, 10, DAYS])
def test_every_figure_reconciles_to_the_journal(book, offset):
    rt, lines = book
    as_of = D0 + timedelta(days=offset)
    reconcile(rt, as_of)  # every figure, recomputed from the postings by raw SQL (tests/portfolio_support.py)
    p = actions.portfolio_report(rt, None, as_of=as_of)
    principal = {ln: b["principal"] + b["overdue_principal"] for ln, b in _journal(rt, as_of).items()}
    for dim, rows in p.by.items():  # every dimension splits the same totals
        assert sum(r.principal_fen for r in rows) == p.principal_fen and sum(r.lines for r in rows) == p.lines, dim
    assert sum(p.class_principal_fen.values()) == p.principal_fen
    if offset < 0:
        assert (p.lines, p.principal_fen, p.tech_share, p.npl_ratio) == (0, 0, None, None)
    else:
        assert p.lines == 3 and len(p.by["branch"]) == 3
    if offset == 9:  # before S2's repayment on day 10
        assert principal[lines["S2"]] == 300 * WAN
    if offset == 10:
        assert principal[lines["S2"]] == 250 * WAN


def test_on_the_business_date_the_report_equals_the_balances_kept_on_the_drawings(book):
    rt, _ = book
    p = actions.portfolio_report(rt, None, as_of=D0 + timedelta(days=DAYS))
    with rt.uow.read() as s:
        drawings = s.query(m.Drawing).all()
        assert p.principal_fen == sum(d.principal_fen + d.overdue_principal_fen for d in drawings)
        assert p.receivable_fen == sum(d.principal_fen + d.overdue_principal_fen + d.interest_fen + d.overdue_interest_fen + d.penalty_fen
                                       + d.compound_fen for d in drawings)


def test_tech_sector_share_and_inclusive_follow_the_decisions(book):
    rt, lines = book
    p = actions.portfolio_report(rt, None, as_of=D0 + timedelta(days=DAYS))
    journal = _journal(rt, D0 + timedelta(days=DAYS))
    with rt.uow.read() as s:
        tech, inclusive = set(), set()
        for ln in s.query(m.CreditLine).all():
            result = s.get(m.Decision, s.get(m.Offer, ln.offer_id).decision_id).result
            t = result["scores"]["tech"]
            if t["most_pass"] or t["innovative"]["passed"]:
                tech.add(ln.id)
            if ln.inclusive_small_micro:
                inclusive.add(ln.id)
    principal = {ln: b["principal"] + b["overdue_principal"] for ln, b in journal.items()}
    assert lines["S3"] in tech and lines["S2"] not in tech  # S3 is an R&D-heavy 专精特新; S2 a valve maker without qualifications
    assert p.tech_principal_fen == sum(principal[i] for i in tech) and p.tech_principal_year_ago_fen == 0 and p.tech_growth is None
    assert str(p.tech_share) == str((p.tech_principal_fen / p.principal_fen).__round__(4)) or abs(float(p.tech_share) - p.tech_principal_fen / p.principal_fen) < 1e-4
    assert p.tech_share_by_branch["乐清"] == 1 and p.tech_share_by_branch["永嘉"] == 0
    assert p.inclusive_principal_fen == sum(principal.get(i, 0) for i in inclusive) and p.inclusive_borrowers == len(inclusive)


def test_approvals_count_the_decisions_of_the_last_30_days_by_outcome(book):
    rt, _ = book
    with rt.uow.read() as s:
        decisions = [(d.as_of, d.outcome) for d in s.query(m.Decision).all()]
    for offset in (0, 29, 30):
        as_of = D0 + timedelta(days=offset)
        want = {o: sum(1 for day, out in decisions if out == o and as_of - timedelta(days=30) < day <= as_of) for o in ("approve", "partial", "refer", "decline")}
        assert actions.portfolio_report(rt, None, as_of=as_of).decisions == want, offset
    assert sum(actions.portfolio_report(rt, None, as_of=D0).decisions.values()) == 3
    assert sum(actions.portfolio_report(rt, None, as_of=D0 + timedelta(days=30)).decisions.values()) == 0  # 30 days on: none left


def test_officers_read_their_sub_branch_risk_reads_any_others_none(book):
    rt, lines = book
    officer = actor(rt, "officer-yongjia")
    mine = actions.portfolio_report(rt, officer)
    assert mine.branch == "永嘉" and [r.key for r in mine.by["branch"]] == ["永嘉"] and mine.lines == 1
    with pytest.raises(NotPermitted) as e:
        actions.portfolio_report(rt, officer, branch="乐清")
    assert e.value.rule == "reports.branch"
    for who in ("rep-s2", "ops"):
        with pytest.raises(NotPermitted):
            actions.portfolio_report(rt, actor(rt, who))
    assert actions.portfolio_report(rt, actor(rt, "risk"), branch="乐清").lines == 1
    with pytest.raises(Conflict) as e:  # the same day is accepted once the business date reaches it
        actions.portfolio_report(rt, actor(rt, "risk"), as_of=rt.today() + timedelta(days=1))
    assert e.value.field == "as_of"


def test_the_api_gives_the_same_report_and_refuses_another_branch(rt_sqlite, live_server):
    rt = rt_sqlite
    line = open_line(rt)
    draw(rt, line, 100 * WAN)
    with httpx.Client(base_url=live_server, timeout=30) as c:
        r = c.get("/api/v1/reports/portfolio", headers=login(c, "risk"))
        assert r.status_code == 200, r.text
        assert r.json() == json.loads(json.dumps(actions.portfolio_report(rt, None).to_json()))
        r = c.get("/api/v1/reports/portfolio", params={"branch": "乐清"}, headers=login(c, "officer-yongjia"))
        assert r.status_code == 403 and r.json()["error"]["rule"] == "reports.branch"
        assert c.get("/api/v1/reports/portfolio", params={"as_of": "2026-02-30"}, headers=login(c, "risk")).status_code == 422
        since = (D0 - timedelta(days=1)).isoformat()
        r = c.get("/api/v1/reports/portfolio", params={"from": since, "months": 2}, headers=login(c, "risk"))
        assert r.status_code == 200, r.text
        assert r.json() == json.loads(json.dumps(actions.portfolio_report(rt, None, since=D0 - timedelta(days=1), roll_months=2).to_json()))
        assert r.json()["stage_movement"]["new"]["1"]["exposures"] == 2 and len(r.json()["roll_rates"]) == 2  # the drawing and the undrawn part
        r = c.get("/api/v1/reports/portfolio", params={"from": D0.isoformat()}, headers=login(c, "risk"))  # not before the report's day
        assert r.status_code == 409 and r.json()["error"]["field"] == "from" and "not before" in r.json()["error"]["message"], r.text
        assert c.get("/api/v1/reports/portfolio", params={"months": 25}, headers=login(c, "risk")).status_code == 422
    assert TEST_PASSWORD


def test_sandu_report_portfolio_writes_a_workbook_with_charts_and_refuses_bad_options(book, tmp_path):
    from cli_support import sandu
    from conftest import TEST_SECRET

    rt, _ = book
    env = {"SANDU_DATABASE_URL": str(rt.engine.url.render_as_string(hide_password=False)), "SANDU_SECRET_KEY": TEST_SECRET}

    def run_cli(_rt, args):
        r = sandu(args, env=env)
        r.exit_code, r.output = r.returncode, r.stdout + r.stderr
        return r

    out = tmp_path / "portfolio.xlsx"
    r = run_cli(rt, ["report", "portfolio", "--as-of", D0.isoformat(), "--format", "xlsx", "--out", str(out)])  # a day past on the CLI's real clock
    assert r.exit_code == 0, r.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "按产品", "按支行", "按行业", "按科创等级", "按风险等级", "五级分类", "科技型占比", "预期信用损失", "逾期天数分布",
                             "迁徙率"]
    assert wb["按支行"]._charts and wb["五级分类"]._charts
    p = actions.portfolio_report(rt, None, as_of=D0)
    assert p.principal_fen == 2_500 * WAN and wb["汇总"]["B6"].value == pytest.approx(p.principal_fen / 10**10) and wb["汇总"]["B6"].number_format == '#,##0.0000"亿"'
    r = run_cli(rt, ["report", "portfolio", "--as-of", D0.isoformat(), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output) == json.loads(json.dumps(p.to_json()))
    for args, words in ((["--format", "pdf"], "not a format"), (["--format", "xlsx"], "needs a file"),
                        (["--format", "csv", "--out", str(out)], "extension names its format"),
                        (["--format", "xlsx", "--out", str(out)], "the file exists"), (["--as-of", "2026-13-01"], "--as-of"),
                        (["--as-of", D0.isoformat(), "--from", D0.isoformat()], "from"), (["--months", "25"], "months")):
        r = run_cli(rt, ["report", "portfolio", *args])
        assert r.exit_code == 2 and words in " ".join(r.output.split()), (args, r.output)


def test_vintages_follow_each_cohort_month_by_month_from_the_journal(book):
    rt, lines = book
    as_of = D0 + timedelta(days=DAYS)
    p = actions.portfolio_report(rt, None, as_of=as_of)
    assert list(p.vintages) == [D0.strftime("%Y-%m")]  # the three lines opened in November 2026
    curve = p.vintages[D0.strftime("%Y-%m")]
    assert [c["month_end"] for c in curve] == ["2026-11-30", "2026-12-31", as_of.isoformat()] and [c["months_on_book"] for c in curve] == [0, 1, 2]
    for point in curve:
        day = date.fromisoformat(point["month_end"])
        with rt.engine.connect() as conn:  # straight from the postings
            drawn = conn.execute(text("SELECT COALESCE(SUM(p.amount_fen), 0) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
                                      "WHERE e.kind = 'draw' AND e.effective_date <= :d AND p.account LIKE :accounts"),
                                 {"d": day, "accounts": "loan:%:principal"}).scalar()
        journal = _journal(rt, day)
        overdue = sum(b["overdue_principal"] + b["overdue_interest"] + b["penalty"] + b["compound"] for b in journal.values())
        assert (point["drawn_fen"], point["overdue_fen"]) == (drawn, overdue) == (2_500 * WAN, overdue)
        assert point["overdue_rate"] == (None if not drawn else str((Decimal(overdue) / drawn).quantize(Decimal("0.0001"))))
