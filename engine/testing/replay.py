"""A recorded market replayed fast: a load generator for benchmarks against the emulator.

The live :class:`~engine.testing.marketdata.MarketSimulator` spends most of its time simulating
and rendering, which caps a single connection at roughly ten thousand frames per second. A
:class:`ReplayMarket` records a stretch of the seeded market once, then replays it in a loop,
``speed`` times faster than recorded. Each (event, type, rows, level) is rendered on first use and
cached, so after the first lap a replay costs nothing but the emulator's own work. Frames carry the
recorded timestamps (they repeat each lap), so use it to measure throughput, not correctness.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.testing.marketdata.market import Listing, MarketEvent, MarketSimulator

__all__ = ("ReplayMarket",)


class ReplayMarket:
    """``seconds`` of the market of ``catalog`` (seeded), replayed ``speed`` times faster.

    Pass it to ``open_emulator(simulator=...)``. It has the simulator's interface except
    :meth:`set_rate`, which cannot change recorded rates.
    """

    def __init__(
        self,
        catalog: Sequence[Listing],
        *,
        seed: int = 0,
        seconds: float = 30.0,
        speed: float = 100.0,
        rate_scale: float = 1.0,
    ) -> None:
        if not seconds > 0 or not speed > 0:
            raise ValueError(f"seconds and speed must be > 0, got {seconds} and {speed}")
        self._simulator = MarketSimulator(catalog, seed=seed, rate_scale=rate_scale)
        self._events = self._simulator.events_until(seconds)
        if not self._events:
            raise ValueError(
                f"the market recorded no event in {seconds} s: record longer or raise rate_scale"
            )
        self._period = seconds
        self._speed = speed
        self._position = 0
        self._laps = 0
        self._cache: dict[tuple[int, str, int, float], dict[str, object] | None] = {}

    @property
    def catalog(self) -> tuple[Listing, ...]:
        return self._simulator.catalog

    @property
    def recorded_events(self) -> int:
        """Events in one lap."""
        return len(self._events)

    def events_until(self, t: float) -> list[MarketEvent]:
        """The recorded events up to ``t * speed`` seconds into the (looping) recording."""
        target = t * self._speed
        events = self._events
        out: list[MarketEvent] = []
        while True:
            event = events[self._position]
            if self._laps * self._period + event.at > target:
                return out
            out.append(event)
            self._position += 1
            if self._position == len(events):
                self._position = 0
                self._laps += 1

    def render(
        self, data_type: str, code: str, stream_type: str, *, units: int = 30, level: float = 0
    ) -> dict[str, object] | None:
        """The state at the end of the recording (what snapshots show)."""
        return self._simulator.render(data_type, code, stream_type, units=units, level=level)

    def render_event(
        self, event: MarketEvent, data_type: str, *, units: int = 30, level: float = 0
    ) -> dict[str, object] | None:
        key = (id(event), data_type, units, level)  # events live in self._events: ids are stable
        if key not in self._cache:
            self._cache[key] = self._simulator.render_event(
                event, data_type, units=units, level=level
            )
        return self._cache[key]

    def set_rate(self, code: str, per_second: float) -> None:
        raise ValueError("a ReplayMarket replays recorded rates; use a MarketSimulator to set them")
