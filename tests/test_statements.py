"""Statements (对账单) of a real life on the ledger: two 随借随还 drawings of S2's 经营快贷 line, interest settled on the
20th and left unpaid (overdue interest, compound interest), a partial repayment, the principal left unpaid at maturity
(overdue principal, penalty interest), a repayment of the penalty and compound interest. Checked: opening + movements =
closing per bucket, the interest charged by kind against the income accounts and exact formulas, what was drawn and
paid, what falls due next; the statement through the API (the same JSON) and its bad input; the files the CLI writes
(CSV that Excel reads, XLSX with its number formats, JSON)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from fractions import Fraction
from math import floor
from pathlib import Path

import httpx
import pytest
from conftest import TEST_SECRET, login, new_db_url, runtime_on, serve
from servicing_support import D0, check_ledger, draw, eod, open_line, repay
from sqlalchemy import func, select

from sandu.domain.errors import InvalidInput, NotFound
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.ledger import journal as jl
from sandu.runtime import Runtime
from sandu.servicing import actions, statement_files
from sandu.servicing.statement_files import DUE_HEADER, MONEY_FORMAT, MOVEMENT_HEADER, percent, yuan, yuan_decimal
from sandu.servicing.statements import BUCKETS, MAX_PERIOD_DAYS, Statement
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m

API = "/api/v1"
RATE = Fraction(38, 1000)  # S2's 经营快贷, 3.80 %, 360-day basis
PENALTY = RATE * Fraction(3, 2)  # 罚息 and 复利: the rate × (1 + 0.50)
A_FEN, B_FEN = 300 * WAN, 100 * WAN
B_ON = date(2026, 12, 10)
R1_ON, R1_FEN = date(2027, 1, 5), 500_000
R2_ON, R2_FEN = date(2027, 12, 22), 2_000_000
MATURITY = date(2027, 11, 29)  # both drawings: capped at the line's expiry
END = date(2027, 12, 31)
P1 = (date(2026, 12, 1), date(2027, 1, 31))  # two settlements, two ageings, a draw, a repayment
P2 = (date(2027, 11, 1), END)  # a settlement, maturity unpaid, penalty and compound charged, a repayment
LIFE = (date(2026, 11, 1), END)


def rhu(x: Fraction) -> int:
    return floor(x + Fraction(1, 2))


def charge(fen_days: int, rate: Fraction = RATE) -> int:
    """Interest on `fen_days` (Σ closing balance per day), rounded half-up once."""
    return rhu(fen_days * rate / 360)


I_A1, I_B1 = charge(A_FEN * 22), charge(B_FEN * 11)  # 11-29..12-20 and 12-10..12-20
I_A2, I_B2 = charge(A_FEN * 31), charge(B_FEN * 31)  # 12-21..01-20
# compound on overdue interest from the day after it fell due (12-22); A's is 500,000 less from 01-05
C_A1, C_B1 = charge(I_A1 * 14 + (I_A1 - R1_FEN) * 16, PENALTY), charge(I_B1 * 30, PENALTY)


@dataclass
class Life:
    rt: Runtime
    url: str
    line: int
    a: int
    b: int
    other_line: int
    other_drawing: int
    r2: dict[int, dict[str, int]]  # what the second repayment paid, by drawing


def live(rt: Runtime, *, other: bool, midway=None) -> Life:
    """The life above; `other`: S1 also opens its 经营快贷 line and draws on it; `midway(line, a, b)` runs once the first
    repayment is made (the line is then closed through 2027-01-04)."""
    line = open_line(rt)
    a = draw(rt, line, A_FEN, D0).drawing
    b = draw(rt, line, B_FEN, B_ON).drawing
    assert (a.maturity_on, b.maturity_on) == (MATURITY, MATURITY)
    other_line = other_drawing = 0
    if other:
        other_line = open_line(rt, STORY_ROWS[0], "jingying_kuaidai")
        other_drawing = draw(rt, other_line, 10 * WAN, D0).drawing.id
    r1 = repay(rt, line, R1_FEN, R1_ON)
    assert r1.by_drawing == {a.id: {"overdue_interest": R1_FEN}}  # the oldest drawing's overdue interest first
    if midway:
        midway(line, a.id, b.id)
    r2 = repay(rt, line, R2_FEN, R2_ON)
    eod(rt, END)
    check_ledger(rt)
    return Life(rt, "", line, a.id, b.id, other_line, other_drawing, r2.by_drawing)


def st(rt: Runtime, line: int, period: tuple[date, date], drawing: int | None = None) -> Statement:
    return actions.statement(rt, line, start=period[0], end=period[1], drawing_id=drawing)


def assert_adds_up(s: Statement) -> None:
    """Opening + every movement = closing, per bucket; drawn and paid are the draws' and repayments' own."""
    for bucket in BUCKETS:
        assert s.opening_fen[bucket] + sum(mv.amounts_fen.get(bucket, 0) for mv in s.movements) == s.closing_fen[bucket], bucket
    assert s.drawn_fen == sum(mv.amounts_fen["principal"] for mv in s.movements if mv.kind == "draw")
    assert s.paid_fen == -sum(sum(mv.amounts_fen.values()) for mv in s.movements if mv.kind == "repayment")
    assert all(sum(mv.amounts_fen.values()) == 0 for mv in s.movements if mv.kind == "overdue")  # ageing moves, owes nothing more


def moves(s: Statement) -> list[tuple]:
    return [(mv.on_date, mv.kind, mv.drawing_id, mv.amounts_fen) for mv in s.movements]


def journal_charges(rt: Runtime, line: int, period: tuple[date, date]) -> dict[str, int]:
    """Σ of the charge postings to the line's drawings in the period, read from the journal by account."""
    j, p = m.JournalEntryRow, m.PostingRow
    out = {}
    with rt.uow.read() as s:
        for kind in jl.CHARGE_KINDS:
            out[kind] = int(s.scalar(select(func.coalesce(func.sum(p.amount_fen), 0)).join(j, j.id == p.entry_id)
                                     .where(j.kind == kind, p.account.like(f"loan:{line}-%:{kind}"), j.effective_date.between(*period))))
    return out


