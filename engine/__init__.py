"""upbit-engine: a Trio-native, supervised subscription engine for Upbit's WebSocket API.

Start with :func:`open_engine`; the emulator for tests is in :mod:`engine.testing`.
"""

from __future__ import annotations

from engine.config import EngineConfig
from engine.debug import EngineTree, TicketNode
from engine.errors import (
    CatalogUnavailableError,
    ConnectionFailedError,
    EngineClosedError,
    InvalidSubscriptionError,
    NoParkingCodeError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SnapshotTimeoutError,
    SubscriptionFailedError,
    UnknownMarketError,
    UpbitEngineError,
)
from engine.events import EngineEvent, Gap, Interrupted
from engine.manager import Engine, OptimizeOutcome, SubscriptionStream, open_engine
from engine.messages import (
    AssetBalance,
    Candle,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    Ticker,
    Trade,
)
from engine.metrics import EngineMetrics

__all__ = (
    "AssetBalance",
    "Candle",
    "CatalogUnavailableError",
    "ConnectionFailedError",
    "Engine",
    "EngineClosedError",
    "EngineConfig",
    "EngineEvent",
    "EngineMetrics",
    "EngineTree",
    "Gap",
    "Interrupted",
    "InvalidSubscriptionError",
    "MyAsset",
    "MyOrder",
    "NoParkingCodeError",
    "OptimizeOutcome",
    "Orderbook",
    "OrderbookUnit",
    "ProtocolError",
    "RateLimitedError",
    "ServerError",
    "SnapshotTimeoutError",
    "SubscriptionFailedError",
    "SubscriptionStream",
    "Ticker",
    "TicketNode",
    "Trade",
    "UnknownMarketError",
    "UpbitEngineError",
    "open_engine",
)
