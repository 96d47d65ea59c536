"""DEFAULT-keyed message dicts from a pair's records, and the SIMPLE re-keying.

Field order follows the example frames on Upbit's per-type pages (docs/UPBIT.md, Field tables).
These run once per frame the emulator sends, so they build each dict in one literal, read records by
unpacking, and never touch the random generator.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.testing.marketdata.pair import MAX_DEPTH, VOLUME_SCALE, Book, Candle, Pair, Tick
from engine.wire.keys import ASSET_KEYS, DEFAULT_TO_SIMPLE, ORDERBOOK_UNIT_KEYS

__all__ = ("LevelSpec", "candle", "orderbook", "ticker", "to_simple", "trade")

#: A supported grouping level: (level in grid units, the value the frame's ``level`` carries).
LevelSpec = tuple[int, int | float]

# Deterministic shape for synthetic liquidity beyond the simulated depth of a grouped book.
_TAIL_SHAPE = (0.8, 1.1, 0.95, 1.3, 0.7, 1.05, 1.2)


def ticker(pair: Pair, t: Tick, stream_type: str) -> dict[str, object]:
    scale, amounts = pair.scale, pair.amount_scale
    price, prev_close = t.price, t.prev_close
    diff = price - prev_close
    change_price = abs(diff) / scale
    change_rate = round(abs(diff) / prev_close, 10)
    return {
        "type": "ticker",
        "code": pair.code,
        "opening_price": t.open / scale,
        "high_price": t.high / scale,
        "low_price": t.low / scale,
        "trade_price": price / scale,
        "prev_closing_price": prev_close / scale,
        "change": "RISE" if diff > 0 else "FALL" if diff < 0 else "EVEN",
        "change_price": change_price,
        "signed_change_price": -change_price if diff < 0 else change_price,
        "change_rate": change_rate,
        "signed_change_rate": -change_rate if diff < 0 else change_rate,
        "trade_volume": t.volume / VOLUME_SCALE,
        "acc_trade_volume": t.acc_volume / VOLUME_SCALE,
        "acc_trade_volume_24h": t.acc_volume_24h / VOLUME_SCALE,
        "acc_trade_price": t.acc_amount / amounts,
        "acc_trade_price_24h": t.acc_amount_24h / amounts,
        "trade_date": t.date_compact,
        "trade_time": t.time_compact,
        "trade_timestamp": t.trade_timestamp,
        "ask_bid": t.ask_bid,
        "acc_ask_volume": t.acc_ask_volume / VOLUME_SCALE,
        "acc_bid_volume": t.acc_bid_volume / VOLUME_SCALE,
        "highest_52_week_price": t.high_52w / scale,
        "highest_52_week_date": t.high_52w_date,
        "lowest_52_week_price": t.low_52w / scale,
        "lowest_52_week_date": t.low_52w_date,
        "market_state": "ACTIVE",
        "is_trading_suspended": False,
        "delisting_date": None,
        "market_warning": pair.market_warning,
        "timestamp": t.timestamp,
        "stream_type": stream_type,
    }


def trade(pair: Pair, t: Tick, stream_type: str) -> dict[str, object]:
    scale = pair.scale
    diff = t.price - t.prev_close
    return {
        "type": "trade",
        "code": pair.code,
        "timestamp": t.timestamp,
        "trade_date": t.date_dashed,
        "trade_time": t.time_colon,
        "trade_timestamp": t.trade_timestamp,
        "trade_price": t.price / scale,
        "trade_volume": t.volume / VOLUME_SCALE,
        "ask_bid": t.ask_bid,
        "prev_closing_price": t.prev_close / scale,
        "change": "RISE" if diff > 0 else "FALL" if diff < 0 else "EVEN",
        "change_price": abs(diff) / scale,
        "sequential_id": t.sequential_id,
        "best_ask_price": t.best_ask_price / scale,
        "best_ask_size": t.best_ask_size / VOLUME_SCALE,
        "best_bid_price": t.best_bid_price / scale,
        "best_bid_size": t.best_bid_size / VOLUME_SCALE,
        "stream_type": stream_type,
    }


def candle(pair: Pair, c: Candle, data_type: str, stream_type: str) -> dict[str, object]:
    scale = pair.scale
    return {
        "type": data_type,
        "code": pair.code,
        "candle_date_time_utc": c.utc,
        "candle_date_time_kst": c.kst,
        "opening_price": c.open / scale,
        "high_price": c.high / scale,
        "low_price": c.low / scale,
        "trade_price": c.close / scale,
        "candle_acc_trade_volume": c.volume / VOLUME_SCALE,
        "candle_acc_trade_price": c.amount / pair.amount_scale,
        "timestamp": c.timestamp,
        "stream_type": stream_type,
    }


def _group(
    pair: Pair, prices: tuple[int, ...], sizes: tuple[int, ...], step: int, units: int, ask: bool
) -> tuple[list[int], list[int]]:
    """Aggregate one side into multiples of ``step`` (asks round up, bids round down)."""
    out_p: list[int] = []
    out_s: list[int] = []
    for price, size in zip(prices, sizes, strict=True):
        bucket = -(-price // step) * step if ask else price // step * step
        if out_p and out_p[-1] == bucket:
            out_s[-1] += size
            continue
        if bucket <= 0 or len(out_p) == units:
            break
        out_p.append(bucket)
        out_s.append(size)
    if len(prices) >= MAX_DEPTH and out_p:
        # A full book is deeper than the 30 simulated levels: extend it with synthetic
        # liquidity at the visible density, so coarse levels still show all rows.
        ticks = abs(prices[-1] - prices[0]) // pair.tick_units + 1
        per_bucket = sum(sizes) * (step // pair.tick_units) // ticks
        direction = step if ask else -step
        while len(out_p) < units:
            bucket = out_p[-1] + direction
            if bucket <= 0:
                break
            out_p.append(bucket)
            out_s.append(max(1, int(per_bucket * _TAIL_SHAPE[bucket // step % len(_TAIL_SHAPE)])))
    return out_p, out_s


def _padded_units(
    scale: int, ap: Sequence[int], asz: Sequence[int], bp: Sequence[int], bsz: Sequence[int],
    units: int,
) -> list[dict[str, object]]:  # fmt: skip
    """Rows for a side shorter than ``units``: Upbit pads it with price 0 / size 0 slots."""
    na, nb = len(ap), len(bp)
    return [
        {
            "ask_price": ap[i] / scale if i < na else 0.0,
            "bid_price": bp[i] / scale if i < nb else 0.0,
            "ask_size": asz[i] / VOLUME_SCALE if i < na else 0.0,
            "bid_size": bsz[i] / VOLUME_SCALE if i < nb else 0.0,
        }
        for i in range(units)
    ]


def _units(
    scale: int, ap: Sequence[int], asz: Sequence[int], bp: Sequence[int], bsz: Sequence[int],
    units: int,
) -> list[dict[str, object]]:  # fmt: skip
    if len(ap) < units or len(bp) < units:
        return _padded_units(scale, ap, asz, bp, bsz, units)
    vs = VOLUME_SCALE
    # One pass, no intermediate rows: this is the emulator's most expensive render.
    return [
        {"ask_price": a / scale, "bid_price": b / scale, "ask_size": x / vs, "bid_size": y / vs}
        for a, b, x, y in zip(ap[:units], bp[:units], asz[:units], bsz[:units], strict=True)
    ]


def orderbook(
    pair: Pair, book: Book, stream_type: str, units: int, level: LevelSpec
) -> dict[str, object]:
    step, level_value = level
    ap: Sequence[int]
    asz: Sequence[int]
    bp: Sequence[int]
    bsz: Sequence[int]
    if step:
        ap, asz = _group(pair, book.ask_prices, book.ask_sizes, step, units, True)
        bp, bsz = _group(pair, book.bid_prices, book.bid_sizes, step, units, False)
    else:
        ap, asz, bp, bsz = book.ask_prices, book.ask_sizes, book.bid_prices, book.bid_sizes
    return {
        "type": "orderbook",
        "code": pair.code,
        "timestamp": book.timestamp,
        "total_ask_size": sum(asz[:units]) / VOLUME_SCALE,
        "total_bid_size": sum(bsz[:units]) / VOLUME_SCALE,
        "orderbook_units": _units(pair.scale, ap, asz, bp, bsz, units),
        "stream_type": stream_type,
        "level": level_value,
    }


# Plain dicts: faster lookups than the read-only proxies, same content.
_TABLES = {data_type: dict(table) for data_type, table in DEFAULT_TO_SIMPLE.items()}
_AP = ORDERBOOK_UNIT_KEYS["ask_price"]
_BP = ORDERBOOK_UNIT_KEYS["bid_price"]
_AS = ORDERBOOK_UNIT_KEYS["ask_size"]
_BS = ORDERBOOK_UNIT_KEYS["bid_size"]
_CU = ASSET_KEYS["currency"]
_BAL = ASSET_KEYS["balance"]
_LOCKED = ASSET_KEYS["locked"]
_UNITS_KEY = DEFAULT_TO_SIMPLE["orderbook"]["orderbook_units"]
_ASSETS_KEY = DEFAULT_TO_SIMPLE["myAsset"]["assets"]


def to_simple(message: dict[str, object]) -> dict[str, object]:
    data_type = message.get("type")
    table = _TABLES.get(data_type) if isinstance(data_type, str) else None
    if table is None:
        raise ValueError(
            f"cannot abbreviate a message of type {data_type!r}: pass a DEFAULT-keyed ticker, "
            "trade, orderbook, candle.*, myOrder or myAsset message"
        )
    try:
        out = {table[key]: value for key, value in message.items()}
    except KeyError as exc:
        raise ValueError(
            f"{exc.args[0]!r} is not a documented field of {data_type}; only documented "
            "DEFAULT keys have SIMPLE abbreviations"
        ) from None
    if data_type == "orderbook":
        rows = message["orderbook_units"]
        assert isinstance(rows, list)
        out[_UNITS_KEY] = [
            {_AP: u["ask_price"], _BP: u["bid_price"], _AS: u["ask_size"], _BS: u["bid_size"]}
            for u in rows
        ]
    elif data_type == "myAsset":
        assets = message["assets"]
        assert isinstance(assets, list)
        out[_ASSETS_KEY] = [
            {_CU: a["currency"], _BAL: a["balance"], _LOCKED: a["locked"]} for a in assets
        ]
    return out
