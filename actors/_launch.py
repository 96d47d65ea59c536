"""The ways to run a :class:`~actors.Supervisor`: for the span of an ``async with`` block
(:func:`open_supervisor`), or nested as a child of another supervisor (:func:`supervisor_spec`).
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Never

import trio

from actors._restarts import RestartHook
from actors._supervisor import Supervisor, check_unique
from actors._util import single_leaf
from actors.actor import ActorContext
from actors.intensity import BackoffPolicy, RestartIntensity
from actors.spec import ChildSpec
from actors.strategy import Restart, Strategy
from actors.tree import NodeKind

__all__ = ("open_supervisor", "supervisor_spec")


def supervisor_spec(
    name: str,
    children: Iterable[ChildSpec[Any]] = (),
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: RestartIntensity = RestartIntensity(),  # noqa: B008
    backoff: BackoffPolicy = BackoffPolicy.none(),  # noqa: B008
    rng: random.Random | None = None,
    on_restart: RestartHook | None = None,
    restart: Restart = Restart.PERMANENT,
    shutdown: float = math.inf,
    start_timeout: float = math.inf,
) -> ChildSpec[Never]:
    """A child spec that runs a nested :class:`Supervisor` with these children and options.

    Each incarnation is a fresh supervisor started from ``children``: children added at run time
    are not restarted with it (as in OTP). It reports ready once all its children are, and its
    parent sees its :class:`~actors.SupervisorGaveUpError` as an abnormal exit. The defaults
    ``shutdown=inf`` and ``start_timeout=inf`` give the subtree all the time it needs; its own
    children have their own limits.
    """
    specs = tuple(children)
    check_unique(specs)

    async def run_nested(
        ctx: ActorContext[Never], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        nested = Supervisor(
            specs,
            name=name,
            strategy=strategy,
            intensity=intensity,
            backoff=backoff,
            rng=rng,
            on_restart=on_restart,
        )
        nested._adopt(ctx)
        await nested.run(task_status=task_status)

    return ChildSpec(
        name,
        run_nested,
        restart=restart,
        shutdown=shutdown,
        start_timeout=start_timeout,
        mailbox_size=0,
        kind=NodeKind.SUPERVISOR,
    )


@asynccontextmanager
async def open_supervisor(
    children: Iterable[ChildSpec[Any]] = (),
    *,
    name: str = "supervisor",
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: RestartIntensity = RestartIntensity(),  # noqa: B008
    backoff: BackoffPolicy = BackoffPolicy.none(),  # noqa: B008
    rng: random.Random | None = None,
    on_restart: RestartHook | None = None,
) -> AsyncIterator[Supervisor]:
    """Run a :class:`Supervisor` for the duration of the ``async with`` block.

    The children are started (in order) before the block runs; leaving the block, normally or
    with an exception, stops them in reverse order. If the supervisor gives up, the block is
    cancelled and :class:`~actors.SupervisorGaveUpError` is raised from the ``async with``. A
    single exception (yours, or the runtime's) is raised as itself, not wrapped in a group.
    Cancellation from outside cancels every task of the tree at once (Trio semantics): use the
    block's normal exit, or :meth:`Supervisor.request_stop`, for an ordered stop.
    """
    supervisor = Supervisor(
        children,
        name=name,
        strategy=strategy,
        intensity=intensity,
        backoff=backoff,
        rng=rng,
        on_restart=on_restart,
    )
    unwrapped: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            try:
                yield supervisor
            except Exception:
                # Stop the tree in order before the error reaches the nursery, which would
                # cancel every child at once.
                await supervisor.stop()
                raise
            finally:
                supervisor.request_stop()
    except BaseExceptionGroup as group:
        # Two tasks only: the block and the supervisor. One exception is raised as itself.
        unwrapped = single_leaf(group)
        if unwrapped is None:
            raise
    if unwrapped is not None:
        raise unwrapped
