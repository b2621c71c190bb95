"""The pre-credit kernel: a batch of enterprise rows in, one decision per row out. Pure.

`precredit(models, frame)` runs, on a polars frame of the columns of
`sandu.batch.schema` whose rows passed the row checks:

1. the profile features, as `sandu.sources.profile.build_profile` computes them from
   the payloads `sandu.simulate.universe.source_payloads` makes of a row (every source
   read, nothing unavailable), with the same float arithmetic and the same rounding
   (Python's `round(x, 6)`: numpy's rounding, redone by Python in the rows within a
   hair of a half);
2. the tech evaluation (`sandu.scoring.tech_vector`), the risk scorecard
   (`sandu.scoring.scorecard.score_frame`; the PD as the policy sees it: half-up to 6
   places of its shortest text, `RiskScore.pd_rounded`);
3. the credit policy (`sandu.policy.vector.evaluate_frame`): the feature columns are
   named as the policy's `INPUT_SCHEMA`, as `read_features` maps a profile;
4. the reason codes: the policy's refusals (``RISK_GRADE`` … in the order
   `sandu.policy.explain` writes them) and the scorecard's top reasons — the feature each is
   about by its name (``risk_reason_codes``) and in words with its bin (``risk_reasons``).

The Spark engine calls `precredit_arrow`, the same function over Arrow tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from sandu.batch.schema import ASSETS, check_rows, typed
from sandu.policy import rules
from sandu.policy.bundle import PolicyBundle
from sandu.policy.vector import ASSET, INPUT_SCHEMA, evaluate_frame
from sandu.scoring.risk import PD_PLACES
from sandu.scoring.scorecard import MAX_REASONS, Scorecard, lists_by_row, score_frame
from sandu.scoring.tech_config import TechConfig
from sandu.scoring.tech_vector import evaluate_tech_frame
from sandu.simulate.geo import CERT_GAOXIN, CERT_KEJIXING, CERT_XIAOJUREN, CERT_ZHUANJINGTEXIN

PLACES = 6  # `sandu.sources.profile` rounds ratios and growths to 6 places
HALF_TOLERANCE = 1e-6  # a scaled value this close to a half is rounded again by Python
CERTIFICATIONS = tuple(sorted([(CERT_GAOXIN, "cert_gaoxin"), (CERT_ZHUANJINGTEXIN, "cert_zhuanjingtexin"), (CERT_XIAOJUREN, "cert_xiaojuren"),
                               (CERT_KEJIXING, "cert_kejixing")]))  # by name: the profile's list is sorted
SLOTS = ("secured", "credit", "guaranteed")  # a batch has no project: its slot is never filled
OUTPUT_SCHEMA: dict[str, Any] = {
    "uscc": pl.String,
    "eligible": pl.Boolean,
    "outcome": pl.String,
    "risk_grade": pl.String,
    "risk_score": pl.Int64,
    "risk_pd": pl.Decimal(38, 18),
    "tech_grade": pl.String,
    "tech_score": pl.Decimal(38, 1),
    "tech_most_pass": pl.Boolean,
    "comprehensive_limit_fen": pl.Int64,
    "approved_fen": pl.Int64,
    "inclusive_small_micro": pl.Boolean,
    **{k: t for slot in SLOTS for k, t in (
        (f"{slot}_product", pl.String), (f"{slot}_limit_fen", pl.Int64), (f"{slot}_approved_fen", pl.Int64), (f"{slot}_rate_bp", pl.Int64),
        (f"{slot}_annualized_rate", pl.Decimal(38, 18)), (f"{slot}_lpr_tenor", pl.String))},
    "policy_reasons": pl.List(pl.String),
    "risk_reason_codes": pl.List(pl.String),
    "risk_reasons": pl.List(pl.String),
}


@dataclass(frozen=True)
class Models:
    """What a decision is made with: the policy, the scorecard, the tech config and the day."""

    bundle: PolicyBundle
    card: Scorecard
    tech: TechConfig
    as_of: date


def round_places(x: np.ndarray, places: int = PLACES) -> np.ndarray:
    """Python's `round(v, places)` of each float (NaN stays NaN)."""
    out = np.round(x, places)
    scaled = x * 10.0**places
    near = np.flatnonzero(np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < HALF_TOLERANCE)
    for i in near:
        out[i] = round(float(x[i]), places)
    return out


