"""Both transports against real loopback servers, including misbehaving ones.

Every test runs once per transport (and once more for the websockets transport with its fast
path off), because the tickets rely on the two behaving alike at the seam: same messages, same
exceptions, same close codes. Where they legitimately differ the test says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import orjson
import pytest
import trio
import trio_websocket

from engine.errors import ConnectionFailedError, RateLimitedError
from engine.testing import EmulatorConfig, open_emulator
from engine.transport import (
    TRANSPORT_NAMES,
    ConnectionClosedError,
    HandshakeRejectedError,
    Transport,
    TrioWebsocketTransport,
    retry_after_seconds,
    transport_for,
)
from engine.transport.websockets_transport import WebsocketsTransport
from engine.wire.protocol import TypeRequest, build_request, decode_frame
from tests.engine._transport_support import (
    ClientFrames,
    binary,
    client_ssl_context,
    close,
    close_code_of,
    drain,
    frame,
    raw_handshake,
    read_request_head,
    serve_raw,
    serve_raw_tls,
    serve_ws,
    text,
)

MakeTransport = Callable[..., Transport]

_TRANSPORTS: dict[str, MakeTransport] = {
    "trio-websocket": TrioWebsocketTransport,
    "websockets": WebsocketsTransport,
    "websockets-no-fast-path": functools.partial(WebsocketsTransport, fast_path=False),
}


@pytest.fixture(params=sorted(_TRANSPORTS))
def make(request: pytest.FixtureRequest) -> MakeTransport:
    """Builds the transport under test; keyword options are common to both."""
    return _TRANSPORTS[request.param]


def _is_trio_websocket(make: MakeTransport) -> bool:
    return make is TrioWebsocketTransport


async def test_text_out_binary_and_text_in(make: MakeTransport) -> None:
    received: list[str | bytes] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        received.append(await ws.get_message())
        await ws.send_message(b'{"status":"UP"}')
        await ws.send_message('{"status":"UP"}')
        await ws.send_message("한글 " * 100)  # multi-byte UTF-8 in a 16-bit-length frame
        await drain(ws)

    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        async with make().connect(url) as conn:
            await conn.send_text('[{"ticket":"t"}]')
            first = await conn.receive()
            assert first == b'{"status":"UP"}'
            assert type(first) is bytes
            assert await conn.receive() == '{"status":"UP"}'
            assert await conn.receive() == "한글 " * 100
            assert conn.close_info is None
        nursery.cancel_scope.cancel()
    assert received == ['[{"ticket":"t"}]']


async def test_extra_headers_reach_the_server(make: MakeTransport) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        seen.extend(request.headers)
        await request.accept()

    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        async with make().connect(url, headers=[("Authorization", "Bearer abc")]):
            pass
        nursery.cancel_scope.cancel()
    assert (b"authorization", b"Bearer abc") in [(k.lower(), v) for k, v in seen]


@pytest.mark.parametrize(("code", "reason"), [(1000, "bye"), (1001, "server restart")])
async def test_server_close_frame_is_reported_with_its_code(
    make: MakeTransport, code: int, reason: str
) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(b'{"error":{"name":"NO_TICKET","message":"x"}}')
        await ws.aclose(code, reason)

    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        async with make().connect(url) as conn:
            assert await conn.receive() == b'{"error":{"name":"NO_TICKET","message":"x"}}'
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code == code
            assert str(code) in str(info.value)
            assert reason in str(info.value)
            assert conn.close_info is not None
            assert (conn.close_info.code, conn.close_info.reason) == (code, reason)
            with pytest.raises(ConnectionClosedError):
                await conn.receive()
            with pytest.raises(ConnectionClosedError):
                await conn.send_text("PING")
        nursery.cancel_scope.cancel()


async def test_abort_without_close_frame_has_no_code(make: MakeTransport) -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        await raw_handshake(stream)
        await stream.send_all(binary(b'{"status":"UP"}') + binary(b"partial")[:5])
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with make().connect(url) as conn:
            assert await conn.receive() == b'{"status":"UP"}'
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code is None
            assert "without a close frame" in str(info.value)
            assert conn.close_info is not None
            assert conn.close_info.code is None
            with pytest.raises(ConnectionClosedError):
                await conn.send_text("PING")
        nursery.cancel_scope.cancel()


async def test_ping_is_answered_and_a_stalled_peer_times_out(
    make: MakeTransport, autojump_clock: object
) -> None:
    stall = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            # Answer nothing: the client's ping waits forever, like a stalled Upbit socket.
            await stall.wait()

    async def answering(request: trio_websocket.WebSocketRequest) -> None:
        await drain(await request.accept())

    async with trio.open_nursery() as nursery:
        good_url = await serve_ws(nursery, answering)
        async with make().connect(good_url) as conn:
            with trio.fail_after(5):
                await conn.ping()
                await conn.ping()
        stalled_url = await serve_raw(nursery, handler)
        async with make(disconnect_timeout=1).connect(stalled_url) as conn:
            start = trio.current_time()
            with pytest.raises(trio.TooSlowError), trio.fail_after(10):
                await conn.ping()
            assert trio.current_time() - start == pytest.approx(10)
        stall.set()
        nursery.cancel_scope.cancel()


async def test_ping_while_another_task_receives(make: MakeTransport) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        request_text = await ws.get_message()
        assert isinstance(request_text, str)
        await ws.send_message(b"reply to " + request_text.encode())
        await drain(ws)

    got: list[bytes | str] = []
    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        async with make().connect(url) as conn:

            async def receiver() -> None:
                got.append(await conn.receive())

            async with trio.open_nursery() as inner:
                inner.start_soon(receiver)
                await trio.testing.wait_all_tasks_blocked()  # the receiver is in receive() now
                with trio.fail_after(5):
                    await conn.ping()  # its pong is read by the receiver's read
                    await conn.ping()
                await conn.send_text("go")
        nursery.cancel_scope.cancel()
    assert got == [b"reply to go"]


async def test_ping_with_nobody_receiving_keeps_the_messages(make: MakeTransport) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        for index in range(3):
            await ws.send_message(f"m{index}".encode())
        await drain(ws)

    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        async with make().connect(url) as conn:
            with trio.fail_after(5):
                await conn.ping()
            assert [await conn.receive() for _ in range(3)] == [b"m0", b"m1", b"m2"]
        nursery.cancel_scope.cancel()


async def test_client_close_sends_its_code_and_is_idempotent(make: MakeTransport) -> None:
    seen: list[list[tuple[int, bytes]]] = []

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            frames = ClientFrames(stream)
            payload = await frames.until(0x8)
            assert payload is not None
            await stream.send_all(close(1000, "ok"))  # echo, then hang up like a server does
            seen.append([(0x8, payload)])

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with make().connect(url) as conn:
            await conn.aclose(4001, "switching tickets")
            assert conn.close_info is not None
            with pytest.raises(ConnectionClosedError):
                await conn.receive()
            with pytest.raises(ConnectionClosedError):
                await conn.send_text("x")
            with pytest.raises(ConnectionClosedError):
                await conn.ping()
            await conn.aclose()  # idempotent, and quiet on a dead socket
        nursery.cancel_scope.cancel()
    assert len(seen) == 1
    payload = seen[0][0][1]
    assert close_code_of(payload) == 4001
    assert payload[2:] == b"switching tickets"


async def test_close_handshake_is_bounded_by_disconnect_timeout(
    make: MakeTransport, autojump_clock: object
) -> None:
    release = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await release.wait()  # never answers the close frame

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        start = trio.current_time()
        async with make(disconnect_timeout=3).connect(url):
            pass
        assert trio.current_time() - start == pytest.approx(3)
        release.set()
        nursery.cancel_scope.cancel()


async def test_oversized_message_closes_with_1009(make: MakeTransport) -> None:
    client_frames: list[tuple[int, bytes]] = []

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await stream.send_all(binary(b"small") + binary(b"x" * 5000))
            client_frames.extend(await ClientFrames(stream).until_eof())

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with make(max_message_size=1000).connect(url) as conn:
            assert await conn.receive() == b"small"
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code == 1009
        nursery.cancel_scope.cancel()
    closes = [payload for opcode, payload in client_frames if opcode == 0x8]
    assert closes
    assert close_code_of(closes[0]) == 1009


@pytest.mark.parametrize(
    ("garbage", "websockets_code"),
    [
        (b"\x8f\x00", 1002),  # unknown opcode
        (b"\x82\x85abcd12345", 1002),  # a masked frame from the server
        (frame(0x9, b"x" * 126), 1002),  # control frame over 125 bytes
        (frame(0x0, b"stray continuation"), 1002),
        (frame(0x2, b"start", fin=False) + binary(b"interloper"), 1002),  # fragment interrupted
        (b"\xc2\x03abc", 1002),  # reserved bit without an extension
        (text(b"\xff\xfe broken"), 1007),  # text frame that is not UTF-8
    ],
)
async def test_garbage_on_the_wire_closes_the_connection(
    make: MakeTransport, garbage: bytes, websockets_code: int
) -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await stream.send_all(binary(b"before") + garbage + binary(b"after"))
            await ClientFrames(stream).until_eof()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with make().connect(url) as conn:
            assert await conn.receive() == b"before"
            with pytest.raises(ConnectionClosedError) as info, trio.fail_after(5):
                await conn.receive()
            assert info.value.code == websockets_code
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n",
        b"HTTP/1.1 101 Switching",  # then the server hangs up
    ],
)
async def test_garbage_handshake_is_connection_failed(
    make: MakeTransport, answer: bytes, autojump_clock: object
) -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await read_request_head(stream)
            await stream.send_all(answer)

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        start = trio.current_time()
        with pytest.raises(ConnectionFailedError) as info:
            async with make().connect(url, connect_timeout=3):
                pytest.fail("the handshake must not succeed")
        assert type(info.value) is ConnectionFailedError
        assert url in str(info.value)
        if not (_is_trio_websocket(make) and answer.endswith(b"Switching")):
            assert trio.current_time() == start  # refused at once, not at the timeout
        # else: trio-websocket does not notice a hang-up mid-handshake and waits the timeout out.
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limited_handshake_maps_to_rate_limited_error(
    make: MakeTransport, status: int
) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(status, extra_headers=[(b"Retry-After", b"7")], body=b"slow down")

    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        with pytest.raises(RateLimitedError) as info:
            async with make().connect(url):
                pytest.fail("the handshake must not succeed")
        nursery.cancel_scope.cancel()
    assert info.value.status == status
    assert info.value.retry_after == 7.0
    assert "slow down" in str(info.value)


async def test_other_rejection_is_handshake_rejected(make: MakeTransport) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(401, body=b"INVALID_AUTH")

    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        with pytest.raises(HandshakeRejectedError) as info:
            async with make().connect(url):
                pytest.fail("the handshake must not succeed")
        nursery.cancel_scope.cancel()
    assert info.value.status == 401
    assert "INVALID_AUTH" in str(info.value)


async def test_connect_timeout_when_the_server_never_answers(
    make: MakeTransport, autojump_clock: object
) -> None:
    release = trio.Event()

    async def silent(stream: trio.abc.Stream) -> None:
        async with stream:
            await release.wait()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, silent)
        start = trio.current_time()
        with pytest.raises(ConnectionFailedError, match="timed out after 3 s"):
            async with make().connect(url, connect_timeout=3):
                pytest.fail("the handshake must not succeed")
        assert trio.current_time() - start == pytest.approx(3)
        release.set()
        nursery.cancel_scope.cancel()


async def test_connection_refused_is_connection_failed(make: MakeTransport) -> None:
    # Bind then close a listener, so the port is very likely free and refuses connections.
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectionFailedError, match="could not connect"):
        async with make().connect(f"ws://127.0.0.1:{port}/"):
            pytest.fail("nothing listens there")


async def test_errors_from_the_body_are_not_wrapped_in_groups(make: MakeTransport) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await drain(await request.accept())

    async with trio.open_nursery() as nursery:
        url = await serve_ws(nursery, handler)
        with pytest.raises(KeyError, match="boom"):
            async with make().connect(url):
                raise KeyError("boom")
        nursery.cancel_scope.cancel()


async def test_cancelled_caller_does_not_wait_and_the_socket_is_closed(
    make: MakeTransport, autojump_clock: object
) -> None:
    hung_up = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await ClientFrames(stream).until_eof()
            hung_up.set()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        start = trio.current_time()
        with trio.move_on_after(1):
            async with make(disconnect_timeout=30).connect(url) as conn:
                await conn.receive()
        assert trio.current_time() - start == pytest.approx(1)
        with trio.fail_after(5):
            await hung_up.wait()
        nursery.cancel_scope.cancel()


async def test_tls_with_a_trusted_certificate(make: MakeTransport) -> None:
    requests: list[bytes] = []

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            frames = ClientFrames(stream)
            payload = await frames.until(0x1)
            assert payload is not None
            requests.append(payload)
            await stream.send_all(binary(b"over tls") + close(1000))
            await frames.until_eof()

    async with trio.open_nursery() as nursery:
        url = await serve_raw_tls(nursery, handler)
        assert url.startswith("wss://")
        async with make(ssl_context=client_ssl_context()).connect(url) as conn:
            await conn.send_text("hello")
            assert await conn.receive() == b"over tls"
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code == 1000
        nursery.cancel_scope.cancel()
    assert requests == [b"hello"]


async def test_tls_with_an_untrusted_certificate_is_connection_failed(make: MakeTransport) -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)

    async with trio.open_nursery() as nursery:
        url = await serve_raw_tls(nursery, handler)
        # The default context verifies against the system's CAs, which do not know this cert.
        with pytest.raises(ConnectionFailedError, match="could not connect") as info:
            async with make().connect(url):
                pytest.fail("an untrusted certificate must be refused")
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        nursery.cancel_scope.cancel()


async def test_emulator_snapshot_and_private_endpoint(make: MakeTransport) -> None:
    config = EmulatorConfig(markets=("KRW-BTC",), seed=3, auth_failure="http_401")
    async with open_emulator(config) as emu:
        async with make().connect(emu.ws_url) as conn:
            request = TypeRequest("ticker", ("KRW-BTC",), is_only_snapshot=True)
            await conn.send_text(build_request("t1", [request]))
            with trio.fail_after(5):
                ticker = decode_frame(await conn.receive())
            assert getattr(ticker, "code", None) == "KRW-BTC"
        token = emu.make_token()
        auth = [("Authorization", f"Bearer {token}")]
        async with make().connect(emu.private_ws_url, headers=auth) as conn:
            await conn.send_text(orjson.dumps([{"ticket": "p"}, {"type": "myAsset"}]).decode())
            with trio.fail_after(5):
                await conn.ping()
        with pytest.raises(HandshakeRejectedError) as info:
            async with make().connect(emu.private_ws_url):
                pytest.fail("no JWT, no private connection")
        assert info.value.status == 401


def test_retry_after_parsing() -> None:
    assert retry_after_seconds([(b"Retry-After", b" 2.5 ")]) == 2.5
    assert retry_after_seconds([(b"retry-after", b"-3")]) == 0.0
    assert retry_after_seconds([(b"Retry-After", b"Wed, 21 Oct")]) is None
    assert retry_after_seconds([]) is None


def test_transport_for_maps_names_to_transports() -> None:
    assert TRANSPORT_NAMES == ("trio-websocket", "websockets")
    assert isinstance(transport_for("trio-websocket"), TrioWebsocketTransport)
    assert isinstance(transport_for("websockets"), WebsocketsTransport)
    with pytest.raises(ValueError, match="choose one of 'trio-websocket', 'websockets'"):
        transport_for("wsproto")
