"""Configuration of the Upbit emulator.

Defaults reproduce Upbit as documented and observed (docs/UPBIT.md). Every behaviour the
sources leave open is a :class:`Quirks` field, so a test can pin the variant it depends on, and
every rate limit is a :class:`Limits` field (enforced by default, as on Upbit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import attrs

from engine.testing.drift import Drift

__all__ = (
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "EmulatorConfig",
    "Limits",
    "Quirks",
    "TradeRetention",
)

#: The API key pair every emulator accepts unless ``EmulatorConfig.access_keys`` says otherwise.
DEFAULT_ACCESS_KEY = "emulator-access-key-0000000000000000000000"
#: Long enough for HS512 without PyJWT's short-key warning.
DEFAULT_SECRET_KEY = "emulator-secret-key-" + "0123456789abcdef" * 4

MessageReaction = Literal["error_close", "error", "close", "ignore"]


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _optional_non_negative(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0 or None, got {value!r}")


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 or None (disabled), got {value!r}")


@attrs.frozen
class Limits:
    """Upbit's rate limits (docs/UPBIT.md, Rate limits) and how the emulator reacts to excess."""

    #: Enforce the limits at all. ``Emulator.set_limits`` toggles this at run time.
    enforce: bool = True
    #: ``websocket-connect``: upgrades per second per IP (per access key when authenticated).
    connects_per_second: int = attrs.field(default=5, validator=_positive)
    #: Requests carrying an ``Origin`` header (browsers): at most this many per ``origin_window``.
    origin_connects: int = attrs.field(default=1, validator=_positive)
    origin_window: float = attrs.field(default=10.0, validator=_positive)
    #: ``websocket-message``: per connection, both windows apply.
    messages_per_second: int = attrs.field(default=5, validator=_positive)
    messages_per_minute: int = attrs.field(default=100, validator=_positive)
    #: What an excess message gets. ``error_close``: a ``Too Many Requests`` error frame, then
    #: close 1000 (like every other error); ``error``: the frame only, the message is dropped;
    #: ``close``: close 1000 without a frame; ``ignore``: counted, then processed normally.
    message_reaction: MessageReaction = "error_close"
    #: Whether the text keepalive ``PING`` counts toward the message limit (unconfirmed on Upbit).
    count_text_ping: bool = False
    #: This many violations within ``violation_window`` turn into a block (HTTP 418 for connects,
    #: ``I'm a teapot`` error frames for messages). Each repeated block doubles, up to
    #: ``block_max``.
    block_after: int = attrs.field(default=3, validator=_positive)
    violation_window: float = attrs.field(default=60.0, validator=_positive)
    block_duration: float = attrs.field(default=30.0, validator=_positive)
    block_max: float = attrs.field(default=600.0, validator=_positive)
    #: Quotation REST: requests per second per IP, counted per group (``market``, ``candle``,
    #: ``trade``, ``ticker``, ``orderbook``), as documented.
    rest_per_second: int = attrs.field(default=10, validator=_positive)
    #: Continued REST excess: this many 429s to one IP within ``rest_violation_window`` block the
    #: IP (HTTP 418 with a block time, every group) for ``rest_block_duration``, doubling with
    #: each block up to ``rest_block_max``. Upbit documents the 418 but not these numbers
    #: (unconfirmed): the defaults are modest so that a test recovers in seconds.
    rest_block_after: int = attrs.field(default=10, validator=_positive)
    rest_violation_window: float = attrs.field(default=60.0, validator=_positive)
    rest_block_duration: float = attrs.field(default=10.0, validator=_positive)
    rest_block_max: float = attrs.field(default=300.0, validator=_positive)


