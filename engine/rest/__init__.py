"""Upbit's REST API from Trio: the market catalog, and quotation history within Upbit's limits.

- :func:`fetch_catalog` fetches ``GET /v1/market/all?is_details=true`` and, for KRW pairs,
  ``GET /v1/orderbook/instruments``, within Upbit's quotation request limits.
- :class:`CatalogSource` keeps a catalog fresh on a TTL and shares fetches between callers.
- :class:`QuotationClient` sends quotation requests within Upbit's per-group limits (sliding
  windows, ``Remaining-Req``, 429 backoff, 418 blocks), one shared budget for all its callers;
  :class:`QuotationStatistics` is its snapshot.
- :func:`fetch_trades` and :func:`fetch_candles` page a time range of trades or candles through a
  client into the engine's :class:`~engine.wire.messages.Trade` and
  :class:`~engine.wire.messages.Candle` models (``stream_type == "REST"``), and say in a
  :class:`Coverage` whether the range was covered.
"""

from __future__ import annotations

from engine.rest.catalog_fetch import (
    INSTRUMENTS_BATCH_SIZE,
    REST_REQUESTS_PER_SECOND,
    fetch_catalog,
)
from engine.rest.catalog_source import CatalogSource, CatalogSourceStatistics
from engine.rest.history import COVERAGE_REASONS, Coverage, HistoryResult, TimeRange
from engine.rest.history_candles import CANDLE_UNITS, CandleUnit, fetch_candles
from engine.rest.history_trades import fetch_trades
from engine.rest.quotation import (
    UPBIT_REST_URL,
    QuotationClient,
    QuotationPolicy,
    QuotationStatistics,
)
from engine.rest.quotation_limits import QUOTATION_GROUPS, RemainingReq
from engine.rest.rest_rows import REST_STREAM_TYPE, candle_from_rest, trade_from_rest

__all__ = (
    "CANDLE_UNITS",
    "COVERAGE_REASONS",
    "INSTRUMENTS_BATCH_SIZE",
    "QUOTATION_GROUPS",
    "REST_REQUESTS_PER_SECOND",
    "REST_STREAM_TYPE",
    "UPBIT_REST_URL",
    "CandleUnit",
    "CatalogSource",
    "CatalogSourceStatistics",
    "Coverage",
    "HistoryResult",
    "QuotationClient",
    "QuotationPolicy",
    "QuotationStatistics",
    "RemainingReq",
    "TimeRange",
    "candle_from_rest",
    "fetch_candles",
    "fetch_catalog",
    "fetch_trades",
    "trade_from_rest",
)
