"""`sandu simulate --history`: a few hundred simulated enterprises run forward three months through the real services and
the real end of day, on SQLite and PostgreSQL — deterministic for a seed (the two backends write the same journal),
defaults from the high latent-risk enterprises, the ledger check passing, and the portfolio report reconciling to the
journal on several days. The behaviour model alone (pure) by hypothesis; refusals of bad runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from conftest import TEST_SECRET, make_rt, new_db_url, runtime_on
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio_support import reconcile
from sqlalchemy import text

from sandu.demo.history import history_days, run_history
from sandu.domain.enums import StoreKind
from sandu.domain.errors import Conflict, InvalidInput
from sandu.servicing.actions import ledger_check
from sandu.servicing.calendar import mark_store
from sandu.simulate.history import (
    MAX_MONTHS,
    MIN_DRAW_FEN,
    Act,
    LineState,
    Rates,
    Traits,
    default_day,
    late_probability,
    line_actions,
    uniform,
    wants_to_apply,
)

ENTERPRISES = 200
MONTHS = 3
SEED = 11
# most apply in the first weeks, pay off and close more often, and the defaulters stop paying within 45 days: three months
# show the whole life of a line
EAGER = Rates(apply=0.04, repay_part=0.05, pay_off=0.5, close_used=0.2, default_within_days=45)
RESULTS: dict[str, tuple[dict, dict]] = {}


def _journal_totals(rt) -> dict:
    """What the history wrote, independent of ids: each account's total by kind and value date, and the entries' count."""
    with rt.engine.connect() as conn:
        sums = conn.execute(text("SELECT e.kind, e.effective_date, p.account, SUM(p.amount_fen), COUNT(*) FROM postings p "
                                 "JOIN journal_entries e ON e.id = p.entry_id GROUP BY e.kind, e.effective_date, p.account")).all()
        lines = conn.execute(text("SELECT e.uscc, l.limit_fen, l.opened_on, l.status FROM credit_lines l JOIN enterprises e ON e.id = l.enterprise_id "
                                  "ORDER BY e.uscc, l.opened_on")).all()
    return {"postings": sorted((k, str(d)[:10], a, int(s), int(n)) for k, d, a, s, n in sums),
            "lines": [(u, int(limit), str(o)[:10], st_) for u, limit, o, st_ in lines]}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def history(request, tmp_path_factory, pg_available):
    urls = new_db_url(request.param, tmp_path_factory.mktemp("history"), pg_available)
    rt = make_rt(next(urls), ENTERPRISES)
    result = run_history(rt, months=MONTHS, seed=SEED, rates=EAGER)
    rt.clock.value = datetime.combine(result.last_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc).replace(hour=4)
    RESULTS[request.param] = (_journal_totals(rt), {"lines": result.lines_opened, "draws": result.draws})
    yield rt, result
    rt.engine.dispose()
    urls.close()


def test_the_history_runs_every_day_through_the_services_and_the_ledger_check_passes(history):
    rt, r = history
    assert r.first_day == date(2026, 11, 29) and r.days == len(history_days(r.first_day, MONTHS)) == 91
    assert r.lines_opened >= 60 and r.draws >= r.lines_opened // 2 and r.repayments > r.draws and r.closes >= 1
    assert sum(r.outcomes.values()) == r.applications and {"approve", "decline"} <= set(r.outcomes)
    assert not r.refused, r.refused  # the model acts within what the services allow
    check = ledger_check(rt)
    assert check.ok and check.lines == r.lines_opened, check.problems
    with rt.uow.read() as s:
        from sandu.servicing.calendar import calendar_row

        assert calendar_row(s).last_closed_on == r.last_day  # the real end of day closed every date
    with rt.engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT kind, COUNT(*) FROM journal_entries GROUP BY kind")).all())
        notes = dict(conn.execute(text("SELECT action, COUNT(*) FROM audit_log GROUP BY action")).all())
    assert kinds["draw"] == r.draws and kinds.get("repayment", 0) + kinds.get("repay", 0) >= 1, kinds
    assert notes["line.draw"] == r.draws and notes["line.repay"] == r.repayments and notes["line.open"] == r.lines_opened
    assert notes["decision.record"] == r.applications and notes["line.close"] == r.closes


def test_defaults_come_from_the_high_latent_risk_enterprises(history):
    rt, r = history
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT l.id, s.latent_risk, s.default_12m, MAX(d.dpd) FROM credit_lines l JOIN enterprises e ON e.id = l.enterprise_id "
                                 "JOIN sim_enterprises s ON s.uscc = e.uscc JOIN drawings d ON d.line_id = l.id "
                                 "GROUP BY l.id, s.latent_risk, s.default_12m")).all()
        accounts = conn.execute(text("SELECT DISTINCT p.account FROM postings p WHERE p.account LIKE :a AND p.amount_fen > 0"),
                                {"a": "loan:%:overdue_interest"}).scalars().all()
    ever_overdue = {int(a.split(":")[1].split("-")[0]) for a in accounts}
    borrowers = [risk for _, risk, _, _ in rows]
    mean = sum(borrowers) / len(borrowers)
    stopped = [(risk, flag) for _, risk, flag, dpd in rows if dpd >= 15]  # half a month unpaid: nobody but a defaulter is that late
    assert stopped and all(flag for _, flag in stopped), rows
    assert sum(risk for risk, _ in stopped) / len(stopped) > mean
    late = [risk for line_id, risk, flag, _ in rows if line_id in ever_overdue and not flag]  # paid late, then paid: the riskier
    assert len(late) >= 3 and sum(late) / len(late) > mean, (late, mean)


@pytest.mark.parametrize("offset", [-1, 0, 21, 31, 52, 89])
def test_the_portfolio_report_reconciles_to_the_journal_through_the_history(history, offset):
    rt, r = history
    reconcile(rt, r.first_day + timedelta(days=offset))


def test_the_same_seed_writes_the_same_journal_on_both_backends(history):
    """The SQLite and the PostgreSQL run are two runs of the same seed on the same universe: the same lines, and every
    account's total by entry kind and value date the same to the fen."""
    rt, _ = history
    if rt.engine.dialect.name == "sqlite":
        assert RESULTS["sqlite"][0]["postings"] and RESULTS["sqlite"][1]["lines"] > 0
        return
    if "sqlite" not in RESULTS:
        pytest.skip("compared against the SQLite run of the same module")
    assert RESULTS["postgres"] == RESULTS["sqlite"]


