"""Engine-level fault injection: a subscription workload raced against a FaultPlan, and the checks.

An :class:`Example` is data: a :class:`~engine.testing.FaultPlan` (what the emulator does wrong,
and when) and a :class:`Workload` (subscriptions with fast or slow consumers, then modifies and
unsubscribes at given times, and the engine's jitter seed). :func:`run_example` runs one on a
fresh emulator and engine under whatever Trio clock the caller gave ``trio.run`` (the tests use
``MockClock(autojump_threshold=0)``) and returns a :class:`Report` listing every violated
property, each tagged with its letter from issue 6's acceptance:

(a) each open connection's subscription set equals the registry's wanted set for its ticket;
(b) each live subscription saw, per outage, ``Interrupted`` then ``Gap`` then a SNAPSHOT of
    each of its streams before any further REALTIME message of that stream; a trade stream the
    Gap announces a backfill for (``Gap.backfill``) sees instead its BACKFILL trades and then
    ``Backfilled``, and BACKFILL trades only then;
(c) no trade (``sequential_id``) delivered twice to one subscriber;
(d) the emulator never saw a rate limit exceeded;
(e) no task outlives the engine;
(f) memory stayed bounded (buffers, router and registry structures);
(g) liveness under drift (``examples(drift=True)``): every stream the emulator sends frames of
    reaches its (fast-reading) subscriber within ``snapshot_timeout`` + 1 s of the first such
    frame on its connection, and no connection ends because of a frame's content.

Examples serialise to JSON (:meth:`Example.to_json`) and can be rebuilt from one integer
(:func:`example_from_seed`), which is how a failure is replayed (see test_engine_faults.py).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from engine.core.registry import SubscriptionKind
from engine.errors import InvalidSubscriptionError, SubscriptionFailedError, UpbitEngineError
from engine.events import Backfilled, Ended, Gap, Interrupted, SnapshotMissing
from engine.facade.engine import Engine, SubscriptionStream
from engine.facade.open import open_engine
from engine.routing.router import StreamItem, SubscriberBuffer
from engine.testing import MAJOR_MARKETS, Emulator, EmulatorConfig, FaultPlan, open_emulator
from engine.testing.faults import (
    ACTION_TYPES,
    FaultAction,
    FaultStep,
    InjectError,
    RejectConnects,
    SetLimits,
    action_from_json,
    action_to_json,
)
from engine.wire.messages import Message, Trade

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = (
    "CODES",
    "Burst",
    "DELAYS",
    "FAULT_ACTIONS",
    "Example",
    "Modify",
    "Release",
    "Report",
    "Subscribe",
    "Unsubscribe",
    "WorkStep",
    "Workload",
    "example_from_seed",
    "examples",
    "run_example",
)

# -- knobs ---------------------------------------------------------------------------------------

#: Seconds of Upbit's message limit window: how long arrivals bunched by a stall are exempt.
_LIMIT_WINDOW = 1.0

#: Fault kinds drawn. ``SetLimits`` is left out on purpose: relaxing the emulator's limits would
#: blind property (d), the only witness of a limit overrun (``SetLimits(True)`` is the default).
FAULT_ACTIONS: tuple[type[FaultAction], ...] = tuple(a for a in ACTION_TYPES if a is not SetLimits)
#: Seconds over which faults and workload steps are spread.
HORIZON = 30.0
MAX_FAULTS = 6
MAX_DOWNTIME = 5.0

CODES = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "BTC-ETH", "USDT-BTC")
TYPES = ("ticker", "trade", "orderbook")
#: Consumer delays after each item: 0 reads as fast as it can, the others are slow readers.
DELAYS = (0.0, 0.0, 0.2, 2.0)
#: Subscriber buffer size: small, so a slow reader of a lossless type (trade) can overflow.
BUFFER = 16
#: Seconds between the modifies of a :class:`Burst`.
BURST_GAP = 0.05
#: Distinct codes per realtime ticket, so the workload spreads over both realtime tickets.
TICKET_CAPACITY = 3

#: How long the end state must hold to count as settled, so a fault still working its way
#: through cannot pass for a settled engine. A stalled connection shows as a problem until the
#: engine drops it; once a stall ends, the ping sent during it is judged within ``ping_timeout``
#: (10 s); an error frame's close follows within 0.15 s.
SETTLE_HOLD = 12.0
#: Bound on reaching the settled state after the plan ended (mock seconds), before the refusals
#: of the plan are added (see :func:`settle_timeout`).
SETTLE_BASE = 120.0
#: Seconds beyond ``snapshot_timeout`` a stream's first frame may take to reach its reader (g).
LIVENESS_SLACK = 1.0
#: How often the memory sampler looks at the buffers (mock seconds).
SAMPLE_EVERY = 0.25
#: Upper bound on one condition poll: the emulator wakes waiters on its own events and on market
#: frames, but a consumer catching up wakes nobody, so waits re-check at least this often.
POLL = 0.5


def settle_timeout(plan: FaultPlan) -> float:
    """How long the engine may take to settle after ``plan``: a base, plus for each refused
    connect the wait the engine owes it (a 418 at least 60 s, a 429 up to 2**strikes s, capped
    at 300 s by ``RateLimitBackoff``), plus any block."""
    total = SETTLE_BASE
    strikes = 0
    for step in plan.steps:
        action = step.action
        if isinstance(action, RejectConnects):
            for _ in range(action.count if action.block is None else 1):
                strikes += 1
                wait = min(300.0, 2.0 ** (strikes - 1))
                total += max(wait, 65.0) if action.status == 418 else wait
            total += action.block or 0.0
    return total


def _failures_possible(plan: FaultPlan) -> int:
    """Most connection failures ``plan`` can inflict on one ticket: one per fault, one per
    refused connect (a block refuses at most one attempt per second, the shortest backoff)."""
    total = 0
    for step in plan.steps:
        action = step.action
        if isinstance(action, RejectConnects):
            total += action.count if action.block is None else int(action.block) + 1
        else:
            total += 1
    return total


def emulator_config() -> EmulatorConfig:
    """Seeded, small catalog, coarse market clock (cheaper), no frame introspection kept."""
    return EmulatorConfig(
        markets=MAJOR_MARKETS, seed=7, feed_interval=0.1, rate_scale=1.0, recent_frames=0
    )


# -- the workload as data ---------------------------------------------------------------------


@attrs.frozen
class Subscribe:
    """Subscribe to ``types`` x ``codes``; the consumer waits ``delay`` s after each item."""

    types: tuple[str, ...]
    codes: tuple[str, ...]
    delay: float = 0.0


@attrs.frozen
class Modify:
    """Replace the codes of subscription number ``target`` (modulo how many exist)."""

    target: int
    codes: tuple[str, ...]


@attrs.frozen
class Release:
    """``soft_unsubscribe(sub, release=<its first count codes>)``."""

    target: int
    count: int


@attrs.frozen
class Burst:
    """``count`` modifies of one subscription, ``BURST_GAP`` s apart, alternating between its
    codes and ``codes``: more changes per second than Upbit accepts messages, so the engine's
    coalescing and message limiter are what keep property (d)."""

    target: int
    codes: tuple[str, ...]
    count: int


@attrs.frozen
class Unsubscribe:
    """``unsubscribe_realtime`` (default), ``soft_unsubscribe`` or ``hard_unsubscribe``."""

    target: int
    how: Literal["default", "soft", "hard"] = "default"


Operation = Subscribe | Modify | Release | Burst | Unsubscribe
_OPERATIONS: dict[str, type[Any]] = {
    kind.__name__: kind for kind in (Subscribe, Modify, Release, Burst, Unsubscribe)
}


@attrs.frozen
class WorkStep:
    at: float
    op: Operation


def _sorted_steps(steps: Iterable[WorkStep]) -> tuple[WorkStep, ...]:
    return tuple(sorted(steps, key=lambda step: step.at))


@attrs.frozen
class Workload:
    """Subscriptions made before the plan starts, then timed steps racing the plan."""

    initial: tuple[Subscribe, ...]
    steps: tuple[WorkStep, ...] = attrs.field(default=(), converter=_sorted_steps)
    #: The engine's seed (backoff jitter, ticket names).
    seed: int = 0

    def describe(self) -> str:
        lines = [f"engine seed {self.seed}"]
        lines += [f"   start  {op!r}" for op in self.initial]
        lines += [f"{step.at:8.3f}s {step.op!r}" for step in self.steps]
        return "\n".join(lines)


@attrs.frozen
class Example:
    plan: FaultPlan
    workload: Workload

    def describe(self) -> str:
        return f"fault plan (seed {self.plan.seed}):\n{self.plan.describe()}\nworkload:\n" + (
            self.workload.describe()
        )

    def to_json(self) -> str:
        """One line of JSON that :meth:`from_json` turns back into this example."""
        return json.dumps(
            {
                "plan": {
                    "seed": self.plan.seed,
                    "steps": [[s.at, *action_to_json(s.action)] for s in self.plan.steps],
                },
                "workload": {
                    "seed": self.workload.seed,
                    "initial": [_encode(op)[1] for op in self.workload.initial],
                    "steps": [[s.at, *_encode(s.op)] for s in self.workload.steps],
                },
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Example:
        data = json.loads(text)
        plan = FaultPlan(
            tuple(
                FaultStep(at, action_from_json(name, fields))
                for at, name, fields in data["plan"]["steps"]
            ),
            data["plan"]["seed"],
        )
        work = data["workload"]
        workload = Workload(
            tuple(_decode_op("Subscribe", fields) for fields in work["initial"]),
            tuple(WorkStep(at, _decode_op(name, fields)) for at, name, fields in work["steps"]),
            work["seed"],
        )
        return cls(plan, workload)


def _encode(value: object) -> tuple[str, dict[str, Any]]:
    return type(value).__name__, attrs.asdict(value, recurse=False)  # type: ignore[arg-type]


def _decode_op(name: str, fields: dict[str, Any]) -> Any:
    kind = _OPERATIONS[name]
    converted = {key: tuple(v) if isinstance(v, list) else v for key, v in fields.items()}
    return kind(**converted)


# -- generating examples ------------------------------------------------------------------------


def _random_subscribe(rng: random.Random) -> Subscribe:
    return Subscribe(
        tuple(rng.sample(TYPES, rng.randint(1, 2))),
        tuple(rng.sample(CODES, rng.randint(1, 3))),
        rng.choice(DELAYS),
    )


def _random_op(rng: random.Random) -> Operation:
    kind = rng.randrange(5)
    if kind == 0:
        return _random_subscribe(rng)
    if kind == 1:
        return Modify(rng.randrange(8), tuple(rng.sample(CODES, rng.randint(1, 3))))
    if kind == 2:
        return Release(rng.randrange(8), rng.randint(1, 2))
    if kind == 3:
        codes = tuple(rng.sample(CODES, rng.randint(1, 3)))
        return Burst(rng.randrange(8), codes, rng.randint(2, 12))
    return Unsubscribe(rng.randrange(8), rng.choice(("default", "soft", "hard")))


def example_from_seed(seed: int) -> Example:
    """A complete example from one integer (no Hypothesis needed): the replay path."""
    rng = random.Random(seed)
    plan = FaultPlan.generate(
        seed,
        steps=rng.randint(1, MAX_FAULTS),
        horizon=HORIZON,
        max_downtime=MAX_DOWNTIME,
        actions=FAULT_ACTIONS,
    )
    initial = tuple(_random_subscribe(rng) for _ in range(rng.randint(1, 4)))
    steps = tuple(
        WorkStep(round(rng.uniform(0, HORIZON), 3), _random_op(rng))
        for _ in range(rng.randint(0, 6))
    )
    return Example(plan, Workload(initial, steps, seed))


def examples(
    actions: tuple[type[FaultAction], ...] = FAULT_ACTIONS,
    *,
    max_faults: int = MAX_FAULTS,
    bursts: bool = True,
    drift: bool = False,
) -> SearchStrategy[Example]:
    """Hypothesis strategy of examples (shrinks toward fewer faults, fewer steps, fast readers).

    ``bursts=False`` leaves :class:`Burst` out of the workload (for hunting other bugs while a
    known one that bursts trigger is open). ``drift=True`` adds ``SetDrift`` steps (the server
    departs from the documented wire) to the drawn plans."""
    from hypothesis import strategies as st

    from engine.testing import fault_plans

    codes = st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True).map(tuple)
    types = st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True).map(tuple)
    subscribe = st.builds(Subscribe, types, codes, st.sampled_from(DELAYS))
    target = st.integers(0, 7)
    choices = [
        subscribe,
        st.builds(Modify, target, codes),
        st.builds(Release, target, st.integers(1, 2)),
        st.builds(Unsubscribe, target, st.sampled_from(("default", "soft", "hard"))),
    ]
    if bursts:
        choices.append(st.builds(Burst, target, codes, st.integers(2, 12)))
    operation = st.one_of(choices)
    step = st.builds(WorkStep, st.floats(0, HORIZON, allow_nan=False), operation)
    workload = st.builds(
        Workload,
        st.lists(subscribe, min_size=1, max_size=4).map(tuple),
        st.lists(step, max_size=6).map(tuple),
        st.integers(0, 2**16),
    )
    plans = fault_plans(
        min_steps=1,
        max_steps=max_faults,
        horizon=HORIZON,
        max_downtime=MAX_DOWNTIME,
        actions=actions,
        drift=drift,
    )
    return st.builds(Example, plans, workload)


# -- what one run found -------------------------------------------------------------------------


@attrs.define
class Report:
    """Violations (property letter, text) and what the run did, for the test to judge."""

    violations: list[tuple[str, str]] = attrs.Factory(list)
    #: The emulator's history, ports removed, for the determinism test.
    history: list[tuple[float, str, int | None, str]] = attrs.Factory(list)
    subscriptions: int = 0
    failed: dict[str, str] = attrs.Factory(dict)
    outages: int = 0
    settled_after: float | None = None
    items: int = 0
    #: Per subscription, a hash of every item it read and when (see SubscriberLog.digest).
    deliveries: dict[str, str] = attrs.Factory(dict)

    def add(self, prop: str, text: str) -> None:
        self.violations.append((prop, text))

    def summary(self) -> str:
        return "\n".join(f"({prop}) {text}" for prop, text in self.violations)


# -- one subscriber's view --------------------------------------------------------------------


def _key(msg: Message) -> tuple[str, str]:
    return (msg.type, getattr(msg, "code", ""))


class SubscriberLog:
    """Checks (b) and (c) item by item, as the consumer reads them."""

    def __init__(self, sub_id: str, op: Subscribe, report: Report) -> None:
        self.sub_id = sub_id
        self.types = op.types
        self.delay = op.delay
        self.report = report
        #: Streams that owe a SNAPSHOT before their next REALTIME message.
        self.pending: set[tuple[str, str]] = {(t, c) for t in op.types for c in op.codes}
        #: Ticket -> the Interrupted whose Gap has not arrived yet, and the codes not yet
        #: covered by a Gap (a stream that moves off a down ticket gets its own, earlier Gap).
        self.open: dict[str, Interrupted] = {}
        self.open_codes: dict[str, set[str]] = {}
        self.held: set[str] = set(op.codes)
        #: Codes this subscription released at some point: a re-added code's SNAPSHOT may repeat
        #: the last trade it saw before, and that is a new stream, not a duplicate delivery.
        self.released: set[str] = set()
        self.trades: dict[str, set[int]] = {}
        #: Trade streams whose SNAPSHOT is owed because of a Gap (not a new stream).
        self.after_gap: set[tuple[str, str]] = set()
        #: Codes whose Backfilled is owed (their Gap announced a backfill).
        self.filling: set[str] = set()
        self.backfills = 0
        self.snapshots_skipped = 0
        self.snapshots_missing = 0
        #: (type, code) -> Trio times this subscription read a message of it (for (g)).
        self.seen_at: dict[tuple[str, str], list[float]] = {}
        self.items = 0
        self.ended = False
        #: The Ended event that closed the stream, if it ended without an error.
        self.ended_event: Ended | None = None
        self.expect_end = False
        self.failure: BaseException | None = None
        self.buffer: SubscriberBuffer | None = None
        #: Every item read and when, hashed: two runs of one example must agree.
        self.digest = hashlib.sha256()

    def fail(self, prop: str, text: str) -> None:
        self.report.add(prop, f"{self.sub_id}: {text}")

    def on_item(self, item: StreamItem) -> None:
        self.items += 1
        if isinstance(item, Interrupted | Gap | SnapshotMissing | Ended | Backfilled):
            text = repr(item)
        else:  # what identifies a message, without rendering a whole orderbook
            text = f"{item.type} {getattr(item, 'code', '')} {item.stream_type} {item.timestamp}"
        self.digest.update(f"{trio.current_time():.6f} {text}\n".encode())
        if isinstance(item, Interrupted):
            if "ProtocolError" in item.cause:
                self.fail("g", f"a connection ended because of a frame's content: {item!r}")
            if item.ticket in self.open:
                # Only codes that joined the down ticket since its Interrupted may get another.
                if not item.codes or set(item.codes) & self.open_codes[item.ticket]:
                    self.fail(
                        "b", f"a second Interrupted on {item.ticket} before the Gap: {item!r}"
                    )
                self.open_codes[item.ticket].update(item.codes)
                return
            self.open[item.ticket] = item
            self.open_codes[item.ticket] = set(item.codes)
            return
        if isinstance(item, Ended):
            self.ended_event = item
            return
        if isinstance(item, Gap):
            outage = self.open.get(item.ticket)
            if outage is None:
                self.fail("b", f"a Gap without an Interrupted before it: {item!r}")
            else:
                left = self.open_codes[item.ticket]
                if not set(item.codes) <= left:
                    self.fail("b", f"a Gap for codes not (or no longer) interrupted: {item!r}")
                left.difference_update(item.codes)
                # A Gap that ends the outage (end set, or nothing left) closes it.
                if item.end is not None or not left or not item.codes:
                    del self.open[item.ticket]
                    del self.open_codes[item.ticket]
            if item.end is not None and item.end < item.start:
                self.fail("b", f"a Gap that ends before it starts: {item!r}")
            owed = {(t, c) for t in self.types for c in item.codes}
            self.pending.update(owed)
            self.after_gap.update(owed)
            if "trade" not in self.types and item.backfill:
                self.fail("b", f"a backfill announced without a trade stream: {item!r}")
            self.filling.update(item.backfill)
            return
        if isinstance(item, Backfilled):
            # Without a Gap when a silence was checked (Router.check_silence).
            self.filling.discard(item.code)
            self.backfills += 1
            # The fetched trades came before it, the SNAPSHOT's trade among them.
            self.pending.discard(("trade", item.code))
            self.after_gap.discard(("trade", item.code))
            return
        if isinstance(item, SnapshotMissing):
            # The SNAPSHOT did not come within the snapshot timeout (a slow or stalled
            # connection): the stream goes on with REALTIME, which is now in order.
            key = (item.data_type, item.code)
            for ticket, outage in self.open.items():
                if item.code in self.open_codes[ticket]:
                    self.fail("b", f"SnapshotMissing {key} during an outage: {outage!r}")
            self.snapshots_missing += 1
            self.pending.discard(key)
            self.after_gap.discard(key)
            return
        key = _key(item)
        self.seen_at.setdefault(key, []).append(trio.current_time())
        for ticket, outage in self.open.items():
            if key[1] in self.open_codes[ticket]:
                self.fail("b", f"{key} delivered during an outage, before its Gap: {outage!r}")
        if item.stream_type == "BACKFILL":
            self.filling.add(key[1])  # a Backfilled must follow (after a Gap or a silence)
        elif (
            key[0] == "trade"
            and key[1] in self.filling
            and item.stream_type == "SNAPSHOT"
            and key[1] in self.released
        ):
            # The code was modified away during its fill (the fill is dropped with the stream,
            # no Backfilled comes) and added back: this SNAPSHOT starts a new stream.
            self.filling.discard(key[1])
            self.pending.discard(key)
            self.after_gap.discard(key)
        elif key[0] == "trade" and key[1] in self.filling:
            self.fail("b", f"a {item.stream_type} trade {key} before its Backfilled")
        elif item.stream_type == "SNAPSHOT":
            self.pending.discard(key)
            self.after_gap.discard(key)
        elif key in self.pending:
            if key[0] == "trade" and key in self.after_gap:
                # The router drops a trade SNAPSHOT whose sequential_id this subscriber already
                # has (property (c) wins). Counted here, and checked against the router's own
                # count of skipped duplicates at the end.
                self.snapshots_skipped += 1
                self.pending.discard(key)
                self.after_gap.discard(key)
            else:
                self.fail("b", f"REALTIME {key} before its SNAPSHOT (after a Gap or a new stream)")
        if isinstance(item, Trade):
            seen = self.trades.setdefault(item.code, set())
            if item.sequential_id in seen and not (
                item.stream_type == "SNAPSHOT" and item.code in self.released
            ):
                self.fail(
                    "c",
                    f"trade {item.code} sequential_id {item.sequential_id} delivered twice "
                    f"({item.stream_type})",
                )
            seen.add(item.sequential_id)

    def will_hold(self, codes: Iterable[str]) -> list[tuple[str, str]]:
        """Before a modify: streams of codes this subscription never held owe a SNAPSHOT. (A
        re-added code may still have REALTIME messages of its earlier stream unread, which the
        check cannot tell from new ones, so it is left out.)"""
        fresh = [(t, c) for c in codes if c not in self.held for t in self.types]
        self.pending.update(fresh)
        return fresh

    def outstanding(self, keys: Iterable[tuple[str, str]]) -> list[str]:
        """What this live subscription still owes: Gaps, and SNAPSHOTs of its current keys."""
        owed = [f"Gap for {ticket} (Interrupted: {i.cause})" for ticket, i in self.open.items()]
        owed += [f"SNAPSHOT {key}" for key in sorted(self.pending.intersection(keys))]
        wanted = set(keys)
        owed += [f"Backfilled {code}" for code in sorted(self.filling) if ("trade", code) in wanted]
        return owed


# -- the run ------------------------------------------------------------------------------------


def _walk(nursery: Any) -> Iterator[Any]:
    for task in nursery.child_tasks:
        yield task
        for child in task.child_nurseries:
            yield from _walk(child)


def _all_tasks() -> set[Any]:
    root = trio.lowlevel.current_root_task()
    assert root is not None, "called outside trio.run"
    found: set[Any] = {root}
    for nursery in root.child_nurseries:
        found.update(_walk(nursery))
    return found


_PORT = re.compile(r"(127\.0\.0\.1|localhost):\d+")


def _wire(key: Any) -> tuple[str, str]:
    code = key.code if key.units is None else f"{key.code}.{key.units}"
    return (key.data_type, code)


class Runner:
    """Drives one example: workload, plan, settle, checks."""

    def __init__(self, example: Example, eng: Engine, emu: Emulator, report: Report) -> None:
        self.example = example
        self.eng = eng
        self.emu = emu
        self.report = report
        self.core = eng._core  # the properties compare internals
        self.subs: list[str] = []
        self.logs: dict[str, SubscriberLog] = {}
        self.hurry = False
        self.nursery: trio.Nursery | None = None
        self.ticket_prefix = f"upbit-engine-{self.core.instance}-"
        #: Most items a buffer held, per subscription (for the report).
        self.peak: dict[str, int] = {}
        #: Stream keys each subscription ever had (bounds its conflation keys).
        self.keys_ever: dict[str, set[tuple[str, str]]] = {}
        self.injected_errors = {
            step.action.name for step in example.plan.steps if isinstance(step.action, InjectError)
        }

    # -- workload ---------------------------------------------------------------------------

    async def consume(self, log: SubscriberLog, stream: SubscriptionStream) -> None:
        try:
            while True:
                item = await stream.receive()
                log.on_item(item)
                if log.delay and not self.hurry:
                    await trio.sleep(log.delay)  # a slow reader, by design of the workload
        except trio.EndOfChannel:
            log.ended = True
            if log.ended_event is None:
                log.fail("b", "the stream stopped without an Ended event")
        except SubscriptionFailedError as exc:
            log.failure = exc

    async def apply(self, op: Operation) -> None:
        eng = self.eng
        if isinstance(op, Subscribe):
            try:
                sub_id = await eng.subscribe_realtime(list(op.types), list(op.codes))
            except UpbitEngineError as exc:
                self.report.add("b", f"subscribe {op!r} raised {exc!r}")
                return
            log = SubscriberLog(sub_id, op, self.report)
            # Kept here: the engine drops its reference when the subscription ends, and the
            # end-of-run checks still read the buffer's counters.
            log.buffer = self.core.buffers.get(sub_id)
            self.subs.append(sub_id)
            self.logs[sub_id] = log
            self.keys_ever[sub_id] = set(log.pending)
            assert self.nursery is not None
            self.nursery.start_soon(self.consume, log, eng.stream(sub_id))
            return
        if not self.subs:
            return
        sub_id = self.subs[op.target % len(self.subs)]
        log = self.logs[sub_id]
        sub = eng.subscription(sub_id)
        if not sub.is_live:
            return
        try:
            if isinstance(op, Modify):
                await self.modify(sub_id, op.codes)
            elif isinstance(op, Burst):
                sets = (op.codes, sub.codes)
                for index in range(op.count):
                    if not eng.subscription(sub_id).is_live:
                        break
                    if index:
                        await trio.sleep(BURST_GAP)  # the workload's own schedule
                    await self.modify(sub_id, sets[index % 2])
            elif isinstance(op, Release):
                release = sub.codes[: op.count]
                if len(release) == len(sub.codes):
                    log.expect_end = True
                log.released.update(release)
                await eng.soft_unsubscribe(sub_id, release=list(release))
            else:
                log.expect_end = True
                if op.how == "soft":
                    await eng.soft_unsubscribe(sub_id)
                elif op.how == "hard":
                    await eng.hard_unsubscribe(sub_id)
                else:
                    await eng.unsubscribe_realtime(sub_id)
        except InvalidSubscriptionError as exc:
            # Refused because the subscription failed meanwhile: legitimate. Otherwise not.
            if eng.subscription(sub_id).is_live:
                self.report.add("b", f"{op!r} on live {sub_id} refused: {exc}")

    async def modify(self, sub_id: str, codes: tuple[str, ...]) -> None:
        log = self.logs[sub_id]
        before = self.eng.subscription(sub_id).codes
        fresh = log.will_hold(codes)
        try:
            await self.eng.modify_subscription(sub_id, list(codes))
        except InvalidSubscriptionError:
            log.pending.difference_update(fresh)
            raise
        log.released.update(c for c in before if c not in codes)
        log.held.update(codes)
        self.keys_ever[sub_id].update((t, c) for t in log.types for c in codes)

    async def run_steps(self) -> None:
        start = trio.current_time()
        for step in self.example.workload.steps:
            await trio.sleep_until(start + step.at)  # the workload's own schedule
            await self.apply(step.op)

    async def sample(self) -> None:
        """(f): no buffer ever holds more than its bound (see :meth:`buffer_bound`)."""
        while True:
            for sub_id, buffer in list(self.core.buffers.items()):
                size = len(buffer)
                if size > self.peak.get(sub_id, 0):
                    self.peak[sub_id] = size
                    bound = self.buffer_bound(sub_id)
                    if size > bound:
                        self.report.add(
                            "f", f"{sub_id}'s buffer holds {size} items, over its bound {bound}"
                        )
            await trio.sleep(SAMPLE_EVERY)  # a measurement tick, not synchronisation

    def buffer_bound(self, sub_id: str) -> int:
        """The buffer's documented worst case: ``max_size`` items, plus one REALTIME value per
        conflation key, plus the events and SNAPSHOTs (never conflated) of each outage: two
        events and one SNAPSHOT per key each. Outages are bounded by the connections closed so
        far. Nothing here grows with the number of messages."""
        keys = len(self.keys_ever.get(sub_id, ())) or 1
        # Every connection accepted and no longer open (the emulator forgets old closed ones).
        closed = self.emu.connects_accepted - len(self.emu.connections(open_only=True))
        modifies = sum(
            step.op.count if isinstance(step.op, Burst) else 1
            for step in self.example.workload.steps
            if isinstance(step.op, Modify | Burst)
        )
        outages = closed + modifies + 1
        return BUFFER + keys + outages * (2 + keys)

    # -- settling ---------------------------------------------------------------------------

    async def until(self, predicate: Callable[[], bool], within: float) -> bool:
        """Wait (bounded) until ``predicate()``; False on timeout."""
        with trio.move_on_after(within):
            while not predicate():
                with trio.move_on_after(POLL):
                    await self.emu.wait_for(predicate)
            return True
        return False

    def ticket_of(self, conn_id: int) -> str | None:
        for record in reversed(self.emu.requests(conn_id)):
            if record.kind != "subscribe":
                continue
            items = record.json()
            if isinstance(items, list) and items and isinstance(items[0], dict):
                ticket = str(items[0].get("ticket", ""))
                if ticket.startswith(self.ticket_prefix):
                    return ticket[len(self.ticket_prefix) :]
            return None
        return None

    def wire_problems(self) -> list[tuple[str, str]]:
        """(a), plus whatever says the engine is not settled yet."""
        problems: list[tuple[str, str]] = []
        registry = self.core.registry
        if not self.emu.statistics().listening:
            problems.append(("a", "the emulator is not listening"))
        seen: dict[str, int] = {}
        for conn in self.emu.connections(open_only=True):
            if conn.stalled:
                problems.append(("a", f"connection {conn.conn_id} is stalled and still open"))
            ticket = self.ticket_of(conn.conn_id)
            if ticket is None:
                problems.append(("a", f"connection {conn.conn_id} is open with no ticket request"))
                continue
            if not ticket.startswith("realtime-"):
                continue
            if ticket in seen:
                problems.append(
                    ("a", f"{ticket} has two open connections: {seen[ticket]}, {conn.conn_id}")
                )
            seen[ticket] = conn.conn_id
            status = registry.ticket_status(ticket)
            wanted = {_wire(key) for key in status.desired}
            actual = {(e.type, code) for e in conn.subscriptions for code in e.codes or ()}
            if wanted and actual != wanted:
                problems.append(
                    (
                        "a",
                        f"connection {conn.conn_id} ({ticket}) carries {sorted(actual)}, "
                        f"the registry wants {sorted(wanted)}",
                    )
                )
            elif not wanted and not (len(actual) <= 1 and all(t == "ticker" for t, _ in actual)):
                problems.append(
                    ("a", f"connection {conn.conn_id} ({ticket}) should be parked: {actual}")
                )
        for name in registry.tickets("realtime"):
            status = registry.ticket_status(name)
            if status.desired and name not in seen:
                problems.append(("a", f"{name} wants {len(status.desired)} streams, no connection"))
            if status.desired and (not status.connected or status.queued or status.sent is None):
                problems.append(
                    (
                        "a",
                        f"{name} has not confirmed its set (connected: "
                        f"{status.connected}, queued: {len(status.queued)})",
                    )
                )
        for sub in registry.subscriptions():
            if sub.state.value != "active":
                problems.append(("b", f"{sub.id} is {sub.state.value}"))
        return problems

    def owed(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        registry = self.core.registry
        for sub_id, log in self.logs.items():
            sub = registry.subscription(sub_id)
            if log.failure is not None:
                continue
            if sub.state.value == "failed":
                problems.append(("b", f"{sub.id} failed, its reader has not seen the error yet"))
                continue
            if not sub.is_live:
                continue
            keys = {(key.data_type, key.code) for key in sub.keys}
            problems.extend(("b", f"{sub.id} still owed {what}") for what in log.outstanding(keys))
        return problems

    def problems(self) -> list[tuple[str, str]]:
        return self.wire_problems() + self.owed()

    async def settle(self) -> bool:
        """Reach the end state and see it hold for SETTLE_HOLD seconds (bounded)."""
        self.hurry = True
        deadline = trio.current_time() + settle_timeout(self.example.plan)
        started = trio.current_time()
        while True:
            remaining = deadline - trio.current_time()
            if remaining <= 0 or not await self.until(lambda: not self.problems(), remaining):
                return False
            with trio.move_on_after(SETTLE_HOLD) as hold:
                await self.until(lambda: bool(self.problems()), SETTLE_HOLD + 1)
            if hold.cancelled_caught:
                self.report.settled_after = trio.current_time() - started
                return True

    # -- checks -----------------------------------------------------------------------------

    def check_liveness(self) -> None:
        """(g): what the emulator sends of a stream reaches its fast reader in time."""
        limit = self.eng.config.snapshot_timeout + LIVENESS_SLACK
        now = trio.current_time()
        # The emulator records a frame when it queues it; a stalled connection queues without
        # writing, so what it "sent" never left (the engine's stall detection handles those).
        stalled = {
            event.conn_id
            for event in self.emu.history()
            if event.kind == "fault" and event.detail.startswith("stall")
        }
        # What each open connection streams now (a parking reply, a one-off SNAPSHOT, is not).
        streaming = {
            info.conn_id: {
                (entry.type, code) for entry in info.subscriptions for code in entry.codes or ()
            }
            for info in self.emu.connections(open_only=True)
            if info.conn_id not in stalled and not info.stalled
        }
        carried: dict[tuple[str, str], list[float]] = {}
        for (conn_id, data_type, code), at in self.emu.first_sent().items():
            if (data_type, code) in streaming.get(conn_id, ()):
                carried.setdefault((data_type, code), []).append(at)
        for sub_id, log in self.logs.items():
            if log.ended or log.delay or log.failure is not None:
                continue  # a slow reader reads late by design
            try:
                codes = self.eng.subscription(sub_id).codes
            except UpbitEngineError:
                continue  # released meanwhile
            for key in ((t, c) for t in log.types for c in codes):
                times = log.seen_at.get(key, [])
                for first in carried.get(key, []):
                    if first + limit > now:
                        continue  # too recent to judge
                    index = bisect.bisect_left(times, first)
                    if index == len(times) or times[index] > first + limit:
                        self.report.add(
                            "g",
                            f"{sub_id}: {key} was sent from {first:.3f} s on and did not reach "
                            f"the subscriber within {limit:g} s",
                        )

    def check_failures(self) -> None:
        """Subscriptions that failed did so with a clear SubscriptionFailedError, for a reason
        the example explains."""
        registry = self.core.registry
        for sub_id, log in self.logs.items():
            sub = registry.subscription(sub_id)
            if sub.state.value != "failed":
                if log.failure is not None:
                    self.report.add("b", f"{sub_id} raised {log.failure!r} but is {sub.state}")
                continue
            cause = sub.failure or ""
            self.report.failed[sub_id] = cause
            if not isinstance(log.failure, SubscriptionFailedError):
                self.report.add(
                    "b", f"{sub_id} failed ({cause}) but its reader got {log.failure!r}"
                )
                continue
            if log.failure.subscription_id != sub_id or log.failure.cause != cause:
                self.report.add("b", f"{sub_id}: the error names {log.failure!r}, not {cause!r}")
            lossless = any(t == "trade" for t in log.types)
            if "buffer is full" in cause:
                if not (log.delay and lossless):
                    self.report.add("b", f"{sub_id} (fast or lossy reader) overflowed: {cause}")
            elif "events are waiting unread" in cause:
                if not log.delay:
                    self.report.add("b", f"{sub_id} (a fast reader) overflowed on events: {cause}")
            elif "max_restarts" in cause:
                # The ticket gave up (restart intensity): legitimate only if the plan can cause
                # more failures than the intensity allows.
                allowed = self.core.config.max_restarts
                if _failures_possible(self.example.plan) <= allowed:
                    self.report.add(
                        "b",
                        f"{sub_id}'s ticket gave up, but the plan can cause at most "
                        f"{_failures_possible(self.example.plan)} failures "
                        f"(max_restarts={allowed}): {cause}",
                    )
            elif not any(name in cause for name in self.injected_errors):
                self.report.add(
                    "b", f"{sub_id} failed for a reason the plan does not explain: {cause}"
                )

    def check_ends(self) -> None:
        registry = self.core.registry
        for sub_id, log in self.logs.items():
            sub = registry.subscription(sub_id)
            if sub.state.value == "closed" and not log.expect_end:
                self.report.add("b", f"{sub_id} closed without being unsubscribed")
            if sub.is_live and (log.ended or log.failure is not None):
                self.report.add("b", f"{sub_id} is live but its stream ended ({log.failure!r})")
            buffer = log.buffer
            skipped = buffer.statistics().duplicates_skipped if buffer is not None else 0
            if log.snapshots_skipped > skipped:
                self.report.add(
                    "b",
                    f"{sub_id}: {log.snapshots_skipped} trade streams resumed after a Gap without "
                    f"a SNAPSHOT, but the router skipped only {skipped} duplicate trades",
                )

    def _unstalled(self) -> dict[int, list[float]]:
        """Per connection, when each injected stall ended (the emulator then reads, at once,
        every request the engine sent during it)."""
        ends: dict[int, list[float]] = {}
        for event in self.emu.history():
            if event.kind == "fault" and event.conn_id is not None:
                match = re.fullmatch(r"stall for ([0-9.]+)", event.detail)
                if match is not None:
                    ends.setdefault(event.conn_id, []).append(event.at + float(match[1]))
        return ends

    def check_limits(self) -> None:
        """(d): every refusal is an injected one, and no message was rate limited.

        One exemption: within one limit window after an injected stall ends. The engine paced
        those requests when it sent them (Upbit's limits are per arrival, and a stall holds
        them in the network), so they arrive bunched; nothing a client can do about a network
        that delivers late, and the engine recovers from the refusal like from any rate error.
        """
        unstalled = self._unstalled()
        for refusal in self.emu.refusals():
            if refusal.reason != "fault injected":
                self.report.add("d", f"connect refused by the emulator's limits: {refusal!r}")
        for record in self.emu.requests():
            ends = unstalled.get(record.conn_id, [])
            if any(end <= record.at <= end + _LIMIT_WINDOW for end in ends):
                continue  # bunched by the stall (see above)
            if record.kind == "rate_limited":
                self.report.add(
                    "d",
                    f"message over the limit on connection {record.conn_id} at "
                    f"{record.at:.3f}: {record.error} ({record.text[:80]})",
                )

    def check_structures(self) -> None:
        """(f): after settling, the engine's tables are sized by the live subscriptions."""
        core = self.core
        registry = core.registry
        live = {sub.id: sub for sub in registry.subscriptions()}
        failed = {sid for sid in self.logs if registry.subscription(sid).state.value == "failed"}
        extra = set(core.buffers) - set(live) - failed
        if extra:
            self.report.add("f", f"buffers kept for ended subscriptions: {sorted(extra)}")
        for sid in failed & set(core.buffers):
            if len(core.buffers[sid]):
                self.report.add("f", f"failed {sid}'s buffer still holds {len(core.buffers[sid])}")
        stats = core.router.statistics()
        routes = sum(len(sub.keys) for sub in live.values())
        if stats.routes != routes:
            self.report.add("f", f"the router has {stats.routes} routes for {routes} live streams")
        if stats.waiting:
            self.report.add("f", f"{stats.waiting} routes still wait for a SNAPSHOT")
        if set(stats.subscribers) - set(live) - failed:
            self.report.add("f", f"router statistics kept for {set(stats.subscribers) - set(live)}")
        trade_codes = {
            key.code for sub in live.values() for key in sub.keys if key.data_type == "trade"
        }
        windows = core.router._index.windows  # one de-duplication window per trade code
        if set(windows) - trade_codes:
            self.report.add("f", f"trade windows kept for {sorted(set(windows) - trade_codes)}")
        if set(core.first_message_due) - set(live):
            self.report.add("f", f"first_message_due keeps {set(core.first_message_due)}")
        if len(core.awaiting) > routes:
            self.report.add("f", f"{len(core.awaiting)} SNAPSHOT waits for {routes} routes")
        records = registry.subscriptions(live_only=False)
        closing = [sub.id for sub in records if sub.state.value == "closing"]
        if closing:
            self.report.add("f", f"unsubscribed but still closing after settling: {closing}")
        bound = len(live) + registry._retain
        if len(records) > bound:
            self.report.add("f", f"the registry keeps {len(records)} records (bound {bound})")
        placed = set(registry._where[SubscriptionKind.REALTIME])
        wanted = {key for sub in live.values() for key in sub.keys}
        if placed != wanted:
            self.report.add(
                "f", f"the planner places {len(placed)} streams for {len(wanted)} live ones"
            )

    async def drive(self) -> None:
        for op in self.example.workload.initial:
            await self.apply(op)
        async with trio.open_nursery() as phase:
            phase.start_soon(self.emu.run_plan, self.example.plan)
            phase.start_soon(self.run_steps)
        self.report.subscriptions = len(self.subs)
        if not await self.settle():
            for prop, text in self.problems():
                self.report.add(
                    prop,
                    f"not settled {settle_timeout(self.example.plan):g} s after the plan: {text}",
                )
        else:
            for prop, text in self.problems():
                self.report.add(prop, text)
            self.check_liveness()
        self.check_failures()
        self.check_ends()
        self.check_limits()
        self.check_structures()
        self.report.outages = self.core.metrics.connection_losses
        self.report.items = sum(log.items for log in self.logs.values())
        self.report.deliveries = {sid: log.digest.hexdigest() for sid, log in self.logs.items()}


