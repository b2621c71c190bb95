"""What an interface needs to call a service: settings, the unit of work, the
policy, the risk model, the tech-evaluation config and the clock.

Built once per process; holds no per-request state, so API processes can be
scaled out against one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

from sqlalchemy import Engine, bindparam, select, text
from sqlalchemy.orm import Session

from sandu.audit import service as audit
from sandu.domain.dates import business_date
from sandu.intake.config import IntakeConfigError, adapters_from_settings, deadlines_s
from sandu.intake.outcome import ReadOutcome, SourceAdapter
from sandu.intake.reader import read_all
from sandu.intake.simulated import SimulatedAdapter
from sandu.observability import Metrics
from sandu.policy.bundle import PolicyBundle, load_bundle
from sandu.policy.kernel import require_tech_grades
from sandu.scoring.risk import AnyRiskModel, load_model
from sandu.scoring.tech_config import TechConfig, load_tech_config
from sandu.security.limits import RateLimiter
from sandu.settings import SecretMissing, Settings, get_settings
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.consent_text import RAW_RETENTION_MAX_DAYS
from sandu.store import models as m
from sandu.store.db import UnitOfWork, is_sqlite, make_engine

# Built once, its values as parameters (see sandu.store.db): the simulated universe's payloads of one enterprise's sources.
_SIMULATED_PAYLOADS = select(m.SourceRecord.source, m.SourceRecord.payload).where(
    m.SourceRecord.uscc == bindparam("uscc"), m.SourceRecord.source.in_(bindparam("sources", expanding=True)))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    engine: Engine
    bundle: PolicyBundle
    model: AnyRiskModel
    tech: TechConfig = field(default_factory=load_tech_config)  # the shipped config unless given
    clock: Callable[[], datetime] = field(default=utc_now)
    settings: Settings = field(default_factory=get_settings)
    uow: UnitOfWork = field(default=None)  # type: ignore[assignment]  # built from engine and settings unless shared
    limiter: RateLimiter = field(default_factory=RateLimiter)  # per process, shared by runtimes made with with_clock
    metrics: Metrics = field(default_factory=Metrics)
    adapters: dict[str, SourceAdapter] = field(default=None)  # type: ignore[assignment]  # source → adapter; the settings' unless given

    def __post_init__(self) -> None:
        require_tech_grades(self.bundle, self.tech.grade_names, self.tech.label)  # every grade the evaluation gives has a price
        if self.uow is None:
            self.uow = UnitOfWork(self.engine, self.settings, before_commit=audit.seal, on_write=self.metrics.write)
        assert self.uow.engine is self.engine, "a runtime's unit of work runs on its own engine"
        if unknown := sorted(set(self.settings.source_retention_days) - set(ALL_SOURCES)):
            raise IntakeConfigError(f"SANDU_SOURCE_RETENTION_DAYS names {', '.join(unknown)}, which are not data sources (allowed: {', '.join(ALL_SOURCES)})")
        if (longest := max([self.settings.sources_retention_days, *self.settings.source_retention_days.values()])) > RAW_RETENTION_MAX_DAYS:
            raise IntakeConfigError(f"SANDU_SOURCES_RETENTION_DAYS / SANDU_SOURCE_RETENTION_DAYS: {longest} days is longer than the consent text "
                                    f"promises (at most {RAW_RETENTION_MAX_DAYS} days after a read; allowed: 0..{RAW_RETENTION_MAX_DAYS})")
        if self.adapters is None:  # built once: the http adapter's connections and circuit breakers live for the process
            self.adapters = adapters_from_settings(self.settings, self._simulated_lookup)

    def _simulated_lookup(self, uscc: str, source: str) -> object:
        """The simulated universe's payload of one source (its own short read: adapters run on reader threads)."""
        with self.uow.read() as s:
            return s.scalar(select(m.SourceRecord.payload).where(m.SourceRecord.uscc == uscc, m.SourceRecord.source == source))

    def read_sources(self, sources: tuple[str, ...], uscc: str, as_of: date, session: Session | None = None) -> dict[str, ReadOutcome]:
        """Read `sources` about `uscc` concurrently through the adapters, within the settings' deadlines.

        The simulated sources are fetched from the store in one query first (on `session`, the caller's read,
        or one short session of its own — not one per source: under load, a session per source per measurement
        would drain the pool) and served by a simulated adapter over what that query returned."""
        per_source, overall = deadlines_s(self.settings)
        adapters = dict(self.adapters)
        simulated = [s for s in sources if isinstance(adapters.get(s), SimulatedAdapter)]
        if simulated:
            with self.uow.read() if session is None else nullcontext(session) as s:
                rows = dict(s.connection().execute(_SIMULATED_PAYLOADS, {"uscc": uscc, "sources": simulated}).tuples().all())
            fetched = SimulatedAdapter(lambda _uscc, source: rows.get(source), in_memory=True)
            adapters.update(dict.fromkeys(simulated, fetched))
        return read_all(adapters, sources, uscc, as_of, per_source_deadline_s=per_source, overall_deadline_s=overall)

    @property
    def store_is_local(self) -> bool:
        """The store is a file on this machine (SQLite): a wait on it is for another process's short write transaction,
        never a network round trip or a lock held across one."""
        return is_sqlite(self.engine)

    @property
    def sources_are_local(self) -> bool:
        """Every source is served from the store (the simulated universe): reading them waits on nothing else."""
        return all(isinstance(a, SimulatedAdapter) for a in self.adapters.values())

    def with_clock(self, clock: Callable[[], datetime]) -> Runtime:
        """The same runtime (same store, same writer queue) on another clock."""
        return replace(self, clock=clock)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return business_date(self.clock())

    def upgrade_schema(self) -> str:
        """Create or migrate the schema to the latest revision; returns it."""
        from sandu.store.migrate import upgrade

        try:
            key = self.settings.derived_key("pii")
        except SecretMissing:
            key = None  # enough for an empty store; a store holding enterprises says it needs the key
        return upgrade(self.engine, pii_key=key)

    def check_store(self) -> None:
        """Raises unless the store answers a query."""
        with self.uow.read() as s:
            s.execute(text("SELECT 1"))

    def store_label(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


def make_runtime(settings: Settings | None = None) -> Runtime:
    """The runtime of `settings`; on `SANDU_CLOCK=simulated` its clock stands on the business calendar
    (`servicing.calendar.simulated_clock`), which refuses a store not marked as a demo or test store."""
    settings = settings or get_settings()
    rt = Runtime(
        engine=make_engine(settings=settings),
        bundle=load_bundle(settings.policy),
        model=load_model(),
        tech=load_tech_config(settings.tech_config),
        settings=settings,
    )
    if settings.clock == "simulated":
        from sandu.servicing.calendar import simulated_clock

        rt = rt.with_clock(simulated_clock(rt.uow, utc_now))
    return rt
