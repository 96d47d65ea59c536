"""The emulator's side of a :class:`~engine.testing.drift.Drift` (sans-IO).

The feed renders a message once per (type, units, level) and encodes it once per format; with a
drift on, :meth:`ActiveDrift.reshape` rewrites the rendered DEFAULT-keyed message (once per
render) and :meth:`ActiveDrift.encode` replaces ``encode_data`` (once per format). The extra
frames (garbage, unknown types) are built once per format and cached. With no drift the feed
never gets here: its plain path stays as it was.
"""

from __future__ import annotations

import orjson

from engine.testing.drift import GARBAGE_KINDS, UNKNOWN_TYPES, Drift
from engine.testing.emulator.frames import encode_frame
from engine.testing.emulator.render import Simplifier, is_list, is_simple
from engine.testing.marketdata.pair import MAX_DEPTH
from engine.wire.keys import DEFAULT_TO_SIMPLE

__all__ = ("ActiveDrift",)

_LEGACY_TRADE_DROPS = ("best_ask_price", "best_ask_size", "best_bid_price", "best_bid_size")
_DELISTING_DATE = {"year": 2026, "month": 12, "day": 31}
#: Keys nobody models. The nested object holds what trips strict decoders: a list, a null, an
#: object inside an object.
_EXTRA_FIELDS: dict[str, object] = {
    "new_field_2027": 1,
    "new_object_2027": {"source": "drift", "values": [1, 2.5, None], "nested": {"flag": True}},
}
_EXTRA_ROW_FIELD = "new_row_field_2027"
#: Lists of objects inside a message: (DEFAULT key, SIMPLE key) per data type.
_CONTAINERS = {
    "orderbook": ("orderbook_units", DEFAULT_TO_SIMPLE["orderbook"]["orderbook_units"]),
    "myAsset": ("assets", DEFAULT_TO_SIMPLE["myAsset"]["assets"]),
}
_ZERO_ROW = {"ask_price": 0.0, "bid_price": 0.0, "ask_size": 0.0, "bid_size": 0.0}
_TIMESTAMP_MS = 1_790_000_000_000
_UNKNOWN_BODIES: dict[str, dict[str, object]] = {
    "announcement": {
        "type": "announcement",
        "title": "[Notice] Wallet maintenance",
        "category": "NOTICE",
        "url": "https://upbit.com/service_center/notice",
        "listed_at": "2027-01-01T09:00:00+09:00",
        "timestamp": _TIMESTAMP_MS,
        "stream_type": "REALTIME",
    },
    "indicator": {
        "type": "indicator",
        "code": "KRW-BTC",
        "name": "rsi_14",
        "value": 55.5,
        "timestamp": _TIMESTAMP_MS,
        "stream_type": "REALTIME",
    },
}
# The keys every data type shares, abbreviated as on the documented types.
_COMMON_SIMPLE = {"type": "ty", "code": "cd", "timestamp": "tms", "stream_type": "st"}


def _wrap(body: object, fmt: str) -> bytes:
    return orjson.dumps([body] if is_list(fmt) else body)


def _simple_common(body: dict[str, object], fmt: str) -> dict[str, object]:
    if not is_simple(fmt):
        return body
    return {_COMMON_SIMPLE.get(key, key): value for key, value in body.items()}


