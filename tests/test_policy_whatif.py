"""What-if: past applications re-decided under a changed bundle, against the bundle in force — every
figure recomputed here from the scalar form, one application at a time; from the store, through the
CLI (table, xlsx, csv, json) and through the API for the console; bad input refused, nothing stored."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import httpx
import polars as pl
import pytest
from conftest import BUSINESS_DATE, TEST_SECRET, login
from openpyxl import load_workbook
from test_origination import S1, S2, S3, S4, S5, consent, measure, register
from test_policy_vector import random_application

from sandu.domain.errors import InvalidInput
from sandu.origination import actions
from sandu.origination import whatif as whatif_svc
from sandu.policy import vector, whatif
from sandu.policy.bundle import load_bundle, parse_bundle
from sandu.policy.kernel import decide, read_features
from sandu.sources.profile import ProfileIntegrityError
from sandu.store import models as m

BUNDLE = load_bundle()
RAW = resources.files("sandu.policy.bundles").joinpath("default.toml").read_bytes()
STRICTER = RAW.replace(b"min_annual_tax_fen = 3_000_000", b"min_annual_tax_fen = 50_000_000").replace(b'version = "2026.12.11"', b'version = "2027.1.0"')
CHANGED = parse_bundle(STRICTER)
DAYS = (date(2025, 5, 19), date(2025, 5, 20), date(2026, 3, 31), date(2026, 11, 1))


def applications(n: int, seed: int = 5) -> tuple[pl.DataFrame, list]:
    rng = random.Random(seed)
    apps = [random_application(rng) for _ in range(n)]
    typed = [(read_features(f), c, s, a) for f, c, s, a in apps]
    table = vector.frame_of([vector.row_of(*t) for t in typed]).with_columns(
        pl.Series("application_id", [f"A{k:05d}" for k in range(n)]), pl.Series("uscc", [f"U{k}" for k in range(n)]),
        pl.Series("as_of", [DAYS[k % len(DAYS)] for k in range(n)]))
    return table, typed


def test_every_figure_is_what_the_scalar_form_gives_one_application_at_a_time():
    table, typed = applications(1_500)
    w = whatif.compare(BUNDLE, CHANGED, table, max_changes=10_000)
    for figures, bundle in ((w.current, BUNDLE), (w.changed, CHANGED)):
        ds = [decide(bundle, *t, DAYS[k % len(DAYS)]) for k, t in enumerate(typed)]
        assert figures.policy == bundle.label and figures.applications == len(ds)
        assert figures.approved == sum(d.outcome.value in ("approve", "partial") for d in ds)
        assert figures.referred == sum(d.outcome.value == "refer" for d in ds)
        assert figures.declined == sum(d.outcome.value == "decline" for d in ds)
        assert figures.total_limit_fen == sum(d.comprehensive_limit_fen for d in ds)
        assert figures.approved_fen == sum(d.approved_fen for d in ds)
        weighted = sum(o.price.rate_annual * o.limit_fen for d in ds for o in d.offers)
        offered = sum(o.limit_fen for d in ds for o in d.offers)
        assert figures.average_rate == (weighted / offered).quantize(Decimal("0.000001"))
        loss = sum(t[2].risk_pd * d.comprehensive_limit_fen for t, d in zip(typed, ds, strict=True))
        assert figures.expected_loss_fen == int(loss.quantize(Decimal(1)))
        assert figures.approval_rate == (Decimal(figures.approved) / len(ds)).quantize(Decimal("0.0001"))
    before = [decide(BUNDLE, *t, DAYS[k % len(DAYS)]) for k, t in enumerate(typed)]
    after = [decide(CHANGED, *t, DAYS[k % len(DAYS)]) for k, t in enumerate(typed)]
    moved = {f"A{k:05d}" for k, (b, a) in enumerate(zip(before, after, strict=True)) if b.outcome != a.outcome}
    assert moved and {c.application_id for c in w.changes} == moved and w.outcome_changes == len(moved)
    assert w.limit_changes == sum(b.comprehensive_limit_fen != a.comprehensive_limit_fen for b, a in zip(before, after, strict=True))
    deltas = [abs(c.limit_after_fen - c.limit_before_fen) for c in w.changes]
    assert deltas == sorted(deltas, reverse=True)  # the largest change first
    assert w.current.approved > w.changed.approved  # a stricter tax minimum approves fewer


@pytest.mark.parametrize("listed", [0, 1, whatif.MAX_CHANGES_LISTED])
def test_the_changes_listed_are_bounded_as_asked(listed):
    w = whatif.compare(BUNDLE, CHANGED, applications(400)[0], max_changes=listed)
    assert len(w.changes) == min(listed, w.outcome_changes) and w.outcome_changes > 1


@pytest.mark.parametrize("bad", [-1, whatif.MAX_CHANGES_LISTED + 1, True, 1.0])
def test_a_bad_bound_on_the_changes_is_refused(bad):
    with pytest.raises(InvalidInput) as e:
        whatif.compare(BUNDLE, CHANGED, applications(3)[0], max_changes=bad)
    assert e.value.field == "max_changes"


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda t: t.drop("application_id"), "application_id", "column missing"),
    (lambda t: t.with_columns(pl.lit("A1").alias("application_id")), "application_id", "listed twice"),
    (lambda t: t.with_columns(pl.lit(None, dtype=pl.String).alias("uscc")), "uscc", "null"),
    (lambda t: t.with_columns(pl.lit("someday").alias("as_of")), "as_of", "cannot be read"),
    (lambda t: t.with_columns(pl.lit(-5).alias("tax_total_fen")), "tax_total_fen", "negative"),
])
def test_a_bad_table_of_applications_is_refused_naming_the_column(change, field, words):
    with pytest.raises(InvalidInput) as e:
        whatif.compare(BUNDLE, CHANGED, change(applications(3)[0]))
    assert e.value.field == field and words in str(e.value)


def test_no_application_gives_zero_figures():
    w = whatif.compare(BUNDLE, CHANGED, applications(3)[0].head(0))
    assert (w.current.applications, w.current.average_rate, w.current.approval_rate, w.outcome_changes) == (0, None, 0, 0)


# -- from the store ----------------------------------------------------------------------------------


@pytest.fixture
def stories(rt_sqlite):
    rt = rt_sqlite
    ids = {}
    for row in (S1, S2, S3, S4, S5):
        register(rt, row)
        ids[row["uscc"]] = measure(rt, row, consent(rt, row))
    ids[S2["uscc"]] = measure(rt, S2, consent(rt, S2))  # measured again: the latest decision is the application
    return rt, ids


def test_the_stored_applications_come_back_as_they_were_decided(stories):
    rt, ids = stories
    with rt.uow.read() as s:
        table = whatif_svc.applications_since(s, BUSINESS_DATE, BUSINESS_DATE)
        none = whatif_svc.applications_since(s, BUSINESS_DATE + timedelta(days=1), BUSINESS_DATE + timedelta(days=1))
    assert sorted(table["application_id"]) == sorted(ids.values()) and none.height == 0
    decided = vector.evaluate_frame(rt.bundle, table)
    for row, got in zip(table.iter_rows(named=True), decided.iter_rows(named=True), strict=True):
        stored = actions.get_decision(rt, row["application_id"])
        assert (got["outcome"], got["comprehensive_limit_fen"]) == (stored.outcome, stored.comprehensive_limit_fen), row["uscc"]
    w = actions.simulate_policy(rt, policy=rt.bundle, since=BUSINESS_DATE)  # the same bundle: nothing changes
    assert w.outcome_changes == w.limit_changes == 0 and w.current.applications == 5
    with rt.uow.read() as s:  # a first day after today: nothing applied since
        assert whatif_svc.applications_since(s, BUSINESS_DATE + timedelta(days=1), BUSINESS_DATE).height == 0


def test_an_altered_profile_is_refused_not_simulated(stories):
    rt, ids = stories
    with rt.uow.write() as s:
        d = s.get(m.Decision, ids[S3["uscc"]])
        p = s.get(m.Profile, d.profile_sha256)
        p.snapshot = {**p.snapshot, "features": {**p.snapshot["features"], "tax_total_fen": 10**12}}
    with pytest.raises(ProfileIntegrityError):
        actions.simulate_policy(rt, policy=CHANGED, since=BUSINESS_DATE)


def _sandu(rt, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    sandu = str(Path(sys.executable).with_name("sandu"))
    env = {**os.environ, "SANDU_DATABASE_URL": str(rt.engine.url), "SANDU_SECRET_KEY": TEST_SECRET, "COLUMNS": "200"}
    return subprocess.run([sandu, "policy", "simulate", *args], capture_output=True, text=True, env=env, timeout=120, cwd=cwd)


def test_sandu_policy_simulate_prints_and_writes_the_comparison(stories, tmp_path):
    rt, _ = stories
    changed = tmp_path / "changed.toml"
    changed.write_bytes(STRICTER)
    xlsx, csv, js = tmp_path / "w.xlsx", tmp_path / "w.csv", tmp_path / "w.json"
    r = _sandu(rt, "--policy", str(changed), "--since", BUSINESS_DATE.isoformat(), "--out", str(xlsx), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    w = actions.simulate_policy(rt, policy=CHANGED, since=BUSINESS_DATE)
    assert f"{w.outcome_changes} applications change outcome, {w.limit_changes} change limit" in r.stdout and w.outcome_changes > 0
    assert "批准率" in r.stdout and "wenzhou-tech-default@2027.1.0" in r.stdout
    book = load_workbook(xlsx)
    assert book.sheetnames == ["汇总", "结果变化", "逐笔"]
    summary = {row[0]: row[1:] for row in book["汇总"].iter_rows(min_row=2, values_only=True) if row[0]}
    assert summary["申请数"] == (5, 5) and summary["结果改变的申请"][0] == w.outcome_changes
    assert summary["综合授信（万元）"] == (w.current.total_limit_fen / 1_000_000, w.changed.total_limit_fen / 1_000_000)
    assert book["逐笔"].max_row == 6 and book["汇总"]["B7"].number_format == '#,##0.00"万"'
    assert _sandu(rt, "--policy", str(changed), "--since", BUSINESS_DATE.isoformat(), "--out", str(csv), cwd=tmp_path).returncode == 0
    assert pl.read_csv(csv).height == 5
    assert _sandu(rt, "--policy", str(changed), "--since", BUSINESS_DATE.isoformat(), "--out", str(js), cwd=tmp_path).returncode == 0
    assert json.loads(js.read_text(encoding="utf-8")) == json.loads(json.dumps(w.to_json()))
    parquet = tmp_path / "apps.parquet"
    with rt.uow.read() as s:
        whatif_svc.applications_since(s, BUSINESS_DATE, BUSINESS_DATE).write_parquet(parquet)
    r = _sandu(rt, "--policy", str(changed), "--applications", str(parquet), cwd=tmp_path)
    assert r.returncode == 0 and f"{w.outcome_changes} applications change outcome" in r.stdout, r.stdout + r.stderr


@pytest.fixture
def cli(stories, monkeypatch):
    """`sandu policy simulate …` in this process, on the stories' store."""
    from typer.testing import CliRunner

    from sandu.cli.main import app
    from sandu.settings import get_settings

    rt, _ = stories
    monkeypatch.setenv("SANDU_DATABASE_URL", str(rt.engine.url))
    monkeypatch.setenv("SANDU_SECRET_KEY", TEST_SECRET)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, ["policy", "simulate", *args])
    get_settings.cache_clear()


