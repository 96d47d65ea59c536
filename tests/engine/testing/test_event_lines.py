"""Listeners see every emulator event as it happens; ``describe_event`` makes each one a short
line (what ``upbit-engine emulator -v`` prints)."""

from __future__ import annotations

import orjson
from trio.testing import MockClock

from engine.testing import EmulatorEvent, RequestRecord
from engine.testing.emulator.event_lines import describe_event, describe_request

from ._wire import connect, emulator, recv, send, subscribe

TICKER: dict[str, object] = {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]}


async def test_a_listener_sees_events_as_they_happen_until_removed(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu:
        seen: list[EmulatorEvent] = []
        remove = emu.add_listener(seen.append)
        async with connect(emu) as ws:
            await send(ws, subscribe(TICKER))
            await recv(ws)
            await emu.drop(1)
        await emu.wait_closed(1)
        assert [(e.kind, e.conn_id) for e in seen] == [
            ("connect", 1),
            ("request", 1),
            ("fault", 1),
            ("close", 1),
        ]
        assert seen == [e for e in emu.history() if e.kind != "server_up"]
        remove()
        remove()  # removing twice is harmless
        emu.set_limits(False)
        assert len(seen) == 4


def _request(text: str, kind: str = "subscribe", error: str | None = None) -> RequestRecord:
    return RequestRecord(at=0.0, conn_id=3, text=text, kind=kind, error=error)


def test_a_large_request_is_counted_not_echoed() -> None:
    codes = [f"KRW-C{i:03d}" for i in range(100)]
    text = orjson.dumps(
        [
            {"ticket": "t" * 100},
            {"type": "ticker", "codes": codes},
            {"type": "orderbook", "codes": codes[:2], "level": 10000, "is_only_snapshot": True},
            {"format": "SIMPLE"},
        ]
    ).decode()
    event = EmulatorEvent(0.0, "request", 3, f"subscribe: {text[:200]}")
    line = describe_event(event, _request(text))
    assert line == (
        f"conn 3 request subscribe: ticket {'t' * 15}…, ticker 100 codes, "
        "orderbook KRW-C000,KRW-C001 level 10000 snapshot only, format SIMPLE"
    )
    assert len(line) <= 160


def test_requests_that_are_not_subscriptions() -> None:
    assert describe_request("PING") == "'PING' (4 chars)"
    assert describe_request('{"ticket":"x"}') == "JSON dict, not an array (14 chars)"
    assert describe_request("[]") == "empty array"
    many = orjson.dumps([{"ticket": str(i)} for i in range(10)]).decode()
    assert describe_request(many).endswith(", 4 more")
    ping = EmulatorEvent(0.0, "request", 1, "ping: PING")
    assert describe_event(ping, _request("PING", "ping")) == "conn 1 request ping"
    error = EmulatorEvent(0.0, "request", 1, "error: [{}]")
    assert describe_event(error, _request("[{}]", "error", "NO_TICKET")) == (
        "conn 1 request error NO_TICKET: {}"
    )


def test_other_events_keep_their_detail_clipped() -> None:
    drop = EmulatorEvent(0.0, "fault", 2, "drop (abort)")
    assert describe_event(drop) == "conn 2 fault drop (abort)"
    down = EmulatorEvent(0.0, "server_down", None, "restart, down for 5 s")
    assert describe_event(down) == "server down: restart, down for 5 s"
    long = describe_event(EmulatorEvent(0.0, "close", 1, "x" * 500))
    assert len(long) <= 180
    assert long.endswith("…")
