"""Delinquency as of any day: pure.

Days past due (DPD) of a drawing on day D come from its ageing history (`delinquency_history`: its oldest unpaid due
date as of D, `sandu.ledger.overdue.days_past_due`), its balances from the journal through D. This module groups them:

- **overdue by DPD bucket** — the drawings, principal, overdue amount and receivable in each bucket of `DPD_BUCKETS`
  (``current`` is DPD 0), on one day;
- **roll rates** — at consecutive month ends, where each drawing in a bucket at the first went by the next: another
  bucket or ``paid_off`` (nothing owed any more; sandu writes nothing off, so there is no charged-off state), by count
  and by the principal it had at the first month end; drawings opened between the two are not in the matrix;
- **stage movement** — IFRS 9 exposures at D0 and at D1: a matrix from the stage at D0 to the stage at D1 (count,
  EAD and ECL at each end), and the exposures that are new at D1 and those derecognised since D0, by stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sandu.analytics.ecl import Exposure

# (label, lowest DPD, highest DPD; None: no upper end) — the one place the buckets are defined
DPD_BUCKETS: tuple[tuple[str, int, int | None], ...] = (("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("91-180", 91, 180),
                                                         ("180+", 181, None))
CURRENT = "current"
PAID_OFF = "paid_off"
STATES = (CURRENT, *(label for label, _, _ in DPD_BUCKETS))
MAX_ROLL_MONTHS = 24  # month-end transitions a report shows
STAGES = (1, 2, 3)


def bucket(dpd: int) -> str:
    """The bucket of `dpd` days past due (``current`` at 0)."""
    if not isinstance(dpd, int) or dpd < 0:
        raise ValueError(f"days past due must be a non-negative integer, got {dpd!r}")
    if dpd == 0:
        return CURRENT
    for label, low, high in DPD_BUCKETS:
        if low <= dpd and (high is None or dpd <= high):
            return label
    raise AssertionError(f"the buckets cover every positive DPD ({dpd})")


def overdue_by_bucket(drawings: Iterable[Any]) -> dict[str, dict[str, int]]:
    """Drawings (each with `dpd`, `principal_fen`, `overdue_fen`, `receivable_fen`) by DPD bucket: how many, their
    principal, overdue amount and receivable; every bucket present, ``current`` first."""
    out = {s: {"drawings": 0, "principal_fen": 0, "overdue_fen": 0, "receivable_fen": 0} for s in STATES}
    for d in drawings:
        row = out[bucket(d.dpd)]
        row["drawings"] += 1
        row["principal_fen"] += d.principal_fen
        row["overdue_fen"] += d.overdue_fen
        row["receivable_fen"] += d.receivable_fen
    return out


def roll_rates(month_ends: Sequence[tuple[date, Mapping[int, tuple[int, int]]]]) -> list[dict[str, Any]]:
    """Transition matrices between consecutive month ends. `month_ends`: (day, drawing id → (DPD, principal)) for the
    drawings owing anything that day, oldest first. Each matrix: from each state to each state or ``paid_off``, the
    count and the principal at the first month end."""
    out = []
    for (start, before), (end, after) in zip(month_ends, month_ends[1:], strict=False):
        assert start < end, "month ends in order"
        counts = {s: {t: 0 for t in (*STATES, PAID_OFF)} for s in STATES}
        principal = {s: {t: 0 for t in (*STATES, PAID_OFF)} for s in STATES}
        for drawing_id, (dpd, fen) in before.items():
            now = after.get(drawing_id)
            to = PAID_OFF if now is None else bucket(now[0])
            counts[bucket(dpd)][to] += 1
            principal[bucket(dpd)][to] += fen
        out.append({"from": start.isoformat(), "to": end.isoformat(), "count": counts, "principal_fen": principal})
    return out


def _cell() -> dict[str, int]:
    return {"exposures": 0, "ead_from_fen": 0, "ead_to_fen": 0, "ecl_from_fen": 0, "ecl_to_fen": 0}


def stage_movement(start: date, end: date, before: Iterable[Exposure], after: Iterable[Exposure]) -> dict[str, Any]:
    """From the stage of each exposure (a drawing, or a line's undrawn part) at `start` to its stage at `end`: counts,
    EAD and ECL at both ends; the exposures new at `end` and those derecognised since `start`, by stage."""
    then = {(e.line_id, e.drawing_id): e for e in before}
    now = {(e.line_id, e.drawing_id): e for e in after}
    matrix = {str(a): {str(b): _cell() for b in STAGES} for a in STAGES}
    new = {str(s): {"exposures": 0, "ead_fen": 0, "ecl_fen": 0} for s in STAGES}
    gone = {str(s): {"exposures": 0, "ead_fen": 0, "ecl_fen": 0} for s in STAGES}
    for key, e in now.items():
        was = then.get(key)
        if was is None:
            row = new[str(e.stage)]
        else:
            cell = matrix[str(was.stage)][str(e.stage)]
            cell["exposures"] += 1
            cell["ead_from_fen"] += was.ead_fen
            cell["ead_to_fen"] += e.ead_fen
            cell["ecl_from_fen"] += was.ecl_fen
            cell["ecl_to_fen"] += e.ecl_fen
            continue
        row["exposures"] += 1
        row["ead_fen"] += e.ead_fen
        row["ecl_fen"] += e.ecl_fen
    for key, e in then.items():
        if key not in now:
            row = gone[str(e.stage)]
            row["exposures"] += 1
            row["ead_fen"] += e.ead_fen
            row["ecl_fen"] += e.ecl_fen
    return {"from": start.isoformat(), "to": end.isoformat(), "matrix": matrix, "new": new, "derecognised": gone}
