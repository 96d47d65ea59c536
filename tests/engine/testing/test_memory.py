"""The emulator's memory stays bounded however many connections come and go (issue 12, item 8).

Closed connections beyond ``EmulatorConfig.closed_history`` are forgotten with everything kept for
them, and ``history()`` keeps the newest ``history_limit`` events. Without the bound each
connect/subscribe/close cycle below kept about 24 KB (Session, stream buffers, requests, recent
frames), so the 500 measured cycles would grow by about 12 MB; with it they grow by well under
0.5 MB (Trio's and tracemalloc's own bookkeeping).
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from trio.testing import MockClock

from engine.testing import EmulatorConfig

from ._wire import connect, emulator, recv_raw, send

CLOSED_HISTORY = 10
HISTORY_LIMIT = 300
WARMUP = 100  # cycles before the first measurement (caches, the market simulator's state)
CYCLES = 600
#: Allowed growth over the measured CYCLES - WARMUP cycles (about 12 MB without the bound).
GROWTH_BOUND = 2_000_000


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_closed_connections_are_forgotten_and_memory_stays_flat(
    autojump_clock: MockClock,
) -> None:
    async with emulator(closed_history=CLOSED_HISTORY, history_limit=HISTORY_LIMIT) as emu:
        emu.set_limits(False)  # hundreds of connects per (mock) second
        tracemalloc.start()
        try:
            measured: dict[int, int] = {}
            for cycle in range(1, CYCLES + 1):
                async with connect(emu) as ws:
                    await send(
                        ws, [{"ticket": f"m{cycle}"}, {"type": "ticker", "codes": ["KRW-BTC"]}]
                    )
                    await recv_raw(ws)  # the SNAPSHOT
                # (a) closed ones beyond the history are forgotten; open ones are kept.
                open_now = len(emu.connections(open_only=True))
                assert len(emu.connections()) <= CLOSED_HISTORY + open_now
                assert len(emu.history()) <= HISTORY_LIMIT
                if cycle in (WARMUP, CYCLES):
                    measured[cycle] = _traced()
            # (b) flat: the memory kept does not grow with the number of connections.
            growth = measured[CYCLES] - measured[WARMUP]
            assert growth < GROWTH_BOUND, (
                f"traced memory grew by {growth / 1e6:.2f} MB over {CYCLES - WARMUP} cycles"
            )
            # Every connection closes; then exactly the newest CLOSED_HISTORY are remembered.
            await emu.wait_for(lambda: not emu.connections(open_only=True))
            kept = [info.conn_id for info in emu.connections()]
            assert kept == list(range(CYCLES - CLOSED_HISTORY + 1, CYCLES + 1))
            assert all(len(emu.requests(conn_id)) == 1 for conn_id in kept)
            assert {conn_id for conn_id, _, _ in emu.first_sent()} <= set(kept)
            assert {record.conn_id for record in emu.requests()} == set(kept)
            # (c) a forgotten connection says so.
            with pytest.raises(KeyError, match=r"connection 1 is closed and forgotten.*"):
                emu.connection(1)
            with pytest.raises(KeyError, match="closed_history=10"):
                emu.requests(CYCLES - CLOSED_HISTORY)
            # An id never handed out is still just unknown.
            with pytest.raises(KeyError, match=r"no connection 100000"):
                emu.connection(100_000)
        finally:
            tracemalloc.stop()


async def test_closed_history_zero_forgets_at_once(autojump_clock: MockClock) -> None:
    async with emulator(closed_history=0) as emu:
        async with connect(emu) as ws:
            await send(ws, [{"ticket": "z"}, {"type": "ticker", "codes": ["KRW-BTC"]}])
            await recv_raw(ws)
            (info,) = emu.connections()
            assert info.open
        await emu.wait_for(lambda: not emu.connections())
        with pytest.raises(KeyError, match="forgotten"):
            emu.connection(info.conn_id)


@pytest.mark.parametrize("field", ["closed_history", "history_limit"])
def test_history_bounds_are_validated(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be >= 0"):
        EmulatorConfig(**{field: -1})  # type: ignore[arg-type]
    assert getattr(EmulatorConfig(**{field: 0}), field) == 0  # type: ignore[arg-type]
