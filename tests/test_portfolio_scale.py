"""Issue 12's reconciliation at scale: every figure of the portfolio report, as of several days across 400, recomputed
independently from the journal (`portfolio_support.reconcile`, raw SQL) on a simulated book of 10,000 credit lines.

How the book is made, and why (the one shortcut, stated): signing a line through the full origination path (register,
consent, measure with its counterfactuals, sign) costs ~40–80 ms on this machine, 10,000 of them ~10 minutes — more than
the whole suite may take. So two lines are signed through the real services (S2's 经营快贷 and S3's 科创信用额度, two
sub-branches, a tech and a non-tech borrower), and the other 10,000 are their copies — enterprise, decision, offer and
line rows cloned in bulk with their own USCC, sub-branch, industry, limit and opening day spread over the first 370 days.
Every fen after that goes through the real ledger: each draw, repayment and close by the servicing service functions
(one unit of work a day), and every date closed by the real end of day (`servicing.actions.end_of_day`: accrual,
settlement on the 20th, overdue, penalty, classification). Deterministic: the schedule is a keyed hash of the line.

Each line draws on its opening day; most repay everything on the first settlement day (21st) at least 10–50 days on and
are closed; some repay 40 % of the principal a week in; some pay 6 days late (overdue interest, penalty); 4 % stop
paying (overdue, 关注 → 次级 → 可疑 through the classification rules). SQLite only: the history tests reconcile the same
figures on PostgreSQL at a smaller size."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from conftest import runtime_on
from portfolio_support import reconcile
from servicing_support import D0, check_ledger, open_line
from sqlalchemy import bindparam, func, insert, select

from sandu.demo.history import DayClock
from sandu.domain.dates import add_months
from sandu.domain.enums import DrawingStatus, LineStatus
from sandu.domain.errors import Conflict
from sandu.security.actor import Actor
from sandu.servicing import actions as servicing
from sandu.servicing import service as svc
from sandu.servicing.close import class_rules
from sandu.simulate.history import uniform
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m

LINES = 10_000
DAYS = 400
OPENING_DAYS = 370
SEED = 12
BRANCHES = ("永嘉", "乐清", "龙湾", "苍南", "鹿城", "瓯海")
INDUSTRIES = ("通用设备制造", "软件和信息技术服务", "电气机械", "汽车零部件", "医药制造")
SETTLED_DAY = 21  # the day after the 20th's settlement: interest charged is due


def _clone(conn, model, row_id, **changes) -> dict:
    table = model.__table__
    row = dict(conn.execute(table.select().where(table.c.id == row_id)).mappings().one())
    row.update(changes)
    return row


def _bulk_lines(rt, templates: list[int]) -> list[tuple[int, date]]:
    """LINES copies of the template lines (enterprise, decision, offer, line), opening over OPENING_DAYS; (line id, opened on)."""
    with rt.uow.write() as s:
        conn = s.connection()
        first = (s.scalar(select(func.max(m.CreditLine.id))) or 0) + 1
        tpl = []
        for line_id in templates:
            line = s.get(m.CreditLine, line_id)
            offer = s.get(m.Offer, line.offer_id)
            tpl.append((_clone(conn, m.Enterprise, line.enterprise_id), _clone(conn, m.Decision, offer.decision_id), _clone(conn, m.Offer, offer.id),
                        _clone(conn, m.CreditLine, line_id)))
        next_ent = (s.scalar(select(func.max(m.Enterprise.id))) or 0) + 1
        next_offer = (s.scalar(select(func.max(m.Offer.id))) or 0) + 1
        ents, decisions, offers, lines, links = [], [], [], [], []
        for k in range(LINES):
            ent, dec, offer, line = tpl[k % len(tpl)]
            opened = D0 + timedelta(days=k * OPENING_DAYS // LINES)
            limit = (100 + int(400 * uniform(SEED, D0, str(k), "limit"))) * 1_000_000  # 100万..500万
            ent_id, offer_id, dec_id = next_ent + k, next_offer + k, f"scale-{k:08d}"
            ents.append({**ent, "id": ent_id, "uscc": f"SC{k:016d}", "name": f"规模测试企业{k}", "branch": BRANCHES[k % len(BRANCHES)],
                         "industry": INDUSTRIES[k % len(INDUSTRIES)], "live_decision_id": None})
            decisions.append({**dec, "id": dec_id, "enterprise_id": ent_id, "as_of": opened, "comprehensive_limit_fen": limit,
                              "application_id": None})
            offers.append({**offer, "id": offer_id, "decision_id": dec_id, "limit_fen": limit, "approved_fen": limit})
            lines.append({**line, "id": first + k, "enterprise_id": ent_id, "offer_id": offer_id, "limit_fen": limit, "opened_on": opened,
                          "expires_on": add_months(opened, 12), "accrued_through": opened - timedelta(days=1), "application_id": None})
            links.append({"id": ent_id, "live_decision_id": dec_id})
        for table, rows in ((m.Enterprise, ents), (m.Decision, decisions), (m.Offer, offers), (m.CreditLine, lines)):
            conn.execute(insert(table.__table__), rows)
        ent_table = m.Enterprise.__table__  # the decision in force, once the decisions exist
        conn.execute(ent_table.update().where(ent_table.c.id == bindparam("b_id")).values(live_decision_id=bindparam("b_live")),
                     [{"b_id": x["id"], "b_live": x["live_decision_id"]} for x in links])
    return [(r["id"], r["opened_on"]) for r in lines]


def _settlement_on_or_after(day: date) -> date:
    target = day.replace(day=SETTLED_DAY)
    return target if target >= day else add_months(target, 1)


def _schedule(lines: list[tuple[int, date]]) -> dict[date, list[tuple[str, int, int]]]:
    """Day → [(what, line id, share permille)]: the book's life, a keyed hash of each line."""
    plan: dict[date, list[tuple[str, int, int]]] = {}
    for line_id, opened in lines:
        def u(what: str, opened: date = opened, line_id: int = line_id) -> float:
            return uniform(SEED, opened, str(line_id), what)

        plan.setdefault(opened, []).append(("draw", line_id, 300 + int(600 * u("share"))))
        if u("default") < 0.04:
            continue  # stops paying: never repays
        if u("part") < 0.2:
            plan.setdefault(opened + timedelta(days=7), []).append(("part", line_id, 400))
        payoff = _settlement_on_or_after(opened + timedelta(days=10 + int(40 * u("life"))))
        if u("late") < 0.15:
            payoff += timedelta(days=6)
        plan.setdefault(payoff, []).append(("payoff", line_id, 1000))
    return plan


