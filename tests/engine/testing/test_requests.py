"""Server-side request parsing: Upbit's error names for each trigger (docs/UPBIT.md, Errors)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.testing import Quirks
from engine.testing.emulator.requests import (
    DataTypeRequest,
    Ignored,
    KeepAlive,
    ListSubscriptions,
    RequestError,
    Subscribe,
    parse_request,
)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("hello", "WRONG_FORMAT"),
        ('{"ticket":"t"}', "WRONG_FORMAT"),
        ('[{"ticket":"t"}, "ticker"]', "WRONG_FORMAT"),
        ("[]", "NO_TICKET"),
        ('[{"type":"ticker","codes":["KRW-BTC"]}]', "NO_TICKET"),
        ('[{"ticket":""},{"type":"ticker","codes":["KRW-BTC"]}]', "NO_TICKET"),
        ('[{"ticket":7},{"type":"ticker","codes":["KRW-BTC"]}]', "NO_TICKET"),
        ('[{"ticket":"t"},{"codes":["KRW-BTC"]}]', "NO_TYPE"),
        ('[{"ticket":"t"},{"type":"orderbook"}]', "NO_CODES"),
        ('[{"ticket":"t"},{"type":"nope","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
        ('[{"ticket":"t"},{"type":"candle.2m","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
        ('[{"ticket":"t"},{"type":"ticker","codes":[]}]', "INVALID_PARAM"),
        ('[{"ticket":"t"},{"type":"ticker","codes":"KRW-BTC"}]', "INVALID_PARAM"),
        ('[{"ticket":"t"},{"type":"orderbook","codes":["KRW-BTC"],"level":"1"}]', "INVALID_PARAM"),
        (
            '[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC"],"is_only_snapshot":1}]',
            "INVALID_PARAM",
        ),
        ('[{"ticket":"t"},{"method":"UNSUBSCRIBE"}]', "INVALID_PARAM"),
        ('[{"ticket":"t"},{"type":"myOrder"}]', "INVALID_AUTH"),
        ('[{"ticket":"t"},{"format":"SIMPLE"}]', "WRONG_FORMAT"),
    ],
)
def test_public_error_triggers(text: str, name: str) -> None:
    parsed = parse_request(text, endpoint="public")
    assert isinstance(parsed, RequestError)
    assert parsed.name == name
    assert parsed.message


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('[{"ticket":"t"},{"type":"myAsset","codes":["KRW-BTC"]}]', "WRONG_FORMAT"),
        ('[{"ticket":"t"},{"type":"myAsset","codes":[]}]', "WRONG_FORMAT"),
        ('[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
    ],
)
def test_private_error_triggers(text: str, name: str) -> None:
    parsed = parse_request(text, endpoint="private")
    assert isinstance(parsed, RequestError)
    assert parsed.name == name


def test_unknown_type_message_names_the_type() -> None:
    parsed = parse_request('[{"ticket":"t"},{"type":"nope","codes":["KRW-BTC"]}]')
    assert parsed == RequestError("INVALID_PARAM", "nope 은 지원하지 않는 타입입니다.")


def test_text_ping_is_a_keepalive() -> None:
    assert parse_request("PING") == KeepAlive()
    assert isinstance(parse_request("ping"), RequestError)


def test_full_request_is_parsed_in_order() -> None:
    parsed = parse_request(
        _json(
            [
                {"ticket": "abc"},
                {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
                {"type": "orderbook", "codes": ["KRW-BTC.15"], "level": 10000},
                {"type": "trade", "codes": ["KRW-XRP"], "is_only_realtime": True},
                {"format": "SIMPLE"},
            ]
        )
    )
    assert parsed == Subscribe(
        "abc",
        (
            DataTypeRequest("ticker", ("KRW-BTC", "KRW-ETH")),
            DataTypeRequest("orderbook", ("KRW-BTC.15",), 10000.0),
            DataTypeRequest("trade", ("KRW-XRP",), only_realtime=True),
        ),
        "SIMPLE",
        True,
    )


def test_list_subscriptions_with_format() -> None:
    parsed = parse_request('[{"ticket":"l"},{"method":"LIST_SUBSCRIPTIONS"},{"format":"SIMPLE"}]')
    assert parsed == ListSubscriptions("l", "SIMPLE", True)


def test_ticket_may_follow_the_method_unless_configured_otherwise() -> None:
    text = '[{"method":"LIST_SUBSCRIPTIONS"},{"ticket":"late"}]'
    assert parse_request(text) == ListSubscriptions("late", None, False)
    strict = parse_request(text, quirks=Quirks(ticket_anywhere=False))
    assert isinstance(strict, RequestError)
    assert strict.name == "NO_TICKET"


def test_camel_case_flags_are_configurable() -> None:
    text = '[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC"],"isOnlySnapshot":true}]'
    accepted = parse_request(text)
    assert isinstance(accepted, Subscribe)
    assert accepted.items[0].only_snapshot
    ignored = parse_request(text, quirks=Quirks(camel_case_flags=False))
    assert isinstance(ignored, Subscribe)
    assert not ignored.items[0].only_snapshot


def test_both_flags_can_be_an_error() -> None:
    text = (
        '[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC"],'
        '"is_only_snapshot":true,"is_only_realtime":true}]'
    )
    assert isinstance(parse_request(text), Subscribe)
    error = parse_request(text, quirks=Quirks(both_flags="error"))
    assert isinstance(error, RequestError)
    assert error.name == "INVALID_PARAM"


def test_unknown_format_variants() -> None:
    text = '[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC"]},{"format":"NOPE"}]'
    served_default = parse_request(text)
    assert isinstance(served_default, Subscribe)
    assert (served_default.format, served_default.format_given) == ("DEFAULT", True)
    kept = parse_request(text, quirks=Quirks(unknown_format="keep"))
    assert isinstance(kept, Subscribe)
    assert (kept.format, kept.format_given) == (None, True)
    error = parse_request(text, quirks=Quirks(unknown_format="error"))
    assert isinstance(error, RequestError)
    assert error.name == "INVALID_PARAM"


def test_empty_codes_and_empty_requests_are_configurable() -> None:
    empty_codes = '[{"ticket":"t"},{"type":"ticker","codes":[]}]'
    accepted = parse_request(empty_codes, quirks=Quirks(empty_codes="accept"))
    assert accepted == Subscribe("t", (DataTypeRequest("ticker", ()),), None, False)
    ticket_only = '[{"ticket":"t"},{"format":"DEFAULT"}]'
    assert parse_request(ticket_only, quirks=Quirks(no_data_types="clear")) == Subscribe(
        "t", (), "DEFAULT", True
    )
    assert parse_request(ticket_only, quirks=Quirks(no_data_types="ignore")) == Ignored("t")


def test_private_types_keep_codes_and_ignore_flags() -> None:
    parsed = parse_request(
        '[{"ticket":"p"},{"type":"myOrder"},{"type":"myOrder","codes":[]},{"type":"myAsset"},'
        '{"type":"myOrder","codes":["KRW-BTC"],"is_only_snapshot":true}]',
        endpoint="private",
    )
    assert parsed == Subscribe(
        "p",
        (
            DataTypeRequest("myOrder", None),
            DataTypeRequest("myOrder", ()),
            DataTypeRequest("myAsset", None),
            DataTypeRequest("myOrder", ("KRW-BTC",)),
        ),
        None,
        False,
    )


@given(st.text(max_size=40))
def test_any_text_gets_a_verdict_never_an_exception(text: str) -> None:
    parsed = parse_request(text)
    assert isinstance(parsed, Subscribe | ListSubscriptions | KeepAlive | Ignored | RequestError)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_any_json_gets_a_verdict_never_an_exception(document: object) -> None:
    parsed = parse_request(_json(document), endpoint="public")
    if isinstance(parsed, Subscribe):
        assert parsed.items, "a subscription without data types is an error by default"
