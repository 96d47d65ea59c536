"""One conformance test (or a few) per item of docs/UPBIT.md, "What the emulator reproduces".

Assertions are on the wire: raw JSON, frame types, close codes, and times on the mock clock.
"""

from __future__ import annotations

import contextlib
import itertools

import pytest
import trio
import trio_websocket
from trio.testing import MockClock

from engine.testing import Quirks
from engine.wire.keys import LIST_SUBSCRIPTIONS_KEYS, simple_keys_for

from ._wire import (
    collect,
    connect,
    emulator,
    kinds,
    recv,
    recv_dict,
    recv_raw,
    send,
    subscribe,
    until,
    until_closed,
)


async def _silent_for(ws: trio_websocket.WebSocketConnection, seconds: float) -> bool:
    """True when nothing arrives for ``seconds`` (mock-clock seconds)."""
    with trio.move_on_after(seconds):
        await ws.get_message()
        return False
    return True


# -- 1. replace on resubscribe --------------------------------------------------------------------


async def test_a_new_request_replaces_the_whole_set_even_with_another_ticket(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}, ticket="first"))
        first = await recv_dict(ws)
        assert (first["code"], first["stream_type"]) == ("KRW-BTC", "SNAPSHOT")
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-ETH"]}, ticket="second"))
        _, snapshot = await until(ws, lambda m: m["code"] == "KRW-ETH")
        assert snapshot["stream_type"] == "SNAPSHOT"
        after = await collect(ws, 10)
        assert {m["code"] for m in after} == {"KRW-ETH"}, "nothing is merged"
        (info,) = emu.connections()
        assert [entry.codes for entry in info.subscriptions] == [("KRW-ETH",)]


async def test_no_acknowledgement_the_first_frame_is_data(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}))
        first = await recv_dict(ws)
        assert (first["type"], first["stream_type"]) == ("trade", "SNAPSHOT")


async def test_stale_frames_of_the_old_set_are_optional_and_bounded(
    autojump_clock: MockClock,
) -> None:
    async with emulator(quirks=Quirks(stale_frames=2), seed=3) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        await recv(ws)
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-ETH"]}))
        stale, snapshot = await until(ws, lambda m: m["stream_type"] == "SNAPSHOT")
        assert snapshot["code"] == "KRW-ETH"
        assert len(stale) <= 2
        assert all((m["code"], m["stream_type"]) == ("KRW-BTC", "REALTIME") for m in stale)
        assert {m["code"] for m in await collect(ws, 5)} == {"KRW-ETH"}


# -- 2. SNAPSHOT then REALTIME --------------------------------------------------------------------


async def test_one_snapshot_per_code_then_realtime(autojump_clock: MockClock) -> None:
    codes = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": codes}))
        messages = await collect(ws, 40)
    for code in codes:
        stream = [m["stream_type"] for m in messages if m["code"] == code]
        assert stream[0] == "SNAPSHOT"
        assert stream.count("SNAPSHOT") == 1, code
    assert [m["stream_type"] for m in messages[:3]] == ["SNAPSHOT"] * 3


