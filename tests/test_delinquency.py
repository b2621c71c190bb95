"""Delinquency as of any past day: the ageing history end of day and repayments keep (`delinquency_history`) gives,
for every day of a life with missed, partial and late payments, the DPD that end of day computed that day, and the
classification history the class then — on SQLite and PostgreSQL. The buckets, roll rates and stage movement of the
portfolio report are recomputed here by raw SQL over the journal and the history, each boundary on both sides."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from conftest import new_db_url, runtime_on
from hypothesis import given
from hypothesis import strategies as st
from servicing_support import D0, SERVICE_NOW, check_ledger, draw, drawing, eod, open_line, repay
from sqlalchemy import func, select, text

from sandu.analytics import actions
from sandu.analytics import service as asvc
from sandu.analytics.delinquency import CURRENT, DPD_BUCKETS, PAID_OFF, bucket, roll_rates
from sandu.domain.errors import Conflict, InvalidInput
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.ledger.overdue import NO_DUE, days_past_due, days_past_due_vector
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m

S5 = STORY_ROWS[4]
LAST = date(2027, 7, 26)  # S2's oldest unpaid due (2027-01-21) passes 180 days


def _arrears(rt, drawing_id: int) -> int:
    d = drawing(rt, drawing_id)
    return d.overdue_principal_fen + d.overdue_interest_fen + d.penalty_fen + d.compound_fen


def _open_states(rt) -> dict[int, tuple[int, str]]:
    with rt.uow.read() as s:
        return {d.id: (d.dpd, d.risk_class) for d in s.scalars(select(m.Drawing).where(m.Drawing.status == "open"))}


def _life(rt):
    """S2 (随借随还, interest settled on the 20th, due the 21st) and S5 (抵押+信用, 按月付息到期还本): end of day run day by
    day; S2 misses its first interest, pays part of it late, clears it later with the next due still unpaid, then
    pays nothing; S5 pays its first interest on the day it falls due, its second 10 days late, then nothing. Returns
    each day's open drawings (DPD, class) as end of day left them."""
    s2, s5 = open_line(rt), open_line(rt, S5, "diya_xinyong", approve=True)
    d2 = draw(rt, s2, 300 * WAN).drawing.id
    d5 = draw(rt, s5, 500 * WAN).drawing.id
    payments = {
        date(2027, 1, 5): lambda: repay(rt, s2, _arrears(rt, d2) // 2, date(2027, 1, 5)),  # partial: the oldest due stays unpaid
        # late: the December due cleared, one fen left of January's (paid oldest first), so the oldest unpaid is January's
        date(2027, 2, 1): lambda: repay(rt, s2, _arrears(rt, d2) - 1, date(2027, 2, 1)),
        date(2026, 12, 29): lambda: repay(rt, s5, _due_now(rt, d5), date(2026, 12, 29)),
    }
    seen: dict[date, dict[int, tuple[int, str]]] = {}
    day = D0
    while day < LAST:
        day += timedelta(days=1)
        if day in payments:
            payments[day]()
        if day == date(2027, 2, 8):  # S5's January interest (due 2027-01-29) paid 10 days late
            repay(rt, s5, _arrears(rt, d5), day)
        eod(rt, day)
        seen[day] = _open_states(rt)
    check_ledger(rt)
    rt.clock.value = SERVICE_NOW
    return (d2, d5), seen


def _due_now(rt, drawing_id: int) -> int:
    d = drawing(rt, drawing_id)
    return d.interest_fen + d.due_principal_fen


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def life(request, tmp_path_factory, pg_available):
    """One life per backend, shared by the tests of this module (they only read it)."""
    template = str(request.getfixturevalue("sqlite_template")) if request.param == "sqlite" else request.getfixturevalue("pg_template")
    urls = new_db_url(request.param, tmp_path_factory.mktemp("life"), pg_available, template)
    rt = runtime_on(next(urls))
    try:
        yield rt, *_life(rt)
    finally:
        rt.engine.dispose()
        urls.close()


def test_the_dpd_and_class_derived_for_every_past_day_equal_what_end_of_day_computed_that_day(life):
    rt, (d2, d5), seen = life
    dpds = {d2: [], d5: []}
    with rt.uow.read() as s:
        for day, states in seen.items():
            derived = asvc.days_past_due_as_of(s, day)
            owing = asvc.book_through(s, [day]).drawings(day)
            classes = dict(zip(owing["drawing_id"].to_list(), owing["risk_class"].to_list(), strict=True))
            for drawing_id, (dpd, risk_class) in states.items():
                assert derived.get(drawing_id, 0) == dpd, (day, drawing_id)
                assert classes[drawing_id] == risk_class, (day, drawing_id)
                dpds[drawing_id].append(dpd)
            assert set(derived) <= set(states), day  # no DPD for a drawing end of day did not keep open
        rows = s.scalar(select(func.count()).select_from(m.DelinquencyChange))
    # the life went where the test says: S2 past 180 days, down again when the old dues were cleared; S5 late by 10 days
    assert max(dpds[d2]) > 181 and any(b < a for a, b in zip(dpds[d2], dpds[d2][1:], strict=False) if b > 0)
    assert 10 in dpds[d5] and 11 not in dpds[d5][:75]
    assert rows < len(seen) // 4  # compact: a row when the oldest unpaid due changes, not one a day


def test_a_repayment_clearing_the_oldest_due_moves_the_dpd_on_its_day(life):
    rt, (d2, _), seen = life
    paid = date(2027, 2, 1)
    with rt.uow.read() as s:
        before, on = asvc.days_past_due_as_of(s, paid - timedelta(days=1)), asvc.days_past_due_as_of(s, paid)
        history = s.execute(select(m.DelinquencyChange.on_date, m.DelinquencyChange.oldest_due_on)
                            .where(m.DelinquencyChange.drawing_id == d2).order_by(m.DelinquencyChange.id)).all()
    assert before[d2] == (paid - timedelta(days=1) - date(2026, 12, 21)).days == 41  # due 2026-12-21, unpaid
    assert on.get(d2, 0) == seen[paid][d2][0] < before[d2]
    assert (paid, history[[h.on_date for h in history].index(paid)].oldest_due_on) in history


@pytest.mark.parametrize(("dpd", "label"), [(0, CURRENT), (1, "1-30"), (30, "1-30"), (31, "31-60"), (60, "31-60"), (61, "61-90"),
                                            (90, "61-90"), (91, "91-180"), (180, "91-180"), (181, "180+"), (4000, "180+")])
def test_each_bucket_boundary_on_both_sides(dpd, label):
    assert bucket(dpd) == label


def test_the_buckets_cover_every_day_once():
    assert [b[0] for b in DPD_BUCKETS] == ["1-30", "31-60", "61-90", "91-180", "180+"]
    for (_, _, high), (_, low, _) in zip(DPD_BUCKETS, DPD_BUCKETS[1:], strict=False):
        assert low == high + 1
    with pytest.raises(ValueError):
        bucket(-1)


def test_roll_rates_count_and_weigh_each_transition_and_paid_off():
    a, b, c = date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)
    def states(rows: dict[int, tuple[int, int]]) -> pl.DataFrame:
        return pl.DataFrame([(i, dpd, fen) for i, (dpd, fen) in rows.items()], schema={"drawing_id": pl.Int64, "dpd": pl.Int64, "principal_fen": pl.Int64},
                            orient="row")

    out = roll_rates([(a, states({1: (0, 100), 2: (30, 50), 3: (31, 7)})), (b, states({1: (1, 90), 2: (58, 50), 4: (0, 9)})), (c, states({}))])
    assert out[0]["count"]["current"]["1-30"] == 1 and out[0]["principal_fen"]["current"]["1-30"] == 100
    assert out[0]["count"]["1-30"]["31-60"] == 1 and out[0]["count"]["31-60"][PAID_OFF] == 1
    assert sum(sum(r.values()) for r in out[0]["count"].values()) == 3  # drawing 4, new in February, is no transition
    assert out[1]["count"]["1-30"][PAID_OFF] == out[1]["count"]["31-60"][PAID_OFF] == 1


