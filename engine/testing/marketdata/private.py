"""Complete ``myOrder`` / ``myAsset`` messages for emulator test hooks (fields: docs/UPBIT.md).

Money amounts: JSON numbers on the wire, which orjson can only write from ``float`` (or ``int``).
Inputs may be ``float``, ``int``, ``str`` or ``Decimal``; arithmetic runs on ``Decimal``. Each
amount is emitted as a ``float`` when the float prints back as exactly the same decimal (true for
ordinary prices, sizes and balances up to ~15 significant digits); otherwise it is emitted as an
``orjson.Fragment`` holding the exact decimal literal, so ``orjson.dumps`` writes every digit (the
doc's myAsset example has balances with more than 20). A Fragment is opaque to ``==`` and to the
standard ``json`` module: read exact values back with ``json.loads(..., parse_float=Decimal)``.
Derived amounts (fees, funds, locked) are rounded half-up to 8 decimals.
"""

from __future__ import annotations

import random
import uuid as uuid_module
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import orjson

__all__ = ("Money", "decimal_of", "emit", "my_asset", "my_order")

Money = float | int | str | Decimal

_STATES = ("wait", "watch", "trade", "done", "cancel", "prevented")
_SIDES = ("ASK", "BID")
_ORDER_TYPES = ("limit", "price", "market", "best")
_TIME_IN_FORCE = (None, "ioc", "fok", "post_only")
_SMP_TYPES = (None, "reduce", "cancel_maker", "cancel_taker")
_FILLED = frozenset({"trade", "done"})
_CLOSED = frozenset({"trade", "done", "cancel", "prevented"})
_QUANTUM = Decimal("0.00000001")
_ZERO = Decimal(0)


def decimal_of(value: Money, name: str) -> Decimal:
    """``value`` as an exact finite Decimal (a float counts as its shortest decimal spelling)."""
    if isinstance(value, bool) or not isinstance(value, float | int | str | Decimal):
        raise TypeError(f"{name} must be a number or a numeric string, got {value!r}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValueError(
            f"{name} must be a decimal number such as '0.001', got {value!r}"
        ) from None
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def emit(number: Decimal) -> float | orjson.Fragment:
    """A float when it prints as exactly ``number``, else an exact orjson Fragment."""
    as_float = float(number)
    if Decimal(repr(as_float)) == number:
        return as_float
    return orjson.Fragment(format(number, "f"))


def _derived(number: Decimal) -> float | orjson.Fragment:
    return emit(number.quantize(_QUANTUM, rounding=ROUND_HALF_UP).normalize() + 0)


def _choice(value: object, allowed: Sequence[object], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)!r}, got {value!r}")


def _uuid(rng: random.Random) -> str:
    return str(uuid_module.UUID(int=rng.getrandbits(128), version=4))


def my_order(
    *,
    code: str,
    state: str,
    ask_bid: str,
    order_type: str,
    price: Money,
    volume: Money,
    executed_volume: Money | None,
    remaining_volume: Money | None,
    trades_count: int | None,
    fee_rate: Money,
    is_maker: bool | None,
    time_in_force: str | None,
    smp_type: str | None,
    identifier: str | None,
    prevented_volume: Money | None,
    uuid: str | None,
    trade_uuid: str | None,
    timestamp_ms: int,
    order_timestamp_ms: int | None,
    trade_timestamp_ms: int | None,
    seed: int,
    stream_type: str,
) -> dict[str, object]:
    _choice(state, _STATES, "state")
    _choice(ask_bid, _SIDES, "ask_bid")
    _choice(order_type, _ORDER_TYPES, "order_type")
    _choice(time_in_force, _TIME_IN_FORCE, "time_in_force")
    _choice(smp_type, _SMP_TYPES, "smp_type")
    rng = random.Random(f"myOrder {seed}")
    order_uuid = uuid or _uuid(rng)
    px = decimal_of(price, "price")
    vol = decimal_of(volume, "volume")
    rate = decimal_of(fee_rate, "fee_rate")
    executed, remaining, prevented = _volumes(
        state, vol, executed_volume, remaining_volume, prevented_volume
    )
    bid = ask_bid == "BID"
    traded = state == "trade"
    return {
        "type": "myOrder",
        "code": code,
        "uuid": order_uuid,
        "ask_bid": ask_bid,
        "order_type": order_type,
        "state": state,
        "trade_uuid": trade_uuid or (_uuid(rng) if traded else None),
        **_order_amounts(bid, px, vol, rate, executed, remaining, trades_count),
        "time_in_force": time_in_force,
        "trade_fee": _derived(px * vol * rate) if traded else None,
        "is_maker": is_maker if is_maker is not None else (True if traded else None),
        "identifier": identifier,
        "smp_type": smp_type,
        "prevented_volume": emit(prevented),
        "prevented_locked": _derived(prevented * px if bid else prevented),
        "trade_timestamp": trade_timestamp_ms
        if trade_timestamp_ms is not None
        else (timestamp_ms if traded else None),
        "order_timestamp": order_timestamp_ms
        if order_timestamp_ms is not None
        else timestamp_ms - 1_000,
        "timestamp": timestamp_ms,
        "stream_type": stream_type,
    }


