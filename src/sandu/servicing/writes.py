"""How the ledger's rows are written: a journal entry (its header and its postings) and, with a movement's entry,
the drawing it opens, the drawings it changes and its line — all in one statement on PostgreSQL, a few on SQLite.

One write, two routes to the same rows:

- **PostgreSQL**: a single ``WITH`` of data-modifying statements — the header inserted (``RETURNING id``), the postings
  inserted from ``unnest`` of their accounts and amounts in their order, the new drawing inserted under the header,
  the changed drawings updated from ``unnest`` of their columns, the line updated — and a ``SELECT`` of the header's
  id and of how many rows each part wrote (checked). Its foreign keys are checked at the end of the statement, so
  the postings and the drawing may name the header written by it. One round trip, whatever the number of postings.
- **SQLite** (in-process: statements cost no round trip, and it has no data-modifying ``WITH``): the header, its
  postings (one executemany), the drawing, the drawings (one executemany), the line — each a Core statement compiled
  once.

Either runs on the session's connection (no ORM work, after flushing what the session holds); the session's
instances of the rows written are expired, so that a later read sees the writes. A new drawing's id is taken before
its entry is built (its accounts are named by it): a value of the table's sequence on PostgreSQL, one more than the
largest on SQLite, whose single writer holds the store for the whole transaction (`next_drawing_id`). Entries are
counted (`ENTRIES_KEY`) once committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, column, func, insert, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from sandu.ledger import journal as jl
from sandu.store import models as m

ENTRIES_KEY = "sandu_ledger_entries"  # the kinds of the entries a transaction wrote (counted once committed)

_ENTRIES, _POSTINGS, _DRAWINGS, _LINES = m.JournalEntryRow.__table__, m.PostingRow.__table__, m.Drawing.__table__, m.CreditLine.__table__
HEADER_COLUMNS = ("idempotency_key", "request_sha256", "kind", "line_id", "effective_date", "memo", "created_at")
# what a movement may change on a drawing it does not open: its balances, accruals, oldest unpaid due date and status
DRAWING_WRITES = ("principal_fen", "due_principal_fen", "overdue_principal_fen", "interest_fen", "overdue_interest_fen", "penalty_fen",
                  "compound_fen", "interest_fen_days", "penalty_fen_days", "compound_fen_days", "oldest_due_on", "status", "repaid_on")
LINE_WRITES = ("drawn_principal_fen", "risk_class")  # what a movement may change on its line

_INSERT_HEADER = insert(_ENTRIES).values({c: bindparam(c) for c in HEADER_COLUMNS}).returning(_ENTRIES.c.id)
_INSERT_POSTINGS = insert(_POSTINGS)
_INSERT_DRAWING = insert(_DRAWINGS)
_UPDATE_DRAWING = _DRAWINGS.update().where(_DRAWINGS.c.id == bindparam("b_id")).values({c: bindparam(c) for c in DRAWING_WRITES})
_UPDATE_LINE = _LINES.update().where(_LINES.c.id == bindparam("b_id")).values({c: bindparam(c) for c in LINE_WRITES})


def next_drawing_id(dialect: str) -> ColumnElement:
    """The id the next drawing takes, as a column of a read the movement runs anyway (see the module docstring)."""
    if dialect == "postgresql":
        return func.nextval(func.pg_get_serial_sequence(_DRAWINGS.name, _DRAWINGS.c.id.name))
    return select(func.coalesce(func.max(_DRAWINGS.c.id), 0) + 1).correlate(None).scalar_subquery()


def write_entry(session: Session, entry: jl.JournalEntry, *, line_id: int | None, now: datetime, request_sha256: str | None = None) -> int:
    """Store a balanced entry: its header and its postings; returns its id."""
    return write_movement(session, entry, line_id=line_id, now=now, request_sha256=request_sha256)


def write_movement(session: Session, entry: jl.JournalEntry, *, line_id: int | None, now: datetime, request_sha256: str | None = None,
                   new_drawing: dict[str, Any] | None = None, drawings: Sequence[dict[str, Any]] = (),
                   line: dict[str, Any] | None = None) -> int:
    """Store `entry` (header and postings) and, with it, `new_drawing` (every column but `entry_id`, which is the
    entry's), the `drawings` changed (`id` and `DRAWING_WRITES` each) and the `line` changed (`id` and `LINE_WRITES`);
    returns the entry's id."""
    assert sum(p.amount_fen for p in entry.postings) == 0, "a journal entry balances"
    header = {"idempotency_key": entry.idempotency_key, "kind": entry.kind, "line_id": line_id, "effective_date": entry.effective_date,
              "memo": entry.memo, "created_at": now,
              "request_sha256": request_sha256 or hashlib.sha256(repr((entry.kind, entry.effective_date, entry.postings)).encode()).hexdigest()}
    session.flush()  # what the session holds first, as the ORM would before any statement (a row the entry names, say)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        entry_id = _write_in_one_statement(conn, header, entry, new_drawing, drawings, line)
    else:
        entry_id = _write_statement_by_statement(conn, header, entry, new_drawing, drawings, line)
    session.info.setdefault(ENTRIES_KEY, []).append(entry.kind)
    expire_held(session, m.Drawing, [d["id"] for d in drawings])
    if line is not None:
        expire_held(session, m.CreditLine, [line["id"]])
    return entry_id


def _write_statement_by_statement(conn: Connection, header: dict, entry: jl.JournalEntry, new_drawing: dict | None, drawings: Sequence[dict],
                                  line: dict | None) -> int:
    entry_id = conn.execute(_INSERT_HEADER, header).scalar_one()
    conn.execute(_INSERT_POSTINGS, [{"entry_id": entry_id, "account": p.account, "amount_fen": p.amount_fen} for p in entry.postings])
    if new_drawing is not None:
        conn.execute(_INSERT_DRAWING, {**new_drawing, "entry_id": entry_id})
    if drawings:
        conn.execute(_UPDATE_DRAWING, [{"b_id": d["id"], **{c: d[c] for c in DRAWING_WRITES}} for d in drawings])
    if line is not None:
        done = conn.execute(_UPDATE_LINE, {"b_id": line["id"], **{c: line[c] for c in LINE_WRITES}})
        assert done.rowcount == 1, f"line {line['id']} is written once"
    return entry_id


# --- PostgreSQL: one statement ------------------------------------------------------------------------------------

_DRAWING_INSERTS = tuple(c.key for c in _DRAWINGS.c if c.key != "entry_id")


def _array(name: str, of) -> Any:
    return bindparam(name, type_=ARRAY(of.type))


def _one_statement(new_drawing: bool, drawings: bool, line: bool):
    """The statement for one shape of movement (memoized: compiled once each)."""
    header = insert(_ENTRIES).values({c: bindparam(f"h_{c}", type_=_ENTRIES.c[c].type) for c in HEADER_COLUMNS}).returning(_ENTRIES.c.id).cte("header")
    p = (func.unnest(_array("p_account", _POSTINGS.c.account), _array("p_amount_fen", _POSTINGS.c.amount_fen))
         .table_valued(column("account"), column("amount_fen"), with_ordinality="n").render_derived(name="p"))
    postings = (insert(_POSTINGS).from_select(["entry_id", "account", "amount_fen"],
                                              select(header.c.id, p.c.account, p.c.amount_fen).select_from(header.join(p, true())).order_by(p.c.n))
                .returning(_POSTINGS.c.id).cte("postings"))
    counts = [select(func.count()).select_from(postings).scalar_subquery().label("postings")]
    if new_drawing:
        opened = (insert(_DRAWINGS).from_select([*_DRAWING_INSERTS, "entry_id"],
                                                select(*(bindparam(f"d_{c}", type_=_DRAWINGS.c[c].type) for c in _DRAWING_INSERTS), header.c.id))
                  .returning(_DRAWINGS.c.id).cte("opened"))
        counts.append(select(func.count()).select_from(opened).scalar_subquery().label("opened"))
    if drawings:
        v = (func.unnest(*(_array(f"u_{c}", _DRAWINGS.c[c]) for c in ("id", *DRAWING_WRITES)))
             .table_valued(*(column(c) for c in ("id", *DRAWING_WRITES))).render_derived(name="v"))
        changed = (_DRAWINGS.update().where(_DRAWINGS.c.id == v.c.id).values({c: v.c[c] for c in DRAWING_WRITES})
                   .returning(_DRAWINGS.c.id).cte("changed"))
        counts.append(select(func.count()).select_from(changed).scalar_subquery().label("changed"))
    if line:
        written = (_LINES.update().where(_LINES.c.id == bindparam("l_id")).values({c: bindparam(f"l_{c}", type_=_LINES.c[c].type) for c in LINE_WRITES})
                   .returning(_LINES.c.id).cte("line"))
        counts.append(select(func.count()).select_from(written).scalar_subquery().label("line"))
    return select(header.c.id, *counts)


_STATEMENTS = {(a, b, c): _one_statement(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)}


def _write_in_one_statement(conn: Connection, header: dict, entry: jl.JournalEntry, new_drawing: dict | None, drawings: Sequence[dict],
                            line: dict | None) -> int:
    params: dict[str, Any] = {f"h_{c}": header[c] for c in HEADER_COLUMNS}
    params["p_account"] = [p.account for p in entry.postings]
    params["p_amount_fen"] = [p.amount_fen for p in entry.postings]
    if new_drawing is not None:
        params.update({f"d_{c}": new_drawing[c] for c in _DRAWING_INSERTS})
    if drawings:
        params.update({f"u_{c}": [d[c] for d in drawings] for c in ("id", *DRAWING_WRITES)})
    if line is not None:
        params.update({f"l_{c}": line[c] for c in ("id", *LINE_WRITES)})
    row = conn.execute(_STATEMENTS[(new_drawing is not None, bool(drawings), line is not None)], params).one()
    assert row.postings == len(entry.postings), f"entry {entry.idempotency_key}: {row.postings} of {len(entry.postings)} postings written"
    assert new_drawing is None or row.opened == 1, "the new drawing is written once"
    assert not drawings or row.changed == len(drawings), f"{row.changed} of {len(drawings)} drawings written"
    assert line is None or row.line == 1, f"line {line['id']} is written once"
    return row.id


def expire_held(session: Session, model: type, ids: Sequence[int]) -> None:
    """Expire the instances of `model` with these ids that the session holds, so that they are read again."""
    if not session.identity_map:
        return
    for i in ids:
        held = session.identity_map.get(identity_key(model, i))
        if held is not None:
            session.expire(held)
