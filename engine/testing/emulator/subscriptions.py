"""A connection's subscription set, built from one accepted request (sans-IO).

Upbit replaces the whole set on every request (docs/UPBIT.md), so a set is a pure
function of the last request: no merging anywhere. Bad codes are kept (Upbit accepts them
silently); they simply never match any market event.
"""

from __future__ import annotations

import attrs

from engine.testing.config import Quirks
from engine.testing.emulator.requests import DataTypeRequest, Subscribe
from engine.testing.introspection import SubscriptionEntry

__all__ = (
    "EMPTY",
    "ORDERBOOK_UNITS",
    "StreamKey",
    "SubscriptionSet",
    "build_subscription",
    "family_of",
    "split_code",
)

#: Allowed ``.N`` suffixes since 2025-07-02; anything else means 30.
ORDERBOOK_UNITS = frozenset({1, 5, 15, 30})
DEFAULT_UNITS = 30


def family_of(data_type: str) -> str:
    """The ``MarketEvent.kinds`` member a data type follows (``candle.1m`` -> ``candle``)."""
    return "candle" if data_type.startswith("candle.") else data_type


def split_code(data_type: str, raw: str) -> tuple[str, int]:
    """``("orderbook", "KRW-BTC.15")`` -> ``("KRW-BTC", 15)``; suffixes only mean something on
    orderbook, and an unsupported one gives the default 30 rows."""
    if data_type == "orderbook":
        base, dot, suffix = raw.rpartition(".")
        if dot and suffix.isdigit():
            units = int(suffix)
            return base, units if units in ORDERBOOK_UNITS else DEFAULT_UNITS
        return raw, DEFAULT_UNITS
    return raw, DEFAULT_UNITS


@attrs.frozen
class StreamKey:
    """One public stream: the rendering of ``data_type`` for ``code`` with these parameters."""

    data_type: str
    code: str
    units: int = DEFAULT_UNITS
    level: float = 0.0

    @property
    def family(self) -> str:
        return family_of(self.data_type)


@attrs.frozen
class SubscriptionSet:
    """What one connection is subscribed to after its last accepted request."""

    ticket: str | None
    realtime: tuple[StreamKey, ...]
    listing: tuple[SubscriptionEntry, ...]
    my_order: bool = False
    #: None: every market (no ``codes`` or ``[]``).
    my_order_codes: frozenset[str] | None = None
    my_asset: bool = False

    def wants_my_order(self, code: str) -> bool:
        return self.my_order and (self.my_order_codes is None or code in self.my_order_codes)


EMPTY = SubscriptionSet(None, (), ())


def _wants(item: DataTypeRequest, quirks: Quirks) -> tuple[bool, bool]:
    """(send a snapshot, stream realtime) for one public data-type object."""
    if item.only_snapshot and item.only_realtime:
        return {
            "snapshot": (True, False),
            "realtime": (False, True),
            "nothing": (False, False),
            "error": (False, False),  # rejected by the parser already
        }[quirks.both_flags]
    if item.only_snapshot:
        return True, False
    if item.only_realtime:
        return False, True
    return True, True


def build_subscription(
    request: Subscribe, quirks: Quirks
) -> tuple[SubscriptionSet, tuple[StreamKey, ...]]:
    """The new set, and the snapshots to send for it (deduplicated, in request order)."""
    realtime: dict[StreamKey, None] = {}
    snapshots: dict[StreamKey, None] = {}
    listing: list[SubscriptionEntry] = []
    my_order = my_asset = False
    my_order_codes: set[str] | None = set()
    for item in request.items:
        if item.type == "myAsset":
            my_asset = True
            listing.append(SubscriptionEntry("myAsset"))
            continue
        if item.type == "myOrder":
            my_order = True
            if not item.codes:
                my_order_codes = None
            elif my_order_codes is not None:
                my_order_codes.update(item.codes)
            listing.append(SubscriptionEntry("myOrder", item.codes or None))
            continue
        if item.type == "announcement":
            listing.append(SubscriptionEntry("announcement"))
            continue
        snapshot, stream = _wants(item, quirks)
        level = item.level if item.type == "orderbook" and item.level is not None else 0.0
        for raw in item.codes or ():
            code, units = split_code(item.type, raw)
            key = StreamKey(item.type, code, units, level)
            if snapshot:
                snapshots[key] = None
            if stream:
                realtime[key] = None
        if stream:
            codes = tuple(
                raw if quirks.list_keeps_suffix else split_code(item.type, raw)[0]
                for raw in item.codes or ()
            )
            listing.append(
                SubscriptionEntry(item.type, codes, level if item.type == "orderbook" else None)
            )
    subscription = SubscriptionSet(
        request.ticket,
        tuple(realtime),
        tuple(listing),
        my_order=my_order,
        my_order_codes=None if my_order_codes is None else frozenset(my_order_codes),
        my_asset=my_asset,
    )
    return subscription, tuple(snapshots)
