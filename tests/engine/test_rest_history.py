"""fetch_trades and fetch_candles through a QuotationClient against the fake Upbit: completeness
(every row of the range exactly once, in order) across UTC days, at the 7-day edge, with
overlapping pages, page limits and gaps; input checks; and the row conversion's tolerance."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import trio
import trio.testing

from engine.errors import ProtocolError
from engine.rest import (
    CANDLE_UNITS,
    REST_STREAM_TYPE,
    Coverage,
    HistoryResult,
    TimeRange,
    candle_from_rest,
    fetch_candles,
    fetch_trades,
    trade_from_rest,
)
from engine.wire.keys import CANDLE_TYPES
from engine.wire.messages import Candle, Trade
from tests.engine.test_rest_quotation import LIMIT, NOW, FakeUpbit, answer, max_in_any_second

MARKET = "KRW-BTC"
TODAY = NOW.date()


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _at(day: date, hours: int = 0, minutes: int = 0, seconds: int = 0, ms: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        hours=hours, minutes=minutes, seconds=seconds, milliseconds=ms
    )


def _days_back(days: int) -> date:
    return TODAY - timedelta(days=days)


def trade_row(rng: random.Random, ts: int, sid: int | None) -> dict[str, Any]:
    moment = datetime.fromtimestamp(ts / 1000, UTC)
    row: dict[str, Any] = {
        "market": MARKET,
        "trade_date_utc": moment.strftime("%Y-%m-%d"),
        "trade_time_utc": moment.strftime("%H:%M:%S"),
        "timestamp": ts,
        "trade_price": float(rng.randrange(90_000_000, 110_000_000, 1000)),
        "trade_volume": round(rng.random(), 8),
        "prev_closing_price": 100_000_000.0,
        "change_price": 1000.0,
        "ask_bid": rng.choice(["ASK", "BID"]),
        "sequential_id": sid,
    }
    roll = rng.random()
    if roll < 0.03:
        row["trade_price"] = None
    elif roll < 0.06:
        del row["prev_closing_price"]
    elif roll < 0.08:
        row["new_field"] = {"nested": [1, 2]}
    if sid is None:
        del row["sequential_id"]
    return row


def seed_trades(seed: int = 7, per_day: tuple[int, int] = (1500, 2500)) -> list[dict[str, Any]]:
    """Trades from nine days back to now: ids beyond 2^53 in random order, shared
    milliseconds, trades on the very edges of days, some rows without an id or with nulls."""
    rng = random.Random(seed)
    used: set[int] = set()

    def new_id() -> int:
        while (sid := rng.randrange(2**53 + 1, 2**62)) in used:
            pass
        used.add(sid)
        return sid

    rows: list[dict[str, Any]] = []
    now_ms = _ms(NOW)
    for back in range(9, -1, -1):
        day_start = _ms(_at(_days_back(back)))
        day_end = min(day_start + 86_400_000, now_ms + 1)
        stamps = sorted(rng.randrange(day_start, day_end) for _ in range(rng.randint(*per_day)))
        stamps += [day_start, day_start, day_end - 1]
        if back == 2:  # either side of the end used by the first test, 21:30:15.500
            stamps += [_ms(_at(_days_back(2), 21, 30, 15, ms)) for ms in (250, 500, 750)]
        for ts in sorted(stamps):
            sid = None if rng.random() < 0.01 else new_id()
            rows.append(trade_row(rng, ts, sid))
            if rng.random() < 0.05:  # several trades in one millisecond
                rows.append(trade_row(rng, ts, new_id()))
    return rows


TRADES = seed_trades()


def expected_ids(start: datetime, end: datetime) -> list[int]:
    lo, hi = _ms(start), _ms(end)
    chosen = [row for row in TRADES if "sequential_id" in row and lo <= row["timestamp"] < hi]
    chosen.sort(key=lambda row: (row["timestamp"], row["sequential_id"]))
    return [row["sequential_id"] for row in chosen]


def ids_of(result: HistoryResult[Trade]) -> list[int]:
    return [trade.sequential_id for trade in result.items]


def assert_in_trade_order(trades: Sequence[Trade]) -> None:
    keys = [(trade.trade_timestamp or 0, trade.sequential_id) for trade in trades]
    assert keys == sorted(keys)
    assert len({trade.sequential_id for trade in trades}) == len(trades)


# ----------------------------------------------------------------------------------------------
# Trades


async def test_trades_of_part_of_a_day_come_complete_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(_days_back(2), 3), _at(_days_back(2), 21, 30, 15, 500)
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    assert result.complete
    assert result.coverage == Coverage(TimeRange(start, end))
    want = expected_ids(start, end)
    assert len(want) > 1000  # several pages of 500
    assert ids_of(result) == want
    assert_in_trade_order(result.items)
    first = upbit.sent[0].params
    assert first["days_ago"] == "2"
    assert first["count"] == "500"
    assert first["to"] == "21:30:16"  # the second after end: end's own second is included
    edge = {t.trade_timestamp for t in result.items if t.trade_time == "21:30:15"}
    assert _ms(end) - 250 in edge
    assert _ms(end) not in edge
    assert _ms(end) + 250 not in edge
    assert all(sent.params.get("days_ago") == "2" for sent in upbit.sent)
    assert all("cursor" in sent.params for sent in upbit.sent[1:])
    assert result.pages == len(upbit.sent)
    assert upbit.cursor_misses == 0
    trade = result.items[0]
    assert (trade.type, trade.code, trade.stream_type) == ("trade", MARKET, REST_STREAM_TYPE)
    assert trade.trade_timestamp == trade.timestamp
    assert trade.trade_date == _days_back(2).isoformat()


async def test_trades_across_a_utc_day_boundary_page_each_day_with_its_own_days_ago(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(_days_back(1), 18), _at(TODAY, 6)
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    assert result.complete
    assert ids_of(result) == expected_ids(start, end)
    # Both trades at 00:00:00.000 of today are in, the last one of yesterday too.
    midnight = _ms(_at(TODAY))
    assert sum(1 for t in result.items if t.trade_timestamp == midnight) >= 2
    assert any(t.trade_timestamp == midnight - 1 for t in result.items)
    days = [sent.params.get("days_ago", "0") for sent in upbit.sent]
    assert days == sorted(days)
    assert set(days) == {"0", "1"}
    for sent in upbit.sent:
        if sent.params.get("days_ago", "0") == "1" and "cursor" not in sent.params:
            assert "to" not in sent.params  # a whole older day is asked for
    assert upbit.cursor_misses == 0
    assert max_in_any_second([sent.at for sent in upbit.sent]) <= LIMIT
    assert upbit.violations == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (_at(_days_back(3), 1), _at(_days_back(3), 23)),
        (_at(_days_back(4), 12), _at(_days_back(2), 12)),  # two day boundaries
    ],
)
async def test_overlapping_pages_are_de_duplicated(
    autojump_clock: trio.testing.MockClock, start: datetime, end: datetime
) -> None:
    upbit = FakeUpbit(trades=TRADES, overlap=3)
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    assert result.complete
    assert ids_of(result) == expected_ids(start, end)
    assert result.duplicates >= 3 * (result.pages - 6)
    assert result.duplicates > 0


async def test_the_seven_day_edge_is_reported_with_the_uncovered_range(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(_days_back(9), 12), _at(_days_back(6), 12)
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    edge = _at(_days_back(7))
    assert not result.complete
    assert result.coverage.reason == "rest_window"
    assert result.coverage.uncovered == TimeRange(start, edge)
    assert "7 UTC days" in result.coverage.detail
    assert ids_of(result) == expected_ids(edge, end)
    assert max(int(sent.params.get("days_ago", "0")) for sent in upbit.sent) == 7
    assert {sent.params.get("days_ago") for sent in upbit.sent} == {"6", "7"}


async def test_a_range_wholly_beyond_the_window_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(_days_back(9)), _at(_days_back(8), 12)
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    assert upbit.sent == []
    assert (result.items, result.pages) == ((), 0)
    assert result.coverage.uncovered == TimeRange(start, end)
    assert result.coverage.reason == "rest_window"


async def test_a_page_limit_leaves_the_oldest_part_uncovered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(_days_back(4)), _at(_days_back(3))
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, max_pages=2, now=NOW)
    assert len(upbit.sent) == result.pages == 2
    assert not result.complete
    coverage = result.coverage
    assert coverage.reason == "page_limit"
    assert coverage.uncovered is not None
    assert coverage.uncovered.start == start
    resume = coverage.uncovered.end
    assert start < resume < end
    got = ids_of(result)
    assert set(got) <= set(expected_ids(start, end))
    assert set(expected_ids(resume, end)) <= set(got)  # everything newer than the gap is in
    assert 900 < len(got) <= 1000


async def test_resuming_the_uncovered_range_completes_the_history(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(_days_back(1), 8), _at(TODAY, 2)
    merged: dict[int, Trade] = {}
    async with upbit.client() as client:
        part = await fetch_trades(client, MARKET, start=start, end=end, max_pages=3, now=NOW)
        while True:
            merged.update((t.sequential_id, t) for t in part.items)
            if part.complete:
                break
            assert part.coverage.uncovered is not None
            gap = part.coverage.uncovered
            part = await fetch_trades(
                client, MARKET, start=gap.start, end=gap.end, max_pages=3, now=NOW
            )
    ordered = sorted(merged.values(), key=lambda t: (t.trade_timestamp or 0, t.sequential_id))
    assert [t.sequential_id for t in ordered] == expected_ids(start, end)


async def test_a_page_boundary_inside_one_millisecond_loses_nothing_on_resume(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(5)
    moment = _at(_days_back(1), 10)
    # 600 trades in one millisecond, 100 in the one before: the first page ends mid-millisecond.
    rows = [trade_row(rng, _ms(moment), 2**60 + n) for n in range(600)]
    rows += [trade_row(rng, _ms(moment) - 1, 2**61 + n) for n in range(100)]
    upbit = FakeUpbit(trades=rows)
    start, end = _at(_days_back(1), 9), _at(_days_back(1), 11)
    async with upbit.client() as client:
        first = await fetch_trades(client, MARKET, start=start, end=end, max_pages=1, now=NOW)
        gap = first.coverage.uncovered
        assert gap is not None
        assert gap.end == moment + timedelta(milliseconds=1)
        rest = await fetch_trades(client, MARKET, start=gap.start, end=gap.end, now=NOW)
    merged = {t.sequential_id for t in first.items} | {t.sequential_id for t in rest.items}
    assert merged == {row["sequential_id"] for row in rows}


async def test_a_candle_server_that_ignores_to_does_not_make_it_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rows = seed_candles(_at(TODAY, 1), 300, timedelta(minutes=1), gaps=0.0)
    newest = sorted(rows, key=lambda r: r["candle_date_time_utc"], reverse=True)[:200]
    upbit = FakeUpbit()
    upbit.add_script("*", *[answer(200, newest)] * 5)
    async with upbit.client() as client:
        result = await fetch_candles(client, MARKET, "1m", start=_at(TODAY), end=NOW, now=NOW)
    assert len(upbit.sent) == 2
    assert result.coverage.reason == "no_progress"
    assert len(result.items) == 200


async def test_rows_without_an_id_are_skipped_and_counted_and_nulls_survive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(_days_back(5)), _at(_days_back(4))
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    assert result.complete
    assert result.skipped_rows >= 1
    assert ids_of(result) == expected_ids(start, end)
    assert any(t.trade_price is None for t in result.items)
    assert any(t.prev_closing_price is None for t in result.items)
    assert any(t.extra.get("new_field") == {"nested": [1, 2]} for t in result.items)
    assert all(t.sequential_id > 2**53 for t in result.items)
    by_id = {row.get("sequential_id"): row for row in TRADES}
    assert all(by_id[t.sequential_id]["timestamp"] == t.trade_timestamp for t in result.items)


async def test_a_server_that_ignores_the_cursor_does_not_make_it_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    upbit.ignore_cursor = True
    start, end = _at(_days_back(2)), _at(_days_back(1))
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    assert len(upbit.sent) == 2
    assert result.coverage.reason == "no_progress"
    assert result.coverage.uncovered is not None
    assert result.coverage.uncovered.start == start


async def test_trades_in_the_future_part_of_a_range_are_simply_not_there_yet(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    start, end = _at(TODAY, 11, 59), _at(TODAY, 18)
    async with upbit.client() as client:
        result = await fetch_trades(client, MARKET, start=start, end=end, now=NOW)
    assert result.complete
    assert ids_of(result) == expected_ids(start, end)
    assert "days_ago" not in upbit.sent[0].params
    assert "to" not in upbit.sent[0].params


async def test_history_calls_share_the_clients_budget_with_other_callers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    results: list[HistoryResult[Trade]] = []
    start, end = _at(_days_back(3)), _at(_days_back(2))

    async def backfill() -> None:
        results.append(await fetch_trades(client, MARKET, start=start, end=end, now=NOW))

    async with upbit.client() as client, trio.open_nursery() as nursery:
        nursery.start_soon(backfill)
        for _ in range(20):
            nursery.start_soon(client.get_json, "/v1/trades/ticks", {"market": MARKET})
    assert [ids_of(result) for result in results] == [expected_ids(start, end)]
    assert client.statistics().requests["trade"] == len(upbit.sent) == results[0].pages + 20
    assert upbit.violations == 0
    assert max_in_any_second([sent.at for sent in upbit.of("trade")]) <= LIMIT


async def test_an_answer_that_is_not_a_list_is_a_protocol_error() -> None:
    upbit = FakeUpbit(trades=TRADES)
    upbit.add_script("*", answer(200, {"rows": []}))
    async with upbit.client() as client:
        with pytest.raises(ProtocolError, match="not a list of trades"):
            await fetch_trades(client, MARKET, start=_at(TODAY), end=NOW, now=NOW)


# ----------------------------------------------------------------------------------------------
# Input checks


@pytest.mark.parametrize(
    ("kwargs", "messages"),
    [
        ({"market": "krw-btc"}, ["use 'KRW-BTC'"]),
        ({"market": "KRW_BTC"}, ["upper-case code"]),
        ({"start": datetime(2026, 10, 9)}, ["start=2026-10-09T00:00:00 has no time zone"]),
        ({"end": _at(_days_back(3))}, ["must be before end"]),
        ({"max_pages": 0}, ["max_pages must be an integer >= 1"]),
        (
            {"market": "btc", "start": datetime(2026, 10, 9), "max_pages": True},
            ["upper-case code", "no time zone", "max_pages"],
        ),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    kwargs: dict[str, Any], messages: list[str]
) -> None:
    upbit = FakeUpbit(trades=TRADES)
    arguments: dict[str, Any] = {
        "market": MARKET,
        "start": _at(_days_back(2)),
        "end": _at(_days_back(1)),
        "now": NOW,
        **kwargs,
    }
    async with upbit.client() as client:
        with pytest.raises(ValueError, match="invalid history request") as trades_error:
            await fetch_trades(client, **arguments)
        with pytest.raises(ValueError, match="invalid history request") as candles_error:
            await fetch_candles(client, unit="1m", **arguments)
    for error in (trades_error.value, candles_error.value):
        for message in messages:
            assert message in str(error)
    assert upbit.sent == []


@pytest.mark.parametrize(
    ("unit", "advice"),
    [("2m", ""), ("1h", "use '60m'"), ("candle.1m", "use '1m'"), ("days", "use '1d'"), (5, "")],
)
async def test_unknown_candle_units_are_refused_with_the_known_ones(unit: Any, advice: str) -> None:
    upbit = FakeUpbit()
    async with upbit.client() as client:
        with pytest.raises(ValueError, match="unknown candle unit") as info:
            await fetch_candles(client, MARKET, unit, start=_at(TODAY), end=NOW, now=NOW)
    assert "1s, 1m, 3m, 5m, 10m, 15m, 30m, 60m, 240m, 1d, 1w" in str(info.value)
    assert advice in str(info.value)
    assert upbit.sent == []


async def test_naive_now_is_refused() -> None:
    upbit = FakeUpbit()
    async with upbit.client() as client:
        with pytest.raises(ValueError, match=r"now=.* has no time zone"):
            await fetch_trades(client, MARKET, start=_at(TODAY), end=NOW, now=datetime(2026, 1, 1))


# ----------------------------------------------------------------------------------------------
# Candles


def candle_row(start: datetime, rng: random.Random, unit: int | None = None) -> dict[str, Any]:
    price = float(rng.randrange(90_000_000, 110_000_000, 1000))
    row: dict[str, Any] = {
        "market": MARKET,
        "candle_date_time_utc": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "candle_date_time_kst": (start + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S"),
        "opening_price": price,
        "high_price": price + 1000,
        "low_price": price - 1000,
        "trade_price": price,
        "timestamp": _ms(start) + 59_000,
        "candle_acc_trade_price": price * 0.5,
        "candle_acc_trade_volume": 0.5,
    }
    if unit is not None:
        row["unit"] = unit
    if rng.random() < 0.05:
        row["high_price"] = None
    return row


def seed_candles(
    first: datetime, count: int, step: timedelta, seed: int = 3, gaps: float = 0.25
) -> list[dict[str, Any]]:
    """``count`` periods from ``first``; a quarter of them traded nothing (no candle)."""
    rng = random.Random(seed)
    return [
        candle_row(first + step * index, rng, unit=1)
        for index in range(count)
        if rng.random() >= gaps
    ]


MINUTES = seed_candles(_at(_days_back(1)), 1500, timedelta(minutes=1))
MINUTE_PATH = "/v1/candles/minutes/1"


def expected_periods(rows: list[dict[str, Any]], start: datetime, end: datetime) -> list[str]:
    lo, hi = start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")
    return sorted(r["candle_date_time_utc"] for r in rows if lo <= r["candle_date_time_utc"] < hi)


def periods_of(result: HistoryResult[Candle]) -> list[str | None]:
    return [candle.candle_date_time_utc for candle in result.items]


async def test_minute_candles_with_empty_periods_come_complete_oldest_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(candles={MINUTE_PATH: MINUTES})
    start, end = _at(_days_back(1), 2, 7), _at(_days_back(1), 22, 30, 30)
    async with upbit.client() as client:
        result = await fetch_candles(client, MARKET, "1m", start=start, end=end, now=NOW)
    want = expected_periods(MINUTES, start, end)
    assert len(want) > 3 * 200  # several pages, with gaps
    assert len(want) < (end - start) // timedelta(minutes=1)
    assert periods_of(result) == want
    assert result.complete
    assert result.coverage.uncovered is None
    candle = result.items[0]
    assert (candle.type, candle.code, candle.stream_type) == ("candle.1m", MARKET, "REST")
    assert candle.extra == {"unit": 1}
    assert any(c.high_price is None for c in result.items)
    tos = [sent.params["to"] for sent in upbit.sent]
    assert tos[0] == "2026-10-09T22:30:30Z"
    assert all(to.endswith("Z") for to in tos)
    assert all(sent.params["count"] == "200" for sent in upbit.sent)
    assert result.pages == len(upbit.sent) <= len(want) // 200 + 1


async def test_candle_paging_stops_at_start_and_when_no_older_candle_exists(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(candles={MINUTE_PATH: MINUTES})
    listing = _at(_days_back(1))  # the first candle; nothing traded before
    start, end = listing + timedelta(minutes=100), listing + timedelta(minutes=300)
    async with upbit.client() as client:
        result = await fetch_candles(client, MARKET, "1m", start=start, end=end, now=NOW)
        assert periods_of(result) == expected_periods(MINUTES, start, end)
        assert result.complete
        assert result.pages == 1
        start = listing - timedelta(days=3)
        result = await fetch_candles(client, MARKET, "1m", start=start, end=end, now=NOW)
    assert periods_of(result) == expected_periods(MINUTES, start, end)
    assert result.complete  # no candle before the first one is no hole
    assert result.pages == 3  # 200, the rest, then an empty page
    assert upbit.sent[-1].params["to"] == MINUTES[0]["candle_date_time_utc"] + "Z"


async def test_a_candle_page_limit_reports_the_uncovered_range(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(candles={MINUTE_PATH: MINUTES})
    start, end = _at(_days_back(1)), _at(_days_back(1), 20)
    async with upbit.client() as client:
        result = await fetch_candles(
            client, MARKET, "1m", start=start, end=end, max_pages=2, now=NOW
        )
    assert result.pages == 2
    assert len(result.items) == 400
    uncovered = result.coverage.uncovered
    assert result.coverage.reason == "page_limit"
    assert uncovered is not None
    assert uncovered.start == start
    assert uncovered.end.strftime("%Y-%m-%dT%H:%M:%S") == periods_of(result)[0]
    rest = expected_periods(MINUTES, uncovered.start, uncovered.end)
    assert rest + periods_of(result) == expected_periods(MINUTES, start, end)


async def test_day_candles_use_the_days_path_and_type(
    autojump_clock: trio.testing.MockClock,
) -> None:
    days = seed_candles(_at(TODAY - timedelta(days=500)), 500, timedelta(days=1), gaps=0.0)
    upbit = FakeUpbit(candles={"/v1/candles/days": days})
    start, end = _at(TODAY - timedelta(days=450)), _at(TODAY - timedelta(days=10))
    async with upbit.client() as client:
        result = await fetch_candles(client, MARKET, "1d", start=start, end=end, now=NOW)
    assert periods_of(result) == expected_periods(days, start, end)
    assert len(result.items) == 440
    assert {c.type for c in result.items} == {"candle.1d"}
    assert {s.request.url.path for s in upbit.sent} == {"/v1/candles/days"}


async def test_second_candles_older_than_their_retention_are_reported_uncovered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    recent = seed_candles(NOW - timedelta(minutes=10), 300, timedelta(seconds=1), gaps=0.5)
    upbit = FakeUpbit(candles={"/v1/candles/seconds": recent})
    start, end = NOW - timedelta(days=120), NOW
    async with upbit.client() as client:
        result = await fetch_candles(client, MARKET, "1s", start=start, end=end, now=NOW)
    assert periods_of(result) == expected_periods(recent, start, end)
    assert result.coverage.reason == "rest_window"
    assert result.coverage.uncovered == TimeRange(start, NOW - timedelta(days=89))
    # A recent range with no candles at all is complete: nothing traded.
    async with upbit.client() as client:
        quiet = await fetch_candles(
            client,
            MARKET,
            "1s",
            start=NOW - timedelta(days=2),
            end=NOW - timedelta(days=1),
            now=NOW,
        )
    assert quiet.complete
    assert quiet.items == ()


def test_the_candle_units_follow_the_stream_type_names() -> None:
    names = [unit.candle_type for unit in CANDLE_UNITS.values()]
    assert names[: len(CANDLE_TYPES)] == list(CANDLE_TYPES)
    assert CANDLE_UNITS["240m"].path == "/v1/candles/minutes/240"
    assert CANDLE_UNITS["1s"].path == "/v1/candles/seconds"


async def test_times_in_other_zones_mean_the_same_instant(
    autojump_clock: trio.testing.MockClock,
) -> None:
    kst = timezone(timedelta(hours=9))
    upbit = FakeUpbit(candles={MINUTE_PATH: MINUTES})
    start, end = _at(_days_back(1), 3), _at(_days_back(1), 4)
    async with upbit.client() as client:
        result = await fetch_candles(
            client, MARKET, "1m", start=start.astimezone(kst), end=end.astimezone(kst), now=NOW
        )
    assert periods_of(result) == expected_periods(MINUTES, start, end)
    assert upbit.sent[0].params["to"] == "2026-10-09T04:00:00Z"


# ----------------------------------------------------------------------------------------------
# Row conversion


def test_a_rest_trade_row_becomes_a_trade_model() -> None:
    row = {
        "market": "KRW-BTC",
        "trade_date_utc": "2026-10-10",
        "trade_time_utc": "01:02:03",
        "timestamp": 1_791_594_123_456,
        "trade_price": 106_691_000.0,
        "trade_volume": 0.0005,
        "prev_closing_price": 106_000_000,
        "change_price": 691_000.0,
        "ask_bid": "BID",
        "sequential_id": 17_877_285_547_970_001,
        "brand_new": "kept",
    }
    trade = trade_from_rest(row)
    assert trade == Trade(
        type="trade",
        code="KRW-BTC",
        sequential_id=17_877_285_547_970_001,
        trade_price=106_691_000.0,
        trade_volume=0.0005,
        ask_bid="BID",
        prev_closing_price=106_000_000,
        change_price=691_000.0,
        trade_date="2026-10-10",
        trade_time="01:02:03",
        trade_timestamp=1_791_594_123_456,
        timestamp=1_791_594_123_456,
        stream_type="REST",
    )
    assert trade is not None
    assert dict(trade.extra) == {"brand_new": "kept"}


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"trade_price": None}, "trade_price", None),
        ({"trade_price": "123.5"}, "trade_price", 123.5),
        ({"trade_price": "abc"}, "trade_price", None),
        ({"trade_price": True}, "trade_price", None),
        ({"trade_price": [1]}, "trade_price", None),
        ({"trade_price": 10**400}, "trade_price", None),
        ({"timestamp": "1791594123456"}, "trade_timestamp", 1_791_594_123_456),
        ({"timestamp": 1.5}, "trade_timestamp", None),
        ({"timestamp": None}, "timestamp", None),
        ({"ask_bid": 1}, "ask_bid", None),
        ({"sequential_id": "17877285547970001"}, "sequential_id", 17_877_285_547_970_001),
        ({"sequential_id": 2**70}, "sequential_id", 2**70),
        ({"trade_date_utc": "20261010"}, "trade_date", "2026-10-10"),
        ({"trade_time_utc": "010203"}, "trade_time", "01:02:03"),
        ({"market": None}, "code", "KRW-ETH"),
    ],
)
def test_trade_rows_are_read_tolerantly(change: dict[str, Any], field: str, value: Any) -> None:
    row: dict[str, Any] = {"market": "KRW-BTC", "sequential_id": 1, "timestamp": 5, **change}
    trade = trade_from_rest(row, market="KRW-ETH")
    assert trade is not None
    assert getattr(trade, field) == value


@pytest.mark.parametrize(
    "row",
    [
        {"market": "KRW-BTC", "timestamp": 1},
        {"market": "KRW-BTC", "sequential_id": None},
        {"market": "KRW-BTC", "sequential_id": 1.7e16},
        {"market": "KRW-BTC", "sequential_id": "x1"},
        {"market": "KRW-BTC", "sequential_id": False},
        {"sequential_id": 1},
        [1, 2],
        None,
        "row",
    ],
)
def test_trade_rows_without_identity_give_none(row: Any) -> None:
    assert trade_from_rest(row) is None


def test_a_rest_candle_row_becomes_a_candle_model() -> None:
    row = candle_row(_at(TODAY, 1, 2), random.Random(1), unit=1)
    row["high_price"] = None
    del row["low_price"]
    candle = candle_from_rest(row, "candle.1m")
    assert candle is not None
    assert (candle.type, candle.code, candle.stream_type) == ("candle.1m", MARKET, "REST")
    assert candle.candle_date_time_utc == "2026-10-10T01:02:00"
    assert candle.candle_date_time_kst == "2026-10-10T10:02:00"
    assert (candle.high_price, candle.low_price) == (None, None)
    assert candle.opening_price == row["opening_price"]
    assert candle.timestamp == row["timestamp"]
    assert dict(candle.extra) == {"unit": 1}
    anonymous = candle_from_rest({"trade_price": "7"}, "candle.1d", market="KRW-ETH")
    assert anonymous == Candle(
        type="candle.1d", code="KRW-ETH", trade_price=7.0, stream_type="REST"
    )
    assert candle_from_rest({"trade_price": 1}, "candle.1d") is None
    assert candle_from_rest(["x"], "candle.1d") is None


async def test_candle_rows_without_a_readable_period_are_skipped_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rows = seed_candles(_at(TODAY, 1), 30, timedelta(minutes=1), gaps=0.0)
    rows[5]["candle_date_time_utc"] = "not a time"
    rows[6]["candle_date_time_utc"] = None
    bad = rows[5:7]
    upbit = FakeUpbit()
    upbit.add_script("*", answer(200, list(reversed(rows[7:])) + bad), answer(200, []))
    async with upbit.client() as client:
        result = await fetch_candles(
            client, MARKET, "1m", start=_at(TODAY), end=_at(TODAY, 2), now=NOW
        )
    assert result.skipped_rows == 2
    assert len(result.items) == 23
    assert result.complete
