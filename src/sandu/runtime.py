"""What an interface needs to call a service: settings, the unit of work, the
policy, the risk model, the tech-evaluation config and the clock.

Built once per process; holds no per-request state, so API processes can be
scaled out against one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

from sqlalchemy import Engine, text

from sandu.audit import service as audit
from sandu.domain.dates import business_date
from sandu.observability import Metrics
from sandu.policy.bundle import PolicyBundle, load_bundle
from sandu.policy.kernel import require_tech_grades
from sandu.scoring.risk import AnyRiskModel, load_model
from sandu.scoring.tech_config import TechConfig, load_tech_config
from sandu.security.limits import RateLimiter
from sandu.settings import SecretMissing, Settings, get_settings
from sandu.store.db import UnitOfWork, make_engine


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

    def __post_init__(self) -> None:
        require_tech_grades(self.bundle, self.tech.grade_names, self.tech.label)  # every grade the evaluation gives has a price
        if self.uow is None:
            self.uow = UnitOfWork(self.engine, self.settings, before_commit=audit.seal)
        assert self.uow.engine is self.engine, "a runtime's unit of work runs on its own engine"

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
