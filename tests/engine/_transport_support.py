"""Loopback servers and raw-frame helpers for the transport tests.

Well-behaved peers are trio-websocket servers; misbehaving ones are raw TCP (or TLS) servers that
do the upgrade by hand and then write exactly the bytes a test wants. The TLS certificate is a
fixed self-signed one for 127.0.0.1 (valid 2000-2100): neither ``trustme`` nor ``cryptography``
is a dependency, so it cannot be generated at test time.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import ssl
import struct
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
import trio_websocket

Handler = Callable[[trio_websocket.WebSocketRequest], Awaitable[None]]
RawHandler = Callable[[trio.abc.Stream], Awaitable[None]]

PATH = "/websocket/v1"

CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBqjCCAVCgAwIBAgIBATAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBh1cGJpdC1l
bmdpbmUgdGVzdCBzZXJ2ZXIwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAw
MDBaMCMxITAfBgNVBAMMGHVwYml0LWVuZ2luZSB0ZXN0IHNlcnZlcjBZMBMGByqG
SM49AgEGCCqGSM49AwEHA0IABJ9ZO1GEQq6xcIhEvOQMAzx2ibREck5DdW29L5AX
2nS9Lr0jS5nmSBoYQGGU75YRI/80PRmqujwswbf4AxhaEpWjczBxMA8GA1UdEwEB
/wQFMAMBAf8wGgYDVR0RBBMwEYcEfwAAAYIJbG9jYWxob3N0MB0GA1UdDgQWBBRu
q81nzV+gVc5cYVUu57f1Oea1gDAOBgNVHQ8BAf8EBAMCAoQwEwYDVR0lBAwwCgYI
KwYBBQUHAwEwCgYIKoZIzj0EAwIDSAAwRQIhALIY/fL65Zb1fqCshV3leet5FgSQ
xrfypHz7vqiG3UMVAiBPCS3eQcYwmosRjzF8IGwEWhm91fiUCKpTiVR+QTeAlA==
-----END CERTIFICATE-----
"""

KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8zKnb1aqX0f+U0Lc
Okqyd8CbTPppp1QG8coLrGg0aluhRANCAASfWTtRhEKusXCIRLzkDAM8dom0RHJO
Q3VtvS+QF9p0vS69I0uZ5kgaGEBhlO+WESP/ND0Zqro8LMG3+AMYWhKV
-----END PRIVATE KEY-----
"""


def client_ssl_context() -> ssl.SSLContext:
    """A verifying client context that trusts only the test certificate."""
    return ssl.create_default_context(cadata=CERT_PEM)


def server_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as folder:
        pem = Path(folder) / "server.pem"
        pem.write_text(CERT_PEM + KEY_PEM, encoding="ascii")
        context.load_cert_chain(pem)
    return context


async def serve_ws(nursery: trio.Nursery, handler: Handler) -> str:
    server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
    return f"ws://127.0.0.1:{server.port}{PATH}"


async def serve_raw(nursery: trio.Nursery, handler: RawHandler) -> str:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"ws://127.0.0.1:{port}{PATH}"


async def serve_raw_tls(nursery: trio.Nursery, handler: RawHandler) -> str:
    listeners = await nursery.start(
        functools.partial(
            trio.serve_ssl_over_tcp,
            handler,
            0,
            server_ssl_context(),
            host="127.0.0.1",
            https_compatible=True,
        )
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    return f"wss://127.0.0.1:{port}{PATH}"


async def read_request_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    """The client's upgrade request head, and any bytes that came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        assert chunk, "client hung up during the handshake"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def accept_response(head: bytes, *, extra: bytes = b"") -> bytes:
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + extra
    )


async def raw_handshake(stream: trio.abc.Stream, *, extra: bytes = b"") -> bytes:
    """Complete a WebSocket upgrade by hand (``extra`` rides in the same write as the 101), so
    the test controls every byte afterwards. Returns the request head."""
    head, _ = await read_request_head(stream)
    await stream.send_all(accept_response(head, extra=extra))
    return head


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """An unmasked server frame."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        return bytes([first, size]) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


def binary(payload: bytes) -> bytes:
    return frame(0x2, payload)


def text(payload: str | bytes) -> bytes:
    return frame(0x1, payload.encode() if isinstance(payload, str) else payload)


def close(code: int | None = None, reason: str = "") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
    return frame(0x8, payload)


class ClientFrames:
    """Reads the client's (masked) frames from a raw server stream."""

    def __init__(self, stream: trio.abc.Stream, buffered: bytes = b"") -> None:
        self._stream = stream
        self._buffer = bytearray(buffered)

    async def _need(self, size: int) -> bool:
        while len(self._buffer) < size:
            try:
                chunk = await self._stream.receive_some(65536)
            except trio.BrokenResourceError:
                return False
            if not chunk:
                return False
            self._buffer += chunk
        return True

    async def next(self) -> tuple[int, bytes] | None:
        """``(opcode, payload)`` of the next client frame, or ``None`` at end of stream."""
        if not await self._need(2):
            return None
        length = self._buffer[1] & 0x7F
        assert self._buffer[1] & 0x80, "client frames must be masked"
        start = 2
        if length == 126:
            start = 4
        elif length == 127:
            start = 10
        if not await self._need(start + 4):
            return None
        if start == 4:
            length = struct.unpack("!H", self._buffer[2:4])[0]
        elif start == 10:
            length = struct.unpack("!Q", self._buffer[2:10])[0]
        if not await self._need(start + 4 + length):
            return None
        mask = self._buffer[start : start + 4]
        body = self._buffer[start + 4 : start + 4 + length]
        opcode = self._buffer[0] & 0x0F
        del self._buffer[: start + 4 + length]
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(body))

    async def until(self, opcode: int) -> bytes | None:
        """The payload of the next frame with ``opcode``, skipping others; ``None`` at EOF."""
        while (got := await self.next()) is not None:
            if got[0] == opcode:
                return got[1]
        return None

    async def echo_close(self) -> bytes | None:
        """Wait for the client's close frame and echo it, as a polite server does."""
        payload = await self.until(0x8)
        if payload is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream.send_all(frame(0x8, payload))
        return payload

    async def until_eof(self) -> list[tuple[int, bytes]]:
        frames: list[tuple[int, bytes]] = []
        while (got := await self.next()) is not None:
            frames.append(got)
        return frames


async def drain(ws: trio_websocket.WebSocketConnection) -> None:
    """Read until the client goes away (a server handler's normal end)."""
    with contextlib.suppress(trio_websocket.ConnectionClosed):
        while True:
            await ws.get_message()


def close_code_of(payload: bytes) -> int | None:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
