"""Upbit's SIMPLE-format key abbreviations (docs/UPBIT.md, Field tables), as data.

Both directions of the mapping live here, once, so the decoder, the encoder and the emulator can
never disagree. Keys are the DEFAULT field names; values are the SIMPLE abbreviations. Nested
objects (orderbook units, asset balances, LIST_SUBSCRIPTIONS results) have tables of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = (
    "ASSET_KEYS",
    "CANDLE_TYPES",
    "DEFAULT_TO_SIMPLE",
    "LIST_SUBSCRIPTIONS_KEYS",
    "ORDERBOOK_UNIT_KEYS",
    "SIMPLE_TO_DEFAULT",
    "SUBSCRIPTION_ENTRY_KEYS",
    "invert",
    "simple_keys_for",
)


def _frozen(table: dict[str, str]) -> Mapping[str, str]:
    if len(set(table.values())) != len(table):
        raise AssertionError("abbreviations must be unique within one table")
    return MappingProxyType(table)


def invert(table: Mapping[str, str]) -> Mapping[str, str]:
    """The reverse table (SIMPLE -> DEFAULT)."""
    return MappingProxyType({simple: default for default, simple in table.items()})


_TICKER = _frozen(
    {
        "type": "ty",
        "code": "cd",
        "opening_price": "op",
        "high_price": "hp",
        "low_price": "lp",
        "trade_price": "tp",
        "prev_closing_price": "pcp",
        "change": "c",
        "change_price": "cp",
        "signed_change_price": "scp",
        "change_rate": "cr",
        "signed_change_rate": "scr",
        "trade_volume": "tv",
        "acc_trade_volume": "atv",
        "acc_trade_volume_24h": "atv24h",
        "acc_trade_price": "atp",
        "acc_trade_price_24h": "atp24h",
        "trade_date": "tdt",
        "trade_time": "ttm",
        "trade_timestamp": "ttms",
        "ask_bid": "ab",
        "acc_ask_volume": "aav",
        "acc_bid_volume": "abv",
        "highest_52_week_price": "h52wp",
        "highest_52_week_date": "h52wdt",
        "lowest_52_week_price": "l52wp",
        "lowest_52_week_date": "l52wdt",
        "market_state": "ms",
        "is_trading_suspended": "its",
        "delisting_date": "dd",
        "market_warning": "mw",
        "timestamp": "tms",
        "stream_type": "st",
    }
)

_TRADE = _frozen(
    {
        "type": "ty",
        "code": "cd",
        "trade_price": "tp",
        "trade_volume": "tv",
        "ask_bid": "ab",
        "prev_closing_price": "pcp",
        "change": "c",
        "change_price": "cp",
        # Note: trade_date is "td" here but "tdt" on the ticker (and a different date format).
        "trade_date": "td",
        "trade_time": "ttm",
        "trade_timestamp": "ttms",
        "timestamp": "tms",
        "sequential_id": "sid",
        "best_ask_price": "bap",
        "best_ask_size": "bas",
        "best_bid_price": "bbp",
        "best_bid_size": "bbs",
        "stream_type": "st",
    }
)

_ORDERBOOK = _frozen(
    {
        "type": "ty",
        "code": "cd",
        "total_ask_size": "tas",
        "total_bid_size": "tbs",
        "orderbook_units": "obu",
        "timestamp": "tms",
        "level": "lv",
        "stream_type": "st",
    }
)

ORDERBOOK_UNIT_KEYS: Mapping[str, str] = _frozen(
    {"ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs"}
)

_CANDLE = _frozen(
    {
        "type": "ty",
        "code": "cd",
        "candle_date_time_utc": "cdttmu",
        "candle_date_time_kst": "cdttmk",
        "opening_price": "op",
        "high_price": "hp",
        "low_price": "lp",
        "trade_price": "tp",
        "candle_acc_trade_volume": "catv",
        "candle_acc_trade_price": "catp",
        "timestamp": "tms",
        "stream_type": "st",
    }
)

_MY_ORDER = _frozen(
    {
        "type": "ty",
        "code": "cd",
        "uuid": "uid",
        "ask_bid": "ab",
        "order_type": "ot",
        "state": "s",
        "trade_uuid": "tuid",
        "price": "p",
        "avg_price": "ap",
        "volume": "v",
        "remaining_volume": "rv",
        "executed_volume": "ev",
        "trades_count": "tc",
        "reserved_fee": "rsf",
        "remaining_fee": "rmf",
        "paid_fee": "pf",
        "locked": "l",
        "executed_funds": "ef",
        "time_in_force": "tif",
        "trade_fee": "tf",
        "is_maker": "im",
        "identifier": "id",
        "smp_type": "smpt",
        "prevented_volume": "pv",
        "prevented_locked": "pl",
        "trade_timestamp": "ttms",
        "order_timestamp": "otms",
        "timestamp": "tms",
        "stream_type": "st",
    }
)

_MY_ASSET = _frozen(
    {
        "type": "ty",
        "asset_uuid": "astuid",
        "assets": "ast",
        "asset_timestamp": "asttms",
        "timestamp": "tms",
        "stream_type": "st",
    }
)

ASSET_KEYS: Mapping[str, str] = _frozen({"currency": "cu", "balance": "b", "locked": "l"})

LIST_SUBSCRIPTIONS_KEYS: Mapping[str, str] = _frozen(
    {"method": "mthd", "result": "rslt", "ticket": "tckt"}
)
SUBSCRIPTION_ENTRY_KEYS: Mapping[str, str] = _frozen({"type": "ty", "codes": "cds", "level": "lv"})

CANDLE_TYPES: tuple[str, ...] = (
    "candle.1s",
    "candle.1m",
    "candle.3m",
    "candle.5m",
    "candle.10m",
    "candle.15m",
    "candle.30m",
    "candle.60m",
    "candle.240m",
)

#: Top-level tables keyed by the message ``type`` value (every candle unit shares one table).
DEFAULT_TO_SIMPLE: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "ticker": _TICKER,
        "trade": _TRADE,
        "orderbook": _ORDERBOOK,
        **{candle: _CANDLE for candle in CANDLE_TYPES},
        "myOrder": _MY_ORDER,
        "myAsset": _MY_ASSET,
    }
)

SIMPLE_TO_DEFAULT: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {data_type: invert(table) for data_type, table in DEFAULT_TO_SIMPLE.items()}
)


def simple_keys_for(data_type: str) -> Mapping[str, str]:
    """The DEFAULT -> SIMPLE table for one message type; ``KeyError`` for an unknown type."""
    return DEFAULT_TO_SIMPLE[data_type]
