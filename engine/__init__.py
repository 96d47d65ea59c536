"""upbit-engine: a Trio-native, supervised subscription engine for Upbit's WebSocket API.

Start with :func:`open_engine`; the emulator for tests is in :mod:`engine.testing`.
"""

from __future__ import annotations

from engine._decode import DriftCounter, decode_frame
from engine.config import EngineConfig
from engine.connection_state import ConnectionState
from engine.debug import EngineTree, TicketNode
from engine.errors import (
    CatalogNotReadyError,
    CatalogUnavailableError,
    ConnectionFailedError,
    EngineClosedError,
    InvalidSubscriptionError,
    NoParkingCodeError,
    NotSettledError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SnapshotTimeoutError,
    StreamBusyError,
    SubscriptionFailedError,
    SubscriptionTimeoutError,
    UnknownMarketError,
    UpbitEngineError,
)
from engine.events import EVENT_TYPES, Ended, EngineEvent, Gap, Interrupted, SnapshotMissing
from engine.manager import (
    Engine,
    OptimizeOutcome,
    SubscriptionStream,
    TicketEntry,
    TicketUsage,
    open_engine,
)
from engine.messages import (
    AssetBalance,
    Candle,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    Ticker,
    Trade,
    UnknownMessage,
)
from engine.metrics import EngineMetrics

__all__ = (
    "EVENT_TYPES",
    "AssetBalance",
    "Candle",
    "CatalogNotReadyError",
    "CatalogUnavailableError",
    "ConnectionFailedError",
    "ConnectionState",
    "Engine",
    "DriftCounter",
    "EngineClosedError",
    "EngineConfig",
    "EngineEvent",
    "EngineMetrics",
    "EngineTree",
    "Ended",
    "Gap",
    "Interrupted",
    "InvalidSubscriptionError",
    "MyAsset",
    "MyOrder",
    "NoParkingCodeError",
    "NotSettledError",
    "OptimizeOutcome",
    "Orderbook",
    "OrderbookUnit",
    "ProtocolError",
    "RateLimitedError",
    "ServerError",
    "SnapshotMissing",
    "SnapshotTimeoutError",
    "StreamBusyError",
    "SubscriptionFailedError",
    "SubscriptionTimeoutError",
    "TicketEntry",
    "TicketUsage",
    "SubscriptionStream",
    "Ticker",
    "TicketNode",
    "Trade",
    "UnknownMarketError",
    "UnknownMessage",
    "UpbitEngineError",
    "decode_frame",
    "open_engine",
)
