"""Fault injection as data: actions, seeded plans, and a Hypothesis strategy that draws plans.

A :class:`FaultPlan` is a list of (time offset, action) steps plus a seed. ``Emulator.run_plan``
applies each action at its offset on the Trio clock, so under ``MockClock`` a plan spanning minutes
runs in milliseconds, and the same plan with the same seed replays the same faults. Actions that
target connections name them relatively (``oldest``, ``newest``, ``random``, ``all``) because
connection ids are not known when a plan is drawn; ``random`` picks with the plan's seed.

``SetDrift`` is the odd action out: it changes what the wire looks like (see
:class:`~engine.testing.drift.Drift`) rather than breaking it, so plans draw it only when asked
(``drift=True``); plans drawn without it are the same as before it existed.

``fault_plans()`` and ``drifts()`` need Hypothesis (a test dependency); nothing else here does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from engine.testing.drift import Drift
from engine.wire.keys import DEFAULT_TO_SIMPLE, ORDERBOOK_UNIT_KEYS

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
    "NULLABLE_FIELDS",
    "SetDrift",
    "SetLatency",
    "SetLimits",
    "StallConnection",
    "action_from_json",
    "action_to_json",
    "drifts",
    "fault_plans",
)

Target = Literal["all", "oldest", "newest", "random"]
DropHow = Literal["abort", "reset", "close1000", "close1001"]
Malformed = Literal["truncated_json", "invalid_utf8", "unexpected_json", "protocol"]

#: Error names Upbit sends (docs/UPBIT.md, Errors).
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


def _drift(value: Drift | Mapping[str, Any]) -> Drift:
    # A mapping is what JSON gives back (see ``action_from_json``).
    return value if isinstance(value, Drift) else Drift.from_json(value)


@attrs.frozen
class SetDrift:
    """Depart from the documented wire from now on (``Drift()`` restores it)."""

    drift: Drift = attrs.field(default=Drift(), converter=_drift)


FaultAction = (
    DropConnections
    | RestartServer
    | StallConnection
    | InjectError
    | InjectMalformed
    | SetLatency
    | RejectConnects
    | SetLimits
    | SetDrift
)

#: Every action type. ``SetDrift`` comes last, and is drawn only when a plan asks for drift.
ACTION_TYPES: tuple[type[FaultAction], ...] = (
    DropConnections,
    RestartServer,
    StallConnection,
    InjectError,
    InjectMalformed,
    SetLatency,
    RejectConnects,
    SetLimits,
    SetDrift,
)

#: ``(data type, field)`` pairs :func:`drifts` and ``FaultPlan.generate`` may null: every
#: documented field of ticker, trade, orderbook (rows too) and candle.1m, and three wildcards;
#: never ``type`` or ``code``, without which no frame can be attributed at all.
NULLABLE_FIELDS: tuple[tuple[str, str], ...] = (
    *(
        (data_type, field)
        for data_type in ("ticker", "trade", "orderbook", "candle.1m")
        for field in DEFAULT_TO_SIMPLE[data_type]
        if field not in ("type", "code")
    ),
    *(("orderbook", f"orderbook_units.{field}") for field in ORDERBOOK_UNIT_KEYS),
    ("*", "timestamp"),
    ("*", "stream_type"),
    ("*", "trade_price"),
)
_DRIFT_CODES = ("KRW-BTC", "KRW-ETH", "KRW-XRP")


def _kinds(actions: tuple[type[FaultAction], ...], drift: bool) -> tuple[type[FaultAction], ...]:
    """The action types a plan draws: ``SetDrift`` only (and always) when ``drift`` is on."""
    kinds = tuple(kind for kind in actions if kind is not SetDrift)
    return (*kinds, SetDrift) if drift else kinds


def action_to_json(action: FaultAction) -> tuple[str, dict[str, Any]]:
    """``(type name, JSON-native fields)``; :func:`action_from_json` reverses it."""
    fields = attrs.asdict(action, recurse=False)
    if isinstance(action, SetDrift):
        fields["drift"] = action.drift.as_json()
    return type(action).__name__, fields


def action_from_json(name: str, fields: Mapping[str, Any]) -> FaultAction:
    """The action :func:`action_to_json` described."""
    by_name = {kind.__name__: kind for kind in ACTION_TYPES}
    kind = by_name.get(name)
    if kind is None:
        raise ValueError(f"unknown fault action {name!r}; known: {sorted(by_name)}")
    return kind(**fields)


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

    def to_json(self) -> str:
        """One line of JSON (``{"seed":..,"steps":[[at, action name, fields], ...]}``) that
        :meth:`from_json` turns back into this plan."""
        steps = [[step.at, *action_to_json(step.action)] for step in self.steps]
        return json.dumps({"seed": self.seed, "steps": steps}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FaultPlan:
        """The plan :meth:`to_json` wrote."""
        data = json.loads(text)
        steps = tuple(
            FaultStep(at, action_from_json(name, fields)) for at, name, fields in data["steps"]
        )
        return cls(steps, data["seed"])

    @classmethod
    def generate(
        cls,
        seed: int,
        *,
        steps: int = 5,
        horizon: float = 30.0,
        max_downtime: float = 5.0,
        actions: tuple[type[FaultAction], ...] = ACTION_TYPES,
        drift: bool = False,
    ) -> FaultPlan:
        """A random plan from ``seed`` alone (no Hypothesis needed). ``SetDrift`` steps are drawn
        only with ``drift=True`` (whatever ``actions`` says), so older seeds keep their plans."""
        actions = _kinds(actions, drift)
        if not actions:
            raise ValueError("actions must name at least one fault type, e.g. (DropConnections,)")
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
    if kind is SetLimits:
        return SetLimits(rng.random() < 0.5)
    return SetDrift(_random_drift(rng))


def _random_drift(rng: random.Random) -> Drift:
    """Each drift on with probability 1/3 (so a plan also restores the documented wire)."""

    def on() -> bool:
        return rng.random() < 1 / 3

    return Drift(
        orderbook_rows=rng.choice((1, 5, 15, 30, 40)) if on() else None,
        no_snapshot_codes=frozenset(code for code in _DRIFT_CODES if on()),
        null_fields=frozenset(rng.sample(NULLABLE_FIELDS, rng.randint(1, 3))) if on() else (),
        legacy_trade=on(),
        object_delisting_date=on(),
        omit_stream_type=on(),
        extra_fields=on(),
        garbage_every=rng.randint(1, 100) if on() else None,
        unknown_type_every=rng.randint(1, 100) if on() else None,
    )


def drifts(
    *,
    codes: tuple[str, ...] = _DRIFT_CODES,
    null_fields: tuple[tuple[str, str], ...] = NULLABLE_FIELDS,
    max_rows: int = 60,
    max_every: int = 200,
) -> SearchStrategy[Drift]:
    """A Hypothesis strategy of :class:`Drift` (shrinks toward ``Drift()``, the documented wire).

    ``codes`` may lose their SNAPSHOT, ``null_fields`` may be nulled (up to four of them),
    ``max_rows`` bounds ``orderbook_rows`` and ``max_every`` the garbage / unknown-type period.
    """
    from hypothesis import strategies as st

    every = st.none() | st.integers(1, max_every)
    nulls: SearchStrategy[frozenset[tuple[str, str]]] = st.just(frozenset())
    if null_fields:
        nulls = st.frozensets(st.sampled_from(null_fields), max_size=4)
    return st.builds(
        Drift,
        orderbook_rows=st.none() | st.integers(1, max_rows),
        no_snapshot_codes=st.frozensets(st.sampled_from(codes)) if codes else st.just(frozenset()),
        null_fields=nulls,
        legacy_trade=st.booleans(),
        object_delisting_date=st.booleans(),
        omit_stream_type=st.booleans(),
        extra_fields=st.booleans(),
        garbage_every=every,
        unknown_type_every=every,
    )


def fault_plans(
    *,
    min_steps: int = 0,
    max_steps: int = 5,
    horizon: float = 30.0,
    max_downtime: float = 5.0,
    actions: tuple[type[FaultAction], ...] = ACTION_TYPES,
    drift: bool | SearchStrategy[Drift] = False,
) -> SearchStrategy[FaultPlan]:
    """A Hypothesis strategy of :class:`FaultPlan` (shrinks toward fewer, earlier, milder faults).

    ``actions`` restricts which kinds of fault are drawn, ``horizon`` bounds step offsets and
    ``max_downtime`` bounds restarts and blocks. ``SetDrift`` steps are drawn only with ``drift``
    (``True``: drifts from :func:`drifts`; or a strategy of your own), whatever ``actions`` says.
    """
    from hypothesis import strategies as st

    actions = _kinds(actions, drift is not False)
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
        SetDrift: st.builds(SetDrift, drifts() if isinstance(drift, bool) else drift),
    }
    action = st.one_of([by_type[kind] for kind in actions])
    step = st.builds(FaultStep, seconds, action)
    return st.builds(
        FaultPlan,
        st.lists(step, min_size=min_steps, max_size=max_steps).map(tuple),
        st.integers(0, 2**32 - 1),
    )