class ActiveDrift:
    """A drift in force, prepared for the hot path (lookups by data type, cached frames)."""

    __slots__ = (
        "_frames",
        "_nested_nulls",
        "_nulls_by_type",
        "_top_nulls",
        "counts_data",
        "drift",
        "extra_fields",
        "garbage_every",
        "no_snapshot_codes",
        "omit_stream_type",
        "orderbook_rows",
        "unknown_type_every",
    )

    def __init__(self, drift: Drift) -> None:
        self.drift = drift
        self.orderbook_rows = drift.orderbook_rows
        self.no_snapshot_codes = drift.no_snapshot_codes
        self.extra_fields = drift.extra_fields
        self.omit_stream_type = drift.omit_stream_type
        self.garbage_every = drift.garbage_every
        self.unknown_type_every = drift.unknown_type_every
        #: Whether sessions must count data frames (for the garbage / unknown cadence).
        self.counts_data = drift.garbage_every is not None or drift.unknown_type_every is not None
        top: dict[str, set[str]] = {}
        nested: dict[str, dict[str, set[str]]] = {}
        for data_type, field in drift.null_fields:
            container, dot, inner = field.partition(".")
            if dot:
                nested.setdefault(data_type, {}).setdefault(container, set()).add(inner)
            else:
                top.setdefault(data_type, set()).add(field)
        self._top_nulls = {t: frozenset(fields) for t, fields in top.items()}
        self._nested_nulls = {
            t: {c: frozenset(fields) for c, fields in by.items()} for t, by in nested.items()
        }
        self._nulls_by_type: dict[str, tuple[frozenset[str], dict[str, frozenset[str]]]] = {}
        self._frames: dict[tuple[str, int, str], bytes] = {}

    # -- data frames ----------------------------------------------------------------------------

    def units(self, data_type: str, units: int) -> int:
        """Rows an orderbook frame carries (the request's ``.N`` unless the drift overrides)."""
        if self.orderbook_rows is not None and data_type == "orderbook":
            return self.orderbook_rows
        return units

    @staticmethod
    def render_units(units: int) -> int:
        """What to ask the simulator for: it renders at most its own depth; the rest is padding."""
        return min(units, MAX_DEPTH)

    def _null_fields(self, data_type: str) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
        # (top-level fields, container -> row fields) for one type, wildcards merged; cached,
        # since every render asks.
        cached = self._nulls_by_type.get(data_type)
        if cached is not None:
            return cached
        top = self._top_nulls.get(data_type, frozenset()) | self._top_nulls.get("*", frozenset())
        nested = dict(self._nested_nulls.get("*", {}))
        for container, fields in self._nested_nulls.get(data_type, {}).items():
            nested[container] = nested.get(container, frozenset()) | fields
        cached = self._nulls_by_type[data_type] = (top, nested)
        return cached

    def reshape(self, message: dict[str, object]) -> dict[str, object]:
        """``message`` (rendered with :meth:`render_units` rows) as the drifted server sends it,
        DEFAULT-keyed: a new dict, or ``message`` itself when nothing applies."""
        data_type = message.get("type")
        out = dict(message)
        changed = False
        wanted = self.orderbook_rows
        if data_type == "orderbook" and wanted is not None:
            rows = out.get("orderbook_units")
            if isinstance(rows, list) and len(rows) < wanted:
                out["orderbook_units"] = rows + [dict(_ZERO_ROW) for _ in range(wanted - len(rows))]
                changed = True
        elif data_type == "trade" and self.drift.legacy_trade:
            for key in _LEGACY_TRADE_DROPS:
                if key in out:
                    del out[key]
                    changed = True
        elif data_type == "ticker" and self.drift.object_delisting_date:
            out["delisting_date"] = dict(_DELISTING_DATE)
            changed = True
        if self.omit_stream_type and "stream_type" in out:
            del out["stream_type"]
            changed = True
        if isinstance(data_type, str) and (self._top_nulls or self._nested_nulls):
            top, nested = self._null_fields(data_type)
            for field in top:
                if field in out:
                    out[field] = None
                    changed = True
            for container, fields in nested.items():
                rows = out.get(container)
                if isinstance(rows, list):
                    out[container] = [
                        {key: None if key in fields else value for key, value in row.items()}
                        for row in rows
                    ]
                    changed = True
        return out if changed else message

    def encode(self, message: dict[str, object], fmt: str, simplify: Simplifier) -> bytes:
        """Like ``encode_data``, for a reshaped message (nulled containers, extra keys)."""
        data_type = message.get("type")
        container = _CONTAINERS.get(data_type) if isinstance(data_type, str) else None
        body: dict[str, object]
        if is_simple(fmt):
            nulled = container is not None and message.get(container[0], []) is None
            # The abbreviation reads the rows of a container: give it none, null the key after.
            body = simplify({**message, container[0]: []} if nulled and container else message)
            if nulled and container:
                body[container[1]] = None
            rows_key = container[1] if container else None
        else:
            body = message
            rows_key = container[0] if container else None
        if self.extra_fields:
            body = {**body, **_EXTRA_FIELDS}
            rows = body.get(rows_key) if rows_key is not None else None
            if isinstance(rows, list) and rows_key is not None:
                body[rows_key] = [{**row, _EXTRA_ROW_FIELD: 0} for row in rows]
        return encode_frame(_wrap(body, fmt))

    # -- extra frames ---------------------------------------------------------------------------

    def garbage_frame(self, index: int, fmt: str) -> bytes:
        """The ``index``-th garbage frame (rotating through ``GARBAGE_KINDS``) for ``fmt``."""
        kind = GARBAGE_KINDS[index % len(GARBAGE_KINDS)]
        key = ("garbage", index % len(GARBAGE_KINDS), fmt)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = encode_frame(_garbage_payload(kind, fmt))
        return frame

    def unknown_frame(self, index: int, fmt: str) -> bytes:
        """The ``index``-th unknown-type frame (rotating through ``UNKNOWN_TYPES``)."""
        position = index % len(UNKNOWN_TYPES)
        key = ("unknown", position, fmt)
        frame = self._frames.get(key)
        if frame is None:
            body = dict(_UNKNOWN_BODIES[UNKNOWN_TYPES[position]])
            if self.omit_stream_type:
                del body["stream_type"]
            frame = self._frames[key] = encode_frame(_wrap(_simple_common(body, fmt), fmt))
        return frame


def _garbage_payload(kind: str, fmt: str) -> bytes:
    if kind == "not_json":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == "truncated_json":
        body = {"type": "ticker", "code": "KRW-BTC", "trade_price": 1.0, "stream_type": "REALTIME"}
        whole = _wrap(_simple_common(body, fmt), fmt)
        return whole[: len(whole) // 2]
    if kind == "number_array":
        return b"[1,2,3]"
    if kind == "unknown_status":
        return b'{"status":"DOWN"}'
    if kind == "no_known_keys":
        return _wrap({"zq_unknown": 1, "zq_nested": {"zq_list": [1, 2]}}, fmt)
    assert kind == "numeric_type", kind
    body = {"type": 7, "code": "KRW-BTC", "stream_type": "REALTIME"}
    return _wrap(_simple_common(body, fmt), fmt)
