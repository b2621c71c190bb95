"""One settings object for every process (API, web, CLI): environment variables
prefixed `SANDU_`, read once, validated, with the limits each part obeys.

`SANDU_DATABASE_URL`   the store (default: the SQLite file var/sandu.db)
`SANDU_POLICY`         a policy bundle file (default: the bundle shipped with sandu)
`SANDU_HOST`, `SANDU_PORT`   where `sandu serve` listens
`SANDU_WORKER_THREADS` request threads per process; the connection pool is sized to it
`SANDU_WRITE_WAIT_S`, `SANDU_WRITE_QUEUE_MAX`   how long and how many writers may queue
`SANDU_EOD_BATCH_LINES`       lines per end-of-day batch
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var/sandu.db")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDU_", extra="ignore", frozen=True)

    database_url: str = Field(default="", description="SQLAlchemy URL; empty means the SQLite file var/sandu.db")
    policy: Path | None = Field(default=None, description="policy bundle file; default: the shipped bundle")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    worker_threads: int = Field(default=40, ge=1, le=512, description="request threads; the connection pool has as many connections")
    write_wait_s: float = Field(default=30.0, gt=0, le=600, description="a writer waits this long for its turn, then gets 503 busy")
    write_queue_max: int = Field(default=1000, ge=1, le=100_000, description="writers that may wait at once; more get 503 busy")
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0, le=600_000, description="wait for another process's write lock")
    eod_batch_lines: int = Field(default=1000, ge=1, le=100_000, description="lines per end-of-day batch")

    def store_url(self) -> str:
        """The database URL, creating var/ for the default SQLite file."""
        if self.database_url.strip():
            return self.database_url.strip()
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