@attrs.frozen
class Quirks:
    """Behaviours docs/UPBIT.md marks unconfirmed: the default is the likeliest reading."""

    #: Accept ``isOnlySnapshot`` / ``isOnlyRealtime`` (the old English docs' spelling).
    camel_case_flags: bool = True
    #: Both ``is_only_snapshot`` and ``is_only_realtime`` true: ``snapshot`` (one snapshot, then
    #: nothing), ``realtime`` (no snapshot, then stream), ``nothing`` (accepted, no data) or
    #: ``error`` (``INVALID_PARAM`` and close).
    both_flags: Literal["snapshot", "realtime", "nothing", "error"] = "snapshot"
    #: An unknown ``format`` value: ``default`` (served as DEFAULT, as on Bithumb), ``keep`` (the
    #: connection's format is unchanged) or ``error`` (``INVALID_PARAM``).
    unknown_format: Literal["default", "keep", "error"] = "default"
    #: ``codes: []`` on a public type: ``error`` (``INVALID_PARAM``, as on Bithumb) or ``accept``
    #: (subscribes to nothing).
    empty_codes: Literal["error", "accept"] = "error"
    #: A request with a ticket but no data-type object and no method: ``error``
    #: (``WRONG_FORMAT``), ``clear`` (replaces the set with nothing) or ``ignore``.
    no_data_types: Literal["error", "clear", "ignore"] = "error"
    #: A subscription request without a format object resets the connection to DEFAULT (True), or
    #: keeps the current format (False). LIST_SUBSCRIPTIONS without a format never changes it.
    format_resets: bool = True
    #: The LIST_SUBSCRIPTIONS reply's ``ticket``: the LIST request's own (``request``) or the
    #: ticket of the subscription request in force (``subscription``).
    list_ticket: Literal["request", "subscription"] = "request"
    #: LIST_SUBSCRIPTIONS reports orderbook codes with their ``.N`` suffix, as requested.
    list_keeps_suffix: bool = True
    #: The ticket object may sit anywhere in the array (the old LIST example put it second).
    ticket_anywhere: bool = True
    #: After a replacing request, up to this many frames of the old set still arrive (seeded).
    stale_frames: int = attrs.field(default=0, validator=_non_negative)
    #: Frame type of ``{"status":"UP"}``: binary like every other server frame, or text.
    status_frame: Literal["binary", "text"] = "binary"
    #: REST ``count`` above the documented maximum (500 trades, 200 candles): ``error`` (400)
    #: or ``clamp`` (served as the maximum).
    rest_count_over_max: Literal["error", "clamp"] = "error"
    #: ``GET /v1/trades/ticks`` with a ``cursor``: False keeps the answer inside the UTC day
    #: that ``days_ago`` selects (step ``days_ago`` to go further back); True lets the cursor
    #: page back across midnight through everything remembered.
    trade_cursor_crosses_days: bool = False


@attrs.frozen
class TradeRetention:
    """How much of the market's past the emulator remembers for REST history.

    Every trade is remembered (for ``/v1/trades/ticks`` and the candle endpoints, and
    ``Emulator.trades_made``) until one of the bounds forgets it, oldest first. The defaults keep
    15 minutes, enough for tests of outages of minutes, in at most ~30 MB (about 300 bytes a
    trade); the whole default catalog makes about 90 trades per second.
    """

    #: Market seconds kept behind the market clock (None: no time bound).
    seconds: float | None = attrs.field(default=900.0, validator=_optional_positive)
    #: Trades kept per code at most (None: no bound per code).
    per_code: int | None = attrs.field(default=20_000, validator=_optional_positive)
    #: Trades kept across all codes at most (0: remember nothing, REST history answers ``[]``).
    total: int = attrs.field(default=100_000, validator=_non_negative)


def _keys(value: Mapping[str, str]) -> Mapping[str, str]:
    keys = dict(value)
    for access, secret in keys.items():
        if not access or not secret:
            raise ValueError("access_keys needs non-empty access and secret keys")
    return MappingProxyType(keys)