def _ratio(num: pl.Series, den: pl.Series) -> pl.Series:
    """`profile._ratio`: num / den rounded to 6 places; null when den ≤ 0."""
    ok = (den > 0).to_numpy()
    q = num.to_numpy().astype(np.float64) / np.where(ok, den.to_numpy(), 1).astype(np.float64)
    return pl.Series(round_places(q)).set(pl.Series(~ok), None)


def _growth(now: pl.Series, before: pl.Series) -> pl.Series:
    """`profile._growth`: now / before − 1 rounded to 6 places; null when before is 0."""
    ok = (before != 0).to_numpy()
    q = now.to_numpy().astype(np.float64) / np.where(ok, before.to_numpy(), 1).astype(np.float64) - 1
    return pl.Series(round_places(q)).set(pl.Series(~ok), None)


def features(frame: pl.DataFrame) -> pl.DataFrame:
    """The profile's features (and ``collateral``) of each row, named as `build_profile` names them."""
    f = typed(frame)
    col = f.get_column
    out = {
        "uscc": col("uscc"),
        "has_bank_account": col("has_bank_account"),
        "tax_credit_grade": col("tax_credit_grade"),
        **{f"revenue_fen_y{y}": col(f"revenue_fen_y{y}") for y in (1, 2, 3)},
        "vat_fen": col("vat_fen_y3"),
        "cit_fen": col("cit_fen_y3"),
        "rd_expense_fen": col("rd_expense_fen_y3"),
        "tax_total_fen": col("vat_fen_y3") + col("cit_fen_y3"),
        "revenue_fen": col("revenue_fen_y3"),
        "rd_ratio": _ratio(col("rd_expense_fen_y3"), col("revenue_fen_y3")),
        "revenue_growth": _growth(col("revenue_fen_y3"), col("revenue_fen_y2")),
        "revenue_growth_prev": _growth(col("revenue_fen_y2"), col("revenue_fen_y1")),
        "cit_margin": _ratio(col("cit_fen_y3"), col("revenue_fen_y3")),
        "rd_expense_fen_prev": col("rd_expense_fen_y2"),
        "rd_growth": _growth(col("rd_expense_fen_y3"), col("rd_expense_fen_y2")),
        "sales_invoice_fen_12m": col("sales_invoice_fen_12m"),
        "customer_count_12m": col("customer_count_12m"),
        "headcount": col("headcount"),
        "tech_staff": col("tech_staff"),
        "tech_staff_ratio": _ratio(col("tech_staff"), col("headcount")),
        "headcount_growth": _growth(col("headcount"), col("headcount_12m_ago")),
        "si_arrears_months": col("si_arrears_months"),
        "electricity_growth": _growth(col("electricity_kwh_12m"), col("electricity_kwh_prev_12m")),
        "utility_arrears": col("utility_arrears"),
        **{k: col(k) for k in ("invention_patents", "utility_models", "software_copyrights")},
        "loans_outstanding_fen": col("loans_outstanding_fen"),
        "secured_debt_fen": col("bureau_secured_debt_fen"),
        **{k: col(k) for k in ("overdue_count_24m", "max_overdue_days_24m", "queries_3m")},
        "inflow_fen_12m": col("inflow_fen_12m"),
        "outflow_fen_12m": col("outflow_fen_12m"),
    }
    revenue_ok = pl.Series((col("revenue_fen_y3") != 0).to_numpy())
    out["debt_to_revenue"] = _ratio(col("loans_outstanding_fen"), col("revenue_fen_y3")).set(~revenue_ok, None)
    out["flow_to_revenue"] = _ratio(col("inflow_fen_12m"), col("revenue_fen_y3")).set(~revenue_ok, None)
    certs = np.column_stack([col(flag).to_numpy() for _, flag in CERTIFICATIONS])
    out["certifications"] = lists_by_row(certs, _texts_at([name for name, _ in CERTIFICATIONS], np.nonzero(certs)[1]))
    owned = np.column_stack([(col(f"col{k}_kind") != "").to_numpy() for k in ASSETS])
    rows, slots = np.nonzero(owned)  # row-major: each row's assets in order
    at = slots * f.height + rows  # where each owned asset is in the slots' columns put end to end
    fields = {"kind": "kind", "appraised_value_fen": "appraised_fen", "secured_debt_fen": "secured_debt_fen"}
    parts = [pl.concat([col(f"col{k}_{name}") for k in ASSETS]).gather(at).to_arrow() for name in fields.values()]
    out["collateral"] = lists_by_row(owned, pa.StructArray.from_arrays(parts, names=list(fields))).cast(pl.List(ASSET))
    return pl.DataFrame([s.alias(k) for k, s in out.items()])