def income(rt: Runtime, period: tuple[date, date]) -> dict[str, int]:
    """What each income account was credited in the period (the other side of every charge)."""
    j, p = m.JournalEntryRow, m.PostingRow
    with rt.uow.read() as s:
        return {kind: -int(s.scalar(select(func.coalesce(func.sum(p.amount_fen), 0)).join(j, j.id == p.entry_id)
                                    .where(p.account == jl.INCOME_ACCOUNTS[kind], j.effective_date.between(*period))))
                for kind in jl.CHARGE_KINDS}


def rows_now(rt: Runtime, line: int) -> dict[str, int]:
    """The balances kept on the drawing rows, by bucket."""
    with rt.uow.read() as s:
        ds = list(s.scalars(select(m.Drawing).where(m.Drawing.line_id == line)))
        return {"principal": sum(d.principal_fen for d in ds), "interest": sum(d.interest_fen for d in ds),
                "overdue_principal": sum(d.overdue_principal_fen for d in ds), "overdue_interest": sum(d.overdue_interest_fen for d in ds),
                "penalty": sum(d.penalty_fen for d in ds), "compound": sum(d.compound_fen for d in ds)}


# --- the statement of a life, on SQLite and PostgreSQL ------------------------------------------------------------------


def test_a_life_adds_up_to_the_fen(rt):
    seen: dict[str, Statement] = {}

    def midway(line: int, a: int, b: int) -> None:
        """Closed through 2027-01-04: December is final, January is not; nothing raised after 12-21 yet."""
        dec = seen["dec"] = st(rt, line, (date(2026, 12, 1), date(2026, 12, 31)))
        assert dec.final and dec.closed_through == date(2027, 1, 4)
        assert not st(rt, line, (date(2026, 12, 1), date(2027, 1, 10))).final
        assert st(rt, line, (date(2026, 12, 1), date(2027, 1, 4))).final and not st(rt, line, (date(2026, 12, 1), date(2027, 1, 5))).final
        assert [(x.drawing_id, x.due_on, x.kind, x.principal_fen, x.interest_fen) for x in dec.next_due] == [
            (a, date(2026, 12, 21), "unpaid", 0, I_A1 - R1_FEN), (a, MATURITY, "maturity", A_FEN, 0),
            (b, date(2026, 12, 21), "unpaid", 0, I_B1), (b, MATURITY, "maturity", B_FEN, 0)]
        # accrued through 01-04, not charged: interest 12-21..01-04 (15 days), compound 12-22..01-04 (14 days)
        assert dec.accrued_fen == {"interest": charge(A_FEN * 15) + charge(B_FEN * 15), "penalty": 0,
                                   "compound": charge(I_A1 * 14, PENALTY) + charge(I_B1 * 14, PENALTY)}

    life = live(rt, other=False, midway=midway)
    line, a, b = life.line, life.a, life.b

    # P1: two settlements and their ageing, a draw, a repayment — every movement, exactly
    s1 = st(rt, line, P1)
    assert_adds_up(s1)
    assert (s1.line_id, s1.drawing_id, s1.product, s1.period_from, s1.period_to) == (line, None, "jingying_kuaidai", *P1)
    assert (s1.enterprise_name, s1.uscc, s1.limit_fen, s1.rate_annual) == (STORY_ROWS[1]["name"], STORY_ROWS[1]["uscc"], 416 * WAN, "0.0380")
    assert s1.final and s1.closed_through == END
    assert s1.opening_fen == {"principal": A_FEN, "interest": 0, "overdue_principal": 0, "overdue_interest": 0, "compound": 0, "penalty": 0}
    assert moves(s1) == [
        (B_ON, "draw", b, {"principal": B_FEN}),
        (date(2026, 12, 20), "interest", a, {"interest": I_A1}), (date(2026, 12, 20), "interest", b, {"interest": I_B1}),
        (date(2026, 12, 21), "overdue", a, {"overdue_interest": I_A1, "interest": -I_A1}),
        (date(2026, 12, 21), "overdue", b, {"overdue_interest": I_B1, "interest": -I_B1}),
        (R1_ON, "repayment", a, {"overdue_interest": -R1_FEN}),
        (date(2027, 1, 20), "interest", a, {"interest": I_A2}), (date(2027, 1, 20), "interest", b, {"interest": I_B2}),
        (date(2027, 1, 20), "compound", a, {"compound": C_A1}), (date(2027, 1, 20), "compound", b, {"compound": C_B1}),
        (date(2027, 1, 21), "overdue", a, {"overdue_interest": I_A2, "interest": -I_A2}),
        (date(2027, 1, 21), "overdue", b, {"overdue_interest": I_B2, "interest": -I_B2}),
    ]
    assert [mv.paid_fen for mv in s1.movements if mv.kind == "repayment"] == [R1_FEN] and s1.paid_fen == R1_FEN
    assert [mv.drawn_fen for mv in s1.movements if mv.kind == "draw"] == [B_FEN] and s1.drawn_fen == B_FEN
    assert s1.interest_charged_fen == {"interest": I_A1 + I_B1 + I_A2 + I_B2, "penalty": 0, "compound": C_A1 + C_B1}
    assert s1.interest_charged_fen == journal_charges(rt, line, P1) == income(rt, P1)
    assert s1.closing_fen == {"principal": A_FEN + B_FEN, "interest": 0, "overdue_principal": 0,
                              "overdue_interest": I_A1 + I_B1 + I_A2 + I_B2 - R1_FEN, "compound": C_A1 + C_B1, "penalty": 0}
    # a final period reads the same later: December as seen midway
    dec = st(rt, line, (date(2026, 12, 1), date(2026, 12, 31)))
    assert (dec.opening_fen, dec.movements, dec.closing_fen, dec.interest_charged_fen) == (
        seen["dec"].opening_fen, seen["dec"].movements, seen["dec"].closing_fen, seen["dec"].interest_charged_fen)

    # P2: the principal falls due unpaid, penalty and compound are charged, the second repayment pays them first
    s2 = st(rt, line, P2)
    assert_adds_up(s2)
    assert s2.opening_fen == st(rt, line, (date(2026, 11, 1), date(2027, 10, 31))).closing_fen  # periods chain
    assert s2.interest_charged_fen == journal_charges(rt, line, P2) == income(rt, P2)
    assert all(v > 0 for v in s2.interest_charged_fen.values())
    assert [x[:3] for x in moves(s2) if x[1] == "overdue" and "overdue_principal" in x[3]] == [(MATURITY, "overdue", a), (MATURITY, "overdue", b)]
    assert [x[3] for x in moves(s2) if x[0] == MATURITY] == [{"overdue_principal": A_FEN, "principal": -A_FEN},
                                                             {"overdue_principal": B_FEN, "principal": -B_FEN}]
    dec20 = {(mv.kind, mv.drawing_id): mv.amounts_fen for mv in s2.movements if mv.on_date == date(2027, 12, 20)}
    # interest 11-21..11-29 (the maturity day, unpaid at its close, at the contract rate), penalty on the overdue principal 11-30..12-20
    assert dec20[("interest", a)] == {"interest": charge(A_FEN * 9)} and dec20[("interest", b)] == {"interest": charge(B_FEN * 9)}
    assert dec20[("penalty", a)] == {"penalty": charge(A_FEN * 21, PENALTY)} == {"penalty": 997_500}
    assert dec20[("penalty", b)] == {"penalty": charge(B_FEN * 21, PENALTY)}
    # compound for 11-21..12-20 on each drawing's overdue interest: its balance at 11-20, plus November's interest from 11-22
    nov = {mv.drawing_id: mv.amounts_fen["interest"] for mv in s2.movements if (mv.on_date, mv.kind) == (date(2027, 11, 20), "interest")}
    for d in (a, b):
        oi = st(rt, line, (date(2026, 11, 1), date(2027, 11, 20)), drawing=d).closing_fen["overdue_interest"]
        assert dec20[("compound", d)] == {"compound": charge(oi * 30 + nov[d] * 29, PENALTY)}
    # the second repayment: penalty, then compound, then overdue interest (the oldest drawing's), as the service reported it
    before = {d: st(rt, line, (date(2026, 11, 1), date(2027, 12, 21)), drawing=d).closing_fen for d in (a, b)}
    paid_oi = R2_FEN - sum(before[d]["penalty"] + before[d]["compound"] for d in (a, b))
    assert life.r2 == {a: {"penalty": before[a]["penalty"], "compound": before[a]["compound"], "overdue_interest": paid_oi},
                       b: {"penalty": before[b]["penalty"], "compound": before[b]["compound"]}}
    assert {mv.drawing_id: {k: -v for k, v in mv.amounts_fen.items()} for mv in s2.movements if mv.kind == "repayment"} == life.r2
    assert s2.paid_fen == R2_FEN and s2.drawn_fen == 0
    assert s2.closing_fen == rows_now(rt, line)  # the journal's account of the period ends where the rows stand
    # what is unpaid now of the dues fallen due by the end: A's first settlement was paid in full by the two repayments
    with rt.uow.read() as s:
        unpaid = [(x.drawing_id, x.due_on, x.principal_fen, x.interest_fen) for x in s.scalars(
            select(m.Due).where(m.Due.drawing_id.in_([a, b]), m.Due.principal_fen + m.Due.interest_fen > 0).order_by(m.Due.drawing_id, m.Due.due_on))]
    assert [(x.drawing_id, x.due_on, x.principal_fen, x.interest_fen) for x in s2.next_due] == unpaid
    assert {x.kind for x in s2.next_due} == {"unpaid"}  # nothing falls due after: both matured
    assert unpaid[0] == (a, date(2027, 1, 21), 0, I_A1 + I_A2 - R1_FEN - paid_oi)
    assert (a, MATURITY, A_FEN, 0) in unpaid and (b, date(2026, 12, 21), 0, I_B1) in unpaid
    # accrued since the 12-20 settlement, not charged: penalty on the overdue principal 12-21..12-31, compound on the overdue
    # interest (12-21 at its balance before December's interest aged, then at its balance after the repayment)
    oi_1220 = {d: st(rt, line, (date(2026, 11, 1), date(2027, 12, 20)), drawing=d).closing_fen["overdue_interest"] for d in (a, b)}
    oi_end = {d: st(rt, line, P2, drawing=d).closing_fen["overdue_interest"] for d in (a, b)}
    assert s2.accrued_fen == {"interest": 0, "penalty": charge(A_FEN * 11, PENALTY) + charge(B_FEN * 11, PENALTY),
                              "compound": sum(charge(oi_1220[d] + oi_end[d] * 10, PENALTY) for d in (a, b))}

    # the whole life: from nothing to the rows, everything drawn, everything paid, every charge
    whole = st(rt, line, LIFE)
    assert_adds_up(whole)
    assert whole.opening_fen == dict.fromkeys(BUCKETS, 0) and whole.closing_fen == rows_now(rt, line)
    assert (whole.drawn_fen, whole.paid_fen) == (A_FEN + B_FEN, R1_FEN + R2_FEN)
    assert whole.interest_charged_fen == income(rt, LIFE)
    # one drawing's statements and the line's add up
    per = [st(rt, line, P2, drawing=d) for d in (a, b)]
    for bucket in BUCKETS:
        assert per[0].closing_fen[bucket] + per[1].closing_fen[bucket] == s2.closing_fen[bucket]
    assert {mv.drawing_id for mv in per[0].movements} == {a} and per[0].drawing_id == a


