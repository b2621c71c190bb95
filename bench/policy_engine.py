"""The policy engine in its two forms, and an outside reference.

Prints:
  * the in-process decision (profile features in, the decision record out: rules, records,
    explanation; no database) p50/p99 in µs over N applications — goal p99 ≤ 1 ms;
  * the table form (polars) over ROWS synthetic applications: rows/s and peak RSS;
  * the same eligibility and pricing tables (risk grade by PD, eligibility, the quick loan's
    multiplier, spread and tech discount, floor and 专精特新 level) as a GoRules JDM graph,
    generated from the bundle and evaluated row by row in zen-engine: rows/s, its agreement with
    sandu on the rows where that subset decides alone, and the ratios.

Usage: .venv/bin/python bench/policy_engine.py [ROWS] [N_SCALAR] [N_ZEN] [-v] [--json FILE]   (defaults 1000000 5000 20000)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from datetime import date
from decimal import Decimal

import numpy as np
import polars as pl
from _results import Results, json_option

from sandu.policy.bundle import PolicyBundle, load_bundle
from sandu.policy.engine import Application, Scores, evaluate
from sandu.policy.rules import rate_bp
from sandu.policy.vector import ASSET, INPUT_SCHEMA, evaluate_frame

AS_OF = date(2026, 11, 1)
MAX_ROWS = 10_000_000
SOURCES = ["tax", "credit_bureau", "invoices", "social_insurance", "ip", "utilities"]
WAN = 1_000_000


def synthetic(n: int, seed: int = 1) -> pl.DataFrame:
    """`n` applications in the table form's columns, drawn like a region's SMEs (numpy, no Python loop per row)."""
    rng = np.random.default_rng(seed)

    def maybe(values: np.ndarray, p_null: float) -> pl.Series:
        return pl.Series(values).set(pl.Series(rng.random(n) < p_null), None) if p_null else pl.Series(values)

    revenue = np.exp(rng.normal(np.log(3_000 * WAN), 1.0, n)).astype(np.int64)
    tax = (revenue * rng.uniform(0.005, 0.06, n)).astype(np.int64)
    loans = (revenue * rng.uniform(0, 0.4, n)).astype(np.int64) * (rng.random(n) < 0.6)
    has_project = rng.random(n) < 0.1
    n_assets = rng.choice([0, 0, 0, 1, 1, 2], n)
    kinds = np.array(["industrial_property", "residential", "land_use_right", "equipment"])
    offsets = np.concatenate([[0], np.cumsum(n_assets)])
    total = int(offsets[-1])
    assets = pl.DataFrame({"kind": kinds[rng.integers(0, 4, total)], "appraised_value_fen": rng.integers(100 * WAN, 5_000 * WAN, total),
                           "secured_debt_fen": rng.integers(0, 2_000 * WAN, total) * (rng.random(total) < 0.4)}).to_struct("a")
    collateral = pl.Series("collateral", [assets[int(offsets[k]):int(offsets[k + 1])].to_list() for k in range(n)], dtype=pl.List(ASSET)) \
        if n <= 200_000 else _lists(assets, offsets)
    flags = rng.random((n, 2)) < [0.01, 0.03]
    frame = pl.DataFrame({
        "revenue_fen": maybe(revenue, 0.02),
        "tax_total_fen": maybe(tax, 0.02),
        "tax_credit_grade": maybe(rng.choice(["A", "B", "M", "C", "D"], n, p=[0.45, 0.3, 0.1, 0.1, 0.05]), 0.02),
        "overdue_count_24m": maybe(rng.choice([0, 0, 0, 0, 1, 2, 3], n), 0.01),
        "max_overdue_days_24m": maybe(rng.choice([0, 0, 0, 10, 30, 60], n), 0.01),
        "headcount": maybe(rng.integers(5, 800, n), 0.1),
        "loans_outstanding_fen": maybe(loans, 0.05),
        "secured_debt_fen": maybe((loans * rng.uniform(0, 1, n)).astype(np.int64), 0.05),
        "certifications": pl.Series([["专精特新"] if c else [] for c in rng.random(n) < 0.08], dtype=pl.List(pl.String)),
        "sources_not_read": pl.Series([["ip"] if f else [] for f in flags[:, 0]], dtype=pl.List(pl.String)),
        "sources_unavailable": pl.Series([["utilities"] if f else [] for f in flags[:, 1]], dtype=pl.List(pl.String)),
        "tech_grade": rng.choice(["A", "B", "C", "D"], n, p=[0.1, 0.25, 0.35, 0.3]),
        "tech_most_pass": rng.random(n) < 0.6,
        "risk_pd": pl.Series((np.round(rng.beta(1.2, 40, n), 6)).astype(str)).cast(pl.Decimal(38, 18)),
        "has_bank_account": rng.random(n) < 0.6,
        "project_capex_fen": pl.Series(np.where(has_project, rng.integers(1_000 * WAN, 20_000 * WAN, n), 0)).set(pl.Series(~has_project), None),
        "project_annual_cash_flow_fen": pl.Series(np.where(has_project, rng.integers(100 * WAN, 3_000 * WAN, n), 0)).set(pl.Series(~has_project), None),
        "project_tenor_years": pl.Series(np.where(has_project, rng.integers(1, 12, n), 0)).set(pl.Series(~has_project), None),
        "collateral": collateral,
        "guarantee_fen": pl.Series(np.where(rng.random(n) < 0.05, rng.integers(100, 1_000, n) * WAN, 0)).set(pl.Series(rng.random(n) < 0.9), None),
    })
    return frame.cast(INPUT_SCHEMA)


def _lists(assets: pl.Series, offsets: np.ndarray) -> pl.Series:
    """A list column from flat items and offsets, without a Python loop per row."""
    n = len(offsets) - 1
    index = np.repeat(np.arange(n), np.diff(offsets))
    flat = pl.DataFrame({"row": index, "a": assets})
    grouped = flat.group_by("row").agg(pl.col("a"))
    return pl.DataFrame({"row": np.arange(n)}).join(grouped, on="row", how="left").sort("row")["a"].fill_null(
        pl.lit([], dtype=pl.List(ASSET))).alias("collateral")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


# -- the scalar form ---------------------------------------------------------------------------------


def scalar_inputs(row: dict) -> tuple:
    from sandu.domain.project import Project
    from sandu.sources.profile import Collateral

    flags = [f"{s}:not_read" for s in row["sources_not_read"]] + [f"{s}:unavailable" for s in row["sources_unavailable"]]
    keys = ("revenue_fen", "tax_total_fen", "tax_credit_grade", "overdue_count_24m", "max_overdue_days_24m", "headcount",
            "loans_outstanding_fen", "secured_debt_fen", "certifications")
    features = {k: row[k] for k in keys} | {"_quality_flags": flags}
    collateral = tuple(Collateral(f"C{k}", a["kind"], a["appraised_value_fen"], a["secured_debt_fen"]) for k, a in enumerate(row["collateral"]))
    project = None if row["project_tenor_years"] is None else Project(name="p", capex_fen=row["project_capex_fen"],
                                                                          annual_cash_flow_fen=row["project_annual_cash_flow_fen"],
                                                                          tenor_years=row["project_tenor_years"])
    return features, collateral, Scores(row["tech_grade"], row["tech_most_pass"], Decimal(row["risk_pd"])), Application(row["has_bank_account"], None, project)


# -- zen-engine: the same tables as a JDM graph --------------------------------------------------------


def _table(node_id: str, inputs: list[str], outputs: list[str], rules: list[tuple[list[str], list[str]]]) -> dict:
    return {"id": node_id, "type": "decisionTableNode", "name": node_id, "position": {"x": 0, "y": 0},
            "content": {"hitPolicy": "first", "passThrough": True, "inputField": None, "outputPath": None, "executionMode": "single",
                        "inputs": [{"id": f"{node_id}-i{k}", "name": f, "field": f} for k, f in enumerate(inputs)],
                        "outputs": [{"id": f"{node_id}-o{k}", "name": f, "field": f} for k, f in enumerate(outputs)],
                        "rules": [{"_id": f"{node_id}-r{n}", **{f"{node_id}-i{k}": c for k, c in enumerate(ins)},
                                   **{f"{node_id}-o{k}": c for k, c in enumerate(outs)}} for n, (ins, outs) in enumerate(rules)]}}


def jdm(bundle: PolicyBundle, as_of: date) -> str:
    """The bundle's eligibility and pricing tables for the quick loan, as a GoRules decision graph."""
    e, c, pr = bundle.eligibility, bundle.credit, bundle.pricing
    code = c.quick_product
    fixing = bundle.lpr_on(as_of)
    lpr = rate_bp(fixing.one_year)
    q = lambda s: json.dumps(s, ensure_ascii=False)  # noqa: E731  (a JDM expression reads the characters, not \u escapes)
    risk = _table("risk", ["pd"], ["risk"], [([f"<= {g.max_pd}"], [q(g.grade)]) for g in bundle.risk_grades[:-1]] + [([""], [q(bundle.risk_grades[-1].grade)])])
    declined = ", ".join(q(g) for g in e.declined_risk_grades)
    allowed = ", ".join(q(g) for g in e.allowed_tax_credit_grades)
    eligible = _table("eligibility", ["risk", "overdue_count_24m", "max_overdue_days_24m", "tax_total_fen", "tax_credit_grade"], ["eligible"], [
        ([f"[{declined}]", "", "", "", ""], ["false"]),
        (["", f"> {e.max_overdue_count_24m}", "", "", ""], ["false"]),
        (["", "", f"> {e.max_overdue_days_24m}", "", ""], ["false"]),
        (["", "", "", f"< {e.min_annual_tax_fen}", ""], ["false"]),
        (["", "", "", "", f"not in [{allowed}]"], ["false"]),
        (["", "", "", "", ""], ["true"]),
    ])
    multiplier = _table("multiplier", ["risk"], ["multiplier"], [([q(g)], [str(m)]) for g, m in c.quick_tax_multiplier.items()] + [([""], ["0"])])
    spread = _table("spread", ["risk"], ["spread_bp"], [([q(g)], [str(s)]) for g, s in pr.spread_bp[code].items()] + [([""], ["0"])])
    discount = _table("discount", ["tech_grade"], ["discount_bp"], [([q(g.grade)], [str(g.discount_bp)]) for g in bundle.tech_grades])
    prefs = ", ".join(q(x) for x in pr.preferential_certifications)
    price = {"id": "price", "type": "expressionNode", "name": "price", "position": {"x": 0, "y": 0},
             "content": {"passThrough": True, "inputField": None, "outputPath": None, "executionMode": "single", "expressions": [
                 {"id": "x0", "key": "unsecured_fen", "value": "max([0, loans_outstanding_fen - secured_debt_fen])"},
                 {"id": "x1", "key": "limit_fen", "value": f"max([0, min([floor((tax_total_fen * multiplier - $.unsecured_fen) / {c.round_down_fen}) "
                                                            f"* {c.round_down_fen}, {c.quick_max_fen}])])"},
                 {"id": "x2", "key": "base_bp", "value": f"max([{lpr + pr.floor_bp_vs_lpr}, {lpr} + spread_bp - discount_bp "
                                                          f"+ (len(sources_unavailable) > 0 ? {bundle.gap_spread_bp} : 0)])"},
                 {"id": "x3", "key": "rate_bp", "value": f"(some(certifications, # in [{prefs}]) and $.base_bp > {lpr + pr.preferential_max_bp_vs_lpr}) "
                                                          f"? {lpr + pr.preferential_max_bp_vs_lpr} : $.base_bp"},
             ]}}
    nodes = [{"id": "in", "type": "inputNode", "name": "in", "position": {"x": 0, "y": 0}}, risk, eligible, multiplier, spread, discount, price,
             {"id": "out", "type": "outputNode", "name": "out", "position": {"x": 0, "y": 0}}]
    chain = ["in", "risk", "eligibility", "multiplier", "spread", "discount", "price", "out"]
    edges = [{"id": f"e{k}", "sourceId": a, "targetId": b, "type": "edge"} for k, (a, b) in enumerate(zip(chain, chain[1:], strict=False))]
    return json.dumps({"contentType": "application/vnd.gorules.decision", "nodes": nodes, "edges": edges})


