"""Fault injection as data: actions, seeded plans, and a Hypothesis strategy that draws plans.

A :class:`FaultPlan` is a list of (time offset, action) steps plus a seed. ``Emulator.run_plan``
applies each action at its offset on the Trio clock, so under ``MockClock`` a plan spanning minutes
runs in milliseconds, and the same plan with the same seed replays the same faults. Actions that
target connections name them relatively (``oldest``, ``newest``, ``random``, ``all``) because
connection ids are not known when a plan is drawn; ``random`` picks with the plan's seed.

``fault_plans()`` needs Hypothesis (a test dependency); nothing else here does.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = (
    "ACTION_TYPES",
    "ERROR_NAMES",
    "DropConnections",
    "FaultAction",
    "FaultPlan",
    "FaultStep",
    "InjectError",
    "InjectMalformed",
    "RejectConnects",
    "RestartServer",
    "SetLatency",
    "SetLimits",
    "StallConnection",
    "fault_plans",
)

Target = Literal["all", "oldest", "newest", "random"]
DropHow = Literal["abort", "reset", "close1000", "close1001"]
Malformed = Literal["truncated_json", "invalid_utf8", "unexpected_json", "protocol"]

#: Error names Upbit sends (UPBIT-PROTOCOL.md section 5.2).
ERROR_NAMES = (
    "INVALID_AUTH",
    "WRONG_FORMAT",
    "NO_TICKET",
    "NO_TYPE",
    "NO_CODES",
    "INVALID_PARAM",
    "Too Many Requests",
    "I'm a teapot",
)


@attrs.frozen
class DropConnections:
    """Drop connections: ``abort`` (TCP closed, no close frame: 1006 at the client), ``reset``
    (TCP RST), or a close handshake with 1000 / 1001."""

    target: Target = "all"
    how: DropHow = "abort"


@attrs.frozen
class RestartServer:
    """Drop every connection and refuse connects (listener closed) for ``downtime`` seconds."""

    downtime: float = 1.0
    how: DropHow = "abort"


@attrs.frozen
class StallConnection:
    """Keep TCP open but send nothing and answer no pings, for ``duration`` (None: for good)."""

    target: Target = "random"
    duration: float | None = 5.0


@attrs.frozen
class InjectError:
    """An error frame, followed (when ``close``) by close 1000 as Upbit does."""

    target: Target = "random"
    name: str = "INVALID_PARAM"
    message: str | None = None
    close: bool = True


@attrs.frozen
class InjectMalformed:
    """A frame a client cannot decode (or, ``protocol``, one no WebSocket client may accept)."""

    target: Target = "random"
    kind: Malformed = "truncated_json"


@attrs.frozen
class SetLatency:
    """Delay every frame the server sends by ``seconds`` (0 removes the delay)."""

    seconds: float = 0.2


@attrs.frozen
class RejectConnects:
    """Refuse the next ``count`` upgrades with HTTP ``status`` (429 or 418); with ``block``, refuse
    every upgrade for that many seconds instead."""

    status: Literal[429, 418] = 429
    count: int = 1
    block: float | None = None


@attrs.frozen
class SetLimits:
    """Enforce the rate limits, or relax them."""

    enforce: bool = True


FaultAction = (
    DropConnections
    | RestartServer
    | StallConnection
    | InjectError
    | InjectMalformed
    | SetLatency
    | RejectConnects
    | SetLimits
)

ACTION_TYPES: tuple[type[FaultAction], ...] = (
    DropConnections,
    RestartServer,
    StallConnection,
    InjectError,
    InjectMalformed,
    SetLatency,
    RejectConnects,
    SetLimits,
)


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class FaultStep:
    """Apply ``action`` ``at`` seconds after the plan starts."""

    at: float = attrs.field(validator=_non_negative)
    action: FaultAction


def _sorted_steps(steps: tuple[FaultStep, ...] | list[FaultStep]) -> tuple[FaultStep, ...]:
    return tuple(sorted(steps, key=lambda step: step.at))


@attrs.frozen
class FaultPlan:
    """A seeded schedule of faults. Steps are kept sorted by time."""

    steps: tuple[FaultStep, ...] = attrs.field(default=(), converter=_sorted_steps)
    #: Seeds the choice of ``random`` targets.
    seed: int = 0

    @property
    def duration(self) -> float:
        """Offset of the last step (0 for an empty plan)."""
        return self.steps[-1].at if self.steps else 0.0

    def describe(self) -> str:
        """One line per step, for test failure messages."""
        return "\n".join(f"{step.at:8.3f}s {step.action!r}" for step in self.steps) or "(no faults)"

    @classmethod
    def generate(
        cls,
        seed: int,
        *,
        steps: int = 5,
        horizon: float = 30.0,
        max_downtime: float = 5.0,
        actions: tuple[type[FaultAction], ...] = ACTION_TYPES,
    ) -> FaultPlan:
        """A random plan from ``seed`` alone (no Hypothesis needed)."""
        rng = random.Random(seed)
        drawn = [
            FaultStep(round(rng.uniform(0, horizon), 3), _random_action(rng, actions, max_downtime))
            for _ in range(steps)
        ]
        return cls(tuple(drawn), seed)


def _random_action(
    rng: random.Random, actions: tuple[type[FaultAction], ...], max_downtime: float
) -> FaultAction:
    targets: tuple[Target, ...] = ("all", "oldest", "newest", "random")
    hows: tuple[DropHow, ...] = ("abort", "reset", "close1000", "close1001")
    kind = rng.choice(actions)
    if kind is DropConnections:
        return DropConnections(rng.choice(targets), rng.choice(hows))
    if kind is RestartServer:
        return RestartServer(round(rng.uniform(0, max_downtime), 3), rng.choice(hows))
    if kind is StallConnection:
        return StallConnection(rng.choice(targets), round(rng.uniform(0.1, 30.0), 3))
    if kind is InjectError:
        return InjectError(rng.choice(targets), rng.choice(ERROR_NAMES))
    if kind is InjectMalformed:
        kinds: tuple[Malformed, ...] = (
            "truncated_json",
            "invalid_utf8",
            "unexpected_json",
            "protocol",
        )
        return InjectMalformed(rng.choice(targets), rng.choice(kinds))
    if kind is SetLatency:
        return SetLatency(round(rng.choice((0.0, rng.uniform(0, 2.0))), 3))
    if kind is RejectConnects:
        statuses: tuple[Literal[429, 418], ...] = (429, 418)
        status = rng.choice(statuses)
        if rng.random() < 0.5:
            return RejectConnects(status, rng.randint(1, 5))
        return RejectConnects(status, 1, round(rng.uniform(0.5, 10.0), 3))
    return SetLimits(rng.random() < 0.5)


def fault_plans(
    *,
    min_steps: int = 0,
    max_steps: int = 5,
    horizon: float = 30.0,
    max_downtime: float = 5.0,
    actions: tuple[type[FaultAction], ...] = ACTION_TYPES,
) -> SearchStrategy[FaultPlan]:
    """A Hypothesis strategy of :class:`FaultPlan` (shrinks toward fewer, earlier, milder faults).

    ``actions`` restricts which kinds of fault are drawn, ``horizon`` bounds step offsets and
    ``max_downtime`` bounds restarts and blocks.
    """
    from hypothesis import strategies as st

    if not actions:
        raise ValueError("actions must name at least one fault type, e.g. (DropConnections,)")
    targets = st.sampled_from(("all", "oldest", "newest", "random"))
    hows = st.sampled_from(("abort", "reset", "close1000", "close1001"))
    seconds = st.floats(0, horizon, allow_nan=False, allow_infinity=False)
    downtime = st.floats(0, max_downtime, allow_nan=False, allow_infinity=False)
    by_type: dict[type[FaultAction], SearchStrategy[FaultAction]] = {
        DropConnections: st.builds(DropConnections, targets, hows),
        RestartServer: st.builds(RestartServer, downtime, hows),
        StallConnection: st.builds(
            StallConnection, targets, st.none() | st.floats(0.1, 60.0, allow_nan=False)
        ),
        InjectError: st.builds(InjectError, targets, st.sampled_from(ERROR_NAMES)),
        InjectMalformed: st.builds(
            InjectMalformed,
            targets,
            st.sampled_from(("truncated_json", "invalid_utf8", "unexpected_json", "protocol")),
        ),
        SetLatency: st.builds(SetLatency, st.floats(0, 2.0, allow_nan=False)),
        RejectConnects: st.builds(
            RejectConnects,
            st.sampled_from((429, 418)),
            st.integers(1, 5),
            st.none() | downtime.filter(lambda value: value > 0),
        ),
        SetLimits: st.builds(SetLimits, st.booleans()),
    }
    action = st.one_of([by_type[kind] for kind in actions])
    step = st.builds(FaultStep, seconds, action)
    return st.builds(
        FaultPlan,
        st.lists(step, min_size=min_steps, max_size=max_steps).map(tuple),
        st.integers(0, 2**32 - 1),
    )
