"""Server-side parsing of client requests, with Upbit's error names (sans-IO).

Independent of ``engine/wire/protocol.py`` on purpose: this is the exchange's view, and it exists to
catch client bugs. The triggers follow docs/UPBIT.md ("Errors", and item 4 of "What the emulator
reproduces"); behaviours the sources leave open are chosen by
:class:`~engine.testing.config.Quirks`.
"""

from __future__ import annotations

from typing import Literal

import attrs
import orjson

from engine.testing.config import Quirks
from engine.wire.keys import CANDLE_TYPES

__all__ = (
    "ERROR_MESSAGES",
    "FORMATS",
    "PRIVATE_TYPES",
    "PUBLIC_TYPES",
    "DataTypeRequest",
    "Endpoint",
    "Ignored",
    "KeepAlive",
    "ListSubscriptions",
    "ParsedRequest",
    "RequestError",
    "Subscribe",
    "parse_request",
)

Endpoint = Literal["public", "private"]

PUBLIC_TYPES: frozenset[str] = frozenset({"ticker", "trade", "orderbook", *CANDLE_TYPES})
PRIVATE_TYPES: frozenset[str] = frozenset({"myOrder", "myAsset", "announcement"})
FORMATS: frozenset[str] = frozenset({"DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST"})

#: Messages as Upbit words them where documented or observed; the rest in the same register.
ERROR_MESSAGES: dict[str, str] = {
    "WRONG_FORMAT": "Format 이 맞지 않습니다.",
    "NO_TICKET": "티켓이 존재하지 않거나, 유효하지 않습니다.",
    "NO_TYPE": "타입이 존재하지 않습니다.",
    "NO_CODES": "코드가 존재하지 않습니다.",
    "INVALID_PARAM": "지원하지 않는 요청입니다.",
    "INVALID_AUTH": "인증 정보가 올바르지 않습니다.",
    "Too Many Requests": "요청 수 제한을 초과했습니다.",
    "I'm a teapot": "요청 수 제한 초과로 일시적으로 차단되었습니다.",
}


@attrs.frozen
class DataTypeRequest:
    """One data-type object of a request, validated."""

    type: str
    #: As sent (suffixes and case kept); None when the object had no ``codes``.
    codes: tuple[str, ...] | None
    #: The ``level`` sent, or None when absent.
    level: float | None = None
    only_snapshot: bool = False
    only_realtime: bool = False


@attrs.frozen
class Subscribe:
    """A subscription request: it replaces the connection's whole set."""

    ticket: str
    items: tuple[DataTypeRequest, ...]
    #: The format named in the request (None when absent or when an unknown one is ignored).
    format: str | None
    #: Whether the request named a format at all (an ignored unknown one counts).
    format_given: bool = False


@attrs.frozen
class ListSubscriptions:
    """``[{"ticket":..},{"method":"LIST_SUBSCRIPTIONS"}]``."""

    ticket: str
    format: str | None
    format_given: bool = False


@attrs.frozen
class KeepAlive:
    """The text message ``PING``."""


@attrs.frozen
class Ignored:
    """A request the server accepts and does nothing with (``Quirks.no_data_types='ignore'``)."""

    ticket: str


@attrs.frozen
class RequestError:
    """The error frame the server answers with (the connection then closes)."""

    name: str
    message: str

    @classmethod
    def of(cls, name: str, message: str | None = None) -> RequestError:
        return cls(name, message or ERROR_MESSAGES[name])


ParsedRequest = Subscribe | ListSubscriptions | KeepAlive | Ignored | RequestError


class _Reject(Exception):
    def __init__(self, error: RequestError) -> None:
        self.error = error


def _fail(name: str, message: str | None = None) -> _Reject:
    return _Reject(RequestError.of(name, message))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_request(
    text: str, *, endpoint: Endpoint = "public", quirks: Quirks | None = None
) -> ParsedRequest:
    """Classify and validate one client message."""
    if text == "PING":
        return KeepAlive()
    try:
        return _parse(text, endpoint, quirks or Quirks())
    except _Reject as reject:
        return reject.error


