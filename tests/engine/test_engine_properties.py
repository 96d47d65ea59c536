"""Property: whatever the sequence of subscribe / modify / unsubscribe / snapshot calls, once it
settles every emulator connection carries exactly what the registry wants for its ticket, and
every live subscriber receives only its own streams.

Each example runs a fresh emulator and engine under a MockClock (``trio.run`` per example,
since Hypothesis drives the test from a synchronous function). ``HYPOTHESIS_PROFILE=engine-long``
(with ``ENGINE_EXAMPLES=n``, default 200) runs more.
"""

from __future__ import annotations

import os
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from engine.facade.engine import Engine, SubscriptionStream
from engine.routing.router import StreamItem
from engine.testing import Emulator
from engine.wire.messages import Orderbook

from ._engine_support import WAIT, engine_on_emulator, settle

settings.register_profile(
    "engine-ci",
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "engine-long",
    max_examples=int(os.environ.get("ENGINE_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CODES = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "BTC-ETH", "USDT-BTC")
TYPES = ("ticker", "trade", "orderbook")

codes_st = st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True)
step_st = st.one_of(
    st.tuples(st.just("subscribe"), st.sampled_from(TYPES), codes_st),
    st.tuples(st.just("modify"), st.integers(0, 5), codes_st),
    st.tuples(st.just("unsubscribe"), st.integers(0, 5), st.sampled_from(("soft", "hard"))),
    st.tuples(st.just("snapshot"), st.sampled_from(TYPES), codes_st),
)


def _ticket_of(emu: Emulator, conn_id: int) -> str | None:
    for record in reversed(emu.requests(conn_id)):
        if record.kind == "subscribe":
            items = record.json()
            assert isinstance(items, list)
            ticket = str(items[0]["ticket"])
            return ticket.rsplit("-", 2)[-2] + "-" + ticket.rsplit("-", 1)[-1]
    return None


def _wire(key: Any) -> tuple[str, str]:
    code = key.code if key.units is None else f"{key.code}.{key.units}"
    return (key.data_type, code)


def _consistent(eng: Engine, emu: Emulator) -> bool:
    registry = eng._core.registry  # the property compares internals
    seen: set[str] = set()
    for conn in emu.connections(open_only=True):
        ticket = _ticket_of(emu, conn.conn_id)
        if ticket is None or not ticket.startswith("realtime-"):
            continue
        if ticket in seen:
            return False  # two live connections for one ticket
        seen.add(ticket)
        wanted = {_wire(key) for key in registry.ticket_status(ticket).desired}
        actual = {(e.type, code) for e in conn.subscriptions for code in e.codes or ()}
        if wanted:
            if actual != wanted:
                return False
        elif not (len(actual) <= 1 and all(t == "ticker" for t, _ in actual)):
            return False  # empty: nothing, or the parking ticker only
    for name in registry.tickets("realtime"):
        if registry.ticket_status(name).desired and name not in seen:
            return False
    return True


def _drain(stream: SubscriptionStream) -> list[StreamItem]:
    items: list[StreamItem] = []
    while True:
        try:
            items.append(stream.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return items


async def _run(steps: list[tuple[Any, ...]]) -> None:
    async with engine_on_emulator(ticket_capacity=3) as (eng, emu):
        subs: list[str] = []
        streams: dict[str, SubscriptionStream] = {}
        for step in steps:
            match step:
                case ("subscribe", data_type, codes):
                    sub_id = await eng.subscribe_realtime(data_type, codes)
                    subs.append(sub_id)
                    streams[sub_id] = eng.stream(sub_id)
                case ("modify", index, codes) if subs:
                    sub_id = subs[index % len(subs)]
                    if eng.subscription(sub_id).is_live:
                        await eng.modify_subscription(sub_id, codes)
                case ("unsubscribe", index, mode) if subs:
                    sub_id = subs[index % len(subs)]
                    if mode == "soft":
                        await eng.unsubscribe_realtime(sub_id)
                    else:
                        await eng.hard_unsubscribe(sub_id)
                case ("snapshot", data_type, codes):
                    got = await eng.request_snapshot(data_type, codes)
                    assert set(got) == set(codes)
                case _:
                    continue
            await settle(eng, emu)
            with trio.fail_after(WAIT):
                await emu.wait_for(lambda: _consistent(eng, emu))
            for stream in streams.values():
                _drain(stream)
            await trio.sleep(1.0)
            for sub_id, stream in streams.items():
                sub = eng.subscription(sub_id)
                items = _drain(stream)
                if not sub.is_live:
                    assert items == [], f"{sub_id} received after unsubscribe"
                    continue
                mine = {(key.data_type, key.code) for key in sub.keys}
                for item in items:
                    if item.type in ("gap", "interrupted"):
                        continue
                    assert (item.type, item.code) in mine, (sub_id, item)  # type: ignore[union-attr]
                    if isinstance(item, Orderbook):
                        assert len(item.orderbook_units) == 30


_PROFILE = "engine-long" if os.environ.get("HYPOTHESIS_PROFILE") == "engine-long" else "engine-ci"


@settings(settings.get_profile(_PROFILE))
@given(st.lists(step_st, min_size=1, max_size=6))
def test_the_wire_matches_the_registry_and_subscribers_get_their_streams(
    steps: list[tuple[Any, ...]],
) -> None:
    trio.run(_run, steps, clock=MockClock(autojump_threshold=0))
