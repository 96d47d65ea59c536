"""Child specifications: what a supervisor needs to know to start, restart and stop a child."""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar

import attrs

from actors.actor import ActorFunction
from actors.strategy import Restart
from actors.tree import NodeKind

__all__ = ("ChildSpec",)

M = TypeVar("M")


def _check_name(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(f"a child name must be a non-empty str without '/', got {value!r}")


def _check_seconds(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0 seconds (math.inf allowed), got {value!r}")


def _check_capacity(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (
        value == math.inf or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    ):
        raise ValueError(f"mailbox_size must be an int >= 0 or math.inf, got {value!r}")


@attrs.frozen
class ChildSpec(Generic[M]):
    """How to run one child (OTP's child spec).

    ``M`` is the type of the messages its mailbox accepts; :meth:`~actors.Supervisor.ref` with
    the spec itself (instead of its name) returns a correspondingly typed
    :class:`~actors.ActorRef`.
    """

    name: str = attrs.field(validator=_check_name)
    """Unique among the supervisor's children; the child's path in the tree ends with it."""

    start: ActorFunction[M]
    """The actor: ``async def start(ctx, *, task_status)``; see :mod:`actors.actor`."""

    restart: Restart = Restart.PERMANENT
    """When the child is restarted after it exits on its own."""

    shutdown: float = attrs.field(default=5.0, validator=_check_seconds)
    """Grace period in seconds between the stop request and cancellation. ``0`` cancels at once
    (OTP's ``brutal_kill``, within Trio's limits); ``math.inf`` waits as long as it takes."""

    start_timeout: float = attrs.field(default=60.0, validator=_check_seconds)
    """Seconds allowed until ``task_status.started()``; a start that takes longer fails (and, on
    a restart, counts toward the intensity like any failed start)."""

    mailbox_size: float = attrs.field(default=64, validator=_check_capacity)
    """Messages buffered before senders wait; ``math.inf`` for unbounded (circular flows only)."""

    kind: NodeKind = NodeKind.WORKER
    """Set to ``SUPERVISOR`` by :func:`~actors.supervisor_spec`; only shown in tree snapshots."""
