"""One settings object for every process (API, web, CLI): environment variables
prefixed `SANDU_`, read once, validated, with the limits each part obeys.

`SANDU_DATABASE_URL`   the store (default: the SQLite file var/sandu.db)
`SANDU_POLICY`         a policy bundle file (default: the bundle shipped with sandu)
`SANDU_TECH_CONFIG`    a tech-evaluation config file (default: scoring/models/tech_v1.toml)
`SANDU_HOST`, `SANDU_PORT`   where `sandu serve` listens
`SANDU_WORKER_THREADS` request threads per process; the connection pool is sized to it
`SANDU_WRITE_WAIT_S`, `SANDU_WRITE_QUEUE_MAX`   how long and how many writers may queue
`SANDU_EOD_BATCH_LINES`       lines per end-of-day batch
`SANDU_SECRET_KEY` or `SANDU_SECRET_KEY_FILE`   signs tokens and keys the hashes of
                       resident IDs; never committed, never logged (`sandu demo` writes one
                       to var/secret.key, readable only by its owner)
`SANDU_ACCESS_TOKEN_MINUTES`, `SANDU_REFRESH_TOKEN_DAYS`, `SANDU_REAUTH_MINUTES`
`SANDU_LOGIN_MAX_FAILURES`, `SANDU_LOGIN_LOCK_MINUTES`, `SANDU_RATE_*`, `SANDU_MAX_BODY_BYTES`
`SANDU_SOURCES_ADAPTER`  which adapter reads the data sources: simulated (default), file or http
`SANDU_SOURCE_ADAPTERS`  per-source overrides, JSON: '{"credit_bureau": "http"}'
`SANDU_SOURCES_HTTP_URL`, `SANDU_SOURCES_FILE_DIR`   where the http and file adapters read
`SANDU_SOURCES_DEADLINE_MS`, `SANDU_SOURCE_DEADLINES_MS` (JSON, per source), `SANDU_SOURCES_OVERALL_DEADLINE_MS`
`SANDU_SOURCES_HTTP_CONNECT_MS`, `SANDU_SOURCES_HTTP_RETRIES`, `SANDU_SOURCES_HTTP_BACKOFF_MS`,
`SANDU_SOURCES_BREAKER_FAILURES`, `SANDU_SOURCES_BREAKER_COOLDOWN_S`   (sandu.intake)
`SANDU_SOURCES_HTTP_HEADERS` (JSON) and `SANDU_SOURCE_HTTP_HEADERS` (JSON, per source, over the common ones):
                       what the http adapter sends with each read — a gateway's credential, say
                       '{"Authorization": "Bearer …"}'; the values are secrets, never shown or logged
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var/sandu.db")
DEFAULT_SECRET_FILE = Path("var/secret.key")
MIN_SECRET_BYTES = 32
SourceAdapterKind = Literal["simulated", "file", "http"]


class SecretMissing(RuntimeError):
    """No secret key is configured (a setting error, reported by the CLI with its name)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDU_", extra="ignore", frozen=True)

    database_url: str = Field(default="", description="SQLAlchemy URL; empty means the SQLite file var/sandu.db")
    policy: Path | None = Field(default=None, description="policy bundle file; default: the shipped bundle")
    tech_config: Path | None = Field(default=None, description="tech-evaluation config file (科创评价); default: the shipped config")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    worker_threads: int = Field(default=40, ge=1, le=512, description="request threads; the connection pool has as many connections")
    write_wait_s: float = Field(default=30.0, gt=0, le=600, description="a writer waits this long for its turn, then gets 503 busy; a measurement must reach the writer this long after asking for its turn")
    measure_concurrency: int = Field(default=4, ge=1, le=512, description="measurements one server process runs at once; more wait their "
                                     "turn (holding no thread), as long as a writer would; raise it when the data sources answer slowly")
    write_queue_max: int = Field(default=1000, ge=1, le=100_000, description="writers that may wait at once; more get 503 busy")
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0, le=600_000, description="wait for another process's write lock")
    statement_timeout_ms: int = Field(default=60_000, ge=100, le=3_600_000, description="PostgreSQL: the longest one statement may run")
    eod_batch_lines: int = Field(default=1000, ge=1, le=100_000, description="lines per end-of-day batch")
    clock: Literal["real", "simulated"] = Field(
        default="real", description="simulated: the business date moves only with end of day, which may run ahead of the calendar "
        "(demo and test stores only)")

    secret_key: SecretStr | None = Field(default=None, description=f"at least {MIN_SECRET_BYTES} characters; signs tokens, keys ID hashes")
    secret_key_file: Path = Field(default=DEFAULT_SECRET_FILE, description="read when SANDU_SECRET_KEY is not set")
    access_token_minutes: int = Field(default=15, ge=1, le=60)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    reauth_minutes: int = Field(default=5, ge=1, le=30, description="signing and drawing need a password given this recently")
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    argon2_time_cost: int = Field(default=3, ge=1, le=10)
    argon2_memory_kib: int = Field(default=65_536, ge=8, le=1_048_576)
    rate_measure_per_minute: int = Field(default=20, ge=1, le=10_000, description="measurements per identity per minute")
    rate_movement_per_minute: int = Field(default=60, ge=1, le=100_000, description="draws and repayments per identity per minute")
    referral_sla_hours: int = Field(default=48, ge=1, le=24 * 30, description="the staff console's service level for a referral: hours from joining the queue to a decision")
    rate_signup_per_hour: int = Field(default=20, ge=1, le=10_000, description="sign-ups per client address per hour")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="larger request bodies get 413")
    max_head_bytes: int = Field(default=16 * 1024, ge=4 * 1024, le=1024 * 1024,
                                description="a larger request head (request line and headers) gets 431")

    # data sources (sandu.intake): which adapter serves which source, and the deadlines of a read
    sources_adapter: SourceAdapterKind = Field(default="simulated", description="the adapter of every source without an override")
    source_adapters: dict[str, SourceAdapterKind] = Field(default_factory=dict, description="per-source overrides, e.g. {\"credit_bureau\": \"http\"}")
    sources_http_url: str = Field(default="", description="base URL of the http adapter: GET {url}/{source}/{uscc}?as_of=YYYY-MM-DD")
    sources_file_dir: Path | None = Field(default=None, description="the file adapter's drop folder: {dir}/{source}.csv|.parquet|.json")
    sources_deadline_ms: int = Field(default=2000, ge=10, le=60_000, description="one source's read, retries included")
    source_deadlines_ms: dict[str, Annotated[int, Field(ge=10, le=60_000)]] = Field(default_factory=dict, description="per-source deadlines overriding sources_deadline_ms")
    sources_overall_deadline_ms: int = Field(default=5000, ge=10, le=120_000, description="all the sources of one application")
    sources_http_connect_ms: int = Field(default=1000, ge=10, le=60_000, description="http adapter: connect timeout of one attempt")
    sources_http_retries: int = Field(default=2, ge=0, le=5, description="http adapter: retries of a transient failure")
    sources_http_backoff_ms: int = Field(default=50, ge=1, le=10_000, description="http adapter: the first retry's back-off (doubling, jittered)")
    sources_http_headers: dict[str, SecretStr] = Field(default_factory=dict, description="http adapter: headers sent with every read (values are secret)")
    source_http_headers: dict[str, dict[str, SecretStr]] = Field(default_factory=dict, description="http adapter: per-source headers over sources_http_headers")
    sources_breaker_failures: int = Field(default=5, ge=1, le=1000, description="failed reads in a row that open a source's breaker")
    sources_breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600, description="how long an open breaker stays open")
    sources_retention_days: int = Field(default=90, ge=0, le=3650, description="days a source's raw payload is kept after its read (0: not kept)")
    source_retention_days: dict[str, Annotated[int, Field(ge=0, le=3650)]] = Field(default_factory=dict, description="per-source retention overriding sources_retention_days")

    def store_url(self) -> str:
        """The database URL, creating var/ for the default SQLite file."""
        if self.database_url.strip():
            return self.database_url.strip()
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"


    def secret(self) -> bytes:
        """The secret key: SANDU_SECRET_KEY, else the key file; refuses a missing or short one."""
        if self.secret_key is not None:
            raw = self.secret_key.get_secret_value().encode("utf-8")
        elif self.secret_key_file.is_file():
            raw = self.secret_key_file.read_bytes().strip()
        else:
            raise SecretMissing(
                f"SANDU_SECRET_KEY is not set and {self.secret_key_file} does not exist "
                "(`sandu demo` creates one for the demo; in production set it from your secret store)"
            )
        if len(raw) < MIN_SECRET_BYTES:
            raise SecretMissing(f"the secret key must be at least {MIN_SECRET_BYTES} bytes, got {len(raw)}")
        return raw

    def derived_key(self, purpose: str) -> bytes:
        """A key for one purpose ("jwt", "pii", …), derived from the secret, so that a
        token key can never be used to reverse an ID hash and the other way round."""
        return hmac.new(self.secret(), f"sandu:{purpose}".encode(), hashlib.sha256).digest()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