async def test_one_snapshot_per_code_and_type(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(
            ws,
            subscribe(
                {"type": "ticker", "codes": ["KRW-BTC"]},
                {"type": "trade", "codes": ["KRW-BTC"]},
                {"type": "orderbook", "codes": ["KRW-BTC"]},
                {"type": "candle.1m", "codes": ["KRW-BTC"]},
            ),
        )
        snapshots = await collect(ws, 4)
        assert sorted(kinds(snapshots)) == sorted(
            (t, "KRW-BTC", "SNAPSHOT") for t in ("ticker", "trade", "orderbook", "candle.1m")
        )


async def test_is_only_snapshot_gives_exactly_one_frame(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(
            ws,
            subscribe(
                {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_snapshot": True}
            ),
        )
        snapshots = await collect(ws, 2)
        assert sorted(kinds(snapshots)) == [
            ("ticker", "KRW-BTC", "SNAPSHOT"),
            ("ticker", "KRW-ETH", "SNAPSHOT"),
        ]
        assert await _silent_for(ws, 20)
        assert emu.connection(1).frames_sent == 2


async def test_is_only_realtime_sends_no_snapshot(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(
            ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"], "is_only_realtime": True})
        )
        assert {m["stream_type"] for m in await collect(ws, 5)} == {"REALTIME"}


async def test_camel_case_flags_are_honoured(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"], "isOnlySnapshot": True}))
        assert (await recv_dict(ws))["stream_type"] == "SNAPSHOT"
        assert await _silent_for(ws, 10)


async def test_both_flags_default_to_one_snapshot(autojump_clock: MockClock) -> None:
    flags = {"is_only_snapshot": True, "is_only_realtime": True}
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"], **flags}))
        assert (await recv_dict(ws))["stream_type"] == "SNAPSHOT"
        assert await _silent_for(ws, 10)


async def test_a_replacing_request_snapshots_again_unless_realtime_only(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        assert (await recv_dict(ws))["stream_type"] == "SNAPSHOT"
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]}))
        _, again = await until(ws, lambda m: m["stream_type"] == "SNAPSHOT")
        assert again["code"] == "KRW-BTC", "every code of a replacing request is snapshotted"
        await until(ws, lambda m: m["stream_type"] == "SNAPSHOT" and m["code"] == "KRW-ETH")
        await send(
            ws,
            subscribe(
                {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": True},
                {"type": "ticker", "codes": ["KRW-XRP"]},
            ),
        )
        _, new = await until(ws, lambda m: m["stream_type"] == "SNAPSHOT")
        assert new["code"] == "KRW-XRP"
        later = await collect(ws, 20)
        assert all(m["stream_type"] == "REALTIME" for m in later)


# -- 3. binary frames -----------------------------------------------------------------------------


async def test_every_server_frame_is_binary(autojump_clock: MockClock) -> None:
    async with emulator(status_first_delay=0.5) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "orderbook", "codes": ["KRW-BTC"]}))
        await ws.send_message("PING")
        await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}])
        frames = [await recv_raw(ws) for _ in range(12)]
        await ws.send_message("not json")
        with trio.fail_after(30):
            while True:
                try:
                    frames.append(await ws.get_message())
                except trio_websocket.ConnectionClosed:
                    break
        assert all(isinstance(frame, bytes) for frame in frames)
        payloads = b"".join(frame for frame in frames if isinstance(frame, bytes))
        for marker in (
            b'"status":"UP"',
            b'"method":"LIST_SUBSCRIPTIONS"',
            b'"orderbook"',
            b'"error"',
        ):
            assert marker in payloads


async def test_the_status_frame_can_be_text(autojump_clock: MockClock) -> None:
    quirks = Quirks(status_frame="text")
    async with emulator(status_first_delay=0.5, quirks=quirks) as emu, connect(emu) as ws:
        await ws.send_message("PING")
        assert await recv_raw(ws) == '{"status":"UP"}'


# -- 4. errors, then close 1000 -------------------------------------------------------------------

