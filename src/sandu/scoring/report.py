"""How a scorecard performs on a data file: discrimination, calibration, distribution, stability.

Pure over tables (numpy and polars; no training library): `build_report` measures, the
CLI prints the tables, `render_html` writes one self-contained page (inline SVG charts,
inline CSS, no script, nothing fetched) that an air-gapped intranet can open.

- discrimination: AUC, Gini, KS and the ROC curve — needs the target column in the file;
- calibration: observed bad rate against the mean predicted PD in ten score bands;
- distribution: the score's histogram;
- stability: PSI of the score (over the baseline's score deciles) and of each feature
  (over the scorecard's own bins, missing / special / unseen included) against a
  baseline file; PSI < 0.1 stable, 0.1–0.25 watch, ≥ 0.25 shifted.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from sandu.scoring import metrics
from sandu.scoring.scorecard import Scorecard, ScoringInputError, read_column, score_frame

PSI_WATCH = 0.10
PSI_SHIFTED = 0.25
SCORE_BANDS = 10
HISTOGRAM_BINS = 20
ROC_POINTS = 200  # the ROC curve drawn with at most this many points


@dataclass(frozen=True)
class Discrimination:
    rows: int
    bad: int
    auc: float
    gini: float
    ks: float
    roc: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Stability:
    name: str
    psi: float
    bands: tuple[tuple[str, float, float], ...]  # (band, baseline share, actual share)

    @property
    def verdict(self) -> str:
        return "shifted" if self.psi >= PSI_SHIFTED else "watch" if self.psi >= PSI_WATCH else "stable"


@dataclass(frozen=True)
class Report:
    model: str
    model_sha256: str
    rows: int
    discrimination: Discrimination | None
    calibration: tuple[metrics.Band, ...]
    histogram: tuple[tuple[float, float, int], ...]  # (low, high, count)
    score_stability: Stability | None
    feature_stability: tuple[Stability, ...] = field(default=())
    notes: tuple[str, ...] = ()


def _target(frame: pl.DataFrame, card: Scorecard) -> np.ndarray | None:
    target = card.artifact.get("target") or {}
    column, bad = target.get("column"), target.get("bad")
    if not isinstance(column, str) or column not in frame.columns:
        return None
    col = frame.get_column(column)
    if col.null_count():
        raise ScoringInputError(column, f"is empty on row {int(col.is_null().arg_true()[0]) + 1}: the target must be known on every row to measure")
    return (col.cast(pl.String) == str(bad)).to_numpy().astype(np.int8)


def _bin_shares(card: Scorecard, frame: pl.DataFrame) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per feature: the band names and each band's share of the rows (the scorecard's bins)."""
    out = {}
    for f in card.features:
        _, idx = read_column(f, frame.get_column(f.name))
        names = [*f.labels, "missing", "special", "unseen"]
        slot = np.where(idx >= 0, idx, len(f.labels) + (-idx - 1))
        counts = np.bincount(slot, minlength=len(names)).astype(np.float64)
        out[f.name] = (names, counts / max(1, frame.height))
    return out


