"""Pinned output: the simulator's frames and the ``myOrder`` builder, byte for byte, per seed.

The other simulator tests check properties (same seed, same frames; consistency; shapes); these pin
the exact bytes, so a refactoring of ``_md_pair`` or ``_md_private`` that changes one draw, one
field or one key's order fails here. A deliberate change of the model or of a builder changes the
digests: run this module, check the change is the intended one, and paste the new digests (the
failure message prints them).
"""

from __future__ import annotations

import hashlib
import itertools
from decimal import Decimal

import orjson
import pytest

from engine.testing.marketdata import (
    Listing,
    MarketSimulator,
    default_catalog,
    make_my_order,
    to_simple,
)
from engine.testing.marketdata.clock import DAY_MS
from engine.wire.keys import CANDLE_TYPES

MARKET_TYPES = ("ticker", "trade", "orderbook", *CANDLE_TYPES)
CATALOG = default_catalog(0)
BY_CODE = {listing.market: listing for listing in CATALOG}
#: The simulator's default epoch ms of time 0, and one three seconds before 00:00 UTC, so that a
#: run crosses into a new trading day.
START = 1_790_000_000_000
NIGHT = (START // DAY_MS + 1) * DAY_MS - 3_000


def _small_catalog() -> list[Listing]:
    """Majors, thin quiet books, and BTC pairs priced a few satoshi above zero."""
    picked = [BY_CODE[c] for c in ("KRW-BTC", "KRW-DOGE", "KRW-USDT", "BTC-ETH", "USDT-BTC")]
    picked += [x for x in CATALOG if x.activity < 0.01][:3]
    picked += [x for x in CATALOG if x.market.startswith("BTC-") and x.reference_price < 2e-7][:3]
    return picked


def _simulator_digest(seed: int, *, start_ms: int, candle_interval_ms: int) -> str:
    """Every REALTIME frame (DEFAULT and SIMPLE) of a 20 s run, then a SNAPSHOT of each pair."""
    catalog = _small_catalog()
    sim = MarketSimulator(
        catalog,
        seed=seed,
        rate_scale=4.0,
        start_ms=start_ms,
        candle_interval_ms=candle_interval_ms,
    )
    digest = hashlib.sha256()

    def add(message: dict[str, object] | None) -> None:
        if message is not None:
            digest.update(orjson.dumps(message))
            digest.update(orjson.dumps(to_simple(message)))

    for step in range(1, 21):
        for event in sim.events_until(float(step)):
            for data_type in MARKET_TYPES:
                add(sim.render_event(event, data_type, units=30))
    for listing in catalog:
        for data_type in MARKET_TYPES:
            add(sim.render(data_type, listing.market, "SNAPSHOT", units=30))
        for level in listing.supported_levels[1:3]:
            add(sim.render("orderbook", listing.market, "SNAPSHOT", units=15, level=level))
    return digest.hexdigest()


SIMULATOR_DIGESTS = {
    (0, START, 1_000): "2da5dea06288617239217b74408f622e2bcad8929157e12748c40f9effc865c3",
    (1, NIGHT, 0): "6de50e69da8e2d7104d9aa3bf5be8928964203991bd33eccda9180682fa2aad4",
    (7, NIGHT, 1_000): "babcf5c476f67a8b98ff923bab84b8405c482664c1138b898bb8c371839c5005",
    (42, START, 0): "aa34d2c39f52a836b0ceb7ea0704d17cfdb8d72a9734bca03a199ec764372bb4",
}


@pytest.mark.parametrize(("seed", "start_ms", "candle_interval_ms"), list(SIMULATOR_DIGESTS))
def test_simulator_frames_are_pinned(seed: int, start_ms: int, candle_interval_ms: int) -> None:
    got = _simulator_digest(seed, start_ms=start_ms, candle_interval_ms=candle_interval_ms)
    expected = SIMULATOR_DIGESTS[seed, start_ms, candle_interval_ms]
    assert got == expected, f"frames changed for seed {seed}: new digest {got!r}"


#: Amount overrides: none, explicit fills, and exact decimals past float precision.
_OVERRIDES: tuple[dict[str, object], ...] = (
    {},
    {"executed_volume": "0.25", "remaining_volume": "0.75", "trades_count": 3},
    {"prevented_volume": Decimal("0.123456789012345678"), "is_maker": False},
    {
        "uuid": "u-1",
        "trade_uuid": "t-1",
        "identifier": "id-9",
        "order_timestamp_ms": 1_700_000_000_000,
        "trade_timestamp_ms": 1_700_000_000_500,
    },
)


def _my_order_digest(seed: int) -> str:
    """Every state, side and order type, each with every override and three money spellings."""
    digest = hashlib.sha256()
    states = ("wait", "watch", "trade", "done", "cancel", "prevented")
    money: tuple[tuple[str | int | float, str | int], ...] = (
        ("116500000", "0.001"),
        (3200, 15),
        (0.1, "1.123456789012345678"),
    )
    for state, side, order_type, overrides, (price, volume) in itertools.product(
        states, ("ASK", "BID"), ("limit", "price", "market", "best"), _OVERRIDES, money
    ):
        message = make_my_order(
            code="KRW-BTC",
            state=state,
            ask_bid=side,
            order_type=order_type,
            price=price,
            volume=volume,
            fee_rate="0.0005" if side == "BID" else 0.0025,
            time_in_force="ioc" if order_type == "best" else None,
            smp_type="reduce" if state == "prevented" else None,
            seed=seed,
            **overrides,  # type: ignore[arg-type]
        )
        digest.update(orjson.dumps(message))
        digest.update(orjson.dumps(to_simple(message)))
    return digest.hexdigest()


MY_ORDER_DIGESTS = {
    0: "774eb566c0450f7ec36e94cd1cca09de5e05845aa7aebf3dada859888dc74ee8",
    4: "ea2b2df3c19e3b365a12cd82a078ea78da171022116a8bffc2713d514a5a01de",
    1234: "5c1e3b639e19a0f5900bb8ea4859b431064df4c53280d0e6f6dbbbf791be228c",
}


@pytest.mark.parametrize("seed", list(MY_ORDER_DIGESTS))
def test_my_order_messages_are_pinned(seed: int) -> None:
    got = _my_order_digest(seed)
    assert got == MY_ORDER_DIGESTS[seed], f"myOrder changed for seed {seed}: new digest {got!r}"
