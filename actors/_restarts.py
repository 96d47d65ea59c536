"""A supervisor's restart handling: its intensity window, its queue of restart plans, and the
strategy applied when a child exits without being asked to (the "exit of a child" and "plans"
steps told in :mod:`actors.supervisor`).

It reaches its supervisor only through :class:`RestartHost`, so it need not import it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeAlias, final

import attrs
import trio

from actors._child import RUNNING_STATES, Child, stop_child
from actors._tree_shared import TreeShared
from actors.errors import SupervisorGaveUpError
from actors.events import Restarting, RestartRecord
from actors.intensity import RestartIntensity, RestartWindow
from actors.strategy import (
    ExitKind,
    ExitReason,
    Restart,
    Strategy,
    restart_group,
    should_restart,
)
from actors.tree import NodeState

__all__ = ("Plan", "RestartHook", "RestartHost", "Restarts")

RestartHook: TypeAlias = Callable[[str, int], Awaitable[None]]
"""``async def hook(name, generation)``: awaited after a restarted child is ready, before the next
child of its group starts."""


class RestartHost(Protocol):
    """What restart handling needs of its supervisor (a Protocol, so this module need not import
    the supervisor, which imports it)."""

    _children: dict[str, Child]
    _tree: TreeShared
    _rng: random.Random

    async def _start(self, child: Child, *, restart: bool) -> BaseException | None: ...

    def _remove(self, child: Child) -> None: ...

    async def _give_up(self, now: float) -> SupervisorGaveUpError: ...


@attrs.define(eq=False)
class Plan:
    """A queued restart: these children, in start order, once ``due``."""

    due: float
    names: list[str]


@final
class Restarts:
    """A supervisor's restart policy and bookkeeping: its window and its queued plans."""

    def __init__(
        self,
        host: RestartHost,
        strategy: Strategy,
        intensity: RestartIntensity,
        on_restart: RestartHook | None,
    ) -> None:
        self._host = host
        self.strategy = strategy
        self.intensity = intensity
        self.on_restart = on_restart
        self.window: RestartWindow[RestartRecord] = RestartWindow(intensity)
        self.plans: list[Plan] = []

    async def after_exit(
        self, child: Child, generation: int, reason: ExitReason, *, counted: bool = True
    ) -> SupervisorGaveUpError | None:
        """A child ended (or failed to start) without being asked to: apply the policy.

        ``counted=False`` (the incarnation had marked itself healthy) keeps the restart out of
        the intensity window. Returns the error to raise if the supervisor gave up.
        """
        host = self._host
        if not should_restart(child.spec.restart, reason):
            if child.spec.restart is Restart.TEMPORARY:
                host._remove(child)
            else:
                child.state = NodeState.STOPPED
                host._tree.notify_changed()
            return None
        now = trio.current_time()
        record = RestartRecord(now, child.name, generation, reason)
        if counted and not self.window.record(now, record):
            return await host._give_up(now)
        group = restart_group(self.strategy, list(host._children), child.name)
        for name in reversed(group):
            other = host._children[name]
            if other is child:
                continue
            if other.state in RUNNING_STATES:
                await stop_child(other)
            if other.spec.restart is Restart.TEMPORARY:
                host._remove(other)
        members = [name for name in group if name in host._children]
        self.claim(members)
        delay = child.backoff.next_delay(host._rng)
        at = trio.current_time()
        in_window = self.window.count(now)
        for name in members:
            member = host._children[name]
            member.state = NodeState.RESTARTING
            assert member.incarnation is not None  # every member has been started before
            host._tree.bus.publish(
                Restarting(
                    member.path, member.incarnation.generation, at, delay, child.name, in_window
                )
            )
        self.plans.append(Plan(at + delay, members))
        host._tree.notify_changed()
        return None

    async def run_plan(self, plan: Plan) -> SupervisorGaveUpError | None:
        """Restart the plan's children in order; returns the error to raise if the supervisor
        gave up meanwhile."""
        host = self._host
        self.plans.remove(plan)
        for name in plan.names:
            child = host._children.get(name)
            if child is None or child.state is not NodeState.RESTARTING or self.claimed(name):
                continue  # terminated meanwhile, or taken over by a newer plan
            error = await host._start(child, restart=True)
            if error is None and self.on_restart is not None:
                error = await self._run_hook(child)
            if error is not None:
                assert child.incarnation is not None
                assert child.last_exit is not None
                gave_up = await self.after_exit(
                    child, child.incarnation.generation, child.last_exit
                )
                if gave_up is not None:
                    return gave_up
        return None

    async def _run_hook(self, child: Child) -> BaseException | None:
        incarnation = child.incarnation
        assert incarnation is not None
        assert self.on_restart is not None
        try:
            await self.on_restart(child.name, incarnation.generation)
        except Exception as error:
            await stop_child(child)
            child.last_exit = ExitReason(ExitKind.ERROR, error, detail="restart hook failed")
            return error
        return None

    def history(self, now: float) -> tuple[RestartRecord, ...]:
        """The restarts inside the window at ``now``, oldest first."""
        return tuple(record for _, record in self.window.entries(now))

    def claimed(self, name: str) -> bool:
        return any(name in plan.names for plan in self.plans)

    def claim(self, names: Iterable[str]) -> None:
        """Take ``names`` out of every queued plan (a newer plan or a termination owns them)."""
        wanted = set(names)
        for plan in list(self.plans):
            plan.names = [name for name in plan.names if name not in wanted]
            if not plan.names:
                self.plans.remove(plan)

    def due_plan(self) -> Plan | None:
        """The earliest queued plan if it is due now."""
        if not self.plans:
            return None
        plan = min(self.plans, key=lambda p: p.due)
        return plan if plan.due <= trio.current_time() else None

    def next_due(self) -> float:
        """When the earliest queued plan falls due (``inf`` if none is queued)."""
        return min((plan.due for plan in self.plans), default=math.inf)
