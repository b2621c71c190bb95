"""The tech evaluation's table form equals the scalar form row for row (random tables, band edges)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandu.scoring.tech import evaluate_tech
from sandu.scoring.tech_config import load_tech_config
from sandu.scoring.tech_vector import FEATURES, evaluate_tech_frame

CONFIG = load_tech_config()
CERTS = sorted({*CONFIG.most.automatic_pass, *CONFIG.innovative.automatic_pass, *CONFIG.bank.certifications, "其他证书"})
SCHEMA = {
    **{k: pl.Int64 for k in ("headcount", "revenue_fen", "total_assets_fen", "invention_patents", "utility_models", "software_copyrights",
                             "high_value_invention_patents", "invention_patents_12m_ago")},
    **{k: pl.Float64 for k in ("tech_staff_ratio", "rd_ratio", "rd_growth", "revenue_growth", "debt_to_assets", "main_business_share",
                               "management_tenure_years", "tech_revenue_share")},
    "certifications": pl.List(pl.String),
    "strategic_emerging_industry": pl.Boolean,
    "founder_education": pl.String,
}


def _edges() -> list[float]:
    """Every ratio threshold of the config, and the floats next to it."""
    out = []
    c = CONFIG
    for bands in (c.most.tech_staff_ratio, c.most.rd_ratio, c.innovative.rd_ratio, c.innovative.revenue_growth, c.innovative.main_business_share,
                  c.bank.rd_intensity, c.bank.rd_growth, c.bank.tech_staff, c.bank.team_tenure, c.bank.commercialisation, c.bank.invention_density):
        for b in bands:
            out += [float(b.min), float(np.nextafter(float(b.min), -np.inf)), float(np.nextafter(float(b.min), np.inf))]
    for b in c.innovative.debt_ratio:
        out += [float(b.below), float(np.nextafter(float(b.below), -np.inf)), float(np.nextafter(float(b.below), np.inf))]
    return out


EDGES = _edges()


def _expected(rows: list[dict]) -> pl.DataFrame:
    evals = [evaluate_tech(r, CONFIG) for r in rows]
    return pl.DataFrame({"tech_score": [e.score for e in evals], "tech_grade": [e.grade for e in evals],
                         "tech_most_pass": [e.most_pass for e in evals], "tech_innovative_pass": [e.innovative.passed for e in evals]},
                        schema={"tech_score": pl.Decimal(38, 1), "tech_grade": pl.String, "tech_most_pass": pl.Boolean, "tech_innovative_pass": pl.Boolean})


def _random_frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Columns drawn at once: counts around the size limits and small, ratios at the band edges or anywhere, 10 % nulls."""
    cols: dict = {}
    for k, t in SCHEMA.items():
        if t == pl.Int64:
            small = rng.integers(0, 12, n)
            near = rng.choice([99, 100, 499, 500, 501, CONFIG.most.max_revenue_fen - 1, CONFIG.most.max_revenue_fen, CONFIG.most.max_revenue_fen + 1], n)
            wide = rng.integers(0, 3_000_000_000_000, n)
            values = np.where(rng.random(n) < 0.5, small, np.where(rng.random(n) < 0.5, near, wide))
        elif t == pl.Float64:
            values = np.where(rng.random(n) < 0.5, rng.choice(EDGES, n), np.round(rng.uniform(-0.2, 1.2, n), 6))
            if k == "management_tenure_years":
                values = rng.integers(0, 15, n).astype(float)
        elif k == "certifications":
            picks = rng.integers(0, len(CERTS), (n, 3))
            keep = rng.random((n, 3)) < 0.4
            values = [sorted({CERTS[j] for j, ok in zip(p, q, strict=True) if ok}) for p, q in zip(picks.tolist(), keep.tolist(), strict=True)]
        elif k == "strategic_emerging_industry":
            values = rng.random(n) < 0.5
        else:
            values = rng.choice(["doctorate", "master", "bachelor", "college", "other", "高中"], n)
        cols[k] = pl.Series(k, values, dtype=t)
    nulls = {k: pl.Series(rng.random(n) < 0.1) for k in SCHEMA}
    return pl.DataFrame(cols).with_columns(pl.when(nulls[k]).then(None).otherwise(pl.col(k)).alias(k) for k in SCHEMA)


