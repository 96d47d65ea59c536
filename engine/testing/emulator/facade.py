"""The Upbit emulator: ``open_emulator()`` and the :class:`Emulator` it yields.

One port serves ``/websocket/v1``, ``/websocket/v1/private`` and the quotation REST endpoints on
127.0.0.1. The emulator behaves like Upbit (docs/UPBIT.md, "What the emulator reproduces"), lets
tests look inside (connections, subscription sets, requests, refusals, history, when each stream
first got a frame) and misbehaves on command (drops, restarts, stalls, error and malformed frames,
latency, refused connects, limits, drift from the documented wire; over HTTP too when
``EmulatorConfig.fault_controls`` is on, see ``control``). Everything runs on the Trio clock, so
``MockClock(autojump_threshold=0)`` makes minutes of protocol time pass instantly.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import trio

from engine._groups import raise_single_leaf
from engine.testing.config import EmulatorConfig
from engine.testing.drift import Drift
from engine.testing.emulator.auth import AuthResult, make_jwt
from engine.testing.emulator.connections import Connections
from engine.testing.emulator.control import CONTROL_PREFIX, Control
from engine.testing.emulator.event_log import EventListener, EventLog
from engine.testing.emulator.fault_plans import FaultPlanner
from engine.testing.emulator.feed import Feed, MarketSource
from engine.testing.emulator.history import TradeHistory, TradeRecord, record_events, seed
from engine.testing.emulator.server import PRIVATE_PATH, PUBLIC_PATH, Server
from engine.testing.emulator.session import MalformedKind, Session
from engine.testing.emulator.transport import ServerStream
from engine.testing.faults import DropHow, FaultAction, FaultPlan
from engine.testing.introspection import (
    ConnectionInfo,
    EmulatorEvent,
    EmulatorStatistics,
    EventKind,
    Refusal,
    RequestRecord,
)
from engine.testing.marketdata.market import Listing, MarketSimulator, default_catalog, to_simple

__all__ = ("Emulator", "open_emulator")


class Emulator:
    """A running emulator. Create it with :func:`open_emulator`, not directly."""

    def __init__(
        self,
        config: EmulatorConfig,
        source: MarketSource[Any],
        catalog: Sequence[Listing],
        nursery: trio.Nursery,
    ) -> None:
        self._config = config
        self._source = source
        self._catalog = tuple(catalog)
        self._nursery = nursery
        # The market's past for REST history, on the simulator's clock (epoch ms of its time 0).
        self._trades = TradeHistory(config.trade_retention)
        self._start_ms = source.start_ms if isinstance(source, MarketSimulator) else None
        self._events = EventLog(config.history_limit)
        self._feed: Feed[Any] = Feed(
            source,
            to_simple,
            interval=config.feed_interval,
            on_frames=self._events.notify,
            on_events=self._on_market,
        )
        self._drift = config.drift
        self._feed.set_drift(config.drift)
        control = Control(self, nursery) if config.fault_controls else None
        self._server = Server(
            config,
            self._catalog,
            run_session=self._run_session,
            record=self.record,
            limits_enforced=lambda: self._limits_enforced,
            history=self._trades,
            control=control.answer if control is not None else None,
        )
        self._connections = Connections(config.closed_history)
        self._planner = FaultPlanner(self, self._connections, self._drop)
        self._latency = 0.0
        self._limits_enforced = config.limits.enforce
        self._started_at = 0.0
        self._restart_lock = trio.Lock()

    async def _start(self) -> None:
        self._started_at = trio.current_time()
        seed(self._trades, [listing.market for listing in self._catalog], self._source.render)
        self._trades.advance(self._market_ms(0.0))
        await self._nursery.start(self._feed.run)
        await self._server.listen(self._nursery)
        self.record("server_up", None, f"listening on {self.config.host}:{self.port}")

    def _market_ms(self, market_time: float) -> int:
        if self._start_ms is not None:
            return self._start_ms + int(market_time * 1000)
        return self._trades.newest_ms  # a source without a known start: its latest trade

    def _on_market(self, events: Sequence[Any], market_time: float) -> None:
        # Every batch, subscribed or not: the market trades and is remembered while nobody
        # listens, so REST can answer for times a client was away.
        record_events(self._trades, events, self._source.render_event)
        self._trades.advance(self._market_ms(market_time))

    # -- what sessions use (the SessionHost protocol) ---------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        """The configuration this emulator runs with."""
        return self._config

    @property
    def feed(self) -> Feed[Any]:
        return self._feed

    @property
    def latency(self) -> float:
        """Seconds added to every frame sent (see :meth:`set_latency`)."""
        return self._latency

    @property
    def limits_enforced(self) -> bool:
        """Whether rate limits are enforced right now (see :meth:`set_limits`)."""
        return self._limits_enforced

    def record(self, kind: EventKind, conn_id: int | None, detail: str) -> None:
        """Append to the history (also used by the emulator's own parts)."""
        self._events.record(kind, conn_id, detail)

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every history event from now on (connects, refusals, requests,
        errors, closes, faults, restarts), synchronously as it is recorded; return a function
        that removes it. It runs inside the emulator's tasks, so it must not block, and an
        exception it raises ends the emulator."""
        return self._events.add_listener(listener)

    async def _run_session(
        self,
        path: str,
        peer: tuple[str, int],
        stream: ServerStream,
        auth: AuthResult | None,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        session = Session(self, self._connections.next_id(), path, peer, stream, auth)
        self._connections.add(session)
        try:
            await session.run(headers)
        finally:
            self._connections.retire(session)

    # -- addresses and credentials --------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._config.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def _url_host(self) -> str:
        host = self._config.host
        if host in ("", "0.0.0.0"):
            return "127.0.0.1"
        if host == "::":
            return "[::1]"
        return f"[{host}]" if ":" in host else host

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/websocket/v1`` (public quotation data)."""
        return f"ws://{self._url_host}:{self.port}{PUBLIC_PATH}"

    @property
    def private_ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/websocket/v1/private`` (myOrder, myAsset; JWT required)."""
        return f"ws://{self._url_host}:{self.port}{PRIVATE_PATH}"

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``/v1/market/all``, ``/v1/orderbook/instruments``,
        ``/v1/trades/ticks``, ``/v1/candles/...``)."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def control_url(self) -> str | None:
        """``http://127.0.0.1:PORT/emulator`` (the fault controls; ``GET`` lists them), or None
        when ``EmulatorConfig.fault_controls`` is off."""
        return f"{self.rest_url}{CONTROL_PREFIX}" if self._config.fault_controls else None

    @property
    def access_key(self) -> str:
        """The first configured access key."""
        return next(iter(self._config.access_keys))

    @property
    def secret_key(self) -> str:
        """The secret key of :attr:`access_key`."""
        return self._config.access_keys[self.access_key]

    def make_token(
        self, access_key: str | None = None, *, algorithm: str = "HS512", nonce: str | None = None
    ) -> str:
        """A JWT this emulator accepts (for ``access_key``, default the first configured one)."""
        key = access_key or self.access_key
        secret = self._config.access_keys.get(key)
        if secret is None:
            raise ValueError(f"{key!r} is not a configured access key; add it to access_keys")
        return make_jwt(key, secret, algorithm=algorithm, nonce=nonce)

    def auth_headers(
        self, access_key: str | None = None, *, algorithm: str = "HS512"
    ) -> list[tuple[bytes, bytes]]:
        """``[(b"Authorization", b"Bearer <fresh jwt>")]``, ready for trio-websocket."""
        token = self.make_token(access_key, algorithm=algorithm)
        return [(b"Authorization", f"Bearer {token}".encode())]

    @property
    def catalog(self) -> tuple[Listing, ...]:
        """The listed pairs (what ``/v1/market/all`` serves)."""
        return self._catalog

    @property
    def simulator(self) -> MarketSource[Any]:
        """The market simulator feeding the streams."""
        return self._source

    # -- introspection --------------------------------------------------------------------------

    def connections(self, *, open_only: bool = False) -> tuple[ConnectionInfo, ...]:
        """Every open WebSocket connection and the newest ``closed_history`` closed ones (or
        only the open ones), oldest first."""
        sessions = self._connections.open() if open_only else self._connections.established()
        return tuple(session.info() for session in sessions)

    def connection(self, conn_id: int) -> ConnectionInfo:
        """One connection's snapshot (``KeyError`` naming the known ids if there is none, or
        saying it was forgotten beyond ``EmulatorConfig.closed_history``)."""
        return self._connections.get(conn_id).info()

    @property
    def connects_accepted(self) -> int:
        """WebSocket upgrades accepted."""
        return self._server.accepted

    @property
    def connects_refused(self) -> int:
        """WebSocket upgrades refused with an HTTP status (429, 418, 401). Connects refused by
        the kernel while the server is down are not seen, so not counted."""
        return self._server.refused

    def refusals(self) -> tuple[Refusal, ...]:
        return tuple(self._server.refusals)

    def history(self) -> tuple[EmulatorEvent, ...]:
        """Connects, refusals, requests, errors, closes, faults and restarts, in order (the
        newest ``EmulatorConfig.history_limit`` of them)."""
        return self._events.events()

    def requests(self, conn_id: int | None = None) -> tuple[RequestRecord, ...]:
        """Messages received (from one connection, or from every connection still remembered,
        in arrival order; see ``EmulatorConfig.closed_history``)."""
        if conn_id is not None:
            return tuple(self._connections.get(conn_id).requests)
        merged = [record for s in self._connections.established() for record in s.requests]
        return tuple(sorted(merged, key=lambda record: record.at))

    def trades_made(self, code: str) -> tuple[TradeRecord, ...]:
        """Every trade of ``code`` the emulator remembers, oldest first: exactly what the
        ``trade`` stream sent (same ``sequential_id``, price, volume and times) and what
        ``/v1/trades/ticks`` serves, newest first, with ``TradeRecord.as_rest()`` as items.

        The market trades whether or not a client is connected; the oldest trades are forgotten
        as ``EmulatorConfig.trade_retention`` says. Raises ``KeyError`` for a code not listed.
        """
        if code not in self._server.listed:
            raise KeyError(f"{code!r} is not in the emulator's catalog")
        return self._trades.trades(code)

    @property
    def market_now_ms(self) -> int:
        """The market clock: epoch ms (UTC) the market has reached. REST history's "now" (the
        current UTC day of ``/v1/trades/ticks``, the newest candles) and the time base of every
        ``timestamp`` the market makes."""
        return self._trades.now_ms

    def statistics(self) -> EmulatorStatistics:
        stats = self._feed.statistics
        return EmulatorStatistics(
            market_time=self._feed.market_time,
            events=stats.events,
            realtime_frames=stats.frames,
            renders=stats.renders,
            connections_open=len(self._connections.open()),
            connects_accepted=self._server.accepted,
            connects_refused=self._server.refused,
            listening=self._server.listening,
            drifted_frames=stats.drifted,
            garbage_frames=stats.garbage,
            unknown_type_frames=stats.unknown_types,
            snapshots_withheld=stats.snapshots_withheld,
        )

    def first_sent(self, conn_id: int | None = None) -> Mapping[tuple[int, str, str], float]:
        """``(conn_id, data type, code) -> Trio time`` at which each connection (or only
        ``conn_id``) was first sent a data frame of that type and code since its latest
        subscription request (SNAPSHOT or REALTIME; ``code`` is ``""`` for myAsset). The time
        is when the frame was queued: latency or a stall delays the write, not the record.
        Closed connections keep their records until they are forgotten (``closed_history``)."""
        connections = self._connections
        sessions = [connections.get(conn_id)] if conn_id is not None else connections.established()
        return MappingProxyType(
            {
                (session.conn_id, data_type, code): at
                for session in sessions
                for (data_type, code), at in session.first_sent.items()
            }
        )

    # -- waiting (synchronise on events, never on sleeps) ----------------------------------------

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true; it is re-checked after every emulator event and
        every batch of realtime frames. Wrap in ``trio.fail_after`` to bound the wait."""
        await self._events.wait_for(predicate)

    async def wait_connections(self, count: int = 1) -> tuple[ConnectionInfo, ...]:
        """Wait until at least ``count`` connections are open; return the open ones."""
        await self.wait_for(lambda: len(self._connections.open()) >= count)
        return self.connections(open_only=True)

    async def wait_requests(
        self, count: int = 1, *, conn_id: int | None = None, kind: str | None = None
    ) -> tuple[RequestRecord, ...]:
        """Wait until ``count`` requests (of ``kind``, on ``conn_id``) were received in total."""

        def matching() -> tuple[RequestRecord, ...]:
            records = self.requests(conn_id) if conn_id is not None else self.requests()
            return tuple(r for r in records if kind is None or r.kind == kind)

        await self.wait_for(lambda: len(matching()) >= count)
        return matching()

    async def wait_closed(self, conn_id: int) -> ConnectionInfo:
        """Wait until connection ``conn_id`` has closed."""
        session = self._connections.get(conn_id)
        await session.finished.wait()
        return session.info()

    async def wait_refusals(self, count: int = 1) -> tuple[Refusal, ...]:
        """Wait until ``count`` upgrades were refused in total."""
        await self.wait_for(lambda: self._server.refused >= count)
        return self.refusals()

    # -- controls: market and private data ------------------------------------------------------

    def set_rate(self, code: str, per_second: float) -> None:
        """Trades per second of ``code`` from now on (0 silences the pair)."""
        self._source.set_rate(code, per_second)
        self.record("fault", None, f"rate {code} {per_second:g}/s")

    def _emit(self, message: Mapping[str, object], expected: str, access_key: str | None) -> int:
        if message.get("type") != expected:
            raise ValueError(
                f"expected a {expected} message (build one with make_{expected[2:].lower()}_"
                f"... in engine.testing), got type {message.get('type')!r}"
            )
        key = access_key or self.access_key
        body = dict(message)
        delivered = 0
        for session in self._connections.open():
            if session.auth is not None and session.auth.access_key == key and session.wants(body):
                code = body.get("code")
                frame = self._feed.encode(body, session.format)
                session.deliver_data(frame, expected, code if isinstance(code, str) else "")
                delivered += 1
        self.record("emit", None, f"{expected} for {key} to {delivered} connection(s)")
        return delivered

    def emit_my_order(self, message: Mapping[str, object], *, access_key: str | None = None) -> int:
        """Send a ``myOrder`` event (see ``make_my_order``) to every connection of ``access_key``
        subscribed to it (codes matching); return how many received it."""
        return self._emit(message, "myOrder", access_key)

    def emit_my_asset(self, message: Mapping[str, object], *, access_key: str | None = None) -> int:
        """Send a ``myAsset`` event (see ``make_my_asset``) like :meth:`emit_my_order`."""
        return self._emit(message, "myAsset", access_key)

    # -- controls: faults -------------------------------------------------------------------------

    async def drop(self, conn_id: int | None = None, *, how: DropHow = "abort") -> None:
        """Drop one connection (or all): ``abort`` closes TCP without a close frame (1006 at the
        client), ``reset`` sends a TCP RST, ``close1000``/``close1001`` do a close handshake.
        Returns when the connections are closed."""
        if conn_id is None:
            await self._drop(self._connections.open(), how)
        else:
            await self._drop([self._connections.get_open(conn_id)], how)

    async def _drop(self, sessions: Sequence[Session], how: DropHow) -> None:
        sessions = [session for session in sessions if session.closed_at is None]
        for session in sessions:
            self.record("fault", session.conn_id, f"drop ({how})")
        async with trio.open_nursery() as nursery:
            for session in sessions:
                nursery.start_soon(self._drop_one, session, how)

    async def _drop_one(self, session: Session, how: DropHow) -> None:
        if how == "abort":
            await session.abort("dropped (abort)")
        elif how == "reset":
            await session.abort("dropped (reset)", reset=True)
        elif how == "close1000":
            await session.close(1000)
        else:
            await session.close(1001, "going away")
        with trio.move_on_after(self._config.close_timeout):
            await session.finished.wait()

    async def restart(
        self,
        *,
        downtime: float = 1.0,
        how: DropHow = "abort",
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Stop listening (connects are refused), drop every connection, wait ``downtime``
        seconds, listen again on the same port. Returns once the server is back; with
        ``nursery.start`` it is started once the server is down and the connections dropped."""
        async with self._restart_lock:  # a restart during a restart waits for the first
            self.record("server_down", None, f"restart, down for {downtime:g} s")
            await self._server.stop_listening()
            await self._drop(self._connections.open(), how)
            task_status.started()
            await trio.sleep(downtime)
            await self._server.listen(self._nursery)
            self.record("server_up", None, f"listening on {self.config.host}:{self.port}")

    def stall(self, conn_id: int, *, duration: float | None = None) -> None:
        """Keep the TCP connection open but send nothing and answer no pings (and process no
        requests), for ``duration`` seconds or until :meth:`unstall`."""
        session = self._connections.get_open(conn_id)
        session.stall()
        self.record("fault", conn_id, f"stall for {duration if duration is not None else 'ever'}")
        if duration is not None:
            self._nursery.start_soon(self._unstall_later, session, duration)

    async def _unstall_later(self, session: Session, duration: float) -> None:
        await trio.sleep(duration)
        if session.closed_at is None and session.stream.stalled:
            self.unstall(session.conn_id)

    def unstall(self, conn_id: int) -> None:
        """Resume a stalled connection: what it received is processed, what was queued is sent."""
        self._connections.get_open(conn_id).unstall()
        self.record("fault", conn_id, "unstall")

    def inject_error(
        self,
        conn_id: int,
        name: str = "INVALID_PARAM",
        message: str | None = None,
        *,
        close: bool = True,
    ) -> None:
        """Send ``{"error":{"name":..,"message":..}}``; with ``close`` a close 1000 follows after
        ``error_close_delay``, as after every real error."""
        self.record("fault", conn_id, f"inject error {name}")
        self._connections.get_open(conn_id).send_error(name, message, close=close)

    def inject_malformed(self, conn_id: int, kind: MalformedKind = "truncated_json") -> None:
        """Send a frame that cannot be decoded: ``truncated_json``, ``invalid_utf8``,
        ``unexpected_json`` (valid JSON, unknown shape) or ``protocol`` (a reserved opcode)."""
        self._connections.get_open(conn_id).send_malformed(kind)

    def set_latency(self, seconds: float, conn_id: int | None = None) -> None:
        """Delay every frame sent (to one connection, or to all, including future ones)."""
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds}")
        self.record("fault", conn_id, f"latency {seconds:g} s")
        if conn_id is None:
            self._latency = seconds
            for session in self._connections.open():
                session.refresh_latency()
        else:
            session = self._connections.get_open(conn_id)
            session.latency = seconds
            session.refresh_latency()

    def reject_connects(
        self, status: Literal[429, 418] = 429, *, count: int = 1, block: float | None = None
    ) -> None:
        """Refuse the next ``count`` WebSocket upgrades with HTTP ``status`` (and a Retry-After),
        or, with ``block``, every upgrade for ``block`` seconds."""
        if status not in (429, 418):
            raise ValueError(f"status must be 429 or 418, got {status}")
        self.record("fault", None, f"reject connects {status} count={count} block={block}")
        self._server.reject_connects(status, count, block)

    @property
    def drift(self) -> Drift:
        """The departures from the documented wire in force (see :meth:`set_drift`)."""
        return self._drift

    def set_drift(self, drift: Drift) -> None:
        """Depart from the documented wire as ``drift`` says, for every frame rendered from now
        on (frames already queued keep their shape); ``Drift()`` restores the documented wire."""
        if not isinstance(drift, Drift):
            raise TypeError(f"set_drift takes a Drift, got {type(drift).__name__}")
        self.record("fault", None, f"drift {drift!r}" if drift.active else "drift off")
        self._drift = drift
        self._feed.set_drift(drift)

    def fail_rest(self, status: int | None = 500, *, group: str | None = None) -> None:
        """Answer every REST request (of ``group``: ``trade``, ``candle``, ``market``...; None:
        all) with ``status`` from now on; ``status=None`` ends it."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"fail_rest takes an HTTP error status (400-599), got {status!r}")
        what = "ended" if status is None else f"{status} for {group or 'every group'}"
        self.record("fault", None, f"REST failure {what}")
        self._server.rest_failure = None if status is None else (status, group)

    def set_limits(self, enforce: bool) -> None:
        """Enforce Upbit's rate limits (the default) or relax them."""
        self.record("fault", None, f"limits {'enforced' if enforce else 'relaxed'}")
        self._limits_enforced = enforce

    # -- fault plans ----------------------------------------------------------------------------

    async def apply(self, action: FaultAction, *, seed: int = 0) -> None:
        """Apply one fault action now (``random`` targets drawn with ``seed``)."""
        await self._planner.prepare(action, random.Random(seed))()

    async def run_plan(self, plan: FaultPlan) -> None:
        """Apply each step of ``plan`` at its offset from now; return when all are done."""
        await self._planner.run(plan)


def _default_catalog(config: EmulatorConfig) -> tuple[Listing, ...]:
    listings = default_catalog(config.seed)
    if config.markets is None:
        return listings
    by_market = {listing.market: listing for listing in listings}
    unknown = [code for code in config.markets if code not in by_market]
    if unknown:
        raise ValueError(
            f"markets names pairs the default catalog does not list: {unknown}; "
            "pass catalog=... to serve pairs of your own"
        )
    return tuple(by_market[code] for code in dict.fromkeys(config.markets))


@contextlib.asynccontextmanager
async def open_emulator(
    config: EmulatorConfig | None = None,
    *,
    catalog: Sequence[Listing] | None = None,
    simulator: MarketSource[Any] | None = None,
) -> AsyncIterator[Emulator]:
    """Run an Upbit emulator on a free port of 127.0.0.1 for the duration of the block.

    ``config`` sets every behaviour (defaults: like Upbit, limits enforced). ``catalog`` replaces
    the default ~860 pairs; ``simulator`` replaces the seeded ``MarketSimulator`` (for example a
    ``ReplayMarket`` for benchmarks; its catalog is used unless ``catalog`` is given). Errors
    inside the block propagate as themselves, not wrapped in a group.
    """
    config = config or EmulatorConfig()
    if catalog is None:
        found = getattr(simulator, "catalog", None)
        catalog = found if isinstance(found, tuple) else _default_catalog(config)
    start: dict[str, int] = {}
    if config.market_start_ms is not None:
        start["start_ms"] = config.market_start_ms
    source: MarketSource[Any] = simulator or MarketSimulator(
        catalog, seed=config.seed, rate_scale=config.rate_scale, rates=config.rates, **start
    )
    try:
        async with trio.open_nursery() as nursery:
            emulator = Emulator(config, source, catalog, nursery)
            await emulator._start()
            try:
                yield emulator
            finally:
                emulator._server.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_single_leaf(group)