def test_an_instalment_raised_before_the_periods_end_is_listed_once_then_the_next_one(rt_sqlite):
    """等额本息: the instalment due 12-29 is raised (its interest charged) on 12-28; a statement ending then lists it once, as
    raised; once it is paid, the next instalment as scheduled."""
    from sandu.domain.project import Project
    from sandu.servicing import service as svc

    rt = rt_sqlite
    line = open_line(rt, STORY_ROWS[0], "project_loan", project=Project("年产2.7万吨紧固件建设项目", 13_600 * WAN, 2_600 * WAN, 7), approve=True)
    d = draw(rt, line, 1000 * WAN, D0).drawing.id
    with rt.uow.read() as s:
        first, second = svc.schedule_of(s, svc.get_drawing(s, d))[:2]
    assert first.due_on == date(2026, 12, 29) and first.interest_fen > 0 and first.principal_fen > 0
    eve = date(2026, 12, 28)
    eod(rt, eve)
    for end in (eve, date(2026, 12, 27)):
        s = st(rt, line, (D0, end))
        assert [(x.drawing_id, x.due_on, x.kind, x.principal_fen, x.interest_fen) for x in s.next_due] == [
            (d, first.due_on, "instalment", first.principal_fen, first.interest_fen)]
    s = st(rt, line, (D0, eve))
    assert_adds_up(s)
    assert s.interest_charged_fen == {"interest": first.interest_fen, "penalty": 0, "compound": 0} == journal_charges(rt, line, (D0, eve))
    assert s.closing_fen["interest"] == first.interest_fen and s.closing_fen["principal"] == 1000 * WAN and s.final
    paid = repay(rt, line, first.principal_fen + first.interest_fen, first.due_on)
    assert paid.allocations == {"interest": first.interest_fen, "principal": first.principal_fen}
    for end in (eve, first.due_on):
        s = st(rt, line, (D0, end))
        assert [(x.due_on, x.kind, x.principal_fen, x.interest_fen) for x in s.next_due] == [
            (second.due_on, "instalment", second.principal_fen, second.interest_fen)]
    s = st(rt, line, (D0, first.due_on))
    assert not s.final and s.paid_fen == first.principal_fen + first.interest_fen and s.closing_fen["interest"] == 0
    check_ledger(rt)