def _volumes(
    state: str,
    vol: Decimal,
    executed_volume: Money | None,
    remaining_volume: Money | None,
    prevented_volume: Money | None,
) -> tuple[Decimal, Decimal, Decimal]:
    """(executed, remaining, prevented): each as given, else what ``state`` implies.

    trade/done fill the whole volume, wait/watch fill nothing, cancel leaves the rest unfilled,
    prevented moves it to the prevented volume.
    """
    executed = (
        decimal_of(executed_volume, "executed_volume")
        if executed_volume is not None
        else (vol if state in _FILLED else _ZERO)
    )
    remaining = (
        decimal_of(remaining_volume, "remaining_volume")
        if remaining_volume is not None
        else (_ZERO if state in _CLOSED and state != "cancel" else max(_ZERO, vol - executed))
    )
    prevented = (
        decimal_of(prevented_volume, "prevented_volume")
        if prevented_volume is not None
        else (max(_ZERO, vol - executed) if state == "prevented" else _ZERO)
    )
    return executed, remaining, prevented


def _order_amounts(
    bid: bool,
    px: Decimal,
    vol: Decimal,
    rate: Decimal,
    executed: Decimal,
    remaining: Decimal,
    trades_count: int | None,
) -> dict[str, object]:
    """The fields from ``price`` to ``executed_funds``, in wire order; fees are reserved and the
    quote amount locked on a BID, the base volume locked on an ASK."""
    funds = executed * px
    reserved_fee = vol * px * rate if bid else _ZERO
    remaining_fee = remaining * px * rate if bid else _ZERO
    return {
        "price": emit(px),
        "avg_price": emit(px if executed else _ZERO),
        "volume": emit(vol),
        "remaining_volume": emit(remaining),
        "executed_volume": emit(executed),
        "trades_count": trades_count if trades_count is not None else (1 if executed else 0),
        "reserved_fee": _derived(reserved_fee),
        "remaining_fee": _derived(remaining_fee),
        "paid_fee": _derived(funds * rate),
        "locked": _derived(remaining * px + remaining_fee if bid else remaining),
        "executed_funds": _derived(funds),
    }


def my_asset(
    *,
    assets: Sequence[tuple[str, Money, Money]],
    asset_uuid: str | None,
    asset_timestamp_ms: int | None,
    timestamp_ms: int,
    seed: int,
    stream_type: str,
) -> dict[str, object]:
    rows: list[dict[str, object]] = []
    for entry in assets:
        if len(entry) != 3 or not isinstance(entry[0], str) or not entry[0]:
            raise ValueError(f"each asset must be (currency, balance, locked), got {entry!r}")
        currency, balance, locked = entry
        rows.append(
            {
                "currency": currency,
                "balance": emit(decimal_of(balance, f"balance of {currency}")),
                "locked": emit(decimal_of(locked, f"locked of {currency}")),
            }
        )
    return {
        "type": "myAsset",
        "asset_uuid": asset_uuid or _uuid(random.Random(f"myAsset {seed}")),
        "assets": rows,
        "asset_timestamp": asset_timestamp_ms
        if asset_timestamp_ms is not None
        else timestamp_ms - 8,
        "timestamp": timestamp_ms,
        "stream_type": stream_type,
    }
