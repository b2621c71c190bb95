"""Tech evaluation (科创评价) on the published MOST indicators, and the risk scorecard artifact."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from sandu.scoring.risk import load_model, model_from_json, score
from sandu.scoring.tech import evaluate_tech
from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.profile import build_profile


@pytest.mark.parametrize(
    ("staff", "points"),
    [(0.30, 20), (0.2999, 16), (0.25, 16), (0.20, 12), (0.15, 8), (0.10, 4), (0.0999, 0), (None, 0)],
)
def test_tech_staff_ratio_bands(staff, points):
    ev = evaluate_tech({"tech_staff_ratio": staff})
    assert next(i for i in ev.indicators if i.name == "tech_staff_ratio").points == points


@pytest.mark.parametrize(("rd", "points"), [(0.06, 50), (0.05, 40), (0.04, 30), (0.03, 20), (0.02, 10), (0.0199, 0)])
def test_rd_ratio_bands(rd, points):
    assert evaluate_tech({"rd_ratio": rd}).most_points == points


@pytest.mark.parametrize(
    ("invention", "class_ii", "points"),
    [(1, 0, 30), (0, 4, 24), (0, 9, 24), (0, 3, 18), (0, 2, 12), (0, 1, 6), (0, 0, 0)],
)
def test_intellectual_property_classes(invention, class_ii, points):
    ev = evaluate_tech({"invention_patents": invention, "utility_models": class_ii, "software_copyrights": 0})
    assert ev.most_points == points


def test_most_pass_at_60_or_automatically_with_gaoxin():
    passing = evaluate_tech({"tech_staff_ratio": 0.2, "rd_ratio": 0.05, "invention_patents": 0, "utility_models": 2})
    assert passing.most_points == 12 + 40 + 12 and passing.most_pass and passing.auto_pass_reason is None
    fail = evaluate_tech({"tech_staff_ratio": 0.1, "rd_ratio": 0.02, "invention_patents": 0})
    assert fail.most_points == 14 and not fail.most_pass
    auto = evaluate_tech({"tech_staff_ratio": 0.1, "rd_ratio": 0.02, "invention_patents": 0, "certifications": ["高新技术企业"]})
    assert auto.most_pass and auto.auto_pass_reason


def test_bank_view_adds_certifications_and_patent_depth_capped():
    base = {"tech_staff_ratio": 0.3, "rd_ratio": 0.06, "invention_patents": 6}
    plain = evaluate_tech(base)
    assert plain.score == Decimal("75.0")  # 0.7 × 100 + patent depth 5
    full = evaluate_tech({**base, "certifications": ["高新技术企业", "专精特新", "小巨人", "科技型中小企业"]})
    assert full.bank_bonus == 30 and full.score == Decimal(100)
    assert all(i.explanation for i in full.indicators)


def test_risk_model_artifact_scores_without_training_libraries():
    m = load_model()
    assert len(m.sha256) == 64 and m.label == "risk-expert@0.1.0"
    good = score(m, {"overdue_count_24m": 0, "tax_credit_grade": "A", "revenue_growth": 0.2, "cit_margin": 0.03, "debt_to_revenue": 0.05})
    bad = score(m, {"overdue_count_24m": 4, "tax_credit_grade": "D", "revenue_growth": -0.3, "cit_margin": 0.0, "debt_to_revenue": 1.2, "utility_arrears": True})
    assert 0 < good.pd < bad.pd < 1
    assert good.points > bad.points
    assert bad.reasons[0].startswith(("OVERDUE_HISTORY", "TAX_GRADE", "LEVERAGE", "REVENUE_TREND"))
    assert len(bad.reasons) == 4
    assert not any(r.startswith("OVERDUE_HISTORY") for r in good.reasons)


def test_points_follow_pdo_scale():
    m = load_model()
    s = score(m, {})
    odds = (1 - s.pd) / s.pd
    assert s.points == round(600 + 20 / math.log(2) * math.log(odds / 50))


def test_a_model_file_is_validated():
    data = json.loads(json.dumps({"name": "x", "version": "1", "intercept": 0, "terms": [], "points": {"base_score": 600, "base_odds": 50, "pdo": 20}}))
    with pytest.raises(AssertionError, match="1..200 terms"):
        model_from_json(data)


def test_risk_score_ranks_the_hidden_truth_of_the_universe():
    """On the simulated universe the expert scorecard must rank default better than chance."""
    as_of = date(2026, 10, 31)
    table = generate(4000, 11, as_of)
    m = load_model()
    pds = np.array([score(m, build_profile(r["uscc"], as_of, source_payloads(r, as_of)).features).pd for r in (row(table, i) for i in range(4000))])
    y = table["default_12m"]
    # AUC by the rank-sum formula
    ranks = pds.argsort().argsort() + 1
    n1, n0 = y.sum(), (~y).sum()
    auc = (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    print(f"expert scorecard AUC on 4,000 simulated enterprises: {auc:.3f}")
    assert auc > 0.70, auc
