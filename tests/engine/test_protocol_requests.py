"""Request frames: build_request, build_list_subscriptions, parse_request and TypeRequest rules."""

from __future__ import annotations

import orjson
import pytest

from engine.errors import InvalidSubscriptionError, ProtocolError
from engine.wire.keys import CANDLE_TYPES
from engine.wire.protocol import (
    DATA_TYPES,
    ORDERBOOK_UNITS,
    PING_TEXT,
    MalformedRequestError,
    ParsedRequest,
    TypeRequest,
    build_list_subscriptions,
    build_request,
    parse_request,
)


def test_constants() -> None:
    assert ("ticker", "trade", "orderbook", *CANDLE_TYPES, "myOrder", "myAsset") == DATA_TYPES
    assert ORDERBOOK_UNITS == (1, 5, 15, 30)
    assert PING_TEXT == "PING"


def test_the_spec_example_request_is_built_exactly() -> None:
    # The public example request of docs/UPBIT.md, Request format (compact JSON).
    text = build_request(
        "8d2c6a5e-1f0b-4c7a-9e3d-2b1f0c9a7e11",
        [
            TypeRequest("ticker", ("KRW-BTC", "KRW-ETH")),
            TypeRequest("orderbook", ("KRW-BTC",), units=15, level=10000),
            TypeRequest("trade", ("KRW-XRP",), is_only_realtime=True),
            TypeRequest("candle.1m", ("KRW-BTC",)),
        ],
        format="SIMPLE",
    )
    assert text == (
        '[{"ticket":"8d2c6a5e-1f0b-4c7a-9e3d-2b1f0c9a7e11"},'
        '{"type":"ticker","codes":["KRW-BTC","KRW-ETH"]},'
        '{"type":"orderbook","codes":["KRW-BTC.15"],"level":10000},'
        '{"type":"trade","codes":["KRW-XRP"],"is_only_realtime":true},'
        '{"type":"candle.1m","codes":["KRW-BTC"]},'
        '{"format":"SIMPLE"}]'
    )


def test_the_private_example_request_without_format() -> None:
    text = build_request(
        "priv-1", [TypeRequest("myOrder", ("KRW-BTC",)), TypeRequest("myAsset")], format=None
    )
    assert text == '[{"ticket":"priv-1"},{"type":"myOrder","codes":["KRW-BTC"]},{"type":"myAsset"}]'


def test_default_format_is_written_and_only_true_flags_appear() -> None:
    items = orjson.loads(build_request("t", [TypeRequest("ticker", ("KRW-BTC",))]))
    assert items == [
        {"ticket": "t"},
        {"type": "ticker", "codes": ["KRW-BTC"]},
        {"format": "DEFAULT"},
    ]
    items = orjson.loads(
        build_request("t", [TypeRequest("trade", ("A-B",), is_only_snapshot=True)])
    )
    assert items[1] == {"type": "trade", "codes": ["A-B"], "is_only_snapshot": True}


def test_units_suffix_every_code_and_level_zero_is_sent() -> None:
    request = TypeRequest("orderbook", ("KRW-BTC", "KRW-ETH"), units=5, level=0)
    assert request.to_wire() == {
        "type": "orderbook",
        "codes": ["KRW-BTC.5", "KRW-ETH.5"],
        "level": 0,
    }


def test_empty_my_order_codes_are_left_out() -> None:
    assert TypeRequest("myOrder").to_wire() == {"type": "myOrder"}


def test_codes_given_as_a_list_are_stored_as_a_tuple() -> None:
    request = TypeRequest("ticker", ["KRW-BTC"])  # type: ignore[arg-type]
    assert request.codes == ("KRW-BTC",)
    assert hash(request) == hash(TypeRequest("ticker", ("KRW-BTC",)))


