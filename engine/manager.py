"""The engine's public facade: :func:`open_engine` and the :class:`Engine` it yields.

The method names are the public API (stable names): ``request_snapshot``,
``request_snapshots_batch``, ``subscribe_realtime``, ``modify_subscription``,
``unsubscribe_realtime``, ``soft_unsubscribe``, ``hard_unsubscribe``,
``optimize_subscriptions``, ``cleanup_inactive``, ``get_ticket_usage``,
``validate_subscription``, ``detect_conflicts``, plus ``stream``, ``wait_active``, ``wait_settled``,
``check_subscription``, ``subscription_problems``, ``registry``, ``metrics`` and ``debug_tree``.

Cancellation: every call either completes or, when it raises ``trio.Cancelled``, changed
nothing (the registry actor skips a command whose caller gave up; see ``actors.Reply``).

Every subscription change is validated here (against the market catalog and Upbit's rules,
before anything is sent), then applied by the registry actor, the single writer. Queries
(``registry()``, ``get_ticket_usage()``, ``metrics()``...) are synchronous reads of the same
state: the engine runs on one Trio thread, and reads never interleave with a write.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

import attrs
import trio

from actors import ActorError, Reply, Supervisor, open_supervisor
from engine.config import EngineConfig
from engine.debug import EngineTree, TicketNode
from engine.engine_tree import EngineCore, engine_children, root_options
from engine.errors import (
    CatalogNotReadyError,
    EngineClosedError,
    InvalidSubscriptionError,
    NotSettledError,
    StreamBusyError,
    SubscriptionFailedError,
    SubscriptionTimeoutError,
)
from engine.markets import MarketCatalog, check_subscription, subscription_problems
from engine.messages import Message
from engine.metrics import ConnectionState, EngineMetrics, SubscriberMetrics
from engine.planner import PRIVATE_TYPES, StreamKey
from engine.registry_messages import (
    Cleanup,
    CleanupOutcome,
    ConsumerClosed,
    ConsumerOpened,
    Modify,
    Optimize,
    RegistryCommand,
    Subscribe,
    Unsubscribe,
)
from engine.router import StreamItem, SubscriberBuffer
from engine.snapshots import SnapshotUsage
from engine.subscriptions import (
    DEFAULT_CAPACITY,
    Conflict,
    OptimizeReport,
    PoolUsage,
    Subscription,
    SubscriptionState,
)
from engine.transport import Transport
from engine.transports import transport_for

__all__ = ("Engine", "OptimizeOutcome", "SubscriptionStream", "open_engine")

R = TypeVar("R")

#: Seconds a facade call waits for the registry actor.
CALL_TIMEOUT = 10.0
#: Upbit's default orderbook depth and price grouping: asking for them explicitly is the same
#: stream as not asking, so they normalise to ``None`` and duplicates are recognised.
_DEFAULT_UNITS = 30
_DEFAULT_LEVEL = 0


#: Ticket connection states in which its streams flow.
_UP = (ConnectionState.READY, ConnectionState.PARKED)


@attrs.frozen
class OptimizeOutcome:
    """What ``optimize_subscriptions`` did, with the realtime pool's efficiency around it."""

    reports: tuple[OptimizeReport, ...]
    #: Connected tickets that carried nothing (parked or idle) and were closed.
    closed: tuple[str, ...]
    #: Planned ticket efficiency of the realtime pool before and after.
    efficiency_before: float
    efficiency_after: float

    @property
    def moved(self) -> int:
        """Streams that changed ticket."""
        return sum(report.moved for report in self.reports)