def _texts_at(texts: list[str], at: np.ndarray) -> pa.Array:
    """`texts[i]` for each i of `at`, as an Arrow array — gathered by polars: pyarrow, given a Python list or a numpy
    array, imports pandas (0.3 s, once per process) to ask whether it is a pandas object."""
    return pl.Series(texts, dtype=pl.String).gather(at).to_arrow()


def pd_rounded(card: Scorecard, points: np.ndarray) -> pl.Series:
    """`RiskScore.pd_rounded` of the PD of each total of `points`: its shortest text rounded half-up to 6 places, as a
    decimal. The exponential is numpy's, which may differ from libm's `math.exp` (`Scorecard.pd_of_points`) in the last
    bit — a millionth of what the tolerance allows; a PD within a hair of a half is computed again exactly, then rounded
    by Python."""
    scaled = 1.0 / (1.0 + np.exp(-card.logit_of_points(points))) * 1e6
    millionths = np.floor(scaled + 0.5).astype(np.int64)
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < HALF_TOLERANCE):
        exact = float(card.pd_of_points(float(points[i])))
        millionths[i] = int(Decimal(repr(exact)).quantize(PD_PLACES, rounding=ROUND_HALF_UP) * 1_000_000)
    return (pl.Series("risk_pd", millionths).cast(pl.Decimal(38, 0)) * PD_PLACES).cast(pl.Decimal(38, 18))


def policy_reasons(decided: pl.DataFrame) -> pl.Series:
    """The refusal codes `sandu.policy.explain` writes, in its order, from the vector form's flags
    (no project and every source read: no PROJECT_TENOR, no DATA_GAP)."""
    flag = {c: decided.get_column(c).to_numpy() for c in ("data_missing", "eligible", "risk_declined", "overdue_count_exceeded",
                                                          "overdue_days_exceeded", "tax_below_min", "tax_grade_refused")}
    general = ~flag["data_missing"]
    codes = {"DATA_INSUFFICIENT": flag["data_missing"], "RISK_GRADE": general & flag["risk_declined"],
             "OVERDUE_COUNT": general & flag["overdue_count_exceeded"], "OVERDUE_DAYS": general & flag["overdue_days_exceeded"],
             "TAX_BELOW_MIN": flag["eligible"] & flag["tax_below_min"], "TAX_GRADE": flag["eligible"] & flag["tax_grade_refused"]}
    refused = np.column_stack(list(codes.values()))
    no_offer = np.logical_and.reduce([decided.get_column(f"{slot}_product").is_null().to_numpy() for slot in rules.SLOTS])
    present = np.column_stack([refused, no_offer & ~refused.any(axis=1)])
    return lists_by_row(present, _texts_at([*codes, "NO_PRODUCT"], np.nonzero(present)[1])).alias("policy_reasons")


