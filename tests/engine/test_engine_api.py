"""The rest of the public API: registry(), usage, validation, conflicts, optimize, cleanup,
metrics, debug_tree, limits and shutdown, against the emulator."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from engine.core.registry import ConflictKind, PoolUsage
from engine.errors import EngineClosedError, InvalidSubscriptionError, UnknownMarketError
from engine.facade.open import open_engine
from engine.testing import open_emulator

from ._engine_support import (
    WAIT,
    collect,
    emulator_config,
    emulator_set,
    engine_on_emulator,
    settle,
    subscribe_requests,
    transport_name,
)


async def test_pattern_2_and_5_monitor_then_release(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await collect(eng.stream(sub_id), 3)
        await eng.soft_unsubscribe(sub_id, release=["KRW-BTC"])
        assert eng.subscription(sub_id).state.value in ("closing", "closed")
        again = await eng.subscribe_realtime("ticker", ["KRW-ETH"])
        await collect(eng.stream(again), 2)
        await eng.hard_unsubscribe(again)
        await settle(eng, emu)
        assert eng.get_ticket_usage().realtime.open == 0
        # The engine closed its side; the emulator sees the close a moment later.
        with trio.fail_after(WAIT):
            await emu.wait_for(lambda: emu.connections(open_only=True) == ())


async def test_registry_has_the_briefs_shape(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        await eng.subscribe_realtime(["ticker", "trade"], ["KRW-BTC", "KRW-ETH"])
        await settle(eng, emu)
        view = eng.registry()
        assert list(view) == ["realtime-0"]
        entry = view["realtime-0"]
        assert entry.mode == "realtime"
        assert sorted(entry.data_types) == ["ticker", "trade"]
        assert sorted(entry.symbols) == ["KRW-BTC", "KRW-ETH"]
        assert entry.status == "active"
        assert isinstance(entry.created_at, float)
        plain = entry.to_dict()  # the plain mapping, for printing or JSON
        assert {"mode", "data_types", "symbols", "created_at", "last_message", "status"} <= set(
            plain
        )
        assert plain["data_types"] == list(entry.data_types)
        await trio.sleep(2)  # housekeeping records the last frame
        assert isinstance(eng.registry()["realtime-0"].last_message, float)


async def test_ticket_usage_per_pool_and_efficiency(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(ticket_capacity=2) as (eng, emu):
        await eng.subscribe_realtime("ticker", ["KRW-BTC", "KRW-ETH"])
        await eng.subscribe_realtime("trade", ["KRW-XRP"])
        await settle(eng, emu)
        usage = eng.get_ticket_usage()
        realtime = usage.realtime
        assert isinstance(realtime, PoolUsage)
        assert (realtime.tickets, realtime.open, realtime.streams) == (2, 2, 3)
        assert realtime.efficiency.ticket == 1.0
        assert set(usage.to_dict()) == {"realtime", "private", "snapshot"}
        assert len(emu.connections(open_only=True)) == 2
        assert eng.metrics().ticket_efficiency == 1.0


async def test_validation_rejects_before_sending_with_every_reason(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        with pytest.raises(UnknownMarketError):
            await eng.subscribe_realtime("ticker", ["KRW-NOPE"])
        with pytest.raises(InvalidSubscriptionError) as caught:
            await eng.subscribe_realtime("orderbook", ["krw-btc"], units=7)
        assert len(caught.value.reasons) >= 2
        with pytest.raises(InvalidSubscriptionError):
            await eng.subscribe_realtime("tickr", ["KRW-BTC"])
        assert eng.validate_subscription("ticker", ["KRW-BTC"]) is True
        assert eng.validate_subscription("ticker", ["KRW-NOPE"]) is False
        sub_id = await eng.subscribe_realtime("orderbook", ["KRW-BTC"], units=30, level=0)
        # Units 30 and level 0 are Upbit's defaults: the same stream as asking for none.
        assert eng.validate_subscription("orderbook", ["KRW-BTC"]) is False
        with pytest.raises(InvalidSubscriptionError, match="already"):
            eng.check_subscription("orderbook", ["KRW-BTC"], units=30)
        assert eng.subscription(sub_id).units is None
        metrics = eng.metrics()
        assert (metrics.subscriptions_failed, metrics.subscriptions_succeeded) == (3, 1)
        await trio.sleep(1)
        assert all(r.kind != "subscribe" or "NOPE" not in r.text for r in emu.requests())


async def test_detect_conflicts_reports_duplicates(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        first = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        second = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await settle(eng, emu)
        kinds = {finding.kind for finding in eng.detect_conflicts()}
        assert ConflictKind.DUPLICATE in kinds
        assert ConflictKind.MODE_MIX not in kinds
        duplicate = next(f for f in eng.detect_conflicts() if f.kind is ConflictKind.DUPLICATE)
        assert set(duplicate.subscriptions) == {first, second}


async def test_optimize_closes_what_carries_nothing_and_raises_efficiency(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator(ticket_capacity=1) as (eng, emu):
        btc = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        eth = await eng.subscribe_realtime("ticker", ["KRW-ETH"])
        await settle(eng, emu)
        assert len(emu.connections(open_only=True)) == 2
        await eng.unsubscribe_realtime(btc)
        await settle(eng, emu)
        outcome = await eng.optimize_subscriptions()
        await settle(eng, emu)
        assert outcome.closed == ("realtime-0",)
        assert outcome.efficiency_before < 0.5
        assert outcome.efficiency_after == 1.0
        with trio.fail_after(WAIT):
            await emu.wait_for(lambda: len(emu.connections(open_only=True)) == 1)
        assert eng.subscription(eth).state.value == "active"
        usage = eng.get_ticket_usage().realtime
        assert isinstance(usage, PoolUsage)
        assert usage.efficiency.ticket == 1.0


async def test_cleanup_releases_closed_readers_and_closes_parked_tickets(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        async with eng.stream(sub_id) as stream:
            await collect(stream, 2)
        await settle(eng, emu)
        await trio.sleep(2)
        outcome = await eng.cleanup_inactive()
        assert outcome.subscriptions == (sub_id,)
        assert outcome.tickets == ("realtime-0",)
        with trio.fail_after(WAIT):
            await emu.wait_for(lambda: not emu.connections(open_only=True))
        assert (await eng.cleanup_inactive()) == type(outcome)((), ())
        assert eng.get_ticket_usage().realtime.open == 0


async def test_silent_subscriptions_become_inactive(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(emulator={"rates": {"BTC-XRP": 0.0}}) as (eng, emu):
        quiet = await eng.subscribe_realtime("trade", ["BTC-XRP"])
        busy = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        busy_stream = eng.stream(busy)
        await settle(eng, emu)
        await trio.sleep(40)
        assert (await eng.cleanup_inactive(inactive_after=30)).subscriptions == (quiet,)
        await collect(busy_stream, 1)
        assert eng.subscription(busy).state.value == "active"


async def test_bursts_are_coalesced_within_the_message_limits(autojump_clock: MockClock) -> None:
    codes = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE"]
    async with engine_on_emulator() as (eng, emu):
        async with trio.open_nursery() as nursery:
            for index in range(30):
                code = codes[index % len(codes)]
                data_type = ("ticker", "trade", "orderbook")[index % 3]
                nursery.start_soon(eng.subscribe_realtime, data_type, [code])
        await settle(eng, emu)
        kinds = {record.kind for record in emu.requests()}
        assert "rate_limited" not in kinds
        (conn,) = emu.connections(open_only=True)
        sent = subscribe_requests(emu, conn.conn_id)
        assert len(sent) < 30  # coalesced
        times = [record.at for record in emu.requests(conn.conn_id)]
        for index in range(len(times) - 5):
            assert times[index + 5] - times[index] >= 1.0
        assert len(emulator_set(emu, conn.conn_id)) == 15


async def test_leaving_the_block_ends_streams_and_stops_every_actor(
    autojump_clock: MockClock,
) -> None:
    async with open_emulator(emulator_config()) as emu:
        async with open_engine(
            ws_url=emu.ws_url, rest_url=emu.rest_url, seed=3, transport=transport_name()
        ) as eng:
            sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC"])
            stream = eng.stream(sub_id)
            await collect(stream, 1)
            tree = eng.debug_tree()
            assert tree.tickets["realtime-0"].status.connected
            assert "realtime-0" in tree.render()
        with trio.fail_after(WAIT):
            async for _ in stream:
                pass
        with trio.fail_after(WAIT):
            await emu.wait_for(lambda: not emu.connections(open_only=True))
        with pytest.raises(EngineClosedError):
            await eng.subscribe_realtime("ticker", ["KRW-BTC"])


async def test_metrics_render_as_prometheus_text(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await collect(eng.stream(sub_id), 3)
        metrics = eng.metrics()
        assert metrics.messages_received["ticker"] >= 3
        assert metrics.connect_latency.count == 1
        assert metrics.subscribers[sub_id].routed["ticker"] >= 3
        text = metrics.to_prometheus()
        assert "upbit_engine_connects_total 1" in text
        assert 'upbit_engine_messages_received_total{type="ticker"}' in text
        assert text.endswith("\n")
        del emu