class SubscriptionStream:
    """``async for item in engine.stream(sub_id)``: messages and engine events, in order.

    **One reader.** A subscription has one open stream at a time, read by one task: every item
    goes to that reader. A second :meth:`Engine.stream` while this one is open, or a
    :meth:`receive` from a second task while the first still runs, raises
    :class:`~engine.errors.StreamBusyError` (rather than split the messages between them).
    Close it (leave ``async with``, or :meth:`close`) to hand the subscription to a new stream;
    a stream whose reading task has ended counts as closed.

    **The end is explicit.** When the subscription ends without an error (unsubscribed by any
    task, released by ``cleanup_inactive``, the engine closed) the last item is an
    :class:`~engine.events.Ended` event and iteration stops after it; when it failed, iteration
    raises :class:`~engine.errors.SubscriptionFailedError` after the buffered items.

    **Open means consumed.** While a stream is open the subscription counts as read, and
    ``cleanup_inactive`` never releases it. Closing it tells the engine nobody reads it any
    more (inactive for ``cleanup_inactive``); opening a new stream undoes that.
    """

    def __init__(self, buffer: SubscriberBuffer, on_close: Callable[[], None]) -> None:
        self._buffer = buffer
        self._on_close = on_close
        self._closed = False
        self._reader: trio.lowlevel.Task | None = None

    @property
    def subscription_id(self) -> str:
        """The subscription this stream reads."""
        return self._buffer.subscription_id

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _claim(self) -> None:
        # The first task to receive owns the stream; another may take over once it has ended.
        task = trio.lowlevel.current_task()
        reader = self._reader
        if reader is task:
            return
        if self._closed:
            raise trio.ClosedResourceError(
                f"this stream of {self.subscription_id} was closed; open a new one with "
                "engine.stream(sub_id)"
            )
        if reader is not None and _running(reader):
            raise StreamBusyError(
                f"{self.subscription_id}'s stream is read by task {reader.name!r}; a "
                "subscription has one reader. Read it in that task and pass items on (a "
                "trio memory channel per consumer)"
            )
        self._reader = task

    @property
    def is_read(self) -> bool:
        """Open, and its reading task (if one started) still runs."""
        reader = self._reader
        return not self._closed and (reader is None or _running(reader))

    async def receive(self) -> StreamItem:
        """The next item; raises ``trio.EndOfChannel`` once the subscription ended."""
        if self._reader is not trio.lowlevel.current_task():
            self._claim()
        return await self._buffer.receive()

    def __aiter__(self) -> SubscriptionStream:
        return self

    async def __anext__(self) -> StreamItem:
        if self._reader is not trio.lowlevel.current_task():
            self._claim()
        try:
            return await self._buffer.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop reading (idempotent). The subscription stays until it is unsubscribed."""
        if not self._closed:
            self._closed = True
            self._on_close()

    async def __aenter__(self) -> SubscriptionStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _running(task: trio.lowlevel.Task) -> bool:
    # A finished coroutine has no frame.
    return getattr(task.coro, "cr_frame", None) is not None


def _codes(symbols: Sequence[str] | str | None) -> tuple[str, ...]:
    # None means "no codes": myAsset, or myOrder of every market (as engine.markets takes it).
    if symbols is None:
        return ()
    return (symbols,) if isinstance(symbols, str) else tuple(symbols)


def _types(data_type: str | Sequence[str]) -> tuple[str, ...]:
    return (data_type,) if isinstance(data_type, str) else tuple(data_type)


def _normal_units(units: int | None) -> int | None:
    return None if units == _DEFAULT_UNITS else units


def _normal_level(level: float | None) -> float | None:
    return None if level == _DEFAULT_LEVEL else level


class Engine:
    """The running engine; get one from :func:`open_engine`."""

    def __init__(self, core: EngineCore, root: Supervisor) -> None:
        self._core = core
        self._root = root
        #: The open stream of each subscription (one reader at a time).
        self._streams: dict[str, SubscriptionStream] = {}

    @property
    def config(self) -> EngineConfig:
        """The configuration in force."""
        return self._core.config

    # -- calls to the registry actor ----------------------------------------------------------

    async def _call(self, make: Callable[[Reply[R]], RegistryCommand]) -> R:
        core = self._core
        ref = core.registry_ref
        if core.closed or ref is None:
            raise EngineClosedError("the engine has shut down; open a new one with open_engine")
        try:
            return await ref.call(make, timeout=CALL_TIMEOUT)
        except ActorError as exc:
            raise EngineClosedError(f"the engine's registry is not available: {exc}") from exc

    # -- validation ---------------------------------------------------------------------------

    def _problems(
        self,
        types: tuple[str, ...],
        codes: tuple[str, ...],
        units: int | None,
        level: float | None,
        catalog: MarketCatalog | None,
    ) -> list[str]:
        reasons: list[str] = []
        if not types:
            reasons.append("give at least one data type, such as 'ticker'")
        for data_type in types:
            book = data_type == "orderbook"
            found = subscription_problems(
                data_type,
                [] if data_type == "myAsset" else list(codes),
                units=units if book else None,
                level=level if book else None,
                catalog=catalog,
            )
            reasons.extend(reason for reason in found if reason not in reasons)
        if (units is not None or level is not None) and "orderbook" not in types:
            reasons.append("units and level apply to orderbook only")
        private = [t for t in types if t in PRIVATE_TYPES]
        if private and not self._core.config.has_credentials:
            reasons.append(
                f"{', '.join(private)} need API keys: open the engine with access_key and "
                "secret_key"
            )
        return reasons

    async def _validated_catalog(self) -> MarketCatalog | None:
        if not self._core.config.validate_codes:
            return self._core.catalog.current
        return await self._core.catalog.get()

    async def _validate(
        self,
        types: tuple[str, ...],
        codes: tuple[str, ...],
        units: int | None,
        level: float | None,
    ) -> None:
        catalog = await self._validated_catalog()
        if len(types) == 1 and types[0] not in PRIVATE_TYPES:
            # One type: the markets module's own error (UnknownMarketError when only unlisted
            # codes are wrong).
            check_subscription(types[0], list(codes), units=units, level=level, catalog=catalog)
        reasons = self._problems(types, codes, units, level, catalog)
        if reasons:
            raise InvalidSubscriptionError(reasons)

    def validate_subscription(
        self,
        data_type: str | Sequence[str],
        symbols: Sequence[str] | str | None,
        *,
        units: int | None = None,
        level: float | None = None,
    ) -> bool:
        """Whether subscribing would be accepted and is not a duplicate of a live subscription.

        Checks against the market catalog held, which the engine fetches when it opens. Before
        that first fetch completed no code can be confirmed as listed: this raises
        :class:`~engine.errors.CatalogNotReadyError` rather than answer True for a code that
        may not exist (``await eng.wait_catalog()`` first). With ``validate_codes=False`` codes
        are not checked at all. :meth:`check_subscription` raises with every reason instead.
        """
        try:
            self.check_subscription(data_type, symbols, units=units, level=level)
        except InvalidSubscriptionError:
            return False
        return True

    async def wait_catalog(self) -> None:
        """Wait until the market catalog is loaded (the engine fetches it when it opens), so
        :meth:`validate_subscription` and :meth:`check_subscription` can judge codes.

        Raises :class:`~engine.errors.CatalogUnavailableError` if it cannot be fetched.
        """
        await self._core.catalog.get()

    def check_subscription(
        self,
        data_type: str | Sequence[str],
        symbols: Sequence[str] | str | None,
        *,
        units: int | None = None,
        level: float | None = None,
    ) -> None:
        """Raise :class:`~engine.errors.InvalidSubscriptionError` listing every reason the
        subscription would be refused (see :meth:`subscription_problems`)."""
        reasons = self.subscription_problems(data_type, symbols, units=units, level=level)
        if reasons:
            raise InvalidSubscriptionError(reasons)

    def subscription_problems(
        self,
        data_type: str | Sequence[str],
        symbols: Sequence[str] | str | None,
        *,
        units: int | None = None,
        level: float | None = None,
    ) -> list[str]:
        """Every reason the subscription would be refused, each with its fix, including
        "duplicate of a live subscription"; empty when it would be accepted.

        The three verbs mean the same here as in :mod:`engine.markets`:
        ``subscription_problems`` lists, :meth:`validate_subscription` answers True/False,
        :meth:`check_subscription` raises. Raises :class:`~engine.errors.CatalogNotReadyError`
        when only the catalog (not loaded yet) could tell.
        """
        types, codes = _types(data_type), _codes(symbols)
        units, level = _normal_units(units), _normal_level(level)
        catalog = self._core.catalog.current
        reasons = self._problems(types, codes, units, level, catalog)
        if not reasons and catalog is None and self._core.config.validate_codes and codes:
            # Everything else is fine; only whether the codes are listed is unknown yet.
            raise CatalogNotReadyError()
        if not reasons:
            try:
                duplicate = self._core.registry.check_duplicate(
                    types, codes, units=units, level=level
                )
            except InvalidSubscriptionError as exc:
                reasons.extend(exc.reasons)
            else:
                if duplicate:
                    reasons.append(
                        "a live subscription already has exactly these types, codes and "
                        "options: read its stream instead of subscribing again (one reader; "
                        "pass its items on to other tasks)"
                    )
        return reasons

    # -- snapshots -----------------------------------------------------------------------------

    def _snapshot_keys(
        self,
        data_type: str,
        codes: tuple[str, ...],
        units: int | None,
        level: float | None,
    ) -> list[StreamKey]:
        book = data_type == "orderbook"
        return [
            StreamKey(data_type, code, units if book else None, level if book else None)
            for code in codes
        ]

    async def request_snapshot(
        self,
        data_type: str,
        symbols: Sequence[str] | str,
        *,
        units: int | None = None,
        level: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-request deadline, as documented)
    ) -> dict[str, Message]:
        """One-shot: the current state of each symbol, ``{code: message}``.

        Served by the snapshot pool (never on a realtime connection, so no live stream is
        disturbed); concurrent requests are merged. Raises ``InvalidSubscriptionError`` before
        sending if Upbit would refuse or ignore it, ``SnapshotTimeoutError`` naming what did not
        arrive within ``timeout`` (default ``EngineConfig.snapshot_timeout``).
        """
        (result,) = await self.request_snapshots_batch(
            [(data_type, symbols)], units=units, level=level, timeout=timeout
        )
        return result

    async def request_snapshots_batch(
        self,
        requests: Sequence[tuple[str, Sequence[str] | str]],
        *,
        units: int | None = None,
        level: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-request deadline, as documented)
    ) -> list[dict[str, Message]]:
        """Many one-shot lookups at once, e.g. ``[("ticker", krw), ("orderbook", majors)]``.

        Everything travels in as few snapshot-only requests as Upbit allows; the result has one
        ``{code: message}`` per request, in order. ``units``/``level`` apply to orderbook
        entries.
        """
        core = self._core
        units, level = _normal_units(units), _normal_level(level)
        started = trio.current_time()
        core.metrics.snapshot_requests += 1
        try:
            asks: list[tuple[str, tuple[str, ...]]] = []
            reasons: list[str] = []
            catalog = await self._validated_catalog()
            for data_type, symbols in requests:
                codes = _codes(symbols)
                book = data_type == "orderbook"
                if len(requests) == 1 and data_type not in PRIVATE_TYPES:
                    # One request: the markets module's own error (UnknownMarketError when
                    # only unlisted codes are wrong).
                    check_subscription(
                        data_type,
                        list(codes),
                        units=units if book else None,
                        level=level if book else None,
                        catalog=catalog,
                    )
                found = subscription_problems(
                    data_type,
                    list(codes),
                    units=units if book else None,
                    level=level if book else None,
                    catalog=catalog,
                )
                if data_type in PRIVATE_TYPES:
                    found.append(f"{data_type} has no snapshots: subscribe to it instead")
                reasons.extend(reason for reason in found if reason not in reasons)
                asks.append((data_type, codes))
            if reasons:
                raise InvalidSubscriptionError(reasons)
            keys = [
                key
                for data_type, codes in asks
                for key in self._snapshot_keys(data_type, codes, units, level)
            ]
            results = await core.snapshots.request(keys, timeout=timeout)
        except BaseException:
            core.metrics.snapshot_failures += 1
            raise
        core.metrics.snapshot_latency.observe(trio.current_time() - started)
        return [{code: results[(data_type, code)] for code in codes} for data_type, codes in asks]

    # -- realtime ------------------------------------------------------------------------------

    async def subscribe_realtime(
        self,
        data_type: str | Sequence[str],
        symbols: Sequence[str] | str | None,
        *,
        units: int | None = None,
        level: float | None = None,
    ) -> str:
        """Subscribe to continuous streams; returns the subscription id for :meth:`stream`.

        ``data_type`` may be several types (each over every symbol). The subscriber's stream
        begins with one SNAPSHOT per stream, then REALTIME messages; other subscribers of the
        same streams get no duplicate SNAPSHOT. Raises ``InvalidSubscriptionError`` (with every
        reason) before anything is sent if Upbit would refuse or silently ignore it.
        """
        types, codes = _types(data_type), _codes(symbols)
        units, level = _normal_units(units), _normal_level(level)
        metrics = self._core.metrics
        try:
            await self._validate(types, codes, units, level)
            sub: Subscription = await self._call(
                lambda reply: Subscribe(types, codes, units, level, reply)
            )
        except trio.Cancelled:
            metrics.subscriptions_cancelled += 1
            raise
        except BaseException:
            metrics.subscriptions_failed += 1
            raise
        metrics.subscriptions_succeeded += 1
        return sub.id

    def stream(self, subscription_id: str) -> SubscriptionStream:
        """The subscription's messages and events, for one reader (see
        :class:`SubscriptionStream`). Raises :class:`~engine.errors.StreamBusyError` while
        another stream of it is open and read."""
        core = self._core
        core.registry.subscription(subscription_id)  # raises for unknown ids
        current = self._streams.get(subscription_id)
        if current is not None and current.is_read:
            raise StreamBusyError(
                f"{subscription_id} already has an open stream; a subscription has one reader. "
                "Close that stream first (leave its async with), or read it in one task and "
                "pass items on (a trio memory channel per consumer)"
            )
        if current is not None:
            current.close()  # its reader ended without closing it
        buffer = core.buffers.get(subscription_id)
        if buffer is None:
            buffer = SubscriberBuffer(subscription_id)
            buffer.close("the subscription has ended")
        ref = core.registry_ref

        def tell(message: RegistryCommand) -> None:
            if ref is not None:
                # The registry is gone (engine stopping): nobody is left to tell.
                with contextlib.suppress(ActorError, trio.WouldBlock):
                    ref.cast_nowait(message)

        def closed() -> None:
            if self._streams.get(subscription_id) is stream:
                del self._streams[subscription_id]
            tell(ConsumerClosed(subscription_id))

        stream = SubscriptionStream(buffer, closed)
        self._streams[subscription_id] = stream
        tell(ConsumerOpened(subscription_id))
        return stream

    async def wait_active(
        self,
        subscription_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline is part of this call's contract)
    ) -> Subscription:
        """Wait until the subscription is live, and return its record.

        Live: Upbit was sent every stream it wants on a connected ticket and, for public
        streams, each stream's SNAPSHOT reached its stream (or ``SnapshotMissing`` said it will
        not come). Private streams (myOrder, myAsset) have no SNAPSHOT: live means the request
        is on the wire, so an account event from then on is delivered. ``timeout`` defaults to
        ``EngineConfig.connect_timeout + snapshot_timeout``.

        Raises :class:`~engine.errors.SubscriptionTimeoutError` (with the state and the
        connection's last failure) when the deadline passes; the subscription stays and starts
        when it can. Raises :class:`~engine.errors.SubscriptionFailedError` if it failed and
        ``InvalidSubscriptionError`` if it was unsubscribed.
        """
        core = self._core
        if timeout is None:
            timeout = core.config.connect_timeout + core.config.snapshot_timeout
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        with trio.move_on_after(timeout):
            while True:
                sub = core.registry.subscription(subscription_id)
                if sub.state is SubscriptionState.FAILED:
                    raise SubscriptionFailedError(subscription_id, sub.failure or "failed")
                if not sub.is_live:
                    raise InvalidSubscriptionError(
                        [f"{subscription_id} is {sub.state.value}: it was unsubscribed"]
                    )
                if sub.state is SubscriptionState.ACTIVE and not self._awaits_snapshot(sub.id):
                    return sub
                if core.closed:
                    raise EngineClosedError("the engine has shut down")
                await core.changed.wait()
        sub = core.registry.subscription(subscription_id)
        raise SubscriptionTimeoutError(
            subscription_id, timeout, self._pending_state(sub), self._connection_trouble(sub)
        )

    async def wait_settled(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline is part of this call's contract)
    ) -> None:
        """Wait until every change made so far is on the wire: every live subscription ACTIVE,
        every ticket that should carry streams connected, its last request sent and confirmed.

        For tests and for code that must know the engine caught up (after a burst of
        subscribes, before measuring). ``timeout`` defaults to ``EngineConfig.connect_timeout
        + snapshot_timeout``; :class:`~engine.errors.NotSettledError` says what was still
        pending when it ran out.
        """
        core = self._core
        if timeout is None:
            timeout = core.config.connect_timeout + core.config.snapshot_timeout
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        with trio.move_on_after(timeout):
            while core.registry.unsettled():
                if core.closed:
                    raise EngineClosedError("the engine has shut down")
                await core.changed.wait()
            return
        raise NotSettledError(timeout, core.registry.unsettled())

    def _awaits_snapshot(self, subscription_id: str) -> bool:
        return any(route[2] == subscription_id for route in self._core.router.waiting)

    def _pending_state(self, sub: Subscription) -> str:
        if sub.state is SubscriptionState.ACTIVE:
            return "active, waiting for its SNAPSHOT"
        return sub.state.value

    def _connection_trouble(self, sub: Subscription) -> str | None:
        for name in sub.tickets:
            runtime = self._core.tickets.get(name)
            if runtime is None or runtime.state in _UP:
                continue
            if runtime.last_failure:
                return f"{name} is {runtime.state.value}; last failure: {runtime.last_failure}"
        return None

    async def modify_subscription(self, subscription_id: str, symbols: Sequence[str] | str) -> None:
        """Replace a subscription's symbols, keeping its types and options and its ticket.

        Symbols it keeps stream on without a new SNAPSHOT; new ones start with one.
        """
        codes = _codes(symbols)
        core = self._core
        try:
            sub = core.registry.subscription(subscription_id)
            await self._validate(sub.data_types, codes, sub.units, sub.level)
            await self._call(lambda reply: Modify(subscription_id, codes, reply))
        except trio.Cancelled:
            core.metrics.subscriptions_cancelled += 1
            raise
        except BaseException:
            core.metrics.subscriptions_failed += 1
            raise
        core.metrics.subscriptions_succeeded += 1

    async def unsubscribe_realtime(self, subscription_id: str) -> None:
        """End a subscription with the soft strategy (see :meth:`soft_unsubscribe`)."""
        await self.soft_unsubscribe(subscription_id)

    async def soft_unsubscribe(
        self,
        subscription_id: str,
        current_symbols: Sequence[str] | str | None = None,
        *,
        release: Sequence[str] | str | None = None,
    ) -> None:
        """Release streams without closing the connection.

        The ticket's reduced set is re-sent; a ticket left with nothing is parked with a
        snapshot-only request for a parking code (its reply is swallowed). Nothing more reaches
        the subscriber for what was released, stale frames included.

        - ``release=[...]``: only those symbols of the subscription are released; the rest keep
          streaming (naming every symbol ends the subscription).
        - Without it the subscription ends, and its stream's last item is an
          :class:`~engine.events.Ended` event.
        - ``current_symbols`` (the original API's argument): the symbols the subscription
          streams now, from which a parking code used to be picked. The engine picks the
          parking code itself (a listed market the ticket does not stream), so it only checks
          them: they must be the subscription's symbols, and the subscription ends. Naming
          fewer raises (use ``release=`` to release some).
        """
        if current_symbols is not None:
            sub = self._core.registry.subscription(subscription_id)
            named = set(_codes(current_symbols))
            if named != set(sub.codes):
                raise InvalidSubscriptionError(
                    [
                        f"current_symbols names the symbols {subscription_id} streams now "
                        f"({', '.join(sub.codes)}) and ends it; got "
                        f"{', '.join(sorted(named)) or 'none'}. To release only some "
                        "symbols, pass release=[...]"
                    ]
                )
        if release is not None:
            released = set(_codes(release))
            sub = self._core.registry.subscription(subscription_id)
            unknown = sorted(released.difference(sub.codes))
            if unknown:
                raise InvalidSubscriptionError(
                    [
                        f"{subscription_id} does not stream {', '.join(unknown)}; "
                        f"its symbols are {', '.join(sub.codes)}"
                    ]
                )
            keep = tuple(code for code in sub.codes if code not in released)
            if keep:
                await self._call(lambda reply: Modify(subscription_id, keep, reply))
                return
        await self._call(lambda reply: Unsubscribe(subscription_id, "soft", reply))

    async def hard_unsubscribe(self, subscription_id: str) -> None:
        """End a subscription by closing its ticket's connection and reopening it with what
        remains (the other subscribers see an Interrupted/Gap pair and a fresh SNAPSHOT)."""
        await self._call(lambda reply: Unsubscribe(subscription_id, "hard", reply))

    # -- efficiency ----------------------------------------------------------------------------

    async def optimize_subscriptions(self) -> OptimizeOutcome:
        """Repack the streams onto the fewest tickets, keeping each symbol's data types on one
        ticket (so one request merges them), and close tickets that carry nothing (parked after
        a soft unsubscribe); returns what moved and closed, and the efficiency change."""
        before = self._efficiency()
        answer: tuple[tuple[OptimizeReport, ...], tuple[str, ...]] = await self._call(
            lambda reply: Optimize(reply)
        )
        reports, closed = answer
        await self._wait_closed(closed)
        return OptimizeOutcome(reports, closed, before, self._efficiency())

    async def _wait_closed(self, tickets: tuple[str, ...]) -> None:
        # Closing a ticket is asynchronous (the ticket actor stops, then reports the loss);
        # wait for it so the caller sees the effect, but never hang on a stuck ticket.
        try:
            with trio.move_on_after(CALL_TIMEOUT):
                for name in tickets:
                    event = self._core.closing.get(name)
                    if event is not None:
                        await event.wait()
        except trio.Cancelled:
            # The registry already made the change: the caller gets its outcome rather than
            # an exception that would say nothing happened. Trio cancellation is level-
            # triggered, so the caller's next checkpoint raises Cancelled all the same.
            return

    def _efficiency(self) -> float:
        usage = self._core.registry.usage(trio.current_time()).get("realtime")
        return 1.0 if usage is None else usage.efficiency.ticket

    async def cleanup_inactive(self, *, inactive_after: float | None = None) -> CleanupOutcome:
        """Release inactive subscriptions and close tickets that carry nothing.

        Inactive: its stream was closed by its reader, or it is active on a connected ticket
        and received nothing for ``inactive_after`` seconds (default
        ``EngineConfig.inactive_after``). A subscription whose stream is open and read is never
        inactive, however quiet (releasing it would end a stream someone reads); private
        streams are never inactive by silence either. A released subscription's stream, if
        one is still open, ends with an :class:`~engine.events.Ended` event.
        """
        after = self._core.config.inactive_after if inactive_after is None else inactive_after
        if not after > 0:
            raise ValueError(f"inactive_after must be > 0 seconds, got {after!r}")
        reading = frozenset(sub for sub, stream in self._streams.items() if stream.is_read)
        outcome: CleanupOutcome = await self._call(lambda reply: Cleanup(after, reading, reply))
        await self._wait_closed(outcome.tickets)
        return outcome

    def get_ticket_usage(self) -> dict[str, PoolUsage | SnapshotUsage]:
        """Per pool. ``realtime`` and ``private``: tickets configured/open/parked/idle/waiting,
        tickets per connection state, streams, codes, subscriptions and ticket efficiency
        (planned and on the wire), as :class:`~engine.subscriptions.PoolUsage`. ``snapshot``:
        the snapshot pool's :class:`~engine.snapshots.SnapshotUsage` (tickets open, requests in
        flight, ...)."""
        usage: dict[str, PoolUsage | SnapshotUsage] = dict(self._stream_pools())
        usage["snapshot"] = self._core.snapshots.usage()
        return usage

    def _stream_pools(self) -> dict[str, PoolUsage]:
        core = self._core
        usage = core.registry.usage(trio.current_time())
        pools: dict[str, PoolUsage] = {}
        for pool, value in usage.items():
            if pool == "snapshot":
                continue
            states: dict[str, int] = {}
            for name in core.registry.tickets(pool):
                state = core.tickets[name].state.value
                states[state] = states.get(state, 0) + 1
            pools[pool] = attrs.evolve(value, connection_states=MappingProxyType(states))
        return pools

    def detect_conflicts(self) -> list[Conflict]:
        """Findings: duplicate or overlapping subscriptions, streams split over tickets,
        snapshot/realtime mode mixes, streams whose SNAPSHOT never came."""
        core = self._core
        return core.registry.detect_conflicts(
            trio.current_time(), snapshot_timeout=core.config.snapshot_timeout
        )

    # -- inspection ----------------------------------------------------------------------------

    def subscription(self, subscription_id: str) -> Subscription:
        """The registry's current record of a subscription."""
        return self._core.registry.subscription(subscription_id)

    def registry(self) -> dict[str, dict[str, object]]:
        """The registry's shape, keyed by ticket id: mode, data_types, symbols, created_at,
        last_message, status (active | inactive | error), plus generation, parked,
        subscriptions, error, failed (subscription id -> cause), suspects, and the connection:
        state (see :class:`~engine.metrics.ConnectionState`), state_since, reconnects,
        last_failure and last_failure_at.

        Times are Trio clock seconds; each has a ``*_utc`` twin (``created_at_utc``...): the
        same moment as a wall-clock ``datetime`` in UTC, or ``None``."""
        core = self._core
        now = trio.current_time()
        wall = time.time()

        def utc(at: object) -> datetime | None:
            if not isinstance(at, int | float):
                return None
            return datetime.fromtimestamp(wall - (now - at), UTC)

        view = core.registry.registry_view(now, stall_after=core.config.stall_timeout)
        for name, entry in view.items():
            runtime = core.tickets.get(name)
            if runtime is not None:
                entry.update(
                    state=runtime.state.value,
                    state_since=runtime.since,
                    reconnects=runtime.reconnects,
                    last_failure=runtime.last_failure,
                    last_failure_at=runtime.last_failure_at,
                )
                failing = runtime.lost_at is not None and runtime.state not in _UP
                if failing and entry["status"] == "inactive" and entry["subscriptions"]:
                    # The ticket's own news is synchronous; the registry hears of a failed
                    # connect a moment later. Never show a failing ticket as merely inactive.
                    entry.update(status="error", error=runtime.last_failure)
            for field in ("created_at", "last_message", "state_since", "last_failure_at"):
                if field in entry:
                    entry[f"{field}_utc"] = utc(entry[field])
        return view

    def metrics(self) -> EngineMetrics:
        """A frozen statistics snapshot (see :class:`~engine.metrics.EngineMetrics`)."""
        core = self._core
        recorder = core.metrics
        routing = core.router.statistics()
        states: dict[str, int] = {}
        for sub in core.registry.subscriptions():
            states[sub.state.value] = states.get(sub.state.value, 0) + 1
        subscribers = {
            sub_id: SubscriberMetrics(
                subscription_id=sub_id,
                routed=stats.routed,
                delivered=stats.buffer.delivered,
                buffered=stats.buffer.buffered,
                conflated=stats.buffer.conflated,
                dropped=stats.buffer.dropped,
                duplicates_skipped=stats.buffer.duplicates_skipped,
            )
            for sub_id, stats in routing.subscribers.items()
        }
        now = trio.current_time()
        return EngineMetrics(
            at=now,
            ticket_usage=MappingProxyType(self._stream_pools()),
            snapshot_usage=core.snapshots.usage(),
            subscriptions=MappingProxyType(states),
            subscriptions_succeeded=recorder.subscriptions_succeeded,
            subscriptions_failed=recorder.subscriptions_failed,
            subscriptions_cancelled=recorder.subscriptions_cancelled,
            subscriptions_broken=recorder.subscriptions_broken,
            connects=recorder.connects,
            reconnects=recorder.reconnects,
            connection_losses=recorder.connection_losses,
            restarts=recorder.restarts,
            gaps=recorder.gaps,
            requests_sent=recorder.requests_sent,
            parking_requests=recorder.parking_requests,
            messages_received=MappingProxyType(dict(recorder.received)),
            unrouted=sum(t.unrouted for t in routing.tickets.values()),
            snapshot_requests=recorder.snapshot_requests,
            snapshot_failures=recorder.snapshot_failures,
            snapshot_latency=recorder.snapshot_latency.summary(),
            connect_latency=recorder.connect_latency.summary(),
            resubscribe_latency=recorder.resubscribe_latency.summary(),
            subscribers=MappingProxyType(subscribers),
            tickets=MappingProxyType(
                {name: runtime.metrics(now) for name, runtime in core.tickets.items()}
            ),
            requests_rejected=recorder.requests_rejected,
            tickets_failed=recorder.tickets_failed,
            undecodable_frames=MappingProxyType(dict(recorder.frames.undecodable)),
            unknown_types=MappingProxyType(dict(recorder.frames.unknown_types)),
            field_drift=MappingProxyType(dict(recorder.frames.drifted_fields)),
            snapshots_missing=recorder.snapshots_missing,
            orderbook_rows_mismatch=MappingProxyType(
                {
                    "trimmed": sum(t.books_trimmed for t in routing.tickets.values()),
                    "short": sum(t.books_short for t in routing.tickets.values()),
                }
            ),
        )

    def debug_tree(self) -> EngineTree:
        """The supervision tree (states, generations, restarts, mailboxes) with each ticket's
        registry status, connection state and routing counters."""
        core = self._core
        now = trio.current_time()
        routing = core.router.statistics().tickets
        tickets: Mapping[str, TicketNode] = MappingProxyType(
            {
                name: TicketNode(
                    core.registry.ticket_status(name),
                    routing.get(name),
                    runtime.metrics(now) if (runtime := core.tickets.get(name)) else None,
                )
                for name in core.registry.tickets()
                if not name.startswith("snapshot-")
            }
        )
        return EngineTree(self._root.tree(), tickets)


@asynccontextmanager
async def open_engine(
    config: EngineConfig | None = None,
    /,
    *,
    catalog: MarketCatalog | None = None,
    transport: Transport | str | None = None,
    ticket_capacity: int = DEFAULT_CAPACITY,
    **options: Any,
) -> AsyncIterator[Engine]:
    """Run the engine for the duration of the block.

    Options are :class:`~engine.config.EngineConfig` fields as keywords (applied on top of
    ``config`` if one is given); the defaults point at the real Upbit endpoints. ``catalog``
    replaces fetching the market list (tests), ``transport`` the WebSocket implementation (a
    :class:`~engine.transport.Transport`, or the name of one: the ``EngineConfig.transport``
    option), and
    ``ticket_capacity`` is the most distinct codes the planner puts on one realtime ticket
    before opening the next. Leaving the block ends every stream cleanly and stops every actor
    in reverse start order.
    """
    if isinstance(transport, str):
        options["transport"] = transport
        transport = None
    engine_config = EngineConfig.from_options(config, **options)
    core = EngineCore(
        engine_config,
        transport=transport or transport_for(engine_config.transport),
        catalog=catalog,
        ticket_capacity=ticket_capacity,
    )
    async with open_supervisor(engine_children(core), **root_options(core)) as root:
        core.root = root
        try:
            yield Engine(core, root)
        finally:
            core.closed = True
            for buffer in core.buffers.values():
                buffer.close("the engine closed")
            core.note_change()
    core.root = None
    core.registry_ref = None
