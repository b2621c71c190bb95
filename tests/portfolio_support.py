"""Every figure of the portfolio report recomputed independently — by raw SQL over the journal's postings, the lines,
the decisions and the classification changes, never through the report's code — and compared to the fen. Shared by
the portfolio tests, the simulated-history tests and the 10,000-line reconciliation."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import text

from sandu.analytics import actions

RATIO = Decimal("0.0001")
CLASSES = ("normal", "special_mention", "substandard", "doubtful", "loss")  # 正常、关注、次级、可疑、损失
NPL = ("substandard", "doubtful", "loss")
OVERDUE = ("overdue_principal", "overdue_interest", "penalty", "compound")


def _ratio(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / whole).quantize(RATIO, rounding=ROUND_HALF_EVEN)


def journal(rt, as_of: date) -> dict[int, dict[str, int]]:
    """Receivables per line and bucket through `as_of`, straight from the postings."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (line_id, _), buckets in drawing_journal(rt, as_of).items():
        for bucket, fen in buckets.items():
            out[line_id][bucket] += fen
    return out


def drawing_journal(rt, as_of: date) -> dict[tuple[int, int], dict[str, int]]:
    """Receivables per (line, drawing) and bucket through `as_of`, straight from the postings."""
    out: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT p.account, SUM(p.amount_fen) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
                                 "WHERE e.effective_date <= :d AND p.account LIKE 'loan:%' GROUP BY p.account"), {"d": as_of}).all()
    for account, amount in rows:
        _, owner, bucket = account.split(":")
        line_id, drawing_id = (int(x) for x in owner.split("-"))
        out[(line_id, drawing_id)][bucket] += int(amount)
    return out


def _lines(rt) -> dict[int, dict]:
    """Every line with what a report groups it by, from the tables (the decision's JSON parsed here)."""
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT l.id, l.enterprise_id, l.limit_fen, l.opened_on, l.product, l.inclusive_small_micro, e.branch, e.industry, "
                                 "d.result FROM credit_lines l JOIN enterprises e ON e.id = l.enterprise_id JOIN offers o ON o.id = l.offer_id "
                                 "JOIN decisions d ON d.id = o.decision_id")).all()
    out = {}
    for r in rows:
        result = r.result if isinstance(r.result, dict) else json.loads(r.result)
        tech = result["scores"]["tech"]
        out[r.id] = {"enterprise": r.enterprise_id, "limit": int(r.limit_fen), "opened": _day(r.opened_on), "product": r.product,
                     "branch": r.branch, "industry": r.industry or "未知", "tech_grade": result.get("tech_grade") or "?",
                     "risk_grade": result.get("risk_grade") or "?", "inclusive": bool(r.inclusive_small_micro),
                     "tech": bool(tech.get("most_pass")) or bool((tech.get("innovative") or {}).get("passed"))}
    return out


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _classes(rt, as_of: date) -> dict[int, str]:
    """Each drawing's 五级分类 on `as_of`: its last change on or before the day."""
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT c.drawing_id, c.to_class FROM classification_changes c WHERE c.id = (SELECT MAX(c2.id) FROM "
                                 "classification_changes c2 WHERE c2.drawing_id = c.drawing_id AND c2.on_date <= :d)"), {"d": as_of}).all()
    return {int(d): cls for d, cls in rows}


def year_before(day: date) -> date:
    return day.replace(year=day.year - 1) if not (day.month == 2 and day.day == 29) else date(day.year - 1, 2, 28)


def month_ends(first: date, last: date) -> list[date]:
    out, cursor = [], date(first.year, first.month, 1)
    while (cursor.year, cursor.month) < (last.year, last.month):
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        out.append(cursor - timedelta(days=1))
    return [*out, last]


def _drawn_and_overdue(rt, day: date) -> tuple[dict[int, int], dict[int, int]]:
    with rt.engine.connect() as conn:
        drawn = dict(conn.execute(text("SELECT p.account, SUM(p.amount_fen) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
                                       "WHERE e.kind = 'draw' AND e.effective_date <= :d AND p.account LIKE :accounts GROUP BY p.account"),
                                  {"d": day, "accounts": "loan:%:principal"}).all())
    by_line: dict[int, int] = defaultdict(int)
    for account, fen in drawn.items():
        by_line[int(account.split(":")[1].split("-")[0])] += int(fen)
    overdue = {ln: sum(b[k] for k in OVERDUE) for ln, b in journal(rt, day).items()}
    return by_line, overdue