def _owed(s, line_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(what a repayment may pay now, principal outstanding) per line, from its open drawings (随借随还: all principal)."""
    out: dict[int, list[int]] = {i: [0, 0] for i in line_ids}
    for d in s.scalars(select(m.Drawing).where(m.Drawing.line_id.in_(line_ids), m.Drawing.status == DrawingStatus.OPEN)):
        principal = d.principal_fen + d.overdue_principal_fen
        out[d.line_id][0] += principal + d.interest_fen + d.overdue_interest_fen + d.penalty_fen + d.compound_fen
        out[d.line_id][1] += principal
    return {i: (a, p) for i, (a, p) in out.items()}


@pytest.fixture(scope="module")
def book(tmp_path_factory, sqlite_template):
    import shutil

    path = tmp_path_factory.mktemp("scale") / "scale.db"
    shutil.copyfile(sqlite_template, path)
    rt = runtime_on(f"sqlite:///{path}")
    started, cpu = time.perf_counter(), time.process_time()
    templates = [open_line(rt), open_line(rt, STORY_ROWS[2], "keji_xinyong")]  # signed through the real services on D0
    lines = _bulk_lines(rt, templates)
    limits = {}
    with rt.uow.read() as s:
        limits = dict(s.execute(select(m.CreditLine.id, m.CreditLine.limit_fen)).all())
    plan = _schedule([(t, D0) for t in templates] + lines)
    clock = DayClock(D0)
    sim = replace(rt, settings=rt.settings.model_copy(update={"clock": "simulated"}), clock=clock)
    rules = class_rules(rt.bundle.classification)
    closing: set[int] = set()
    counts = {"draw": 0, "repay": 0, "close": 0, "close_refused": 0}
    for k in range(DAYS):
        day = D0 + timedelta(days=k)
        clock.day = day
        now = clock()
        todo = plan.get(day, [])
        with sim.uow.write() as s:
            acting = [line_id for what, line_id, _ in todo if what != "draw"]
            if day.day == SETTLED_DAY:
                acting += sorted(closing)
            owed = _owed(s, acting) if acting else {}
            for what, line_id, share in todo:
                key = f"scale-{day.isoformat()}-{what}-{line_id}"
                if what == "draw":
                    amount = limits[line_id] * share // 1000 // 100_000 * 100_000
                    svc.draw(s, line_id=line_id, amount_fen=amount, on_date=day, idempotency_key=key, now=now, rules=rules)
                    counts["draw"] += 1
                elif what == "part" and owed[line_id][1]:
                    svc.repay(s, line_id=line_id, amount_fen=owed[line_id][0] - owed[line_id][1] + owed[line_id][1] * share // 1000, on_date=day,
                              idempotency_key=key, now=now, rules=rules)
                    counts["repay"] += 1
                elif what == "payoff":
                    closing.add(line_id)
            for line_id in sorted(closing & set(acting)):
                if owed.get(line_id, (0, 0))[0]:
                    svc.repay(s, line_id=line_id, amount_fen=owed[line_id][0], on_date=day, idempotency_key=f"scale-{day.isoformat()}-all-{line_id}",
                              now=now, rules=rules)
                    counts["repay"] += 1
                try:
                    with s.begin_nested():
                        svc.close_line(s, line_id=line_id)
                except Conflict:  # interest accrued since the 20th is not yet settled: repaid and closed on the next 21st
                    counts["close_refused"] += 1
                    continue
                closing.discard(line_id)
                counts["close"] += 1
        servicing.end_of_day(sim, Actor.system("eod"), day)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rt.clock.value = datetime.combine(D0 + timedelta(days=DAYS), datetime.min.time(), tzinfo=timezone.utc).replace(hour=4)
    print(f"\nscale book: {len(lines) + len(templates):,} lines over {DAYS} days in {seconds:.1f} s ({cpu:.1f} s of CPU): {counts}")
    yield rt, counts
    rt.engine.dispose()


def test_the_book_is_10000_lines_over_400_days_from_the_real_ledger(book):
    rt, counts = book
    check_ledger(rt)  # every entry balances, every balance kept on a row equals the journal, 0 ≤ drawn ≤ limit
    with rt.uow.read() as s:
        assert s.scalar(select(func.count()).select_from(m.CreditLine)) >= LINES
        assert s.scalar(select(m.BusinessCalendar.last_closed_on)) == D0 + timedelta(days=DAYS - 1)
        assert s.scalar(select(func.min(m.JournalEntryRow.effective_date))) == D0
        kinds = dict(s.execute(select(m.JournalEntryRow.kind, func.count()).group_by(m.JournalEntryRow.kind)).all())
        classes = set(s.scalars(select(m.ClassificationChange.to_class).distinct()))
        statuses = dict(s.execute(select(m.CreditLine.status, func.count()).group_by(m.CreditLine.status)).all())
    assert counts["draw"] >= LINES and kinds["draw"] == counts["draw"]
    assert {"substandard", "doubtful"} <= classes, classes  # the defaulters went down the five categories
    assert statuses[LineStatus.CLOSED] > LINES // 2 and statuses[LineStatus.ACTIVE] > 0, statuses


@pytest.mark.parametrize("offset", [0, 51, 140, 233, 320, DAYS - 1])
def test_every_report_figure_reconciles_to_the_journal_across_the_400_days(book, offset):
    rt, _ = book
    reconcile(rt, D0 + timedelta(days=offset), vintages=offset in (140, DAYS - 1))
