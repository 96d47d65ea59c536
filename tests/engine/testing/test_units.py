"""Sans-IO pieces of the emulator: framing, limits, auth, subscription sets, rendering, REST."""

from __future__ import annotations

import jwt
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.testing import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Limits, Quirks, make_jwt
from engine.testing.emulator.auth import NonceLedger, check_bearer
from engine.testing.emulator.frames import (
    OPCODE_BINARY,
    OPCODE_PING,
    OPCODE_TEXT,
    ClientFrameScanner,
    encode_frame,
    frame_payload,
)
from engine.testing.emulator.limits import ConnectGuard, MessageGuard, SlidingWindow
from engine.testing.emulator.render import encode_data, list_subscriptions_frame
from engine.testing.emulator.requests import Subscribe, parse_request
from engine.testing.emulator.rest import answer_rest, decimal_text
from engine.testing.emulator.subscriptions import StreamKey, build_subscription, split_code
from engine.testing.introspection import SubscriptionEntry
from engine.testing.marketdata import default_catalog, to_simple

KEYS = {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}
ALGORITHMS = ("HS512", "HS256")


# -- framing --------------------------------------------------------------------------------------


def _client_frame(opcode: int, payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 0x10000:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + mask + masked


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_encode_frame_lengths_round_trip(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = encode_frame(payload)
    assert frame[0] == 0x80 | OPCODE_BINARY
    assert frame[1] & 0x80 == 0, "server frames are never masked"
    assert frame_payload(frame) == payload


@given(
    st.lists(
        st.tuples(
            st.sampled_from([OPCODE_TEXT, OPCODE_BINARY, OPCODE_PING]), st.binary(max_size=300)
        ),
        max_size=8,
    ),
    st.integers(1, 50),
)
def test_scanner_finds_every_frame_in_any_chunking(
    frames: list[tuple[int, bytes]], chunk: int
) -> None:
    data = b"".join(_client_frame(opcode, payload) for opcode, payload in frames)
    scanner = ClientFrameScanner()
    seen: list[int] = []
    for start in range(0, len(data), chunk):
        seen += scanner.feed(data[start : start + chunk])
    assert seen == [opcode for opcode, _ in frames]


# -- limits ---------------------------------------------------------------------------------------


def test_sliding_window_is_exact() -> None:
    window = SlidingWindow(5, 1.0)
    for i in range(5):
        assert window.allows(0.1 * i)
        window.record(0.1 * i)
    assert not window.allows(0.99)
    assert window.retry_after(0.5) == pytest.approx(0.5)
    assert window.allows(1.0)  # the first event (t=0) has left the window


def test_message_guard_second_and_minute_windows() -> None:
    guard = MessageGuard(Limits())
    assert all(guard.admit(0.0).allowed for _ in range(5))
    assert guard.admit(0.5).status == 429
    # 4 per second for 25 s is 100 messages: the 101st inside the minute is refused.
    guard = MessageGuard(Limits(block_after=1000))
    accepted = sum(guard.admit(0.25 * i).allowed for i in range(100))
    assert accepted == 100
    verdict = guard.admit(25.0)
    assert verdict.status == 429
    assert verdict.retry_after == pytest.approx(35.0)


def test_connect_guard_escalates_to_growing_blocks() -> None:
    limits = Limits(block_after=3, block_duration=10.0)
    guard = ConnectGuard(limits)
    assert [guard.admit("ip", 0.0).status for _ in range(5)] == [0] * 5
    assert [guard.admit("ip", 0.1).status for _ in range(2)] == [429, 429]
    blocked = guard.admit("ip", 0.2)
    assert (blocked.status, blocked.retry_after) == (418, 10.0)
    assert guard.admit("ip", 5.0).status == 418
    assert guard.admit("other-ip", 5.0).allowed, "limits are per key"
    assert guard.admit("ip", 10.3).allowed
    for _ in range(4):
        guard.admit("ip", 10.4)
    guard.admit("ip", 10.5)
    guard.admit("ip", 10.5)
    second = guard.admit("ip", 10.6)
    assert (second.status, second.retry_after) == (418, 20.0), "a repeat offence doubles"


def test_origin_connects_are_one_per_ten_seconds() -> None:
    guard = ConnectGuard(Limits())
    assert guard.admit("ip", 0.0, origin=True).allowed
    refused = guard.admit("ip", 1.0, origin=True)
    assert refused.status == 429
    assert refused.retry_after == pytest.approx(9.0)
    assert guard.admit("ip", 1.0).allowed, "without Origin only the 5/s limit applies"


# -- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS512", "HS256"])
def test_valid_tokens_authenticate(algorithm: str) -> None:
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, algorithm=algorithm)
    result = check_bearer(f"Bearer {token}", KEYS, algorithms=ALGORITHMS)
    assert result.ok
    assert result.access_key == DEFAULT_ACCESS_KEY


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "no Authorization header"),
        ("Basic abc", "Bearer"),
        ("Bearer not-a-jwt", "not a JWT"),
        (
            "Bearer " + make_jwt(DEFAULT_ACCESS_KEY, "wrong-secret-" + "x" * 60),
            "token rejected",
        ),
        ("Bearer " + make_jwt("someone-else", DEFAULT_SECRET_KEY), "unknown access_key"),
        (
            "Bearer " + make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, algorithm="HS384"),
            "not accepted",
        ),
        (
            "Bearer "
            + jwt.encode({"access_key": DEFAULT_ACCESS_KEY}, DEFAULT_SECRET_KEY, algorithm="HS512"),
            "nonce",
        ),
    ],
)
def test_bad_tokens_are_rejected_with_a_reason(header: str | None, reason: str) -> None:
    result = check_bearer(header, KEYS, algorithms=ALGORITHMS)
    assert not result.ok
    assert result.error is not None
    assert reason in result.error


