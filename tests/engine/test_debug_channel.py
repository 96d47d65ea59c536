"""The debug channel (``open_engine(debug=...)``) against a running engine on the emulator: every
command over a Unix socket (mode 0600) and loopback TCP, live events, many clients at once, slow
and dead clients that cost the engine nothing, and no secret in any reply."""

from __future__ import annotations

import os
import socket
import stat
from contextlib import aclosing
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from trio.testing import MockClock

from engine import open_engine
from engine.cli.debug_client import DebugClient, DebugClientError, open_debug_client
from engine.debug_address import parse_debug_address
from engine.observability.journal import Journal
from engine.observability.operator_events import Connected
from engine.runtime.debug_channel import FOLLOW_BUFFER, MAX_CLIENTS, open_debug_channel

from ._engine_support import WAIT, engine_on_emulator, settle, transport_name
from .test_engine_private import private_engine


async def _raw(stream: trio.abc.Stream, line: bytes) -> dict[str, Any]:
    """One request on a raw stream, one reply line parsed: the protocol without our client."""
    await stream.send_all(line)
    data = b""
    with trio.fail_after(WAIT):
        while not data.endswith(b"\n"):
            chunk = await stream.receive_some(65536)
            assert chunk, "the channel closed the connection"
            data += chunk
    reply = orjson.loads(data)
    assert isinstance(reply, dict)
    return reply


