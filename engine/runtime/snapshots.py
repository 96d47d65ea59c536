"""One-shot snapshots: merged, snapshot-only requests on a pool of dedicated tickets.

:class:`SnapshotService` answers ``request([(type, code), ...])`` with one SNAPSHOT message per
requested stream. Concurrent requests are merged into as few ``is_only_snapshot`` requests as
Upbit allows, sent only on the service's own connections (a request replaces a connection's
whole subscription, so a snapshot must never travel on a realtime ticket), within each
connection's 5/s and 100/min message limit.

The actors, under one ``rest_for_one`` supervisor named ``snapshots``::

    snapshots        Supervisor(rest_for_one)
     |- coordinator  owns the asks, the merge queue and the batches
     |- snapshot-0   a ticket: connects on demand, sends one batch at a time, lingers, closes
     `- snapshot-1   ... (EngineConfig.snapshot_pool_size tickets)

A request resolves when one SNAPSHOT arrived for each of its streams, or fails at its timeout
with :class:`~engine.errors.SnapshotTimeoutError` naming the streams still missing (Upbit
ignores unlisted codes silently), or with :class:`~engine.errors.ServerError` if Upbit answered
its batch with an error frame. A dropped connection is re-opened and what was still missing is
sent again. See ``engine/core/snapshot_book.py`` and ``engine/runtime/snapshot_ticket.py`` for the
rules.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Sequence
from typing import Any

import trio

from actors import (
    ActorDeadError,
    BackoffPolicy,
    CallTimeoutError,
    ChildSpec,
    Jitter,
    RestartIntensity,
    Strategy,
    supervisor_spec,
)
from engine.config import EngineConfig
from engine.core.keys import StreamKey, ordered_unique
from engine.core.ratelimit import RateLimitBackoff, SlidingWindowLimiter
from engine.core.requests import snapshot_request
from engine.core.snapshot_book import full_key, result_key
from engine.errors import EngineClosedError, InvalidSubscriptionError, SnapshotTimeoutError
from engine.observability.frame_report import FrameReport
from engine.observability.records import SnapshotUsage
from engine.runtime.snapshot_coordinator import coordinator_actor
from engine.runtime.snapshot_messages import Abandoned, Ask, Hub, Results
from engine.runtime.snapshot_ticket import TicketSettings, ticket_actor
from engine.transport.base import Transport
from engine.wire.messages import Message

__all__ = ("SUPERVISOR_NAME", "SnapshotService", "ticket_name")

#: The name of the service's supervisor in the engine's tree.
SUPERVISOR_NAME = "snapshots"

#: Upper bound of the settle period (see ``engine.runtime.snapshot_ticket``): Upbit sends a batch's
#: SNAPSHOTs back to back (about 800 per second were observed), so a second of silence after the
#: last one means the rest are not coming.
_SETTLE_QUIET_MAX = 1.0

#: Extra seconds a caller waits beyond its timeout before giving up on the coordinator itself;
#: the coordinator normally answers at the deadline exactly.
_BACKSTOP = 1.0


def ticket_name(index: int) -> str:
    """The child name of snapshot ticket ``index`` (``snapshot-0``, ...)."""
    return f"snapshot-{index}"


def _as_key(pair: object) -> StreamKey:
    if isinstance(pair, StreamKey):
        return pair
    if isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
        return StreamKey(pair[0], pair[1])
    raise TypeError(
        f"each stream is a (data_type, code) tuple or a StreamKey, not {pair!r}; "
        'write [("ticker", "KRW-BTC")] rather than ("ticker", "KRW-BTC")'
    )


class SnapshotService:
    """The snapshot ticket pool (``EngineConfig.snapshot_pool_size`` tickets, default 1).

    Mount the specs of :meth:`child_specs` under a running supervisor (once), then call
    :meth:`request`. Idle, the service holds no connection; a ticket connects on demand through
    ``connect_limiter`` (shared with the realtime tickets: Upbit counts connects per IP), lingers
    ``EngineConfig.snapshot_linger`` seconds for reuse with protocol pings, then closes.
    ``rng`` draws the reconnect jitter and the tickets' ids; seed it for reproducible runs.
    ``rate_backoff`` is where HTTP 429/418 answers to connects are recorded and honoured; pass
    the realtime tickets' one to share it (Upbit limits connects per IP), else the service keeps
    its own.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        transport: Transport,
        connect_limiter: SlidingWindowLimiter,
        rng: random.Random,
        rate_backoff: RateLimitBackoff | None = None,
        frame_report: FrameReport | None = None,
    ) -> None:
        self._config = config
        self._rng = rng
        self._hub = Hub(rate_backoff or RateLimitBackoff())
        self._settings = TicketSettings(
            config=config,
            transport=transport,
            connect_limiter=connect_limiter,
            rng=rng,
            settle_quiet=min(_SETTLE_QUIET_MAX, config.snapshot_timeout / 5),
            frame_report=frame_report or FrameReport(),
        )

    def child_specs(self) -> list[ChildSpec[Any]]:
        """The service's supervisor, to mount under the engine's (see the module doc).

        Nothing connects until the first request. Mount the specs once: they share this
        service's state.
        """
        config = self._config
        children: list[ChildSpec[Any]] = [
            ChildSpec(
                "coordinator",
                coordinator_actor(self._hub, config.snapshot_pool_size),
                # Tickets report into it and it wakes them: a circular flow, never blocked.
                mailbox_size=math.inf,
                shutdown=config.shutdown_grace,
            )
        ]
        children.extend(
            ChildSpec(
                ticket_name(index),
                ticket_actor(index, self._hub, self._settings),
                mailbox_size=4,
                shutdown=config.shutdown_grace,
            )
            for index in range(config.snapshot_pool_size)
        )
        return [
            supervisor_spec(
                SUPERVISOR_NAME,
                children,
                # Tickets talk to one coordinator incarnation: they restart with it.
                strategy=Strategy.REST_FOR_ONE,
                intensity=RestartIntensity(config.max_restarts, config.restart_window),
                backoff=BackoffPolicy(
                    initial=config.backoff_initial,
                    maximum=config.backoff_max,
                    multiplier=config.backoff_multiplier,
                    jitter=Jitter.EQUAL if config.backoff_jitter > 0 else Jitter.NONE,
                ),
                rng=self._rng,
            )
        ]

    async def request(
        self,
        pairs: Sequence[tuple[str, str] | StreamKey],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the deadline is per request, by contract)
    ) -> dict[tuple[str, str], Message]:
        """One SNAPSHOT per requested stream, as ``{(data_type, code): message}``.

        ``pairs`` are ``(data_type, code)`` tuples, or :class:`~engine.core.keys.StreamKey` values
        for orderbook units and level. ``timeout`` defaults to ``EngineConfig.snapshot_timeout``.

        Raises:
            SnapshotTimeoutError: some streams got no SNAPSHOT in time (``missing`` names them;
                Upbit answers unlisted codes with silence). Its ``__cause__`` is the connection
                error behind it, if there was one.
            ServerError: Upbit answered the request with an error frame.
            InvalidSubscriptionError: a stream cannot be requested as a snapshot, or one
                ``(data_type, code)`` is asked twice with different orderbook options.
            EngineClosedError: the service is not running (or stopped while waiting).
        """
        keys = self._validated(pairs)
        if not keys:
            return {}
        if timeout is None:
            timeout = self._config.snapshot_timeout
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        deadline = trio.current_time() + timeout
        coordinator = await self._hub.wait_coordinator(deadline)
        self._hub.counters.calls += 1

        ask_id = self._hub.next_ask_id()

        def ask(reply: Any) -> Ask:
            return Ask(keys, deadline, timeout, reply, ask_id)

        try:
            results: Results = await coordinator.call(
                ask, timeout=max(0.0, deadline - trio.current_time()) + _BACKSTOP
            )
        except CallTimeoutError:
            self._hub.counters.timeouts += 1
            failure = self._hub.error_since(deadline - timeout)
            raise SnapshotTimeoutError(
                (result_key(key) for key in keys), timeout, connection_error=failure
            ) from failure
        except ActorDeadError as exc:
            raise EngineClosedError(
                "the snapshot service stopped before the request completed (it restarts after a "
                "failure); retry the request"
            ) from exc
        except trio.Cancelled:
            # The caller gave up: its ask leaves the books (requests_in_flight, the next batch)
            # now rather than at its deadline.
            self._hub.withdraw(ask_id)
            with contextlib.suppress(ActorDeadError, trio.WouldBlock):
                coordinator.cast_nowait(Abandoned())
            raise
        return results

    def usage(self) -> SnapshotUsage:
        """Counters and gauges of the pool (frozen)."""
        hub = self._hub
        counters = hub.counters
        book = hub.book
        return SnapshotUsage(
            pool_size=self._config.snapshot_pool_size,
            tickets_open=len(hub.open_tickets),
            requests_in_flight=0 if book is None else book.pending_asks,
            requests=counters.calls,
            completed=counters.completed,
            timeouts=counters.timeouts,
            server_errors=counters.server_errors,
            requests_sent=counters.wire_requests,
            snapshots_received=counters.snapshots,
            connects=counters.connects,
            connect_failures=counters.connect_failures,
            connections_lost=counters.connections_lost,
            malformed_frames=counters.frames_skipped,
        )

    @staticmethod
    def _validated(pairs: Sequence[tuple[str, str] | StreamKey]) -> tuple[StreamKey, ...]:
        if isinstance(pairs, str | StreamKey):
            raise TypeError("pairs must be a sequence of (data_type, code) tuples or StreamKeys")
        keys = ordered_unique(_as_key(pair) for pair in pairs)
        if not keys:
            return keys
        seen: dict[tuple[str, str], StreamKey] = {}
        clashes: list[str] = []
        for key in keys:
            route = full_key(key)
            other = seen.setdefault(result_key(key), route)
            if other != route:
                clashes.append(f"{key.data_type}:{key.code}")
        if clashes:
            raise InvalidSubscriptionError(
                [
                    f"{name} is asked twice with different orderbook options; the result holds "
                    "one message per (type, code): split it into two requests"
                    for name in dict.fromkeys(clashes)
                ]
            )
        try:
            snapshot_request(keys)  # the wire format's own checks, before anything queues
        except ValueError as exc:  # includes InvalidSubscriptionError
            if isinstance(exc, InvalidSubscriptionError):
                raise
            raise InvalidSubscriptionError([str(exc)]) from None
        return keys
