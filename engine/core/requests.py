"""From a ticket's desired set to the type objects of one request. Re-exported by
:mod:`engine.core`; :func:`engine.wire.protocol.build_request` turns the result into a frame."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from engine.core.keys import PRIVATE_TYPES, StreamKey, ordered_unique
from engine.wire.protocol import TypeRequest

__all__ = ("build_ticket_request", "fresh_keys", "parking_request", "snapshot_request")

_Group = tuple[str, int | None, float | None]


def _grouped(keys: Iterable[StreamKey]) -> dict[_Group, list[StreamKey]]:
    groups: dict[_Group, list[StreamKey]] = {}
    for key in ordered_unique(keys):
        groups.setdefault(key.group, []).append(key)
    return groups


def _needs_snapshot(
    key: StreamKey, streaming: Collection[StreamKey], snapshot_wanted: Collection[StreamKey]
) -> bool:
    return key not in streaming or key in snapshot_wanted


def fresh_keys(
    keys_in_order: Iterable[StreamKey],
    *,
    streaming: Collection[StreamKey],
    snapshot_wanted: Collection[StreamKey],
) -> tuple[StreamKey, ...]:
    """The keys :func:`build_ticket_request` sends with a SNAPSHOT due, in order.

    Report them as ``snapshot_keys`` to ``Registry.ticket_sent`` so a missing SNAPSHOT is noticed.
    Private types never get one.
    """
    return tuple(
        key
        for key in ordered_unique(keys_in_order)
        if not key.is_private and _needs_snapshot(key, streaming, snapshot_wanted)
    )


def _deepest(units: int | None, other: int | None) -> int | None:
    # No suffix is Upbit's full depth (30 rows), deeper than any suffix.
    if units is None or other is None:
        return None
    return max(units, other)


def _one_book_per_pair(
    keys: Sequence[StreamKey], needs_snapshot: Callable[[StreamKey], bool]
) -> list[tuple[StreamKey, bool]]:
    """Keys as they go on the wire, each with whether it needs a SNAPSHOT.

    Orderbooks of one (code, level) wanted at several depths become one stream at the deepest
    depth (subscribers get trimmed views, and frames are matched by (code, level), never by row
    count); it needs a SNAPSHOT when any of the keys it stands for does.
    """
    wire: dict[object, tuple[StreamKey, bool]] = {}
    for key in ordered_unique(keys):
        wanted = needs_snapshot(key)
        if key.data_type != "orderbook":
            wire[key] = (key, wanted)
            continue
        pair = (key.code, 0.0 if key.level is None else float(key.level))
        known = wire.get(pair)
        if known is None:
            wire[pair] = (key, wanted)
        else:
            deepest = _deepest(known[0].units, key.units)
            wire[pair] = (
                StreamKey("orderbook", key.code, deepest, known[0].level),
                known[1] or wanted,
            )
    return list(wire.values())


def build_ticket_request(
    keys_in_order: Sequence[StreamKey],
    *,
    streaming: Collection[StreamKey],
    snapshot_wanted: Collection[StreamKey],
) -> list[TypeRequest]:
    """The type objects that make a connection carry exactly ``keys_in_order``.

    Orderbooks of one code and level wanted at several depths go as one stream at the deepest.
    Keys with the same type, units and level share one object, in first-appearance order. Each
    group is split in two: codes that need a SNAPSHOT (not in ``streaming``, i.e. new on this
    connection, or in ``snapshot_wanted``, i.e. a new subscriber asked for one) and codes
    already streaming, re-sent with ``is_only_realtime`` so their subscribers see no duplicate
    SNAPSHOT. Private types get one plain object each (no flags; no codes for myAsset, and none
    for myOrder when any subscriber wants every market).

    An empty set has no request: park the ticket with :func:`parking_request` instead.
    """
    if not keys_in_order:
        raise ValueError("an empty set has no request; send parking_request(code) to park instead")
    requests: list[TypeRequest] = []
    on_wire = _one_book_per_pair(
        keys_in_order, lambda key: _needs_snapshot(key, streaming, snapshot_wanted)
    )
    wanted = {key for key, needs in on_wire if needs}
    for (data_type, units, level), keys in _grouped(key for key, _ in on_wire).items():
        if data_type in PRIVATE_TYPES:
            every_market = any(not key.code for key in keys)
            codes = () if every_market or data_type == "myAsset" else tuple(k.code for k in keys)
            requests.append(TypeRequest(type=data_type, codes=codes))
            continue
        if any(not key.code for key in keys):
            raise ValueError(f"{data_type} streams need a code; got {[str(k) for k in keys]}")
        fresh = [k.code for k in keys if k in wanted]
        flowing = [k.code for k in keys if k not in wanted]
        if fresh:
            requests.append(
                TypeRequest(type=data_type, codes=tuple(fresh), units=units, level=level)
            )
        if flowing:
            requests.append(
                TypeRequest(
                    type=data_type,
                    codes=tuple(flowing),
                    units=units,
                    level=level,
                    is_only_realtime=True,
                )
            )
    return requests


def parking_request(parking_code: str) -> list[TypeRequest]:
    """The soft-unsubscribe request: one snapshot-only ticker for ``parking_code``.

    It replaces (and so stops) everything the connection streamed; its single reply is to be
    swallowed. Choose the code with ``engine.markets.choose_parking_code``.
    """
    return [TypeRequest(type="ticker", codes=(parking_code,), is_only_snapshot=True)]


def snapshot_request(keys: Iterable[StreamKey]) -> list[TypeRequest]:
    """One-shot asks merged into as few ``is_only_snapshot`` objects as possible.

    Concurrent asks must travel together: a new request on the snapshot connection replaces the
    previous one, so any ask still unanswered has to be repeated in it.
    """
    requests: list[TypeRequest] = []
    for (data_type, units, level), group in _grouped(keys).items():
        if data_type in PRIVATE_TYPES:
            raise ValueError(f"{data_type} has no snapshots; subscribe to it instead")
        codes = tuple(dict.fromkeys(key.code for key in group))
        requests.append(
            TypeRequest(
                type=data_type, codes=codes, units=units, level=level, is_only_snapshot=True
            )
        )
    if not requests:
        raise ValueError("a snapshot request needs at least one stream")
    return requests
