"""The emulator's REST candles are made of exactly the trades its market made.

``GET /v1/candles/{seconds, minutes/N, days, weeks, months, years}`` (docs/UPBIT.md, Quotation
REST for history): aggregation, empty periods, ``to`` (exclusive, ISO 8601, any offset),
``count``, the fields of each kind, and periods the retention has partly forgotten.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Sequence
from decimal import Decimal

import httpx
import trio
from trio.testing import MockClock

from engine.testing import TradeRecord, TradeRetention

from ._wire import emulator

CODE = "KRW-BTC"
BASE_FIELDS = [
    "market",
    "candle_date_time_utc",
    "candle_date_time_kst",
    "opening_price",
    "high_price",
    "low_price",
    "trade_price",
    "timestamp",
    "candle_acc_trade_price",
    "candle_acc_trade_volume",
]


def _utc_ms(text: str) -> int:
    moment = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _text(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def _candles(
    http: httpx.AsyncClient, path: str, **params: str | int
) -> list[dict[str, object]]:
    response = await http.get(f"/v1/candles/{path}", params={"market": CODE, **params})
    assert response.status_code == 200, response.text
    assert response.headers["remaining-req"].startswith("group=candle;")
    body = response.json()
    assert isinstance(body, list)
    return body


def _expected(trades: Sequence[TradeRecord], start: int) -> dict[str, object]:
    """The candle of ``trades`` (one period, oldest first), computed independently."""
    prices = [trade.trade_price for trade in trades]
    volume = sum((Decimal(repr(t.trade_volume)) for t in trades), Decimal(0))
    amount = sum(
        (Decimal(repr(t.trade_price)) * Decimal(repr(t.trade_volume)) for t in trades), Decimal(0)
    )
    return {
        "market": CODE,
        "candle_date_time_utc": _text(start),
        "candle_date_time_kst": _text(start + 9 * 3_600_000),
        "opening_price": prices[0],
        "high_price": max(prices),
        "low_price": min(prices),
        "trade_price": prices[-1],
        "timestamp": trades[-1].timestamp,
        "candle_acc_trade_price": float(amount),
        "candle_acc_trade_volume": float(volume),
    }


def _periods(trades: Sequence[TradeRecord], length: int) -> dict[int, list[TradeRecord]]:
    """Trades grouped by the start of their ``length``-ms period, oldest first."""
    grouped: dict[int, list[TradeRecord]] = {}
    for trade in trades:
        grouped.setdefault(trade.trade_timestamp - trade.trade_timestamp % length, []).append(trade)
    return grouped


async def test_minute_candles_aggregate_the_trades_exactly(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        await trio.sleep(300)
        emu.set_rate(CODE, 0)  # hold the history still
        await trio.sleep(1)
        made = emu.trades_made(CODE)
        for unit in (1, 3, 5):
            candles = await _candles(http, f"minutes/{unit}", count=200)
            periods = _periods(made, unit * 60_000)
            assert len(candles) == len(periods)  # one per period with trades, nothing else
            starts = sorted(periods, reverse=True)
            for candle, start in zip(candles, starts, strict=True):
                assert list(candle) == [*BASE_FIELDS, "unit"]
                assert candle == {**_expected(periods[start], start), "unit": unit}
        # Nothing remembered was dropped or counted twice.
        candles = await _candles(http, "minutes/1", count=200)
        volume = sum(Decimal(repr(c["candle_acc_trade_volume"])) for c in candles)
        assert volume == sum(Decimal(repr(t.trade_volume)) for t in made)


async def test_periods_without_trades_have_no_candle(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        await trio.sleep(120)
        emu.set_rate(CODE, 0)
        silent_from = emu.market_now_ms
        await trio.sleep(200)
        emu.set_rate(CODE, 8.0)
        await trio.sleep(120)
        emu.set_rate(CODE, 0)
        await trio.sleep(1)
        candles = await _candles(http, "minutes/1", count=200)
        starts = [_utc_ms(str(c["candle_date_time_utc"])) for c in candles]
        assert starts == sorted(_periods(emu.trades_made(CODE), 60_000), reverse=True)
        # At least two whole minutes of the silence are missing, not filled.
        gaps = [newer - older for newer, older in itertools.pairwise(starts)]
        assert max(gaps) >= 3 * 60_000
        # Trades stop at silent_from and resume 200 s later, so no minute starts in between
        # but possibly the one (at most 60 s before the resumption) the first new trade is in.
        assert not any(silent_from < start < silent_from + 140_000 for start in starts)


async def test_to_is_exclusive_in_any_offset_and_count_is_bounded(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        emu.set_limits(False)
        await trio.sleep(300)
        emu.set_rate(CODE, 0)
        await trio.sleep(1)
        latest = await _candles(http, "minutes/1")
        assert len(latest) == 1  # count defaults to 1: the newest candle
        everything = await _candles(http, "minutes/1", count=200)
        assert latest[0] == everything[0]
        middle = str(everything[2]["candle_date_time_utc"])  # yyyy-MM-ddTHH:mm:ss, UTC
        moment = datetime.datetime.fromisoformat(middle).replace(tzinfo=datetime.UTC)
        # ``to`` at a period start excludes that period ...
        for to in (
            f"{middle}Z",
            middle,  # no offset: UTC
            middle.replace("T", " "),
            moment.astimezone(datetime.timezone(datetime.timedelta(hours=9))).isoformat(),
        ):
            assert await _candles(http, "minutes/1", count=2, to=to) == everything[3:5], to
        # ... and inside a period includes it (its start is before ``to``).
        inside = (moment + datetime.timedelta(seconds=30)).isoformat()
        assert await _candles(http, "minutes/1", count=2, to=inside) == everything[2:4]
        seconds = await _candles(http, "seconds", count=200)
        assert len(seconds) == 200
        assert all(list(candle) == BASE_FIELDS for candle in seconds)  # no unit
        starts = [str(candle["candle_date_time_utc"]) for candle in seconds]
        assert starts == sorted(starts, reverse=True)
        assert len(set(starts)) == 200
        for count in (201, 0):
            params = {"market": CODE, "count": count}
            response = await http.get("/v1/candles/seconds", params=params)
            assert response.status_code == 400
        bad_to = await http.get("/v1/candles/days", params={"market": CODE, "to": "yesterday"})
        assert bad_to.status_code == 400
        assert bad_to.json()["error"]["name"] == 400


async def test_day_week_month_year_candles(autojump_clock: MockClock) -> None:
    start = _utc_ms("2026-09-30T23:58:00")  # a Wednesday, the last day of a month
    async with (
        emulator(market_start_ms=start) as emu,
        httpx.AsyncClient(base_url=emu.rest_url) as http,
    ):
        await trio.sleep(240)
        emu.set_rate(CODE, 0)
        await trio.sleep(1)
        made = emu.trades_made(CODE)
        october = _utc_ms("2026-10-01T00:00:00")
        days = await _candles(http, "days", count=10)
        assert [c["candle_date_time_utc"] for c in days] == [
            "2026-10-01T00:00:00",
            "2026-09-30T00:00:00",
        ]
        assert days[0]["candle_date_time_kst"] == "2026-10-01T09:00:00"
        assert list(days[0]) == [
            *BASE_FIELDS,
            "prev_closing_price",
            "change_price",
            "change_rate",
        ]
        today = [t for t in made if t.trade_timestamp >= october]
        assert {**days[0], "prev_closing_price": 0, "change_price": 0, "change_rate": 0} == {
            **_expected(today, october),
            "prev_closing_price": 0,
            "change_price": 0,
            "change_rate": 0,
        }
        # The previous close is the last trade of the day before.
        assert days[0]["prev_closing_price"] == days[1]["trade_price"]
        change = float(str(days[0]["trade_price"])) - float(str(days[0]["prev_closing_price"]))
        assert days[0]["change_price"] == change
        assert days[0]["change_rate"] == round(change / float(str(days[1]["trade_price"])), 10)
        weeks = await _candles(http, "weeks", count=10)
        assert [(c["candle_date_time_utc"], c["first_day_of_period"]) for c in weeks] == [
            ("2026-09-28T00:00:00", "2026-09-28")  # the Monday
        ]
        assert (
            weeks[0]["candle_acc_trade_volume"]
            == _expected(made, _utc_ms("2026-09-28T00:00:00"))["candle_acc_trade_volume"]
        )
        months = await _candles(http, "months", count=10)
        assert [(c["candle_date_time_utc"], c["first_day_of_period"]) for c in months] == [
            ("2026-10-01T00:00:00", "2026-10-01"),
            ("2026-09-01T00:00:00", "2026-09-01"),
        ]
        years = await _candles(http, "years", count=10)
        assert [(c["candle_date_time_utc"], c["first_day_of_period"]) for c in years] == [
            ("2026-01-01T00:00:00", "2026-01-01")
        ]
        assert list(years[0]) == [*BASE_FIELDS, "first_day_of_period"]


async def test_partly_forgotten_periods_are_not_served(autojump_clock: MockClock) -> None:
    retention = TradeRetention(seconds=90.0)
    async with (
        emulator(trade_retention=retention) as emu,
        httpx.AsyncClient(base_url=emu.rest_url) as http,
    ):
        await trio.sleep(400)
        emu.set_rate(CODE, 0)
        await trio.sleep(1)
        made = emu.trades_made(CODE)
        candles = await _candles(http, "minutes/1", count=200)
        periods = _periods(made, 60_000)
        oldest = min(periods)
        # The oldest remembered minute lost its first trades: it is not served.
        assert len(candles) == len(periods) - 1
        assert _utc_ms(str(candles[-1]["candle_date_time_utc"])) > oldest
        for candle in candles:
            start = _utc_ms(str(candle["candle_date_time_utc"]))
            assert candle == {**_expected(periods[start], start), "unit": 1}
        assert await _candles(http, "days") == []  # the day is not whole any more


async def test_candle_paths_and_errors(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        emu.set_limits(False)
        await trio.sleep(5)
        bad_unit = await http.get("/v1/candles/minutes/2", params={"market": CODE})
        assert bad_unit.status_code == 400
        assert bad_unit.json()["error"]["name"] == 400
        assert (await http.get("/v1/candles/hours", params={"market": CODE})).status_code == 404
        unknown = await http.get("/v1/candles/minutes/1", params={"market": "KRW-NOPE"})
        assert unknown.json() == {"error": {"name": 404, "message": "Code not found"}}
        assert (await http.get("/v1/candles/days")).status_code == 400
        for unit in (1, 3, 5, 10, 15, 30, 60, 240):
            (candle,) = await _candles(http, f"minutes/{unit}")
            assert candle["unit"] == unit


def test_periods_follow_the_utc_calendar() -> None:
    from engine.testing.emulator.candles import Period, period_of

    moment = _utc_ms("2026-12-31T23:59:59.500")
    cases = {
        "seconds": ("2026-12-31T23:59:59", "2027-01-01T00:00:00"),
        "minutes/240": ("2026-12-31T20:00:00", "2027-01-01T00:00:00"),
        "days": ("2026-12-31T00:00:00", "2027-01-01T00:00:00"),
        "weeks": ("2026-12-28T00:00:00", "2027-01-04T00:00:00"),  # Mondays
        "months": ("2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        "years": ("2026-01-01T00:00:00", "2027-01-01T00:00:00"),
    }
    for path, (start, after) in cases.items():
        period = period_of(path)
        assert isinstance(period, Period), path
        assert period.start(moment) == _utc_ms(start), path
        assert period.next_start(period.start(moment)) == _utc_ms(after), path
    assert (
        period_of("minutes/7") == "minute unit must be one of 1, 3, 5, 10, 15, 30, 60, 240, got '7'"
    )
    assert period_of("hours") is None
    assert period_of("days/1") is None
