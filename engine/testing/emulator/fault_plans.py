"""Fault actions turned into effects on a running emulator (``Emulator.apply``, ``run_plan``).

An action's targets are drawn when the action is prepared, synchronously, so a plan's RNG is
consumed in step order: the same plan against the same connections picks the same victims. The
effect itself then runs as a task (a drop or a restart takes time); a targeted connection that
closed in between is skipped.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol

import trio

from engine.testing.drift import Drift
from engine.testing.emulator.connections import Connections
from engine.testing.emulator.session import MalformedKind, Session
from engine.testing.faults import (
    DropConnections,
    DropHow,
    FaultAction,
    FaultPlan,
    InjectError,
    InjectMalformed,
    RejectConnects,
    RestartServer,
    SetDrift,
    SetLatency,
    SetLimits,
    StallConnection,
    Target,
)

__all__ = ("FaultControls", "FaultPlanner")

Effect = Callable[[], Awaitable[None]]


class FaultControls(Protocol):
    """The emulator's public controls that fault actions drive."""

    async def restart(self, *, downtime: float = ..., how: DropHow = ...) -> None: ...
    def set_latency(self, seconds: float, conn_id: int | None = ...) -> None: ...
    def reject_connects(
        self, status: Literal[429, 418] = ..., *, count: int = ..., block: float | None = ...
    ) -> None: ...
    def set_limits(self, enforce: bool) -> None: ...
    def set_drift(self, drift: Drift) -> None: ...
    def stall(self, conn_id: int, *, duration: float | None = ...) -> None: ...
    def inject_error(
        self, conn_id: int, name: str = ..., message: str | None = ..., *, close: bool = ...
    ) -> None: ...
    def inject_malformed(self, conn_id: int, kind: MalformedKind = ...) -> None: ...


async def _nothing() -> None:
    await trio.lowlevel.checkpoint()


def _now(effect: Callable[[], None]) -> Effect:
    """An effect that takes no time: ``effect()`` then a checkpoint."""

    async def run() -> None:
        effect()
        await trio.lowlevel.checkpoint()

    return run


class FaultPlanner:
    """Prepares fault actions against ``controls`` and runs fault plans.

    ``drop`` drops the given sessions and returns once they are closed (the emulator's own drop,
    which skips sessions already closed).
    """

    def __init__(
        self,
        controls: FaultControls,
        connections: Connections,
        drop: Callable[[Sequence[Session], DropHow], Awaitable[None]],
    ) -> None:
        self._controls = controls
        self._connections = connections
        self._drop = drop

    def _pick(self, target: Target, rng: random.Random) -> list[Session]:
        live = [s for s in self._connections.open() if s.accepting]
        if not live:
            return []
        if target == "all":
            return live
        if target == "oldest":
            return live[:1]
        if target == "newest":
            return live[-1:]
        return [rng.choice(live)]

    def prepare(self, action: FaultAction, rng: random.Random) -> Effect:
        """The effect of ``action``, its targets (if it has any) drawn now with ``rng``."""
        controls = self._controls
        if isinstance(action, DropConnections):
            sessions = self._pick(action.target, rng)
            return lambda: self._drop(sessions, action.how)
        if isinstance(action, RestartServer):
            return lambda: controls.restart(downtime=action.downtime, how=action.how)
        if isinstance(action, SetLatency):
            return _now(lambda: controls.set_latency(action.seconds))
        if isinstance(action, RejectConnects):
            return _now(
                lambda: controls.reject_connects(
                    action.status, count=action.count, block=action.block
                )
            )
        if isinstance(action, SetLimits):
            return _now(lambda: controls.set_limits(action.enforce))
        if isinstance(action, SetDrift):
            return _now(lambda: controls.set_drift(action.drift))
        return self._prepare_targeted(action, rng)

    def _prepare_targeted(
        self, action: StallConnection | InjectError | InjectMalformed, rng: random.Random
    ) -> Effect:
        """Stall, error or malformed frame: once per target still open when the step runs."""
        sessions = self._pick(action.target, rng)
        if not sessions:
            return _nothing
        ids = [s.conn_id for s in sessions]
        on_one = self._on_one(action)

        def effect() -> None:
            for conn_id in [i for i in ids if self._connections.is_open(i)]:
                on_one(conn_id)

        return _now(effect)

    def _on_one(
        self, action: StallConnection | InjectError | InjectMalformed
    ) -> Callable[[int], None]:
        controls = self._controls
        if isinstance(action, StallConnection):
            stall = action
            return lambda conn_id: controls.stall(conn_id, duration=stall.duration)
        if isinstance(action, InjectError):
            error = action
            return lambda conn_id: controls.inject_error(
                conn_id, error.name, error.message, close=error.close
            )
        malformed = action
        return lambda conn_id: controls.inject_malformed(conn_id, malformed.kind)

    async def run(self, plan: FaultPlan) -> None:
        """Apply each step of ``plan`` at its offset from now; return when all are done."""
        rng = random.Random(plan.seed)
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for step in plan.steps:
                await trio.sleep_until(start + step.at)
                nursery.start_soon(self.prepare(step.action, rng))