def _history(emu: Emulator) -> list[tuple[float, str, int | None, str]]:
    return [
        (round(event.at, 6), event.kind, event.conn_id, _PORT.sub(r"\1:PORT", event.detail))
        for event in emu.history()
    ]


async def run_example(example: Example) -> Report:
    """Run ``example`` on a fresh emulator and engine; every finding is in the report."""
    report = Report()
    before = trio.lowlevel.current_statistics().tasks_living
    async with open_emulator(emulator_config()) as emu:
        emulator_root = emu._nursery  # the emulator's tasks are not the engine's

        def outside_emulator() -> set[Any]:
            return _all_tasks() - set(_walk(emulator_root))

        baseline = outside_emulator()
        try:
            async with open_engine(
                ws_url=emu.ws_url,
                rest_url=emu.rest_url,
                seed=example.workload.seed,
                subscriber_buffer=BUFFER,
                ticket_capacity=TICKET_CAPACITY,
            ) as eng:
                runner = Runner(example, eng, emu, report)
                async with trio.open_nursery() as nursery:
                    runner.nursery = nursery
                    nursery.start_soon(runner.sample)
                    await runner.drive()
                    nursery.cancel_scope.cancel()
        except Exception as exc:  # the engine itself must never raise here
            report.add("e", f"the engine raised: {exc!r}")
        # (e) Nothing the engine started may outlive it.
        leaked = outside_emulator() - baseline
        if leaked:
            report.add(
                "e", f"tasks alive after the engine closed: {sorted(t.name for t in leaked)}"
            )
        report.history = _history(emu)
    after = trio.lowlevel.current_statistics().tasks_living
    if after != before:
        report.add("e", f"{after - before} tasks alive after the emulator and engine closed")
    return report
