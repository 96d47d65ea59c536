"""The emulator serves Upbit's trade history over REST from the market its WebSockets stream.

``GET /v1/trades/ticks`` (docs/UPBIT.md, Quotation REST for history): fields, order, ``count``,
``cursor`` paging, ``to`` and ``days_ago`` in UTC, trades made while no client was connected,
identity with the ``trade`` stream, retention, errors, and the REST rate limit (``Remaining-Req``,
429, then 418 and recovery). Candles are in ``test_rest_candles.py``.
"""

from __future__ import annotations

import datetime

import httpx
import pytest
import trio
from trio.testing import MockClock

from engine.testing import Emulator, Limits, Quirks, TradeRecord, TradeRetention

from ._wire import connect, emulator, recv_dict, send, subscribe

TRADE_FIELDS = [
    "market",
    "trade_date_utc",
    "trade_time_utc",
    "timestamp",
    "trade_price",
    "trade_volume",
    "prev_closing_price",
    "change_price",
    "ask_bid",
    "sequential_id",
]
CODE = "KRW-BTC"  # about 8 trades a second in the default catalog


def _utc_ms(text: str) -> int:
    moment = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


async def _ticks(http: httpx.AsyncClient, **params: str | int) -> list[dict[str, object]]:
    response = await http.get("/v1/trades/ticks", params={"market": CODE, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return body


def _newest_first_before(made: tuple[TradeRecord, ...], sid: int) -> list[dict[str, object]]:
    """The REST items of ``made`` up to and including the trade ``sid``, newest first."""
    ids = [trade.sequential_id for trade in made]
    return [trade.as_rest() for trade in reversed(made[: ids.index(sid) + 1])]


async def _page_all(http: httpx.AsyncClient, count: int, **params: str | int) -> list[list[int]]:
    """Every page of sequential ids from the newest backwards, following the cursor."""
    pages: list[list[int]] = []
    cursor: dict[str, int] = {}
    while True:
        page = await _ticks(http, count=count, **params, **cursor)
        if not page:
            return pages
        ids = [item["sequential_id"] for item in page]
        assert all(isinstance(sid, int) for sid in ids)
        pages.append([int(str(sid)) for sid in ids])
        cursor = {"cursor": pages[-1][-1]}


# -- fields, order, count ------------------------------------------------------------------------


async def test_fields_types_and_newest_first(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        await trio.sleep(30)
        page = await _ticks(http, count=50)
        assert len(page) == 50
        for item in page:
            assert list(item) == TRADE_FIELDS
            assert item["market"] == CODE
            assert all(isinstance(item[key], str) for key in ("trade_date_utc", "trade_time_utc"))
            assert all(isinstance(item[key], int) for key in ("timestamp", "sequential_id"))
            for key in ("trade_price", "trade_volume", "prev_closing_price", "change_price"):
                assert isinstance(item[key], float)
            assert item["ask_bid"] in ("ASK", "BID")
            stamp = datetime.datetime.fromtimestamp(int(str(item["timestamp"])) / 1e3, datetime.UTC)
            assert item["trade_date_utc"] == stamp.strftime("%Y-%m-%d")
            assert item["trade_time_utc"] == stamp.strftime("%H:%M:%S")
            change = float(str(item["trade_price"])) - float(str(item["prev_closing_price"]))
            assert item["change_price"] == pytest.approx(change)  # signed, as on REST
        keys = [(int(str(item["timestamp"])), int(str(item["sequential_id"]))) for item in page]
        assert keys == sorted(keys, reverse=True)
        # Exactly the newest trades the emulator made (newer ones may have come since).
        made = emu.trades_made(CODE)
        assert page == _newest_first_before(made, keys[0][1])[:50]


async def test_count_default_and_maximum(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        emu.set_limits(False)
        await trio.sleep(90)  # > 500 trades
        emu.set_rate(CODE, 0)  # hold the history still
        await trio.sleep(1)
        newest = await _ticks(http)
        assert len(newest) == 1
        assert newest[0]["sequential_id"] == emu.trades_made(CODE)[-1].sequential_id
        assert len(await _ticks(http, count=500)) == 500
        for bad in (501, 0, -3):
            response = await http.get("/v1/trades/ticks", params={"market": CODE, "count": bad})
            assert response.status_code == 400
            assert response.json()["error"]["name"] == 400
    clamp = Quirks(rest_count_over_max="clamp")
    async with emulator(quirks=clamp) as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        await trio.sleep(90)
        assert len(await _ticks(http, count=1000)) == 500


async def test_cursor_pages_backwards_through_every_trade_once(autojump_clock: MockClock) -> None:
    async with emulator(rates={CODE: 5.0}) as emu:
        emu.set_limits(False)
        async with httpx.AsyncClient(base_url=emu.rest_url) as http:
            await trio.sleep(80)  # about 400 trades
            emu.set_rate(CODE, 0)  # hold the history still while paging
            await trio.sleep(1)
            pages = await _page_all(http, 37)
        made = [trade.sequential_id for trade in emu.trades_made(CODE)]
        assert len(made) > 300
        flat = [sid for page in pages for sid in page]
        assert flat == made[::-1]  # every trade once, no overlap, newest first
        assert all(len(page) == 37 for page in pages[:-1])
        assert 1 <= len(pages[-1]) <= 37


# -- to and days_ago, across a UTC midnight ------------------------------------------------------


async def test_to_and_days_ago_are_utc(autojump_clock: MockClock) -> None:
    start = _utc_ms("2026-09-21T23:59:00")
    midnight = _utc_ms("2026-09-22T00:00:00")
    async with emulator(market_start_ms=start) as emu:
        emu.set_limits(False)
        async with httpx.AsyncClient(base_url=emu.rest_url) as http:
            await trio.sleep(180)
            emu.set_rate(CODE, 0)
            await trio.sleep(1)
            assert midnight + 120_000 <= emu.market_now_ms < midnight + 122_000
            made = emu.trades_made(CODE)
            today = [t.sequential_id for t in made if t.trade_timestamp >= midnight][::-1]
            yesterday = [t.sequential_id for t in made if t.trade_timestamp < midnight][::-1]
            assert len(today) > 500
            assert len(yesterday) > 300
            # No days_ago: the current UTC day only; days_ago=1: the day before.
            assert [sid for page in await _page_all(http, 500) for sid in page] == today
            pages = await _page_all(http, 500, days_ago=1)
            assert [sid for page in pages for sid in page] == yesterday
            assert {item["trade_date_utc"] for item in await _ticks(http, count=5, days_ago=1)} == {
                "2026-09-21"
            }
            assert await _ticks(http, days_ago=2) == []
            # to: trades before that second of the day (exclusive), either spelling.
            cut = midnight + 30_000
            expected = [t.as_rest() for t in made if midnight <= t.trade_timestamp < cut][::-1]
            assert await _ticks(http, count=500, to="000030") == expected
            assert await _ticks(http, count=500, to="00:00:30") == expected
            assert all(str(item["trade_time_utc"]) < "00:00:30" for item in expected)
            assert any(item["trade_time_utc"] == "00:00:29" for item in expected)
            late = await _ticks(http, count=3, to="23:59:30", days_ago=1)
            assert [str(item["trade_time_utc"]) < "23:59:30" for item in late] == [True] * 3
            # A cursor stays in the day asked for (Quirks.trade_cursor_crosses_days=False).
            assert await _ticks(http, count=10, cursor=today[-1]) == []
            for bad in ({"days_ago": 0}, {"days_ago": 8}, {"to": "24:00:00"}, {"to": "0000"}):
                response = await http.get("/v1/trades/ticks", params={"market": CODE, **bad})
                assert response.status_code == 400, bad


async def test_cursor_may_cross_midnight_when_configured(autojump_clock: MockClock) -> None:
    start = _utc_ms("2026-09-21T23:59:50")
    changes = {"market_start_ms": start, "quirks": Quirks(trade_cursor_crosses_days=True)}
    async with emulator(**changes) as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        emu.set_limits(False)
        await trio.sleep(20)
        emu.set_rate(CODE, 0)
        await trio.sleep(1)
        made = [t.sequential_id for t in emu.trades_made(CODE)][::-1]
        assert [sid for page in await _page_all(http, 50) for sid in page] == made


# -- the market trades while nobody listens, and REST is the stream ------------------------------


async def _stream_trades(emu: Emulator, codes: list[str], count: int) -> list[dict[str, object]]:
    async with connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": codes, "is_only_realtime": True}))
        return [await recv_dict(ws) for _ in range(count)]


async def test_trades_made_while_disconnected_are_served(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        emu.set_limits(False)
        seen = await _stream_trades(emu, [CODE], 20)
        await emu.wait_for(lambda: not emu.connections(open_only=True))
        away_from = emu.market_now_ms
        await trio.sleep(60)  # no client at all
        away_until = emu.market_now_ms
        last_seen = int(str(seen[-1]["sequential_id"]))
        # Page back from the newest until the last trade the client saw.
        missed: list[dict[str, object]] = []
        cursor: dict[str, int] = {}
        while not any(item["sequential_id"] == last_seen for item in missed):
            page = await _ticks(http, count=100, **cursor)
            assert page
            missed.extend(page)
            cursor = {"cursor": int(str(page[-1]["sequential_id"]))}
        gap = missed[: [item["sequential_id"] for item in missed].index(last_seen)]
        assert len(gap) > 300  # 60 s at about 8 a second
        during = [item for item in gap if away_from < int(str(item["timestamp"])) < away_until]
        assert len(during) > 300
        made = emu.trades_made(CODE)
        assert gap == _newest_first_before(made, int(str(gap[0]["sequential_id"])))[: len(gap)]


async def test_trades_made_while_the_server_was_down_are_served(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        await trio.sleep(5)
        down_from = emu.market_now_ms
        await emu.restart(downtime=30)
        up_at = emu.market_now_ms
        async with httpx.AsyncClient(base_url=emu.rest_url) as http:
            page = await _ticks(http, count=500)
        during = [item for item in page if down_from < int(str(item["timestamp"])) < up_at]
        assert len(during) > 150  # 30 s at about 8 a second
        made = emu.trades_made(CODE)
        assert page == _newest_first_before(made, int(str(page[0]["sequential_id"])))[:500]


async def test_rest_serves_exactly_what_the_stream_sent(autojump_clock: MockClock) -> None:
    codes = ["KRW-BTC", "KRW-ETH", "USDT-BTC"]
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        streamed = await _stream_trades(emu, codes, 300)
        for code in codes:
            frames = [frame for frame in streamed if frame["code"] == code]
            assert len(frames) > 20
            response = await http.get("/v1/trades/ticks", params={"market": code, "count": 500})
            served = response.json()
            ids = [int(str(frame["sequential_id"])) for frame in frames]
            window = [i for i in served if ids[0] <= int(str(i["sequential_id"])) <= ids[-1]]
            # Same trades, no more, no fewer, for the period both cover ...
            assert [item["sequential_id"] for item in window] == ids[::-1]
            # ... with the same numbers (REST's timestamp is the trade's time; its change_price
            # is signed where the stream's is absolute).
            for frame, item in zip(frames[::-1], window, strict=True):
                assert item["trade_price"] == frame["trade_price"]
                assert item["trade_volume"] == frame["trade_volume"]
                assert item["timestamp"] == frame["trade_timestamp"]
                assert item["ask_bid"] == frame["ask_bid"]
                assert item["prev_closing_price"] == frame["prev_closing_price"]
                assert item["trade_date_utc"] == frame["trade_date"]
                assert item["trade_time_utc"] == frame["trade_time"]
                assert abs(float(str(item["change_price"]))) == frame["change_price"]
            made = {t.sequential_id: t for t in emu.trades_made(code)}
            assert all(
                made[sid].timestamp == frame["timestamp"]
                for sid, frame in zip(ids, frames, strict=True)
            )


async def test_the_snapshot_trade_is_history_too(autojump_clock: MockClock) -> None:
    async with emulator(rates={CODE: 0.0}) as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        async with connect(emu) as ws:
            await send(ws, subscribe({"type": "trade", "codes": [CODE], "is_only_snapshot": True}))
            snapshot = await recv_dict(ws)
        (item,) = await _ticks(http)
        assert item["sequential_id"] == snapshot["sequential_id"]
        assert item["timestamp"] == snapshot["trade_timestamp"]


# -- retention -------------------------------------------------------------------------------------


async def test_retention_forgets_the_oldest(autojump_clock: MockClock) -> None:
    async with emulator(trade_retention=TradeRetention(seconds=30.0)) as emu:
        await trio.sleep(120)
        made = emu.trades_made(CODE)
        assert made[0].trade_timestamp >= emu.market_now_ms - 31_000
        assert made[-1].trade_timestamp >= emu.market_now_ms - 1_000
    async with emulator(trade_retention=TradeRetention(per_code=100)) as emu:
        await trio.sleep(60)
        counts = [len(emu.trades_made(listing.market)) for listing in emu.catalog]
        assert len(emu.trades_made(CODE)) == 100
        assert max(counts) == 100
        assert emu.trades_made(CODE)[-1].trade_timestamp >= emu.market_now_ms - 1_000
    async with emulator(trade_retention=TradeRetention(per_code=None, total=250)) as emu:
        await trio.sleep(60)
        assert sum(len(emu.trades_made(listing.market)) for listing in emu.catalog) == 250
    async with emulator(trade_retention=TradeRetention(total=0)) as emu:
        async with httpx.AsyncClient(base_url=emu.rest_url) as http:
            await trio.sleep(10)
            assert emu.trades_made(CODE) == ()
            assert await _ticks(http, count=10) == []
        with pytest.raises(KeyError, match="KRW-NOPE"):
            emu.trades_made("KRW-NOPE")


# -- errors ----------------------------------------------------------------------------------------


async def test_errors_have_upbits_rest_shape(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        await trio.sleep(5)
        unknown = await http.get("/v1/trades/ticks", params={"market": "KRW-NOPE"})
        assert unknown.status_code == 404
        assert unknown.json() == {"error": {"name": 404, "message": "Code not found"}}
        assert unknown.headers["remaining-req"].startswith("group=trade;")
        for params in ({}, {"market": CODE, "count": "ten"}, {"market": CODE, "cursor": "x"}):
            response = await http.get("/v1/trades/ticks", params=params)
            assert response.status_code == 400, params
            error = response.json()["error"]
            assert error["name"] == 400
            assert isinstance(error["message"], str)
        mismatch = await http.get("/v1/trades/ticks", params={"market": CODE, "days_ago": "1.5"})
        message = mismatch.json()["error"]["message"]
        assert message == "Type mismatch error. Check the parameters type!"
        lower = await http.get("/v1/trades/ticks", params={"market": "krw-btc"})
        assert lower.status_code == 200
        assert lower.json()[0]["market"] == CODE
        assert (await http.post("/v1/trades/ticks", params={"market": CODE})).status_code == 405


# -- the REST rate limit ---------------------------------------------------------------------------


async def test_remaining_req_counts_down_per_group(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        await trio.sleep(2)
        headers = []
        for _ in range(10):
            response = await http.get("/v1/trades/ticks", params={"market": CODE})
            assert response.status_code == 200
            headers.append(response.headers["remaining-req"])
        assert headers == [f"group=trade; min=600; sec={left}" for left in range(9, -1, -1)]
        refused = await http.get("/v1/trades/ticks", params={"market": CODE})
        assert refused.status_code == 429
        assert refused.json() == {"error": {"name": 429, "message": "Too many API requests."}}
        assert refused.headers["remaining-req"] == "group=trade; min=600; sec=0"
        assert int(refused.headers["retry-after"]) >= 1
        # Other groups have budgets of their own.
        candles = await http.get("/v1/candles/minutes/1", params={"market": CODE})
        assert candles.headers["remaining-req"] == "group=candle; min=600; sec=9"
        markets = await http.get("/v1/market/all")
        assert markets.headers["remaining-req"] == "group=market; min=600; sec=9"
        await trio.sleep(1.0)
        again = await http.get("/v1/trades/ticks", params={"market": CODE})
        assert again.status_code == 200
        assert again.headers["remaining-req"] == "group=trade; min=600; sec=9"


async def test_continued_excess_is_blocked_with_418_then_recovers(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        limits = emu.config.limits
        assert (limits.rest_block_after, limits.rest_block_duration) == (10, 10.0)

        async def burst(count: int) -> list[httpx.Response]:
            return [
                await http.get("/v1/trades/ticks", params={"market": CODE}) for _ in range(count)
            ]

        responses = await burst(20)
        assert [r.status_code for r in responses] == [200] * 10 + [429] * 9 + [418]
        blocked = responses[-1]
        assert blocked.json()["error"]["name"] == 418
        assert "10 seconds" in blocked.json()["error"]["message"]
        assert blocked.headers["retry-after"] == "10"
        # The whole IP is blocked, every group.
        assert (await http.get("/v1/candles/days", params={"market": CODE})).status_code == 418
        await trio.sleep(9.5)
        assert (await http.get("/v1/market/all")).status_code == 418
        await trio.sleep(0.5)
        assert [r.status_code for r in await burst(10)] == [200] * 10
        # A second block lasts twice as long.
        assert [r.status_code for r in await burst(10)][-1] == 418
        await trio.sleep(10)
        assert (await http.get("/v1/market/all")).status_code == 418
        await trio.sleep(10)
        assert (await http.get("/v1/market/all")).status_code == 200


async def test_rest_block_is_configurable(autojump_clock: MockClock) -> None:
    limits = Limits(rest_block_after=2, rest_block_duration=3.0)
    async with emulator(limits=limits) as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        statuses = [(await http.get("/v1/market/all")).status_code for _ in range(12)]
        assert statuses == [200] * 10 + [429, 418]
        await trio.sleep(3)
        assert (await http.get("/v1/market/all")).status_code == 200


# -- the store itself (sans-IO) --------------------------------------------------------------------


def _message(sid: int, ms: int, code: str = CODE, change: str = "FALL") -> dict[str, object]:
    return {
        "type": "trade",
        "code": code,
        "timestamp": ms + 40,
        "trade_date": "2026-09-21",
        "trade_time": "14:13:20",
        "trade_timestamp": ms,
        "trade_price": 100.0,
        "trade_volume": 0.5,
        "ask_bid": "ASK",
        "prev_closing_price": 101.0,
        "change": change,
        "change_price": 1.0,
        "sequential_id": sid,
    }


def test_store_pages_by_position_when_ids_are_not_ordered() -> None:
    from engine.testing.emulator.history import TradeHistory

    history = TradeHistory(TradeRetention(seconds=None))
    ids = [50, 10, 40, 20, 30]  # unique, not ordered (Upbit promises no order)
    for index, sid in enumerate(ids):
        assert history.record(_message(sid, 1_000 + index)) is not None
    newest = history.newest_first(CODE, count=2, cursor=40)
    assert [t.sequential_id for t in newest] == [10, 50]  # the trades made before trade 40
    assert history.newest_first(CODE, count=5, cursor=99) == []  # unknown: nothing before it
    assert history.trades(CODE)[0].change_price == -1.0  # FALL: REST's sign


def test_store_skips_replayed_trades_and_forgets_in_order() -> None:
    from engine.testing.emulator.history import TradeHistory

    history = TradeHistory(TradeRetention(seconds=10.0, per_code=3000, total=5000))
    history.record(_message(9000, 900, code="KRW-ETH"))
    for index in range(4000):
        history.record(_message(index + 1, 1_000 + index))
    assert history.record(_message(4000, 4_999)) is None  # the same id again
    assert history.record(_message(7, 1_006)) is None  # older than the newest
    made = history.trades(CODE)
    assert [t.sequential_id for t in made] == list(range(1001, 4001))  # per code: the newest
    assert history.forgotten_ms(CODE) == 1_999
    assert len(history.trades("KRW-ETH")) == 1
    history.advance(4_999 + 10_000 - 500)  # 10 s behind the clock: everything before 4_499
    assert [t.sequential_id for t in history.trades(CODE)] == list(range(3500, 4001))
    assert history.trades("KRW-ETH") == ()
    assert [t.sequential_id for t in history.until(CODE, 4_510)] == list(range(3500, 3511))


async def test_fail_rest_answers_an_error_for_a_group_until_ended(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        await trio.sleep(5)
        emu.fail_rest(503, group="trade")
        failed = await http.get("/v1/trades/ticks", params={"market": CODE})
        assert failed.status_code == 503
        assert failed.json()["error"]["name"] == 503
        other = await http.get("/v1/market/all")
        assert other.status_code == 200  # another group is not affected
        emu.fail_rest(None)
        assert await _ticks(http, count=5)
        with pytest.raises(ValueError, match="400-599"):
            emu.fail_rest(200)
        assert any("REST failure" in event.detail for event in emu.history())