# --- one life on SQLite, read through the API, the CLI and the files -----------------------------------------------------


@pytest.fixture(scope="module")
def life(sqlite_template, tmp_path_factory):
    url = next(new_db_url("sqlite", tmp_path_factory.mktemp("statements"), False, str(sqlite_template)))
    rt = runtime_on(url)
    built = live(rt, other=True)
    built.url = url
    yield built
    rt.engine.dispose()


@pytest.fixture(scope="module")
def client(life):
    from sandu.api.app import create_app

    server = serve(create_app(life.rt))
    base = next(server)
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c
    next(server, None)


def test_next_dues_of_a_past_period_are_what_fell_due_by_its_end_then_the_next_of_each(life):
    s1 = st(life.rt, life.line, P1)
    a, b = life.a, life.b
    # A's 12-21 settlement is paid in full (500,000 on 01-05, the rest on 12-22): not listed; nothing due after 01-31 is "unpaid"
    assert [(x.drawing_id, x.due_on, x.kind, x.principal_fen, x.interest_fen) for x in s1.next_due] == [
        (a, date(2027, 1, 21), "unpaid", 0, I_A1 + I_A2 - R1_FEN - life.r2[a]["overdue_interest"]),
        (a, date(2027, 2, 21), "settlement", 0, charge(A_FEN * 31)),  # 01-21..02-20
        (a, MATURITY, "maturity", A_FEN, 0),
        (b, date(2026, 12, 21), "unpaid", 0, I_B1), (b, date(2027, 1, 21), "unpaid", 0, I_B2),
        (b, date(2027, 2, 21), "settlement", 0, charge(B_FEN * 31)),
        (b, MATURITY, "maturity", B_FEN, 0),
    ]
    only_b = st(life.rt, life.line, P1, drawing=b)
    assert only_b.next_due == [x for x in s1.next_due if x.drawing_id == b]
    assert {mv.drawing_id for mv in only_b.movements} == {b} and only_b.opening_fen == dict.fromkeys(BUCKETS, 0)


