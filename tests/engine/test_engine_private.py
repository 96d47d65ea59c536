"""Private streams (myOrder, myAsset) on an authenticated ticket, against the emulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from engine.errors import InvalidSubscriptionError, SubscriptionFailedError
from engine.events import Gap, Interrupted
from engine.facade.engine import Engine
from engine.facade.open import open_engine
from engine.testing import Emulator, make_my_asset, make_my_order, open_emulator
from engine.wire.messages import MyAsset, MyOrder

from ._engine_support import (
    WAIT,
    emulator_config,
    receive,
    settle,
    subscribe_requests,
    transport_name,
)

PUBLIC_PATH = "/websocket/v1"
PRIVATE_PATH = "/websocket/v1/private"
#: Upbit's secret keys are 40 characters: shorter than PyJWT's advice for HS512.
UPBIT_LIKE_SECRET = "S" * 40


@contextlib.asynccontextmanager
async def private_engine(
    emulator: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[tuple[Engine, Emulator]]:
    """An engine with the emulator's key pair (unless overridden) on both endpoints."""
    async with open_emulator(emulator_config(**(emulator or {}))) as emu:
        options.setdefault("access_key", emu.access_key)
        options.setdefault("secret_key", emu.secret_key)
        options.setdefault("transport", transport_name())
        async with open_engine(
            ws_url=emu.ws_url,
            private_ws_url=emu.private_ws_url,
            rest_url=emu.rest_url,
            seed=1,
            **options,
        ) as eng:
            yield eng, emu


async def test_my_order_and_my_asset_arrive_typed_with_exact_amounts(
    autojump_clock: MockClock,
) -> None:
    async with private_engine() as (eng, emu):
        orders = await eng.subscribe_realtime("myOrder", ["KRW-BTC"])
        assets = await eng.subscribe_realtime("myAsset", [])
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        assert conn.path == PRIVATE_PATH
        assert conn.access_key == emu.access_key
        (request,) = subscribe_requests(emu, conn.conn_id)
        body = request.json()
        assert isinstance(body, list)
        assert body[1:-1] == [{"type": "myOrder", "codes": ["KRW-BTC"]}, {"type": "myAsset"}]

        price = "123456789.123456789123456789"
        assert emu.emit_my_order(make_my_order(code="KRW-BTC", price=price, volume="0.1")) == 1
        balance = "0.000000000000000001"
        assert emu.emit_my_asset(make_my_asset(assets=[("BTC", balance, "12.5")])) == 1
        # Another market's order is not on the subscription's wire set: nothing is sent.
        assert emu.emit_my_order(make_my_order(code="KRW-ETH")) == 0

        order = await receive(eng.stream(orders))
        assert isinstance(order, MyOrder)
        assert (order.code, order.state, order.stream_type) == ("KRW-BTC", "trade", "REALTIME")
        assert order.price == Decimal(price)
        assert order.volume == Decimal("0.1")
        asset = await receive(eng.stream(assets))
        assert isinstance(asset, MyAsset)
        (btc,) = asset.assets
        assert (btc.currency, btc.balance, btc.locked) == ("BTC", Decimal(balance), Decimal("12.5"))

        # No private type ever went to the public endpoint, and no public connection was needed.
        for info in emu.connections():
            assert info.path == PRIVATE_PATH
        assert eng.subscription(orders).tickets == ("private-0",)


async def test_private_and_public_streams_use_separate_endpoints(
    autojump_clock: MockClock,
) -> None:
    async with private_engine() as (eng, emu):
        public = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        private = await eng.subscribe_realtime("myOrder", [])  # every market
        await settle(eng, emu)
        by_path = {info.path: info for info in emu.connections(open_only=True)}
        assert set(by_path) == {PUBLIC_PATH, PRIVATE_PATH}
        for record in subscribe_requests(emu, by_path[PUBLIC_PATH].conn_id):
            types = {item.get("type") for item in record.json()[1:-1]}  # type: ignore[index]
            assert not types & {"myOrder", "myAsset"}
        assert by_path[PUBLIC_PATH].access_key is None
        assert emu.emit_my_order(make_my_order(code="KRW-XRP")) == 1
        order = await receive(eng.stream(private))
        assert isinstance(order, MyOrder)
        assert order.code == "KRW-XRP"
        assert eng.subscription(public).tickets == ("realtime-0",)


