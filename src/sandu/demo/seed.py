"""Put the synthetic universe (and the five story enterprises) into the store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sandu.simulate.stories import STORY_ROWS
from sandu.simulate.universe import PART_ROWS, generate, generate_parts, row, source_payloads
from sandu.store import models as m
from sandu.store.db import UnitOfWork

CHUNK_ROWS = 2_000
ROW_GROUP_ROWS = 512 * 512  # rows per Parquet row group of `write_universe` (polars' own default)


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
    for table in generate_parts(n, seed, as_of):
        rows = len(table["uscc"])
        for start in range(0, rows, CHUNK_ROWS):
            stop = min(rows, start + CHUNK_ROWS)
            chunk = [row(table, i) for i in range(start, stop)]
            with uow.write() as s:
                added += _insert_rows(s, chunk, as_of)
            if progress is not None:
                progress(stop - start)
    return added


def universe_parts(n: int, seed: int, as_of: date, include_stories: bool = True, part_rows: int = PART_ROWS) -> Iterator[Any]:
    """The universe as flat polars frames, one per part of `generate_parts` (`part_rows` each), then the story
    enterprises (when included) as a last one of the same schema: what `universe_frame` and `write_universe` are made
    of. A story's USCC is refused in a generated part."""
    import polars as pl

    schema = _universe_schema(seed, as_of)
    stories = pl.DataFrame([dict(r) for r in STORY_ROWS]).select(list(schema)).cast(schema) if include_stories else None
    for table in generate_parts(n, seed, as_of, part_rows):
        frame = pl.DataFrame(table)
        assert frame.schema == schema, "every part has the universe's columns and types"
        assert stories is None or not frame["uscc"].is_in(stories["uscc"].implode()).any(), "a story's USCC is its own"
        yield frame
    if stories is not None:
        yield stories


def universe_frame(n: int, seed: int, as_of: date, include_stories: bool = True):  # -> polars.DataFrame
    """The universe as one flat polars frame, in memory (for Parquet and batch work; `write_universe` for a file of
    any size)."""
    import polars as pl

    frame = pl.concat(list(universe_parts(n, seed, as_of, include_stories)) or [pl.DataFrame(schema=_universe_schema(seed, as_of))])
    assert frame.height == n + (len(STORY_ROWS) if include_stories else 0)
    assert frame["uscc"].n_unique() == frame.height, "USCCs must be unique"
    return frame


def write_universe(path: Path, n: int, seed: int, as_of: date, include_stories: bool = True,
                   progress: Callable[[int], None] | None = None, part_rows: int = PART_ROWS) -> int:
    """`universe_frame`'s rows, in its order, written to the Parquet file `path` part by part: memory follows a part
    (`part_rows`, a million), not the universe, so a region's ten million fit. Written beside `path` and put in its
    place once whole (an interrupted write leaves no file). `progress(rows)` after each part. Returns the rows written."""
    import polars as pl
    import pyarrow.parquet as pq

    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    written = 0
    try:
        with pq.ParquetWriter(partial, pl.DataFrame(schema=_universe_schema(seed, as_of)).to_arrow().schema, compression="zstd") as writer:
            for frame in universe_parts(n, seed, as_of, include_stories, part_rows):
                writer.write_table(frame.to_arrow(), row_group_size=ROW_GROUP_ROWS)
                written += frame.height
                if progress is not None:
                    progress(frame.height)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    assert written == n + (len(STORY_ROWS) if include_stories else 0)
    return written


def _universe_schema(seed: int, as_of: date) -> Any:  # -> polars.Schema
    """The columns of the universe and their types, as every part has them."""
    import polars as pl

    return pl.DataFrame(generate(0, seed, as_of)).schema


HISTORY_TARGET = "default_12m"
HISTORY_KEY = "uscc"


def history_frame(n: int, seed: int, as_of: date, progress: Callable[[int], None] | None = None):  # -> polars.DataFrame
    """A scorecard's training history: one row per simulated enterprise, holding the profile
    features exactly as a decision sees them (`build_profile` over the sources' payloads)
    and the 12-month default that followed (`default_12m`). Lists (certifications) stay out:
    a scorecard scores numbers and categories. The five story enterprises are not in it."""
    import polars as pl

    from sandu.sources.profile import build_profile

    rows: list[dict[str, Any]] = []
    for table in generate_parts(n, seed, as_of):  # the universe's enterprises, as `universe_frame` has them
        for i in range(len(table["uscc"])):
            r = row(table, i)
            features = build_profile(r["uscc"], as_of, source_payloads(r, as_of)).features
            rows.append({HISTORY_KEY: r["uscc"], **{k: v for k, v in features.items() if not isinstance(v, (list, tuple, dict))},
                         HISTORY_TARGET: bool(r["default_12m"])})
            if progress and len(rows) % 1000 == 0:
                progress(1000)
    if progress and n % 1000:
        progress(n % 1000)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    assert frame.height == n
    return frame
