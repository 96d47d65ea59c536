"""A deliberately plain client for the emulator's tests: trio-websocket and raw JSON.

The conformance tests assert on what is on the wire (frame type, JSON keys, close codes), so they
use no decoder of the engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import attrs
import orjson
import trio
import trio_websocket

from engine._groups import raise_single_leaf
from engine.testing import MAJOR_MARKETS, Emulator, EmulatorConfig, open_emulator

MAJORS = MAJOR_MARKETS

#: Generous bound for any single wait on the (mock) clock.
WAIT = 300.0


def config(**changes: object) -> EmulatorConfig:
    """The tests' default: the majors only, every other field as configured by ``changes``."""
    return attrs.evolve(EmulatorConfig(markets=MAJORS), **changes)


@contextlib.asynccontextmanager
async def emulator(**changes: object) -> AsyncIterator[Emulator]:
    async with open_emulator(config(**changes)) as emu:
        yield emu


@contextlib.asynccontextmanager
async def connect(
    emu: Emulator,
    *,
    private: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A client connection. The TCP stream is ours, so it is closed however the connection ends
    (trio-websocket 0.12.2's client leaves it open when the server closes first)."""
    path = "/websocket/v1/private" if private else "/websocket/v1"
    if private and headers is None:
        headers = emu.auth_headers()
    stream = await trio.open_tcp_stream("127.0.0.1", emu.port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery,
                stream,
                f"127.0.0.1:{emu.port}",
                path,
                extra_headers=headers,
                message_queue_size=4096,
            )
            try:
                yield ws
            finally:
                with trio.move_on_after(5):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_single_leaf(group)
    finally:
        await trio.aclose_forcefully(stream)


async def send(ws: trio_websocket.WebSocketConnection, request: object) -> None:
    await ws.send_message(orjson.dumps(request).decode())


async def recv_raw(ws: trio_websocket.WebSocketConnection) -> str | bytes:
    with trio.fail_after(WAIT):
        return await ws.get_message()


async def recv(ws: trio_websocket.WebSocketConnection) -> object:
    return orjson.loads(await recv_raw(ws))


async def recv_dict(ws: trio_websocket.WebSocketConnection) -> dict[str, object]:
    message = await recv(ws)
    assert isinstance(message, dict), message
    return message


async def collect(ws: trio_websocket.WebSocketConnection, count: int) -> list[dict[str, object]]:
    return [await recv_dict(ws) for _ in range(count)]


async def until(
    ws: trio_websocket.WebSocketConnection, predicate: Callable[[dict[str, object]], bool]
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Messages before the first one matching ``predicate``, and that one."""
    seen: list[dict[str, object]] = []
    while True:
        message = await recv_dict(ws)
        if predicate(message):
            return seen, message
        seen.append(message)


async def until_closed(
    ws: trio_websocket.WebSocketConnection,
) -> tuple[list[object], trio_websocket.CloseReason]:
    """Everything received until the connection closes, and the close reason."""
    seen: list[object] = []
    with trio.fail_after(WAIT):
        while True:
            try:
                message = await ws.get_message()
            except trio_websocket.ConnectionClosed:
                break
            seen.append(orjson.loads(message))
    reason = ws.closed
    assert reason is not None
    return seen, reason


def subscribe(*items: dict[str, object], ticket: str = "t", fmt: str | None = None) -> list[object]:
    request: list[object] = [{"ticket": ticket}, *items]
    if fmt is not None:
        request.append({"format": fmt})
    return request


def kinds(messages: Sequence[dict[str, object]]) -> list[tuple[object, object, object]]:
    """(type, code, stream_type) of each data message."""
    return [(m.get("type"), m.get("code"), m.get("stream_type")) for m in messages]