def _side_by_side(*frames: pl.DataFrame) -> pl.DataFrame:
    assert len({f.height for f in frames}) <= 1, "the steps give one row per input row"
    return pl.DataFrame([s for f in frames for s in f.get_columns()])


def precredit(models: Models, frame: pl.DataFrame) -> pl.DataFrame:
    """One row of `OUTPUT_SCHEMA` per row of `frame` (rows that passed `check_rows`), in order."""
    f = features(frame)
    tech = evaluate_tech_frame(f, models.tech)
    scored = score_frame(models.card, f.select(ft.name for ft in models.card.features), MAX_REASONS, pd=False, codes=True, lists=True)
    n = f.height
    nothing = ("project_capex_fen", "project_annual_cash_flow_fen", "project_tenor_years", "guarantee_fen")
    app = pl.DataFrame([tech["tech_grade"], tech["tech_most_pass"], pd_rounded(models.card, scored["points"].to_numpy())]).with_columns(
        *(pl.repeat(pl.lit([], dtype=pl.List(pl.String)), n).alias(c) for c in ("sources_not_read", "sources_unavailable")),
        *(pl.repeat(pl.lit(None, dtype=INPUT_SCHEMA[c]), n).alias(c) for c in nothing))
    policy_input = _side_by_side(f.select(c for c in INPUT_SCHEMA if c in f.columns), app)
    decided = evaluate_frame(models.bundle, policy_input, models.as_of)
    risk_reasons, risk_reason_codes = scored["reasons"].alias("risk_reasons"), scored["reason_codes"].alias("risk_reason_codes")
    out = _side_by_side(f.select("uscc"), decided, tech.select("tech_score", "tech_most_pass"), app.select("risk_pd"), scored.select(pl.col("score").alias("risk_score")),
                        pl.DataFrame([risk_reasons, risk_reason_codes, policy_reasons(decided)]))
    assert out.select(pl.col("approved_fen") == pl.sum_horizontal(f"{slot}_approved_fen" for slot in SLOTS)).to_series().all(), \
        "the approved amount is its offers' approved parts"
    assert out.select(pl.all_horizontal(pl.col(f"{slot}_approved_fen").is_between(0, pl.col(f"{slot}_limit_fen")) for slot in SLOTS)).to_series().all(), \
        "an offer's approved part is within its limit"
    return out.select(pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items())


ROW = "_row"  # the row's number in the input file (from 0)
REJECT = "_reject"  # why the row was rejected; null when it was decided
BATCH_SCHEMA: dict[str, Any] = {ROW: pl.Int64, **OUTPUT_SCHEMA, REJECT: pl.String}


def process(models: Models, frame: pl.DataFrame) -> pl.DataFrame:
    """A batch of input rows (with their `ROW` numbers) → one row of `BATCH_SCHEMA` each: the decision, or
    the reason the row was rejected (`check_rows`). The one function both engines run."""
    checks = check_rows(frame, tuple(sorted(models.bundle.secured.ltv)))
    ok = pl.Series(checks.ok)
    decided = precredit(models, frame.filter(ok)).with_columns(frame.get_column(ROW).filter(ok), pl.lit(None, dtype=pl.String).alias(REJECT))
    rejected = frame.select(pl.col(ROW).cast(pl.Int64), pl.col("uscc").cast(pl.String)).gather(checks.rejected).with_columns(
        checks.reasons.alias(REJECT))
    out = pl.concat([decided, rejected], how="diagonal_relaxed").sort(ROW) if checks.rejected.size else decided
    assert out.height == frame.height, "every row is decided or rejected, once"
    return out.select(pl.col(c).cast(t) for c, t in BATCH_SCHEMA.items())


def process_arrow(models: Models, batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """`process` over Arrow (the Spark engine's entry)."""
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return process(models, frame).to_arrow()
