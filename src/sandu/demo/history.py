"""A history to report on: `sandu simulate --history --months N` runs the seeded store forward day by day.

Each business day from the store's current one, the simulated enterprises do what the behaviour model
(`sandu.simulate.history`, pure) says — apply, draw, repay on time, late, in part or not at all, close — through the
service functions of origination and servicing, as their legal representatives (applicant users made for them, one per
person) and the sub-branch's officer; then the real end of day (`servicing.actions.end_of_day`) closes the date, which
moves the simulated business date on. So every figure of the portfolio report comes from the real ledger.

The day's applications are one unit of work, its movements another (at most `BATCH_ACTIONS` actions each); each action
runs in its own savepoint, so that one the services refuse (e.g. a draw over the comprehensive limit) changes nothing
and is counted, by reason, in the result. Only a demo or test store may be run forward (the simulated clock's rule).
Deterministic for a seed: the same store and seed give the same journal.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandu.audit import service as audit
from sandu.demo.users import BRANCH_LETTER, officer_of
from sandu.domain.dates import BUSINESS_TZ, add_months
from sandu.domain.enums import DrawingStatus, LineStatus, Role
from sandu.domain.errors import Conflict, InvalidInput, SanduError, show
from sandu.ledger.schedule import REVOLVING
from sandu.origination import service as orig
from sandu.runtime import Runtime
from sandu.security import service as security
from sandu.security.actor import Actor
from sandu.servicing import actions as servicing
from sandu.servicing import service as svc
from sandu.servicing.calendar import SIMULATED_KINDS, business_day, calendar_row
from sandu.servicing.close import class_rules
from sandu.settings import Settings
from sandu.simulate.history import DEFAULT_RATES, MAX_MONTHS, Act, Action, LineState, Rates, Traits, line_actions, wants_to_apply
from sandu.sources.catalog import ALL_SOURCES
from sandu.store import models as m

MAX_HISTORY_ENTERPRISES = 200_000  # simulated enterprises one run follows; a bigger universe is refused, not cut
BATCH_ACTIONS = 500  # actions per write transaction
CONSENT_DAYS = 30
ACT_AT = time(10, 0)  # what the simulated people do, they do at ten in the morning, Beijing time


@dataclass
class HistoryResult:
    first_day: date
    last_day: date
    days: int = 0
    applications: int = 0
    outcomes: Counter = field(default_factory=Counter)  # decision outcome → count
    lines_opened: int = 0
    draws: int = 0
    drawn_fen: int = 0
    repayments: int = 0
    repaid_fen: int = 0
    closes: int = 0
    refused: Counter = field(default_factory=Counter)  # "act: reason" → count (the services' refusals)
    users_created: int = 0


class DayClock:
    """The simulated people's clock: ten in the morning (Beijing) of the business date being run."""

    def __init__(self, day: date):
        self.day = day

    def __call__(self) -> datetime:
        return datetime.combine(self.day, ACT_AT, tzinfo=BUSINESS_TZ)


DayProgress = Callable[[date, HistoryResult], None]


def history_days(start: date, months: object) -> list[date]:
    """The business dates a run of `months` months from `start` closes: start .. the day before the same day `months` later."""
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise InvalidInput("months", f"got {show(months)}", f"a whole number of months, 1..{MAX_MONTHS}")
    end = add_months(start, months)
    return [start + timedelta(days=k) for k in range((end - start).days)]


def _require_simulated_store(rt: Runtime) -> date:
    """The store's business date, if it is a demo or test store (else refused, naming what to do)."""
    with rt.uow.read() as s:
        row = calendar_row(s)
        kind, last = row.store_kind, row.last_closed_on
    if kind not in SIMULATED_KINDS:
        raise Conflict("store", f"this store is marked {kind!r}: a history runs the simulated clock, which only a demo or test store may run on",
                       "a demo store (`sandu demo` makes one) or a test store")
    return business_day(rt.now(), last)


