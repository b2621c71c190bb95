"""What an interface needs to call a service: store, policy, model, clock.

Built once per process; holds no per-request state, so API processes can be
scaled out against one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sandu.domain.dates import business_date
from sandu.policy.bundle import PolicyBundle, load_bundle
from sandu.scoring.risk import RiskModel, load_model
from sandu.store.db import make_engine, read_session_factory, session_factory


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    engine: Engine
    bundle: PolicyBundle
    model: RiskModel
    clock: Callable[[], datetime] = field(default=utc_now)
    sessions: sessionmaker[Session] = field(init=False)
    read_sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = session_factory(self.engine)
        self.read_sessions = read_session_factory(self.engine)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return business_date(self.clock())


def make_runtime(url: str | None = None, policy_path: str | None = None) -> Runtime:
    return Runtime(engine=make_engine(url), bundle=load_bundle(policy_path), model=load_model())