def test_sandu_policy_simulate_refuses_bad_input_and_writes_nothing(cli, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_bytes(RAW.replace(b'one_year = "0.0310"', b'one_year = "0.03105"'))
    good = tmp_path / "good.toml"
    good.write_bytes(STRICTER)
    exists = tmp_path / "exists.xlsx"
    exists.write_bytes(b"mine")
    day = BUSINESS_DATE.isoformat()
    cases = [
        (("--policy", str(broken), "--since", day), f"{broken}:15: lpr[0].one_year: must be a whole basis point"),
        (("--policy", str(tmp_path / "none.toml"), "--since", day), "no such file"),
        (("--policy", str(good)), "give either --since DAY or --applications FILE"),
        (("--policy", str(good), "--since", day, "--applications", str(good)), "give either"),
        (("--policy", str(good), "--since", "2026-13-01"), "--since"),
        (("--policy", str(good), "--since", day, "--out", str(exists)), "the file exists"),
        (("--policy", str(good), "--since", day, "--out", str(tmp_path / "w.pdf")), "out: w.pdf"),
        (("--policy", str(good), "--applications", str(good)), "not a readable Parquet file"),
        (("--policy", str(good), "--since", day, "--max-changes", "10001"), "max_changes"),
    ]
    for args, words in cases:
        r = cli(*args)
        flat = "".join(r.output.split())  # rich wraps long lines at the terminal's width
        assert r.exit_code == 2 and "".join(words.split()) in flat, (args, r.output)
        assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), (args, r.exception)
    assert exists.read_bytes() == b"mine" and not (tmp_path / "w.pdf").exists()