def _get(client, line: int, auth: dict, **params) -> httpx.Response:
    return client.get(f"{API}/lines/{line}/statement", params=params, headers=auth)


def test_the_api_answers_the_statement_the_cli_and_files_show(client, life):
    rep = login(client, "rep-s2")
    for period, drawing in ((P1, None), (P2, None), (LIFE, None), (P2, life.a)):
        params = {"from": period[0].isoformat(), "to": period[1].isoformat()} | ({"drawing_id": drawing} if drawing else {})
        r = _get(client, life.line, rep, **params)
        assert r.status_code == 200, r.text
        built = st(life.rt, life.line, period, drawing)
        assert r.json() == json.loads(statement_files.to_json(built))
        assert Statement.model_validate(r.json()) == built
    body = _get(client, life.line, rep, **{"from": "2026-12-01", "to": "2027-01-31"}).json()
    assert body["interest_charged_fen"] == {"interest": I_A1 + I_B1 + I_A2 + I_B2, "penalty": 0, "compound": C_A1 + C_B1}
    assert body["paid_fen"] == R1_FEN and body["drawn_fen"] == B_FEN and body["final"] is True


def _error(r: httpx.Response, status: int, field: str | None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["message"] and err["request_id"], err
    return err


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"from": "2027-01-31", "to": "2027-01-30"}, 422, "to"),  # the end before the start
    ({"from": "2020-01-01", "to": "2030-01-08"}, 422, "to"),  # 3,661 days
    ({"from": "2026-13-01", "to": "2027-01-31"}, 422, "from"),
    ({"from": "2026-12-01", "to": "2027-02-30"}, 422, "to"),
    ({"from": "20261201", "to": "2027-01-31"}, 422, "from"),
    ({"from": "2026-12-01T00:00:00", "to": "2027-01-31"}, 422, "from"),
    ({"from": "", "to": "2027-01-31"}, 422, "from"),
    ({"to": "2027-01-31"}, 422, "from"),
    ({"from": "2026-12-01"}, 422, "to"),
    ({"from": "2026-12-01", "to": "2027-01-31", "drawing_id": "0"}, 422, "drawing_id"),
    ({"from": "2026-12-01", "to": "2027-01-31", "drawing_id": "x"}, 422, "drawing_id"),
    ({"from": "2026-12-01", "to": "2027-01-31", "drawing_id": "999999"}, 404, "drawing_id"),
])
def test_the_api_refuses_bad_input_naming_the_field(client, life, params, status, field):
    _error(_get(client, life.line, login(client, "rep-s2"), **params), status, field)


def test_the_api_keeps_other_lines_and_their_drawings_out(client, life):
    rep = login(client, "rep-s2")
    period = {"from": "2026-12-01", "to": "2027-01-31"}
    _error(_get(client, life.line, rep, **period, drawing_id=life.other_drawing), 404, "drawing_id")  # S1's drawing, not this line's
    _error(_get(client, 999_999, rep, **period), 404, "line_id")
    _error(_get(client, life.other_line, rep, **period), 404, "line_id")  # S1's line: not one S2's representative may see
    r = _get(client, life.other_line, login(client, "rep-s1"), **period, drawing_id=life.a)
    _error(r, 404, "drawing_id")
    _error(client.get(f"{API}/lines/{life.line}/statement", params=period), 401, None)


