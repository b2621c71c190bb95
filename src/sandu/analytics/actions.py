"""Portfolio reports: who may read which, one read unit of work each."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import polars as pl

from sandu.analytics import service as svc
from sandu.analytics.delinquency import MAX_ROLL_MONTHS, stage_movement
from sandu.analytics.ecl import Exposures, exposure_columns, line_risk, provisions
from sandu.analytics.portfolio import MAX_VINTAGE_MONTHS, Portfolio, last_month_ends, month_ends, portfolio
from sandu.domain.dates import require_not_future
from sandu.domain.enums import Role
from sandu.domain.errors import Conflict, InvalidInput, NotPermitted, show
from sandu.origination import workflow
from sandu.runtime import Runtime
from sandu.scoring.monitor import Week, weekly
from sandu.scoring.scorecard import Scorecard
from sandu.security.actor import Actor

WHOLE_BANK = (Role.RISK, Role.ADMIN, Role.AUDITOR)
OWN_BRANCH = (Role.OFFICER, Role.APPROVER)


def report_branch(actor: Actor, branch: str | None) -> str | None:
    """The sub-branch `actor` may report on: risk, admin and auditors any (None: the whole bank); officers and approvers
    only their own (another is refused, 403); anyone else none."""
    if branch is not None and (not isinstance(branch, str) or not 1 <= len(branch) <= 16):
        raise InvalidInput("branch", f"got {show(branch)}", "a sub-branch name, 1..16 characters")
    if actor.role in WHOLE_BANK:
        return branch
    if actor.role not in OWN_BRANCH or actor.branch is None:
        raise NotPermitted(None, f"a {actor.role} reads no portfolio report", "risk, admin, auditors (any); officers and approvers (theirs)",
                           rule="reports.branch")
    if branch is not None and branch != actor.branch:
        raise NotPermitted("branch", f"the report of {branch} is not yours", f"{actor.branch} (your sub-branch)", rule="reports.branch")
    return actor.branch


ROLL_MONTHS = 12  # month-end transitions a report shows unless asked for others


def portfolio_report(rt: Runtime, actor: Actor | None, *, as_of: date | None = None, branch: str | None = None,
                     since: date | None = None, roll_months: int = ROLL_MONTHS) -> Portfolio:
    """The portfolio as of a day (default: the business date), of a sub-branch or the bank, from the journal, with the
    IFRS 9 provisions as of that day, the roll rates over the `roll_months` month ends through it and, given `since`
    (a day before it), the stage movement from `since` to it. `actor` None: the operator's shell (the CLI), which reads any."""
    day = rt.today() if as_of is None else require_not_future(as_of, rt.now(), "as_of")
    which = branch if actor is None else report_branch(actor, branch)
    if since is not None and not isinstance(since, date):
        raise InvalidInput("from", f"got {show(since)}", "a date (YYYY-MM-DD)")
    if since is not None and since >= day:  # as a day after the business date: a conflict with the report's day, not a malformed one
        raise Conflict("from", f"{since.isoformat()} is not before the report's day", f"a day before {day.isoformat()}")
    if not isinstance(roll_months, int) or isinstance(roll_months, bool) or not 0 <= roll_months <= MAX_ROLL_MONTHS:
        raise InvalidInput("months", f"got {show(roll_months)}", f"0..{MAX_ROLL_MONTHS} month-end transitions")
    year_ago = day.replace(year=day.year - 1) if not (day.month == 2 and day.day == 29) else date(day.year - 1, 2, 28)
    kinds = {code: p.kind for code, p in rt.bundle.products.items()}
    rules = rt.bundle.expected_loss
    ends = last_month_ends(day, roll_months + 1) if roll_months else []
    with rt.uow.read() as s:
        lines = svc.line_facts(s, which)
        opened = lines.filter(pl.col("opened_on") <= day)["opened_on"].dt.truncate("1mo").unique().to_list()
        needed = sorted({end for start in opened for end in month_ends(start, day)[:MAX_VINTAGE_MONTHS + 1]})  # each cohort's first 25
        book = svc.book_through(s, {day, year_ago, *([since] if since else []), *ends})  # one pass over the journal
        rest = [end for end in needed if end not in book.days]  # vintages' other month ends: a pass per MAX_DAYS_READ of them
        books = [book, *(svc.book_through(s, rest[k:k + svc.MAX_DAYS_READ]) for k in range(0, len(rest), svc.MAX_DAYS_READ))]
        now, then = book.drawings(day), book.drawings(year_ago)
        end = datetime.combine(day, time.max, tzinfo=timezone.utc)
        seconds = [f.seconds for f in workflow.measurement_to_first_drawing(s, branch=which) if f.first_drawn_at <= end]
        decided = svc.decisions_by_outcome(s, day, which)
        at = [(d, book.drawings(d)) for d in (day, *([since] if since else []))]
        risk = {d: (line_risk(lines, svc.current_grades(s, d, which), drawings, kinds, d), drawings) for d, drawings in at}

    def exposed(d: date) -> Exposures:
        lines_then, drawings = risk[d]
        return exposure_columns(rules, d, lines_then, drawings.rename({"receivable_fen": "owed_fen"}))

    now_exposed = exposed(day)
    movement = stage_movement(since, day, exposed(since), now_exposed) if since is not None else None
    at_ends = [(e, book.drawings(e)) for e in ends]
    sums = {end: next(b for b in books if end in b.days).line_sums(end) for end in needed}
    return portfolio(day, lines, now, then, which, seconds, decided, provisions(now_exposed), sums, at_ends, movement)


def model_monitor(rt: Runtime, *, since: date, until: date | None = None) -> list[Week]:
    """PSI of the scorecard's features (against its training data) and of its score (against the period's first week),
    week by week over the decisions made since `since` (through `until`, default the business date)."""
    end = rt.today() if until is None else require_not_future(until, rt.now(), "until")
    if since > end:
        raise InvalidInput("since", f"{since.isoformat()} is after {end.isoformat()}", f"a day on or before {end.isoformat()}")
    card = rt.model
    if not isinstance(card, Scorecard):
        raise InvalidInput("model", f"{card.label} is an expert model without training data to compare with", "a trained scorecard")
    names = tuple(f.name for f in card.features)
    with rt.uow.read() as s:
        rows, days = svc.scored_applications(s, since, end, names)
    kinds = {f.name: pl.String if f.kind == "categorical" else pl.Float64 for f in card.features}
    frame = pl.DataFrame(rows, schema=kinds, strict=False) if rows else pl.DataFrame(schema=kinds)
    return weekly(card, frame, days)
