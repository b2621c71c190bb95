"""The policy's two forms are one engine: the table form (polars) gives, row for row, what the
scalar form gives one application at a time — on 100,000 random applications drawn around every
boundary of the bundle, and on hypothesis' edge cases (band boundaries, missing features, zero
collateral). Bad tables are refused with the column named, before anything is evaluated."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandu.domain.errors import InvalidInput, PolicyOutdated
from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.domain.project import Project
from sandu.policy import vector
from sandu.policy.bundle import load_bundle
from sandu.policy.kernel import Application, Decision, PricedOffer, Scores, decide, read_features
from sandu.policy.rules import BP
from sandu.sources.profile import MAX_COLLATERAL_ASSETS, Collateral

BUNDLE = load_bundle()
AS_OF = date(2026, 11, 1)
SOURCES = ("tax", "credit_bureau", "invoices", "social_insurance", "ip", "utilities")
CERTS = ("专精特新", "小巨人", "高新技术企业")
KINDS = (*BUNDLE.secured.ltv, "equipment")  # equipment: a kind the LTV table does not know
SAMPLE = 100_000


def _near(rng: random.Random, points: list[int], spread: int) -> int:
    return max(0, rng.choice(points) + rng.randint(-spread, spread))


def random_application(rng: random.Random) -> tuple[dict[str, Any], tuple[Collateral, ...], Scores, Application]:
    """An application drawn around the bundle's boundaries: tax at the minimum and where the quick
    measure meets its cap, revenue where the tech measure does, the size thresholds, overdue limits,
    PDs at each grade's edge; features missing, sources silent, zero or pledged collateral, projects."""
    b, c = BUNDLE, BUNDLE.credit
    tax_points = [b.eligibility.min_annual_tax_fen, *(int(c.quick_max_fen / m) for m in c.quick_tax_multiplier.values()), 40 * WAN]
    revenue_points = [b.inclusive.medium_min_revenue_fen, int(c.tech_max_fen / c.tech_revenue_ratio), 5_000 * WAN, 0]

    def maybe(value: Any, p_none: float = 0.05) -> Any:
        return None if rng.random() < p_none else value

    flags = [f"{s}:not_read" for s in SOURCES if rng.random() < 0.03] + [f"{s}:unavailable" for s in SOURCES if rng.random() < 0.04]
    features = {
        "revenue_fen": maybe(rng.choice([_near(rng, revenue_points, 3), rng.randint(0, 60_000 * WAN)])),
        "tax_total_fen": maybe(rng.choice([_near(rng, tax_points, 2), rng.randint(0, 200 * WAN)])),
        "tax_credit_grade": maybe(rng.choice(["A", "B", "M", "C", "D"]), 0.1),
        "overdue_count_24m": maybe(rng.choice([0, 0, 0, 1, 2, 3, 4])),
        "max_overdue_days_24m": maybe(rng.choice([0, 0, 29, 30, 31, 90])),
        "headcount": maybe(rng.choice([_near(rng, [b.inclusive.medium_min_headcount], 1), rng.randint(0, 2_000)]), 0.2),
        "loans_outstanding_fen": maybe(rng.choice([0, 0, rng.randint(0, 5_000 * WAN)]), 0.2),
        "secured_debt_fen": maybe(rng.choice([0, rng.randint(0, 2_000 * WAN)]), 0.2),
        "certifications": [x for x in CERTS if rng.random() < 0.15],
        "_quality_flags": flags,
    }
    collateral = tuple(
        Collateral(f"C{k}", rng.choice(KINDS), rng.choice([0, rng.randint(0, 3_000 * WAN), 1_000 * WAN]),
                   rng.choice([0, 0, rng.randint(0, 1_500 * WAN), 700 * WAN]))
        for k in range(rng.choice([0, 0, 0, 1, 1, 2, 3]))
    )
    edges = [g.max_pd for g in b.risk_grades[:-1]]
    pd = rng.choice([rng.choice(edges), rng.choice(edges) + Decimal("0.000001"), Decimal(rng.randint(0, 300_000)) / 1_000_000, Decimal(1)])
    scores = Scores(rng.choice([g.grade for g in b.tech_grades]), rng.random() < 0.7, pd)
    project = None
    if rng.random() < 0.3:
        capex = rng.choice([rng.randint(1, 20_000) * WAN, rng.randint(1, 10**12)])
        project = Project(name="p", capex_fen=capex, annual_cash_flow_fen=rng.choice([1, rng.randint(1, 5_000 * WAN)]),
                          tenor_years=rng.choice([1, 5, 6, 7, b.project.max_tenor_years, b.project.max_tenor_years + 1]))
    guarantee = rng.choice([None, None, None, 0, rng.randint(1, 1_000 * WAN), 800 * WAN, 800 * WAN + 1])
    return features, collateral, scores, Application(rng.random() < 0.6, None, project, guarantee)