# -- the portfolio report's delinquency views, recomputed from the journal and the history by raw SQL --------------

LOWS = ((181, "180+"), (91, "91-180"), (61, "61-90"), (31, "31-60"), (1, "1-30"))  # the buckets, written out again


def _raw_states(rt, day: date) -> dict[int, tuple[int, int, int]]:
    """Each drawing owing anything through `day`: (DPD, principal, receivable), from raw SQL over the postings and the
    ageing history."""
    with rt.engine.connect() as conn:
        sums = conn.execute(text("SELECT p.account, SUM(p.amount_fen) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
                                 "WHERE e.effective_date <= :d AND p.account LIKE 'loan:%' GROUP BY p.account"), {"d": day}).all()
        history = conn.execute(text("SELECT h.drawing_id, h.oldest_due_on, l.grace_days FROM delinquency_history h "
                                    "JOIN drawings d ON d.id = h.drawing_id JOIN credit_lines l ON l.id = d.line_id "
                                    "WHERE h.on_date <= :d ORDER BY h.id"), {"d": day}).all()
    oldest = {}
    for drawing_id, on, grace in history:  # the last row on or before the day wins
        oldest[drawing_id] = (on if on is None or isinstance(on, date) else date.fromisoformat(on), grace)
    out: dict[int, list[int]] = {}
    for account, total in sums:
        drawing_id = int(account.split(":")[1].split("-")[1])
        row = out.setdefault(drawing_id, [0, 0, 0])
        if account.endswith((":principal", ":overdue_principal")):
            row[1] += int(total)
        row[2] += int(total)
    for drawing_id, row in out.items():
        on, grace = oldest.get(drawing_id, (None, 0))
        late = 0 if on is None else (day - on).days
        row[0] = late if late > grace else 0
    return {i: tuple(r) for i, r in out.items() if r[2]}


