"""Finding a stalled connection (TCP open, nothing arriving) in seconds, sans-IO.

A connection on Upbit's status stream (the text ``PING`` starts an ``UP`` frame every 10 s) is
never silent for longer than that while it works, whatever its pairs do: silence beyond
``heartbeat_timeout`` is a stall. That bounds detection on a quiet connection. A busy connection
can do much better: it knows its usual pace (an exponentially weighted rate of frames per
second), so a silence of several of its usual intervals, and at least ``probe_floor`` seconds, is
suspicious. It is then probed once (a protocol ping, which Upbit answers with a pong at once; a
text ``PING`` gets no one-to-one reply) and counted stalled if no pong comes within
``probe_timeout``. A pong means the market went quiet: no second probe until a frame arrives,
the heartbeat bound still applies.

:class:`StallDetector` holds that judgement; the ticket's watchdog feeds it the frame counter
and the time of the last frame every ``check_interval`` and acts on the verdict.
"""

from __future__ import annotations

import enum
import math

import attrs

__all__ = ("StallDetector", "StallVerdict", "Verdict")


class Verdict(enum.Enum):
    OK = "ok"
    #: Silent for several usual intervals: ping now and judge by the pong.
    PROBE = "probe"
    #: Silent beyond the heartbeat: reconnect.
    STALLED = "stalled"


@attrs.frozen
class StallVerdict:
    verdict: Verdict
    #: Seconds since the last frame (or since the connection opened).
    silent: float
    #: Why, in words for logs and ``Interrupted.cause``.
    reason: str = ""


@attrs.define
class StallDetector:
    """The stall judgement of one connection (see the module docstring)."""

    #: Seconds of silence that mean a stall on a connection with a heartbeat; None when no
    #: heartbeat is expected (then only probes and protocol pings judge).
    heartbeat_timeout: float | None
    #: Never probe before this much silence.
    probe_floor: float = 2.0
    #: Probe after this many usual inter-frame intervals of silence.
    probe_intervals: float = 4.0
    #: Seconds of history the rate estimate weighs most (an exponential time constant).
    time_constant: float = 30.0
    #: Whether busy connections are probed at all.
    probing: bool = True
    #: Frames per second, exponentially weighted.
    rate: float = 0.0
    _opened_at: float = 0.0
    _seen_at: float | None = None
    _seen_frames: int = 0
    #: The frame count when the last probe was sent: no new probe until it grows.
    _probed_at_frames: int | None = None

    def start(self, now: float, frames: int) -> None:
        """A connection opened at ``now`` with the frame counter at ``frames``. The rate learned
        on earlier connections is kept: the same streams come back at the same pace."""
        self._opened_at = now
        self._seen_at = now
        self._seen_frames = frames
        self._probed_at_frames = None

    def probe_after(self) -> float:
        """Seconds of silence after which a busy connection is probed (``inf``: never)."""
        if not self.probing or self.rate <= 0:
            return math.inf
        after = max(self.probe_floor, self.probe_intervals / self.rate)
        if self.heartbeat_timeout is not None and after >= self.heartbeat_timeout:
            return math.inf  # a quiet connection: the heartbeat bound comes first anyway
        return after

    def observe(self, now: float, frames: int, last_frame: float | None) -> StallVerdict:
        """Update the rate with the frames counted since the last call and judge the silence."""
        self._learn(now, frames)
        since = self._opened_at if last_frame is None else max(self._opened_at, last_frame)
        silent = max(0.0, now - since)
        timeout = self.heartbeat_timeout
        if timeout is not None and silent > timeout:
            return StallVerdict(
                Verdict.STALLED,
                silent,
                f"stalled: no frame for {silent:.1f} s (Upbit's status frame comes every 10 s; "
                f"stall_timeout {timeout:g} s)",
            )
        if silent > self.probe_after() and self._probed_at_frames != frames:
            self._probed_at_frames = frames
            return StallVerdict(Verdict.PROBE, silent)
        return StallVerdict(Verdict.OK, silent)

    def stalled_after_probe(self, silent: float, pong_within: float) -> str:
        """The cause when a probe went unanswered."""
        return (
            f"stalled: no frame for {silent:.1f} s on a connection that usually gets "
            f"{self.rate:.1f} frames/s, and no pong within {pong_within:g} s"
        )

    def _learn(self, now: float, frames: int) -> None:
        seen_at = self._seen_at
        if seen_at is None:
            self.start(now, frames)
            return
        elapsed = now - seen_at
        if elapsed <= 0:
            return
        instant = (frames - self._seen_frames) / elapsed
        weight = 1.0 - math.exp(-elapsed / self.time_constant)
        self.rate += weight * (instant - self.rate)
        self._seen_at = now
        self._seen_frames = frames