def _offer(o: PricedOffer | None) -> dict[str, Any]:
    if o is None:
        return {"product": None, "limit_fen": 0, "approved_fen": 0, "rate_bp": None, "annualized_rate": None, "lpr_tenor": None}
    return {"product": o.product.code, "limit_fen": o.limit_fen, "approved_fen": o.approved_fen, "rate_bp": int(o.price.rate_annual / BP),
            "annualized_rate": str(o.price.annualized_rate), "lpr_tenor": o.price.lpr_tenor}


def expected(d: Decision) -> dict[str, Any]:
    """The table form's row for a scalar decision: every number it returns, and each check of a step that ran."""
    g, ce, cr, p = d.general, d.credit_eligibility, d.credit, d.project
    row = {
        "outcome": d.outcome.value, "risk_grade": g.risk_grade, "tech_grade": g.tech_grade, "comprehensive_limit_fen": d.comprehensive_limit_fen,
        "approved_fen": d.approved_fen, "inclusive_small_micro": d.inclusive.flagged, "small_micro": d.inclusive.small_micro,
        "eligible": g.eligible, "data_missing": g.data_missing, "required_gap": bool(g.required_gaps), "risk_declined": g.risk_declined,
        "overdue_count_exceeded": g.overdue_count_exceeded, "overdue_days_exceeded": g.overdue_days_exceeded,
        "credit_eligible": cr is not None, "tech_line": cr is not None and cr.tech_line, "fast_track": cr is not None and cr.fast_track,
        "tenor_refused": p is not None and p.tenor_refused,
    }
    if ce is not None:
        row |= {"tax_below_min": ce.tax_below_min, "tax_grade_refused": ce.tax_grade_refused}
    for slot, o in (("secured", d.secured_offer), ("credit", d.credit_offer), ("guaranteed", d.guaranteed_offer), ("project", d.project_offer)):
        row |= {f"{slot}_{k}": v for k, v in _offer(o).items()}
    return row


def compare(apps: list[tuple[dict[str, Any], tuple[Collateral, ...], Scores, Application]]) -> int:
    """Evaluate `apps` in both forms; assert every row equal; the number of rows compared."""
    typed = [(read_features(f), c, s, a) for f, c, s, a in apps]
    table = vector.evaluate_frame(BUNDLE, vector.frame_of([vector.row_of(*t) for t in typed]), AS_OF)
    assert table.height == len(apps) and table["row"].to_list() == list(range(len(apps)))
    for k, (t, row) in enumerate(zip(typed, table.iter_rows(named=True), strict=True)):
        want = expected(decide(BUNDLE, *t, AS_OF))
        got = {key: row[key] for key in want}
        assert got == want, f"row {k}: {t}\nscalar {want}\ntable  {got}"
    return len(apps)


def test_the_table_form_equals_the_scalar_form_on_100000_random_applications():
    rng = random.Random(20261130)
    apps = [random_application(rng) for _ in range(SAMPLE)]
    assert compare(apps) == SAMPLE
    outcomes = {a[3].project is not None for a in apps}
    assert outcomes == {True, False}


def test_the_sample_reaches_every_outcome_product_and_refusal():
    """The random applications exercise every branch the equality test claims to cover."""
    rng = random.Random(7)
    apps = [random_application(rng) for _ in range(5_000)]
    table = vector.evaluate_frame(BUNDLE, vector.frame_of([vector.row_of(read_features(f), c, s, a) for f, c, s, a in apps]), AS_OF)
    assert set(table["outcome"]) == {"approve", "partial", "refer", "decline"}
    wanted = {"secured": {"diya_xinyong", "wangdaitong"}, "credit": {"jingying_kuaidai", "keji_xinyong"}, "guaranteed": {"danbao_kuaidai"},
              "project": {"project_loan"}}
    for slot, products in wanted.items():
        assert set(table[f"{slot}_product"].drop_nulls()) >= products, slot
    for flag in ("data_missing", "required_gap", "risk_declined", "overdue_count_exceeded", "overdue_days_exceeded", "tax_below_min",
                 "tax_grade_refused", "tech_line", "fast_track", "tenor_refused", "inclusive_small_micro"):
        assert table[flag].any() and not table[flag].all(), flag
    assert set(table["project_lpr_tenor"].drop_nulls()) == {"one_year", "over_five_year"}


