"""The facade's waits for a state: ``wait_active`` (one subscription live) and ``wait_settled``
(every change on the wire). Both wake on :attr:`EngineCore.changed`, which the registry actor
sets after every command, and both have a deadline that raises an error saying what was pending.
"""

from __future__ import annotations

import trio

from engine.core.registry import Subscription, SubscriptionState
from engine.errors import (
    EngineClosedError,
    InvalidSubscriptionError,
    NotSettledError,
    SubscriptionFailedError,
    SubscriptionTimeoutError,
)
from engine.facade.views import UP
from engine.runtime.state import EngineCore

__all__ = ("CLOSE_WAIT", "wait_active", "wait_closed", "wait_settled")

#: Seconds ``optimize_subscriptions`` / ``cleanup_inactive`` wait for the tickets they close.
CLOSE_WAIT = 10.0


def _deadline(core: EngineCore, timeout: float | None) -> float:
    if timeout is None:
        timeout = core.config.connect_timeout + core.config.snapshot_timeout
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    return timeout


async def wait_active(
    core: EngineCore,
    subscription_id: str,
    timeout: float | None,  # noqa: ASYNC109 (the facade's documented deadline)
) -> Subscription:
    """See ``Engine.wait_active``."""
    timeout = _deadline(core, timeout)
    with trio.move_on_after(timeout):
        while True:
            sub = core.registry.subscription(subscription_id)
            if sub.state is SubscriptionState.FAILED:
                raise SubscriptionFailedError(subscription_id, sub.failure or "failed")
            if not sub.is_live:
                raise InvalidSubscriptionError(
                    [f"{subscription_id} is {sub.state.value}: it was unsubscribed"]
                )
            if sub.state is SubscriptionState.ACTIVE and not _awaits_snapshot(core, sub.id):
                return sub
            if core.closed:
                raise EngineClosedError("the engine has shut down")
            await core.changed.wait()
    sub = core.registry.subscription(subscription_id)
    state = (
        "active, waiting for its SNAPSHOT"
        if sub.state is SubscriptionState.ACTIVE
        else (sub.state.value)
    )
    raise SubscriptionTimeoutError(subscription_id, timeout, state, _connection_trouble(core, sub))


async def wait_settled(
    core: EngineCore,
    timeout: float | None,  # noqa: ASYNC109 (the facade's documented deadline)
) -> None:
    """See ``Engine.wait_settled``."""
    timeout = _deadline(core, timeout)
    with trio.move_on_after(timeout):
        while True:
            while core.registry.unsettled():
                if core.closed:
                    raise EngineClosedError("the engine has shut down")
                await core.changed.wait()
            if core.backfill.busy:
                await core.backfill.wait_idle()
            elif core.router.backfills_armed():
                # A restored stream's SNAPSHOT (or its deadline) opens the fetch.
                await core.backfill.wait_submitted()
            else:
                return
    pending = core.registry.unsettled()
    if core.backfill.busy or core.router.backfills_armed():
        pending.append("trade backfills not released yet")
    raise NotSettledError(timeout, pending)


def _awaits_snapshot(core: EngineCore, subscription_id: str) -> bool:
    return any(route[2] == subscription_id for route in core.router.waiting)


def _connection_trouble(core: EngineCore, sub: Subscription) -> str | None:
    for name in sub.tickets:
        runtime = core.tickets.get(name)
        if runtime is None or runtime.state in UP:
            continue
        if runtime.last_failure:
            return f"{name} is {runtime.state.value}; last failure: {runtime.last_failure}"
    return None


async def wait_closed(core: EngineCore, tickets: tuple[str, ...]) -> None:
    """Wait (at most ``CLOSE_WAIT``) until ``tickets`` have stopped: closing a ticket is
    asynchronous (the ticket actor stops, then reports the loss), and the caller should see the
    effect, but never hang on a stuck ticket."""
    try:
        with trio.move_on_after(CLOSE_WAIT):
            for name in tickets:
                event = core.closing.get(name)
                if event is not None:
                    await event.wait()
    except trio.Cancelled:
        # The registry already made the change: the caller gets its outcome rather than an
        # exception that would say nothing happened. Trio cancellation is level-triggered, so
        # the caller's next checkpoint raises Cancelled all the same.
        return
