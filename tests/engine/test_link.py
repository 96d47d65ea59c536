"""What both ticket kinds do with a connection (engine.runtime.link): the read loop counts and
skips what it cannot use and raises on an error frame, the keepalive declares a dead or stalled
connection, and a connect waits out a 429/418 block before taking a limiter slot."""

from __future__ import annotations

import math

import attrs
import orjson
import pytest
import trio
from trio.testing import MockClock

from engine.core.ratelimit import RateLimitBackoff, connect_limiter
from engine.core.stall import StallDetector
from engine.errors import ConnectionFailedError, ServerError
from engine.observability.frame_report import FrameReport
from engine.runtime.link import keepalive, read_frames, wait_connect_slot, watch_stall
from engine.transport.base import CloseInfo, ConnectionClosedError
from engine.wire.messages import Message, Trade

TRADE = {
    "type": "trade",
    "code": "KRW-BTC",
    "timestamp": 1,
    "trade_date": "2026-12-07",
    "trade_time": "00:00:00",
    "trade_timestamp": 1,
    "trade_price": 1.0,
    "trade_volume": 1.0,
    "ask_bid": "BID",
    "prev_closing_price": 1.0,
    "change": "EVEN",
    "change_price": 0.0,
    "sequential_id": 7,
    "stream_type": "REALTIME",
}


@attrs.define
class Counts:
    last_frame: float | None = None
    frames: int = 0
    frames_skipped: int = 0
    lost_at: float | None = None


class ScriptedConnection:
    """Hands out the given frames, then (optionally) never answers anything again."""

    def __init__(self, frames: list[bytes | str], *, pong: bool = True) -> None:
        self._frames = list(frames)
        self._pong = pong
        self.pings = 0

    async def send_text(self, text: str) -> None:
        await trio.lowlevel.checkpoint()

    async def receive(self) -> bytes | str:
        if self._frames:
            await trio.lowlevel.checkpoint()
            return self._frames.pop(0)
        raise ConnectionClosedError(CloseInfo(code=None, reason=""))

    async def ping(self) -> None:
        self.pings += 1
        if not self._pong:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await trio.lowlevel.checkpoint()

    @property
    def close_info(self) -> CloseInfo | None:
        return None


async def _read(frames: list[bytes | str], counts: Counts) -> tuple[list[Message], list[float]]:
    delivered: list[Message] = []
    restored: list[float] = []

    def deliver(name: str, generation: int, message: Message) -> None:
        assert (name, generation) == ("realtime-0", 3)
        delivered.append(message)

    with pytest.raises(ConnectionClosedError):
        await read_frames(
            ScriptedConnection(frames),
            deliver,
            name="realtime-0",
            generation=3,
            counts=counts,
            report=FrameReport(),
            received=received_counts,
            burst=2,
            on_restored=restored.append,
        )
    return delivered, restored


received_counts: dict[str, int] = {}


async def test_bad_and_unknown_frames_are_counted_and_skipped(autojump_clock: MockClock) -> None:
    received_counts.clear()
    counts = Counts(lost_at=trio.current_time())
    frames: list[bytes | str] = [
        b"not json",
        orjson.dumps({"type": "announcement", "code": "KRW-BTC"}),
        orjson.dumps({"status": "UP"}),
        orjson.dumps(TRADE),
        orjson.dumps([TRADE, {**TRADE, "sequential_id": 8}]),
    ]
    delivered, restored = await _read(frames, counts)
    assert [m.sequential_id for m in delivered if isinstance(m, Trade)] == [7, 7, 8]
    assert counts.frames == 5
    assert counts.frames_skipped == 2
    assert received_counts == {"status": 1, "trade": 3}
    assert restored == [0.0]  # once, at the first message after the loss
    assert counts.lost_at is None


async def test_an_error_frame_raises_server_error(autojump_clock: MockClock) -> None:
    error = orjson.dumps({"error": {"name": "INVALID_PARAM", "message": "bad"}})
    with pytest.raises(ServerError, match="INVALID_PARAM"):
        await read_frames(
            ScriptedConnection([error]),
            lambda name, generation, message: None,
            name="realtime-0",
            generation=1,
            counts=Counts(),
            report=FrameReport(),
            received={},
            burst=64,
        )


async def test_a_missing_pong_ends_the_connection_after_the_timeout(
    autojump_clock: MockClock,
) -> None:
    start = trio.current_time()
    with pytest.raises(ConnectionFailedError, match="no pong within 2 s"):
        await keepalive(ScriptedConnection([], pong=False), interval=15.0, pong_within=2.0)
    assert trio.current_time() - start == pytest.approx(17.0)


async def test_silence_beyond_the_heartbeat_is_a_stall(autojump_clock: MockClock) -> None:
    conn = ScriptedConnection([])
    start = trio.current_time()
    detector = StallDetector(heartbeat_timeout=12.5)
    with pytest.raises(ConnectionFailedError, match=r"stalled: no frame for 13\.0 s"):
        await watch_stall(conn, detector, Counts(), check_interval=0.5, pong_within=2.0)
    assert trio.current_time() - start == pytest.approx(13.0)
    assert conn.pings == 0  # a connection that never had a pace is not probed


async def test_a_busy_connection_gone_silent_is_probed_and_dropped_without_a_pong(
    autojump_clock: MockClock,
) -> None:
    conn = ScriptedConnection([], pong=False)
    detector = StallDetector(heartbeat_timeout=12.5, rate=20.0)
    counts = Counts(frames=1000, last_frame=trio.current_time())
    probes: list[float] = []
    start = trio.current_time()
    with pytest.raises(ConnectionFailedError, match=r"usually gets .* no pong within 2 s"):
        await watch_stall(
            conn,
            detector,
            counts,
            check_interval=0.5,
            pong_within=2.0,
            on_probe=lambda: probes.append(trio.current_time() - start),
        )
    assert probes == [2.5]  # past the 2 s floor, at the next check
    assert trio.current_time() - start == pytest.approx(4.5)


async def test_a_connect_waits_out_a_rate_limit_block(autojump_clock: MockClock) -> None:
    backoff = RateLimitBackoff()
    backoff.on_rejected(418, trio.current_time(), retry_after=12.0)
    blocked_for: list[float] = []
    start = trio.current_time()
    await wait_connect_slot(backoff, connect_limiter(5), on_blocked=blocked_for.append)
    waited = trio.current_time() - start
    assert blocked_for
    assert blocked_for[0] == pytest.approx(waited)
    assert waited >= 12.0
    assert backoff.blocked_until(trio.current_time()) <= trio.current_time()


async def test_connects_are_paced_by_the_shared_limiter(autojump_clock: MockClock) -> None:
    limiter = connect_limiter(5)
    backoff = RateLimitBackoff()
    times = []
    for _ in range(11):
        await wait_connect_slot(backoff, limiter)
        times.append(trio.current_time())
    # No sliding second ever holds more than five connects.
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[5:], strict=False))
    assert not math.isclose(times[-1], times[0])
