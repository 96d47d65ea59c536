"""A simulated market: pairs with random-walk prices, trades, order books, candles and private
events, rendered as Upbit frames; the catalog of listed pairs the emulator serves."""

from __future__ import annotations

from engine.testing.marketdata.market import (
    MAJOR_MARKETS,
    Listing,
    MarketEvent,
    MarketSimulator,
    default_catalog,
    make_my_asset,
    make_my_order,
    to_simple,
)

__all__ = (
    "MAJOR_MARKETS",
    "Listing",
    "MarketEvent",
    "MarketSimulator",
    "default_catalog",
    "make_my_asset",
    "make_my_order",
    "to_simple",
)