def test_list_subscriptions_frames() -> None:
    assert (
        build_list_subscriptions("0e66c0ac-7e13-43ef-91fb-2a87c2956c49")
        == '[{"ticket":"0e66c0ac-7e13-43ef-91fb-2a87c2956c49"},{"method":"LIST_SUBSCRIPTIONS"}]'
    )
    assert build_list_subscriptions("t", format="SIMPLE") == (
        '[{"ticket":"t"},{"method":"LIST_SUBSCRIPTIONS"},{"format":"SIMPLE"}]'
    )


def _reasons(excinfo: pytest.ExceptionInfo[InvalidSubscriptionError]) -> str:
    return "\n".join(excinfo.value.reasons)


def test_every_problem_of_a_request_is_listed_at_once() -> None:
    with pytest.raises(InvalidSubscriptionError) as excinfo:
        TypeRequest("ticker", units=7, level=10, is_only_snapshot=True, is_only_realtime=True)
    reasons = excinfo.value.reasons
    assert len(reasons) == 4
    text = str(excinfo.value)
    assert "ticker needs at least one code" in text
    assert "units applies to orderbook only" in text
    assert "level applies to orderbook only" in text
    assert "is_only_snapshot and is_only_realtime exclude each other" in text


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"type": "orderbook", "codes": ("KRW-BTC",), "units": 7}, "units 7 is not served"),
        ({"type": "orderbook", "codes": ("KRW-BTC",), "units": True}, "units True is not served"),
        ({"type": "ticker", "codes": ("KRW-BTC",), "level": 1}, "level applies to orderbook only"),
        ({"type": "myAsset", "codes": ("KRW-BTC",)}, "myAsset takes no codes"),
        ({"type": "trade"}, "trade needs at least one code"),
        ({"type": "candle.1m", "codes": ()}, "candle.1m needs at least one code"),
        (
            {
                "type": "trade",
                "codes": ("A-B",),
                "is_only_snapshot": True,
                "is_only_realtime": True,
            },
            "exclude each other",
        ),
        ({"type": "candle.2m", "codes": ("KRW-BTC",)}, "unknown type 'candle.2m'"),
        ({"type": "ticker", "codes": "KRW-BTC"}, "not a string"),
        ({"type": "ticker", "codes": ("KRW-BTC", "KRW-BTC")}, "duplicate codes: KRW-BTC"),
        ({"type": "ticker", "codes": ("KRW-BTC", "")}, "non-empty string"),
        ({"type": "ticker", "codes": ("KRW-BTC", 5)}, "non-empty string"),
        ({"type": "ticker", "codes": 5}, "must be a tuple of strings"),
        ({"type": "orderbook", "codes": ("KRW-BTC.15",)}, "pass 'KRW-BTC' with units=15"),
        ({"type": "orderbook", "codes": ("KRW-BTC",), "level": -1}, "number from 0 up to 2**63"),
        ({"type": "orderbook", "codes": ("KRW-BTC",), "level": float("nan")}, "number from 0"),
        ({"type": "orderbook", "codes": ("KRW-BTC",), "level": "10"}, "number from 0"),
        ({"type": "orderbook", "codes": ("KRW-BTC",), "level": float("inf")}, "number from 0"),
        ({"type": "orderbook", "codes": ("KRW-BTC",), "level": 2**63}, "up to 2**63"),
        ({"type": "myOrder", "is_only_snapshot": True}, "apply to market data, not myOrder"),
        ({"type": "ticker", "codes": ("A-B",), "is_only_realtime": 1}, "must be True or False"),
    ],
)
def test_each_wire_rule(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidSubscriptionError) as excinfo:
        TypeRequest(**kwargs)  # type: ignore[arg-type]
    assert problem in _reasons(excinfo)