def build_report(card: Scorecard, frame: pl.DataFrame, baseline: pl.DataFrame | None = None) -> Report:
    if frame.height == 0:
        raise ScoringInputError("--data", "has no rows to measure")
    scored = score_frame(card, frame, max_reasons=0)
    score = scored.get_column("score").to_numpy().astype(np.float64)
    pd = scored.get_column("pd").to_numpy()
    notes = []
    y = _target(frame, card)
    disc, calib = None, ()
    if y is None:
        notes.append(f"the target column {card.artifact.get('target', {}).get('column')!r} is not in the file: no discrimination or calibration")
    elif 0 < y.sum() < y.size:
        fpr, tpr = metrics.roc_curve(y, pd)
        step = max(1, math.ceil(fpr.size / ROC_POINTS))
        keep = np.r_[np.arange(0, fpr.size, step), fpr.size - 1]
        a = metrics.auc(y, pd)
        disc = Discrimination(int(y.size), int(y.sum()), a, 2 * a - 1, float(np.max(np.abs(tpr - fpr))),
                              tuple((float(fpr[i]), float(tpr[i])) for i in np.unique(keep)))
        calib = tuple(metrics.calibration(y, score, pd, SCORE_BANDS))
    else:
        notes.append("the file holds one class only: no discrimination")
        calib = tuple(metrics.calibration(y, score, pd, SCORE_BANDS))
    lo, hi = float(score.min()), float(score.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(score, bins=edges)
    histogram = tuple((float(edges[i]), float(edges[i + 1]), int(counts[i])) for i in range(HISTOGRAM_BINS))
    score_stab, feat_stab = None, ()
    if baseline is not None:
        if baseline.height == 0:
            raise ScoringInputError("--baseline", "has no rows to compare with")
        base_score = score_frame(card, baseline, max_reasons=0).get_column("score").to_numpy().astype(np.float64)
        cut = metrics.quantile_edges(base_score, SCORE_BANDS)
        e, a = metrics.shares(base_score, cut)[:-1], metrics.shares(score, cut)[:-1]
        names = [f"< {cut[0]:g}"] + [f"{cut[i]:g}–{cut[i + 1]:g}" for i in range(cut.size - 1)] + [f"≥ {cut[-1]:g}"] if cut.size else ["all"]
        score_stab = Stability("score", metrics.psi(e, a), tuple(zip(names, e.tolist(), a.tolist(), strict=True)))
        now, before = _bin_shares(card, frame), _bin_shares(card, baseline)
        feat_stab = tuple(
            Stability(f.name, metrics.psi(before[f.name][1], now[f.name][1]),
                      tuple((n, float(b), float(c)) for n, b, c in zip(now[f.name][0], before[f.name][1], now[f.name][1], strict=True) if b or c))
            for f in card.features
        )
    return Report(card.label, card.sha256, frame.height, disc, calib, histogram, score_stab, feat_stab, tuple(notes))


# ------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans",system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#1d2733;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d5dbe3;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}td,th{padding:.25rem .6rem;border-bottom:1px solid #e6eaf0;text-align:right}
th{background:#f3f6f9}td:first-child,th:first-child{text-align:left}.stable{color:#1a7f37}.watch{color:#9a6700}.shifted{color:#cf222e;font-weight:bold}
.kpi{display:inline-block;margin-right:2rem}.kpi b{font-size:1.4rem;display:block}svg{background:#fbfcfd;border:1px solid #e6eaf0}
"""


def _svg_roc(d: Discrimination, size: int = 320) -> str:
    pad = 30
    span = size - 2 * pad

    def xy(x: float, y: float) -> str:
        return f"{pad + x * span:.1f},{size - pad - y * span:.1f}"

    pts = " ".join(xy(x, y) for x, y in d.roc)
    return (f'<svg role="img" aria-label="ROC curve" width="{size}" height="{size}" viewBox="0 0 {size} {size}">'
            f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#bbb" stroke-dasharray="4"/>'
            f'<polyline fill="none" stroke="#0b62d6" stroke-width="2" points="{pts}"/>'
            f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle" font-size="11">false-positive rate (goods refused)</text>'
            f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10,{size / 2})" text-anchor="middle">true-positive rate (bads caught)</text>'
            "</svg>")


def _svg_bars(values: list[float], labels: list[str], title: str, width: int = 640, height: int = 220,
              line: list[float] | None = None) -> str:
    pad_l, pad_b, pad_t = 40, 40, 10
    n = max(1, len(values))
    top = max([*values, *(line or []), 1e-12])
    bw = (width - pad_l - 10) / n
    parts = [f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    span = height - pad_b - pad_t
    for i, v in enumerate(values):
        h = v / top * span
        parts.append(f'<rect x="{pad_l + i * bw + 1:.1f}" y="{height - pad_b - h:.1f}" width="{max(1.0, bw - 2):.1f}" height="{h:.1f}" fill="#8cb4ee">'
                     f"<title>{html.escape(labels[i])}: {v:.4g}</title></rect>")
        if n <= 12 or i % max(1, n // 10) == 0:
            parts.append(f'<text x="{pad_l + (i + 0.5) * bw:.1f}" y="{height - pad_b + 14}" font-size="9" text-anchor="middle">{html.escape(labels[i][:14])}</text>')
    if line:
        pts = " ".join(f"{pad_l + (i + 0.5) * bw:.1f},{height - pad_b - v / top * span:.1f}" for i, v in enumerate(line))
        parts.append(f'<polyline fill="none" stroke="#cf222e" stroke-width="2" points="{pts}"/>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" font-size="11" text-anchor="middle">{html.escape(title)}</text></svg>')
    return "".join(parts)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render_html(r: Report) -> str:
    """The report as one self-contained HTML page."""
    e = html.escape
    out = [f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>Scorecard report — {e(r.model)}</title>'
           f"<style>{_CSS}</style></head><body>",
           f"<h1>Scorecard report · {e(r.model)}</h1><p>model sha256 <code>{e(r.model_sha256)}</code> · {r.rows:,} rows</p>"]
    out += [f"<p>{e(n)}</p>" for n in r.notes]
    if r.discrimination:
        d = r.discrimination
        out.append("<h2>Discrimination</h2>")
        out.append("".join(f'<span class="kpi">{k}<b>{v}</b></span>' for k, v in (("AUC", f"{d.auc:.4f}"), ("Gini", f"{d.gini:.4f}"), ("KS", f"{d.ks:.4f}"),
                                                                               ("rows", f"{d.rows:,}"), ("bad", f"{d.bad:,}"))))
        out.append(_svg_roc(d))
    if r.calibration:
        out.append("<h2>Calibration by score band</h2>")
        out.append(_svg_bars([b.bad_rate for b in r.calibration], [f"{b.low:g}–{b.high:g}" for b in r.calibration],
                             "observed bad rate (bars) and mean predicted PD (line), low scores first", line=[b.pd_mean for b in r.calibration]))
        out.append(_table(["score band", "rows", "bad", "bad rate", "mean PD"],
                          [[f"{b.low:g}–{b.high:g}", f"{b.count:,}", f"{b.bad:,}", f"{b.bad_rate:.2%}", f"{b.pd_mean:.2%}"] for b in r.calibration]))
    out.append("<h2>Score distribution</h2>")
    out.append(_svg_bars([float(c) for _, _, c in r.histogram], [f"{lo:.0f}–{hi:.0f}" for lo, hi, _ in r.histogram], "rows per score band"))
    if r.score_stability:
        out.append("<h2>Stability against the baseline (PSI)</h2>")
        rows = [[e(s.name), f"{s.psi:.4f}", f'<span class="{s.verdict}">{s.verdict}</span>'] for s in (r.score_stability, *r.feature_stability)]
        out.append(_table(["", "PSI", "verdict"], rows))
        s = r.score_stability
        out.append(_svg_bars([a for _, _, a in s.bands], [n for n, _, _ in s.bands], "score share per baseline decile (bars: now, line: baseline)",
                             line=[b for _, b, _ in s.bands]))
        for f in r.feature_stability:
            out.append(f"<h3>{e(f.name)} · PSI {f.psi:.4f}</h3>")
            out.append(_table(["bin", "baseline", "now"], [[e(n), f"{b:.2%}", f"{a:.2%}"] for n, b, a in f.bands]))
    out.append("<p><small>PSI: below 0.10 stable, 0.10–0.25 watch, 0.25 and above shifted. Written by <code>sandu model report</code>.</small></p>")
    out.append("</body></html>\n")
    return "".join(out)