def reconcile(rt, as_of: date, *, vintages: bool = True) -> None:
    """Assert that every figure of the bank's portfolio report as of `as_of` equals its independent recomputation."""
    p = actions.portfolio_report(rt, None, as_of=as_of)
    lines = {i: ln for i, ln in _lines(rt).items() if ln["opened"] <= as_of}
    per_drawing = drawing_journal(rt, as_of)
    by_line: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (line_id, _), b in per_drawing.items():
        for bucket, fen in b.items():
            by_line[line_id][bucket] += fen
    assert set(by_line) <= set(lines), "postings only on lines opened by then"
    principal = {i: by_line[i]["principal"] + by_line[i]["overdue_principal"] for i in lines}
    receivable = {i: sum(by_line[i].values()) for i in lines}
    assert (p.lines, p.limit_fen) == (len(lines), sum(ln["limit"] for ln in lines.values()))
    assert (p.principal_fen, p.receivable_fen) == (sum(principal.values()), sum(receivable.values()))
    assert p.overdue_fen == sum(b[k] for b in by_line.values() for k in OVERDUE)
    for dim in ("product", "branch", "industry", "tech_grade", "risk_grade"):
        want: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for i, ln in lines.items():
            row = want[str(ln[dim])]
            row[0] += 1
            row[1] += ln["limit"]
            row[2] += principal[i]
            row[3] += receivable[i]
        assert {r.key: [r.lines, r.limit_fen, r.principal_fen, r.receivable_fen] for r in p.by[dim]} == dict(want), dim
    classes = _classes(rt, as_of)
    class_principal = dict.fromkeys(CLASSES, 0)
    for (_, drawing_id), b in per_drawing.items():
        class_principal[classes.get(drawing_id, "normal")] += b["principal"] + b["overdue_principal"]
    assert p.class_principal_fen == class_principal
    assert p.npl_ratio == _ratio(sum(class_principal[c] for c in NPL), p.principal_fen)
    tech = sum(principal[i] for i, ln in lines.items() if ln["tech"])
    assert (p.tech_principal_fen, p.tech_share) == (tech, _ratio(tech, p.principal_fen))
    then = year_before(as_of)
    old = journal(rt, then)
    tech_then = sum(old[i]["principal"] + old[i]["overdue_principal"] for i, ln in lines.items() if ln["tech"] and ln["opened"] <= then and i in old)
    assert p.tech_principal_year_ago_fen == tech_then
    assert p.tech_growth == (None if tech_then == 0 else ((Decimal(tech) - tech_then) / tech_then).quantize(RATIO, rounding=ROUND_HALF_EVEN))
    branches = {ln["branch"] for ln in lines.values()}
    assert p.tech_share_by_branch == {b: _ratio(sum(principal[i] for i, ln in lines.items() if ln["branch"] == b and ln["tech"]),
                                                sum(principal[i] for i, ln in lines.items() if ln["branch"] == b)) for b in sorted(branches)}
    inclusive = [i for i, ln in lines.items() if ln["inclusive"] and principal[i] > 0]
    assert p.inclusive_principal_fen == sum(principal[i] for i in inclusive)
    assert p.inclusive_borrowers == len({lines[i]["enterprise"] for i in inclusive})
    with rt.engine.connect() as conn:
        outcomes = dict(conn.execute(text("SELECT outcome, COUNT(*) FROM decisions WHERE as_of <= :d AND as_of > :since GROUP BY outcome"),
                                     {"d": as_of, "since": as_of - timedelta(days=30)}).all())
    assert p.decisions == {o: int(outcomes.get(o, 0)) for o in ("approve", "partial", "refer", "decline")}
    if vintages:
        _reconcile_vintages(rt, p, lines, as_of)


def _reconcile_vintages(rt, p, lines: dict[int, dict], as_of: date) -> None:
    cohorts: dict[str, list[int]] = defaultdict(list)
    for i, ln in lines.items():
        cohorts[ln["opened"].strftime("%Y-%m")].append(i)
    assert sorted(p.vintages) == sorted(cohorts)
    sums: dict[date, tuple[dict[int, int], dict[int, int]]] = {}
    for cohort, ids in cohorts.items():
        ends = month_ends(date(int(cohort[:4]), int(cohort[5:]), 1), as_of)[:25]
        want = []
        for k, day in enumerate(ends):
            if day not in sums:
                sums[day] = _drawn_and_overdue(rt, day)
            drawn = sum(sums[day][0].get(i, 0) for i in ids)
            overdue = sum(sums[day][1].get(i, 0) for i in ids)
            want.append({"month_end": day.isoformat(), "months_on_book": k, "drawn_fen": drawn, "overdue_fen": overdue,
                         "overdue_rate": None if drawn == 0 else str(_ratio(overdue, drawn))})
        assert p.vintages[cohort] == want, cohort
