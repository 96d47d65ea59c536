"""Upbit's market catalog, subscription validation against it, and parking codes.

- :class:`MarketCatalog` holds the listed pairs (``GET /v1/market/all?is_details=true``) and,
  optionally, each KRW pair's orderbook policy (``GET /v1/orderbook/instruments``).
- :func:`subscription_problems` lists every reason Upbit would refuse or ignore a subscription,
  each with its fix; :func:`validate_subscription` answers True/False and
  :func:`check_subscription` raises with every reason (the same verbs mean the same on
  ``Engine``).
- :func:`choose_parking_code` picks the code a soft unsubscribe parks a ticket on.
- :func:`fetch_catalog` fetches over HTTP from Trio; :class:`CatalogSource` keeps a catalog fresh
  on a TTL and shares fetches between callers.

The values and the validation are sans-IO; only fetching touches the network.
"""

from __future__ import annotations

from engine._market_catalog import (
    CAUTION_KEYS,
    KNOWN_QUOTES,
    CautionFlags,
    Market,
    MarketCatalog,
    OrderbookInstrument,
    parse_orderbook_instruments,
    split_code,
)
from engine._market_fetch import INSTRUMENTS_BATCH_SIZE, REST_REQUESTS_PER_SECOND, fetch_catalog
from engine._market_parking import PARKING_PREFERENCES, choose_parking_code
from engine._market_source import CatalogSource, CatalogSourceStatistics
from engine._market_validation import (
    ORDERBOOK_UNITS,
    PRIVATE_TYPES,
    PUBLIC_TYPES,
    SUBSCRIBABLE_TYPES,
    check_subscription,
    subscription_problems,
    validate_subscription,
)

__all__ = (
    "CAUTION_KEYS",
    "INSTRUMENTS_BATCH_SIZE",
    "KNOWN_QUOTES",
    "ORDERBOOK_UNITS",
    "PARKING_PREFERENCES",
    "PRIVATE_TYPES",
    "PUBLIC_TYPES",
    "REST_REQUESTS_PER_SECOND",
    "SUBSCRIBABLE_TYPES",
    "CatalogSource",
    "CatalogSourceStatistics",
    "CautionFlags",
    "Market",
    "MarketCatalog",
    "OrderbookInstrument",
    "check_subscription",
    "choose_parking_code",
    "fetch_catalog",
    "parse_orderbook_instruments",
    "split_code",
    "subscription_problems",
    "validate_subscription",
)