# -- hypothesis: the edges ----------------------------------------------------------------------------


def _edge(values: list[int]) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted({max(0, v + d) for v in values for d in (-1, 0, 1)}))


_b, _c = BUNDLE, BUNDLE.credit
_unit = _c.round_down_fen
tax_edges = _edge([_b.eligibility.min_annual_tax_fen, *(int(_c.quick_max_fen / m) for m in _c.quick_tax_multiplier.values()),
                   *(k * _unit for k in range(3, 6))])
revenue_edges = _edge([0, _b.inclusive.medium_min_revenue_fen, int(_c.tech_max_fen / _c.tech_revenue_ratio), 100 * _unit])
pd_edges = st.sampled_from(sorted({g.max_pd + d for g in _b.risk_grades for d in (Decimal("-0.000001"), Decimal(0), Decimal("0.000001"))
                                   if Decimal(0) <= g.max_pd + d <= 1}))
assets = st.lists(st.builds(Collateral, st.just("C"), st.sampled_from(KINDS), st.sampled_from([0, 1, 99, 100, 1_000 * WAN, 10**12]),
                            st.sampled_from([0, 1, 700 * WAN, 10**12])), max_size=MAX_COLLATERAL_ASSETS).map(tuple)
projects = st.none() | st.builds(Project, name=st.just("p"), capex_fen=st.sampled_from([1, _unit, 10**10, 10**14]),
                                 annual_cash_flow_fen=st.sampled_from([1, 2, 10**9, 10**12]),
                                 tenor_years=_edge([1, _b.project.max_tenor_years]).filter(lambda t: t >= 1))