def test_hs256_can_be_refused_and_nonces_can_be_single_use() -> None:
    token = make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, algorithm="HS256", nonce="n1")
    assert not check_bearer(f"Bearer {token}", KEYS, algorithms=("HS512",)).ok
    ledger = NonceLedger()
    assert check_bearer(f"Bearer {token}", KEYS, algorithms=ALGORITHMS, nonces=ledger).ok
    again = check_bearer(f"Bearer {token}", KEYS, algorithms=ALGORITHMS, nonces=ledger)
    assert again.error == "nonce already used"


# -- subscription sets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("KRW-BTC", ("KRW-BTC", 30)),
        ("KRW-BTC.1", ("KRW-BTC", 1)),
        ("KRW-BTC.5", ("KRW-BTC", 5)),
        ("KRW-BTC.15", ("KRW-BTC", 15)),
        ("KRW-BTC.30", ("KRW-BTC", 30)),
        ("KRW-BTC.20", ("KRW-BTC", 30)),
        ("KRW-BTC.2", ("KRW-BTC", 30)),
        ("KRW-BTC.x", ("KRW-BTC.x", 30)),
    ],
)
def test_orderbook_unit_suffixes(raw: str, expected: tuple[str, int]) -> None:
    assert split_code("orderbook", raw) == expected


def test_suffix_means_nothing_outside_orderbook() -> None:
    assert split_code("ticker", "KRW-BTC.5") == ("KRW-BTC.5", 30)


def _subscribe(text: str, endpoint: str = "public") -> Subscribe:
    parsed = parse_request(text, endpoint="private" if endpoint == "private" else "public")
    assert isinstance(parsed, Subscribe)
    return parsed