async def test_every_command_answers_over_a_private_unix_socket(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "engine.sock"
    async with engine_on_emulator(debug=f"unix:{path}") as (eng, emu):
        assert eng.debug_address == f"unix:{path}"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        sub_id = await eng.subscribe_realtime(["trade", "ticker"], ["KRW-BTC", "KRW-ETH"])
        await settle(eng, emu)
        await trio.sleep(3)
        stream = await trio.open_unix_socket(str(path))
        async with stream:
            tree = await _raw(stream, b"tree\n")
            assert tree["ok"] is True
            text = str(tree["text"])
            assert text.splitlines()[0].startswith("engine")
            assert isinstance(tree["tree"], dict)
            assert tree["tree"]["name"] == "engine"
            tickets = await _raw(stream, b'{"cmd": "tickets"}\n')
            (busy,) = [t for t in tickets["tickets"] if t["streams"]]
            assert busy["state"] == "streaming"
            assert busy["streams"] == 4
            assert busy["codes"] == 2
            assert busy["types"] == {"trade": 2, "ticker": 2}
            assert busy["connection_state"] == "ready"
            assert busy["routed"]["ticker"] > 0
            assert f"{busy['ticket']} [streaming]" in text
            subs = await _raw(stream, b"subscriptions\n")
            (row,) = subs["subscriptions"]
            assert row["id"] == sub_id
            assert row["codes"] == ["KRW-BTC", "KRW-ETH"]
            assert row["types"] == ["trade", "ticker"]
            assert row["max_size"] == eng.config.subscriber_buffer
            assert row["gaps"] == 0
            assert row["tickets"] == [busy["ticket"]]
            metrics = await _raw(stream, b"metrics\n")
            assert metrics["metrics"]["connects"] == eng.metrics().connects
            events = await _raw(stream, b"events\n")
            kinds = [e["kind"] for e in events["events"]]
            assert "connected" in kinds
            assert all(e["summary"] for e in events["events"])
            helped = await _raw(stream, b"help\n")
            assert set(helped["commands"]) >= {"tree", "tickets", "subscriptions", "events"}
            bad = await _raw(stream, b"shutdown\n")
            assert bad["ok"] is False
            assert "unknown command 'shutdown'" in str(bad["error"])
            # The connection survives a bad request.
            assert (await _raw(stream, b"tickets\n"))["ok"] is True
    assert eng.debug_address is None
    assert not path.exists()  # removed with the engine


async def test_follow_streams_a_loss_and_its_recovery_over_tcp(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(debug="127.0.0.1:0") as (eng, emu):
        address = eng.debug_address
        assert address is not None
        assert address.startswith("127.0.0.1:")
        assert not address.endswith(":0")
        sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        client, stream = await open_debug_client(address)
        async with stream:
            seen: list[dict[str, Any]] = []
            dropped = False
            with trio.fail_after(WAIT):
                async with aclosing(client.follow(recent=1)) as follow:  # the last, then live
                    async for event in follow:
                        seen.append(event)
                        if not dropped:
                            dropped = True
                            await emu.drop()
                        if event["kind"] == "stream" and event["event"]["type"] == "gap":
                            break
        seen = seen[1:]
        kinds = [e["kind"] for e in seen]
        assert kinds.index("connection_lost") < kinds.index("connected")
        lost = seen[kinds.index("connection_lost")]
        assert lost["cause"]
        assert lost["ticket"] == eng.subscription(sub_id).tickets[0]
        gap = seen[-1]
        assert gap["subscription_id"] == sub_id
        assert gap["event"]["codes"] == ["KRW-BTC"]
        subs = await _subscriptions(address)
        assert subs[0]["gaps"] == 1


async def _subscriptions(address: str) -> list[dict[str, Any]]:
    client, stream = await open_debug_client(address)
    async with stream:
        reply = await client.request("subscriptions")
    rows = reply["subscriptions"]
    assert isinstance(rows, list)
    return rows


async def test_many_clients_at_once_and_the_one_too_many_is_told(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(debug="127.0.0.1:0") as (eng, emu):
        address = eng.debug_address
        assert address is not None
        await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await settle(eng, emu)
        streams = []
        clients: list[DebugClient] = []
        for _ in range(MAX_CLIENTS):
            client, stream = await open_debug_client(address)
            streams.append(stream)
            clients.append(client)
        for client in clients:
            assert (await client.request("tickets"))["ok"] is True
        assert eng.metrics().debug_clients == MAX_CLIENTS
        extra, extra_stream = await open_debug_client(address)
        with pytest.raises(DebugClientError, match="too many debug clients"):
            await extra.request("tree")
        await extra_stream.aclose()
        assert eng.metrics().debug_clients_refused == 1
        for stream in streams:
            await stream.aclose()
        with trio.fail_after(WAIT):
            # The server learns of a closed client from its own socket: nothing to wait on.
            while eng.metrics().debug_clients:  # noqa: ASYNC110
                await trio.sleep(0.1)
        client, stream = await open_debug_client(address)
        async with stream:
            assert (await client.request("tree"))["ok"] is True


async def test_a_client_that_stops_reading_is_dropped_and_costs_nothing(
    autojump_clock: MockClock,
) -> None:
    journal = Journal(trio.current_time)

    def answer(request: object) -> dict[str, object]:
        return {"ok": True}

    address = parse_debug_address("127.0.0.1:0")
    async with open_debug_channel(address, journal, answer) as (channel, where):
        stuck, stuck_stream = await open_debug_client(where)
        assert isinstance(stuck_stream, trio.SocketStream)
        # A small receive buffer: the kernel stops taking the channel's lines sooner.
        stuck_stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await stuck.send("events 0 follow")  # and never reads again
        reader, reader_stream = await open_debug_client(where)
        assert (await reader.request("events 0 follow"))["following"] is True
        with trio.fail_after(WAIT):
            while channel.stats.clients < 2:  # noqa: ASYNC110 (the server's view of its sockets)
                await trio.sleep(0.01)
        published = 3 * FOLLOW_BUFFER
        accounted = 0

        async def read_all() -> None:
            nonlocal accounted
            while accounted < published:
                line = await reader.read()
                assert line is not None
                event = line["event"]
                assert isinstance(event, dict)
                accounted += int(event["count"]) if event["kind"] == "events_dropped" else 1

        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                for _ in range(published):
                    # Synchronous: publishing never waits for a debug client.
                    journal.publish(
                        Connected(at=0.0, ticket="t" * 4000, generation=1, reconnect=True)
                    )
                    await trio.lowlevel.checkpoint()
        # Every event reached the reader or was reported dropped to it, in one piece.
        assert accounted == published
        # The stuck client: its queue overflowed, then a send blocked past the deadline.
        with trio.fail_after(WAIT):
            while not channel.stats.dropped_slow:  # noqa: ASYNC110 (as above)
                await trio.sleep(1.0)
        assert channel.stats.dropped_slow == 1
        assert channel.stats.events_dropped > 0
        assert channel.stats.clients == 1
        journal.publish(Connected(at=0.0, ticket="after", generation=2, reconnect=False))
        with trio.fail_after(WAIT):
            line = await reader.read()
        assert line is not None
        assert line["event"]["ticket"] == "after"
        await stuck_stream.aclose()
        await reader_stream.aclose()


async def test_no_reply_carries_a_secret(autojump_clock: MockClock, tmp_path: Path) -> None:
    async with private_engine(debug=f"unix:{tmp_path}/d.sock") as (eng, emu):
        await eng.subscribe_realtime("myAsset", [])
        await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        await emu.drop()
        await settle(eng, emu)
        secrets = [emu.access_key, emu.secret_key, "Bearer", "eyJ"]
        address = eng.debug_address
        assert address is not None
        client, stream = await open_debug_client(address)
        async with stream:
            replies = [
                await client.request(command)
                for command in ("help", "tree", "tickets", "subscriptions", "metrics", "events 500")
            ]
        text = orjson.dumps(replies).decode()
        assert "myAsset" in text  # the private subscription is there...
        assert "private-0" in text
        for secret in secrets:
            assert secret not in text  # ...its credentials are not


async def test_addresses_outside_loopback_and_busy_paths_are_refused(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="only listens on loopback"):
        async with open_engine(debug="0.0.0.0:8765", transport=transport_name()):
            pass
    not_a_socket = tmp_path / "file"
    not_a_socket.write_text("keep me")
    with pytest.raises(OSError, match="is not a socket"):
        async with engine_on_emulator(debug=f"unix:{not_a_socket}"):
            pass
    assert not_a_socket.read_text() == "keep me"
    path = tmp_path / "live.sock"
    async with engine_on_emulator(debug=f"unix:{path}"):
        with pytest.raises(OSError, match="in use by another process"):
            async with engine_on_emulator(debug=f"unix:{path}"):
                pass


async def test_a_reply_that_fails_is_an_error_line_not_a_dead_engine(
    autojump_clock: MockClock,
) -> None:
    journal = Journal(trio.current_time)

    def answer(request: object) -> dict[str, object]:
        raise RuntimeError("a view bug")

    address = parse_debug_address("127.0.0.1:0")
    async with open_debug_channel(address, journal, answer) as (_, where):
        client, stream = await open_debug_client(where)
        async with stream:
            with pytest.raises(DebugClientError, match="tree failed: RuntimeError"):
                await client.request("tree")
            assert (await client.request("help"))["ok"] is True  # still served


async def test_followers_get_the_last_events_and_the_end_when_the_engine_stops(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator(debug="127.0.0.1:0") as (eng, emu):
        sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        address = eng.debug_address
        assert address is not None
        client, stream = await open_debug_client(address)
        first = await client.request("events 0 follow")
        assert first["following"] is True
    # The engine stopped: its last words reached the follower before the socket closed.
    lines = []
    with trio.fail_after(WAIT):
        while (line := await client.read()) is not None:
            lines.append(line)
    await stream.aclose()
    assert lines[-1] == {"end": "the engine stopped"}
    ended = [line["event"] for line in lines[:-1] if line["event"]["kind"] == "stream"]
    assert any(e["event"]["type"] == "ended" and e["subscription_id"] == sub_id for e in ended)
