"""Drift: ways the emulated server departs from the documented wire, as Upbit's wire has before.

Upbit changes its wire without notice: the orderbook grew from 15 to 30 rows, trade frames gained
the ``best_*`` fields, older captures carry ``null`` in numeric fields, the SDK types the ticker's
``delisting_date`` as an object, frames of types nobody asked for (``announcement``) arrive on the
same socket. A :class:`Drift` turns such departures on, so a client's tolerance can be tested.
Every field is off by default; ``Drift()`` is the documented wire.

Set it with ``EmulatorConfig(drift=...)``, at run time with ``Emulator.set_drift`` or as a fault
step (``SetDrift``). It applies to frames rendered from then on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ("GARBAGE_KINDS", "UNKNOWN_TYPES", "Drift")

#: The undecodable frames ``garbage_every`` sends, in rotation order: bytes that are not JSON,
#: truncated JSON, a JSON array of numbers, ``{"status":"DOWN"}`` (an unknown status), an object
#: with no known key, and a data frame whose ``type`` (``ty``) is a number.
GARBAGE_KINDS: tuple[str, ...] = (
    "not_json",
    "truncated_json",
    "number_array",
    "unknown_status",
    "no_known_keys",
    "numeric_type",
)

#: The unmodelled data types ``unknown_type_every`` sends, in rotation order.
UNKNOWN_TYPES: tuple[str, ...] = ("announcement", "indicator")


def _codes(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError("no_snapshot_codes must be a collection of codes such as {'KRW-BTC'}")
    return frozenset(value)


def _null_fields(value: Iterable[Iterable[str]]) -> frozenset[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for item in value:
        pair = tuple(item)  # JSON gives lists
        if len(pair) != 2 or not all(isinstance(part, str) and part for part in pair):
            raise ValueError(
                f"null_fields holds (data type, DEFAULT field) pairs such as "
                f"('ticker', 'acc_trade_price_24h'), got {item!r}"
            )
        if pair[1] == "type":
            # Without its type no frame can be classified (nor abbreviated to SIMPLE keys); a
            # frame with a bad type is one of the garbage kinds instead.
            raise ValueError("the 'type' field cannot be nulled; see garbage_every")
        pairs.add((pair[0], pair[1]))
    return frozenset(pairs)


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be >= 1 or None (off), got {value!r}")


#: What ``Drift.everything`` nulls: fields older captures carried as null, and one wildcard.
_EVERYTHING_NULLS = frozenset(
    {
        ("ticker", "acc_trade_price_24h"),
        ("ticker", "acc_trade_volume_24h"),
        ("trade", "change_price"),
        ("orderbook", "total_ask_size"),
        ("*", "candle_acc_trade_price"),
    }
)


@attrs.frozen
class Drift:
    """Departures from the documented wire; see the module docstring. All off by default."""

    #: Every orderbook frame carries exactly this many rows, whatever the request's ``.N``; rows
    #: beyond the simulated book are zero price / zero size, as Upbit pads thin books.
    orderbook_rows: int | None = attrs.field(default=None, validator=_optional_positive)
    #: These codes never get a SNAPSHOT frame (of any type); their REALTIME frames still flow.
    no_snapshot_codes: frozenset[str] = attrs.field(default=frozenset(), converter=_codes)
    #: ``(data type, DEFAULT field)`` pairs sent as JSON null (in SIMPLE format the abbreviated
    #: key is nulled). The data type ``"*"`` means every type; fields of orderbook rows are named
    #: ``"orderbook_units.ask_size"`` (``"assets.balance"`` for myAsset). A field the frame does
    #: not carry stays absent.
    null_fields: frozenset[tuple[str, str]] = attrs.field(
        default=frozenset(), converter=_null_fields
    )
    #: Trade frames without ``best_ask_price``/``best_ask_size``/``best_bid_price``/
    #: ``best_bid_size``: their shape before 2024-11-27.
    legacy_trade: bool = False
    #: Every ticker's ``delisting_date`` is the object ``{"year":2026,"month":12,"day":31}`` (the
    #: shape Upbit's SDK declares) instead of null.
    object_delisting_date: bool = False
    #: Data frames without ``stream_type``/``st``: a client must take them as REALTIME, so a
    #: SNAPSHOT is indistinguishable from one.
    omit_stream_type: bool = False
    #: Every data frame gains keys nobody models (a number and a nested object; orderbook rows
    #: gain one too).
    extra_fields: bool = False
    #: After every N data frames a connection receives, one undecodable frame follows, rotating
    #: through :data:`GARBAGE_KINDS`.
    garbage_every: int | None = attrs.field(default=None, validator=_optional_positive)
    #: After every N data frames a connection receives, one frame of a type it did not subscribe
    #: to and no client models follows, rotating through :data:`UNKNOWN_TYPES`.
    unknown_type_every: int | None = attrs.field(default=None, validator=_optional_positive)

    @property
    def active(self) -> bool:
        """Whether any drift is on (``Drift()`` is not)."""
        return self != _OFF

    @classmethod
    def everything(
        cls,
        *,
        orderbook_rows: int = 40,
        no_snapshot_codes: Iterable[str] = ("KRW-XRP",),
        null_fields: Iterable[tuple[str, str]] = _EVERYTHING_NULLS,
        garbage_every: int = 25,
        unknown_type_every: int = 40,
    ) -> Drift:
        """Every drift on at once. The defaults: 40 orderbook rows (deeper than any request and
        than the simulated book), no SNAPSHOT for KRW-XRP, nulls where older captures had them,
        a garbage frame every 25 data frames and an unknown type every 40."""
        return cls(
            orderbook_rows=orderbook_rows,
            no_snapshot_codes=frozenset(no_snapshot_codes),
            null_fields=frozenset(null_fields),
            legacy_trade=True,
            object_delisting_date=True,
            omit_stream_type=True,
            extra_fields=True,
            garbage_every=garbage_every,
            unknown_type_every=unknown_type_every,
        )

    def as_json(self) -> dict[str, Any]:
        """JSON-native fields (sets as sorted lists); :meth:`from_json` reverses it."""
        return {
            "orderbook_rows": self.orderbook_rows,
            "no_snapshot_codes": sorted(self.no_snapshot_codes),
            "null_fields": [list(pair) for pair in sorted(self.null_fields)],
            "legacy_trade": self.legacy_trade,
            "object_delisting_date": self.object_delisting_date,
            "omit_stream_type": self.omit_stream_type,
            "extra_fields": self.extra_fields,
            "garbage_every": self.garbage_every,
            "unknown_type_every": self.unknown_type_every,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Drift:
        """The drift :meth:`as_json` described (missing fields stay off)."""
        return cls(**data)


_OFF = Drift()
