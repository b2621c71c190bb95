"""Expected credit loss (IFRS 9 / 新金融工具准则): pure.

Each open drawing is staged by the bundle's rules (`PolicyBundle.expected_loss`) — stage 3 when credit-impaired
(beyond `stage3_dpd` days past due, or classified in `stage3_classes`), stage 2 on a significant increase in credit
risk (beyond `stage2_dpd`, or a risk grade `stage2_grade_downgrade` grades worse than at origination), stage 1
otherwise — and provisioned ECL = PD × LGD × EAD: the 12-month PD (the scorecard's calibrated PD of the borrower's
latest decision) in stage 1, the lifetime PD over the drawing's remaining term, 1 − (1 − PD)^years, in stage 2, and 1
in stage 3; LGD by product kind; EAD what is owed on the drawing. An active revolving line's undrawn limit adds
`ccf` × undrawn as an exposure at the line's worst stage (stage 1 without a drawing). Amounts are rounded to the
fen once per exposure, half to even.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import polars as pl

from sandu.analytics.book import EPOCH_ORDINAL
from sandu.domain.enums import LineStatus
from sandu.policy.bundle import GRADE_ORDER, ExpectedLoss

DAYS_PER_YEAR = 365
ONE = Decimal(1)
_CONTEXT = decimal.Context(prec=34, rounding=ROUND_HALF_EVEN)
LINE_RISK_SCHEMA = {"line_id": pl.Int64, "product": pl.String, "kind": pl.String, "branch": pl.String, "limit_fen": pl.Int64,
                    "drawn_principal_fen": pl.Int64, "revolving_active": pl.Boolean, "origination_grade": pl.String,
                    "current_grade": pl.String, "pd_12m": pl.String}
DRAWING_RISK_SCHEMA = {"line_id": pl.Int64, "drawing_id": pl.Int64, "owed_fen": pl.Int64, "dpd": pl.Int64, "risk_class": pl.String,
                       "maturity_on": pl.Date}


@dataclass(frozen=True)
class Exposure:
    line_id: int
    drawing_id: int | None  # None: the undrawn part of the line
    product: str
    branch: str
    stage: int
    pd: Decimal
    lgd: Decimal
    ead_fen: int
    ecl_fen: int


GRADE_RANK = {g: i for i, g in enumerate(GRADE_ORDER)}


def downgrades(origination: np.ndarray, current: np.ndarray) -> np.ndarray:
    """How many risk grades worse each `current` is than its `origination` (0 when better or either unknown)."""
    def rank(grades: np.ndarray) -> np.ndarray:
        return pl.Series(grades.tolist(), dtype=pl.String).replace_strict(GRADE_RANK, default=-1, return_dtype=pl.Int64).to_numpy()

    then, now = rank(origination), rank(current)
    return np.where((then >= 0) & (now >= 0), np.maximum(0, now - then), 0)


def downgrade(origination: str, current: str) -> int:
    """`downgrades` of one line."""
    return int(downgrades(np.array([origination], dtype=object), np.array([current], dtype=object))[0])


def stages(rules: ExpectedLoss, dpd: np.ndarray, risk_class: np.ndarray, grades_down: np.ndarray) -> np.ndarray:
    """Each exposure's IFRS 9 stage: 3 when credit-impaired, 2 on a significant increase in credit risk, else 1."""
    three = (dpd > rules.stage3_dpd) | np.isin(risk_class, list(rules.stage3_classes))
    two = (dpd > rules.stage2_dpd) | (grades_down >= rules.stage2_grade_downgrade)
    return np.where(three, 3, np.where(two, 2, 1)).astype(np.int64)


def stage(rules: ExpectedLoss, dpd: int, risk_class: str, grades_down: int) -> int:
    """`stages` of one exposure."""
    return int(stages(rules, np.array([dpd]), np.array([risk_class], dtype=object), np.array([grades_down]))[0])


def lifetime_pd(pd_12m: Decimal, years: Decimal) -> Decimal:
    """1 − (1 − PD)^years: the probability of default over `years` at a constant 12-month PD (at least the 12-month PD)."""
    assert Decimal(0) <= pd_12m <= 1 and years >= 0
    if years <= 1:
        return pd_12m
    with decimal.localcontext(_CONTEXT):
        return 1 - (1 - pd_12m) ** years


_SAFE = 1 << 62  # products below it are computed in int64