def _markets(value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError("markets must be a sequence of codes such as ('KRW-BTC',), not a string")
    return tuple(value)


def _rates(value: Mapping[str, float] | None) -> Mapping[str, float]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class EmulatorConfig:
    """Everything ``open_emulator`` can be told. All fields have Upbit-like defaults.

    Memory stays bounded however many connections come and go: the emulator remembers the
    newest ``closed_history`` closed connections (their ``ConnectionInfo``, requests, recent
    frames and ``first_sent`` records; open connections are always kept) and forgets older ones,
    and ``history()`` / ``refusals()`` keep the newest ``history_limit`` entries.
    """

    #: Interface to bind. The default serves loopback only.
    host: str = "127.0.0.1"
    #: TCP port; 0 picks a free one (read it back from ``Emulator.port``).
    port: int = attrs.field(default=0, validator=_non_negative)
    #: Seeds the market simulator, the catalog and every random choice of the emulator.
    seed: int = 0
    #: Serve only these pairs of the default catalog (None: all ~860). A handful of pairs starts
    #: much faster (the simulator builds every pair's book up front), which suits unit tests.
    markets: tuple[str, ...] | None = attrs.field(default=None, converter=_markets)
    #: Multiplies every pair's trade activity (0.1 = a tenth of the default traffic).
    rate_scale: float = attrs.field(default=1.0, validator=_non_negative)
    #: Per-pair trades per second, overriding the catalog's activity (0 silences a pair).
    rates: Mapping[str, float] = attrs.field(factory=dict, converter=_rates)
    #: Accepted API keys: access key -> secret key.
    access_keys: Mapping[str, str] = attrs.field(
        factory=lambda: {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}, converter=_keys
    )
    #: JWT algorithms accepted on ``/websocket/v1/private``.
    jwt_algorithms: tuple[str, ...] = ("HS512", "HS256")
    #: Refuse a token whose ``nonce`` this emulator has already seen.
    reject_reused_nonce: bool = False
    #: A bad or missing token on ``/private``: ``error_frame`` (``INVALID_AUTH`` in answer to the
    #: first request, then close 1000) or ``http_401`` (the upgrade is refused).
    auth_failure: Literal["error_frame", "http_401"] = "error_frame"
    #: Seconds without any frame in either direction before the server drops the TCP connection
    #: without a close frame (1006 at the client). 60 matches the wire, 120 the docs.
    idle_timeout: float | None = attrs.field(default=60.0, validator=_optional_positive)
    #: Whether a client protocol PING counts as activity for the idle timer (unconfirmed).
    ping_resets_idle: bool = True
    #: Period of ``{"status":"UP"}`` once the client has sent a text ``PING``.
    status_interval: float = attrs.field(default=10.0, validator=_positive)
    #: Delay of the first ``UP`` after the first ``PING``; None draws it (seeded) from
    #: ``[0, status_interval)``, since the server's cycle has its own phase.
    status_first_delay: float | None = attrs.field(default=None, validator=_optional_non_negative)
    #: Delay between an error frame and the close 1000 that follows it (observed 150-180 ms).
    error_close_delay: float = attrs.field(default=0.15, validator=_non_negative)
    #: How long a server-initiated close waits for the client's close frame before dropping TCP.
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: Largest request message accepted (bigger ones get close 1009 from trio-websocket).
    max_message_size: int = attrs.field(default=1 << 20, validator=_positive)
    #: Rate limits and the reaction to excess.
    limits: Limits = Limits()
    #: Variants of behaviours Upbit leaves open.
    quirks: Quirks = Quirks()
    #: Period of the market clock: the simulator is advanced and events fanned out this often.
    feed_interval: float = attrs.field(default=0.01, validator=_positive)
    #: Bytes queued for one client before it counts as too slow to keep up.
    send_buffer_limit: int = attrs.field(default=8 << 20, validator=_positive)
    #: A client that falls ``send_buffer_limit`` behind: ``abort`` drops its TCP connection (1006),
    #: ``drop_frames`` discards new frames for it and counts them.
    slow_client: Literal["abort", "drop_frames"] = "abort"
    #: Frames kept per connection for introspection (``ConnectionInfo.recent_frames``).
    recent_frames: int = attrs.field(default=100, validator=_non_negative)
    #: Closed connections remembered for introspection (``connections()``, ``connection(id)``,
    #: ``requests()``, ``first_sent()``), newest first kept; older closed ones are forgotten with
    #: everything kept for them (``connection(id)`` then raises ``KeyError`` saying so). 0 forgets
    #: a connection as soon as it closes. Open connections are always kept.
    closed_history: int = attrs.field(default=256, validator=_non_negative)
    #: Entries kept by ``history()`` and ``refusals()``; older ones fall off.
    history_limit: int = attrs.field(default=100_000, validator=_non_negative)
    #: Departures from the documented wire from the start (``Emulator.set_drift`` changes it).
    drift: Drift = attrs.field(factory=Drift)
    #: The trades remembered for REST history (``/v1/trades/ticks``, ``/v1/candles/...``).
    trade_retention: TradeRetention = TradeRetention()
    #: Epoch ms (UTC) of the market clock's start; every timestamp and date the market makes
    #: follows from it (None: the simulator's default, 2026-09-21T14:13:20Z). Set it to test
    #: around a UTC midnight, for example. Ignored when ``open_emulator`` is given a simulator.
    market_start_ms: int | None = attrs.field(default=None, validator=_optional_non_negative)
    #: Serve the fault controls under ``/emulator/`` on the REST port (``POST /emulator/drop``,
    #: ``GET /emulator/connections``...; see ``emulator.control``), so faults can be injected from
    #: outside Python. Off by default: a test drives the ``Emulator`` methods directly.
    fault_controls: bool = False
