"""Upbit's WebSocket wire format, sans-IO: request frames out, typed messages in.

Nothing here touches a socket. A client builds the text frame of a subscription with
:func:`build_request` and turns every received frame into models with :func:`decode_frame`; a
server (the emulator) reads requests with :func:`parse_request` and writes frames with
:func:`encode_frame`. The rules are Upbit's, collected in docs/UPBIT.md ("Request format"
to "Errors").

A request is one JSON array: the ticket object, one object per :class:`TypeRequest`, then the
format object. Checks that need the market catalog (is the code listed, upper case, does the pair
support ``level``) belong to :mod:`engine.markets`; :class:`TypeRequest` checks only what the
wire format itself rules out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final, TypeGuard

import attrs
import orjson

from engine.errors import InvalidSubscriptionError, ProtocolError
from engine.wire.decode import (
    FRAME_PROBLEMS,
    PRIVATE_TYPES,
    Decoded,
    DriftCounter,
    DriftSink,
    decode_frame,
)
from engine.wire.encode import FORMATS, LIST_FORMATS, Format, encode_frame, encode_message
from engine.wire.keys import CANDLE_TYPES

__all__ = (
    "DATA_TYPES",
    "FRAME_PROBLEMS",
    "FORMATS",
    "LIST_FORMATS",
    "LIST_SUBSCRIPTIONS",
    "ORDERBOOK_UNITS",
    "PING_TEXT",
    "PRIVATE_TYPES",
    "PUBLIC_TYPES",
    "Decoded",
    "DriftCounter",
    "DriftSink",
    "Format",
    "MalformedRequestError",
    "ParsedRequest",
    "TypeRequest",
    "build_list_subscriptions",
    "build_request",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "parse_request",
)

PUBLIC_TYPES: Final[tuple[str, ...]] = ("ticker", "trade", "orderbook", *CANDLE_TYPES)
"""Market-data types: served on the public endpoint, and they need ``codes``."""
DATA_TYPES: Final[tuple[str, ...]] = (*PUBLIC_TYPES, *PRIVATE_TYPES)
"""Every ``type`` a request may name."""
ORDERBOOK_UNITS: Final[tuple[int, ...]] = (1, 5, 15, 30)
"""Book depths Upbit serves through the ``"CODE.N"`` suffix (since 2025-07-02)."""
PING_TEXT: Final = "PING"
"""The text keepalive message; Upbit then sends ``{"status":"UP"}`` every 10 s."""
LIST_SUBSCRIPTIONS: Final = "LIST_SUBSCRIPTIONS"
"""The only ``method`` Upbit knows."""


def _suffix_unit(code: str) -> tuple[str, int | None]:
    """Split ``"KRW-BTC.15"`` into ``("KRW-BTC", 15)``; a code without digits after a dot stays."""
    base, dot, digits = code.rpartition(".")
    if dot and digits.isascii() and digits.isdigit():
        return base, int(digits)
    return code, None


#: Beyond a 64-bit integer JSON encoders give up; real levels are tick sizes, far below.
_LEVEL_LIMIT: Final = 2**63


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _problems(request: TypeRequest) -> list[str]:
    """Every wire-format rule ``request`` breaks, as sentences saying what to change."""
    problems: list[str] = []
    data_type: object = request.type
    codes: object = request.codes
    is_orderbook = data_type == "orderbook"
    if data_type not in DATA_TYPES:
        problems.append(f"unknown type {data_type!r}: use one of {', '.join(DATA_TYPES)}")
    if isinstance(codes, str):
        problems.append(f"codes must be a sequence of codes such as ({codes!r},), not a string")
    elif isinstance(codes, tuple):
        strings = [code for code in codes if isinstance(code, str) and code]
        if len(strings) != len(codes):
            problems.append("every code must be a non-empty string")
        repeated = sorted(code for code, count in Counter(strings).items() if count > 1)
        if repeated:
            problems.append(f"duplicate codes: {', '.join(repeated)}; list each code once")
        if is_orderbook:
            for code in strings:
                base, unit = _suffix_unit(code)
                if unit is not None:
                    problems.append(
                        f"code {code!r} carries a unit suffix: pass {base!r} with units={unit}"
                    )
        if data_type == "myAsset" and codes:
            problems.append("myAsset takes no codes (Upbit answers WRONG_FORMAT): remove them")
        if data_type in PUBLIC_TYPES and not codes:
            problems.append(f"{data_type} needs at least one code")
    else:
        problems.append(f"codes must be a tuple of strings, not {type(codes).__name__}")
    units: object = request.units
    if units is not None:
        if not is_orderbook:
            problems.append(f"units applies to orderbook only, not {data_type!r}")
        elif type(units) is not int or units not in ORDERBOOK_UNITS:
            problems.append(f"units {units!r} is not served: use one of 1, 5, 15 or 30")
    level: object = request.level
    if level is not None:
        if not is_orderbook:
            problems.append(f"level applies to orderbook only, not {data_type!r}")
        elif not (_is_number(level) and 0 <= level < _LEVEL_LIMIT):
            problems.append(f"level must be a number from 0 up to 2**63, not {level!r}")
    flags: dict[str, object] = {
        "is_only_snapshot": request.is_only_snapshot,
        "is_only_realtime": request.is_only_realtime,
    }
    for name, flag in flags.items():
        if type(flag) is not bool:
            problems.append(f"{name} must be True or False, not {flag!r}")
    if request.is_only_snapshot is True and request.is_only_realtime is True:
        problems.append("is_only_snapshot and is_only_realtime exclude each other: set one")
    if data_type in PRIVATE_TYPES and any(flag is True for flag in flags.values()):
        problems.append(f"is_only_snapshot/is_only_realtime apply to market data, not {data_type}")
    return problems


@attrs.frozen
class TypeRequest:
    """One data type object of a subscription request.

    ``codes`` are pair codes (``"KRW-BTC"``); ``units`` (orderbook only) asks for that many price
    levels and goes on the wire as a ``".N"`` suffix on every code; ``level`` (orderbook only) is
    the price grouping. Construction raises :class:`~engine.errors.InvalidSubscriptionError`
    listing every rule of the wire format the request breaks.
    """

    type: str
    codes: tuple[str, ...] = ()
    units: int | None = None
    level: int | float | None = None
    is_only_snapshot: bool = False
    is_only_realtime: bool = False

    def __attrs_post_init__(self) -> None:
        codes: object = self.codes
        if isinstance(codes, list):
            # Callers naturally pass lists; store the hashable, immutable form.
            object.__setattr__(self, "codes", tuple(codes))
        problems = _problems(self)
        if problems:
            raise InvalidSubscriptionError(problems)

    def to_wire(self) -> dict[str, object]:
        """This object as it appears in the request array."""
        out: dict[str, object] = {"type": self.type}
        if self.codes:
            suffix = "" if self.units is None else f".{self.units}"
            out["codes"] = [code + suffix for code in self.codes]
        if self.level is not None:
            out["level"] = self.level
        if self.is_only_snapshot:
            out["is_only_snapshot"] = True
        if self.is_only_realtime:
            out["is_only_realtime"] = True
        return out


@attrs.frozen
class ParsedRequest:
    """A request frame read back by :func:`parse_request`.

    A subscription has ``requests`` and ``method is None``; a LIST_SUBSCRIPTIONS request has
    ``method == "LIST_SUBSCRIPTIONS"`` and no requests. ``format`` is ``None`` when the frame had
    no format object (Upbit then keeps the connection's format, DEFAULT at first).
    """

    ticket: str
    requests: tuple[TypeRequest, ...] = ()
    format: Format | None = None
    method: str | None = None


class MalformedRequestError(ProtocolError):
    """A request frame that :func:`parse_request` cannot accept.

    ``upbit_error`` is the error name Upbit answers such a request with (``WRONG_FORMAT``,
    ``NO_TICKET``, ``NO_TYPE``, ``NO_CODES`` or ``INVALID_PARAM``), or ``None`` when Upbit would
    serve it but :class:`TypeRequest` cannot express it (mixed unit suffixes in one object).
    """

    def __init__(self, message: str, upbit_error: str | None) -> None:
        self.upbit_error = upbit_error
        super().__init__(message if upbit_error is None else f"{upbit_error}: {message}")


def _check_envelope(ticket: object, format: object) -> list[str]:
    problems: list[str] = []
    if not isinstance(ticket, str) or not ticket:
        problems.append(f"the ticket must be a non-empty string, not {ticket!r}")
    if format is not None and format not in FORMATS:
        problems.append(f"unknown format {format!r}: use one of {', '.join(FORMATS)} or None")
    return problems


def _frame(items: list[dict[str, object]]) -> str:
    try:
        return orjson.dumps(items).decode("utf-8")
    except orjson.JSONEncodeError as exc:  # a lone surrogate in a ticket or code
        raise InvalidSubscriptionError([f"the request cannot be written as JSON: {exc}"]) from None


def build_request(
    ticket: str, requests: Sequence[TypeRequest], *, format: Format | None = "DEFAULT"
) -> str:
    """The text frame subscribing to ``requests``: ticket object, type objects, format object.

    Upbit replaces the connection's whole subscription set with each request, so ``requests``
    must be the complete set. ``format=None`` leaves the format object out (Upbit then keeps
    the connection's current format).
    """
    problems = _check_envelope(ticket, format)
    if not requests:
        problems.append("a request needs at least one TypeRequest")
    problems.extend(
        f"requests[{index}] is {type(item).__name__}, not TypeRequest"
        for index, item in enumerate(requests)
        if not isinstance(item, TypeRequest)
    )
    if problems:
        raise InvalidSubscriptionError(problems)
    items: list[dict[str, object]] = [{"ticket": ticket}]
    items.extend(request.to_wire() for request in requests)
    if format is not None:
        items.append({"format": format})
    return _frame(items)


def build_list_subscriptions(ticket: str, *, format: Format | None = None) -> str:
    """The text frame asking for the connection's current subscriptions (LIST_SUBSCRIPTIONS).

    Leave ``format`` as ``None`` unless you mean it: a format here re-formats every active stream
    on the connection.
    """
    problems = _check_envelope(ticket, format)
    if problems:
        raise InvalidSubscriptionError(problems)
    items: list[dict[str, object]] = [{"ticket": ticket}, {"method": LIST_SUBSCRIPTIONS}]
    if format is not None:
        items.append({"format": format})
    return _frame(items)


_FORMAT_NAMES: Final[dict[object, Format]] = {name: name for name in FORMATS}


def _parse_type_object(item: dict[str, object], position: int) -> TypeRequest:
    where = f"element {position}"
    data_type = item["type"]
    if not isinstance(data_type, str) or data_type not in DATA_TYPES:
        raise MalformedRequestError(f"{where}: unsupported type {data_type!r}", "INVALID_PARAM")
    codes: tuple[str, ...] = ()
    units: int | None = None
    if "codes" in item:
        raw = item["codes"]
        if not isinstance(raw, list) or not all(isinstance(code, str) for code in raw):
            raise MalformedRequestError(f"{where}: codes must be a list of strings", "WRONG_FORMAT")
        if data_type == "myAsset":
            raise MalformedRequestError(f"{where}: myAsset takes no codes", "WRONG_FORMAT")
        if not raw and data_type in PUBLIC_TYPES:
            raise MalformedRequestError(f"{where}: codes is empty", "INVALID_PARAM")
        codes = tuple(raw)
        if data_type == "orderbook" and codes:
            split = [_suffix_unit(code) for code in codes]
            # Upbit serves its default depth for any other N, exactly as for no suffix.
            found = {unit if unit in ORDERBOOK_UNITS else None for _, unit in split}
            if len(found) > 1:
                raise MalformedRequestError(
                    f"{where}: codes mix unit suffixes, which TypeRequest cannot express", None
                )
            codes = tuple(code for code, _ in split)
            (units,) = found
    elif data_type in PUBLIC_TYPES:
        raise MalformedRequestError(f"{where}: {data_type} needs codes", "NO_CODES")
    snapshot_only = item.get("is_only_snapshot", False)
    realtime_only = item.get("is_only_realtime", False)
    level = item.get("level")
    if not isinstance(snapshot_only, bool) or not isinstance(realtime_only, bool):
        raise MalformedRequestError(f"{where}: is_only_* must be true or false", "WRONG_FORMAT")
    if level is not None and not _is_number(level):
        raise MalformedRequestError(f"{where}: level must be a number", "WRONG_FORMAT")
    try:
        return TypeRequest(
            type=data_type,
            codes=codes,
            units=units,
            level=level,
            is_only_snapshot=snapshot_only,
            is_only_realtime=realtime_only,
        )
    except InvalidSubscriptionError as exc:
        raise MalformedRequestError(f"{where}: {'; '.join(exc.reasons)}", "INVALID_PARAM") from None


def parse_request(text: str | bytes) -> ParsedRequest:
    """Read a request frame, the inverse of :func:`build_request` and
    :func:`build_list_subscriptions`.

    Unit suffixes become :attr:`TypeRequest.units`. Unknown keys inside objects are ignored.
    Raises :class:`MalformedRequestError` (a :class:`~engine.errors.ProtocolError`) naming the
    problem and the error Upbit would answer with.
    """
    try:
        items = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        raise MalformedRequestError(
            "a request is a JSON array of objects", "WRONG_FORMAT"
        ) from None
    if not isinstance(items, list) or not items:
        raise MalformedRequestError("a request is a non-empty JSON array", "WRONG_FORMAT")
    tickets: list[object] = []
    formats: list[object] = []
    methods: list[object] = []
    type_objects: list[tuple[int, dict[str, object]]] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedRequestError(f"element {position} is not an object", "WRONG_FORMAT")
        if "ticket" in item:
            tickets.append(item["ticket"])
        elif "format" in item:
            formats.append(item["format"])
        elif "method" in item:
            methods.append(item["method"])
        elif "type" in item:
            type_objects.append((position, item))
        elif "codes" in item:
            raise MalformedRequestError(f"element {position} has codes but no type", "NO_TYPE")
        else:
            raise MalformedRequestError(
                f"element {position} is not a ticket, type, format or method object",
                "WRONG_FORMAT",
            )
    if not tickets:
        raise MalformedRequestError("the request has no ticket object", "NO_TICKET")
    ticket = tickets[0]
    if len(tickets) > 1 or not isinstance(ticket, str) or not ticket:
        raise MalformedRequestError("the request needs exactly one string ticket", "NO_TICKET")
    if len(formats) > 1 or len(methods) > 1:
        raise MalformedRequestError("more than one format or method object", "WRONG_FORMAT")
    format_value: Format | None = None
    if formats:
        format_value = _FORMAT_NAMES.get(formats[0])
        if format_value is None:
            raise MalformedRequestError(f"unknown format {formats[0]!r}", "INVALID_PARAM")
    method = methods[0] if methods else None
    if method is not None:
        if method != LIST_SUBSCRIPTIONS:
            raise MalformedRequestError(f"unknown method {method!r}", "INVALID_PARAM")
        if type_objects:
            raise MalformedRequestError("LIST_SUBSCRIPTIONS takes no type objects", "WRONG_FORMAT")
    elif not type_objects:
        raise MalformedRequestError("the request has no type object", "WRONG_FORMAT")
    requests = tuple(_parse_type_object(item, position) for position, item in type_objects)
    return ParsedRequest(
        ticket=ticket,
        requests=requests,
        format=format_value,
        method=LIST_SUBSCRIPTIONS if method is not None else None,
    )
