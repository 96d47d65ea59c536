"""Orderbook depth on the receiving side: routing never depends on a frame's row count.

Upbit has answered orderbook requests with other depths than asked (the default went from 15 to
30 rows in 2025, and its own docs show a 30-row reply to a ``.15`` request: docs/UPBIT.md#drift-
history). The engine therefore routes an orderbook frame by ``(code, level)`` only, carries one
wire stream per ``(code, level)`` at the deepest depth any subscriber wants, and gives each
subscriber at most the rows it asked for.
"""

from __future__ import annotations

import attrs

from engine.wire.messages import Message, Orderbook

__all__ = ("trim_rows",)


def trim_rows(msg: Message, rows: int) -> Message:
    """An orderbook with at most ``rows`` rows (best first); any other message, or a book with
    no more rows, as it is."""
    if type(msg) is not Orderbook or len(msg.orderbook_units) <= rows:
        return msg
    return attrs.evolve(msg, orderbook_units=msg.orderbook_units[:rows])