def test_a_production_store_and_bad_months_are_refused_and_nothing_changes(tmp_path):
    rt = make_rt(f"sqlite:///{tmp_path / 'prod.db'}", 20)
    with rt.uow.write() as s:
        mark_store(s, StoreKind.PRODUCTION)
    with pytest.raises(Conflict) as e:
        run_history(rt, months=1, seed=1)
    assert e.value.field == "store" and "demo or test store" in e.value.message
    with rt.uow.write() as s:
        mark_store(s, StoreKind.TEST)
    for months in (0, MAX_MONTHS + 1, "3", True, 1.5):
        with pytest.raises(InvalidInput) as e:
            run_history(rt, months=months, seed=1)
        assert e.value.field == "months" and f"1..{MAX_MONTHS}" in e.value.allowed
    with rt.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM enterprises")).scalar() == 0
    assert len(history_days(date(2026, 1, 31), 1)) == 28 and len(history_days(date(2026, 1, 1), MAX_MONTHS)) == 730
    rt.engine.dispose()


def test_the_cli_runs_a_history_and_refuses_bad_options(tmp_path):
    from cli_support import sandu

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    make_rt(url, 30).engine.dispose()
    env = {"SANDU_DATABASE_URL": url, "SANDU_SECRET_KEY": TEST_SECRET}
    r = sandu(["simulate", "--history", "--months", "1", "--seed", "3"], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "history of 1 month" in " ".join(r.stdout.split()) and "last closed" in r.stdout
    r = sandu(["ledger", "check"], env=env)
    assert r.returncode == 0 and "every balance kept on a row equals the journal" in r.stdout, r.stdout + r.stderr
    for args, words in ((["--months", "2"], "--months needs --history"), (["--history"], "--months"),
                        (["--history", "--months", "0"], "--months"), (["--history", "--months", "1", "--out", "x.parquet"], "--history")):
        r = sandu(["simulate", *args], env=env)
        assert r.returncode == 2 and words in " ".join((r.stdout + r.stderr).split()), (args, r.stdout, r.stderr)
    r = sandu(["demo", "--history-months", str(MAX_MONTHS + 1), "--no-serve"], env=env)
    assert r.returncode == 2 and f"--history-months: must be within 0..{MAX_MONTHS}" in " ".join(r.stderr.split()), r.stdout + r.stderr
    rt = runtime_on(url)
    with rt.uow.write() as s:
        mark_store(s, StoreKind.PRODUCTION)
    rt.engine.dispose()
    r = sandu(["simulate", "--history", "--months", "1"], env=env)
    assert r.returncode == 2 and "demo or test store" in " ".join((r.stdout + r.stderr).split()), r.stdout + r.stderr
    assert "Traceback" not in r.stderr


# --- the behaviour model, pure ----------------------------------------------------------------------------------------

traits = st.builds(Traits, uscc=st.text("0123456789ABCDEF", min_size=18, max_size=18), latent_risk=st.floats(-4, 4), default_12m=st.booleans())
days = st.dates(date(2026, 1, 1), date(2028, 12, 31))


@st.composite
def line_states(draw):
    principal = draw(st.integers(0, 10**10))
    due = draw(st.integers(0, 10**8))
    return LineState(line_id=draw(st.integers(1, 10**6)), available_fen=draw(st.integers(0, 10**10)), principal_fen=principal, due_fen=due,
                     accrued_fen=draw(st.integers(0, 10**7)), open_drawings=draw(st.integers(0, 5)), drawings_ever=draw(st.integers(0, 9)),
                     expires_on=draw(days), active=draw(st.booleans()))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**31), day=days, start=days, t=traits, line=line_states())
