"""The emulator of ``bench/engine.py``, in a process of its own, driven over a pipe.

The emulator is CPU-heavy at the rates the throughput benchmark needs (it renders and frames
every message), so it gets its own process and Trio loop instead of sharing the measured
client's: on a 2-core machine, one core for the source and one for the client under test.
The parent asks for counters (frames queued and dropped per connection, the subscription set each
connection holds) and toggles rate-limit enforcement; everything else is the ordinary
``engine.testing.open_emulator``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import attrs
import trio

from engine.testing import EmulatorConfig, Limits, RequestRecord, default_catalog, open_emulator

__all__ = (
    "ConnectionCounters",
    "EmulatorCounters",
    "EmulatorProcess",
    "Refused",
    "krw_codes",
    "subscription_pairs",
)


def krw_codes(seed: int = 0) -> tuple[str, ...]:
    """The KRW pairs of the default catalog, in catalog order."""
    return tuple(
        listing.market for listing in default_catalog(seed) if listing.market.startswith("KRW-")
    )


@attrs.frozen
class ConnectionCounters:
    conn_id: int
    #: Frames queued for this client (data, snapshots, replies).
    frames_sent: int
    #: Frames discarded because the client was ``send_buffer_limit`` behind.
    frames_dropped: int
    #: The connection's subscription set: (type, code) pairs, sorted.
    subscriptions: tuple[tuple[str, str], ...]


@attrs.frozen
class EmulatorCounters:
    #: The emulator's own clock (seconds), for rates.
    at: float
    #: Market events generated and realtime frames fanned out since start.
    events: int
    realtime_frames: int
    #: Simulator seconds elapsed (falls behind ``at`` when the emulator is overloaded).
    market_time: float
    connections: tuple[ConnectionCounters, ...]
    #: Client messages refused for exceeding Upbit's message limits, and upgrades refused.
    rate_limited: int = 0
    connects_refused: int = 0

    def totals(self) -> tuple[int, int]:
        """Frames queued and frames dropped, summed over the open connections."""
        return (
            sum(c.frames_sent for c in self.connections),
            sum(c.frames_dropped for c in self.connections),
        )


@attrs.frozen
class Refused:
    """A client message the emulator refused for exceeding a message limit, with the arrival
    times of the messages before it on the same connection (emulator clock, seconds)."""

    conn_id: int
    at: float
    text: str
    #: Arrival times of the six messages before it on that connection (oldest first), and
    #: their kinds.
    previous: tuple[tuple[float, str], ...]

    @property
    def span(self) -> float:
        """Seconds between the fifth message before this one and this one, on the server's
        clock (under 1.0 s is what made it excess; keepalive PINGs are not counted)."""
        counted = [at for at, kind in self.previous if kind != "ping"]
        return self.at - counted[-5] if len(counted) >= 5 else float("inf")


def _refusals(records: Sequence[RequestRecord]) -> tuple[Refused, ...]:
    found: list[Refused] = []
    for index, record in enumerate(records):
        if record.kind != "rate_limited":
            continue
        # With reaction "ignore" an excess message is logged twice (refused, then processed).
        same = [
            r for r in records[:index] if r.conn_id == record.conn_id and r.kind != "rate_limited"
        ][-6:]
        found.append(
            Refused(record.conn_id, record.at, record.text, tuple((r.at, r.kind) for r in same))
        )
    return tuple(found)


def _serve(options: dict[str, Any], pipe: Connection) -> None:
    """The child process: run the emulator and answer the parent's commands until ``stop``."""

    async def main() -> None:
        codes = krw_codes()
        config = EmulatorConfig(
            markets=codes,
            rate_scale=options["rate_scale"],
            # A message over the limit is counted (as "rate_limited") and then processed, instead
            # of Upbit's error-and-close: the benchmark reports violations without letting one
            # near miss at a window's edge cascade into reconnects that distort the timings.
            # Escalation to a block is off too, so the count is of genuine excess messages.
            limits=Limits(
                enforce=options["enforce_limits"], message_reaction="ignore", block_after=1 << 30
            ),
            # A client that falls 8 MB behind loses frames (counted) instead of its connection:
            # the throughput benchmark drives the market faster than any client reads.
            slow_client="drop_frames",
            idle_timeout=None,
            recent_frames=0,
        )
        async with open_emulator(config) as emu:
            pipe.send((emu.ws_url, emu.rest_url))
            while True:
                command, argument = await trio.to_thread.run_sync(pipe.recv)
                if command == "stop":
                    return
                if command == "limits":
                    emu.set_limits(bool(argument))
                    pipe.send(None)
                    continue
                if command == "refusals":
                    pipe.send(_refusals(emu.requests()))
                    continue
                stats = emu.statistics()
                connections = tuple(
                    ConnectionCounters(
                        info.conn_id,
                        info.frames_sent,
                        info.frames_dropped,
                        tuple(
                            sorted(
                                (entry.type, code)
                                for entry in info.subscriptions
                                for code in entry.codes or ()
                            )
                        ),
                    )
                    for info in emu.connections(open_only=True)
                )
                pipe.send(
                    EmulatorCounters(
                        trio.current_time(),
                        stats.events,
                        stats.realtime_frames,
                        stats.market_time,
                        connections,
                        sum(1 for record in emu.requests() if record.kind == "rate_limited"),
                        stats.connects_refused,
                    )
                )

    trio.run(main)


class EmulatorProcess:
    """A running emulator in a child process (use as a context manager)."""

    def __init__(self, *, rate_scale: float, enforce_limits: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=({"rate_scale": rate_scale, "enforce_limits": enforce_limits}, child),
            daemon=True,
        )
        self._process.start()
        urls: tuple[str, str] = self._pipe.recv()
        self.ws_url, self.rest_url = urls
        self._lock = trio.Lock()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _ask(self, command: str, argument: object = None) -> Any:
        # One question at a time: answers come back in order on the one pipe.
        async with self._lock:
            self._pipe.send((command, argument))
            return await trio.to_thread.run_sync(self._pipe.recv)

    async def counters(self) -> EmulatorCounters:
        answer: EmulatorCounters = await self._ask("stats")
        return answer

    async def refusals(self) -> tuple[Refused, ...]:
        """Every message refused for exceeding a limit so far, with its context."""
        answer: tuple[Refused, ...] = await self._ask("refusals")
        return answer

    async def set_limits(self, enforce: bool) -> None:
        await self._ask("limits", enforce)

    def close(self) -> None:
        if self._process.is_alive():
            self._pipe.send(("stop", None))
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def subscription_pairs(types: Sequence[str], codes: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The emulator-side spelling of subscribing ``types`` x ``codes``."""
    return tuple(sorted((t, c) for t in types for c in codes))
