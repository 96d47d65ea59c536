"""upbit-engine: a Trio-native, supervised subscription engine for Upbit's WebSocket API."""

from __future__ import annotations

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

__all__ = (
    "CatalogUnavailableError",
    "ConnectionFailedError",
    "EngineClosedError",
    "InvalidSubscriptionError",
    "NoParkingCodeError",
    "ProtocolError",
    "RateLimitedError",
    "ServerError",
    "SnapshotTimeoutError",
    "SubscriptionFailedError",
    "UnknownMarketError",
    "UpbitEngineError",
)
