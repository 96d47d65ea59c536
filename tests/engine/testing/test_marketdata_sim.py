"""The simulation: determinism, rate configuration, and consistency properties (Hypothesis).

Set ``HYPOTHESIS_PROFILE=long`` for many more examples than the CI default.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.testing.marketdata import Listing, MarketEvent, MarketSimulator, default_catalog
from engine.wire.keys import CANDLE_TYPES

_LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
_EXAMPLES = 150 if _LONG else 12
Message = dict[str, Any]
MARKET_TYPES = ("ticker", "trade", "orderbook", *CANDLE_TYPES)
CATALOG = default_catalog(0)
BY_CODE = {listing.market: listing for listing in CATALOG}


def _small_catalog() -> list[Listing]:
    """Majors, thin quiet books, and a BTC pair priced a few satoshi above zero."""
    picked = [BY_CODE[c] for c in ("KRW-BTC", "KRW-DOGE", "KRW-USDT", "BTC-ETH", "USDT-BTC")]
    picked += [x for x in CATALOG if x.activity < 0.01][:3]
    picked += [x for x in CATALOG if x.market.startswith("BTC-") and x.reference_price < 2e-7][:1]
    return picked


SMALL = _small_catalog()


def _frames(sim: MarketSimulator, events: list[MarketEvent]) -> list[bytes]:
    out = []
    for event in events:
        for data_type in MARKET_TYPES:
            message = sim.render_event(event, data_type, units=15)
            if message is not None:
                out.append(orjson.dumps(message))
    return out


def test_same_seed_same_events_and_frames() -> None:
    first = MarketSimulator(SMALL, seed=5, rate_scale=4.0)
    second = MarketSimulator(SMALL, seed=5, rate_scale=4.0)
    a = first.events_until(8.0)
    b = second.events_until(8.0)
    assert len(a) > 100
    assert a == b
    assert _frames(first, a) == _frames(second, b)


def test_different_seeds_differ() -> None:
    a = MarketSimulator(SMALL, seed=5).events_until(10.0)
    b = MarketSimulator(SMALL, seed=6).events_until(10.0)
    assert a != b


def test_rendering_does_not_change_the_simulation() -> None:
    rendering = MarketSimulator(SMALL, seed=9, rate_scale=3.0)
    silent = MarketSimulator(SMALL, seed=9, rate_scale=3.0)
    seen: list[MarketEvent] = []
    for step in range(1, 21):
        events = rendering.events_until(step * 0.5)
        for listing in SMALL:
            for data_type in MARKET_TYPES:
                rendering.render(data_type, listing.market, "SNAPSHOT", units=5)
        _frames(rendering, events)
        seen += events
    assert seen == silent.events_until(10.0)
    for listing in SMALL:
        for data_type in MARKET_TYPES:
            assert rendering.render(data_type, listing.market, "SNAPSHOT") == silent.render(
                data_type, listing.market, "SNAPSHOT"
            )


def test_step_size_does_not_change_the_simulation() -> None:
    coarse = MarketSimulator(SMALL, seed=2, rate_scale=3.0).events_until(12.0)
    fine_sim = MarketSimulator(SMALL, seed=2, rate_scale=3.0)
    fine = [e for i in range(1, 121) for e in fine_sim.events_until(i * 0.1)]
    assert coarse == fine


def test_events_are_ordered_and_stamped() -> None:
    sim = MarketSimulator(SMALL, seed=1, rate_scale=3.0, start_ms=1_800_000_000_000)
    events = sim.events_until(20.0)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(0 < e.at <= 20.0 for e in events)
    assert all(e.timestamp_ms == 1_800_000_000_000 + int(e.at * 1000) for e in events)
    assert sim.now == 20.0
    assert sim.events_until(20.0) == []
    with pytest.raises(ValueError, match="backwards"):
        sim.events_until(19.0)


def test_a_zero_rate_silences_a_pair() -> None:
    sim = MarketSimulator(CATALOG, seed=4, rates={"KRW-BTC": 0.0})
    events = sim.events_until(10.0)
    assert not [e for e in events if e.code == "KRW-BTC"]
    assert [e for e in events if e.code == "KRW-XRP"]
    assert sim.rate("KRW-BTC") == 0.0
    sim.set_rate("KRW-BTC", 10.0)
    later = sim.events_until(20.0)
    assert sum(e.code == "KRW-BTC" for e in later) > 100
    assert all(e.at > 10.0 for e in later)
    sim.set_rate("KRW-XRP", 0)
    assert not [e for e in sim.events_until(30.0) if e.code == "KRW-XRP"]


def test_rate_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="not in the catalog"):
        MarketSimulator(SMALL, rates={"KRW-NOPE": 1.0})
    sim = MarketSimulator(SMALL)
    with pytest.raises(ValueError, match="not in the simulator's catalog"):
        sim.set_rate("KRW-NOPE", 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        sim.set_rate("KRW-BTC", -1.0)


def test_rates_follow_the_configuration() -> None:
    duration = 100.0
    base = Counter(e.code for e in MarketSimulator(SMALL, seed=8).events_until(duration))
    double = Counter(
        e.code for e in MarketSimulator(SMALL, seed=8, rate_scale=2.0).events_until(duration)
    )
    busy = ("KRW-BTC", "KRW-DOGE", "KRW-USDT")
    assert 1.8 <= sum(double[c] for c in busy) / sum(base[c] for c in busy) <= 2.2
    # Each pair emits about twice its trade rate in events (trades plus book-only changes).
    expected = BY_CODE["KRW-BTC"].activity * 2 * duration
    assert abs(base["KRW-BTC"] - expected) < 0.1 * expected
    trades = MarketSimulator(SMALL, seed=8, rates={"BTC-ETH": 4.0}).events_until(duration)
    count = sum(1 for e in trades if e.code == "BTC-ETH" and "trade" in e.kinds)
    assert abs(count - 4.0 * duration) < 0.15 * 4.0 * duration


def test_default_traffic_busy_majors_and_quiet_tail() -> None:
    events = MarketSimulator(CATALOG, seed=0).events_until(30.0)
    per_code = Counter(e.code for e in events)
    assert per_code["KRW-BTC"] > 30 * 8  # several trades a second, twice as many events
    assert len(per_code) > len(CATALOG) / 6  # the tail shows up too, if rarely
    quiet = [x.market for x in CATALOG if x.activity < 0.01]
    assert sum(per_code[c] for c in quiet) < 2 * len(quiet)


def test_candle_pushes_are_throttled_per_pair() -> None:
    sim = MarketSimulator([BY_CODE["KRW-BTC"]], seed=3, rate_scale=5.0)
    events = sim.events_until(20.0)
    pushes = [e.timestamp_ms for e in events if "candle" in e.kinds]
    trades = [e for e in events if "trade" in e.kinds]
    assert len(trades) > 5 * len(pushes) > 0
    assert all(b - a >= 1000 for a, b in itertools.pairwise(pushes))
    every = MarketSimulator([BY_CODE["KRW-BTC"]], seed=3, candle_interval_ms=0)
    assert all("candle" in e.kinds for e in every.events_until(5.0) if "trade" in e.kinds)


def test_a_new_utc_day_resets_the_day_statistics() -> None:
    midnight = 1_790_035_200_000  # 2026-09-22T00:00:00Z
    sim = MarketSimulator([BY_CODE["KRW-BTC"]], seed=1, start_ms=midnight - 5_000)
    before = [e for e in sim.events_until(4.9) if "trade" in e.kinds]
    after = [e for e in sim.events_until(10.0) if "trade" in e.kinds]
    last = sim.render_event(before[-1], "ticker")
    assert last is not None
    first_today = next(e for e in after if e.timestamp_ms - 60 > midnight)
    ticker = sim.render_event(first_today, "ticker")
    assert ticker is not None
    assert ticker["trade_date"] == "20260922"
    days_trades = [
        sim.render_event(e, "trade") for e in after if e.timestamp_ms <= first_today.timestamp_ms
    ]
    today = [t for t in days_trades if t is not None and t["trade_date"] == "2026-09-22"]
    assert ticker["acc_trade_volume"] == pytest.approx(sum(t["trade_volume"] for t in today))  # type: ignore[misc]
    assert ticker["opening_price"] == today[0]["trade_price"]
    yesterday = [t for t in days_trades if t is not None and t["trade_date"] == "2026-09-21"]
    closing = yesterday[-1]["trade_price"] if yesterday else last["trade_price"]
    assert ticker["prev_closing_price"] == closing


def _ev(sim: MarketSimulator, event: MarketEvent, data_type: str, units: int = 30) -> Message:
    message = sim.render_event(event, data_type, units=units)
    assert message is not None
    return message


def _now(sim: MarketSimulator, code: str, data_type: str) -> Message:
    message = sim.render(data_type, code, "SNAPSHOT")
    assert message is not None
    return message


def _on_grid(price: float, tick: float) -> bool:
    return Decimal(repr(price)) % Decimal(repr(tick)) == 0


def _check_book(book: Message, units: int, tick: float) -> None:
    rows = book["orderbook_units"]
    assert isinstance(rows, list)
    assert len(rows) == units
    asks = [r["ask_price"] for r in rows]
    bids = [r["bid_price"] for r in rows]
    live_asks = [p for p in asks if p > 0]
    live_bids = [p for p in bids if p > 0]
    # Zero padding only at the tail of a thin side.
    assert asks[: len(live_asks)] == live_asks
    assert bids[: len(live_bids)] == live_bids
    assert all(r["ask_size"] == 0 for r in rows[len(live_asks) :])
    assert all(r["bid_size"] == 0 for r in rows[len(live_bids) :])
    assert live_asks == sorted(set(live_asks))
    assert live_bids == sorted(set(live_bids), reverse=True)
    assert live_asks
    if live_bids:
        assert live_asks[0] > live_bids[0]
    assert all(_on_grid(p, tick) for p in live_asks + live_bids)


@settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32),
    steps=st.lists(st.floats(0.05, 1.5), min_size=1, max_size=6),
    units=st.sampled_from([1, 5, 15, 30]),
)
def test_consistency_properties(seed: int, steps: list[float], units: int) -> None:
    sim = MarketSimulator(SMALL, seed=seed, rate_scale=4.0, candle_interval_ms=0)
    ticks = {x.market: x.tick_size for x in SMALL}
    previous = {x.market: {t: _now(sim, x.market, t) for t in MARKET_TYPES} for x in SMALL}
    seen_ids: set[int] = set()
    last_ms = 0
    now = 0.0
    for step in steps:
        now += step
        for event in sim.events_until(now):
            assert event.timestamp_ms >= last_ms
            last_ms = event.timestamp_ms
            before = previous[event.code]
            _check_book(_ev(sim, event, "orderbook", units), units, ticks[event.code])
            full = _ev(sim, event, "orderbook")
            if "trade" not in event.kinds:
                assert event.kinds == frozenset({"orderbook"})
                before["orderbook"] = full
                continue
            trade = _ev(sim, event, "trade")
            ticker = _ev(sim, event, "ticker")
            # Trades move the ticker.
            assert ticker["trade_price"] == trade["trade_price"]
            assert ticker["trade_volume"] == trade["trade_volume"]
            assert ticker["trade_timestamp"] == trade["trade_timestamp"]
            for key in ("acc_trade_volume", "acc_trade_volume_24h"):
                expected = before["ticker"][key] + trade["trade_volume"]
                assert ticker[key] == pytest.approx(expected)
            side_volume = "acc_bid_volume" if trade["ask_bid"] == "BID" else "acc_ask_volume"
            expected = before["ticker"][side_volume] + trade["trade_volume"]
            assert ticker[side_volume] == pytest.approx(expected)
            assert ticker["low_price"] <= ticker["trade_price"] <= ticker["high_price"]
            assert (
                ticker["lowest_52_week_price"]
                <= ticker["trade_price"]
                <= ticker["highest_52_week_price"]
            )
            diff = Decimal(repr(trade["trade_price"])) - Decimal(repr(trade["prev_closing_price"]))
            assert trade["change"] == ("RISE" if diff > 0 else "FALL" if diff < 0 else "EVEN")
            assert ticker["change"] == trade["change"]
            assert Decimal(repr(trade["change_price"])) == abs(diff)
            assert ticker["signed_change_price"] == pytest.approx(float(diff))
            # A buy lifts the best ask, a sell hits the best bid of the book before the trade.
            side = "ask_price" if trade["ask_bid"] == "BID" else "bid_price"
            assert trade["trade_price"] == before["orderbook"]["orderbook_units"][0][side]
            # The trade's best quotes are the book right after it.
            best = full["orderbook_units"][0]
            assert trade["best_ask_price"] == best["ask_price"]
            assert trade["best_bid_price"] == best["bid_price"]
            assert trade["best_ask_size"] == best["ask_size"]
            assert trade["sequential_id"] not in seen_ids
            seen_ids.add(trade["sequential_id"])
            for data_type in CANDLE_TYPES:
                candle = _ev(sim, event, data_type)
                high, low = candle["high_price"], candle["low_price"]
                opening, close = candle["opening_price"], candle["trade_price"]
                assert high >= max(opening, close) >= min(opening, close) >= low
                assert close == trade["trade_price"]
                old = before[data_type]
                volume = candle["candle_acc_trade_volume"]
                if old["candle_date_time_utc"] == candle["candle_date_time_utc"]:
                    expected = old["candle_acc_trade_volume"] + trade["trade_volume"]
                    assert volume == pytest.approx(expected)
                    assert opening == old["opening_price"]
                else:
                    assert old["candle_date_time_utc"] < candle["candle_date_time_utc"]
                    assert volume == trade["trade_volume"]
                before[data_type] = candle
            before["ticker"] = ticker
            before["trade"] = trade
            before["orderbook"] = full


def test_sequential_ids_are_unique_over_many_events() -> None:
    sim = MarketSimulator(CATALOG, seed=12, rate_scale=10.0)
    seeded = [sim.render("trade", x.market, "SNAPSHOT") for x in CATALOG]
    ids = [
        t["sequential_id"]
        for e in sim.events_until(5.0)
        if "trade" in e.kinds and (t := sim.render_event(e, "trade")) is not None
    ]
    assert len(ids) > 3_000
    everything = ids + [t["sequential_id"] for t in seeded if t is not None]
    assert len(set(everything)) == len(everything)


def test_the_price_walks_but_stays_near_its_anchor() -> None:
    listing = BY_CODE["KRW-ETH"]
    sim = MarketSimulator([listing], seed=21)
    prices = {
        t["trade_price"]
        for e in sim.events_until(600.0)
        if "trade" in e.kinds and (t := sim.render_event(e, "trade")) is not None
    }
    assert len(prices) > 20
    assert max(abs(p / listing.reference_price - 1) for p in prices) < 0.05
    # The walk is sized per rate: ten times the trades still move the price by little.
    fast = MarketSimulator([listing], seed=21, rate_scale=10.0)
    fast_prices = [
        t["trade_price"]
        for e in fast.events_until(60.0)
        if "trade" in e.kinds and (t := fast.render_event(e, "trade")) is not None
    ]
    assert len(fast_prices) > 2_000
    assert max(fast_prices) / min(fast_prices) < 1.02
