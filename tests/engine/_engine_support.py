"""Helpers shared by the engine's tests: an emulator with a small catalog and an engine on it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import trio

from engine.events import Gap, Interrupted
from engine.facade.engine import Engine, SubscriptionStream
from engine.facade.open import open_engine
from engine.routing.router import StreamItem
from engine.testing import MAJOR_MARKETS, Emulator, EmulatorConfig, open_emulator
from engine.testing.introspection import RequestRecord
from engine.wire.messages import Message

MAJORS = MAJOR_MARKETS
#: Bound for any single wait on the mock clock.
WAIT = 120.0
#: The transport engines in tests use; ``tests/engine/conftest.py`` sets it per test.
TRANSPORT = "trio-websocket"


def transport_name() -> str:
    """The transport the current test runs on (pass it to direct ``open_engine`` calls)."""
    return TRANSPORT


def emulator_config(**changes: Any) -> EmulatorConfig:
    return attrs.evolve(EmulatorConfig(markets=MAJORS, seed=7), **changes)


@contextlib.asynccontextmanager
async def engine_on_emulator(
    emulator: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[tuple[Engine, Emulator]]:
    """An emulator and an engine pointed at it (seeded; text PING on by default)."""
    async with open_emulator(emulator_config(**(emulator or {}))) as emu:
        options.setdefault("seed", 1)
        options.setdefault("transport", TRANSPORT)
        async with open_engine(ws_url=emu.ws_url, rest_url=emu.rest_url, **options) as eng:
            yield eng, emu


def subscribe_requests(emu: Emulator, conn_id: int | None = None) -> list[RequestRecord]:
    return [r for r in emu.requests(conn_id) if r.kind == "subscribe"]


def wire_set(record: RequestRecord) -> dict[tuple[str, str], bool]:
    """A subscribe request as {(type, code[.N]): is_only_realtime}; checks its envelope."""
    items = record.json()
    assert isinstance(items, list)
    assert "ticket" in items[0]
    assert "format" in items[-1]
    result: dict[tuple[str, str], bool] = {}
    for item in items[1:-1]:
        for code in item.get("codes", []):
            result[(item["type"], code)] = bool(item.get("is_only_realtime", False))
    return result


def emulator_set(emu: Emulator, conn_id: int) -> set[tuple[str, str]]:
    """The connection's current subscription set as the emulator holds it."""
    info = emu.connection(conn_id)
    return {(entry.type, code) for entry in info.subscriptions for code in entry.codes or ()}


async def receive(stream: SubscriptionStream, within: float = WAIT) -> StreamItem:
    with trio.fail_after(within):
        return await stream.receive()


async def collect(
    stream: SubscriptionStream, count: int, *, within: float = WAIT
) -> list[StreamItem]:
    items: list[StreamItem] = []
    with trio.fail_after(within):
        while len(items) < count:
            items.append(await stream.receive())
    return items


async def until(
    stream: SubscriptionStream,
    predicate: Callable[[StreamItem], bool],
    *,
    within: float = WAIT,
) -> list[StreamItem]:
    """Items up to and including the first matching ``predicate``."""
    items: list[StreamItem] = []
    with trio.fail_after(within):
        while True:
            item = await stream.receive()
            items.append(item)
            if predicate(item):
                return items


def messages(items: list[StreamItem]) -> list[Message]:
    return [item for item in items if not isinstance(item, Gap | Interrupted)]


async def settle(eng: Engine, emu: Emulator) -> None:
    """Wait until every live subscription is ACTIVE and every ticket's sends are confirmed
    (the public ``Engine.wait_settled``; ``emu`` is kept for the callers' symmetry)."""
    del emu
    await eng.wait_settled(timeout=WAIT)