# -- through the API ---------------------------------------------------------------------------------


def test_the_console_asks_for_a_what_if_and_gets_the_same_figures(stories, live_server):
    rt, _ = stories
    with httpx.Client(base_url=live_server, timeout=60) as client:
        risk = login(client, "risk")
        body = {"policy": STRICTER.decode(), "since": BUSINESS_DATE.isoformat(), "max_changes": 3}
        r = client.post("/api/v1/policy/simulations", json=body, headers=risk)
        assert r.status_code == 200, r.text
        w = actions.simulate_policy(rt, policy=CHANGED, since=BUSINESS_DATE, max_changes=3)
        assert r.json() == json.loads(json.dumps(w.to_json()))
        bad = [
            ({**body, "policy": RAW.decode().replace('one_year = "0.0310"', 'one_year = "0.03105"')}, "policy", "line 15: lpr[0].one_year"),
            ({**body, "policy": "not toml = "}, "policy", "not valid TOML"),
            ({**body, "since": "2026-02-30"}, "since", None),
            ({**body, "max_changes": 10_001}, "max_changes", None),
            ({**body, "max_changes": "3"}, "max_changes", None),
            ({**body, "extra": 1}, "extra", None),
        ]
        for payload, field, words in bad:
            r = client.post("/api/v1/policy/simulations", json=payload, headers=risk)
            assert r.status_code == 422, (payload.keys(), r.text)
            err = r.json()["error"]
            assert field in err["field"] and (words is None or words in err["message"]), err
