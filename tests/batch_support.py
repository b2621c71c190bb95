"""The online decision of one enterprise row, to compare the batch engines with; a corrupt page to refuse."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sandu.batch.kernel import Models
from sandu.origination.service import score_and_decide
from sandu.policy.kernel import Application
from sandu.simulate.universe import source_payloads
from sandu.sources.profile import ProfileSnapshot, build_profile

SLOTS = ("secured", "credit", "guaranteed")


def online(models: Models, r: dict[str, Any]) -> tuple[ProfileSnapshot, dict[str, Any], dict[str, tuple]]:
    """(profile, the output columns the online path determines, offers by product) for one input row:
    its sources' payloads → `build_profile` → `score_and_decide`, as a measurement does."""
    as_of: date = models.as_of
    profile = build_profile(r["uscc"], as_of, source_payloads(r, as_of))
    scores, res = score_and_decide(profile, Application(has_bank_account=bool(r["has_bank_account"])), models.bundle, models.card, models.tech, as_of)
    row = {"uscc": r["uscc"], "outcome": res.outcome.value, "risk_grade": res.risk_grade, "tech_grade": res.tech_grade,
           "tech_score": Decimal(scores["tech"]["score"]), "tech_most_pass": scores["tech"]["most_pass"],
           "risk_pd": Decimal(str(scores["risk"]["pd"])), "risk_score": scores["risk"]["points"],
           "comprehensive_limit_fen": res.comprehensive_limit_fen, "approved_fen": sum(o.approved_fen for o in res.offers),
           "inclusive_small_micro": res.inclusive_small_micro,
           "policy_reasons": [x.split(":")[0] for x in res.reasons], "risk_reasons": scores["risk"]["reasons"][:3],
           "risk_reason_codes": [_feature_of(models, text) for text in scores["risk"]["reasons"][:3]]}
    offers = {o.product: (o.limit_fen, o.approved_fen, o.rate_annual, o.annualized_rate, o.lpr_tenor) for o in res.offers}
    return profile, row, offers


def _feature_of(models: Models, reason: str) -> str:
    """The name of the scorecard feature a reason's words are about (they begin with its description)."""
    [name] = [f.name for f in models.card.features if reason.startswith(f"{f.description}: ")]
    return name


def batch_offers(row: dict[str, Any]) -> dict[str, tuple]:
    """The offers of one output row, as `online` gives them."""
    return {row[f"{s}_product"]: (row[f"{s}_limit_fen"], row[f"{s}_approved_fen"], Decimal(row[f"{s}_rate_bp"]) / 10_000, row[f"{s}_annualized_rate"],
                                  row[f"{s}_lpr_tenor"])
            for s in SLOTS if row[f"{s}_product"] is not None}


def assert_as_online(models: Models, r: dict[str, Any], got: dict[str, Any]) -> ProfileSnapshot:
    profile, want, offers = online(models, r)
    assert {k: got[k] for k in want} == want, r["uscc"]
    assert batch_offers(got) == offers, r["uscc"]
    return profile


def corrupt_page(src: Path, column: str, row_group: int) -> None:
    """Overwrite the page header of `column` in `row_group` (its footer, statistics and all, stays intact)."""
    meta = pq.ParquetFile(src).metadata.row_group(row_group)
    chunk = next(meta.column(j) for j in range(meta.num_columns) if meta.column(j).path_in_schema == column)
    data = bytearray(src.read_bytes())
    data[chunk.data_page_offset:chunk.data_page_offset + 40] = b"\xff" * 40
    src.write_bytes(bytes(data))
