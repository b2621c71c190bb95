"""Model monitoring: the features' PSI against the scorecard's training data and the score's against the first week,
week by week; a shifted population raises an alert; recomputed here from the artifact's counts."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from sandu.scoring import metrics
from sandu.scoring.monitor import MIN_ROWS_PER_WEEK, training_shares, weekly
from sandu.scoring.report import PSI_SHIFTED, _bin_shares
from sandu.scoring.risk import load_model
from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.profile import build_profile

CARD = load_model()
MONDAY = date(2026, 11, 2)


def _frame(n: int, seed: int) -> pl.DataFrame:
    """`n` enterprises of the synthetic universe (the scorecard's training population), as their profiles' features."""
    as_of = date(2026, 10, 31)
    table = generate(n, seed, as_of)
    kinds = {f.name: pl.String if f.kind == "categorical" else pl.Float64 for f in CARD.features}
    rows = []
    for i in range(n):
        r = row(table, i)
        features = build_profile(r["uscc"], as_of, source_payloads(r, as_of)).features
        rows.append({f.name: features.get(f.name) for f in CARD.features})
    return pl.DataFrame(rows, schema=kinds, strict=False)


def test_training_shares_are_the_artifacts_counts():
    shares = training_shares(CARD)
    for f in CARD.artifact["features"]:
        counts = np.asarray([b["count"] for b in f["bins"]] + [f["missing"].get("count", 0), 0, 0], dtype=np.float64)
        assert np.allclose(shares[f["name"]], counts / counts.sum()) and shares[f["name"]].sum() == pytest.approx(1)


def test_a_population_like_the_training_data_is_stable_and_a_shifted_one_raises_an_alert():
    frame = _frame(600, 7)
    days = [MONDAY + timedelta(days=k % 14) for k in range(frame.height)]  # two weeks of applications
    weeks = weekly(CARD, frame, days)
    assert [w.starts_on for w in weeks] == [MONDAY, MONDAY + timedelta(days=7)] and sum(w.applications for w in weeks) == 600
    first, second = weeks
    assert first.score is None and second.score is not None  # the first week is the score's reference
    train = training_shares(CARD)
    now = _bin_shares(CARD, frame.filter(pl.Series([d < MONDAY + timedelta(days=7) for d in days])))
    for s in first.features:  # each feature's PSI recomputed from the artifact's counts
        assert s.psi == pytest.approx(metrics.psi(train[s.name], now[s.name][1]))
    assert first.alerts == () and second.alerts == ()  # drawn from the universe the scorecard was trained on
    shifted = frame.with_columns((pl.col("debt_to_revenue") * 0 + 0.5).alias("debt_to_revenue"))  # every applicant heavily indebted
    [week] = weekly(CARD, shifted.head(100), [MONDAY] * 100)
    assert "debt_to_revenue" in week.alerts and next(s for s in week.features if s.name == "debt_to_revenue").psi >= PSI_SHIFTED


def test_a_week_with_too_few_applications_is_not_judged():
    frame = _frame(MIN_ROWS_PER_WEEK + 5, 3)
    days = [MONDAY] * MIN_ROWS_PER_WEEK + [MONDAY + timedelta(days=7)] * 5
    full, thin = weekly(CARD, frame, days)
    assert full.features and (thin.applications, thin.features, thin.score, thin.alerts) == (5, (), None, ())
    assert weekly(CARD, frame.head(0), []) == []


def test_the_monitor_reads_the_stored_decisions(rt_sqlite):
    from test_origination import S2, S3, consent, measure, register

    from sandu.analytics import actions

    rt = rt_sqlite
    for story in (S2, S3):
        register(rt, story)
        measure(rt, story, consent(rt, story))
    weeks = actions.model_monitor(rt, since=rt.today() - timedelta(days=6))
    assert sum(w.applications for w in weeks) == 2 and all(w.features == () for w in weeks)  # too few to judge
    from sandu.domain.errors import InvalidInput

    with pytest.raises(InvalidInput):
        actions.model_monitor(rt, since=rt.today() + timedelta(days=1))


def test_sandu_model_monitor_prints_the_weeks_and_exits_1_on_a_shift(rt_sqlite):
    from cli_support import sandu
    from conftest import TEST_SECRET
    from test_origination import S2, consent, measure, register

    rt = rt_sqlite
    register(rt, S2)
    measure(rt, S2, consent(rt, S2))
    env = {"SANDU_DATABASE_URL": str(rt.engine.url), "SANDU_SECRET_KEY": TEST_SECRET}
    r = sandu(["model", "monitor", "--since", "2026-11-01", "--until", "2026-11-29"], env=env)
    assert r.returncode == 0 and "too few to judge" in r.stdout and "2026-11-23" in r.stdout, r.stdout + r.stderr
    r = sandu(["model", "monitor", "--since", "2026-13-01"], env=env)
    assert r.returncode == 2 and "--since" in r.stderr