def run_history(rt: Runtime, *, months: int, seed: int, progress: DayProgress | None = None, rates: Rates = DEFAULT_RATES) -> HistoryResult:
    """Run the store forward `months` months from its business date (see the module's docstring); `rates`: the behaviour
    model's daily probabilities."""
    start = _require_simulated_store(rt)
    days = history_days(start, months)
    clock = DayClock(start)
    sim = replace(rt, settings=rt.settings.model_copy(update={"clock": "simulated"}), clock=clock)
    world = _World.load(sim, seed, start, rates)
    result = HistoryResult(first_day=days[0], last_day=days[-1])
    eod_actor = Actor.system("eod")
    for day in days:
        clock.day = day
        world.apply(sim, day, result)
        world.move(sim, day, result)
        servicing.end_of_day(sim, eod_actor, day)
        result.days += 1
        if progress is not None:
            progress(day, result)
    return result


def _people_settings(settings: Settings) -> Settings:
    """The settings the simulated people's users are made with: the password of each is a random 144-bit secret that is
    never shown or kept, so no work factor is needed to protect it (argon2's cost protects passwords people choose);
    hashing each at the production cost would take ~1 s a person."""
    return settings.model_copy(update={"argon2_time_cost": 1, "argon2_memory_kib": 8})


@contextmanager
def _savepoint(s: Session) -> Iterator[None]:
    """One action in a savepoint of the day's unit of work: refused, it leaves no row and no audit note behind."""
    notes = s.info.setdefault(audit.NOTES_KEY, [])
    entries = s.info.setdefault(svc.ENTRIES_KEY, [])
    kept = len(notes), len(entries)
    try:
        with s.begin_nested():
            yield
    except SanduError:
        del notes[kept[0]:], entries[kept[1]:]
        raise


def _chunks(items: list, size: int) -> Iterator[list]:
    for k in range(0, len(items), size):
        yield items[k:k + size]


