"""The trio-websocket transport against real loopback servers, including misbehaving ones."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio_websocket

from engine.errors import ConnectionFailedError, RateLimitedError
from engine.transport import (
    ConnectionClosedError,
    HandshakeRejectedError,
    TrioWebsocketTransport,
    retry_after_seconds,
)

Handler = Callable[[trio_websocket.WebSocketRequest], Awaitable[None]]
RawHandler = Callable[[trio.SocketStream], Awaitable[None]]


async def _serve_ws(nursery: trio.Nursery, handler: Handler) -> str:
    server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
    return f"ws://127.0.0.1:{server.port}/websocket/v1"


async def _serve_raw(nursery: trio.Nursery, handler: RawHandler) -> str:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"ws://127.0.0.1:{port}/websocket/v1"


async def _raw_handshake(stream: trio.SocketStream) -> None:
    """Complete a WebSocket upgrade by hand, so the test controls every byte afterwards."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        assert chunk, "client hung up during the handshake"
        data += chunk
    key = next(
        line.split(b":", 1)[1].strip()
        for line in data.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def _drain(ws: trio_websocket.WebSocketConnection) -> None:
    """Read until the client goes away (a server handler's normal end)."""
    with contextlib.suppress(trio_websocket.ConnectionClosed):
        while True:
            await ws.get_message()


def _binary_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([0x82, len(payload)]) + payload


async def test_text_out_binary_and_text_in() -> None:
    received: list[str | bytes] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        received.append(await ws.get_message())
        await ws.send_message(b'{"status":"UP"}')
        await ws.send_message('{"status":"UP"}')
        await _drain(ws)

    async with trio.open_nursery() as nursery:
        url = await _serve_ws(nursery, handler)
        async with TrioWebsocketTransport().connect(url) as conn:
            await conn.send_text('[{"ticket":"t"}]')
            assert await conn.receive() == b'{"status":"UP"}'
            assert await conn.receive() == '{"status":"UP"}'
            assert conn.close_info is None
        nursery.cancel_scope.cancel()
    assert received == ['[{"ticket":"t"}]']


async def test_extra_headers_reach_the_server() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        seen.extend(request.headers)
        await request.accept()

    async with trio.open_nursery() as nursery:
        url = await _serve_ws(nursery, handler)
        async with TrioWebsocketTransport().connect(url, headers=[("Authorization", "Bearer abc")]):
            pass
        nursery.cancel_scope.cancel()
    assert (b"authorization", b"Bearer abc") in [(k.lower(), v) for k, v in seen]


async def test_server_close_frame_is_reported_with_its_code() -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(b'{"error":{"name":"NO_TICKET","message":"x"}}')
        await ws.aclose(1000, "bye")

    async with trio.open_nursery() as nursery:
        url = await _serve_ws(nursery, handler)
        async with TrioWebsocketTransport().connect(url) as conn:
            assert await conn.receive() == b'{"error":{"name":"NO_TICKET","message":"x"}}'
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code == 1000
            assert "1000" in str(info.value)
            assert conn.close_info is not None
            assert conn.close_info.code == 1000
        nursery.cancel_scope.cancel()


async def test_abort_without_close_frame_has_no_code() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await _raw_handshake(stream)
        await stream.send_all(_binary_frame(b'{"status":"UP"}'))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        url = await _serve_raw(nursery, handler)
        async with TrioWebsocketTransport().connect(url) as conn:
            assert await conn.receive() == b'{"status":"UP"}'
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code is None
            assert "without a close frame" in str(info.value)
            with pytest.raises(ConnectionClosedError):
                await conn.send_text("PING")
        nursery.cancel_scope.cancel()


async def test_ping_is_answered_and_a_stalled_peer_times_out(autojump_clock: object) -> None:
    stall = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await _raw_handshake(stream)
            # Answer nothing: the client's ping waits forever, like a stalled Upbit socket.
            await stall.wait()

    async def answering(request: trio_websocket.WebSocketRequest) -> None:
        await _drain(await request.accept())

    async with trio.open_nursery() as nursery:
        good_url = await _serve_ws(nursery, answering)
        async with TrioWebsocketTransport().connect(good_url) as conn:
            with trio.fail_after(5):
                await conn.ping()
                await conn.ping()
        stalled_url = await _serve_raw(nursery, handler)
        async with TrioWebsocketTransport(disconnect_timeout=1).connect(stalled_url) as conn:
            with pytest.raises(trio.TooSlowError):
                with trio.fail_after(10):
                    await conn.ping()
        stall.set()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limited_handshake_maps_to_rate_limited_error(status: int) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(status, extra_headers=[(b"Retry-After", b"7")], body=b"slow down")

    async with trio.open_nursery() as nursery:
        url = await _serve_ws(nursery, handler)
        with pytest.raises(RateLimitedError) as info:
            async with TrioWebsocketTransport().connect(url):
                pytest.fail("the handshake must not succeed")
        nursery.cancel_scope.cancel()
    assert info.value.status == status
    assert info.value.retry_after == 7.0
    assert "slow down" in str(info.value)


async def test_other_rejection_is_handshake_rejected() -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(401, body=b"INVALID_AUTH")

    async with trio.open_nursery() as nursery:
        url = await _serve_ws(nursery, handler)
        with pytest.raises(HandshakeRejectedError) as info:
            async with TrioWebsocketTransport().connect(url):
                pytest.fail("the handshake must not succeed")
        nursery.cancel_scope.cancel()
    assert info.value.status == 401
    assert "INVALID_AUTH" in str(info.value)


async def test_connect_timeout_when_the_server_never_answers(autojump_clock: object) -> None:
    release = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        async with stream:
            await release.wait()

    async with trio.open_nursery() as nursery:
        url = await _serve_raw(nursery, silent)
        start = trio.current_time()
        with pytest.raises(ConnectionFailedError, match="timed out after 3 s"):
            async with TrioWebsocketTransport().connect(url, connect_timeout=3):
                pytest.fail("the handshake must not succeed")
        assert trio.current_time() - start == pytest.approx(3)
        release.set()
        nursery.cancel_scope.cancel()


async def test_connection_refused_is_connection_failed() -> None:
    # Bind then close a listener, so the port is very likely free and refuses connections.
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectionFailedError, match="could not connect"):
        async with TrioWebsocketTransport().connect(f"ws://127.0.0.1:{port}/"):
            pytest.fail("nothing listens there")


async def test_errors_from_the_body_are_not_wrapped_in_groups() -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await _drain(await request.accept())

    async with trio.open_nursery() as nursery:
        url = await _serve_ws(nursery, handler)
        with pytest.raises(KeyError, match="boom"):
            async with TrioWebsocketTransport().connect(url):
                raise KeyError("boom")
        nursery.cancel_scope.cancel()


def test_retry_after_parsing() -> None:
    assert retry_after_seconds([(b"Retry-After", b" 2.5 ")]) == 2.5
    assert retry_after_seconds([(b"retry-after", b"-3")]) == 0.0
    assert retry_after_seconds([(b"Retry-After", b"Wed, 21 Oct")]) is None
    assert retry_after_seconds([]) is None


async def test_cancelled_caller_does_not_wait_for_the_close_handshake(
    autojump_clock: object,
) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await _drain(await request.accept())

    async with trio.open_nursery() as nursery:
        url = await _serve_ws(nursery, handler)
        start = trio.current_time()
        with trio.move_on_after(1):
            async with TrioWebsocketTransport(disconnect_timeout=30).connect(url) as conn:
                await conn.receive()
        assert trio.current_time() - start == pytest.approx(1)
        nursery.cancel_scope.cancel()