def fen_of(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator ÷ denominator (integers; denominators positive) rounded to the fen once, half to even: in int64 when
    every value fits, else in exact Python integers."""
    q = numerator // denominator
    twice = 2 * (numerator - q * denominator)
    up = (twice > denominator) | ((twice == denominator) & (q % 2 == 1))
    return (q + up.astype(np.int64)).astype(np.int64)


def _product_fen(factor_n: list[int], factor_d: list[int], codes: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """round_half_even(amount × n ÷ d) of each row, (n, d) the exact ratio of its factor (`codes` index the lists)."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    top = max(factor_n) * max(int(amount.max()), 1)
    if top < _SAFE and max(factor_d) < _SAFE:
        n, d = np.array(factor_n, dtype=np.int64)[codes], np.array(factor_d, dtype=np.int64)[codes]
        return fen_of(amount.astype(np.int64) * n, d)
    n, d = np.array(factor_n, dtype=object)[codes], np.array(factor_d, dtype=object)[codes]
    return fen_of(amount.astype(object) * n, d)


@dataclass(frozen=True)
class Exposures:
    """Exposures as columns (one row a drawing, or a line's undrawn part with `drawing_id` -1): each with its line,
    product, sub-branch, stage, PD and LGD (Decimals), EAD and ECL in fen."""

    line_id: np.ndarray
    drawing_id: np.ndarray
    product: np.ndarray
    branch: np.ndarray
    stage: np.ndarray
    pd: np.ndarray
    lgd: np.ndarray
    ead_fen: np.ndarray
    ecl_fen: np.ndarray

    def __len__(self) -> int:
        return len(self.line_id)

    def __iter__(self) -> Iterator[Exposure]:
        """Row by row: the drawings by line and drawing, then the lines' undrawn parts by line."""
        return iter(self.rows())

    def rows(self) -> list[Exposure]:
        return [Exposure(int(a), None if int(b) < 0 else int(b), c, d, int(e), f, g, int(h), int(i))
                for a, b, c, d, e, f, g, h, i in zip(self.line_id.tolist(), self.drawing_id.tolist(), self.product.tolist(), self.branch.tolist(),
                                                     self.stage.tolist(), self.pd.tolist(), self.lgd.tolist(), self.ead_fen.tolist(),
                                                     self.ecl_fen.tolist(), strict=True)]


def line_risk(lines: pl.DataFrame, current: pl.DataFrame, drawings: pl.DataFrame, kinds: dict[str, str], as_of: date) -> pl.DataFrame:
    """As of the end of `as_of`: every line opened by then (`lines`, as `sandu.analytics.service.LINE_SCHEMA`) with its product kind, its origination risk grade and its
    current one and 12-month PD (`current`, as `sandu.analytics.service.current_grades` reads them: the borrower's latest decision made as of a day on or before
    `as_of`; the origination decision's where none, and a PD of 1 where neither recorded one — counted as certain
    loss, never as none), what its owing drawings' principal is (`drawings`), and whether its undrawn limit counts as
    drawable: revolving, opened, not yet expired by then (end of day expires a line the day before it ends), and not
    frozen or closed now — a line's freezes keep no history, so a line frozen or closed now adds no undrawn exposure on
    earlier days either."""
    drawn = drawings.group_by("line_id").agg(pl.col("principal_fen").sum().alias("drawn_principal_fen"))
    active = pl.col("revolving") & ((pl.col("status") == LineStatus.ACTIVE.value)
                                    | ((pl.col("status") == LineStatus.EXPIRED.value) & (pl.col("expires_on") > as_of + timedelta(days=1))))
    kind = pl.col("product").replace_strict(kinds, default="credit", return_dtype=pl.String)
    return (lines.filter(pl.col("opened_on") <= as_of).join(current, on="enterprise_id", how="left")
            .join(drawn, on="line_id", how="left")
            .select("line_id", "product", kind.alias("kind"), "branch", "limit_fen",
                    pl.col("drawn_principal_fen").fill_null(0), active.fill_null(False).alias("revolving_active"),
                    pl.col("risk_grade").alias("origination_grade"),
                    pl.coalesce("grade_now", "risk_grade").alias("current_grade"),
                    pl.coalesce("pd_now", "pd_12m", pl.lit("1")).alias("pd_12m"))
            .sort("line_id"))


class _Factors:
    """Distinct (PD, LGD) pairs, coded so that each is converted to an exact ratio once."""

    def __init__(self) -> None:
        self.codes: dict[tuple[Decimal, Decimal], int] = {}
        self.values: list[tuple[Decimal, Decimal]] = []

    def code(self, pd: Decimal, lgd: Decimal) -> int:
        key = (pd, lgd)
        if key not in self.codes:
            self.codes[key] = len(self.values)
            self.values.append(key)
        return self.codes[key]

    def ratios(self) -> tuple[list[int], list[int]]:
        """PD × LGD of each pair as (numerators, denominators)."""
        pairs = [(pd.as_integer_ratio(), lgd.as_integer_ratio()) for pd, lgd in self.values]
        return [a * c for (a, _), (c, _) in pairs], [b * d for (_, b), (_, d) in pairs]


def exposure_columns(rules: ExpectedLoss, as_of: date, lines: pl.DataFrame, drawings: pl.DataFrame) -> Exposures:
    """The exposures as of `as_of`: each drawing of `lines` in `drawings` (line_id, drawing_id, owed_fen, dpd,
    risk_class, maturity_on) staged and provisioned, and each line's undrawn part where it is an active revolving
    line (`lines`: line_id, product, kind, branch, limit_fen, drawn_principal_fen, revolving_active, origination_grade,
    current_grade, pd_12m as a decimal string), at the line's worst stage (stage 1 without a drawing)."""
    lines = lines.with_columns(
        pl.Series("down", downgrades(lines["origination_grade"].to_numpy(), lines["current_grade"].to_numpy()), dtype=pl.Int64))
    pds = {text: Decimal(text) for text in lines["pd_12m"].unique().to_list()}
    factors = _Factors()

    def factor(text: str, kind: str, stage_: int, days_: int) -> int:
        """The code of the (PD, LGD) of an exposure in `stage_` with `days_` to maturity: PD 1 in stage 3, the 12-month
        PD in stage 1, the lifetime PD over the remaining term in stage 2."""
        pd = ONE if stage_ == 3 else pds[text] if stage_ == 1 else lifetime_pd(pds[text], Decimal(days_) / DAYS_PER_YEAR)
        return factors.code(pd, rules.lgd[kind])

    d = drawings.join(lines.select("line_id", "product", "kind", "branch", "down", "pd_12m"), on="line_id", how="inner").sort("line_id", "drawing_id")
    st = stages(rules, d["dpd"].to_numpy(), d["risk_class"].to_numpy(), d["down"].to_numpy())
    days = np.maximum(0, (d["maturity_on"].cast(pl.Int64) - (as_of.toordinal() - EPOCH_ORDINAL)).to_numpy())
    worst = (pl.DataFrame({"line_id": d["line_id"], "stage": st}, schema={"line_id": pl.Int64, "stage": pl.Int64})
             .group_by("line_id").agg(pl.col("stage").max().alias("worst")))
    u = (lines.join(worst, on="line_id", how="left").with_columns(pl.col("worst").fill_null(1))
         .with_columns(pl.when(pl.col("revolving_active")).then((pl.col("limit_fen") - pl.col("drawn_principal_fen")).clip(lower_bound=0))
                       .otherwise(0).alias("undrawn"))
         .filter(pl.col("undrawn") > 0).sort("line_id"))
    u_stage = u["worst"].to_numpy()
    # the undrawn part is drawn within the line's 12-month term: its 12-month PD (1 in stage 3)
    keys = pl.concat([
        pl.DataFrame({"pd_12m": d["pd_12m"], "kind": d["kind"], "stage": st, "days": np.where(st == 2, days, 0)}),
        pl.DataFrame({"pd_12m": u["pd_12m"], "kind": u["kind"], "stage": np.where(u_stage == 3, 3, 1), "days": np.zeros(len(u), dtype=np.int64)}),
    ]).cast({"stage": pl.Int64, "days": pl.Int64}).with_row_index("row")
    distinct = keys.select("pd_12m", "kind", "stage", "days").unique()  # each (PD, LGD) worked out once, not once per exposure
    distinct = distinct.with_columns(pl.Series("code", [factor(*k) for k in distinct.iter_rows()], dtype=pl.Int64))
    codes = keys.join(distinct, on=["pd_12m", "kind", "stage", "days"], how="left").sort("row")["code"].to_numpy()
    ccf_n, ccf_d = rules.ccf.as_integer_ratio()
    ead = np.concatenate([d["owed_fen"].to_numpy(), _product_fen([ccf_n], [ccf_d], np.zeros(len(u), dtype=np.int64), u["undrawn"].to_numpy())])
    pd_of, lgd_of = np.empty(len(factors.values), dtype=object), np.empty(len(factors.values), dtype=object)
    pd_of[:], lgd_of[:] = [pd for pd, _ in factors.values], [lgd for _, lgd in factors.values]
    out = Exposures(
        np.concatenate([d["line_id"].to_numpy(), u["line_id"].to_numpy()]).astype(np.int64),
        np.concatenate([d["drawing_id"].to_numpy(), np.full(len(u), -1)]).astype(np.int64),
        np.array(d["product"].to_list() + u["product"].to_list(), dtype=object),
        np.array(d["branch"].to_list() + u["branch"].to_list(), dtype=object),
        np.concatenate([st, u_stage]).astype(np.int64), pd_of[codes], lgd_of[codes], ead.astype(np.int64),
        _product_fen(*factors.ratios(), codes, ead))
    assert (out.ecl_fen >= 0).all() and (out.ecl_fen <= out.ead_fen).all(), "0 ≤ ECL ≤ EAD: PD and LGD are fractions"
    return out


def provisions(exposures: Exposures) -> dict[str, Any]:
    """ECL and EAD by stage, product and sub-branch, and in total."""
    frame = pl.DataFrame({"stage": exposures.stage, "product": exposures.product.tolist(), "branch": exposures.branch.tolist(),
                          "ead_fen": exposures.ead_fen, "ecl_fen": exposures.ecl_fen},
                         schema={"stage": pl.Int64, "product": pl.String, "branch": pl.String, "ead_fen": pl.Int64, "ecl_fen": pl.Int64})

    def group(key: str) -> dict[str, dict[str, int]]:
        sums = frame.group_by(key).agg(pl.col("ead_fen").sum(), pl.col("ecl_fen").sum())
        return dict(sorted((str(k), {"ead_fen": int(a), "ecl_fen": int(b)}) for k, a, b in sums.iter_rows()))

    return {"ecl_fen": int(frame["ecl_fen"].sum()), "ead_fen": int(frame["ead_fen"].sum()),
            "by_stage": group("stage"), "by_product": group("product"), "by_branch": group("branch")}