def test_build_subscription_dedupes_and_splits_snapshot_from_realtime() -> None:
    request = _subscribe(
        '[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC","KRW-BTC","KRW-ETH"]},'
        '{"type":"ticker","codes":["KRW-XRP"],"is_only_snapshot":true},'
        '{"type":"trade","codes":["KRW-BTC"],"is_only_realtime":true},'
        '{"type":"orderbook","codes":["KRW-BTC.5"],"level":10000}]'
    )
    subscription, snapshots = build_subscription(request, Quirks())
    assert snapshots == (
        StreamKey("ticker", "KRW-BTC"),
        StreamKey("ticker", "KRW-ETH"),
        StreamKey("ticker", "KRW-XRP"),
        StreamKey("orderbook", "KRW-BTC", 5, 10000.0),
    )
    assert subscription.realtime == (
        StreamKey("ticker", "KRW-BTC"),
        StreamKey("ticker", "KRW-ETH"),
        StreamKey("trade", "KRW-BTC"),
        StreamKey("orderbook", "KRW-BTC", 5, 10000.0),
    )
    assert subscription.listing == (
        SubscriptionEntry("ticker", ("KRW-BTC", "KRW-BTC", "KRW-ETH")),
        SubscriptionEntry("trade", ("KRW-BTC",)),
        SubscriptionEntry("orderbook", ("KRW-BTC.5",), 10000.0),
    )


def test_both_flags_follow_the_quirk() -> None:
    request = _subscribe(
        '[{"ticket":"t"},{"type":"ticker","codes":["KRW-BTC"],'
        '"is_only_snapshot":true,"is_only_realtime":true}]'
    )
    for variant, expected in [
        ("snapshot", (1, 0)),
        ("realtime", (0, 1)),
        ("nothing", (0, 0)),
    ]:
        subscription, snapshots = build_subscription(request, Quirks(both_flags=variant))  # type: ignore[arg-type]
        assert (len(snapshots), len(subscription.realtime)) == expected, variant


def test_private_subscription_set() -> None:
    request = _subscribe(
        '[{"ticket":"p"},{"type":"myOrder","codes":["KRW-BTC"]},{"type":"myAsset"}]', "private"
    )
    subscription, snapshots = build_subscription(request, Quirks())
    assert snapshots == ()
    assert subscription.wants_my_order("KRW-BTC")
    assert not subscription.wants_my_order("KRW-ETH")
    assert subscription.my_asset
    every = _subscribe('[{"ticket":"p"},{"type":"myOrder","codes":[]}]', "private")
    all_markets, _ = build_subscription(every, Quirks())
    assert all_markets.wants_my_order("KRW-ETH")
    assert all_markets.listing == (SubscriptionEntry("myOrder"),)


def test_list_can_strip_suffixes() -> None:
    request = _subscribe('[{"ticket":"t"},{"type":"orderbook","codes":["KRW-BTC.5"]}]')
    subscription, _ = build_subscription(request, Quirks(list_keeps_suffix=False))
    assert subscription.listing == (SubscriptionEntry("orderbook", ("KRW-BTC",), 0.0),)


# -- rendering ------------------------------------------------------------------------------------

_TRADE = {
    "type": "trade",
    "code": "KRW-BTC",
    "trade_price": 1.0,
    "stream_type": "REALTIME",
}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("DEFAULT", _TRADE),
        ("SIMPLE", {"ty": "trade", "cd": "KRW-BTC", "tp": 1.0, "st": "REALTIME"}),
        ("JSON_LIST", [_TRADE]),
        ("SIMPLE_LIST", [{"ty": "trade", "cd": "KRW-BTC", "tp": 1.0, "st": "REALTIME"}]),
    ],
)
def test_encode_data_per_format(fmt: str, expected: object) -> None:
    frame = encode_data(dict(_TRADE), fmt, to_simple)
    assert orjson.loads(frame_payload(frame)) == expected