features = st.fixed_dictionaries({
    "revenue_fen": st.none() | revenue_edges,
    "tax_total_fen": st.none() | tax_edges,
    "tax_credit_grade": st.none() | st.sampled_from(["A", "B", "M", "C", "D"]),
    "overdue_count_24m": st.none() | _edge([_b.eligibility.max_overdue_count_24m]),
    "max_overdue_days_24m": st.none() | _edge([_b.eligibility.max_overdue_days_24m]),
    "headcount": st.none() | _edge([_b.inclusive.medium_min_headcount]),
    "loans_outstanding_fen": st.none() | st.sampled_from([0, 1, 10**10]),
    "secured_debt_fen": st.none() | st.sampled_from([0, 1, 10**9]),
    "certifications": st.lists(st.sampled_from(CERTS), unique=True),
    "_quality_flags": st.lists(st.sampled_from([f"{s}:{k}" for s in SOURCES for k in ("not_read", "unavailable")]), unique=True, max_size=3),
})
applications = st.tuples(features, assets, st.builds(Scores, st.sampled_from([g.grade for g in _b.tech_grades]), st.booleans(), pd_edges),
                         st.builds(Application, st.booleans(), st.none(), projects,
                                   st.none() | st.sampled_from([0, 1, 799_999, 800_000, 800 * WAN, 800 * WAN + 1, 10**12])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(applications, min_size=1, max_size=40))
def test_the_two_forms_agree_on_the_edges(batch):
    assert compare(batch) == len(batch)


def test_an_empty_table_gives_an_empty_result():
    assert vector.evaluate_frame(BUNDLE, vector.frame_of([]), AS_OF).height == 0


# -- bad tables ---------------------------------------------------------------------------------------


def _good(n: int = 3) -> pl.DataFrame:
    rng = random.Random(1)
    return vector.frame_of([vector.row_of(read_features(f), c, s, a) for f, c, s, a in (random_application(rng) for _ in range(n))])


@pytest.mark.parametrize(("change", "column", "words"), [
    (lambda f: f.drop("tax_total_fen"), "tax_total_fen", "column missing"),
    (lambda f: f.with_columns(pl.lit("many").alias("revenue_fen")), "revenue_fen", "cannot be read"),
    (lambda f: f.with_columns(pl.lit(None, dtype=pl.String).alias("tech_grade")), "tech_grade", "null where a value is required"),
    (lambda f: f.with_columns(pl.lit("Z").alias("tech_grade")), "tech_grade", "not a grade"),
    (lambda f: f.with_columns(pl.lit(-1).alias("headcount")), "headcount", "negative"),
    (lambda f: f.with_columns(pl.lit(Decimal("1.000001")).alias("risk_pd")), "risk_pd", "outside 0..1"),
    (lambda f: f.with_columns(pl.lit(Decimal("-0.1")).alias("risk_pd")), "risk_pd", "outside 0..1"),
    (lambda f: f.with_columns(pl.lit(None, dtype=pl.Boolean).alias("has_bank_account")), "has_bank_account", "null"),
    (lambda f: f.with_columns(pl.lit(5).alias("project_tenor_years"), pl.lit(None, dtype=pl.Int64).alias("project_capex_fen")),
     "project_capex_fen", "together"),
    (lambda f: f.with_columns(pl.lit(0).alias("project_tenor_years"), pl.lit(1).alias("project_capex_fen"),
                              pl.lit(1).alias("project_annual_cash_flow_fen")), "project_tenor_years", "at least one year"),
    (lambda f: f.with_columns(pl.lit(5).alias("project_tenor_years"), pl.lit(0).alias("project_capex_fen"),
                              pl.lit(1).alias("project_annual_cash_flow_fen")), "project_capex_fen", "at least 1 fen"),
    (lambda f: f.with_columns(pl.lit([{"kind": "residential", "appraised_value_fen": -1, "secured_debt_fen": 0}],
                                     dtype=pl.List(vector.ASSET)).alias("collateral")), "collateral", "negative"),
    (lambda f: f.with_columns(pl.lit([{"kind": "residential", "appraised_value_fen": 1, "secured_debt_fen": 0}] * (MAX_COLLATERAL_ASSETS + 1),
                                     dtype=pl.List(vector.ASSET)).alias("collateral")), "collateral", f"more than {MAX_COLLATERAL_ASSETS}"),
])
def test_a_bad_table_is_refused_naming_the_column(change, column, words):
    with pytest.raises(InvalidInput) as e:
        vector.evaluate_frame(BUNDLE, change(_good()), AS_OF)
    assert e.value.field == column and words in str(e.value)


def test_the_limits_of_a_good_table_are_just_inside():
    """The boundaries the refusals above sit on: the largest allowed values pass."""
    rng = random.Random(3)
    f, c, s, a = random_application(rng)
    edge = vector.row_of(read_features(f), tuple(Collateral("C", "residential", 0, 0) for _ in range(MAX_COLLATERAL_ASSETS)),
                         replace(s, risk_pd=Decimal(1)), Application(True, None, Project(name="p", capex_fen=1, annual_cash_flow_fen=1, tenor_years=1)))
    edge |= {"headcount": 0, "revenue_fen": 0}
    zero = vector.row_of(read_features(f), (), replace(s, risk_pd=Decimal(0)), a)
    assert vector.evaluate_frame(BUNDLE, vector.frame_of([edge, zero]), AS_OF).height == 2


# -- each application on its own day --------------------------------------------------------------------


def test_each_row_is_decided_on_its_own_day_as_the_scalar_form_decides_it():
    """Days on both sides of an LPR fixing (2025-05-20) and across months: LPR and 年化利率 follow each row's day."""
    rng = random.Random(11)
    apps = [random_application(rng) for _ in range(3_000)]
    days = [date(2025, 5, 19), date(2025, 5, 20), date(2026, 2, 28), date(2026, 11, 30), BUNDLE.pricing.lpr_valid_through]
    typed = [(read_features(f), c, s, a) for f, c, s, a in apps]
    table = vector.frame_of([vector.row_of(*t) for t in typed]).with_columns(pl.Series("as_of", [days[k % len(days)] for k in range(len(apps))]))
    got = vector.evaluate_frame(BUNDLE, table)
    for k, (t, row) in enumerate(zip(typed, got.iter_rows(named=True), strict=True)):
        want = expected(decide(BUNDLE, *t, days[k % len(days)]))
        assert {key: row[key] for key in want} == want, f"row {k} on {days[k % len(days)]}"
    priced = next(k for k, row in enumerate(got.iter_rows(named=True)) if row["credit_rate_bp"] is not None)
    same = table[priced].with_columns(pl.lit(date(2025, 5, 19)).alias("as_of")).vstack(table[priced].with_columns(pl.lit(date(2025, 5, 20)).alias("as_of")))
    before, after = vector.evaluate_frame(BUNDLE, same)["credit_rate_bp"].to_list()
    assert before - after == 10  # the 1-year LPR went from 3.10 % to 3.00 % on 2025-05-20


@pytest.mark.parametrize(("day", "error", "words"), [
    (date(2024, 10, 20), InvalidInput, "no LPR published on or before 2024-10-20"),
    (date(2027, 7, 1), PolicyOutdated, "valid through 2027-06-30"),
])
def test_a_day_the_lpr_table_does_not_cover_is_refused_like_the_scalar_form(day, error, words):
    table = _good(4).with_columns(pl.Series("as_of", [date(2026, 1, 5)] * 3 + [day]))
    with pytest.raises(error) as e:
        vector.evaluate_frame(BUNDLE, table)
    assert e.value.field == "as_of" and words in str(e.value)
    assert vector.evaluate_frame(BUNDLE, table.head(3)).height == 3  # the other days are fine


def test_the_day_column_is_required_and_typed_when_no_day_is_given():
    with pytest.raises(InvalidInput, match="column missing"):
        vector.evaluate_frame(BUNDLE, _good(2))
    with pytest.raises(InvalidInput, match="cannot be read as a date"):
        vector.evaluate_frame(BUNDLE, _good(2).with_columns(pl.lit("2026-01-05").alias("as_of")))
    with pytest.raises(InvalidInput, match="null where a value is required"):
        vector.evaluate_frame(BUNDLE, _good(2).with_columns(pl.lit(None, dtype=pl.Date).alias("as_of")))


def test_values_that_do_not_read_each_other_share_a_node_of_the_plan():
    """`FrameOps.keep`: each value goes to the first node after the nodes of the values it reads (a value reading a
    value of a later node would be computed before it: polars refuses the column), and the plan computes each as kept;
    a value is kept once; once the plan is read, what it holds reads as the input does."""
    from sandu.policy.ops import FrameOps

    x = FrameOps(pl.DataFrame({"a": [1, 2, 3]}))
    b = x.keep("b", pl.col("a") + 1)
    c = x.keep("c", pl.col("a") * 10)  # reads only the input: beside b
    d = x.keep("d", b + c)  # reads b and c: the next node
    e = x.keep("e", pl.col("a") - 1)  # the first node again
    f = x.keep("f", d + e)
    x.keep("g", c * 2)
    assert [sorted(node) for node in x._nodes] == [["v.b", "v.c", "v.e"], ["v.d", "v.g"], ["v.f"]]
    with pytest.raises(AssertionError, match="kept once"):
        x.keep("d", pl.col("a"))
    got = x.plan.collect()
    assert got["v.d"].to_list() == [12, 23, 34] and got["v.f"].to_list() == [12, 24, 36] and got["v.g"].to_list() == [20, 40, 60]
    h = x.keep("h", f + d)  # after the plan was read: its values are there, as input columns are
    assert x._nodes == [{"v.h": x._nodes[0]["v.h"]}] and x.plan.select(h).collect()["v.h"].to_list() == [24, 47, 70]


def test_the_policy_plan_has_a_node_per_step_of_its_longest_chain_not_per_value():
    """The credit policy's plan groups its values (173 of them in 19 nodes): no value reads one of its own node or a
    later one."""
    from sandu.policy import rules
    from sandu.policy.ops import FrameOps

    x = FrameOps(vector.check_frame(BUNDLE, vector.frame_of([vector.row_of(read_features({}), (), Scores("B", True, Decimal("0.01")),
                                                                               Application(True))])))
    rules.decide(x, BUNDLE, vector._inputs(), AS_OF)
    nodes = x._nodes
    assert len(nodes) * 5 < sum(len(n) for n in nodes)
    node_of = {c: k for k, node in enumerate(nodes) for c in node}
    for k, node in enumerate(nodes):
        for column, expr in node.items():
            assert all(node_of.get(r, -1) < k for r in expr.meta.root_names()), column
