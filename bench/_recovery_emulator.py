"""The emulator of ``bench/recovery.py``: a child process that injects faults on command.

The emulator renders and frames every message of every KRW pair, so it gets its own process and
Trio loop (one core for the source, one for the engine under test, as in ``bench/engine.py``).
The parent asks it to drop connections, restart the server and add latency; each fault answer
carries ``time.perf_counter()`` instants taken around the fault. On Linux ``perf_counter`` reads
``CLOCK_MONOTONIC``, which both processes share, so the parent subtracts them from its own
readings directly.

Upbit's limits are enforced (5 connects/s per IP, 5 and 100 messages per connection per second
and minute) but an excess message is counted and then processed, as in ``bench/engine.py``: the
benchmark reports violations instead of letting one near miss cascade into extra reconnects.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import attrs
import trio

from bench._engine_emulator import krw_codes
from engine.testing import EmulatorConfig, Limits, open_emulator
from engine.testing.faults import DropHow

__all__ = ("EmulatorState", "FaultEmulator", "FaultTimes", "expected_pairs")

#: Seconds the parent waits for any answer of the child (a restart answers after its downtime).
_ANSWER_TIMEOUT = 60.0


@attrs.frozen
class FaultTimes:
    """``perf_counter`` instants of one fault, on the shared monotonic clock."""

    #: Just before the emulator started dropping (the loss instant).
    start: float
    #: When the drop returned (connections closed), or the server listened again (restart).
    end: float


@attrs.frozen
class EmulatorState:
    """What the emulator sees right now."""

    #: The subscription set of every open connection: (type, code) pairs, sorted.
    connections: tuple[tuple[tuple[str, str], ...], ...]
    #: ``perf_counter`` instants of every accepted WebSocket upgrade so far.
    connect_times: tuple[float, ...]
    connects_refused: int
    #: Client messages over a per-connection message limit (counted, then processed).
    rate_limited: int
    #: The emulator process's CPU seconds so far (``time.process_time``).
    cpu: float

    def subscribed(self) -> frozenset[tuple[str, str]]:
        """The union of the open connections' subscription sets."""
        return frozenset(pair for conn in self.connections for pair in conn)

    def connects_since(self, instant: float) -> int:
        return sum(1 for at in self.connect_times if at >= instant)


def _serve(options: dict[str, Any], pipe: Connection) -> None:
    """The child process: run the emulator and answer the parent's commands until ``stop``."""

    async def main() -> None:
        config = EmulatorConfig(
            markets=krw_codes(),
            limits=Limits(message_reaction="ignore", block_after=1 << 30),
            recent_frames=0,
        )
        # Trio's clock is perf_counter plus a per-run offset; history times convert with it.
        offset = time.perf_counter() - trio.current_time()
        async with open_emulator(config) as emu:
            pipe.send((emu.ws_url, emu.rest_url))
            while True:
                command, argument = await trio.to_thread.run_sync(pipe.recv)
                if command == "stop":
                    return
                if command == "drop":
                    how: DropHow = argument
                    start = time.perf_counter()
                    await emu.drop(how=how)
                    pipe.send(FaultTimes(start, time.perf_counter()))
                elif command == "restart":
                    downtime, how = argument
                    start = time.perf_counter()
                    await emu.restart(downtime=downtime, how=how)
                    pipe.send(FaultTimes(start, time.perf_counter()))
                elif command == "latency":
                    emu.set_latency(float(argument))
                    pipe.send(None)
                else:
                    connections = tuple(
                        tuple(
                            sorted(
                                (entry.type, code)
                                for entry in info.subscriptions
                                for code in entry.codes or ()
                            )
                        )
                        for info in emu.connections(open_only=True)
                    )
                    connects = tuple(
                        event.at + offset for event in emu.history() if event.kind == "connect"
                    )
                    limited = sum(1 for record in emu.requests() if record.kind == "rate_limited")
                    cpu = time.process_time()
                    pipe.send(
                        EmulatorState(connections, connects, emu.connects_refused, limited, cpu)
                    )

    trio.run(main)


class FaultEmulator:
    """A running emulator in a child process (use as a context manager)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=({}, child), daemon=True)
        self._process.start()
        urls: tuple[str, str] = self._receive("start")
        self.ws_url, self.rest_url = urls
        self._lock = trio.Lock()

    def __enter__(self) -> FaultEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _ask(self, command: str, argument: object = None) -> Any:
        # One question at a time: answers come back in order on the one pipe.
        async with self._lock:
            self._pipe.send((command, argument))

            return await trio.to_thread.run_sync(self._receive, command)

    def _receive(self, command: str) -> Any:
        deadline = time.monotonic() + _ANSWER_TIMEOUT
        while not self._pipe.poll(0.1):
            if not self._process.is_alive():
                raise RuntimeError(
                    f"the emulator process exited (code {self._process.exitcode}) before "
                    f"answering {command!r}; its traceback is above"
                )
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(
                    f"the emulator process did not answer {command!r} within {_ANSWER_TIMEOUT:g} s"
                )
        return self._pipe.recv()

    async def drop(self, how: DropHow) -> FaultTimes:
        """Drop every open connection ``how`` (``abort``, ``reset``, ``close1000``,
        ``close1001``); returns once they are closed."""
        times: FaultTimes = await self._ask("drop", how)
        return times

    async def restart(self, downtime: float, how: DropHow = "abort") -> FaultTimes:
        """Stop listening, drop every connection, wait ``downtime``, listen again."""
        times: FaultTimes = await self._ask("restart", (downtime, how))
        return times

    async def set_latency(self, seconds: float) -> None:
        """Delay every frame the emulator sends, on every connection, by ``seconds``."""
        await self._ask("latency", seconds)

    async def state(self) -> EmulatorState:
        answer: EmulatorState = await self._ask("state")
        return answer

    def close(self) -> None:
        if self._process.is_alive():
            self._pipe.send(("stop", None))
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def expected_pairs(types: Sequence[str], codes: Sequence[str]) -> frozenset[tuple[str, str]]:
    """The emulator-side spelling of subscribing ``types`` x ``codes``."""
    return frozenset((t, c) for t in types for c in codes)
