"""The seeded default catalog: about 290 KRW, 330 BTC and 240 USDT pairs over 360 assets.

The shape copies the real exchange (docs/UPBIT.md, Market codes: 289 KRW, 328 BTC, 238 USDT pairs
over 358 assets on 2026-09-23, most assets on two or three quote markets). Everything here is a pure
function of the seed; the public ``default_catalog`` wraps these rows into ``Listing`` values.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import NamedTuple

from engine.testing.marketdata.ladder import grid_of, supported_levels, tick_for
from engine.testing.marketdata.names import KNOWN_ASSETS, Asset, synthetic_assets

__all__ = ("CAUTION_FLAGS", "QUOTE_ORDER", "CatalogRow", "catalog_rows")

CAUTION_FLAGS: tuple[str, ...] = (
    "PRICE_FLUCTUATIONS",
    "TRADING_VOLUME_SOARING",
    "DEPOSIT_AMOUNT_SOARING",
    "GLOBAL_PRICE_DIFFERENCES",
    "CONCENTRATION_OF_SMALL_ACCOUNTS",
)

QUOTE_ORDER: tuple[str, ...] = ("KRW", "BTC", "USDT")

_ASSET_COUNT = 360
_MAJORS = 40  # the first known assets trade on all three quote markets and never carry flags
_KRW_PER_USD = 1390.0
_BTC_USD = 80_000.0
_MIN_BTC_PRICE = 1e-7  # ten satoshi ticks: a lower price would leave the bid side nearly empty

# Quote sets for the exceptions, then how many of the other assets get each quote set. With the
# three exceptions the totals are exactly 290 KRW, 330 BTC and 240 USDT pairs.
_FIXED_QUOTES: dict[str, tuple[str, ...]] = {
    "BTC": ("KRW", "USDT"),
    "USDT": ("KRW",),
    "USDC": ("KRW", "USDT"),
}
_QUOTE_SETS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("KRW", "BTC", "USDT"), 200),
    (("KRW", "BTC"), 70),
    (("BTC", "USDT"), 20),
    (("KRW", "USDT"), 8),
    (("KRW",), 9),
    (("BTC",), 40),
    (("USDT",), 10),
)

# Trades per second of the busiest pairs; everything else is drawn per quote market below.
_BUSY: dict[str, float] = {
    "KRW-BTC": 8.0,
    "KRW-XRP": 6.0,
    "KRW-ETH": 5.0,
    "KRW-SOL": 4.0,
    "KRW-DOGE": 3.5,
    "KRW-USDT": 3.0,
    "USDT-BTC": 2.0,
    "USDT-ETH": 1.0,
    "USDT-XRP": 0.5,
    "USDT-SOL": 0.4,
    "BTC-ETH": 0.4,
    "BTC-XRP": 0.25,
}
# (low, high) trades per second, drawn log-uniformly: majors on KRW, then each market's tail.
_MAJOR_KRW_ACTIVITY = (0.2, 2.0)
_TAIL_ACTIVITY: dict[str, tuple[float, float]] = {
    "KRW": (0.004, 0.3),
    "BTC": (0.002, 0.04),
    "USDT": (0.003, 0.08),
}
_WARNING_SHARE = 0.03
_CAUTION_SHARE = 0.012


class CatalogRow(NamedTuple):
    market: str
    korean_name: str
    english_name: str
    warning: bool
    caution: dict[str, bool]
    tick_size: float
    supported_levels: tuple[float, ...]
    activity: float
    reference_price: float


def _log_uniform(rng: random.Random, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.3g}")


def _quote_price(rng: random.Random, asset: Asset, quote: str) -> float:
    if quote == "KRW":
        premium = rng.gauss(0.0, 0.002) if asset.usd_price == 1.0 else rng.gauss(0.005, 0.008)
        return asset.usd_price * _KRW_PER_USD * (1.0 + premium)
    if quote == "BTC":
        return max(_MIN_BTC_PRICE, asset.usd_price / _BTC_USD * (1.0 + rng.gauss(0.0, 0.003)))
    return asset.usd_price * (1.0 + rng.gauss(0.0, 0.002))


def _on_grid(price: float, quote: str, base: str) -> tuple[Decimal, float]:
    """(tick, price rounded to that tick and at least ten ticks)."""
    tick = tick_for(quote, base, price)
    decimals, tick_units = grid_of(tick)
    units = max(10, round(price * 10**decimals / tick_units)) * tick_units
    return tick, units / 10**decimals


def _assign_quotes(rng: random.Random, assets: list[Asset]) -> list[tuple[str, ...]]:
    pool = [quotes for quotes, count in _QUOTE_SETS for _ in range(count)]
    free = [a for a in assets if a.symbol not in _FIXED_QUOTES]
    if len(pool) != len(free):
        raise AssertionError("the quote-set counts must cover every asset")
    # Majors take the all-market sets first; the rest of the pool is dealt at random.
    majors = [a.symbol for a in free[:_MAJORS]]
    pool_rest = pool[_MAJORS:]
    rng.shuffle(pool_rest)
    dealt = dict(zip(majors, pool[:_MAJORS], strict=True))
    dealt.update(zip((a.symbol for a in free[_MAJORS:]), pool_rest, strict=True))
    return [_FIXED_QUOTES.get(a.symbol) or dealt[a.symbol] for a in assets]


def _flags(rng: random.Random, major: bool) -> tuple[bool, dict[str, bool]]:
    if major:
        return False, dict.fromkeys(CAUTION_FLAGS, False)
    warning = rng.random() < _WARNING_SHARE
    return warning, {flag: rng.random() < _CAUTION_SHARE for flag in CAUTION_FLAGS}


def _activity(rng: random.Random, market: str, quote: str, major: bool) -> float:
    busy = _BUSY.get(market)
    if busy is not None:
        return busy
    if major and quote == "KRW":
        return _log_uniform(rng, _MAJOR_KRW_ACTIVITY)
    return _log_uniform(rng, _TAIL_ACTIVITY[quote])


def catalog_rows(seed: int) -> list[CatalogRow]:
    """Every pair of the default catalog, KRW market first, then BTC, then USDT."""
    rng = random.Random(f"upbit-engine catalog {seed}")
    taken = {a.symbol for a in KNOWN_ASSETS}
    assets = list(KNOWN_ASSETS) + synthetic_assets(rng, _ASSET_COUNT - len(KNOWN_ASSETS), taken)
    quotes_of = _assign_quotes(rng, assets)
    major_symbols = {a.symbol for a in assets[: _MAJORS + len(_FIXED_QUOTES)]}
    flags = {a.symbol: _flags(rng, a.symbol in major_symbols) for a in assets}
    rows: list[CatalogRow] = []
    for quote in QUOTE_ORDER:
        for asset, quotes in zip(assets, quotes_of, strict=True):
            if quote not in quotes:
                continue
            market = f"{quote}-{asset.symbol}"
            tick, price = _on_grid(_quote_price(rng, asset, quote), quote, asset.symbol)
            decimals, tick_units = grid_of(tick)
            warning, caution = flags[asset.symbol]
            rows.append(
                CatalogRow(
                    market=market,
                    korean_name=asset.korean_name,
                    english_name=asset.english_name,
                    warning=warning,
                    caution=dict(caution),
                    tick_size=tick_units / 10**decimals,
                    supported_levels=supported_levels(quote, tick, price),
                    activity=_activity(rng, market, quote, asset.symbol in major_symbols),
                    reference_price=price,
                )
            )
    return rows
