"""A puppet actor for fault injection: it does whatever its mailbox (or its fault plan) says."""

from __future__ import annotations

import os
from collections import deque

import attrs
import trio
from hypothesis import HealthCheck, settings

from actors import ActorContext, ActorFunction, Reply, Shutdown

LONG = os.environ.get("HYPOTHESIS_PROFILE", "") in {"long", "actors-long", "thorough"}


def examples(ci: int, long: int) -> settings:
    """Hypothesis settings: modest in CI, ``long`` examples with HYPOTHESIS_PROFILE=long."""
    return settings(
        max_examples=long if LONG else ci,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@attrs.frozen
class Crash:
    """Raise :class:`Boom` (an abnormal exit)."""


@attrs.frozen
class Exit:
    """Return (a normal exit)."""


@attrs.frozen
class Quit:
    """Raise :class:`actors.Shutdown` (a shutdown exit)."""


@attrs.frozen
class Hang:
    """Stop serving: ignore the mailbox and stop requests until cancelled."""


@attrs.frozen
class Echo:
    """Reply with the incarnation's generation."""

    reply: Reply[int]


Command = Crash | Exit | Quit | Hang | Echo


class Boom(Exception):
    """The crash a puppet was told to have."""


class StartFailed(Exception):
    """A start fault planned by the test."""


@attrs.define
class Faults:
    """Start faults planned per path: ``"fail"`` raises, ``"hang"`` never reports ready."""

    starts: dict[tuple[str, ...], deque[str]] = attrs.field(factory=dict)

    def arm(self, path: tuple[str, ...], fault: str, count: int = 1) -> None:
        self.starts.setdefault(path, deque()).extend([fault] * count)

    def take(self, path: tuple[str, ...]) -> str | None:
        queue = self.starts.get(path)
        return queue.popleft() if queue else None

    def copy(self) -> Faults:
        return Faults({path: deque(queue) for path, queue in self.starts.items()})


def puppet(faults: Faults) -> ActorFunction[Command]:
    """An actor whose start obeys ``faults`` and whose life obeys its mailbox."""

    async def run(
        ctx: ActorContext[Command], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        fault = faults.take(ctx.path)
        if fault == "fail":
            raise StartFailed(f"{ctx.path} generation {ctx.generation} was told to fail")
        if fault == "hang":
            await trio.sleep_forever()
        task_status.started()
        async for message in ctx.mailbox:
            if isinstance(message, Echo):
                message.reply.send(ctx.generation)
            elif isinstance(message, Crash):
                raise Boom(f"{ctx.path} generation {ctx.generation} crashed on purpose")
            elif isinstance(message, Exit):
                return
            elif isinstance(message, Quit):
                raise Shutdown("told to quit")
            else:
                await trio.sleep_forever()

    return run