ERROR_CASES = [
    ("hello", "WRONG_FORMAT"),
    ('{"ticket":"t"}', "WRONG_FORMAT"),
    ('[{"type":"ticker","codes":["KRW-BTC"]}]', "NO_TICKET"),
    ('[{"ticket":"t"},{"codes":["KRW-BTC"]}]', "NO_TYPE"),
    ('[{"ticket":"t"},{"type":"orderbook"}]', "NO_CODES"),
    ('[{"ticket":"t"},{"type":"nope","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
    ('[{"ticket":"t"},{"type":"myOrder"}]', "INVALID_AUTH"),
]


@pytest.mark.parametrize(("request_text", "name"), ERROR_CASES)
async def test_public_errors_are_followed_by_close_1000(
    autojump_clock: MockClock, request_text: str, name: str
) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await ws.send_message(request_text)
        raw = await recv_raw(ws)
        sent_at = trio.current_time()
        assert isinstance(raw, bytes)
        error = await recv_dict_from(raw)
        assert set(error) == {"error"}
        assert error["error"]["name"] == name  # type: ignore[index]
        assert error["error"]["message"]  # type: ignore[index]
        rest, reason = await until_closed(ws)
        assert rest == []
        assert reason.code == 1000
        assert trio.current_time() - sent_at == pytest.approx(0.15, abs=0.02)
        (info,) = emu.connections()
        assert info.close_reason == "server closed 1000"


async def recv_dict_from(raw: bytes) -> dict[str, dict[str, object]]:
    import orjson

    value = orjson.loads(raw)
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(
    ("request_text", "name", "headers"),
    [
        ('[{"ticket":"p"},{"type":"myAsset","codes":["KRW-BTC"]}]', "WRONG_FORMAT", None),
        ('[{"ticket":"p"},{"type":"myAsset"}]', "INVALID_AUTH", [(b"Authorization", b"Bearer x")]),
        ('[{"ticket":"p"},{"type":"myAsset"}]', "INVALID_AUTH", []),
        ('[{"ticket":"p"},{"type":"ticker","codes":["KRW-BTC"]}]', "INVALID_PARAM", None),
    ],
)
async def test_private_errors_are_followed_by_close_1000(
    autojump_clock: MockClock,
    request_text: str,
    name: str,
    headers: list[tuple[bytes, bytes]] | None,
) -> None:
    async with emulator() as emu, connect(emu, private=True, headers=headers) as ws:
        await ws.send_message(request_text)
        messages, reason = await until_closed(ws)
        assert messages == [{"error": {"name": name, "message": messages[0]["error"]["message"]}}]  # type: ignore[index]
        assert reason.code == 1000


async def test_error_close_delay_is_configurable(autojump_clock: MockClock) -> None:
    async with emulator(error_close_delay=2.0) as emu, connect(emu) as ws:
        await ws.send_message("hello")
        await recv(ws)
        sent_at = trio.current_time()
        _, reason = await until_closed(ws)
        assert reason.code == 1000
        assert trio.current_time() - sent_at == pytest.approx(2.0, abs=0.05)


# -- 5. silent acceptance -------------------------------------------------------------------------


async def test_unknown_and_lower_case_codes_are_silently_ignored(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-NOPE", "krw-btc", "KRW-ETH"]}))
        messages = await collect(ws, 10)
        assert {m["code"] for m in messages} == {"KRW-ETH"}
        await ws.ping()  # still open
        assert emu.connections(open_only=True)


async def test_unknown_codes_alone_produce_nothing_and_no_error(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-NOPE"]}))
        assert await _silent_for(ws, 30)
        await ws.ping()


async def test_unsupported_levels_are_silently_ignored(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(
            ws,
            subscribe(
                {"type": "orderbook", "codes": ["KRW-BTC"], "level": 10},  # not a KRW-BTC level
                {"type": "orderbook", "codes": ["BTC-ETH"], "level": 100},  # BTC pairs: 0 only
                {"type": "orderbook", "codes": ["KRW-ETH"], "level": 10000},
            ),
        )
        messages = await collect(ws, 5)
        assert {(m["code"], m["level"]) for m in messages} == {("KRW-ETH", 10000)}


# -- 6. orderbook shape ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "rows"),
    [
        ("KRW-BTC", 30),
        ("KRW-BTC.1", 1),
        ("KRW-BTC.5", 5),
        ("KRW-BTC.15", 15),
        ("KRW-BTC.30", 30),
        ("KRW-BTC.20", 30),
        ("KRW-BTC.2", 30),
    ],
)
async def test_orderbook_units_suffix(autojump_clock: MockClock, code: str, rows: int) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "orderbook", "codes": [code]}))
        for message in await collect(ws, 4):
            assert message["code"] == "KRW-BTC", "frames carry the bare code"
            assert message["level"] == 0
            units = message["orderbook_units"]
            assert isinstance(units, list)
            assert len(units) == rows, "every frame is a full book"


