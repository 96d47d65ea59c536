"""Upbit's market catalog, subscription validation against it, and parking codes.

- :class:`MarketCatalog` holds the listed pairs (``GET /v1/market/all?is_details=true``) and,
  optionally, each KRW pair's orderbook policy (``GET /v1/orderbook/instruments``).
- :func:`subscription_problems` lists every reason Upbit would refuse or ignore a subscription,
  each with its fix; :func:`validate_subscription` answers True/False and
  :func:`check_subscription` raises with every reason (the same verbs mean the same on
  ``Engine``).
- :func:`choose_parking_code` picks the code a soft unsubscribe parks a ticket on.

Everything here is sans-IO. Fetching the catalog over HTTP (:func:`engine.rest.fetch_catalog`,
:class:`engine.rest.CatalogSource`) is in :mod:`engine.rest`, so importing this package never
imports an I/O library.
"""

from __future__ import annotations

from engine.markets.catalog import (
    CAUTION_KEYS,
    KNOWN_QUOTES,
    CautionFlags,
    Market,
    MarketCatalog,
    OrderbookInstrument,
    parse_orderbook_instruments,
    split_code,
)
from engine.markets.parking import PARKING_PREFERENCES, choose_parking_code
from engine.markets.validation import (
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
    "KNOWN_QUOTES",
    "ORDERBOOK_UNITS",
    "PARKING_PREFERENCES",
    "PRIVATE_TYPES",
    "PUBLIC_TYPES",
    "SUBSCRIBABLE_TYPES",
    "CautionFlags",
    "Market",
    "MarketCatalog",
    "OrderbookInstrument",
    "check_subscription",
    "choose_parking_code",
    "parse_orderbook_instruments",
    "split_code",
    "subscription_problems",
    "validate_subscription",
)