def test_the_model_acts_within_what_the_line_allows_and_a_defaulter_stops_paying(seed, day, start, t, line):
    acts = line_actions(seed, day, start, t, line)
    assert acts == line_actions(seed, day, start, t, line)  # a function of its arguments
    kinds = [a.act for a in acts]
    assert kinds.count(Act.REPAY) <= 1 and kinds.count(Act.DRAW) + kinds.count(Act.CLOSE) <= 1
    for a in acts:
        assert a.line_id == line.line_id and a.uscc == t.uscc
        if a.act is Act.REPAY:
            assert 0 < a.amount_fen <= line.due_fen + line.principal_fen
        if a.act is Act.DRAW:
            assert line.active and MIN_DRAW_FEN <= a.amount_fen <= line.available_fen and a.amount_fen % 100_000 == 0
            assert (line.expires_on - day).days > 30
        if a.act is Act.CLOSE:
            assert line.principal_fen == line.due_fen == line.accrued_fen == line.open_drawings == 0
    gone = default_day(seed, start, t)
    assert (gone is None) == (not t.default_12m) and gone == default_day(seed, start, t, 365)
    if gone is not None:
        assert start <= gone < start + timedelta(days=365)
        if day >= gone:
            assert acts == []
    if line.due_fen and (gone is None or day < gone) and uniform(seed, day, t.uscc, "late") >= max(0.5, late_probability(t.latent_risk)):
        assert kinds.count(Act.REPAY) == 1  # not late today: something is paid


def test_the_riskier_pay_late_more_often_and_nobody_applies_again_within_90_days():
    seed, start = 3, date(2026, 11, 29)
    line = LineState(1, 0, 0, 10_000, 0, 1, 1, date(2027, 11, 29), True)
    late = {}
    for risk in (-1.0, 2.5):
        t = Traits("91330300MA00000001", risk, False)
        late[risk] = sum(1 for k in range(2000) if not line_actions(seed, start + timedelta(days=k % 300), start, replace(t, uscc=f"{k:018d}"), line))
    assert late[2.5] > 3 * late[-1.0] > 0
    t = Traits("91330300MA00000001", 0.0, False)
    applied = [k for k in range(1000) if wants_to_apply(seed, start + timedelta(days=k), t, None, Rates(apply=1.0))]
    assert applied == list(range(1000))
    assert not any(wants_to_apply(seed, start + timedelta(days=k), t, start, Rates(apply=1.0)) for k in range(90))
    assert wants_to_apply(seed, start + timedelta(days=90), t, start, Rates(apply=1.0))


def test_an_action_the_services_refuse_changes_nothing_and_is_counted_the_others_commit(history):
    from sandu.demo.history import DayClock, HistoryResult, _World
    from sandu.simulate.history import Action

    rt, r = history
    day = r.last_day + timedelta(days=1)
    sim = replace(rt, clock=DayClock(day))
    world = _World.load(sim, SEED, r.first_day, EAGER)
    with rt.uow.read() as s:
        states = world.states(s, day)
    uscc, line_id = next((u, i) for u, i in world.lines.items() if states[i].active and states[i].due_fen == 0 and states[i].available_fen >= 200_000)
    before = _journal_totals(rt)
    with rt.engine.connect() as conn:
        notes = conn.execute(text("SELECT COUNT(*) FROM audit_log")).scalar()
    out = HistoryResult(day, day)
    world.carry_out(sim, day, [Action(Act.DRAW, uscc, line_id, states[line_id].available_fen + 100_000),  # over the limit: refused
                               Action(Act.DRAW, uscc, line_id, 100_000)], out)
    assert out.refused == {"draw: amount_fen": 1} and out.draws == 1 and out.drawn_fen == 100_000
    after = _journal_totals(rt)
    new = [p for p in after["postings"] if p not in before["postings"]]
    assert {p[0] for p in new} == {"draw"} and sum(p[3] for p in new if p[3] > 0) == 100_000  # only the second draw was written
    with rt.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM audit_log")).scalar() == notes + 1  # and only it is on the audit trail
    assert ledger_check(rt).ok
