"""Test support shipped with the engine: a faithful Upbit emulator with fault injection.

``open_emulator()`` serves Upbit's public and private WebSockets and the quotation REST endpoints
on 127.0.0.1, fed by a seeded market simulator whose trades it remembers for REST history
(``/v1/trades/ticks``, ``/v1/candles/...``; ``Emulator.trades_made``); the :class:`Emulator` it
yields shows what it saw and misbehaves on command. ``FaultPlan`` / ``fault_plans()`` make those
faults data, so Hypothesis can search for the schedule that breaks a client; ``Drift`` /
``SetDrift`` make the server depart from the documented wire the way Upbit's has before. The
pytest fixture ``upbit_emulator`` lives in ``engine.testing.pytest_plugin``.
"""

from __future__ import annotations

from engine.testing.config import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    EmulatorConfig,
    Limits,
    Quirks,
    TradeRetention,
)
from engine.testing.drift import Drift
from engine.testing.emulator.auth import make_jwt
from engine.testing.emulator.facade import Emulator, open_emulator
from engine.testing.emulator.history import TradeRecord
from engine.testing.faults import (
    DropConnections,
    FaultAction,
    FaultPlan,
    FaultStep,
    InjectError,
    InjectMalformed,
    RejectConnects,
    RestartServer,
    SetDrift,
    SetLatency,
    SetLimits,
    StallConnection,
    drifts,
    fault_plans,
)
from engine.testing.introspection import (
    ConnectionInfo,
    EmulatorEvent,
    EmulatorStatistics,
    Refusal,
    RequestRecord,
    SubscriptionEntry,
)
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
from engine.testing.recorded_market import RecordedMarket
from engine.testing.replay import ReplayMarket

__all__ = (
    "MAJOR_MARKETS",
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "ConnectionInfo",
    "Drift",
    "DropConnections",
    "Emulator",
    "EmulatorConfig",
    "EmulatorEvent",
    "EmulatorStatistics",
    "FaultAction",
    "FaultPlan",
    "FaultStep",
    "InjectError",
    "InjectMalformed",
    "Limits",
    "Listing",
    "MarketEvent",
    "MarketSimulator",
    "Quirks",
    "Refusal",
    "RejectConnects",
    "RecordedMarket",
    "ReplayMarket",
    "RequestRecord",
    "RestartServer",
    "SetDrift",
    "SetLatency",
    "SetLimits",
    "StallConnection",
    "SubscriptionEntry",
    "TradeRecord",
    "TradeRetention",
    "default_catalog",
    "drifts",
    "fault_plans",
    "make_jwt",
    "make_my_asset",
    "make_my_order",
    "open_emulator",
    "to_simple",
)