def _label(dpd: int) -> str:
    return next((label for low, label in LOWS if dpd >= low), CURRENT)


@pytest.mark.parametrize(("day", "dpd"), [
    (date(2026, 12, 21), 0), (date(2026, 12, 22), 1),  # S2's first interest, due 2026-12-21, unpaid
    (date(2027, 1, 21), 31), (date(2027, 1, 31), 41), (date(2027, 2, 1), 11),  # a repayment on the day clears December's due
    (date(2027, 2, 20), 30), (date(2027, 2, 21), 31), (date(2027, 3, 22), 60), (date(2027, 3, 23), 61),
    (date(2027, 4, 21), 90), (date(2027, 4, 22), 91), (date(2027, 7, 20), 180), (date(2027, 7, 21), 181),
])
def test_overdue_by_bucket_on_each_boundary_equals_the_journal_and_the_history(life, day, dpd):
    rt, (d2, _), _ = life
    raw = _raw_states(rt, day)
    assert raw[d2][0] == dpd  # the life is where the boundary needs it
    p = actions.portfolio_report(rt, None, as_of=day, roll_months=0)
    want = {label: {"drawings": 0, "principal_fen": 0, "receivable_fen": 0} for label in (CURRENT, *(b[0] for b in DPD_BUCKETS))}
    for dpd_, principal, receivable in raw.values():
        row = want[_label(dpd_)]
        row["drawings"] += 1
        row["principal_fen"] += principal
        row["receivable_fen"] += receivable
    assert {b: {k: v for k, v in f.items() if k != "overdue_fen"} for b, f in p.dpd_buckets.items()} == want
    assert sum(f["overdue_fen"] for f in p.dpd_buckets.values()) == p.overdue_fen
    assert sum(f["principal_fen"] for f in p.dpd_buckets.values()) == p.principal_fen


@pytest.mark.parametrize(("day", "last_end"), [(date(2027, 5, 31), date(2027, 5, 31)), (date(2027, 5, 30), date(2027, 4, 30)),
                                               (date(2027, 6, 1), date(2027, 5, 31))])
def test_roll_rates_between_month_ends_equal_the_journal_and_the_history(life, day, last_end):
    rt, _, _ = life
    p = actions.portfolio_report(rt, None, as_of=day, roll_months=3)
    assert [r["to"] for r in p.roll_rates][-1] == last_end.isoformat() and len(p.roll_rates) == 3
    for r in p.roll_rates:
        before, after = _raw_states(rt, date.fromisoformat(r["from"])), _raw_states(rt, date.fromisoformat(r["to"]))
        counts: dict[tuple[str, str], int] = {}
        principal: dict[tuple[str, str], int] = {}
        for drawing_id, (dpd, fen, _) in before.items():
            key = (_label(dpd), PAID_OFF if drawing_id not in after else _label(after[drawing_id][0]))
            counts[key] = counts.get(key, 0) + 1
            principal[key] = principal.get(key, 0) + fen
        got = {(a, b): n for a, to in r["count"].items() for b, n in to.items() if n}
        assert got == counts, r["from"]
        assert {(a, b): f for a, to in r["principal_fen"].items() for b, f in to.items() if f} == {k: v for k, v in principal.items() if v}
    assert any(n for r in p.roll_rates for a, to in r["count"].items() for b, n in to.items() if a != b)  # something rolled