def test_list_subscriptions_reply_keys() -> None:
    entries = (SubscriptionEntry("orderbook", ("KRW-BTC",), 0.0), SubscriptionEntry("myAsset"))
    default = orjson.loads(frame_payload(list_subscriptions_frame(entries, "tk", "DEFAULT")))
    assert default == {
        "method": "LIST_SUBSCRIPTIONS",
        "result": [{"type": "orderbook", "codes": ["KRW-BTC"], "level": 0}, {"type": "myAsset"}],
        "ticket": "tk",
    }
    simple = orjson.loads(frame_payload(list_subscriptions_frame(entries, "tk", "SIMPLE_LIST")))
    assert simple == [
        {
            "mthd": "LIST_SUBSCRIPTIONS",
            "rslt": [{"ty": "orderbook", "cds": ["KRW-BTC"], "lv": 0}, {"ty": "myAsset"}],
            "tckt": "tk",
        }
    ]


# -- REST -----------------------------------------------------------------------------------------

CATALOG = default_catalog(0)
BY_MARKET = {listing.market: listing for listing in CATALOG}


@pytest.mark.parametrize(
    ("value", "text"),
    [(1000.0, "1000"), (0.001, "0.001"), (1e-08, "0.00000001"), (0.0, "0"), (12.5, "12.5")],
)
def test_decimal_text(value: float, text: str) -> None:
    assert decimal_text(value) == text


def test_market_all_with_and_without_details() -> None:
    plain = answer_rest("GET", "/v1/market/all", {}, CATALOG, BY_MARKET)
    assert plain.status == 200
    assert isinstance(plain.body, list)
    assert len(plain.body) == len(CATALOG)
    assert set(plain.body[0]) == {"market", "korean_name", "english_name"}
    detailed = answer_rest("GET", "/v1/market/all", {"is_details": ["true"]}, CATALOG, BY_MARKET)
    assert isinstance(detailed.body, list)
    event = detailed.body[0]["market_event"]
    assert set(event) == {"warning", "caution"}
    assert len(event["caution"]) == 5
    bad = answer_rest("GET", "/v1/market/all", {"is_details": ["yes"]}, CATALOG, BY_MARKET)
    assert bad.status == 400
    assert bad.body == {
        "error": {"name": 400, "message": "Type mismatch error. Check the parameters type!"}
    }


def test_orderbook_instruments() -> None:
    answer = answer_rest(
        "GET",
        "/v1/orderbook/instruments",
        {"markets": ["krw-btc,BTC-ETH,KRW-NOPE"]},
        CATALOG,
        BY_MARKET,
    )
    assert answer.status == 200
    assert isinstance(answer.body, list)
    rows = {row["market"]: row for row in answer.body}
    assert set(rows) == {"KRW-BTC", "BTC-ETH"}
    btc = rows["KRW-BTC"]
    assert btc["quote_currency"] == "KRW"
    assert isinstance(btc["tick_size"], str)
    assert btc["supported_levels"][0] == "0"
    assert rows["BTC-ETH"]["supported_levels"] == ["0"]
    missing = answer_rest(
        "GET", "/v1/orderbook/instruments", {"markets": ["KRW-NOPE"]}, CATALOG, BY_MARKET
    )
    assert (missing.status, missing.body) == (
        404,
        {"error": {"name": 404, "message": "Code not found"}},
    )
    assert answer_rest("GET", "/v1/orderbook/instruments", {}, CATALOG, BY_MARKET).status == 400


def test_unknown_paths_and_methods() -> None:
    assert answer_rest("GET", "/v1/ticker", {}, CATALOG, BY_MARKET).status == 404
    assert answer_rest("POST", "/v1/market/all", {}, CATALOG, BY_MARKET).status == 405


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status_first_delay", -1.0, "status_first_delay must be >= 0"),
        ("idle_timeout", 0.0, "idle_timeout must be > 0 or None"),
        ("port", -1, "port must be >= 0"),
        ("feed_interval", 0.0, "feed_interval must be > 0"),
    ],
)
def test_config_says_what_to_fix(field: str, value: float, message: str) -> None:
    from engine.testing import EmulatorConfig

    with pytest.raises(ValueError, match=message):
        EmulatorConfig(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty access and secret"):
        EmulatorConfig(access_keys={"": "x"})
