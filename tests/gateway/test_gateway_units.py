"""The gateway's pure parts: subjects and message ids from real Upbit frames, the shard
assignment, the configuration and its errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest

from engine.gateway.config import GatewayConfig, Spec, parse_spec_text
from engine.gateway.encoding import encode_message, subject_for
from engine.gateway.sharding import owner, parse_shard, shard_codes
from engine.wire.decode import decode_frame
from engine.wire.messages import Candle, Ticker, Trade

# A DEFAULT trade frame as Upbit documents it (docs/UPBIT.md, "trade"), and a ticker.
TRADE = (
    b'{"type":"trade","code":"KRW-BTC","timestamp":1676965262177,"trade_date":"2023-02-21",'
    b'"trade_time":"07:41:02","trade_timestamp":1676965262139,"trade_price":31287000.0,'
    b'"trade_volume":0.03428839,"ask_bid":"BID","prev_closing_price":31156000.0,'
    b'"change":"RISE","change_price":131000.0,"sequential_id":1676965262139000,'
    b'"stream_type":"REALTIME","best_ask_price":31287000,"best_ask_size":0.1,'
    b'"best_bid_price":31286000,"best_bid_size":0.2,"new_field_2030":7}'
)
TICKER = (
    b'{"type":"ticker","code":"KRW-BTC","opening_price":31883000,"high_price":32310000,'
    b'"low_price":31855000,"trade_price":32287000,"prev_closing_price":31883000.0,'
    b'"change":"RISE","change_price":404000,"signed_change_price":404000,'
    b'"change_rate":0.0126713295,"signed_change_rate":0.0126713295,"trade_volume":0.03103806,'
    b'"acc_trade_volume":1,"acc_trade_volume_24h":2,"acc_trade_price":3,'
    b'"acc_trade_price_24h":4,"trade_date":"20230221","trade_time":"074102",'
    b'"trade_timestamp":1676965262139,"ask_bid":"ASK","acc_ask_volume":1,"acc_bid_volume":2,'
    b'"highest_52_week_price":57678000,"highest_52_week_date":"2022-03-28",'
    b'"lowest_52_week_price":20700000,"lowest_52_week_date":"2022-12-30",'
    b'"market_state":"ACTIVE","is_trading_suspended":false,"delisting_date":null,'
    b'"market_warning":"NONE","timestamp":1676965262177,"stream_type":"SNAPSHOT"}'
)


def test_a_trade_keeps_upbits_fields_and_its_id_is_its_sequential_id() -> None:
    trade = decode_frame(TRADE)
    assert isinstance(trade, Trade)
    subject, data, msg_id = encode_message(trade)
    assert subject == "upbit.trade.KRW-BTC"
    assert msg_id == "trade:KRW-BTC:1676965262139000"
    assert decode_frame(data) == trade  # the same model back, unknown field included
    assert b'"new_field_2030":7' in data


def test_other_types_are_identified_by_timestamp_and_content_not_stream_type() -> None:
    ticker = decode_frame(TICKER)
    assert isinstance(ticker, Ticker)
    _, _, snapshot_id = encode_message(ticker)
    _, _, realtime_id = encode_message(attrs.evolve(ticker, stream_type="REALTIME"))
    _, _, moved_id = encode_message(attrs.evolve(ticker, trade_price=1.0))
    assert snapshot_id == realtime_id  # a SNAPSHOT repeating a value is the same message
    assert snapshot_id != moved_id
    assert snapshot_id.startswith("ticker:KRW-BTC:1676965262177:")


def test_candle_types_become_one_subject_token() -> None:
    assert subject_for("candle.1m", "KRW-BTC") == "upbit.candle_1m.KRW-BTC"
    assert Candle.__name__ == "Candle"


def test_shards_are_deterministic_balanced_and_move_little_on_resize() -> None:
    codes = [f"KRW-C{i:03d}" for i in range(600)]
    three = {code: owner(code, 3) for code in codes}
    assert three == {code: owner(code, 3) for code in codes}  # no state, no coordination
    sizes = Counter(three.values())
    assert set(sizes) == {1, 2, 3}
    assert max(sizes.values()) - min(sizes.values()) < 60  # within 10 % of 200
    four = {code: owner(code, 4) for code in codes}
    moved = [code for code in codes if four[code] != three[code]]
    assert all(four[code] == 4 for code in moved)  # only to the new shard
    assert len(moved) < 200  # about a quarter
    parts = [shard_codes(codes, shard, 3) for shard in (1, 2, 3)]
    assert sorted(c for part in parts for c in part) == sorted(codes)
    assert parse_shard("2/3") == (2, 3)
    with pytest.raises(ValueError, match="write I/N"):
        parse_shard("two")
    with pytest.raises(ValueError, match="between 1 and N"):
        parse_shard("4/3")


def test_the_config_file_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[gateway]\nnats = "nats://127.0.0.1:4222"\nname = "seoul-1"\n'
        'specs = ["trade:KRW-BTC,KRW-ETH", "orderbook:KRW-BTC"]\nshard = "1/2"\n'
        "duplicate_window = 60\n"
    )
    config = GatewayConfig.from_toml(path, name="override")
    assert config.name == "override"
    assert config.specs == (Spec("trade", ("KRW-BTC", "KRW-ETH")), Spec("orderbook", ("KRW-BTC",)))
    assert config.shard == (1, 2)
    assert config.events_subject == "upbit.events.override"
    owned = {code for spec in config.own_specs() for code in spec.codes}
    assert owned == {c for c in ("KRW-BTC", "KRW-ETH") if owner(c, 2) == 1}
    path.write_text('[gateway]\nnats = "x"\nspecs = ["trade:KRW-BTC"]\nnat = 1\n')
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['nat'\]"):
        GatewayConfig.from_toml(path)
    with pytest.raises(ValueError, match="must not exceed max_age"):
        GatewayConfig(nats="x", specs=(Spec("trade", ("KRW-BTC",)),), max_age=60)
    with pytest.raises(ValueError, match="used in NATS names"):
        GatewayConfig(nats="x", specs=(Spec("trade", ("KRW-BTC",)),), name="a.b")
    with pytest.raises(ValueError, match="must not go to a shared bus"):
        parse_spec_text("myAsset:KRW-BTC")
    with pytest.raises(ValueError, match="TYPE:CODE"):
        parse_spec_text("trade")


async def test_a_full_queue_refuses_new_messages_and_never_evicts_the_batch_in_flight() -> None:
    import trio

    from engine.gateway.nats_session import PublishOutcome
    from engine.gateway.publisher import Item, Publisher

    release = trio.Event()
    published: list[list[str | None]] = []

    async def publish(batch: Sequence[Item]) -> PublishOutcome:
        items = list(batch)
        published.append([msg_id for _, _, msg_id in items])
        await release.wait()
        return PublishOutcome(len(items), 0, (), None)

    publisher = Publisher(publish, limit=4, batch=2, events_subject="e", instance="i")
    for n in range(4):
        publisher.offer("s", b"x", f"m{n}")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher.flush_once)
        await trio.testing.wait_all_tasks_blocked()
        assert published == [["m0", "m1"]]  # in flight
        publisher.offer("s", b"x", "m4")  # full: refused, the in-flight head is kept
        assert publisher.stats.dropped == 1
        release.set()
    assert publisher.stats.stored == 2  # what was in flight was stored, not counted as lost
    assert len(publisher) == 3  # the two left, and the report of the refused one
    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher.flush_once)  # the loss report goes out first
    assert published[1][0].startswith("event:i:")