def test_the_table_form_equals_evaluate_tech_on_30000_random_rows():
    frame = _random_frame(np.random.default_rng(13), 30_000)
    rows = frame.to_dicts()
    got = evaluate_tech_frame(frame, CONFIG)
    want = _expected(rows)
    bad = got.with_row_index().filter(pl.any_horizontal(*(pl.col(c).ne_missing(want[c]) for c in want.columns)))
    assert bad.is_empty(), (bad.head(3), [rows[i] for i in bad["index"].head(3)])
    assert got["tech_grade"].n_unique() >= 3 and got["tech_most_pass"].any() and not got["tech_most_pass"].all()


count = st.one_of(st.none(), st.integers(0, 10), st.integers(490, 510), st.sampled_from([CONFIG.most.max_revenue_fen - 1, CONFIG.most.max_revenue_fen,
                                                                                          CONFIG.most.max_revenue_fen + 1]))
ratio = st.one_of(st.none(), st.sampled_from(EDGES), st.floats(-1, 2), st.sampled_from([float("nan"), float("inf"), float("-inf")]))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({
    **{k: count for k in ("headcount", "revenue_fen", "total_assets_fen", "invention_patents", "utility_models", "software_copyrights",
                          "high_value_invention_patents", "invention_patents_12m_ago")},
    **{k: ratio for k in ("tech_staff_ratio", "rd_ratio", "rd_growth", "revenue_growth", "debt_to_assets", "main_business_share",
                          "management_tenure_years", "tech_revenue_share")},
    "certifications": st.one_of(st.none(), st.lists(st.sampled_from(CERTS), max_size=4, unique=True)),
    "strategic_emerging_industry": st.one_of(st.none(), st.booleans()),
    "founder_education": st.one_of(st.none(), st.sampled_from(["doctorate", "master", "bachelor", "college", "other", "x"])),
}))
def test_the_band_edges_score_the_same_in_both_forms(row):
    got = evaluate_tech_frame(pl.DataFrame([row], schema=SCHEMA), CONFIG)
    assert got.row(0) == _expected([row]).row(0)


@pytest.mark.parametrize("column,values,dtype", [
    ("headcount", [10.0], pl.Float64),  # a count must be an integer
    ("rd_ratio", ["0.07"], pl.String),  # a ratio must be a number
    ("strategic_emerging_industry", [1], pl.Int64),  # a flag must be a boolean
])
def test_a_column_of_the_wrong_type_is_no_data_as_in_the_scalar_form(column, values, dtype):
    row = {"headcount": 50, "rd_ratio": 0.07, "tech_staff_ratio": 0.31, "invention_patents": 2, "strategic_emerging_industry": True}
    frame = pl.DataFrame([row]).with_columns(pl.Series(column, values, dtype=dtype))
    scalar = evaluate_tech({**row, column: values[0]}, CONFIG)
    got = evaluate_tech_frame(frame, CONFIG)
    assert got.row(0) == (scalar.score, scalar.grade, scalar.most_pass, scalar.innovative.passed)
    assert got["tech_score"][0] < evaluate_tech(row, CONFIG).score


def test_a_density_exactly_at_a_threshold_reaches_it():
    band = CONFIG.bank.invention_density[0]
    head = 700
    inv = int(band.min * head / 100)
    rows = [{"invention_patents": inv + d, "headcount": head} for d in (-1, 0, 1)] + [{"invention_patents": 3, "headcount": 0}]
    got = evaluate_tech_frame(pl.DataFrame(rows, schema={"invention_patents": pl.Int64, "headcount": pl.Int64}), CONFIG)
    assert got["tech_score"].to_list() == _expected(rows)["tech_score"].to_list()


def test_all_features_are_read_and_an_empty_table_gives_an_empty_table():
    assert set(FEATURES) == set(SCHEMA)
    assert evaluate_tech_frame(pl.DataFrame(schema=SCHEMA), CONFIG).shape == (0, 4)
    assert evaluate_tech_frame(pl.DataFrame({"x": [1]}), CONFIG)["tech_score"][0] == evaluate_tech({}, CONFIG).score == Decimal("0")
