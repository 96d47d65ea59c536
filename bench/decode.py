"""How much typed decoding costs on top of parsing the JSON: ``decode_frame`` against bare
``orjson.loads`` of the same bytes, in the same run.

Frames imitate Upbit's wire spelling (Java ``Double.toString``: ``1.16539E8`` for large prices in
DEFAULT, integer prices in SIMPLE, ``7.9276E-4`` for small sizes). Each round times both
functions over the same frame, interleaved, so machine noise hits them alike; the table reports
the median over rounds. Run: ``uv run python bench/decode.py [--rounds N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench._report import write_section
from engine.wire.protocol import decode_frame


def java_double(value: float) -> str:
    """``value`` spelt as Java's ``Double.toString`` does, which is what Upbit's server emits."""
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text or "e" in text else text + ".0"
    mantissa, _, exponent = f"{value:.15e}".partition("e")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}E{int(exponent)}"


def _ticker(simple: bool, deprecated: bool = True) -> bytes:
    fields = [
        ("type", "ty", '"ticker"'),
        ("code", "cd", '"KRW-BTC"'),
        ("opening_price", "op", 1.162e8),
        ("high_price", "hp", 1.169e8),
        ("low_price", "lp", 1.158e8),
        ("trade_price", "tp", 1.16539e8),
        ("prev_closing_price", "pcp", 1.162e8),
        ("change", "c", '"RISE"'),
        ("change_price", "cp", 339000.0),
        ("signed_change_price", "scp", 339000.0),
        ("change_rate", "cr", 0.0029173838),
        ("signed_change_rate", "scr", 0.0029173838),
        ("trade_volume", "tv", 2.1e-3),
        ("acc_trade_volume", "atv", 812.55102),
        ("acc_trade_volume_24h", "atv24h", 2190.0771),
        ("acc_trade_price", "atp", 94621883411.2),
        ("acc_trade_price_24h", "atp24h", 254990122004.1),
        ("trade_date", "tdt", '"20260923"'),
        ("trade_time", "ttm", '"031715"'),
        ("trade_timestamp", "ttms", "1790133435120"),
        ("ask_bid", "ab", '"BID"'),
        ("acc_ask_volume", "aav", 401.2),
        ("acc_bid_volume", "abv", 411.35102),
        ("highest_52_week_price", "h52wp", 1.63325e8),
        ("highest_52_week_date", "h52wdt", '"2026-01-20"'),
        ("lowest_52_week_price", "l52wp", 9.88e7),
        ("lowest_52_week_date", "l52wdt", '"2025-11-03"'),
        ("market_state", "ms", '"ACTIVE"'),
        ("is_trading_suspended", "its", "false"),
        ("delisting_date", "dd", "null"),
        ("market_warning", "mw", '"NONE"'),
        ("timestamp", "tms", "1790133435161"),
        ("stream_type", "st", '"REALTIME"'),
    ]
    if not deprecated:
        fields = [f for f in fields if f[0] not in ("is_trading_suspended", "market_warning")]
    return _object(fields, simple)


def _ticker_without_deprecated(simple: bool) -> bytes:
    return _ticker(simple, deprecated=False)


def _trade(simple: bool) -> bytes:
    fields = [
        ("type", "ty", '"trade"'),
        ("code", "cd", '"KRW-BTC"'),
        ("timestamp", "tms", "1790133514039"),
        ("trade_date", "td", '"2026-09-23"'),
        ("trade_time", "ttm", '"03:18:34"'),
        ("trade_timestamp", "ttms", "1790133513990"),
        ("trade_price", "tp", 1.1654e8),
        ("trade_volume", "tv", 4.12e-3),
        ("ask_bid", "ab", '"BID"'),
        ("prev_closing_price", "pcp", 1.162e8),
        ("change", "c", '"RISE"'),
        ("change_price", "cp", 340000.0),
        ("sequential_id", "sid", "17901335139900000"),
        ("best_ask_price", "bap", 1.1654e8),
        ("best_ask_size", "bas", 0.021),
        ("best_bid_price", "bbp", 1.16539e8),
        ("best_bid_size", "bbs", 0.08),
        ("stream_type", "st", '"REALTIME"'),
    ]
    return _object(fields, simple)


def _orderbook(simple: bool, depth: int = 30) -> bytes:
    rng = random.Random(20260923)
    units = []
    for level in range(depth):
        prices = (116_539_000.0 + 1000 * level, 116_538_000.0 - 1000 * level)
        sizes = (round(rng.uniform(1e-4, 0.5), 8), round(rng.uniform(1e-4, 3.0), 8))
        if simple:
            ask, bid = (str(int(price)) for price in prices)
        else:
            ask, bid = (java_double(price) for price in prices)
        ask_size, bid_size = (java_double(size) for size in sizes)
        keys = (
            ("ap", "bp", "as", "bs")
            if simple
            else ("ask_price", "bid_price", "ask_size", "bid_size")
        )
        values = (ask, bid, ask_size, bid_size)
        units.append("{" + ",".join(f'"{k}":{v}' for k, v in zip(keys, values, strict=True)) + "}")
    fields = [
        ("type", "ty", '"orderbook"'),
        ("code", "cd", '"KRW-BTC"'),
        ("timestamp", "tms", "1790134742106"),
        ("total_ask_size", "tas", 2.51469375),
        ("total_bid_size", "tbs", 1.63815297),
        ("orderbook_units", "obu", "[" + ",".join(units) + "]"),
        ("stream_type", "st", '"SNAPSHOT"'),
        ("level", "lv", "0"),
    ]
    return _object(fields, simple)


def _object(fields: list[tuple[str, str, object]], simple: bool) -> bytes:
    parts = []
    for default_key, simple_key, value in fields:
        text = java_double(value) if isinstance(value, float) else str(value)
        parts.append(f'"{simple_key if simple else default_key}":{text}')
    return ("{" + ",".join(parts) + "}").encode()


FRAMES: dict[str, Callable[[bool], bytes]] = {
    "ticker": _ticker,
    "ticker, deprecated fields gone": _ticker_without_deprecated,
    "trade": _trade,
    "orderbook (30 units)": _orderbook,
}


def _time(function: Callable[[bytes], object], frame: bytes, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        function(frame)
    return time.perf_counter() - start


def measure(frame: bytes, rounds: int, count: int) -> tuple[float, float, float]:
    """Median over rounds of frames/s of ``orjson.loads`` and of ``decode_frame``, and of the
    cost ratio.

    Within a round the two alternate in many short slices and each keeps its fastest slice:
    other processes can only slow a slice down, so the fastest is the one least disturbed, and
    a burst of load cannot skew the ratio by landing on one side.
    """
    slices = 50
    per_slice = max(1, count // slices)
    loads_rates, decode_rates, ratios = [], [], []
    for _ in range(rounds):
        loads = decode = math.inf
        for _ in range(slices):
            loads = min(loads, _time(orjson.loads, frame, per_slice))
            decode = min(decode, _time(decode_frame, frame, per_slice))
        loads_rates.append(per_slice / loads)
        decode_rates.append(per_slice / decode)
        ratios.append(decode / loads)
    return (
        statistics.median(loads_rates),
        statistics.median(decode_rates),
        statistics.median(ratios),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="rounds per frame (median taken)")
    parser.add_argument("--seconds", type=float, default=0.2, help="target time per timing")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = parser.parse_args(argv)

    rows = []
    for name, make in FRAMES.items():
        for fmt in ("DEFAULT", "SIMPLE"):
            frame = make(fmt == "SIMPLE")
            decode_frame(frame)  # fail loudly on a broken frame before timing it
            per_call = _time(decode_frame, frame, 200) / 200
            count = max(200, int(args.seconds / per_call))
            loads_rate, decode_rate, ratio = measure(frame, args.rounds, count)
            rows.append((name, fmt, len(frame), loads_rate, decode_rate, ratio))
            print(
                f"{name:32s} {fmt:8s} {len(frame):5d} B  orjson.loads {loads_rate:>10,.0f}/s  "
                f"decode_frame {decode_rate:>10,.0f}/s  cost x{ratio:.2f}",
                flush=True,
            )

    table = [
        "| frame | format | bytes | `orjson.loads` frames/s | `decode_frame` frames/s "
        "| cost vs `orjson.loads` |",
        "|---|---|---:|---:|---:|---:|",
    ]
    table += [
        f"| {name} | {fmt} | {size} | {loads:,.0f} | {decode:,.0f} | {ratio:.2f}x |"
        for name, fmt, size, loads, decode, ratio in rows
    ]
    body = (
        "Typed decoding (`engine.wire.protocol.decode_frame`: parse, dispatch, validate "
        "every field's type, build frozen attrs models) against bare `orjson.loads` of the same "
        "frame, "
        f"interleaved in the same process; each round keeps the fastest of 50 alternating slices "
        f"per function, the table gives the median of {args.rounds} rounds. The cost column is "
        "decode time divided by `orjson.loads` time. "
        "The ticker row without the deprecated fields shows the cost once Upbit drops them.\n\n"
        + "\n".join(table)
    )
    if not args.no_write:
        write_section("decode", "Frame decoding", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
