"""One simulated pair: order book, last trade, day statistics and candles (sans-IO).

All quantities are integers so that the hot path never calls ``round``: prices on the pair's grid
(``units / scale`` is the price, see ``_md_ladder``), sizes and volumes in 1e-8 of the base asset
(``VOLUME_SCALE``), traded amounts in ``1 / (scale * VOLUME_SCALE)`` of the quote currency. An
integer divided by a power of ten gives the nearest double, so frames show clean decimals.

Every change replaces immutable records (``Book``, ``Tick``, the candle tuple) instead of mutating
them, so an event keeps a reference to the state it produced and can be rendered later for free.

The market model is deliberately small:

- the book holds up to ``depth`` levels a side, best first, with random gaps between levels;
- a trade takes liquidity from the best level of the opposite side (a buy lifts the best ask),
  removing the level when it is used up, which moves the price by at least one tick;
- a quote change resizes a level, improves a side inside the spread, or cancels a best level;
- every choice leans towards the pair's anchor price, so the walk stays near it for hours.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from engine.testing.marketdata.clock import (
    DAY_MS,
    KST_OFFSET_MS,
    date_dashed,
    date_time,
    trade_strings,
)

__all__ = ("CANDLE_UNITS", "MAX_DEPTH", "VOLUME_SCALE", "Book", "Candle", "Pair", "Tick")

#: (message type, bucket length in ms) for the nine candle types, shortest first.
CANDLE_UNITS: tuple[tuple[str, int], ...] = (
    ("candle.1s", 1_000),
    ("candle.1m", 60_000),
    ("candle.3m", 180_000),
    ("candle.5m", 300_000),
    ("candle.10m", 600_000),
    ("candle.15m", 900_000),
    ("candle.30m", 1_800_000),
    ("candle.60m", 3_600_000),
    ("candle.240m", 14_400_000),
)
_UNIT_MS = tuple(ms for _, ms in CANDLE_UNITS)

MAX_DEPTH = 30  # levels a side, the most Upbit sends
VOLUME_SCALE = 10**8  # sizes are integers of 1e-8 base asset, Upbit's volume precision
_BUSY = 0.2  # trades per second from which a pair keeps a full book and a one-tick spread
_MAX_BIAS = 0.25  # the most the anchor may tilt a buy/sell or improve/cancel coin flip
_REVERSION = 4.0  # bias per relative deviation from the anchor (6 % off -> full tilt)
_SIZE_SIGMA = 0.8
_TRADE_SIGMA = 1.0
_TRADE_TO_LEVEL = 0.05  # median trade size relative to the median level size
_MAX_GAP_MEAN = 3.0  # mean extra ticks between resting levels on the finest grids
_CANCEL_SHARE = 0.15  # book changes that cancel a best level
_SHIFT_SHARE = 0.15  # book changes that move the whole book (the price walk proper)
_HOURLY_VOLATILITY = 0.006  # relative price move per hour the shifts add up to
_LONG_RUN_DEVIATION = 0.03  # spread of the price around the anchor over days
_IMPROVE_BASE = 0.3  # chance a book change improves a spread wider than one tick...
_IMPROVE_PER_TICK = 0.1  # ...plus this per free tick inside it, up to five
# Median notional of one book level on a quiet pair, in quote currency.
_LEVEL_NOTIONAL = {"KRW": 1_000_000.0, "BTC": 0.01, "USDT": 700.0}
_DEFAULT_NOTIONAL = 1_000.0
# Sizes come from a per-pair table of lognormal draws (one getrandbits call instead of a
# gauss + exp per draw); the high bits stretch the entry by up to +100 % so values never repeat.
_TABLE_BITS = 6
_TABLE_MASK = (1 << _TABLE_BITS) - 1
_STRETCH_BITS = 10
_NO_CANDLE_YET = -(10**18)

_new_tuple = tuple.__new__


class Book(NamedTuple):
    """Both sides of the book at one moment, best level first."""

    ask_prices: tuple[int, ...]  # ascending
    ask_sizes: tuple[int, ...]
    bid_prices: tuple[int, ...]  # descending, all > 0
    bid_sizes: tuple[int, ...]
    timestamp: int


class Tick(NamedTuple):
    """The last trade and the day statistics right after it (ticker and trade frames)."""

    price: int
    volume: int
    ask_bid: str
    trade_timestamp: int
    timestamp: int
    sequential_id: int
    best_ask_price: int
    best_ask_size: int
    best_bid_price: int
    best_bid_size: int
    prev_close: int
    open: int
    high: int
    low: int
    acc_volume: int
    acc_amount: int
    acc_volume_24h: int
    acc_amount_24h: int
    acc_ask_volume: int
    acc_bid_volume: int
    high_52w: int
    high_52w_date: str
    low_52w: int
    low_52w_date: str
    date_compact: str
    date_dashed: str
    time_compact: str
    time_colon: str


class Candle(NamedTuple):
    start: int
    utc: str
    kst: str
    open: int
    high: int
    low: int
    close: int
    volume: int
    amount: int
    timestamp: int


def _size_table(rng: random.Random, median: float, sigma: float) -> tuple[int, ...]:
    mu = math.log(median * VOLUME_SCALE)
    return tuple(max(1, int(rng.lognormvariate(mu, sigma))) for _ in range(1 << _TABLE_BITS))


class Pair:
    """Mutable state of one pair. ``book``, ``tick`` and ``candles`` are its current records."""

    __slots__ = (
        "_acc_amount",
        "_acc_amount_24h",
        "_acc_ask",
        "_acc_bid",
        "_acc_volume",
        "_acc_volume_24h",
        "_anchor",
        "_ap",
        "_asz",
        "_bp",
        "_bsz",
        "_day",
        "_gap_rate",
        "_h52",
        "_h52_date",
        "_high",
        "_l52",
        "_l52_date",
        "_lag",
        "_last_candle",
        "_level_sizes",
        "_low",
        "_open",
        "_prev_close",
        "_shift_pull",
        "_shift_sigma",
        "_trade_sizes",
        "amount_scale",
        "book",
        "candles",
        "code",
        "depth",
        "index",
        "market_warning",
        "scale",
        "tick",
        "tick_units",
    )

    def __init__(
        self,
        *,
        index: int,
        code: str,
        decimals: int,
        tick_units: int,
        reference_units: int,
        activity: float,
        warning: bool,
        rng: random.Random,
        start_ms: int,
    ) -> None:
        self.index = index
        self.code = code
        # The deprecated ticker field still tells a warning pair apart (NONE / CAUTION).
        self.market_warning = "CAUTION" if warning else "NONE"
        self.scale = 10**decimals
        self.amount_scale = self.scale * VOLUME_SCALE
        self.tick_units = tu = tick_units
        anchor = max(10 * tu, reference_units - reference_units % tu)
        self._anchor = anchor
        notional = _LEVEL_NOTIONAL.get(code.partition("-")[0], _DEFAULT_NOTIONAL)
        busy = activity >= _BUSY
        level_median = notional * (0.3 + 2.0 * min(activity, 3.0)) / (anchor / self.scale)
        self._level_sizes = _size_table(rng, level_median, _SIZE_SIGMA)
        self._trade_sizes = _size_table(rng, level_median * _TRADE_TO_LEVEL, _TRADE_SIGMA)
        self.depth = MAX_DEPTH if busy else rng.randint(4, 25)
        # Fine grids (many ticks per price) leave gaps between resting orders; coarse ones don't.
        gap_mean = min(_MAX_GAP_MEAN, anchor / tu / 20_000) + (0.0 if busy else 1.5)
        self._gap_rate = 1.0 / gap_mean if gap_mean > 0.05 else 0.0
        self._lag = rng.randint(3, 60)
        self.set_pace(activity)

        spread = 1 if busy else 1 + int(rng.expovariate(1.0))
        self._ap: list[int] = [anchor + spread * tu]
        self._asz: list[int] = [self._draw(rng, self._level_sizes)]
        self._bp: list[int] = [anchor]
        self._bsz: list[int] = [self._draw(rng, self._level_sizes)]
        self._refill_asks(rng)
        self._refill_bids(rng)
        self._seed_history(rng, activity, start_ms)

    def set_pace(self, trades_per_second: float) -> None:
        """Size the price walk for this rate, so volatility per hour does not depend on it.

        Whole-book shifts are a Gaussian walk in ticks whose steps over one hour add up to
        _HOURLY_VOLATILITY, with a pull to the anchor (an Ornstein-Uhlenbeck step) whose
        equilibrium spread is _LONG_RUN_DEVIATION.
        """
        shifts_per_hour = max(trades_per_second, 1e-3) * 3600 * _SHIFT_SHARE
        relative_sigma = _HOURLY_VOLATILITY / math.sqrt(shifts_per_hour)
        self._shift_sigma = relative_sigma * self._anchor / self.tick_units
        self._shift_pull = relative_sigma**2 / (2 * _LONG_RUN_DEVIATION**2)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _draw(rng: random.Random, table: tuple[int, ...]) -> int:
        bits = rng.getrandbits(_TABLE_BITS + _STRETCH_BITS)
        stretch = (1 << _STRETCH_BITS) + (bits >> _TABLE_BITS)
        return max(1, table[bits & _TABLE_MASK] * stretch >> _STRETCH_BITS)

    def _gap(self, rng: random.Random) -> int:
        if self._gap_rate:
            return self.tick_units * (1 + int(rng.expovariate(self._gap_rate)))
        return self.tick_units

    def _on_grid(self, value: float) -> int:
        tu = self.tick_units
        return max(tu, round(value / tu) * tu)

    def _bias(self) -> float:
        """Positive when the price sits below the anchor (buying, lifting asks more likely)."""
        mid = self._ap[0] if not self._bp else (self._ap[0] + self._bp[0]) / 2
        tilt = (self._anchor - mid) / self._anchor * _REVERSION
        return _MAX_BIAS if tilt > _MAX_BIAS else -_MAX_BIAS if tilt < -_MAX_BIAS else tilt

    def _refill_asks(self, rng: random.Random) -> None:
        ap, asz = self._ap, self._asz
        while len(ap) < self.depth:
            if ap:
                ap.append(ap[-1] + self._gap(rng))
            else:
                ap.append(self._bp[0] + self.tick_units if self._bp else self._anchor)
            asz.append(self._draw(rng, self._level_sizes))

    def _refill_bids(self, rng: random.Random) -> None:
        bp, bsz = self._bp, self._bsz
        while len(bp) < self.depth:
            price = bp[-1] - self._gap(rng) if bp else self._ap[0] - self.tick_units
            if price <= 0:
                break  # the bid side of a near-zero price stays thin; render pads it with zeros
            bp.append(price)
            bsz.append(self._draw(rng, self._level_sizes))

    def _publish_book(self, timestamp: int) -> None:
        fields = (tuple(self._ap), tuple(self._asz), tuple(self._bp), tuple(self._bsz), timestamp)
        self.book = _new_tuple(Book, fields)

    # -- initial state ---------------------------------------------------------------------------

    def _seed_history(self, rng: random.Random, activity: float, start_ms: int) -> None:
        """A plausible past: a last trade before ``start_ms``, the day so far, 52-week range."""
        ago = min(3_600.0, rng.expovariate(max(activity, 1e-3)))
        at = start_ms - 1 - self._lag - int(ago * 1000)
        buy = rng.random() < 0.5
        price = self._ap[0] if buy else self._bp[0]
        volume = self._draw(rng, self._trade_sizes)
        self._day = at // DAY_MS
        self._prev_close = self._on_grid(self._anchor * (1.0 + rng.gauss(0.0, 0.025)))
        self._open = self._prev_close
        high = self._on_grid(max(self._open, price) * (1.0 + rng.uniform(0.0, 0.02)))
        low = self._on_grid(min(self._open, price) * (1.0 - rng.uniform(0.0, 0.02)))
        self._high = max(high, self._open, price)
        self._low = min(low, self._open, price)
        mean_trade = sum(self._trade_sizes) / len(self._trade_sizes) * 1.5
        daily = activity * 86_400 * mean_trade
        elapsed = (at % DAY_MS) / DAY_MS
        self._acc_volume = int(daily * elapsed * rng.uniform(0.7, 1.3)) + volume
        self._acc_amount = self._acc_volume * price
        self._acc_volume_24h = max(int(daily * rng.uniform(0.8, 1.2)), self._acc_volume)
        self._acc_amount_24h = self._acc_volume_24h * price
        self._acc_ask = int(self._acc_volume * rng.uniform(0.4, 0.6))
        self._acc_bid = self._acc_volume - self._acc_ask
        self._h52 = max(self._high, self._on_grid(price * rng.uniform(1.1, 3.0)))
        self._h52_date = date_dashed(at - rng.randint(1, 360) * DAY_MS)
        self._l52 = min(self._low, self._on_grid(price * rng.uniform(0.3, 0.9)))
        self._l52_date = date_dashed(at - rng.randint(1, 360) * DAY_MS)
        # Distinct per index; the simulator starts live ids above the largest of these.
        sequential_id = at * 10_000 + self.index % 10_000
        self._publish_book(at + self._lag)
        side = "BID" if buy else "ASK"
        self.tick = self._make_tick(price, volume, side, at, at + self._lag, sequential_id)
        candles = []
        for unit_ms in _UNIT_MS:
            start = at - at % unit_ms
            drift = rng.gauss(0.0, 0.002 * math.sqrt(unit_ms / 60_000))
            opening = price if unit_ms == 1_000 else self._on_grid(price * (1.0 + drift))
            candle_volume = int(volume * (1.0 + activity * (at - start) / 1000))
            candles.append(
                Candle(
                    start,
                    date_time(start),
                    date_time(start + KST_OFFSET_MS),
                    opening,
                    max(opening, price),
                    min(opening, price),
                    price,
                    candle_volume,
                    candle_volume * price,
                    at + self._lag,
                )
            )
        self.candles: tuple[Candle, ...] = tuple(candles)
        self._last_candle = _NO_CANDLE_YET

    def _make_tick(
        self, price: int, volume: int, ask_bid: str, traded: int, stamp: int, sequential_id: int
    ) -> Tick:
        ap, asz, bp, bsz = self._ap, self._asz, self._bp, self._bsz
        compact, dashed, time_compact, time_colon = trade_strings(traded)
        fields = (
            price,
            volume,
            ask_bid,
            traded,
            stamp,
            sequential_id,
            ap[0] if ap else 0,
            asz[0] if asz else 0,
            bp[0] if bp else 0,
            bsz[0] if bsz else 0,
            self._prev_close,
            self._open,
            self._high,
            self._low,
            self._acc_volume,
            self._acc_amount,
            self._acc_volume_24h,
            self._acc_amount_24h,
            self._acc_ask,
            self._acc_bid,
            self._h52,
            self._h52_date,
            self._l52,
            self._l52_date,
            compact,
            dashed,
            time_compact,
            time_colon,
        )
        return _new_tuple(Tick, fields)  # skips NamedTuple's Python-level __new__

    # -- events ----------------------------------------------------------------------------------

    def trade(self, rng: random.Random, at: int, min_sid: int, candle_gap_ms: int) -> bool:
        """One trade reported at epoch ms ``at``; True when the candles are due for a push.

        The trade itself happened the pair's lag earlier (``trade_timestamp``); frames carry
        ``at``. Its ``sequential_id`` is ``trade_timestamp * 10_000``, raised to ``min_sid`` when
        that is larger, so ids never repeat across the simulator.
        """
        traded = at - self._lag
        buy = not self._bp or rng.random() < 0.5 + self._bias()
        price, volume = self._take(rng, buy)
        amount = price * volume
        self._count(price, volume, amount, buy, traded)
        self._publish_book(at)
        sid = max(traded * 10_000, min_sid)
        self.tick = self._make_tick(price, volume, "BID" if buy else "ASK", traded, at, sid)
        self.candles = self._roll_candles(price, volume, amount, traded, at)
        if at - self._last_candle >= candle_gap_ms:
            self._last_candle = at
            return True
        return False

    def _take(self, rng: random.Random, buy: bool) -> tuple[int, int]:
        """Fill one trade from the best level of the opposite side: (price, volume).

        A trade at least as large as the level takes all of it and the side is refilled.
        """
        wanted = self._draw(rng, self._trade_sizes)
        prices, sizes = (self._ap, self._asz) if buy else (self._bp, self._bsz)
        price, available = prices[0], sizes[0]
        if wanted < available:
            sizes[0] = available - wanted
            return price, wanted
        del prices[0], sizes[0]
        if buy:
            self._refill_asks(rng)
        else:
            self._refill_bids(rng)
        return price, available

    def _count(self, price: int, volume: int, amount: int, buy: bool, traded: int) -> None:
        """Add a trade to the day statistics (a new day at 00:00 UTC) and the 52-week range."""
        day = traded // DAY_MS
        if day != self._day:  # 00:00 UTC: a new trading day
            self._day = day
            self._prev_close = self.tick.price
            self._open = self._high = self._low = price
            self._acc_volume = self._acc_amount = self._acc_ask = self._acc_bid = 0
        elif price > self._high:
            self._high = price
        elif price < self._low:
            self._low = price
        self._acc_volume += volume
        self._acc_amount += amount
        self._acc_volume_24h += volume
        self._acc_amount_24h += amount
        if buy:
            self._acc_bid += volume
        else:
            self._acc_ask += volume
        if price > self._h52:
            self._h52, self._h52_date = price, date_dashed(traded)
        elif price < self._l52:
            self._l52, self._l52_date = price, date_dashed(traded)

    def _roll_candles(
        self, price: int, volume: int, amount: int, traded: int, stamp: int
    ) -> tuple[Candle, ...]:
        """Every candle updated by a trade: the current bucket grows, a new bucket starts one."""
        candles = []
        for unit_ms, c in zip(_UNIT_MS, self.candles, strict=True):
            start = traded - traded % unit_ms
            if c.start == start:
                fields = (
                    start,
                    c.utc,
                    c.kst,
                    c.open,
                    price if price > c.high else c.high,
                    price if price < c.low else c.low,
                    price,
                    c.volume + volume,
                    c.amount + amount,
                    stamp,
                )
            else:
                utc = date_time(start)
                kst = date_time(start + KST_OFFSET_MS)
                fields = (start, utc, kst, price, price, price, price, volume, amount, stamp)
            candles.append(_new_tuple(Candle, fields))
        return tuple(candles)

    def quote_change(self, rng: random.Random, at: int) -> None:
        """One order-book change that is not a trade.

        Cancels and trades open the spread; improvements (a new best level inside the spread,
        likelier the wider it is) close it again, so spreads stay a few ticks wide.
        """
        ap, asz, bp, bsz = self._ap, self._asz, self._bp, self._bsz
        tu = self.tick_units
        bias = self._bias()
        roll = rng.random()
        free = (ap[0] - bp[0]) // tu - 1 if bp else 0
        if free > 0 and roll < _IMPROVE_BASE + _IMPROVE_PER_TICK * min(free, 5):
            step = tu * (1 + int(rng.random() * free))
            if rng.random() < 0.5 - bias:
                ap.insert(0, ap[0] - step)
                asz.insert(0, self._draw(rng, self._level_sizes))
                del ap[self.depth :], asz[self.depth :]
            else:
                bp.insert(0, bp[0] + step)
                bsz.insert(0, self._draw(rng, self._level_sizes))
                del bp[self.depth :], bsz[self.depth :]
        elif not bp and ap[0] > tu:
            bp.append(ap[0] - tu)
            bsz.append(self._draw(rng, self._level_sizes))
        elif roll < 1.0 - _CANCEL_SHARE - _SHIFT_SHARE:
            self._resize(rng)
        elif roll < 1.0 - _CANCEL_SHARE:
            self._shift(rng)
        elif rng.random() < 0.5 + bias and len(ap) > 1:
            del ap[0], asz[0]
            self._refill_asks(rng)
        elif len(bp) > 1:
            del bp[0], bsz[0]
            self._refill_bids(rng)
        else:
            self._resize(rng)
        self._publish_book(at)

    def _shift(self, rng: random.Random) -> None:
        """Move both sides by the same number of ticks (the spread is unchanged)."""
        ap, bp, bsz = self._ap, self._bp, self._bsz
        mean = -self._shift_pull * (ap[0] - self._anchor) / self.tick_units
        move = round(rng.gauss(mean, self._shift_sigma)) * self.tick_units
        if move == 0 or ap[0] + move <= self.tick_units:
            self._resize(rng)
            return
        self._ap = [price + move for price in ap]
        moved = [price + move for price in bp]
        kept = sum(1 for price in moved if price > 0)
        self._bp, self._bsz = moved[:kept], bsz[:kept]
        self._refill_bids(rng)

    def _resize(self, rng: random.Random) -> None:
        sizes = self._asz if rng.random() < 0.5 or not self._bsz else self._bsz
        sizes[int(rng.random() * len(sizes))] = self._draw(rng, self._level_sizes)