async def test_orderbook_is_best_first_with_level_echo(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "orderbook", "codes": ["KRW-XRP.15"], "level": 10}))
        for message in await collect(ws, 5):
            assert message["level"] == 10
            units = message["orderbook_units"]
            assert isinstance(units, list)
            asks = [u["ask_price"] for u in units if u["ask_price"]]
            bids = [u["bid_price"] for u in units if u["bid_price"]]
            assert asks == sorted(asks)
            assert bids == sorted(bids, reverse=True)
            assert asks[0] > bids[0]


# -- 7. per-connection format ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST", None])
async def test_formats(autojump_clock: MockClock, fmt: str | None) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}, fmt=fmt))
        for _ in range(3):
            message = await recv(ws)
            if fmt is not None and fmt.endswith("_LIST"):
                assert isinstance(message, list)
                assert len(message) == 1
                message = message[0]
            assert isinstance(message, dict)
            if fmt is not None and fmt.startswith("SIMPLE"):
                assert set(message) == set(simple_keys_for("ticker").values())
            else:
                assert set(message) == set(simple_keys_for("ticker"))
        assert emu.connection(1).format == (fmt or "DEFAULT")


async def test_list_subscriptions_format_reformats_every_stream(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}))
        assert "type" in await recv_dict(ws)
        await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}, {"format": "SIMPLE"}])
        _, reply = await until(ws, lambda m: LIST_SUBSCRIPTIONS_KEYS["method"] in m)
        assert reply["rslt"] == [{"ty": "trade", "cds": ["KRW-BTC"]}]
        for message in await collect(ws, 3):
            assert message["ty"] == "trade"
        assert emu.connection(1).format == "SIMPLE"


async def test_a_subscription_without_format_is_default_again(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}, fmt="SIMPLE"))
        assert "ty" in await recv_dict(ws)
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-ETH"]}))
        _, snapshot = await until(ws, lambda m: m.get("code") == "KRW-ETH")
        assert snapshot["type"] == "trade"


# -- 8. LIST_SUBSCRIPTIONS ------------------------------------------------------------------------


async def test_list_subscriptions_reflects_the_replaced_set(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, [{"ticket": "l0"}, {"method": "LIST_SUBSCRIPTIONS"}])
        assert await recv(ws) == {"method": "LIST_SUBSCRIPTIONS", "result": [], "ticket": "l0"}
        await send(
            ws,
            subscribe(
                {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
                {"type": "orderbook", "codes": ["KRW-BTC.5"], "level": 10000},
                {"type": "trade", "codes": ["KRW-XRP"], "is_only_snapshot": True},
            ),
        )
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-SOL"]}, ticket="second"))
        await send(ws, [{"ticket": "l1"}, {"method": "LIST_SUBSCRIPTIONS"}])
        _, reply = await until(ws, lambda m: "method" in m)
        assert reply == {
            "method": "LIST_SUBSCRIPTIONS",
            "result": [{"type": "ticker", "codes": ["KRW-SOL"]}],
            "ticket": "l1",
        }


async def test_list_subscriptions_ticket_variant(autojump_clock: MockClock) -> None:
    async with emulator(quirks=Quirks(list_ticket="subscription")) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}, ticket="sub"))
        await send(ws, [{"ticket": "list"}, {"method": "LIST_SUBSCRIPTIONS"}])
        _, reply = await until(ws, lambda m: "method" in m)
        assert reply["ticket"] == "sub"


async def test_list_subscriptions_counts_toward_the_message_limit(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, connect(emu) as ws:
        for _ in range(5):
            await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}])
        await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}])
        messages, reason = await until_closed(ws)
        assert len(messages) == 6
        assert messages[-1] == {
            "error": {"name": "Too Many Requests", "message": messages[-1]["error"]["message"]}  # type: ignore[index]
        }
        assert reason.code == 1000


# -- 9. keepalive and idle ------------------------------------------------------------------------