def main(rows: int, n_scalar: int, n_zen: int, figures: Results) -> None:
    assert 1 <= rows <= MAX_ROWS and 100 <= n_scalar <= rows and 100 <= n_zen <= rows
    bundle = load_bundle()
    t0 = time.perf_counter()
    table = synthetic(rows)
    print(f"synthetic applications: {rows:,} in {time.perf_counter() - t0:.1f} s (not counted below); peak RSS {rss_mib():,.0f} MiB")

    sample = table.head(n_scalar).to_dicts()
    inputs = [scalar_inputs(r) for r in sample]
    print(f"scalar form (one application: rules + records + explanation, no database), {n_scalar:,} applications:")
    scalar_p = {}
    for run in ("cold", "warm"):  # cold: each new price computes its 年化利率 (IRR) and a project its service; warm: a running server's caches
        times = []
        for f, c, s, a in inputs:
            t = time.perf_counter_ns()
            evaluate(bundle, f, c, s, a, AS_OF)
            times.append((time.perf_counter_ns() - t) / 1000)
        scalar_rows_s = 1e6 / statistics.mean(times)
        print(f"  {run}: decision_us_p50={pct(times, 50):.0f} decision_us_p99={pct(times, 99):.0f} (goal p99 ≤ 1000)  rows_per_s={scalar_rows_s:,.0f}")
        scalar_p[run] = (pct(times, 50), pct(times, 99))
    for q, k in ((50, 0), (99, 1)):
        figures.add(f"policy scalar decision (rules + records + explanation), warm caches, p{q}", scalar_p["warm"][k], "µs",
                    notes=f"{n_scalar:,} applications; cold caches p{q} {scalar_p['cold'][k]:.0f} µs" + ("; goal p99 ≤ 1000 µs" if q == 99 else ""))

    evaluate_frame(bundle, table.head(10_000), AS_OF)  # warm: the same caches
    t = time.perf_counter()
    decided = evaluate_frame(bundle, table, AS_OF)
    seconds = time.perf_counter() - t
    vector_rows_s = rows / seconds
    counts = dict(decided.group_by("outcome").len().iter_rows())
    print(f"table form (polars), {rows:,} applications on one day: {seconds:.2f} s, rows_per_s={vector_rows_s:,.0f}, "
          f"peak RSS {rss_mib():,.0f} MiB; outcomes {counts}")

    import zen

    engine = zen.ZenEngine()
    decision = engine.create_decision(jdm(bundle, AS_OF))
    complete = table.drop_nulls(["tax_total_fen", "overdue_count_24m", "max_overdue_days_24m", "loans_outstanding_fen", "secured_debt_fen"]) \
        .head(n_zen)  # the JDM's expressions have no missing values
    decided = evaluate_frame(bundle, complete, AS_OF)
    zen_rows = complete.select("risk_pd", "overdue_count_24m", "max_overdue_days_24m", "tax_total_fen", "tax_credit_grade", "tech_grade",
                                        "certifications", "loans_outstanding_fen", "secured_debt_fen", "sources_unavailable").to_dicts()
    for r in zen_rows:
        r["pd"] = float(r.pop("risk_pd"))
    decision.evaluate(zen_rows[0])
    t = time.perf_counter()
    results = [decision.evaluate(r)["result"] for r in zen_rows]
    zen_seconds = time.perf_counter() - t
    zen_rows_s = len(zen_rows) / zen_seconds
    ours = decided
    quick = bundle.credit.quick_product
    comparable = agree = 0
    for z, o in zip(results, ours.iter_rows(named=True), strict=True):
        if o["credit_product"] == quick and not o["tech_line"] and o["eligible"]:
            comparable += 1
            same = z["eligible"] is True and int(z["rate_bp"]) == o["credit_rate_bp"] and int(z["limit_fen"]) == o["credit_limit_fen"]
            agree += same
            if not same and "-v" in sys.argv:
                print(z, {k: o[k] for k in ("credit_rate_bp", "credit_limit_fen", "secured_product", "outcome")})
    print(f"zen-engine {zen.__name__} (GoRules JDM of the same eligibility and pricing tables, row by row), {len(zen_rows):,} applications: "
          f"{zen_seconds:.2f} s, rows_per_s={zen_rows_s:,.0f}")
    print(f"  agreement on the {comparable:,} rows the quick loan decides alone: {agree:,} (rate and limit equal)")
    print(f"  ratio table form / zen = {vector_rows_s / zen_rows_s:.1f}x; scalar form (whole policy, with explanation) / zen = {scalar_rows_s / zen_rows_s:.2f}x")
    zen_ref = f"zen-engine row by row, the same eligibility and pricing tables as a JDM ({len(zen_rows):,} rows)"
    figures.add(f"policy table form (polars), {rows:,} applications", vector_rows_s, "rows/s", reference=zen_ref, reference_value=zen_rows_s,
                notes=f"{seconds:.2f} s; peak RSS {rss_mib():,.0f} MiB")
    figures.add("policy scalar form (whole policy, with explanation), warm caches", scalar_rows_s, "rows/s", reference=zen_ref,
                reference_value=zen_rows_s, notes=f"{n_scalar:,} applications")
    figures.add("policy zen-engine agreement (rate and limit equal)", agree / comparable if comparable else 0.0, "share of rows",
                notes=f"{agree:,} of the {comparable:,} rows the quick loan decides alone")
    if agree != comparable:
        figures.failed("policy zen-engine agreement", f"{comparable - agree:,} of {comparable:,} comparable rows differ")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000, help="applications for the table form")
    parser.add_argument("n_scalar", nargs="?", type=int, default=5_000, help="applications for the scalar form")
    parser.add_argument("n_zen", nargs="?", type=int, default=20_000, help="applications for zen-engine")
    parser.add_argument("-v", action="store_true", help="print the rows where zen-engine and sandu differ")
    json_option(parser)
    args = parser.parse_args()
    main(args.rows, args.n_scalar, args.n_zen, Results("policy_engine", args.json))
