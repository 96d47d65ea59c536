"""Tick sizes, price grids and orderbook grouping levels for the market-data generator.

Prices inside the generator are integers counted in units of ``10**-decimals`` of the quote
currency (a "grid"), so every price stays exactly on its tick and converts to the nearest double
with one division (``units / 10**decimals`` is correctly rounded, so ``repr`` prints the decimal).

The ladders follow Upbit's published order-price units (docs/UPBIT.md, "Order-price units",
with the sources; per pair Upbit serves them from ``GET /v1/orderbook/instruments``):

- KRW, current table (after the 2025-07-31 change): >= 1,000,000 -> 1,000; >= 500,000 -> 500;
  >= 100,000 -> 100; >= 50,000 -> 50; >= 10,000 -> 10; >= 5,000 -> 5; >= 100 -> 1. Below 100 KRW
  the current table's rows were not read, so the rows of the previous table are kept (0.01 down
  to 0.00000001, one decade per row); that part is an assumption.
  USDT and USDC quoted in KRW use 0.5 between 1,000 and 10,000 KRW (the 2025-03-21 exception).
- BTC: one tick for every price, 0.00000001 BTC.
- USDT: >= 10 -> 0.01, then one decimal more per decade down to 0.00000001.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = (
    "btc_tick",
    "grid_of",
    "krw_tick",
    "supported_levels",
    "tick_for",
    "usdt_tick",
)

_D = Decimal

# (lower bound inclusive, tick), highest band first.
_KRW_LADDER: tuple[tuple[Decimal, Decimal], ...] = (
    (_D("1000000"), _D("1000")),
    (_D("500000"), _D("500")),
    (_D("100000"), _D("100")),
    (_D("50000"), _D("50")),
    (_D("10000"), _D("10")),
    (_D("5000"), _D("5")),
    (_D("100"), _D("1")),
    (_D("10"), _D("0.01")),
    (_D("1"), _D("0.001")),
    (_D("0.1"), _D("0.0001")),
    (_D("0.01"), _D("0.00001")),
    (_D("0.001"), _D("0.000001")),
    (_D("0.0001"), _D("0.0000001")),
    (_D("0"), _D("0.00000001")),
)

_USDT_LADDER: tuple[tuple[Decimal, Decimal], ...] = (
    (_D("10"), _D("0.01")),
    (_D("1"), _D("0.001")),
    (_D("0.1"), _D("0.0001")),
    (_D("0.01"), _D("0.00001")),
    (_D("0.001"), _D("0.000001")),
    (_D("0.0001"), _D("0.0000001")),
    (_D("0"), _D("0.00000001")),
)

_STABLECOINS = frozenset({"USDT", "USDC"})
_MAX_DECIMALS = 12


def _from_ladder(ladder: tuple[tuple[Decimal, Decimal], ...], price: Decimal) -> Decimal:
    for lower, tick in ladder:
        if price >= lower:
            return tick
    return ladder[-1][1]


def krw_tick(price: float, base: str) -> Decimal:
    """The KRW-market tick for ``price`` (KRW) of asset ``base``."""
    value = Decimal(repr(price))
    if base in _STABLECOINS and Decimal(1000) <= value < Decimal(10000):
        return _D("0.5")
    return _from_ladder(_KRW_LADDER, value)


def btc_tick(price: float) -> Decimal:
    """The BTC-market tick: one satoshi whatever the price."""
    del price
    return _D("0.00000001")


def usdt_tick(price: float) -> Decimal:
    """The USDT-market tick for ``price`` (USDT)."""
    return _from_ladder(_USDT_LADDER, Decimal(repr(price)))


def tick_for(quote: str, base: str, price: float) -> Decimal:
    """The tick of pair ``{quote}-{base}`` at ``price``; ValueError for an unknown quote."""
    if quote == "KRW":
        return krw_tick(price, base)
    if quote == "BTC":
        return btc_tick(price)
    if quote == "USDT":
        return usdt_tick(price)
    raise ValueError(f"unknown quote currency {quote!r}: use KRW, BTC or USDT")


def grid_of(tick: float | Decimal) -> tuple[int, int]:
    """``(decimals, tick_units)`` so that ``tick == tick_units / 10**decimals`` exactly.

    ``tick`` must be positive with at most 12 decimals (Upbit's smallest tick has 8).
    """
    value = tick if isinstance(tick, Decimal) else Decimal(repr(float(tick)))
    if not value.is_finite() or value <= 0:
        raise ValueError(f"tick size must be a positive number, got {tick!r}")
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite values have an int exponent
    decimals = max(0, -exponent)
    if decimals > _MAX_DECIMALS:
        raise ValueError(f"tick size {tick!r} has more than {_MAX_DECIMALS} decimals")
    return decimals, int(value.scaleb(decimals))


def supported_levels(quote: str, tick: Decimal, price: float) -> tuple[float, ...]:
    """Orderbook grouping levels: ``(0,)`` off KRW, else 0 then 10, 100, ... ticks.

    KRW-BTC on the real exchange lists ``0, 10000, 100000, 1000000, ...`` with a tick of 1,000;
    levels above the price are useless, so the list stops there (10 ticks always included).
    """
    if quote != "KRW":
        return (0.0,)
    decimals, tick_units = grid_of(tick)
    scale = 10**decimals
    levels = [0.0]
    for power in range(1, 5):
        level = tick_units * 10**power / scale
        if power > 1 and level > price:
            break
        levels.append(level)
    return tuple(levels)
