"""upbit-engine: a Trio-native, supervised subscription engine for Upbit's WebSocket API.

Start with :func:`open_engine`; the emulator for tests is in :mod:`engine.testing`.
"""

from __future__ import annotations

from engine.config import EngineConfig
from engine.core.connection_state import ConnectionState
from engine.errors import (
    CatalogNotReadyError,
    CatalogUnavailableError,
    ConnectionDeadError,
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
from engine.events import (
    EVENT_TYPES,
    Backfilled,
    Ended,
    EngineEvent,
    Gap,
    Interrupted,
    SnapshotMissing,
    Unfilled,
)
from engine.facade.engine import (
    Engine,
    OptimizeOutcome,
    SubscriptionStream,
    TicketEntry,
    TicketUsage,
)
from engine.facade.open import open_engine
from engine.observability.debug import EngineTree, TicketNode
from engine.observability.metrics import EngineMetrics
from engine.wire.decode import DriftCounter, decode_frame
from engine.wire.messages import (
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

__all__ = (
    "EVENT_TYPES",
    "AssetBalance",
    "Candle",
    "CatalogNotReadyError",
    "CatalogUnavailableError",
    "ConnectionDeadError",
    "Backfilled",
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
    "Unfilled",
    "UnknownMarketError",
    "UnknownMessage",
    "UpbitEngineError",
    "decode_frame",
    "open_engine",
)
