"""The adapters the settings ask for, one per source.

`adapters_from_settings` builds at most one adapter of each kind and maps every
source of the catalog to one of them. The runtime holds the dict for the life of
the process: the http adapter's connection pool and circuit breakers live in it.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandu.domain.errors import show
from sandu.intake.files import FileAdapter
from sandu.intake.http import HttpAdapter
from sandu.intake.outcome import SourceAdapter
from sandu.intake.simulated import Lookup, SimulatedAdapter
from sandu.sources.catalog import ALL_SOURCES

if TYPE_CHECKING:
    from sandu.settings import Settings


class IntakeConfigError(ValueError):
    """The source settings do not make a working set of adapters (names the setting)."""


def adapter_kinds(settings: Settings) -> dict[str, str]:
    """source → "simulated" | "file" | "http"."""
    unknown = sorted(set(settings.source_adapters) - set(ALL_SOURCES))
    if unknown:
        raise IntakeConfigError(f"SANDU_SOURCE_ADAPTERS names {', '.join(unknown)}, which are not data sources (allowed: {', '.join(ALL_SOURCES)})")
    return {s: settings.source_adapters.get(s, settings.sources_adapter) for s in ALL_SOURCES}


def deadlines_s(settings: Settings) -> tuple[dict[str, float], float]:
    """(per-source deadlines, the overall deadline), in seconds, for `read_all`."""
    unknown = sorted(set(settings.source_deadlines_ms) - set(ALL_SOURCES))
    if unknown:
        raise IntakeConfigError(f"SANDU_SOURCE_DEADLINES_MS names {', '.join(unknown)}, which are not data sources (allowed: {', '.join(ALL_SOURCES)})")
    per = {s: settings.source_deadlines_ms.get(s, settings.sources_deadline_ms) / 1000 for s in ALL_SOURCES}
    return per, settings.sources_overall_deadline_ms / 1000


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")  # an HTTP token (RFC 9110)
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,4096}")  # visible ASCII and spaces: no CR, LF or other control character
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})  # set by the client itself


def http_headers(settings: Settings) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(headers sent with every read, source → headers of that source over them), checked. An error
    names the setting and the header, never the value (a credential)."""
    unknown = sorted(set(settings.source_http_headers) - set(ALL_SOURCES))
    if unknown:
        raise IntakeConfigError(f"SANDU_SOURCE_HTTP_HEADERS names {', '.join(unknown)}, which are not data sources (allowed: {', '.join(ALL_SOURCES)})")

    def checked(setting: str, headers: dict[str, Any]) -> dict[str, str]:
        out = {}
        for name, secret in headers.items():
            value = secret.get_secret_value()
            if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
                raise IntakeConfigError(f"{setting}: {show(name)} is not a header sandu may send (allowed: an HTTP token of at most 64 "
                                        f"characters, not {', '.join(sorted(_RESERVED_HEADERS))})")
            if not _HEADER_VALUE.fullmatch(value):
                raise IntakeConfigError(f"{setting}: the value of {name} must be 1..4096 visible ASCII characters or spaces (no line breaks)")
            out[name] = value
        return out

    common = checked("SANDU_SOURCES_HTTP_HEADERS", settings.sources_http_headers)
    return common, {s: checked(f"SANDU_SOURCE_HTTP_HEADERS[{s}]", h) for s, h in settings.source_http_headers.items()}


def adapters_from_settings(
    settings: Settings,
    lookup: Lookup,
    *,
    breaker_clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> dict[str, SourceAdapter]:
    """source → the adapter that serves it, as the settings say. Raises `IntakeConfigError`
    when an adapter is asked for without what it needs (a URL, a folder)."""
    kinds = adapter_kinds(settings)
    built: dict[str, SourceAdapter] = {}
    if "simulated" in kinds.values():
        built["simulated"] = SimulatedAdapter(lookup)
    if "file" in kinds.values():
        folder = settings.sources_file_dir
        if folder is None or not folder.is_dir():
            raise IntakeConfigError(f"SANDU_SOURCES_FILE_DIR must be an existing folder for the file adapter, got {folder!s}")
        built["file"] = FileAdapter(folder)
    if "http" in kinds.values():
        if not settings.sources_http_url.strip():
            raise IntakeConfigError("SANDU_SOURCES_HTTP_URL must be set for the http adapter")
        common, per_source = http_headers(settings)
        try:
            built["http"] = HttpAdapter(
                settings.sources_http_url.strip(),
                connect_timeout_s=settings.sources_http_connect_ms / 1000,
                read_timeout_s=max([settings.sources_deadline_ms, *settings.source_deadlines_ms.values()]) / 1000,
                retries=settings.sources_http_retries,
                backoff_s=settings.sources_http_backoff_ms / 1000,
                breaker_failures=settings.sources_breaker_failures,
                breaker_cooldown_s=settings.sources_breaker_cooldown_s,
                breaker_clock=breaker_clock,
                headers=common,
                source_headers=per_source,
                rng=rng,
            )
        except ValueError as e:
            raise IntakeConfigError(f"SANDU_SOURCES_HTTP_URL: {e}") from e
    return {s: built[k] for s, k in kinds.items()}
