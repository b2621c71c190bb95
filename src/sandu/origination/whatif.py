"""Past applications as a table for a what-if (`sandu.policy.whatif`): each enterprise's latest
decision made on or after a day, rebuilt from what was stored — the hashed profile (checked
against its hash), the scores the decision saw, the application — in the columns of the policy's
table form."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from sandu.domain.errors import InvalidInput
from sandu.domain.project import Project
from sandu.policy.kernel import Application, Scores, read_features
from sandu.policy.vector import INPUT_SCHEMA, row_of
from sandu.policy.whatif import ID_COLUMNS, MAX_APPLICATIONS
from sandu.sources.profile import profile_from_json
from sandu.store import models as m

PAGE_ROWS = 2_000  # decisions read from the store at a time


def application_row(d: m.Decision, snapshot_json: dict[str, Any], uscc: str) -> dict[str, Any]:
    """One stored decision as a row of the table form, with its id, enterprise and day."""
    snapshot = profile_from_json(snapshot_json, d.profile_sha256)  # ProfileIntegrityError if it was altered
    features = read_features({**snapshot.features, "_quality_flags": snapshot.quality_flags})
    stored = d.result["scores"]
    scores = Scores(d.result["tech_grade"], bool(stored["tech"]["most_pass"]), Decimal(str(stored["risk"]["pd"])))
    a = d.application
    app = Application(a["has_bank_account"], a["requested_fen"], Project(**a["project"]) if a["project"] else None, a.get("guarantee_fen"))
    return {**row_of(features, snapshot.collateral, scores, app), "application_id": d.id, "uscc": uscc, "as_of": d.as_of}


def applications_since(session: Session, since: date, until: date) -> pl.DataFrame:
    """Each enterprise's latest decision made on a day in since..until, as a table (oldest enterprise first); none
    when `since` is after `until`."""
    latest = (select(m.Decision.enterprise_id, m.Decision.id)
              .where(m.Decision.as_of >= since, m.Decision.as_of <= until)
              # the latest: the one no other decision superseded, else the last made (one clock tick may hold two)
              .order_by(m.Decision.enterprise_id, m.Decision.superseded_at.is_not(None), m.Decision.decided_at.desc(),
                        m.Decision.superseded_at.desc(), m.Decision.id))
    chosen: dict[int, str] = {}
    for enterprise_id, decision_id in session.execute(latest.execution_options(yield_per=PAGE_ROWS)):
        if enterprise_id not in chosen:
            if len(chosen) == MAX_APPLICATIONS:
                raise InvalidInput("since", f"more than {MAX_APPLICATIONS} enterprises applied from {since.isoformat()}",
                                   "a later day, or a batch run (sandu batch)")
            chosen[enterprise_id] = decision_id
    rows: list[dict[str, Any]] = []
    ids = list(chosen.values())
    for start in range(0, len(ids), PAGE_ROWS):
        page = ids[start:start + PAGE_ROWS]
        stmt = (select(m.Decision, m.Profile.snapshot, m.Enterprise.uscc)
                .join(m.Profile, m.Profile.sha256 == m.Decision.profile_sha256)
                .join(m.Enterprise, m.Enterprise.id == m.Decision.enterprise_id)
                .where(m.Decision.id.in_(page)))
        rows += [application_row(d, snap, uscc) for d, snap, uscc in session.execute(stmt)]
    rows.sort(key=lambda r: (r["as_of"], r["application_id"]))
    return pl.DataFrame(rows, schema={**INPUT_SCHEMA, **ID_COLUMNS})
