"""What is particular to the websockets transport: its sans-I/O core and the reading discipline.

The behaviour it shares with the trio-websocket transport is in ``test_transport.py``.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.transport import ConnectionClosedError
from engine.transport.frame_core import WsClientCore
from engine.transport.websockets_transport import WebsocketsTransport
from tests.engine._transport_support import (
    ClientFrames,
    binary,
    close,
    close_code_of,
    frame,
    raw_handshake,
    serve_raw,
    text,
)

LIMIT = 10_000


def _open_core(*, fast_path: bool = True, limit: int = LIMIT) -> WsClientCore:
    """A core past a successful handshake."""
    core = WsClientCore(
        "ws://example.test/websocket/v1", max_message_size=limit, fast_path=fast_path
    )
    request = core.data_to_send()
    match = re.search(rb"Sec-WebSocket-Key: (\S+)", request)
    assert match is not None
    accept = base64.b64encode(
        hashlib.sha1(match.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    )
    core.receive_handshake_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    assert core.handshake_done
    assert core.handshake_error is None
    return core


# -- the sans-I/O core ---------------------------------------------------------------------------

# A server's stream as (wire bytes, message it must yield or None). Fragmented messages and
# control frames in between exercise the hand-over between the fast path and the protocol.
_payload = st.binary(max_size=300)
_text = st.text(max_size=200)


@st.composite
def _server_items(draw: st.DrawFn) -> tuple[bytes, bytes | str | None]:
    kind = draw(st.sampled_from(["binary", "text", "fragmented", "ping", "pong", "big"]))
    if kind == "binary":
        data = draw(_payload)
        return binary(data), data
    if kind == "big":
        data = b"z" * draw(st.integers(126, 70_000))
        return frame(0x2, data), data if len(data) <= LIMIT else None
    if kind == "text":
        message = draw(_text)
        return text(message), message
    if kind == "fragmented":
        is_text = draw(st.booleans())
        whole = draw(_text).encode() if is_text else draw(_payload)
        cuts = sorted(draw(st.lists(st.integers(0, len(whole)), max_size=3)))
        parts = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
        wire = b""
        for index, part in enumerate(parts):
            opcode = (0x1 if is_text else 0x2) if index == 0 else 0x0
            wire += frame(opcode, part, fin=index == len(parts) - 1)
            if draw(st.booleans()):
                wire += frame(0x9, b"mid")  # a control frame between fragments is allowed
        return wire, whole.decode() if is_text else whole
    return frame(0x9 if kind == "ping" else 0xA, draw(st.binary(max_size=20))), None


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(_server_items(), max_size=12),
    seed=st.integers(0, 2**32 - 1),
    fast_path=st.booleans(),
)
def test_any_chunking_yields_the_same_messages(
    items: list[tuple[bytes, bytes | str | None]], seed: int, fast_path: bool
) -> None:
    """However the socket slices the stream, the core yields exactly the messages sent, in order,
    answers every ping, and (for an oversized frame) fails with 1009 after the ones before it."""
    wire = b"".join(item[0] for item in items)
    expected: list[bytes | str] = []
    oversized = False
    for chunk, message in items:
        if message is None and chunk[0] == 0x82:
            oversized = True
            break
        if message is not None:
            expected.append(message)
    rng = random.Random(seed)
    core = _open_core(fast_path=fast_path)
    position = 0
    while position < len(wire):
        step = rng.choice([1, 2, 3, 7, 50, 1000, 70_000])
        core.receive_data(wire[position : position + step])
        position += step
    assert list(core.messages) == expected
    if oversized:
        assert core.close_state is not None
        assert core.close_state[0] == 1009
    else:
        assert core.close_state is None
        assert core.is_open


def test_handshake_split_byte_by_byte_with_frames_behind_it() -> None:
    core = WsClientCore("ws://example.test/", max_message_size=LIMIT)
    match = re.search(rb"Sec-WebSocket-Key: (\S+)", core.data_to_send())
    assert match is not None
    accept = base64.b64encode(
        hashlib.sha1(match.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    )
    wire = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + binary(b"one") + text("two")
    )
    for index in range(len(wire)):
        if core.handshake_done:
            core.receive_data(wire[index : index + 1])
        else:
            core.receive_handshake_data(wire[index : index + 1])
    assert core.handshake_error is None
    assert list(core.messages) == [b"one", "two"]


def test_a_pong_answers_every_earlier_ping_and_unknown_pongs_are_ignored() -> None:
    core = _open_core()
    first, second = core.send_ping(), core.send_ping()
    assert (first, second) == (0, 1)
    core.receive_data(frame(0xA, b"unsolicited"))
    assert not core.pong_received(0)
    core.receive_data(frame(0xA, (1).to_bytes(8, "big")))
    assert core.pong_received(0)
    assert core.pong_received(1)
    assert not core.pong_received(2)


def test_bad_close_code_is_a_value_error_and_leaves_the_connection_open() -> None:
    core = _open_core()
    with pytest.raises(ValueError, match="1006 cannot be sent"):
        core.send_close(1006, "")
    assert core.is_open
    assert core.send_close(4000, "done")
    assert not core.send_close(1000, "")  # already closing


def test_invalid_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a usable WebSocket URL"):
        WsClientCore("ws://user@:80/", max_message_size=LIMIT)


# -- the transport on real sockets -------------------------------------------------------------


async def test_frames_in_the_same_write_as_the_101_are_delivered() -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream, extra=binary(b"early") + text("bird") + close(1000, "x"))
            await ClientFrames(stream).until_eof()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with WebsocketsTransport().connect(url) as conn:
            assert await conn.receive() == b"early"
            assert await conn.receive() == "bird"
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert (info.value.code, info.value.info.reason) == (1000, "x")
        nursery.cancel_scope.cancel()


async def test_fragments_are_joined_and_server_pings_answered_mid_message() -> None:
    pongs: list[bytes] = []

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await stream.send_all(
                frame(0x1, "한".encode()[:2], fin=False)  # split inside a UTF-8 sequence
                + frame(0x9, b"are you there")
                + frame(0x0, "한".encode()[2:] + b" and more", fin=True)
            )
            payload = await ClientFrames(stream).until(0xA)
            assert payload is not None
            pongs.append(payload)
            await stream.send_all(close(1000))

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with WebsocketsTransport().connect(url) as conn:
            assert await conn.receive() == "한 and more"
            with pytest.raises(ConnectionClosedError):
                await conn.receive()
        nursery.cancel_scope.cancel()
    assert pongs == [b"are you there"]


async def test_oversized_fragmented_message_closes_with_1009() -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            parts = [frame(0x2 if i == 0 else 0x0, b"y" * 400, fin=i == 4) for i in range(5)]
            await stream.send_all(b"".join(parts))
            await ClientFrames(stream).until_eof()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with WebsocketsTransport(max_message_size=1000).connect(url) as conn:
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code == 1009
        nursery.cancel_scope.cancel()


async def test_empty_close_frame_reports_1005() -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await stream.send_all(close())
            await ClientFrames(stream).until_eof()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with WebsocketsTransport().connect(url) as conn:
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code == 1005
        nursery.cancel_scope.cancel()


async def test_protocol_error_sends_its_close_frame_and_does_not_wait() -> None:
    client_frames: list[tuple[int, bytes]] = []

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await stream.send_all(b"\x8f\x00")
            client_frames.extend(await ClientFrames(stream).until_eof())

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        start = trio.current_time()
        async with WebsocketsTransport(disconnect_timeout=30).connect(url) as conn:
            with pytest.raises(ConnectionClosedError) as info:
                await conn.receive()
            assert info.value.code == 1002
        # The connection was failed, so leaving does not wait for the peer's close frame.
        assert trio.current_time() - start < 5
        nursery.cancel_scope.cancel()
    assert [(op, close_code_of(payload)) for op, payload in client_frames] == [(0x8, 1002)]
    assert b"invalid opcode" in client_frames[0][1]


async def test_ping_payloads_are_a_counter() -> None:
    pings: list[bytes] = []

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            frames = ClientFrames(stream)
            for _ in range(3):
                payload = await frames.until(0x9)
                assert payload is not None
                pings.append(payload)
                await stream.send_all(frame(0xA, payload))
            await frames.echo_close()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with WebsocketsTransport().connect(url) as conn:
            with trio.fail_after(5):
                for _ in range(3):
                    await conn.ping()
        nursery.cancel_scope.cancel()
    assert pings == [index.to_bytes(8, "big") for index in range(3)]


async def test_two_receivers_share_the_stream_without_losing_messages() -> None:
    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            for index in range(20):
                await stream.send_all(binary(b"%d" % index))
            await stream.send_all(close(1000))
            await ClientFrames(stream).until_eof()

    got: list[bytes | str] = []
    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with WebsocketsTransport().connect(url) as conn:

            async def receiver() -> None:
                try:
                    while True:
                        got.append(await conn.receive())
                except ConnectionClosedError:
                    pass

            async with trio.open_nursery() as inner:
                inner.start_soon(receiver)
                inner.start_soon(receiver)
        nursery.cancel_scope.cancel()
    assert sorted(got, key=lambda item: int(item)) == [b"%d" % index for index in range(20)]


async def test_receive_hands_out_buffered_messages_and_cancels_only_reads() -> None:
    more = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        async with stream:
            await raw_handshake(stream)
            await stream.send_all(binary(b"first") + binary(b"buffered"))
            await more.wait()
            await stream.send_all(binary(b"later"))
            await ClientFrames(stream).echo_close()

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with WebsocketsTransport().connect(url) as conn:
            assert await conn.receive() == b"first"
            with trio.CancelScope() as scope:
                scope.cancel()
                # Already read: handed out like receive_nowait, even in a cancelled scope.
                assert await conn.receive() == b"buffered"
                # Nothing buffered: the read is a checkpoint and the cancellation lands there.
                await conn.receive()
            assert scope.cancelled_caught
            more.set()
            with trio.fail_after(5):
                assert await conn.receive() == b"later"  # the cancelled read lost nothing
        nursery.cancel_scope.cancel()
