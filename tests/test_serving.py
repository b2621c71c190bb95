"""How `sandu serve` serves: a real uvicorn server on loopback with the options `sandu serve` gives it, on a socket
bound as uvicorn binds it for several processes (`Config.bind_socket`: protocol 0, the case asyncio leaves Nagle's
algorithm on)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from sandu.api.serving import MAX_HEAD_BYTES, uvicorn_options
from sandu.settings import Settings

ASYNCIO_READ_BYTES = 256 * 1024  # the most one read of a connection's socket takes (asyncio's selector transport)


async def hello(scope, receive, send) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


@contextmanager
def served(**options) -> Iterator[tuple[uvicorn.Server, int]]:
    """`hello` on a socket bound by uvicorn itself, as `sandu serve --workers N` (N > 1) has it bound."""
    config = uvicorn.Config(hello, host="127.0.0.1", port=0, loop="asyncio", lifespan="off", **options)
    sock = config.bind_socket()
    assert sock.proto == 0, "uvicorn binds with protocol 0: the case this module is about"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start within 15 s"
        time.sleep(0.02)
    try:
        yield server, sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def nagle_off_on_server_side(server: uvicorn.Server) -> list[bool]:
    """For each open connection of `server`: is TCP_NODELAY set on its socket?"""
    return [bool(p.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            for p in list(server.server_state.connections)]


def get(port: int, headers: dict[str, str] | None = None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/", headers=headers or {})
    response = conn.getresponse()
    response.read()
    return conn, response


def test_every_connection_has_nagles_algorithm_off():
    with served(**uvicorn_options(Settings())) as (server, port):
        conns = [get(port)[0] for _ in range(3)]
        assert nagle_off_on_server_side(server) == [True] * 3
        for conn in conns:
            conn.close()


def test_uvicorns_own_protocol_on_such_a_socket_leaves_nagle_on():
    """Why the protocol is sandu's own: with uvicorn's h11 protocol on the same socket Nagle's algorithm stays on, and
    a response's body waits for the client's delayed ACK. (Should uvicorn set it one day, this fails and the subclass
    can go.)"""
    options = {**uvicorn_options(Settings()), "http": H11Protocol}
    with served(**options) as (server, port):
        conn, response = get(port)
        assert response.status == 200
        assert nagle_off_on_server_side(server) == [False]
        conn.close()


def raw_get(port: int, head_bytes: int) -> bytes:
    """GET / with a header of `head_bytes`, sent over a raw socket in 16 KiB pieces; what came back (b"" when the server
    reset the connection before answering: it closed with the rest of the head unread)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        data = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * head_bytes + b"\r\n\r\n"
        try:
            for at in range(0, len(data), 16 * 1024):
                sock.sendall(data[at:at + 16 * 1024])
            return sock.recv(1024)
        except (BrokenPipeError, ConnectionResetError):
            return b""


@pytest.mark.parametrize("head_bytes", [MAX_HEAD_BYTES - 1024, ASYNCIO_READ_BYTES + 1024])
def test_a_request_head_is_bounded(head_bytes):
    """A head within MAX_HEAD_BYTES is served; one longer than a read of the socket cannot arrive whole, so more than
    MAX_HEAD_BYTES of it wait for their end, and it is refused (400, or the connection reset). Between the two it depends
    on how the pieces are read. The server goes on serving."""
    with served(**uvicorn_options(Settings())) as (_server, port):
        answer = raw_get(port, head_bytes)
        if head_bytes < MAX_HEAD_BYTES:
            assert answer.startswith(b"HTTP/1.1 200 ")
        else:
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:80]
        conn, response = get(port)
        assert response.status == 200
        conn.close()
