"""How `sandu serve` serves the app: uvicorn's options, and the HTTP protocol it speaks.

- **h11, pinned, bounding what a head may buffer.** The app refuses a request whose head (request line and headers)
  is larger than `max_head_bytes` with 431 (`sandu.api.errors.SizeLimitMiddleware`, exact). Below it, h11 refuses
  with 400 a head of which more than twice that is buffered still waiting for its end, so a connection never holds
  more than that plus one read of the socket (asyncio: 256 KiB) — and a head of up to `max_head_bytes` is always
  parsed and reaches the app, however its bytes are split. uvicorn applies that bound to h11 only, and its "auto"
  protocol would switch to httptools, which bounds no head, as soon as httptools happens to be installed.
- **Nagle's algorithm off on every connection.** With more than one process uvicorn binds the listening socket
  itself (`socket.socket(family)`: protocol 0), and asyncio sets TCP_NODELAY only on connections of a socket whose
  protocol says IPPROTO_TCP. A response's body, written after its head, then waited for the client's delayed ACK:
  40 ms on Linux, on every request that found its connection idle (measured with one client on 2 processes:
  GET /healthz 44 ms at p50, a measurement 56 ms; with this protocol 1.0 and 15 ms, as on one process).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from sandu.settings import Settings

BUFFERED_HEADS = 2  # h11 buffers at most this many times max_head_bytes of a head waiting for its end
KEEP_ALIVE_S = 15
CONNECTIONS_PER_THREAD = 4  # uvicorn answers 503 to connections past worker_threads × this, per process


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on `transport`'s socket when it is TCP (not a Unix socket)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with TCP_NODELAY set on each connection as it is made, whoever bound the socket."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `sandu serve` gives uvicorn besides the app, host, port and number of processes."""
    return {"http": NoDelayH11Protocol, "h11_max_incomplete_event_size": settings.max_head_bytes * BUFFERED_HEADS, "log_level": "warning",
            "access_log": False, "timeout_keep_alive": KEEP_ALIVE_S, "limit_concurrency": settings.worker_threads * CONNECTIONS_PER_THREAD}