def test_valid_edge_requests() -> None:
    TypeRequest("myOrder")  # all markets
    TypeRequest("orderbook", ("KRW-BTC",), units=1, level=0.5)
    TypeRequest("orderbook", ("KRW-BTC.X",), units=30)  # a dotted tail that is no unit
    TypeRequest("ticker", ("krw-btc",))  # letter case is the market catalog's business
    TypeRequest("orderbook", ("KRW-BTC",), level=2**63 - 1)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("", [TypeRequest("myAsset")]), "ticket must be a non-empty string"),
        (("t", []), "at least one TypeRequest"),
        (("t", [{"type": "ticker"}]), "requests[0] is dict"),
    ],
)
def test_build_request_checks_its_arguments(args: tuple[object, ...], problem: str) -> None:
    with pytest.raises(InvalidSubscriptionError) as excinfo:
        build_request(*args)  # type: ignore[arg-type]
    assert problem in _reasons(excinfo)


def test_text_that_json_cannot_carry_is_rejected_when_building() -> None:
    with pytest.raises(InvalidSubscriptionError, match="cannot be written as JSON"):
        build_request("\ud800", [TypeRequest("myAsset")])
    with pytest.raises(InvalidSubscriptionError, match="cannot be written as JSON"):
        build_list_subscriptions("t\udfff")


def test_unknown_format_is_rejected_when_building() -> None:
    with pytest.raises(InvalidSubscriptionError, match="unknown format 'NOPE'"):
        build_request("t", [TypeRequest("myAsset")], format="NOPE")  # type: ignore[arg-type]
    with pytest.raises(InvalidSubscriptionError, match="unknown format"):
        build_list_subscriptions("t", format="simple")  # type: ignore[arg-type]


def test_parse_reads_the_spec_example() -> None:
    text = """[{"ticket":"8d2c6a5e-1f0b-4c7a-9e3d-2b1f0c9a7e11"},
     {"type":"ticker","codes":["KRW-BTC","KRW-ETH"]},
     {"type":"orderbook","codes":["KRW-BTC.15"],"level":10000},
     {"type":"trade","codes":["KRW-XRP"],"is_only_realtime":true},
     {"type":"candle.1m","codes":["KRW-BTC"]},
     {"format":"SIMPLE"}]"""
    assert parse_request(text) == ParsedRequest(
        ticket="8d2c6a5e-1f0b-4c7a-9e3d-2b1f0c9a7e11",
        requests=(
            TypeRequest("ticker", ("KRW-BTC", "KRW-ETH")),
            TypeRequest("orderbook", ("KRW-BTC",), units=15, level=10000),
            TypeRequest("trade", ("KRW-XRP",), is_only_realtime=True),
            TypeRequest("candle.1m", ("KRW-BTC",)),
        ),
        format="SIMPLE",
    )


def test_parse_reads_the_list_subscriptions_example() -> None:
    text = '[{"ticket":"0e66c0ac-7e13-43ef-91fb-2a87c2956c49"},{"method":"LIST_SUBSCRIPTIONS"}]'
    assert parse_request(text) == ParsedRequest(
        ticket="0e66c0ac-7e13-43ef-91fb-2a87c2956c49", method="LIST_SUBSCRIPTIONS"
    )


def test_parse_treats_unserved_depths_as_upbits_default() -> None:
    # Upbit answers ".20" with 30 levels, just as for no suffix (docs/UPBIT.md, Request format).
    parsed = parse_request('[{"ticket":"t"},{"type":"orderbook","codes":["KRW-BTC.20","KRW-ETH"]}]')
    assert parsed.requests == (TypeRequest("orderbook", ("KRW-BTC", "KRW-ETH")),)


def test_parse_keeps_suffixes_on_other_types_and_ignores_unknown_keys() -> None:
    parsed = parse_request(
        '[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC.5"],"isOnlyRealtime":true}]'
    )
    assert parsed.requests == (TypeRequest("ticker", ("KRW-BTC.5",)),)