async def test_protocol_ping_is_answered(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        with trio.fail_after(1):
            await ws.ping(b"abc")
        assert emu.connection(1).pings_received == 1


async def test_text_ping_starts_an_up_status_every_ten_seconds(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await ws.send_message("PING")
        start = trio.current_time()
        times = []
        for _ in range(4):
            assert await recv(ws) == {"status": "UP"}
            times.append(trio.current_time() - start)
        await ws.send_message("PING")  # a second PING does not start a second cycle
        assert await recv(ws) == {"status": "UP"}
        times.append(trio.current_time() - start)
    assert 0 <= times[0] < 10
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([10.0] * 4, abs=0.02)


async def test_idle_connection_is_dropped_without_close_frame_after_60_s(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, connect(emu) as ws:
        start = trio.current_time()
        _, reason = await until_closed(ws)
        assert reason.code == 1006
        assert trio.current_time() - start == pytest.approx(60.0, abs=0.1)
        assert emu.connection(1).close_reason == "idle timeout"


async def test_idle_counts_from_the_last_frame(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(
            ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"], "is_only_snapshot": True})
        )
        await recv(ws)
        last = trio.current_time()
        _, reason = await until_closed(ws)
        assert reason.code == 1006
        assert trio.current_time() - last == pytest.approx(60.0, abs=0.1)


async def test_idle_timeout_is_configurable(autojump_clock: MockClock) -> None:
    async with emulator(idle_timeout=120.0) as emu, connect(emu) as ws:
        start = trio.current_time()
        await until_closed(ws)
        assert trio.current_time() - start == pytest.approx(120.0, abs=0.1)


async def test_text_ping_keeps_the_connection_alive(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await ws.send_message("PING")
        for _ in range(20):  # 200 s of UP frames
            assert await recv(ws) == {"status": "UP"}
        assert emu.connection(1).open


@pytest.mark.parametrize("counts", [True, False])
async def test_protocol_pings_alone_keep_it_alive_unless_configured(
    autojump_clock: MockClock, counts: bool
) -> None:
    async with emulator(ping_resets_idle=counts) as emu, connect(emu) as ws:
        start = trio.current_time()
        for _ in range(10):  # a protocol ping every 20 s for 200 s
            with trio.move_on_after(5):  # no pong once the server has dropped us
                try:
                    await ws.ping()
                except trio_websocket.ConnectionClosed:
                    break
            await trio.sleep(20)
        if counts:
            assert emu.connection(1).open
        else:
            assert emu.connection(1).close_reason == "idle timeout"
            closed_at = emu.connection(1).closed_at
            assert closed_at is not None
            assert closed_at - start == pytest.approx(60.0, abs=0.1)


# -- 10. rate limits ------------------------------------------------------------------------------


async def test_sixth_message_in_a_second_gets_too_many_requests_then_close(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, connect(emu) as ws:
        for i in range(6):
            await send(ws, subscribe({"type": "ticker", "codes": ["KRW-NOPE"]}, ticket=str(i)))
        messages, reason = await until_closed(ws)
        assert [m["error"]["name"] for m in messages] == ["Too Many Requests"]  # type: ignore[index]
        assert reason.code == 1000
        assert [r.kind for r in emu.requests()] == ["subscribe"] * 5 + ["rate_limited"]


async def test_hundred_messages_a_minute(autojump_clock: MockClock) -> None:
    async with emulator(limits=emu_limits(message_reaction="error")) as emu, connect(emu) as ws:
        for i in range(101):
            await send(ws, subscribe({"type": "ticker", "codes": ["KRW-NOPE"]}, ticket=str(i)))
            await trio.sleep(0.25)
        error = await recv_dict(ws)
        assert error["error"]["name"] == "Too Many Requests"  # type: ignore[index]
        records = emu.requests()
        assert [r.kind for r in records].count("subscribe") == 100
        assert records[-1].kind == "rate_limited"
        assert emu.connection(1).open, "reaction 'error' keeps the connection"


def emu_limits(**changes: object) -> object:
    import attrs

    from engine.testing import Limits

    return attrs.evolve(Limits(), **changes)


async def test_message_reaction_close_only_and_ignore(autojump_clock: MockClock) -> None:
    async with emulator(limits=emu_limits(message_reaction="close")) as emu, connect(emu) as ws:
        for i in range(6):
            await send(ws, [{"ticket": str(i)}, {"method": "LIST_SUBSCRIPTIONS"}])
        messages, reason = await until_closed(ws)
        assert len(messages) == 5
        assert all(isinstance(m, dict) and "method" in m for m in messages)
        assert reason.code == 1000
    async with emulator(limits=emu_limits(message_reaction="ignore")) as emu, connect(emu) as ws:
        for i in range(8):
            await send(ws, [{"ticket": str(i)}, {"method": "LIST_SUBSCRIPTIONS"}])
        replies = [await recv_dict(ws) for _ in range(8)]
        assert all(r["method"] == "LIST_SUBSCRIPTIONS" for r in replies)
        assert [r.kind for r in emu.requests()].count("rate_limited") == 3


async def test_repeated_excess_messages_get_a_teapot_block(autojump_clock: MockClock) -> None:
    limits = emu_limits(message_reaction="error", block_after=2, block_duration=30.0)
    async with emulator(limits=limits) as emu, connect(emu) as ws:
        for i in range(8):
            await send(ws, [{"ticket": str(i)}, {"method": "LIST_SUBSCRIPTIONS"}])
        replies = [await recv_dict(ws) for _ in range(8)]
        names = [r["error"]["name"] for r in replies if "error" in r]  # type: ignore[index]
        assert names == ["Too Many Requests", "I'm a teapot", "I'm a teapot"]
        await trio.sleep(31)
        await send(ws, [{"ticket": "again"}, {"method": "LIST_SUBSCRIPTIONS"}])
        assert "method" in await recv_dict(ws)


async def test_text_ping_does_not_count_unless_configured(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        for _ in range(10):
            await ws.send_message("PING")
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        assert (await recv_dict(ws)).get("stream_type") == "SNAPSHOT"
    async with emulator(limits=emu_limits(count_text_ping=True)) as emu, connect(emu) as ws:
        for _ in range(5):
            await ws.send_message("PING")
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        messages, _ = await until_closed(ws)
        assert messages[0] == {
            "error": {"name": "Too Many Requests", "message": messages[0]["error"]["message"]}
        }  # type: ignore[index]


async def test_sixth_connect_in_a_second_is_refused_with_429_then_418(
    autojump_clock: MockClock,
) -> None:
    limits = emu_limits(block_after=2, block_duration=10.0)
    async with emulator(limits=limits) as emu:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(5):
                await stack.enter_async_context(connect(emu))
            with pytest.raises(trio_websocket.ConnectionRejected) as first:
                await stack.enter_async_context(connect(emu))
            assert first.value.status_code == 429
            assert dict(first.value.headers)[b"retry-after"] == b"1"
            assert b"Too Many Requests" in (first.value.body or b"")
            with pytest.raises(trio_websocket.ConnectionRejected) as second:
                await stack.enter_async_context(connect(emu))
            assert second.value.status_code == 418
            assert dict(second.value.headers)[b"retry-after"] == b"10"
            await trio.sleep(5)
            with pytest.raises(trio_websocket.ConnectionRejected) as blocked:
                await stack.enter_async_context(connect(emu))
            assert blocked.value.status_code == 418
            await trio.sleep(6)
            await stack.enter_async_context(connect(emu))
        assert emu.connects_accepted == 6
        assert [r.status for r in emu.refusals()] == [429, 418, 418]
        assert emu.connects_refused == 3


async def test_limits_can_be_relaxed(autojump_clock: MockClock) -> None:
    async with emulator(limits=emu_limits(enforce=False)) as emu, connect(emu) as ws:
        for i in range(12):
            await send(ws, [{"ticket": str(i)}, {"method": "LIST_SUBSCRIPTIONS"}])
        replies = [await recv_dict(ws) for _ in range(12)]
        assert all("method" in r for r in replies)


async def test_origin_header_limits_connects_to_one_per_ten_seconds(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu:
        origin = [(b"Origin", b"https://example.invalid")]
        async with connect(emu, headers=origin):
            with pytest.raises(trio_websocket.ConnectionRejected) as refused:
                async with connect(emu, headers=origin):
                    pass
            assert refused.value.status_code == 429


# -- 11. private endpoint -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS512", "HS256"])
async def test_private_myorder_and_myasset_events_from_test_hooks(
    autojump_clock: MockClock, algorithm: str
) -> None:
    from engine.testing import make_my_asset, make_my_order

    async with emulator() as emu:
        headers = emu.auth_headers(algorithm=algorithm)
        async with connect(emu, private=True, headers=headers) as ws:
            await send(
                ws, subscribe({"type": "myOrder", "codes": ["KRW-BTC"]}, {"type": "myAsset"})
            )
            await emu.wait_requests(1, kind="subscribe")
            assert await _silent_for(ws, 30), "private streams send nothing unprompted"
            assert emu.emit_my_order(make_my_order(code="KRW-ETH")) == 0
            assert emu.emit_my_order(make_my_order(code="KRW-BTC", state="wait")) == 1
            order = await recv_dict(ws)
            assert (order["type"], order["code"], order["state"]) == ("myOrder", "KRW-BTC", "wait")
            assert order["stream_type"] == "REALTIME"
            assert emu.emit_my_asset(make_my_asset(assets=[("KRW", "1000.5", "0")])) == 1
            asset = await recv_dict(ws)
            assert asset["type"] == "myAsset"
            assert "code" not in asset
            assert emu.connection(1).access_key == emu.access_key


async def test_private_myorder_without_codes_means_all_markets_and_simple_keys(
    autojump_clock: MockClock,
) -> None:
    from engine.testing import make_my_order

    async with emulator() as emu, connect(emu, private=True) as ws:
        await send(ws, subscribe({"type": "myOrder"}, fmt="SIMPLE"))
        await emu.wait_requests(1, kind="subscribe")
        for code in ("KRW-BTC", "BTC-ETH"):
            assert emu.emit_my_order(make_my_order(code=code)) == 1
            assert (await recv_dict(ws))["cd"] == code
        await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}])
        reply = await recv_dict(ws)
        assert reply["rslt"] == [{"ty": "myOrder"}]


async def test_private_events_go_only_to_the_account(autojump_clock: MockClock) -> None:
    from engine.testing import make_my_asset

    other = ("other-access-key", "other-secret-" + "s" * 60)
    keys = {"a" * 10: "b" * 64, other[0]: other[1]}
    async with (
        emulator(access_keys=keys) as emu,
        connect(emu, private=True) as mine,
        connect(emu, private=True, headers=emu.auth_headers(other[0])) as theirs,
    ):
        for ws in (mine, theirs):
            await send(ws, subscribe({"type": "myAsset"}))
        await emu.wait_requests(2, kind="subscribe")
        message = make_my_asset(assets=[("BTC", "1", "0")])
        assert emu.emit_my_asset(message, access_key=other[0]) == 1
        assert (await recv_dict(theirs))["type"] == "myAsset"
        assert await _silent_for(mine, 5)


async def test_reused_nonce_is_refused_when_configured(autojump_clock: MockClock) -> None:
    async with emulator(reject_reused_nonce=True) as emu:
        token = emu.make_token(nonce="same")
        headers = [(b"Authorization", f"Bearer {token}".encode())]
        async with connect(emu, private=True, headers=headers) as ws:
            await send(ws, subscribe({"type": "myAsset"}))
            assert await _silent_for(ws, 1)
        async with connect(emu, private=True, headers=headers) as ws:
            await send(ws, subscribe({"type": "myAsset"}))
            messages, reason = await until_closed(ws)
            assert messages[0]["error"]["name"] == "INVALID_AUTH"  # type: ignore[index]
            assert reason.code == 1000


async def test_bad_token_can_refuse_the_upgrade_instead(autojump_clock: MockClock) -> None:
    async with emulator(auth_failure="http_401") as emu:
        with pytest.raises(trio_websocket.ConnectionRejected) as refused:
            async with connect(emu, private=True, headers=[(b"Authorization", b"Bearer nope")]):
                pass
        assert refused.value.status_code == 401
        assert b"INVALID_AUTH" in (refused.value.body or b"")
        async with connect(emu, private=True) as ws:
            await ws.ping()