def _parse(text: str, endpoint: Endpoint, quirks: Quirks) -> ParsedRequest:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _fail("WRONG_FORMAT") from None
    if not isinstance(document, list) or not all(isinstance(item, dict) for item in document):
        raise _fail("WRONG_FORMAT")
    ticket = _ticket(document, quirks)
    fmt, fmt_given = _format(document, quirks)
    methods = [item for item in document if "method" in item and "ticket" not in item]
    if methods:
        method = methods[0]["method"]
        if method != "LIST_SUBSCRIPTIONS":
            raise _fail("INVALID_PARAM", f"{method} 은 지원하지 않는 메소드입니다.")
        return ListSubscriptions(ticket, fmt, fmt_given)
    items = tuple(
        _data_type(item, endpoint, quirks)
        for item in document
        if not ({"ticket", "format", "method"} & item.keys())
    )
    if not items:
        if quirks.no_data_types == "error":
            raise _fail("WRONG_FORMAT")
        if quirks.no_data_types == "ignore":
            return Ignored(ticket)
    return Subscribe(ticket, items, fmt, fmt_given)


def _ticket(document: list[dict[str, object]], quirks: Quirks) -> str:
    candidates = document if quirks.ticket_anywhere else document[:1]
    for item in candidates:
        if "ticket" in item:
            ticket = item["ticket"]
            if not isinstance(ticket, str) or not ticket:
                raise _fail("NO_TICKET")
            return ticket
    raise _fail("NO_TICKET")


def _format(document: list[dict[str, object]], quirks: Quirks) -> tuple[str | None, bool]:
    found: str | None = None
    given = False
    for item in document:
        if "format" in item and "ticket" not in item:
            given = True
            value = item["format"]
            if isinstance(value, str) and value in FORMATS:
                found = value
            elif quirks.unknown_format == "error":
                raise _fail("INVALID_PARAM", f"{value} 은 지원하지 않는 포맷입니다.")
            elif quirks.unknown_format == "default":
                found = "DEFAULT"
            else:
                found = None
    return found, given


def _flag(item: dict[str, object], snake: str, camel: str, quirks: Quirks) -> bool:
    value = item.get(snake)
    if value is None and quirks.camel_case_flags:
        value = item.get(camel)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _fail("INVALID_PARAM", f"{snake} 은 boolean 이어야 합니다.")
    return value


def _data_type(item: dict[str, object], endpoint: Endpoint, quirks: Quirks) -> DataTypeRequest:
    if "type" not in item:
        raise _fail("NO_TYPE")
    data_type = item["type"]
    if not isinstance(data_type, str) or data_type not in PUBLIC_TYPES | PRIVATE_TYPES:
        raise _fail("INVALID_PARAM", f"{data_type} 은 지원하지 않는 타입입니다.")
    if data_type in PRIVATE_TYPES and endpoint == "public":
        # The documented remedy for INVALID_AUTH is "connect to the right endpoint with a token".
        raise _fail("INVALID_AUTH")
    if data_type in PUBLIC_TYPES and endpoint == "private":
        raise _fail("INVALID_PARAM", f"{data_type} 은 지원하지 않는 타입입니다.")
    codes = _codes(item, data_type, quirks)
    level_value = item.get("level")
    level: float | None = None
    if level_value is not None:
        if not _is_number(level_value):
            raise _fail("INVALID_PARAM", "level 은 숫자여야 합니다.")
        assert isinstance(level_value, int | float)
        level = float(level_value)
    if data_type in PRIVATE_TYPES:
        # The is_only_* flags apply to public types only.
        return DataTypeRequest(data_type, codes, level)
    only_snapshot = _flag(item, "is_only_snapshot", "isOnlySnapshot", quirks)
    only_realtime = _flag(item, "is_only_realtime", "isOnlyRealtime", quirks)
    if only_snapshot and only_realtime and quirks.both_flags == "error":
        raise _fail("INVALID_PARAM", "is_only_snapshot 과 is_only_realtime 을 함께 쓸 수 없습니다.")
    return DataTypeRequest(data_type, codes, level, only_snapshot, only_realtime)


def _codes(item: dict[str, object], data_type: str, quirks: Quirks) -> tuple[str, ...] | None:
    if data_type == "myAsset":
        if "codes" in item:
            raise _fail("WRONG_FORMAT")
        return None
    raw = item.get("codes")
    if raw is None:
        if data_type in PUBLIC_TYPES:
            raise _fail("NO_CODES")
        return None
    if not isinstance(raw, list) or not all(isinstance(code, str) for code in raw):
        raise _fail("INVALID_PARAM", "codes 는 문자열 목록이어야 합니다.")
    if not raw and data_type in PUBLIC_TYPES and quirks.empty_codes == "error":
        raise _fail("INVALID_PARAM", "codes 가 비어 있습니다.")
    return tuple(raw)