def test_the_period_is_bounded_on_both_sides(life):
    start = date(2020, 1, 1)
    longest = st(life.rt, life.line, (start, date.fromordinal(start.toordinal() + MAX_PERIOD_DAYS - 1)))
    assert (longest.period_to - longest.period_from).days + 1 == MAX_PERIOD_DAYS
    with pytest.raises(InvalidInput) as e:
        st(life.rt, life.line, (start, date.fromordinal(start.toordinal() + MAX_PERIOD_DAYS)))
    assert e.value.field == "to"
    one_day = st(life.rt, life.line, (R1_ON, R1_ON))
    assert [mv.kind for mv in one_day.movements] == ["repayment"] and one_day.paid_fen == R1_FEN
    with pytest.raises(InvalidInput) as e:
        st(life.rt, life.line, (R1_ON, date(2027, 1, 4)))
    assert e.value.field == "to" and "2027-01-05 or later" in e.value.message
    for bad in ("2027-01-05", datetime(2027, 1, 5, tzinfo=timezone.utc), None, 20270105):
        with pytest.raises(InvalidInput) as e:
            actions.statement(life.rt, life.line, start=bad, end=END)  # type: ignore[arg-type]
        assert e.value.field == "from"
        with pytest.raises(InvalidInput) as e:
            actions.statement(life.rt, life.line, start=R1_ON, end=bad)  # type: ignore[arg-type]
        assert e.value.field == "to"
    with pytest.raises(NotFound) as e:
        st(life.rt, 999_999, P1)
    assert e.value.field == "line_id"
    with pytest.raises(NotFound) as e:
        st(life.rt, life.line, P1, drawing=life.other_drawing)
    assert e.value.field == "drawing_id"


# --- the files ------------------------------------------------------------------------------------------------------------


def y(fen: int) -> str:
    """Fen in 元 as the files write them, computed on its own: exact decimal division, two places."""
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def test_amounts_are_yuan_to_the_fen_without_floats():
    assert [yuan(x) for x in (0, 1, 9, 10, 99, 100, 101, -1, -100, -12_345, 123_456_789, 10**17 + 1)] == [
        "0.00", "0.01", "0.09", "0.10", "0.99", "1.00", "1.01", "-0.01", "-1.00", "-123.45", "1,234,567.89", "1,000,000,000,000,000.01"]
    assert yuan(-123_456_789, grouped=False) == "-1234567.89" and yuan(0, grouped=False) == "0.00"
    assert yuan_decimal(123_456_789) == Decimal("1234567.89") and str(yuan_decimal(5)) == "0.05" and str(yuan_decimal(-1)) == "-0.01"
    assert str(yuan_decimal(2**62 + 1)) == "46116860184273879.05"  # beyond a float's 53 bits, still exact
    for bad in (1.5, True, "100", Decimal(1)):
        with pytest.raises(TypeError):
            yuan(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            yuan_decimal(bad)  # type: ignore[arg-type]
    assert [percent(r) for r in ("0.0380", "0.0435", "0.05", "0.03825")] == ["3.80%", "4.35%", "5.00%", "3.825%"]
    with pytest.raises(ValueError):
        statement_files.render(Statement.model_validate_json(_EMPTY), "pdf")


_EMPTY = json.dumps({"line_id": 1, "drawing_id": None, "product": "jingying_kuaidai", "enterprise_name": "温州某科技有限公司", "uscc": "x",
                     "limit_fen": 100, "rate_annual": "0.0380", "period_from": "2027-01-01", "period_to": "2027-01-31",
                     "closed_through": "2027-01-15", "final": False, "opening_fen": dict.fromkeys(BUCKETS, 0), "movements": [],
                     "interest_charged_fen": dict.fromkeys(jl.CHARGE_KINDS, 0), "paid_fen": 0, "drawn_fen": 0,
                     "closing_fen": dict.fromkeys(BUCKETS, 0), "accrued_fen": dict.fromkeys(jl.CHARGE_KINDS, 0), "next_due": []})


@pytest.fixture
def cli(life, monkeypatch):
    """`sandu statement …` in this process, on the life's store."""
    from typer.testing import CliRunner

    from sandu.cli.main import app
    from sandu.settings import get_settings

    monkeypatch.setenv("SANDU_DATABASE_URL", life.url)
    monkeypatch.setenv("SANDU_SECRET_KEY", TEST_SECRET)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, ["statement", *args])
    get_settings.cache_clear()


def _period(period: tuple[date, date]) -> list[str]:
    return ["--from", period[0].isoformat(), "--to", period[1].isoformat()]


