"""Replaying a user's recording (``upbit-engine record``) through the emulator: your own captured
day as a test fixture.

A recording is gzip-compressed JSON lines (see :mod:`engine.gateway.recorder`): a header line,
then one line per message, ``{"t": <receive time, unix ms>, "msg": <Upbit DEFAULT JSON>}``.
:class:`RecordedMarket` plays its messages at their recorded pace (``speed=1``) or faster, each
as the emulator's REALTIME frame of its type and code, in the recorded order; a SNAPSHOT asked
for meanwhile is the latest recorded value of the stream. Pass it as
``open_emulator(simulator=RecordedMarket(paths))``; the emulator's catalog is then the recorded
codes. Orderbooks play as recorded (their depth and level cannot be re-rendered).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import orjson

from engine.testing.marketdata.market import Listing, default_catalog

__all__ = ("RecordedEvent", "RecordedMarket", "read_recording")


@attrs.frozen
class RecordedEvent:
    """One recorded message, due ``at`` seconds into the replay."""

    code: str
    at: float
    data_type: str
    payload: dict[str, object] = attrs.field(eq=False, repr=False)

    @property
    def kinds(self) -> frozenset[str]:
        family = "candle" if self.data_type.startswith("candle.") else self.data_type
        return frozenset({family})


def read_recording(paths: Iterable[Path | str]) -> list[tuple[float, dict[str, object]]]:
    """``(receive time in unix ms, message)`` of every message in ``paths``, in file order
    (name order sorts rotated files by time). A file cut short (a recorder that was killed)
    gives what it has."""
    out: list[tuple[float, dict[str, object]]] = []
    for path in sorted(Path(p) for p in paths):
        try:
            with gzip.open(path, "rb") as handle:
                for line in handle:
                    record = orjson.loads(line)
                    message = record.get("msg") if isinstance(record, dict) else None
                    if isinstance(message, dict) and isinstance(record.get("t"), int | float):
                        out.append((float(record["t"]), message))
        except EOFError:
            continue  # the recorder died mid-block: keep the complete lines
    return out


class RecordedMarket:
    """A ``MarketSource`` that replays a recording (see the module docstring)."""

    def __init__(self, paths: Iterable[Path | str] | Path | str, *, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        files = [paths] if isinstance(paths, Path | str) else list(paths)
        records = read_recording(files)
        if not records:
            raise ValueError(f"no recorded message in {[str(f) for f in files]}")
        start = records[0][0]
        self._events = [
            RecordedEvent(
                str(message.get("code", "")),
                (t - start) / 1000.0 / speed,
                str(message.get("type", "")),
                message,
            )
            for t, message in records
            if message.get("code") and message.get("type")
        ]
        self._position = 0
        self._latest: dict[tuple[str, str], dict[str, object]] = {}
        self._first: dict[tuple[str, str], dict[str, object]] = {}
        for event in self._events:
            self._first.setdefault((event.data_type, event.code), event.payload)
        codes = list(dict.fromkeys(event.code for event in self._events))
        known = {listing.market: listing for listing in default_catalog()}
        self.catalog: tuple[Listing, ...] = tuple(
            known.get(code) or attrs.evolve(next(iter(known.values())), market=code)
            for code in codes
        )

    @property
    def recorded_events(self) -> int:
        return len(self._events)

    def events_until(self, t: float) -> Sequence[RecordedEvent]:
        start = self._position
        events = self._events
        end = start
        while end < len(events) and events[end].at <= t:
            self._latest[(events[end].data_type, events[end].code)] = events[end].payload
            end += 1
        self._position = end
        return events[start:end]

    def render(
        self, data_type: str, code: str, stream_type: str, *, units: int = 30, level: float = 0
    ) -> dict[str, object] | None:
        del units, level
        payload = self._latest.get((data_type, code)) or self._first.get((data_type, code))
        return None if payload is None else {**payload, "stream_type": stream_type}

    def render_event(
        self, event: RecordedEvent, data_type: str, *, units: int = 30, level: float = 0
    ) -> dict[str, object] | None:
        del units, level
        if data_type != event.data_type:
            return None
        return {**event.payload, "stream_type": "REALTIME"}

    def set_rate(self, code: str, per_second: float) -> None:
        raise ValueError(
            "a RecordedMarket replays recorded rates; use a MarketSimulator to set them"
        )
