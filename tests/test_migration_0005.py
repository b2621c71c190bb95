"""Migration 0005 carries a store's lines over to drawings: each line's principal is split across its drawings
(oldest repaid first), the interest posted and unpaid and the interest accrued and not posted go to its oldest open
drawing, one balanced `migrate` entry moves the balances to the drawings' accounts — and the store then services on."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor

from conftest import AS_OF, FIXED_NOW, PII_KEY, SEED, TEST_PASSWORD, TEST_SETTINGS, Clock
from servicing_support import D0, S2, SERVICE_NOW, check_ledger, eod, repay
from sqlalchemy import select, text

from sandu.demo.seed import seed_universe
from sandu.demo.users import demo_specs
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.origination import service as orig
from sandu.policy.bundle import load_bundle
from sandu.runtime import Runtime
from sandu.scoring.risk import load_model
from sandu.security import actions as security
from sandu.servicing import service as svc
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m
from sandu.store.db import make_engine
from sandu.store.migrate import current_revision, downgrade, head_revision, upgrade


def _old_line(conn, line_id_row: dict) -> None:
    conn.execute(text(
        "INSERT INTO credit_lines (id, enterprise_id, offer_id, product, limit_fen, drawn_principal_fen, rate_annual, basis_days, repayment_method, "
        "revolving, settlement_frequency, max_drawing_months, opened_on, expires_on, status, accrued_through, signed_by) VALUES "
        "(:id, :e, :o, 'jingying_kuaidai', :limit, :drawn, '0.0380', 360, '随借随还', :t, 'monthly', 12, :opened, :expires, 'active', :through, NULL)"),
        line_id_row)


def _entry(conn, key: str, kind: str, line_id: int, day: date, postings: list[tuple[str, int]]) -> int:
    entry = conn.execute(text("INSERT INTO journal_entries (idempotency_key, request_sha256, kind, line_id, effective_date, memo, created_at) "
                              "VALUES (:k, :h, :kind, :l, :d, '', :t) RETURNING id"),
                         {"k": key, "h": "0" * 64, "kind": kind, "l": line_id, "d": day, "t": FIXED_NOW}).scalar_one()
    for account, amount in postings:
        conn.execute(text("INSERT INTO postings (entry_id, account, amount_fen) VALUES (:e, :a, :x)"), {"e": entry, "a": account, "x": amount})
    return entry


def test_a_store_with_lines_upgrades_to_drawings_services_on_and_goes_back(empty_db_url):
    engine = make_engine(empty_db_url, TEST_SETTINGS)
    upgrade(engine)  # today's services write the enterprise, its consent and a decision; then back to 0004 for the old lines
    rt = Runtime(engine=engine, bundle=load_bundle(), model=load_model(), settings=TEST_SETTINGS, clock=lambda: FIXED_NOW)
    seed_universe(rt.uow, 40, SEED, AS_OF)
    for spec in demo_specs():
        if spec.username == "rep-s2":
            security.create_user(rt, None, username=spec.username, password=TEST_PASSWORD, role=spec.role, branch=spec.branch,
                                 authority_fen=spec.authority_fen, resident_id=spec.resident_id)
    rep = security.actor_by_username(rt, "rep-s2")
    with rt.uow.write() as s:
        orig.register_enterprise(s, uscc=S2["uscc"], name=S2["name"], registrant=rep, pii_key=PII_KEY, now=FIXED_NOW)
        c = orig.grant_consent(s, uscc=S2["uscc"], scopes=list(ALL_SOURCES), bureau_authorization=True, purpose="credit_measurement", signer=rep, valid_days=30, now=FIXED_NOW)
        d = orig.measure(s, uscc=S2["uscc"], consent_id=c.id, as_of=D0, now=FIXED_NOW, bundle=rt.bundle, model=rt.model, tech=rt.tech)
        offer_id, ent_id = s.scalar(select(m.Offer.id).where(m.Offer.decision_id == d.id)), d.enterprise_id
        decision_id, terms = d.id, {o["product"]: o for o in d.result["offers"]}
    assert downgrade(engine, "0004") == "0004"
    # the old shape: a line with two drawings (300万 on 11-29, 100万 on 12-01), 50万 repaid, interest posted on 12-20 and
    # unpaid, and accruals of 12-21 .. 12-25 not yet posted
    a, b, repaid, posted = 300 * WAN, 100 * WAN, 50 * WAN, 123_456
    with engine.begin() as conn:
        _old_line(conn, {"id": 1, "e": ent_id, "o": offer_id, "limit": 416 * WAN, "drawn": a + b - repaid, "t": True, "opened": D0,
                         "expires": date(2027, 11, 29), "through": date(2026, 12, 25)})
        for n, (amount, day) in enumerate(((a, D0), (b, date(2026, 12, 1))), start=1):
            entry = _entry(conn, f"c:1:d{n}", "draw", 1, day, [("loan:1:principal", amount), ("clearing:disbursement", -amount)])
            conn.execute(text("INSERT INTO drawings (id, line_id, entry_id, amount_fen, drawn_on, maturity_on, drawn_at, drawn_by) "
                              "VALUES (:id, 1, :e, :x, :d, :m, :t, NULL)"), {"id": n, "e": entry, "x": amount, "d": day, "m": date(2027, 11, 29), "t": FIXED_NOW})
        _entry(conn, "c:1:r1", "repayment", 1, date(2026, 12, 5), [("clearing:repayment", repaid), ("loan:1:principal", -repaid)])
        _entry(conn, "sys:settle:1:2026-12-20", "interest", 1, date(2026, 12, 20), [("loan:1:interest", posted), ("income:interest", -posted)])
        for k in range(5):
            conn.execute(text("INSERT INTO interest_accruals (line_id, day, closing_principal_fen, rate_annual, basis_days, interest_exact, posted_entry_id) "
                              "VALUES (1, :d, :p, '0.0380', 360, '1', NULL)"), {"d": date(2026, 12, 21) + timedelta(days=k), "p": a + b - repaid})
    # through 0005, and on to the schema today's services write (0008 backfills the line's application: active, drawn on)
    assert upgrade(engine, pii_key=PII_KEY) == head_revision(engine) == current_revision(engine)
    rt = rt.with_clock(Clock(SERVICE_NOW))
    with rt.uow.read() as s:
        app = s.scalar(select(m.Application).where(m.Application.enterprise_id == ent_id))
        line = s.get(m.CreditLine, 1)
        assert (app.state, app.decision_id) == ("active", decision_id) and line.application_id == app.id
        assert line.annualized_rate == Decimal(terms[s.get(m.Offer, offer_id).product]["annualized_rate"]) and line.inclusive_small_micro is not None
    with rt.uow.read() as s:
        first, second = s.get(m.Drawing, 1), s.get(m.Drawing, 2)
        # the oldest drawing was repaid first; the interest and the accrued fen-days went to it
        assert (first.principal_fen, first.interest_fen, first.interest_fen_days, first.status) == (a - repaid, posted, 5 * (a + b - repaid), "open")
        assert (second.principal_fen, second.interest_fen, second.status) == (b, 0, "open")
        assert (first.rate_annual, first.penalty_rate_annual, first.repayment_method) == (Decimal("0.0380"), Decimal("0.057"), "随借随还")
        line = s.get(m.CreditLine, 1)
        assert (line.accrued_through, line.penalty_uplift, line.grace_days, line.risk_class) == (date(2026, 12, 25), Decimal("0.50"), 0, "normal")
        assert s.scalar(select(m.BusinessCalendar.store_kind)) == "production"
    check_ledger(rt)
    # and it services on: the posted interest is due, then principal; end of day settles the accrued interest on 01-20
    res = repay(rt, 1, posted + WAN, date(2026, 12, 26))
    assert res.allocations == {"interest": posted, "principal": WAN} and res.by_drawing == {1: {"interest": posted, "principal": WAN}}
    eod(rt, date(2027, 1, 25))
    with rt.uow.read() as s:
        assert s.get(m.Drawing, 1).overdue_interest_fen > 0 and s.get(m.Drawing, 2).overdue_interest_fen > 0  # 01-20's, unpaid
        assert svc.ledger_check(s).ok
        drawings = [s.get(m.Drawing, i) for i in (1, 2)]
        principal = sum(d.principal_fen + d.overdue_principal_fen for d in drawings)
        owed = sum(d.interest_fen + d.overdue_interest_fen + d.penalty_fen + d.compound_fen for d in drawings)
        accrued = sum(round_half_up(Fraction(d.interest_fen_days) * Fraction(d.rate_annual) / d.basis_days)
                      + round_half_up(Fraction(d.penalty_fen_days) * Fraction(d.penalty_rate_annual) / d.basis_days)
                      + round_half_up(Fraction(d.compound_fen_days) * Fraction(d.penalty_rate_annual) / d.basis_days) for d in drawings)
        assert accrued > 0 and any(d.compound_fen_days for d in drawings)  # 01-21..01-25 accrued, overdue interest compounding
    # back to 0004: the line's two accounts hold what the drawings held, the accruals charged; every entry balances
    assert downgrade(engine, "0004") == "0004" == current_revision(engine)
    with engine.connect() as conn:
        tables = set(conn.dialect.get_table_names(conn))
        assert "interest_accruals" in tables and not tables & {"dues", "instalments", "business_calendar", "eod_runs", "classification_changes"}
        balance = dict(conn.execute(text("SELECT account, SUM(amount_fen) FROM postings WHERE account LIKE 'loan:%' GROUP BY account")).all())
        assert {a: int(x) for a, x in balance.items() if x} == {"loan:1:principal": principal, "loan:1:interest": owed + accrued}
        assert conn.execute(text("SELECT drawn_principal_fen FROM credit_lines WHERE id = 1")).scalar_one() == principal
        assert conn.execute(text("SELECT COUNT(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id HAVING SUM(amount_fen) <> 0) x")).scalar_one() == 0
        columns = {c["name"] for c in conn.dialect.get_columns(conn, "drawings")}
        assert columns == {"id", "line_id", "entry_id", "amount_fen", "drawn_on", "maturity_on", "drawn_at", "drawn_by"}
    # and up again: carried over once more, the ledger proven
    assert upgrade(engine, pii_key=PII_KEY) == head_revision(engine)
    with rt.uow.read() as s:
        assert svc.ledger_check(s).ok
        drawings = [s.get(m.Drawing, i) for i in (1, 2)]
        assert sum(d.principal_fen for d in drawings) == principal and sum(d.interest_fen for d in drawings) == owed + accrued
    engine.dispose()


def round_half_up(x: Fraction) -> int:
    return floor(x + Fraction(1, 2))