def test_the_cli_writes_a_csv_that_excel_reads_in_chinese(cli, life, tmp_path):
    out = tmp_path / "p1.csv"
    r = cli("--line", str(life.line), *_period(P1), "--format", "csv", "--out", str(out))
    assert r.exit_code == 0, r.output
    raw = out.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    a, b = life.a, life.b
    header = {r[0]: r[1] for r in rows[1:12]}
    assert header["额度编号"] == str(life.line) and header["借据号"] == "全部" and header["企业名称"] == STORY_ROWS[1]["name"]
    assert header["产品"] == "经营快贷（jingying_kuaidai）" and header["账期"] == "2026-12-01 至 2027-01-31" and header["年利率"] == "3.80%"
    assert header["授信额度"] == "4160000.00" and header["结账日"] == END.isoformat() and header["状态"].startswith("已结账")
    head = rows.index(["日期", "摘要", "借据号", "本金", "利息", "逾期本金", "逾期利息", "罚息", "复利", "放款", "还款", "参考号"])
    assert rows[head] == list(MOVEMENT_HEADER)
    assert rows[head + 1] == ["", "期初余额", "", "3000000.00", "0.00", "0.00", "0.00", "0.00", "0.00"]
    body = rows[head + 2: head + 14]
    assert [r[:11] for r in body[:2]] == [
        ["2026-12-10", "放款", str(b), "1000000.00", "0.00", "0.00", "0.00", "0.00", "0.00", "1000000.00", "0.00"],
        ["2026-12-20", "结息", str(a), "0.00", "6966.67", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00"]]
    assert body[5][:11] == ["2027-01-05", "还款", str(a), "0.00", "0.00", "0.00", "-5000.00", "0.00", "0.00", "0.00", "5000.00"]
    assert body[8][:11] == ["2027-01-20", "计收复利", str(a), "0.00", "0.00", "0.00", "0.00", "0.00", y(C_A1), "0.00", "0.00"]
    assert [r[1] for r in body] == ["放款", "结息", "结息", "转逾期", "转逾期", "还款", "结息", "结息", "计收复利", "计收复利", "转逾期", "转逾期"]
    assert all(r[11] for r in body)  # every movement names its entry's key
    total_oi = I_A1 + I_B1 + I_A2 + I_B2 - R1_FEN
    assert rows[head + 14] == ["", "本期发生额合计", "", "1000000.00", "0.00", "0.00", y(total_oi), "0.00", y(C_A1 + C_B1), "1000000.00", "5000.00"]
    assert rows[head + 15] == ["", "期末余额", "", "4000000.00", "0.00", "0.00", y(total_oi), "0.00", y(C_A1 + C_B1)]
    totals = {r[0]: r[1] for r in rows[head + 16:] if len(r) == 2}
    assert totals["本期计收利息"] == y(I_A1 + I_B1 + I_A2 + I_B2) and totals["本期计收罚息"] == "0.00" and totals["本期计收复利"] == y(C_A1 + C_B1)
    assert totals["本期放款"] == "1000000.00" and totals["本期还款"] == "5000.00"
    assert totals["期初欠款合计"] == "3000000.00" and totals["期末欠款合计"] == y(400 * WAN + total_oi + C_A1 + C_B1)
    dues = rows.index(list(DUE_HEADER))
    assert rows[dues + 1] == [str(a), "2027-01-21", "已到期未还", "0.00", y(I_A1 + I_A2 - R1_FEN - life.r2[a]["overdue_interest"]),
                              y(I_A1 + I_A2 - R1_FEN - life.r2[a]["overdue_interest"])]
    assert rows[dues + 3] == [str(a), MATURITY.isoformat(), "到期还本", "3000000.00", "0.00", "3000000.00"]
    assert len(rows) == dues + 1 + 7


def test_the_cli_writes_an_xlsx_with_chinese_headers_and_money_formats(cli, life, tmp_path):
    import openpyxl

    out = tmp_path / "p2.xlsx"
    r = cli("--line", str(life.line), *_period(P2), "--format", "xlsx", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert str(out) in r.stdout
    ws = openpyxl.load_workbook(out)["对账单"]
    cells = list(ws.iter_rows())
    values = [[c.value for c in row] for row in cells]
    head = next(i for i, row in enumerate(values) if tuple(row[:12]) == MOVEMENT_HEADER)
    s2 = st(life.rt, life.line, P2)
    money_rows = [(s2.opening_fen, head + 1)] + [(mv.amounts_fen, head + 2 + k) for k, mv in enumerate(s2.movements)] + \
                 [(s2.closing_fen, head + 3 + len(s2.movements))]
    columns = ("principal", "interest", "overdue_principal", "overdue_interest", "penalty", "compound")
    for amounts, i in money_rows:
        for c, bucket in enumerate(columns, start=3):
            cell = cells[i][c]
            assert cell.number_format == MONEY_FORMAT, (i, c)
            assert Decimal(str(cell.value)) == Decimal(amounts.get(bucket, 0)) / 100, (i, bucket)
    assert values[head + 3 + len(s2.movements)][1] == "期末余额"
    closing = cells[head + 3 + len(s2.movements)]
    assert Decimal(str(closing[5].value)) == Decimal("4000000.00")  # the principal fallen due unpaid
    for k, mv in enumerate(s2.movements):
        row = cells[head + 2 + k]
        assert row[0].value == datetime(mv.on_date.year, mv.on_date.month, mv.on_date.day) and row[0].number_format == "yyyy-mm-dd"
        assert row[2].value == mv.drawing_id
        assert (Decimal(str(row[9].value)), Decimal(str(row[10].value))) == (Decimal(mv.drawn_fen) / 100, Decimal(mv.paid_fen) / 100)
        assert row[9].number_format == row[10].number_format == MONEY_FORMAT
    penalties = [row for row in values if row[0] == "本期计收罚息"]
    assert len(penalties) == 1 and Decimal(str(penalties[0][1])) == Decimal(s2.interest_charged_fen["penalty"]) / 100
    assert s2.interest_charged_fen["penalty"] == charge(A_FEN * 21, PENALTY) + charge(B_FEN * 21, PENALTY)
    repaid = next(row for row in cells if row[0].value == "本期还款")
    assert repaid[1].number_format == MONEY_FORMAT and Decimal(str(repaid[1].value)) == Decimal("20000.00")
    dues = next(i for i, row in enumerate(values) if tuple(row[:6]) == DUE_HEADER)
    assert len([row for row in values[dues + 1:] if row[0] is not None]) == len(s2.next_due)
    for row in cells[dues + 1: dues + 1 + len(s2.next_due)]:
        assert all(c.number_format == MONEY_FORMAT for c in row[3:6])
        assert Decimal(str(row[5].value)) == Decimal(str(row[3].value)) + Decimal(str(row[4].value))
    # every number in the sheet is an amount formatted as money, but the line's number (B) and the drawings' (C, and A of the dues)
    ids = {life.line, life.a, life.b}
    for row in cells:
        for c in row:
            if isinstance(c.value, (int, float)) and not (c.column in (1, 2, 3) and c.value in ids and c.number_format == "General"):
                assert c.number_format == MONEY_FORMAT, (c.coordinate, c.value)


def test_the_cli_writes_the_apis_json_and_prints_a_table(cli, client, life, tmp_path):
    out = tmp_path / "a.json"
    r = cli("--line", str(life.line), *_period(P1), "--drawing", str(life.a), "--format", "json", "--out", str(out))
    assert r.exit_code == 0, r.output
    api = _get(client, life.line, login(client, "rep-s2"), **{"from": P1[0].isoformat(), "to": P1[1].isoformat(), "drawing_id": life.a})
    assert json.loads(out.read_text(encoding="utf-8")) == api.json()
    r = cli("--line", str(life.line), *_period(P1), "--format", "json")  # to the terminal
    assert r.exit_code == 0 and json.loads(r.stdout) == json.loads(statement_files.to_json(st(life.rt, life.line, P1)))
    r = cli("--line", str(life.line), *_period(P1), "--format", "csv")
    assert r.exit_code == 0 and r.stdout_bytes.startswith(codecs.BOM_UTF8) and "期初余额" in r.stdout_bytes.decode("utf-8-sig")
    r = cli("--line", str(life.line), *_period(P2))
    assert r.exit_code == 0, r.output
    for text in ("对账单", "经营快贷", "期初余额", "期末余额", "本期计收罚息", "4,000,000.00", yuan(charge(A_FEN * 21, PENALTY)), "已到期未还"):
        assert text in r.stdout, text
    r = cli("--line", str(life.line), *_period(P2), "--out", str(tmp_path / "p2.txt"))
    assert r.exit_code == 0 and "期末余额" in (tmp_path / "p2.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "flag"), [
    (["--from", "2026-13-01", "--to", "2027-01-31"], "--from"),
    (["--from", "2026-12-01", "--to", "31/01/2027"], "--to"),
    (["--from", "2027-01-31", "--to", "2027-01-30"], "--to"),
    (["--from", "2020-01-01", "--to", "2030-01-08"], "--to"),
    (["--from", "2026-12-01", "--to", "2027-01-31", "--format", "xlsx"], "--out"),
    (["--from", "2026-12-01", "--to", "2027-01-31", "--format", "pdf", "--out", "x.pdf"], "--format"),
    (["--from", "2026-12-01", "--to", "2027-01-31", "--drawing", "OTHER"], "--drawing"),
    (["--from", "2026-12-01", "--to", "2027-01-31", "--drawing", "999999"], "--drawing"),
])
def test_the_cli_refuses_bad_input_naming_the_flag(cli, life, tmp_path, args, flag):
    args = [str(life.other_drawing) if a == "OTHER" else a for a in args]
    r = cli("--line", str(life.line), *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.lstrip().startswith("error:") and flag in r.stderr and "Traceback" not in r.output
    assert r.stdout == ""
    assert not (tmp_path / "x.pdf").exists()


def test_the_cli_names_an_unknown_line(cli):
    r = cli("--line", "999999", "--from", "2026-12-01", "--to", "2027-01-31")
    assert r.exit_code == 2 and "--line" in r.stderr and "does not exist" in r.stderr


def test_the_sandu_command_writes_an_xlsx(life, tmp_path):
    import openpyxl

    env = {**os.environ, "SANDU_DATABASE_URL": life.url, "COLUMNS": "200", "SANDU_SECRET_KEY": TEST_SECRET}
    out = tmp_path / "对账单.xlsx"
    r = subprocess.run([str(Path(sys.executable).with_name("sandu")), "statement", "--line", str(life.line), *_period(P1), "--format", "xlsx",
                        "--out", str(out)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert openpyxl.load_workbook(out)["对账单"]["A1"].value == "对账单"