@pytest.mark.parametrize(
    ("text", "upbit_error", "message"),
    [
        ("hello", "WRONG_FORMAT", "JSON array"),
        ('{"ticket":"t"}', "WRONG_FORMAT", "non-empty JSON array"),
        ("[]", "WRONG_FORMAT", "non-empty JSON array"),
        ('[{"ticket":"t"},3]', "WRONG_FORMAT", "element 1 is not an object"),
        ('[{"ticket":"t"},{"foo":1}]', "WRONG_FORMAT", "not a ticket, type, format or method"),
        ('[{"type":"ticker","codes":["KRW-BTC"]}]', "NO_TICKET", "no ticket"),
        ('[{"ticket":""},{"type":"myAsset"}]', "NO_TICKET", "one string ticket"),
        ('[{"ticket":5},{"type":"myAsset"}]', "NO_TICKET", "one string ticket"),
        ('[{"ticket":"a"},{"ticket":"b"},{"type":"myAsset"}]', "NO_TICKET", "exactly one"),
        ('[{"ticket":"t"},{"codes":["KRW-BTC"]}]', "NO_TYPE", "codes but no type"),
        ('[{"ticket":"t"},{"type":"orderbook"}]', "NO_CODES", "orderbook needs codes"),
        ('[{"ticket":"t"},{"type":"nope","codes":["A"]}]', "INVALID_PARAM", "unsupported type"),
        ('[{"ticket":"t"},{"type":5}]', "INVALID_PARAM", "unsupported type"),
        ('[{"ticket":"t"},{"type":"trade","codes":[]}]', "INVALID_PARAM", "codes is empty"),
        ('[{"ticket":"t"},{"type":"myAsset","codes":[]}]', "WRONG_FORMAT", "myAsset takes no"),
        ('[{"ticket":"t"},{"type":"ticker","codes":"A"}]', "WRONG_FORMAT", "list of strings"),
        ('[{"ticket":"t"},{"type":"ticker","codes":[1]}]', "WRONG_FORMAT", "list of strings"),
        (
            '[{"ticket":"t"},{"type":"ticker","codes":["A"],"is_only_snapshot":1}]',
            "WRONG_FORMAT",
            "true or false",
        ),
        (
            '[{"ticket":"t"},{"type":"orderbook","codes":["A"],"level":"1"}]',
            "WRONG_FORMAT",
            "level",
        ),
        (
            '[{"ticket":"t"},{"type":"ticker","codes":["A"],"level":1}]',
            "INVALID_PARAM",
            "level applies to orderbook only",
        ),
        ('[{"ticket":"t"},{"type":"myAsset"},{"format":"NOPE"}]', "INVALID_PARAM", "format"),
        (
            '[{"ticket":"t"},{"type":"myAsset"},{"format":"SIMPLE"},{"format":"DEFAULT"}]',
            "WRONG_FORMAT",
            "more than one",
        ),
        ('[{"ticket":"t"},{"method":"SUBSCRIBE"}]', "INVALID_PARAM", "unknown method"),
        (
            '[{"ticket":"t"},{"method":"LIST_SUBSCRIPTIONS"},{"type":"myAsset"}]',
            "WRONG_FORMAT",
            "takes no type",
        ),
        ('[{"ticket":"t"},{"format":"SIMPLE"}]', "WRONG_FORMAT", "no type object"),
        (
            '[{"ticket":"t"},{"type":"orderbook","codes":["A.5","B.15"]}]',
            None,
            "mix unit suffixes",
        ),
    ],
)
def test_parse_errors_carry_upbits_error_name(
    text: str, upbit_error: str | None, message: str
) -> None:
    with pytest.raises(MalformedRequestError, match=message) as excinfo:
        parse_request(text)
    assert excinfo.value.upbit_error == upbit_error
    assert isinstance(excinfo.value, ProtocolError)
    if upbit_error is not None:
        assert str(excinfo.value).startswith(upbit_error)


def test_parse_requires_ticket_before_judging_type_objects() -> None:
    # Upbit checks the ticket first; a frame with two faults reports the missing ticket.
    with pytest.raises(MalformedRequestError) as excinfo:
        parse_request('[{"type":"nope"}]')
    assert excinfo.value.upbit_error == "NO_TICKET"
