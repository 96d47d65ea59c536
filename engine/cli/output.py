"""What the commands print: one readable line per message or engine event, and how a command
stops (Ctrl-C or SIGTERM cancel it cleanly; a closed pipe ends it quietly)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from engine.events import Backfilled, Ended, Gap, Interrupted, SnapshotMissing
from engine.wire.messages import Candle, MyAsset, MyOrder, Orderbook, Ticker, Trade

__all__ = ("describe", "quiet_broken_pipe", "stop_on_signals")


def _num(value: float | None) -> str:
    """Prices as a trader reads them: grouped integers for large values, 8 digits for small;
    ``?`` for a value the frame did not carry (see ``engine.wire.messages`` on drift)."""
    if value is None:
        return "?"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.8g}"


def describe(item: object) -> str:
    """One readable line for a message or engine event."""
    match item:
        case Ticker():
            return (
                f"{item.code:<10} ticker    {item.stream_type:<8} {_num(item.trade_price):>16}"
                + ("" if item.signed_change_rate is None else f" {item.signed_change_rate:+.2%}")
            )
        case Trade():
            return (
                f"{item.code:<10} trade     {item.stream_type:<8} {_num(item.trade_price):>16} "
                f"x {_num(item.trade_volume)} {item.ask_bid} #{item.sequential_id}"
            )
        case Orderbook():
            best = item.orderbook_units[0] if item.orderbook_units else None
            top = f"{_num(best.bid_price)} / {_num(best.ask_price)}" if best else "empty"
            return (
                f"{item.code:<10} orderbook {item.stream_type:<8} {top} "
                f"({len(item.orderbook_units)} units, level {item.level:g})"
            )
        case Candle():
            return (
                f"{item.code:<10} {item.type:<9} {item.stream_type:<8} "
                f"O {_num(item.opening_price)} H {_num(item.high_price)} "
                f"L {_num(item.low_price)} C {_num(item.trade_price)}"
            )
        case MyOrder():
            return (
                f"{item.code:<10} myOrder   {item.state} {item.ask_bid} "
                f"{item.price} x {item.volume}"
            )
        case MyAsset():
            return "myAsset   " + ", ".join(f"{a.currency} {a.balance}" for a in item.assets)
        case Interrupted():
            return f"-- interrupted: {item.cause} (ticket {item.ticket})"
        case Gap():
            span = item.duration
            length = "open-ended" if span is None else f"{span:.3f} s"
            filling = f"; backfilling {', '.join(item.backfill)}" if item.backfill else ""
            return f"-- gap ({length}) on ticket {item.ticket}: {item.cause}{filling}"
        case Backfilled():
            left = "complete" if item.complete else f"{len(item.unfilled)} range(s) unfilled"
            return f"-- backfilled {item.code}: {item.delivered} trades, {left}"
        case SnapshotMissing():
            return f"-- no SNAPSHOT of {item.data_type} {item.code} within {item.waited:g} s"
        case Ended():
            return f"-- ended: {item.reason}"
    return repr(item)


@asynccontextmanager
async def stop_on_signals() -> AsyncIterator[trio.CancelScope]:
    """A cancel scope that SIGINT (Ctrl-C) and SIGTERM cancel; the command exits 0. Its
    context managers exit under that cancellation: streams end with ``Ended``, the debug socket
    is removed, a gateway publishes what it has queued (shielded cleanups), and the actors are
    cancelled together (Trio semantics) rather than stopped one by one."""
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def wait_for_signal() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        scope.cancel()
                        return

            nursery.start_soon(wait_for_signal)
            try:
                yield scope
            finally:
                nursery.cancel_scope.cancel()


def quiet_broken_pipe() -> None:
    """The reader of stdout went away (``| head -1``): send what is left to /dev/null, so the
    interpreter's final flush does not print a traceback either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