async def test_each_connect_carries_a_fresh_hs512_token(autojump_clock: MockClock) -> None:
    # reject_reused_nonce: a reconnect with a replayed token would be refused.
    async with private_engine(emulator={"reject_reused_nonce": True}) as (eng, emu):
        sub_id = await eng.subscribe_realtime("myAsset", [])
        await settle(eng, emu)
        (first,) = emu.connections(open_only=True)
        await emu.drop(first.conn_id)
        stream = eng.stream(sub_id)
        with trio.fail_after(WAIT):
            while not isinstance(await stream.receive(), Gap):
                pass
        await settle(eng, emu)
        (second,) = emu.connections(open_only=True)
        assert second.conn_id != first.conn_id
        assert second.access_key == emu.access_key
        # The token's contents are tested on engine.runtime.credentials (test_credentials.py).


async def test_upbit_length_secrets_sign_without_warnings(autojump_clock: MockClock) -> None:
    # pytest turns warnings into errors: PyJWT's short-key advice must not reach the ticket.
    keys = {"upbit-like-access": UPBIT_LIKE_SECRET}
    async with private_engine(
        emulator={"access_keys": keys},
        access_key="upbit-like-access",
        secret_key=UPBIT_LIKE_SECRET,
    ) as (eng, emu):
        sub_id = await eng.subscribe_realtime("myOrder", ["KRW-ETH"])
        await settle(eng, emu)
        assert emu.emit_my_order(make_my_order(code="KRW-ETH"), access_key="upbit-like-access")
        order = await receive(eng.stream(sub_id))
        assert isinstance(order, MyOrder)
        assert eng.metrics().restarts == 0


async def test_private_types_without_keys_are_refused_before_anything_is_sent(
    autojump_clock: MockClock,
) -> None:
    async with (
        open_emulator(emulator_config()) as emu,
        open_engine(
            ws_url=emu.ws_url, rest_url=emu.rest_url, seed=1, transport=transport_name()
        ) as eng,
    ):
        for data_type, codes in (("myOrder", ["KRW-BTC"]), ("myAsset", [])):
            with pytest.raises(InvalidSubscriptionError) as caught:
                await eng.subscribe_realtime(data_type, codes)
            assert any("access_key and secret_key" in r for r in caught.value.reasons)
            assert isinstance(caught.value, ValueError)
            assert not eng.validate_subscription(data_type, codes)
        await trio.sleep(1)
        assert emu.connections() == ()
        assert emu.connects_accepted == 0
        assert eng.metrics().subscriptions_failed == 2


async def test_my_asset_with_codes_and_mixed_endpoints_are_refused(
    autojump_clock: MockClock,
) -> None:
    async with private_engine() as (eng, emu):
        with pytest.raises(InvalidSubscriptionError) as caught:
            await eng.subscribe_realtime("myAsset", ["KRW-BTC"])
        assert any("myAsset takes no codes" in r for r in caught.value.reasons)
        with pytest.raises(InvalidSubscriptionError):
            await eng.subscribe_realtime(["myOrder", "ticker"], ["KRW-BTC"])
        await trio.sleep(1)
        assert emu.connections() == ()


@pytest.mark.parametrize("failure", ["error_frame", "http_401"])
async def test_a_wrong_secret_fails_the_subscription_without_a_reconnect_loop(
    autojump_clock: MockClock, failure: str
) -> None:
    async with private_engine(
        emulator={"auth_failure": failure}, secret_key="not-the-secret-" + "x" * 60
    ) as (eng, emu):
        sub_id = await eng.subscribe_realtime("myOrder", ["KRW-BTC"])
        stream = eng.stream(sub_id)
        items: list[object] = []

        async def read_all() -> None:
            with trio.fail_after(WAIT):
                async for item in stream:
                    items.append(item)

        with pytest.raises(SubscriptionFailedError) as caught:
            await read_all()
        # Only outage events arrived (a Gap without an end: never restored).
        assert all(isinstance(item, Interrupted | Gap) for item in items)
        assert "INVALID_AUTH" in caught.value.cause or "401" in caught.value.cause
        assert "secret_key" in caught.value.cause
        assert eng.subscription(sub_id).state.value == "failed"
        await trio.sleep(300)  # far beyond every backoff: no retry may happen
        attempts = len(emu.connections()) + emu.connects_refused
        assert attempts == 1
        assert eng.metrics().restarts == 0
        assert eng.metrics().subscriptions_broken == 1
        assert eng.get_ticket_usage().private.open == 0


async def test_my_asset_takes_none_for_its_codes_as_the_docs_show(
    autojump_clock: MockClock,
) -> None:
    async with private_engine() as (eng, _):
        await eng.wait_catalog()
        assert eng.validate_subscription("myAsset", None)
        sub = await eng.subscribe_realtime("myAsset", None)
        assert eng.subscription(sub).codes == ()
        with pytest.raises(InvalidSubscriptionError):
            await eng.subscribe_realtime("ticker", None)  # a public type needs codes
