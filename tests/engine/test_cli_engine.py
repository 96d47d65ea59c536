"""``upbit-engine watch | snapshot | demo`` against the embedded emulator, as a user runs them."""

from __future__ import annotations

import json
import re

import attrs
import pytest

from engine.cli.commands import describe
from engine.cli.entry import build_parser, main
from engine.cli.watch_command import check_watch_args, engine_options
from engine.events import Backfilled, Gap, Interrupted, Unfilled
from engine.wire.messages import Orderbook, OrderbookUnit


def test_snapshot_prints_one_line_per_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "ticker", "KRW-BTC", "KRW-ETH", "--emulator"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["KRW-BTC", "KRW-ETH"]
    assert all("SNAPSHOT" in line for line in lines)


_STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


def test_watch_starts_with_a_snapshot_and_stops_after_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["watch", "trade:KRW-BTC", "--emulator", "--count", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert all(_STAMP.match(line) for line in lines)  # each line has its time
    assert "SNAPSHOT" in lines[0]
    assert all("REALTIME" in line for line in lines[1:])
    ids = [line.rsplit("#", 1)[1] for line in lines]
    assert len(set(ids)) == 4


def test_watch_takes_several_types_and_codes_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["watch", "--emulator", "--count", "12", "trade:KRW-BTC,KRW-ETH", "ticker:KRW-BTC"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    seen = {tuple(line.split()[1:3]) for line in lines}
    assert ("KRW-BTC", "ticker") in seen
    assert {("KRW-BTC", "trade"), ("KRW-ETH", "trade")} & seen


def test_watch_json_prints_one_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "--emulator", "--json", "--count", "3", "orderbook:KRW-BTC"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 3
    first = records[0]
    assert first["type"] == "orderbook"
    assert first["event"] is False
    assert first["subscription"].startswith("sub-")
    assert first["data"]["code"] == "KRW-BTC"
    assert first["data"]["stream_type"] == "SNAPSHOT"
    assert first["data"]["orderbook_units"][0]["ask_price"] > 0
    assert first["ts"].endswith("+00:00")


def test_watch_serves_metrics_and_the_debug_channel_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["watch", "trade:KRW-BTC", "--emulator", "--count", "2", "--metrics-port", "0"]
    assert main([*argv, "--debug", "127.0.0.1:0"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2  # stdout carries only the messages
    assert re.search(r"^metrics on http://127\.0\.0\.1:\d+/metrics$", captured.err, re.M)
    assert re.search(r"^debug channel on 127\.0\.0\.1:\d+$", captured.err, re.M)
    assert main(["watch", "trade:KRW-BTC", "--emulator", "--metrics-port", "70000"]) == 2
    assert "--metrics-port must be a TCP port" in capsys.readouterr().err
    assert main(["watch", "trade:KRW-BTC", "--emulator", "--debug", "0.0.0.0:1"]) == 2
    assert "only listens on loopback" in capsys.readouterr().err


def test_bad_input_is_rejected_with_what_to_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["snapshot", "ticker", "krw-btc", "--emulator"]) == 2
    assert "use 'KRW-BTC', not 'krw-btc'" in capsys.readouterr().err
    assert main(["watch", "orderbook:KRW-BTC", "--units", "7", "--emulator"]) == 2
    assert "1, 5, 15" in capsys.readouterr().err
    assert main(["demo", "--duration", "0"]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["watch", "trade", "--emulator"])
    assert usage.value.code == 2
    assert "trade needs codes, e.g. trade:KRW-BTC" in capsys.readouterr().err
    monkeypatch.delenv("UPBIT_ACCESS_KEY", raising=False)
    assert main(["watch", "myAsset"]) == 2
    assert "set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY" in capsys.readouterr().err


def test_watch_private_types_without_codes(capsys: pytest.CaptureFixture[str]) -> None:
    # On the emulator its own key pair is used; the private ticket connects beside the public.
    argv = ["watch", "--emulator", "--json", "--count", "2", "myAsset", "ticker:KRW-BTC"]
    assert main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["subscription"] for r in records] == ["sub-2", "sub-2"]  # sub-1 is myAsset


def test_watch_reads_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    args = parser.parse_args(["watch", "--ws-url", "ws://127.0.0.1:1/websocket/v1", "myAsset"])
    monkeypatch.setenv("UPBIT_ACCESS_KEY", "access")
    monkeypatch.setenv("UPBIT_SECRET_KEY", "secret")
    assert check_watch_args(args) is None
    options = engine_options(args)
    assert options["access_key"] == "access"
    assert options["secret_key"] == "secret"
    assert options["private_ws_url"] == "ws://127.0.0.1:1/websocket/v1/private"


def test_demo_command_ends_by_itself_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "supervisor tree:" in out
    assert out.rstrip().splitlines()[-1].startswith("summary:")


def test_describe_engine_events_and_books() -> None:
    book = Orderbook(
        type="orderbook",
        code="KRW-BTC",
        total_ask_size=1.0,
        total_bid_size=2.0,
        orderbook_units=(
            OrderbookUnit(ask_price=101.5, bid_price=100.0, ask_size=1.0, bid_size=2.0),
        ),
        timestamp=1,
        level=0,
        stream_type="REALTIME",
    )
    assert describe(book) == "KRW-BTC    orderbook REALTIME 100 / 101.5 (1 units, level 0)"
    gap = Gap(ticket="realtime-0", start=1.0, end=1.25, cause="dropped", codes=("KRW-BTC",))
    assert describe(gap) == "-- gap (0.250 s) on ticket realtime-0: dropped"
    cut = Interrupted(ticket="realtime-0", start=1.0, cause="dropped", codes=("KRW-BTC",))
    assert describe(cut) == "-- interrupted: dropped (ticket realtime-0)"
    filling = attrs.evolve(gap, backfill=("KRW-BTC",))
    assert (
        describe(filling) == "-- gap (0.250 s) on ticket realtime-0: dropped; backfilling KRW-BTC"
    )
    done = Backfilled("realtime-0", "KRW-BTC", 1, 2, 7, (), 3.0)
    assert describe(done) == "-- backfilled KRW-BTC: 7 trades, complete"
    lost = attrs.evolve(done, unfilled=(Unfilled(1, 2, "rest_error"),))
    assert describe(lost) == "-- backfilled KRW-BTC: 7 trades, 1 range(s) unfilled"
