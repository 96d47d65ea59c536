"""The engine's public facade: the :class:`Engine` that :func:`~engine.open_engine` yields.

The method names are the public API (stable names): ``request_snapshot``,
``request_snapshots_batch``, ``subscribe_realtime``, ``modify_subscription``,
``unsubscribe_realtime``, ``soft_unsubscribe``, ``hard_unsubscribe``,
``optimize_subscriptions``, ``cleanup_inactive``, ``get_ticket_usage``,
``validate_subscription``, ``detect_conflicts``, plus ``stream``, ``wait_active``, ``wait_settled``,
``check_subscription``, ``subscription_problems``, ``registry``, the REST history calls
``fetch_trades`` and ``fetch_candles``, and (from :class:`~engine.facade.observing.Observing`)
``metrics``, ``debug_tree``, ``events``, ``metrics_address`` and ``debug_address``.

Cancellation: every call either completes or, when it raises ``trio.Cancelled``, changed
nothing (the registry actor skips a command whose caller gave up; see ``actors.Reply``).

Every subscription change is validated here (against the market catalog and Upbit's rules,
before anything is sent), then applied by the registry actor, the single writer. Queries
(``registry()``, ``get_ticket_usage()``, ``metrics()``...) are synchronous reads of the same
state: the engine runs on one Trio thread, and reads never interleave with a write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import trio

from actors import ActorError, Reply, Supervisor
from engine.config import EngineConfig
from engine.core.checks import (
    codes_kept,
    codes_of,
    normal_level,
    normal_units,
    raise_problems,
    request_problems,
    snapshot_keys,
    types_of,
)
from engine.core.registry import Conflict, OptimizeReport, Subscription
from engine.errors import (
    CatalogNotReadyError,
    EngineClosedError,
    InvalidSubscriptionError,
    StreamBusyError,
)
from engine.facade import history
from engine.facade.observing import Observing
from engine.facade.views import (
    TicketEntry,
    TicketUsage,
    registry_view,
    ticket_usage,
)
from engine.facade.waits import wait_active, wait_closed, wait_settled
from engine.markets.catalog import MarketCatalog
from engine.rest.history import HistoryResult
from engine.routing.router import SubscriberBuffer
from engine.routing.stream import SubscriptionStream
from engine.runtime.registry_messages import (
    Cleanup,
    CleanupOutcome,
    ConsumerClosed,
    ConsumerOpened,
    Modify,
    Optimize,
    OptimizeOutcome,
    RegistryCommand,
    Subscribe,
    Unsubscribe,
)
from engine.runtime.state import EngineCore
from engine.wire.messages import Candle, Message, Trade

__all__ = ("Engine", "OptimizeOutcome", "SubscriptionStream", "TicketEntry", "TicketUsage")

R = TypeVar("R")

#: Seconds a facade call waits for the registry actor.
CALL_TIMEOUT = 10.0
#: Upbit's default orderbook depth and price grouping: asking for them explicitly is the same
#: stream as not asking, so they normalise to ``None`` and duplicates are recognised.
_DEFAULT_UNITS = 30
_DEFAULT_LEVEL = 0


class Engine(Observing):
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
        raise_problems(
            [(types, codes)],
            units=units,
            level=level,
            catalog=await self._validated_catalog(),
            has_credentials=self._core.config.has_credentials,
        )

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
        types, codes = types_of(data_type), codes_of(symbols)
        units, level = normal_units(units), normal_level(level)
        catalog = self._core.catalog.current
        reasons = request_problems(
            [(types, codes)],
            units=units,
            level=level,
            catalog=catalog,
            has_credentials=self._core.config.has_credentials,
        )
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
        units, level = normal_units(units), normal_level(level)
        started = trio.current_time()
        core.metrics.snapshot_requests += 1
        try:
            asks = [((data_type,), codes_of(symbols)) for data_type, symbols in requests]
            raise_problems(
                asks,
                units=units,
                level=level,
                catalog=await self._validated_catalog(),
                has_credentials=core.config.has_credentials,
                snapshot=True,
            )
            keys = [
                key
                for (data_type,), codes in asks
                for key in snapshot_keys(data_type, codes, units, level)
            ]
            results = await core.snapshots.request(keys, timeout=timeout)
        except BaseException:
            core.metrics.snapshot_failures += 1
            raise
        core.metrics.snapshot_latency.observe(trio.current_time() - started)
        return [
            {code: results[(data_type, code)] for code in codes} for (data_type,), codes in asks
        ]

    # -- realtime ------------------------------------------------------------------------------

    async def subscribe_realtime(
        self,
        data_type: str | Sequence[str],
        symbols: Sequence[str] | str | None,
        *,
        units: int | None = None,
        level: float | None = None,
        backfill: bool | None = None,
    ) -> str:
        """Subscribe to continuous streams; returns the subscription id for :meth:`stream`.

        ``data_type`` may be several types (each over every symbol). The subscriber's stream
        begins with one SNAPSHOT per stream, then REALTIME messages; other subscribers of the
        same streams get no duplicate SNAPSHOT. ``backfill`` (default
        ``EngineConfig.backfill``): after a gap, trades missed are fetched from REST and
        delivered before the live ones (``Gap.backfill``, ``Backfilled``). Raises
        ``InvalidSubscriptionError`` (with every reason) before anything is sent if Upbit would
        refuse or silently ignore it.
        """
        if backfill is not None and not isinstance(backfill, bool):
            raise TypeError(f"backfill must be True, False or None, not {backfill!r}")
        types, codes = types_of(data_type), codes_of(symbols)
        units, level = normal_units(units), normal_level(level)
        metrics = self._core.metrics
        try:
            await self._validate(types, codes, units, level)
            sub: Subscription = await self._call(
                lambda reply: Subscribe(types, codes, units, level, reply, backfill)
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
        self._forget_ended_streams()
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

    def _forget_ended_streams(self) -> None:
        # An unclosed stream of an ended subscription (its buffer is gone) holds no slot here.
        for sub_id in [s for s in self._streams if s not in self._core.buffers]:
            del self._streams[sub_id]

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
        return await wait_active(self._core, subscription_id, timeout)

    async def wait_settled(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline is part of this call's contract)
    ) -> None:
        """Wait until every change made so far is on the wire: every live subscription ACTIVE,
        every ticket that should carry streams connected, its last request sent and confirmed,
        and every trade backfill started released to its subscribers.

        For tests and for code that must know the engine caught up (after a burst of
        subscribes, before measuring). ``timeout`` defaults to ``EngineConfig.connect_timeout
        + snapshot_timeout``; :class:`~engine.errors.NotSettledError` says what was still
        pending when it ran out.
        """
        await wait_settled(self._core, timeout)

    async def modify_subscription(self, subscription_id: str, symbols: Sequence[str] | str) -> None:
        """Replace a subscription's symbols, keeping its types and options and its ticket.

        Symbols it keeps stream on without a new SNAPSHOT; new ones start with one.
        """
        codes = codes_of(symbols)
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
        sub = self._core.registry.subscription(subscription_id)
        keep = codes_kept(sub, current_symbols=current_symbols, release=release)
        if keep:
            await self._call(lambda reply: Modify(subscription_id, keep, reply))
        else:
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
        await wait_closed(self._core, closed)
        return OptimizeOutcome(reports, closed, before, self._efficiency())

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
        self._forget_ended_streams()
        reading = frozenset(sub for sub, stream in self._streams.items() if stream.is_read)
        outcome: CleanupOutcome = await self._call(lambda reply: Cleanup(after, reading, reply))
        await wait_closed(self._core, outcome.tickets)
        return outcome

    def get_ticket_usage(self) -> TicketUsage:
        """Per pool, typed: ``realtime`` and ``private`` (tickets configured/open/parked/idle/
        waiting, tickets per connection state, streams, codes, subscriptions and ticket
        efficiency, planned and on the wire: :class:`~engine.core.registry.PoolUsage`) and
        ``snapshot`` (:class:`~engine.observability.records.SnapshotUsage`: tickets open, requests
        in flight, ...). ``to_dict()`` gives them keyed by pool name."""
        return ticket_usage(self._core)

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

    def subscriptions(self) -> tuple[Subscription, ...]:
        """The live subscriptions (pending, active, modifying), in creation order."""
        return self._core.registry.subscriptions()

    def registry(self) -> dict[str, TicketEntry]:
        """Per ticket id, a :class:`~engine.TicketEntry`: mode, data_types, symbols,
        created_at, last_message, status (active | inactive | error), generation, parked,
        subscriptions, error, failed (subscription id -> cause), suspects, and the connection:
        state (see :class:`~engine.core.connection_state.ConnectionState`), state_since, reconnects,
        last_failure and last_failure_at. Times are Trio clock seconds, each with a ``*_utc``
        twin; ``entry.to_dict()`` gives a plain dict."""
        return registry_view(self._core)

    # -- history (REST) -----------------------------------------------------------------------

    async def fetch_trades(
        self,
        code: str,
        *,
        start: datetime,
        end: datetime | None = None,
        max_pages: int | None = None,
        now: datetime | None = None,
    ) -> HistoryResult[Trade]:
        """Every trade of ``code`` with ``start <= time < end`` (``end``: now by default),
        oldest first, each once, from Upbit's REST history (7 days back); ``coverage`` says
        whether the range was covered. Shares one request budget with the engine's own REST
        calls (Upbit's per-second limits, 429 and 418 handled). ``now`` is the server's current
        time (default: this machine's clock; give it for a server on another clock, such as an
        emulator's market)."""
        return await history.trades(
            self._core, code, start=start, end=end, max_pages=max_pages, now=now
        )

    async def fetch_candles(
        self,
        code: str,
        unit: str,
        *,
        start: datetime,
        end: datetime | None = None,
        max_pages: int | None = None,
        now: datetime | None = None,
    ) -> HistoryResult[Candle]:
        """The ``unit`` candles (``"1s"``, ``"1m"`` ... ``"240m"``, ``"1d"``, ``"1w"``) of
        ``code`` whose period starts in ``[start, end)``, oldest first; periods without trades
        have no candle. Same budget and coverage as :meth:`fetch_trades`."""
        return await history.candles(
            self._core, code, unit, start=start, end=end, max_pages=max_pages, now=now
        )
