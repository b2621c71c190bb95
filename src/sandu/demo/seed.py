"""Put the synthetic universe (and the five story enterprises) into the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sandu.simulate.stories import STORY_ROWS
from sandu.simulate.universe import generate, row, source_payloads
from sandu.store import models as m
from sandu.store.db import UnitOfWork

CHUNK_ROWS = 2_000


def _sim_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "uscc": r["uscc"],
        "name": r["name"],
        "district": r["district"],
        "industry": r["industry"],
        "legal_rep_id": r["legal_rep_id"],
        "has_bank_account": bool(r["has_bank_account"]),
        "story": r["story"] or None,
        "latent_risk": float(r["latent_risk"]),
        "default_12m": bool(r["default_12m"]),
    }


def _insert_rows(session: Session, rows: list[dict[str, Any]], as_of: date) -> int:
    known = set(session.scalars(select(m.SimEnterprise.uscc).where(m.SimEnterprise.uscc.in_([r["uscc"] for r in rows]))))
    fresh = [r for r in rows if r["uscc"] not in known]
    if not fresh:
        return 0
    session.execute(insert(m.SimEnterprise), [_sim_row(r) for r in fresh])
    records = [
        {"uscc": r["uscc"], "source": source, "as_of": as_of, "payload": payload}
        for r in fresh
        for source, payload in source_payloads(r, as_of).items()
    ]
    session.execute(insert(m.SourceRecord), records)
    return len(fresh)


def seed_universe(
    uow: UnitOfWork,
    n: int,
    seed: int,
    as_of: date,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert `n` generated enterprises plus the story enterprises; USCCs already
    present are skipped, so seeding twice adds nothing. Returns rows added."""
    added = 0
    with uow.write() as s:
        added += _insert_rows(s, [dict(r) for r in STORY_ROWS], as_of)
    table = generate(n, seed, as_of)
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        chunk = [row(table, i) for i in range(start, stop)]
        with uow.write() as s:
            added += _insert_rows(s, chunk, as_of)
        if progress is not None:
            progress(stop - start)
    return added


def universe_frame(n: int, seed: int, as_of: date, include_stories: bool = True):  # -> polars.DataFrame
    """The universe as one flat polars frame (for Parquet and batch work)."""
    import polars as pl

    table = generate(n, seed, as_of)
    frame = pl.DataFrame({k: v for k, v in table.items()})
    if include_stories:
        stories = pl.DataFrame([dict(r) for r in STORY_ROWS]).select(frame.columns).cast(frame.schema)
        frame = pl.concat([frame, stories])
    assert frame.height == n + (len(STORY_ROWS) if include_stories else 0)
    assert frame["uscc"].n_unique() == frame.height, "USCCs must be unique"
    return frame


HISTORY_TARGET = "default_12m"
HISTORY_KEY = "uscc"


def history_frame(n: int, seed: int, as_of: date, progress: Callable[[int], None] | None = None):  # -> polars.DataFrame
    """A scorecard's training history: one row per simulated enterprise, holding the profile
    features exactly as a decision sees them (`build_profile` over the sources' payloads)
    and the 12-month default that followed (`default_12m`). Lists (certifications) stay out:
    a scorecard scores numbers and categories. The five story enterprises are not in it."""
    import polars as pl

    from sandu.sources.profile import build_profile

    table = generate(n, seed, as_of)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        r = row(table, i)
        features = build_profile(r["uscc"], as_of, source_payloads(r, as_of)).features
        rows.append({HISTORY_KEY: r["uscc"], **{k: v for k, v in features.items() if not isinstance(v, (list, tuple, dict))},
                     HISTORY_TARGET: bool(r["default_12m"])})
        if progress and (i + 1) % 1000 == 0:
            progress(1000)
    if progress and n % 1000:
        progress(n % 1000)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    assert frame.height == n
    return frame