def test_the_stage_movement_reconciles_to_the_provisions_at_both_ends(life):
    rt, (d2, d5), _ = life
    start, end = date(2027, 1, 15), date(2027, 5, 31)
    p = actions.portfolio_report(rt, None, as_of=end, since=start, roll_months=0)
    then = actions.portfolio_report(rt, None, as_of=start, roll_months=0).expected_loss
    mv, now = p.stage_movement, p.expected_loss
    cells = [c for to in mv["matrix"].values() for c in to.values()]
    assert sum(c["ead_to_fen"] for c in cells) + sum(c["ead_fen"] for c in mv["new"].values()) == now["ead_fen"]
    assert sum(c["ecl_to_fen"] for c in cells) + sum(c["ecl_fen"] for c in mv["new"].values()) == now["ecl_fen"]
    assert sum(c["ead_from_fen"] for c in cells) + sum(c["ead_fen"] for c in mv["derecognised"].values()) == then["ead_fen"]
    assert sum(c["ecl_from_fen"] for c in cells) + sum(c["ecl_fen"] for c in mv["derecognised"].values()) == then["ecl_fen"]
    for stage_, figures in now["by_stage"].items():  # each stage at the end: what moved into it and what is new in it
        assert sum(mv["matrix"][a][stage_]["ead_to_fen"] for a in mv["matrix"]) + mv["new"][stage_]["ead_fen"] == figures["ead_fen"]
    # stages written out again from the raw DPD (stage 2 beyond 30 days, stage 3 beyond 90; the 5-category rule agrees here)
    raw_start, raw_end = _raw_states(rt, start), _raw_states(rt, end)
    assert raw_start[d2][0] == 25 and raw_end[d2][0] == 130 and raw_start[d5][0] == 0
    assert mv["matrix"]["1"]["3"]["exposures"] >= 1  # S2: 25 days (stage 1) → 130 days (stage 3)


def test_the_report_refuses_a_from_day_not_before_its_day_and_months_out_of_range(life):
    rt, _, _ = life
    for since in (date(2027, 5, 31), date(2027, 6, 1)):
        with pytest.raises(Conflict) as e:
            actions.portfolio_report(rt, None, as_of=date(2027, 5, 31), since=since)
        assert e.value.field == "from"
    for months in (-1, 25):
        with pytest.raises(InvalidInput) as e:
            actions.portfolio_report(rt, None, as_of=date(2027, 5, 31), roll_months=months)
        assert e.value.field == "months"
    assert len(actions.portfolio_report(rt, None, as_of=date(2027, 5, 31), roll_months=24).roll_rates) == 24


@given(st.lists(st.tuples(st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2040, 12, 31))), st.integers(0, 30)), max_size=40),
       st.dates(date(2000, 1, 1), date(2040, 12, 31)))
def test_the_vector_days_past_due_equals_the_scalar_one(rows, today):
    oldest = np.array([NO_DUE if d is None else d.toordinal() for d, _ in rows], dtype=np.int64)
    grace = np.array([g for _, g in rows], dtype=np.int64)
    assert days_past_due_vector(oldest, today, grace).tolist() == [days_past_due(d, today, g) for d, g in rows]


def test_the_workbook_and_the_csv_carry_the_delinquency_views(life, tmp_path):
    import csv

    from openpyxl import load_workbook

    from sandu.analytics.exports import delinquency_path, write_portfolio

    rt, _, _ = life
    p = actions.portfolio_report(rt, None, as_of=date(2027, 5, 31), since=date(2027, 1, 15), roll_months=3)
    write_portfolio(p, tmp_path / "p.xlsx")
    wb = load_workbook(tmp_path / "p.xlsx")
    assert {"逾期天数分布", "迁徙率", "阶段迁移"} <= set(wb.sheetnames)
    rows = list(wb["逾期天数分布"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in rows] == [f["drawings"] for f in p.dpd_buckets.values()]
    assert len(list(wb["迁徙率"].iter_rows(min_row=2))) == 3 * 6  # three transitions, six states each
    write_portfolio(p, tmp_path / "p.csv")
    with delinquency_path(tmp_path / "p.csv").open(encoding="utf-8-sig") as f:
        got = list(csv.DictReader(f))
    assert sum(int(r["value"]) for r in got if r["view"] == "dpd_bucket" and r["measure"] == "principal_fen") == p.principal_fen
    moved = sum(int(r["value"]) for r in got if r["view"] == "stage_movement" and r["measure"] == "ead_to_fen")
    new = sum(int(r["value"]) for r in got if r["view"] == "stage_new" and r["measure"] == "ead_fen")
    assert moved + new == p.expected_loss["ead_fen"]
