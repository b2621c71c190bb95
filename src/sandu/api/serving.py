"""How `sandu serve` serves the app: uvicorn's options, and the HTTP protocol it speaks.

- **h11, pinned, bounding what a head may buffer.** The app refuses a request whose head (request line and headers)
  is larger than `max_head_bytes` with 431 (`sandu.api.errors.SizeLimitMiddleware`, exact). Below it, h11 refuses
  with 400 a head of which more than twice that is buffered still waiting for its end, so a connection never holds
  more than that plus one read of the socket (asyncio: 256 KiB) — and a head of up to `max_head_bytes` is always
  parsed and reaches the app, however its bytes are split. uvicorn applies that bound to h11 only, and its "auto"
  protocol would switch to httptools, which bounds no head, as soon as httptools happens to be installed.
- **Nagle's algorithm off on every connection.** With more than one process the listening sockets are made with
  `socket.socket(family)` (protocol 0: by `PerProcessListener` below, and by uvicorn before 0.55), and asyncio sets TCP_NODELAY
  only on connections of a socket whose protocol says IPPROTO_TCP. A response's body, written after its head, then
  waited for the client's delayed ACK: 40 ms on Linux, on every request that found its connection idle (measured with
  one client on 2 processes: GET /healthz 44 ms at p50, a measurement 56 ms; with this protocol 1.0 and 15 ms, as on
  one process).
- **A listening socket of its own in each process** (`PerProcessListener`, where the system has SO_REUSEPORT).
  uvicorn's processes otherwise share one listening socket, and asyncio accepts every connection waiting on it in
  one go: a burst of new connections all went to whichever process woke first and stayed there (keep-alive). Under
  50 clients one of two processes took 4.8 s of CPU in 5 s, the other 0.7 s, and the pair served 210 measurements/s
  — a single process' worth. With a socket per process the kernel spreads new connections over them.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

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


def _bound_beside_others(sock: socket.socket, address: tuple[Any, ...]) -> None:
    """Bind `sock` to `address` beside the other processes' sockets (SO_REUSEPORT); closed when that fails."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise


def _listening_socket(family: int, address: tuple[Any, ...]) -> socket.socket:
    """A new socket of `family` bound to `address` beside the other processes'; uvicorn makes it listen."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    _bound_beside_others(sock, address)
    return sock


class PerProcessListener(socket.socket):
    """The address the server processes listen on, bound in the supervisor with SO_REUSEPORT but not listening (so the
    port is taken, and a port in use is refused before any process starts, yet no connection ever waits on it). uvicorn
    hands its sockets to each process it starts by pickling them; this one pickles as the recipe for a socket of that
    process' own, bound to the same address, so every process — a restarted one too — listens on a socket of its own."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return _listening_socket, (self.family, self.getsockname())


def per_process_listener(host: str, port: int) -> PerProcessListener | None:
    """The supervisor's `PerProcessListener` on host:port; None where the kernel does not spread connections over the
    sockets sharing a port (SO_REUSEPORT balances on Linux only). OSError when the address cannot be bound."""
    if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
        return None
    listener = PerProcessListener(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    _bound_beside_others(listener, (host, port))
    return listener


def serve_processes(app: str, listener: PerProcessListener | None, *, workers: int, options: dict[str, Any], host: str, port: int) -> None:
    """Serve the app factory named `app` from `workers` processes under uvicorn's supervisor (which restarts a process
    that dies): each on a socket of its own made from `listener`, or, without one, all on a socket uvicorn binds."""
    if listener is None:
        uvicorn.run(app, factory=True, workers=workers, host=host, port=port, **options)
        return
    config = uvicorn.Config(app, factory=True, workers=workers, host=host, port=port, **options)
    try:
        Multiprocess(config, sockets=[listener]).run()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