@dataclass
class _World:
    """The simulated enterprises, who acts for them, and which line each has open (kept between days)."""

    seed: int
    start: date
    traits: dict[str, Traits]
    rep_ids: dict[str, str]  # uscc → the legal representative's resident ID
    names: dict[str, str]
    lines: dict[str, int]  # uscc → its open line
    last_applied: dict[str, date]
    pii_key: bytes
    settings: Settings
    rates: Rates
    actors: dict[str, Actor] = field(default_factory=dict)
    officers: dict[str, Actor] = field(default_factory=dict)

    @classmethod
    def load(cls, rt: Runtime, seed: int, start: date, rates: Rates) -> _World:
        with rt.uow.read() as s:
            count = s.scalar(select(func.count()).select_from(m.SimEnterprise).where(m.SimEnterprise.story.is_(None))) or 0
            if count > MAX_HISTORY_ENTERPRISES:
                raise Conflict("enterprises", f"the store holds {count:,} simulated enterprises", f"at most {MAX_HISTORY_ENTERPRISES:,} for a history")
            rows = s.execute(select(m.SimEnterprise.uscc, m.SimEnterprise.latent_risk, m.SimEnterprise.default_12m, m.SimEnterprise.legal_rep_id,
                                    m.SimEnterprise.name).where(m.SimEnterprise.story.is_(None)).order_by(m.SimEnterprise.uscc)).all()
            lines = dict(s.execute(select(m.Enterprise.uscc, func.max(m.CreditLine.id)).join(m.CreditLine, m.CreditLine.enterprise_id == m.Enterprise.id)
                                   .where(m.CreditLine.status != LineStatus.CLOSED).group_by(m.Enterprise.uscc)).all())
            applied = dict(s.execute(select(m.Enterprise.uscc, func.max(m.Decision.as_of)).join(m.Decision, m.Decision.enterprise_id == m.Enterprise.id)
                                     .group_by(m.Enterprise.uscc)).all())
            officers = {}
            for branch in BRANCH_LETTER:
                user = s.scalar(select(m.User).where(m.User.username == officer_of(branch), m.User.disabled.is_(False)))
                if user is not None:
                    officers[branch] = security.actor_of(user, None)
        traits = {r.uscc: Traits(r.uscc, float(r.latent_risk), bool(r.default_12m)) for r in rows}
        return cls(seed, start, traits, {r.uscc: r.legal_rep_id for r in rows}, {r.uscc: r.name for r in rows},
                   {u: int(i) for u, i in lines.items() if u in traits}, {u: d for u, d in applied.items() if u in traits},
                   rt.settings.derived_key("pii"), _people_settings(rt.settings), rates, officers=officers)

    # --- applications ------------------------------------------------------------------------------------------

    def apply(self, rt: Runtime, day: date, result: HistoryResult) -> None:
        """Today's applicants register (the first time), authorize every source, are measured and sign the auto-approved
        revolving offer, if any."""
        applicants = [u for u, t in self.traits.items() if u not in self.lines and wants_to_apply(self.seed, day, t, self.last_applied.get(u), self.rates)]
        now = rt.now()
        for chunk in _chunks(applicants, BATCH_ACTIONS):
            done: list[tuple[str, Actor, int | None]] = []
            with rt.uow.write() as s:
                for uscc in chunk:
                    self.last_applied[uscc] = day
                    try:
                        with _savepoint(s):
                            done.append((uscc, *self._apply_one(s, rt, uscc, day, now)))
                    except SanduError as exc:
                        result.refused[f"apply: {exc.field}"] += 1
            for uscc, rep, created, outcome, line_id in done:  # committed
                self.actors[uscc] = rep
                result.users_created += created
                result.outcomes[outcome] += 1
                result.applications += 1
                if line_id is not None:
                    self.lines[uscc] = line_id
                    result.lines_opened += 1

    def _applicant(self, s: Session, uscc: str, now: datetime) -> tuple[Actor, bool]:
        """The enterprise's legal representative as an applicant user (made the first time: a simulated person, whose
        random password is never shown — they act only here). Kept once the unit of work that made it has committed."""
        if uscc in self.actors:
            return self.actors[uscc], False
        person = security.pii_hmac(self.pii_key, self.rep_ids[uscc])
        user = s.scalar(select(m.User).where(m.User.person_id_hmac == person, m.User.role == Role.APPLICANT))
        created = user is None
        if user is None:
            username = f"sim-{uscc.lower()}"
            password = security.new_password(self.settings, username=username, password=secrets.token_urlsafe(18))  # at the cost above: µs
            user = security.create_user(s, self.settings, username=username, password=password, role=Role.APPLICANT, resident_id=self.rep_ids[uscc],
                                        now=now)
            audit.note(s, Actor.system("history", Role.ADMIN), "user.create", "user", user.id, at=now, after=user)
        return security.actor_of(user, now), created

    def _apply_one(self, s: Session, rt: Runtime, uscc: str, day: date, now: datetime) -> tuple[Actor, bool, str, int | None]:
        """One application: (the applicant, whether their user was made now, the decision's outcome, the line signed)."""
        rep, created = self._applicant(s, uscc, now)
        if orig.find_enterprise(s, uscc) is None:
            ent = orig.register_enterprise(s, uscc=uscc, name=self.names[uscc], registrant=rep, pii_key=rt.settings.derived_key("pii"), now=now)
            audit.note(s, rep, "enterprise.register", "enterprise", ent.uscc, at=now, after=ent)
        consent = orig.grant_consent(s, uscc=uscc, scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=CONSENT_DAYS, signer=rep,
                                     now=now, bureau_authorization=True)
        audit.note(s, rep, "consent.grant", "consent", consent.id, at=now, after=consent)
        decision = orig.measure(s, uscc=uscc, consent_id=consent.id, as_of=day, now=now, bundle=rt.bundle, model=rt.model, tech=rt.tech,
                                initiated_by=rep.user_id, actor=rep)
        audit.note(s, rep, "decision.record", "decision", decision.id, at=now, after=decision)
        offer = next((o for o in orig.offers_of(s, decision.id)
                      if o.approved_fen > 0 and rt.bundle.products[o.product].repayment_method == REVOLVING), None)
        if offer is None:
            return rep, created, decision.outcome, None
        line = orig.accept_offer(s, decision_id=decision.id, product=offer.product, signer=rep, as_of=day, now=now)
        audit.note(s, rep, "line.open", "line", line.id, at=now, after=line)
        return rep, created, decision.outcome, line.id

    # --- movements ---------------------------------------------------------------------------------------------

    def states(self, s: Session, day: date) -> dict[int, LineState]:
        """Each followed line as its owner sees it today (three queries for all of them)."""
        ids = list(self.lines.values())
        out: dict[int, LineState] = {}
        for chunk in _chunks(ids, 5_000):
            lines = s.execute(select(m.CreditLine.id, m.CreditLine.status, m.CreditLine.limit_fen, m.CreditLine.drawn_principal_fen,
                                     m.CreditLine.opened_on, m.CreditLine.expires_on).where(m.CreditLine.id.in_(chunk))).all()
            open_drawings: dict[int, list[m.Drawing]] = defaultdict(list)
            for d in s.scalars(select(m.Drawing).where(m.Drawing.line_id.in_(chunk), m.Drawing.status == DrawingStatus.OPEN)):
                open_drawings[d.line_id].append(d)
            ever = dict(s.execute(select(m.Drawing.line_id, func.count()).where(m.Drawing.line_id.in_(chunk)).group_by(m.Drawing.line_id)).all())
            for ln in lines:
                b = svc.balances_of(open_drawings[ln.id])
                active = ln.status == LineStatus.ACTIVE and ln.opened_on <= day < ln.expires_on
                due = b.due_principal_fen + b.overdue_principal_fen + b.interest_fen + b.overdue_interest_fen + b.penalty_fen + b.compound_fen
                out[ln.id] = LineState(
                    line_id=ln.id, available_fen=max(0, ln.limit_fen - ln.drawn_principal_fen) if active else 0,
                    principal_fen=b.principal_fen - b.due_principal_fen, due_fen=due,
                    accrued_fen=b.interest_accrued_fen + b.penalty_accrued_fen + b.compound_accrued_fen,
                    open_drawings=len(open_drawings[ln.id]), drawings_ever=int(ever.get(ln.id, 0)), expires_on=ln.expires_on,
                    active=active)
        return out

    def move(self, rt: Runtime, day: date, result: HistoryResult) -> None:
        """Today's repayments, draws and closes on the open lines."""
        with rt.uow.read() as s:
            states = self.states(s, day)
        self.carry_out(rt, day, [a for uscc, line_id in self.lines.items()
                                 for a in line_actions(self.seed, day, self.start, self.traits[uscc], states[line_id], self.rates)], result)

    def carry_out(self, rt: Runtime, day: date, actions: list[Action], result: HistoryResult) -> None:
        """Movements in units of work of at most `BATCH_ACTIONS`, each in its savepoint."""
        rules = class_rules(rt.bundle.classification)
        now = rt.now()
        for chunk in _chunks(actions, BATCH_ACTIONS):
            with rt.uow.write() as s:
                for action in chunk:
                    try:
                        with _savepoint(s):
                            self._move_one(s, action, day, now, rules, result)
                    except SanduError as exc:
                        result.refused[f"{action.act.value}: {exc.field}"] += 1

    def _move_one(self, s: Session, a: Action, day: date, now: datetime, rules, result: HistoryResult) -> None:
        assert a.line_id is not None, "a movement names its line"
        key = f"history-{self.seed}-{day.isoformat()}-{a.act.value}-{a.line_id}"
        rep, _ = self._applicant(s, a.uscc, now)  # a line opened by an earlier run: its legal representative's user exists
        if a.act is Act.DRAW:
            r = svc.draw(s, line_id=a.line_id, amount_fen=a.amount_fen, on_date=day, idempotency_key=key, now=now, rules=rules, drawn_by=rep.user_id)
            audit.note(s, rep, "line.draw", "drawing", r.drawing.id, at=now, after=r.drawing)
            result.draws += 1
            result.drawn_fen += a.amount_fen
        elif a.act is Act.REPAY:
            before = audit.state_sha256(svc.get_line(s, a.line_id))
            svc.repay(s, line_id=a.line_id, amount_fen=a.amount_fen, on_date=day, idempotency_key=key, now=now, rules=rules)
            audit.note(s, rep, "line.repay", "line", a.line_id, at=now, before=before, after=svc.get_line(s, a.line_id))
            result.repayments += 1
            result.repaid_fen += a.amount_fen
        else:
            line = svc.get_line(s, a.line_id)
            ent = s.get(m.Enterprise, line.enterprise_id)
            assert ent is not None, "a line has its enterprise"
            officer = self.officers.get(ent.branch) or Actor.system("history", Role.OFFICER)
            before = audit.state_sha256(line)
            svc.close_line(s, line_id=a.line_id)
            audit.note(s, officer, "line.close", "line", a.line_id, at=now, before=before, after=line)
            del self.lines[a.uscc]
            result.closes += 1
