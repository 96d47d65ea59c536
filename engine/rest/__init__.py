"""Upbit's REST API from Trio: fetching the market catalog and keeping it fresh.

- :func:`fetch_catalog` fetches ``GET /v1/market/all?is_details=true`` and, for KRW pairs,
  ``GET /v1/orderbook/instruments``, within Upbit's quotation request limits.
- :class:`CatalogSource` keeps a catalog fresh on a TTL and shares fetches between callers.
"""

from __future__ import annotations

from engine.rest.catalog_fetch import (
    INSTRUMENTS_BATCH_SIZE,
    REST_REQUESTS_PER_SECOND,
    fetch_catalog,
)
from engine.rest.catalog_source import CatalogSource, CatalogSourceStatistics

__all__ = (
    "INSTRUMENTS_BATCH_SIZE",
    "REST_REQUESTS_PER_SECOND",
    "CatalogSource",
    "CatalogSourceStatistics",
    "fetch_catalog",
)
