"""Engine configuration: one frozen value holding every knob, each with a documented default.

Defaults follow Upbit's documented limits and the behaviour observed on the wire (docs/UPBIT.md,
"Rate limits" and "Keepalive") and the default pool sizes (one snapshot ticket, two realtime
tickets). Every field is validated when the value is built, and fields that constrain each other are
checked together, so a bad configuration fails at construction with a message naming the field and
the fix, not later on a socket.
"""

from __future__ import annotations

import difflib
import enum
import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from actors.intensity import BackoffPolicy, Jitter
from engine.debug_address import parse_debug_address
from engine.wire.keys import CANDLE_TYPES

__all__ = (
    "FORMATS",
    "JWT_ALGORITHMS",
    "KNOWN_TRANSPORTS",
    "UPBIT_CONNECTS_PER_SECOND",
    "UPBIT_IDLE_TIMEOUT",
    "UPBIT_MESSAGES_PER_MINUTE",
    "UPBIT_MESSAGES_PER_SECOND",
    "UPBIT_STATUS_INTERVAL",
    "EngineConfig",
    "OverflowPolicies",
    "OverflowPolicy",
)

#: ``websocket-connect`` group: connection requests per second per IP (or per pocket with a JWT).
UPBIT_CONNECTS_PER_SECOND = 5
#: ``websocket-message`` group, per connection.
UPBIT_MESSAGES_PER_SECOND = 5
#: ``websocket-message`` group, per connection, in addition to the per-second limit.
UPBIT_MESSAGES_PER_MINUTE = 100
#: Seconds of silence after which Upbit drops a socket, as observed (the docs say about 120 s).
UPBIT_IDLE_TIMEOUT = 60.0
#: Seconds between ``{"status":"UP"}`` frames once a text ``PING`` was sent.
UPBIT_STATUS_INTERVAL = 10.0

#: Response formats the engine decodes (the ``*_LIST`` variants are not supported).
FORMATS: tuple[str, ...] = ("DEFAULT", "SIMPLE")
#: JWT signing algorithms for the private endpoint; Upbit recommends HS512.
JWT_ALGORITHMS: tuple[str, ...] = ("HS512", "HS256")
#: Transport names ``engine.transport`` knows how to open.
KNOWN_TRANSPORTS: tuple[str, ...] = ("trio-websocket", "websockets")


class OverflowPolicy(enum.Enum):
    """What a subscriber's full buffer does to the next message."""

    #: Lossless: the subscription fails (``SubscriptionFailedError``) rather than skip a message.
    #: For streams where every message matters (trades, own orders and assets).
    FAIL = "fail"
    #: Keep only the latest undelivered message per code, replacing older ones (counted as
    #: conflated). For state streams where the newest value supersedes the rest.
    CONFLATE = "conflate"


def _policy(value: OverflowPolicy | str) -> OverflowPolicy:
    if isinstance(value, OverflowPolicy):
        return value
    try:
        return OverflowPolicy(value)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in OverflowPolicy)
        raise ValueError(f"overflow policy must be one of {choices}, got {value!r}") from None


@attrs.frozen(kw_only=True)
class OverflowPolicies:
    """The overflow policy of each data type (every candle unit shares one)."""

    ticker: OverflowPolicy = attrs.field(default=OverflowPolicy.CONFLATE, converter=_policy)
    trade: OverflowPolicy = attrs.field(default=OverflowPolicy.FAIL, converter=_policy)
    orderbook: OverflowPolicy = attrs.field(default=OverflowPolicy.CONFLATE, converter=_policy)
    candle: OverflowPolicy = attrs.field(default=OverflowPolicy.CONFLATE, converter=_policy)
    my_order: OverflowPolicy = attrs.field(default=OverflowPolicy.FAIL, converter=_policy)
    my_asset: OverflowPolicy = attrs.field(default=OverflowPolicy.FAIL, converter=_policy)

    @classmethod
    def from_mapping(cls, table: Mapping[str, OverflowPolicy | str]) -> OverflowPolicies:
        """Build from ``{data_type: policy}`` (``"candle"`` or any ``"candle.<unit>"``,
        ``"myOrder"``, ...); types left out keep their defaults."""
        fields: dict[str, OverflowPolicy | str] = {}
        for data_type, policy in table.items():
            name = _POLICY_FIELDS.get(data_type)
            if name is None:
                known = ", ".join(repr(key) for key in _POLICY_FIELDS if "." not in key)
                raise ValueError(
                    f"EngineConfig.overflow: unknown data type {data_type!r}; use {known} "
                    "(or a 'candle.<unit>' type)"
                )
            fields[name] = policy
        return cls(**fields)

    def for_type(self, data_type: str) -> OverflowPolicy:
        """The policy for a message ``type`` such as ``"trade"`` or ``"candle.1m"``."""
        name = _POLICY_FIELDS.get(data_type)
        if name is None:
            raise KeyError(f"no overflow policy for data type {data_type!r}")
        policy: OverflowPolicy = getattr(self, name)
        return policy


_POLICY_FIELDS: Mapping[str, str] = {
    "ticker": "ticker",
    "trade": "trade",
    "orderbook": "orderbook",
    "candle": "candle",
    **{candle: "candle" for candle in CANDLE_TYPES},
    "myOrder": "my_order",
    "myAsset": "my_asset",
}


def _overflow(value: OverflowPolicies | Mapping[str, OverflowPolicy | str]) -> OverflowPolicies:
    if isinstance(value, OverflowPolicies):
        return value
    if isinstance(value, Mapping):
        return OverflowPolicies.from_mapping(value)
    raise ValueError(
        "EngineConfig.overflow must be an OverflowPolicies or a mapping such as "
        f"{{'ticker': 'conflate'}}, got {type(value).__name__}"
    )


# Validators ---------------------------------------------------------------------------------

_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _fail(attribute: attrs.Attribute[Any], wanted: str, value: object) -> None:
    raise ValueError(f"EngineConfig.{attribute.name} must be {wanted}, got {value!r}")


def _number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` if it is not a (non-bool) finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _seconds(*, zero_ok: bool = False) -> _Validator:
    wanted = "a number of seconds >= 0" if zero_ok else "a positive number of seconds"

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        number = _number(value)
        if number is None or number < 0 or (number == 0 and not zero_ok):
            _fail(attribute, wanted, value)

    return check


def _optional_seconds(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    number = _number(value)
    if number is None or number <= 0:
        _fail(attribute, "a positive number of seconds, or None to disable it", value)


def _count(minimum: int = 1) -> _Validator:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            _fail(attribute, f"an int >= {minimum}", value)

    return check


def _factor(low: float, high: float) -> _Validator:
    wanted = f"a number in [{low:g}, {high:g}]"

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        number = _number(value)
        if number is None or not low <= number <= high:
            _fail(attribute, wanted, value)

    return check


def _url(*schemes: str) -> _Validator:
    wanted = "a URL starting with " + " or ".join(f"'{scheme}://'" for scheme in schemes)

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not any(
            value.startswith(f"{scheme}://") and len(value) > len(scheme) + 3 for scheme in schemes
        ):
            _fail(attribute, wanted, value)

    return check


def _choice(choices: tuple[str, ...]) -> _Validator:
    wanted = "one of " + ", ".join(repr(choice) for choice in choices)

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in choices:
            _fail(attribute, wanted, value)

    return check


def _optional_port(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        _fail(attribute, "a TCP port (0-65535; 0 for any free one) or None", value)


def _host(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        _fail(attribute, "a host name or IP address such as '127.0.0.1'", value)


def _debug_address(value: object) -> str | None:
    """``EngineConfig.debug`` in its canonical form (``True`` becomes the default socket)."""
    if value is None or value is False:
        return None
    if not isinstance(value, str | bool):
        value = repr(value)  # refused below with the value in the message
    try:
        return str(parse_debug_address(value))
    except ValueError as exc:
        raise ValueError(
            f"EngineConfig.debug must be 'unix:PATH', '127.0.0.1:PORT', True or None: {exc}"
        ) from None


def _bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        _fail(attribute, "True or False", value)


def _key(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        # Never echo a secret back, even a malformed one.
        raise ValueError(f"EngineConfig.{attribute.name} must be a non-empty str or None")


def _seed(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        _fail(attribute, "an int or None", value)


def _mask(secret: str | None) -> str:
    return "None" if secret is None else "'***'"


# The configuration -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class EngineConfig:
    """Every setting of the engine. Build with keywords, copy with :meth:`evolve`.

    ``repr`` never shows ``secret_key``.
    """

    # Endpoints -------------------------------------------------------------------------------
    #: Public WebSocket (ticker, trade, orderbook, candles).
    ws_url: str = attrs.field(
        default="wss://api.upbit.com/websocket/v1", validator=_url("ws", "wss")
    )
    #: Private WebSocket (myOrder, myAsset), authenticated with a JWT.
    private_ws_url: str = attrs.field(
        default="wss://api.upbit.com/websocket/v1/private", validator=_url("ws", "wss")
    )
    #: REST root for the market catalog (``/v1/market/all`` is appended).
    rest_url: str = attrs.field(default="https://api.upbit.com", validator=_url("http", "https"))

    # Authentication (private streams only) ---------------------------------------------------
    #: Upbit API access key; needed only for myOrder/myAsset. Give both keys or neither.
    access_key: str | None = attrs.field(default=None, validator=_key)
    #: Upbit API secret key (used raw, not Base64-decoded). Hidden from ``repr``.
    secret_key: str | None = attrs.field(default=None, validator=_key, repr=_mask)
    #: JWT signing algorithm; Upbit's docs recommend HS512.
    jwt_algorithm: str = attrs.field(default="HS512", validator=_choice(JWT_ALGORITHMS))

    # Ticket pools (by default one short-lived snapshot ticket, two long-lived realtime ones) -
    #: Connections for one-shot snapshot requests.
    snapshot_pool_size: int = attrs.field(default=1, validator=_count())
    #: Connections for realtime streams.
    realtime_pool_size: int = attrs.field(default=2, validator=_count())
    #: Response format requested on every connection: ``"DEFAULT"`` (full key names, Upbit's
    #: default, readable in logs) or ``"SIMPLE"`` (abbreviated keys, fewer bytes on the wire).
    format: str = attrs.field(default="DEFAULT", validator=_choice(FORMATS))

    # Upbit rate limits (docs/UPBIT.md, Rate limits) ------------------------------------------
    #: WebSocket connection attempts per second (Upbit: 5 per IP).
    connects_per_second: int = attrs.field(default=UPBIT_CONNECTS_PER_SECOND, validator=_count())
    #: Messages sent per second on one connection (Upbit: 5).
    messages_per_second: int = attrs.field(default=UPBIT_MESSAGES_PER_SECOND, validator=_count())
    #: Messages sent per minute on one connection (Upbit: 100).
    messages_per_minute: int = attrs.field(default=UPBIT_MESSAGES_PER_MINUTE, validator=_count())
    #: Seconds a ticket waits after a change before sending, so a burst of changes goes out as
    #: one message (changes arriving while the rate limiter holds a send are merged too).
    coalesce_window: float = attrs.field(default=0.01, validator=_seconds(zero_ok=True))

    # Connections and keepalive (docs/UPBIT.md, Keepalive) ------------------------------------
    #: Seconds allowed for the TCP + TLS + WebSocket handshake.
    connect_timeout: float = attrs.field(default=10.0, validator=_seconds())
    #: Seconds between protocol pings; well inside Upbit's ~60 s idle timeout.
    ping_interval: float = attrs.field(default=15.0, validator=_seconds())
    #: Seconds to wait for a pong before the connection counts as dead.
    ping_timeout: float = attrs.field(default=10.0, validator=_seconds())
    #: Also send the text ``PING`` after connecting, which starts Upbit's 10 s ``UP`` status
    #: frames: traffic that keeps the socket alive and proves it is.
    text_ping: bool = attrs.field(default=True, validator=_bool)
    #: With ``text_ping``: seconds of total silence (no data, no ``UP`` status frame, which
    #: Upbit sends every 10 s) after which a connection counts as stalled and is reconnected;
    #: ``None`` disables the check. Bounds detection on a quiet connection.
    stall_timeout: float | None = attrs.field(default=12.5, validator=_optional_seconds)
    #: Probe a busy connection that went silent for ``stall_probe_intervals`` of its usual
    #: inter-frame intervals, and at least ``stall_probe_floor`` seconds, with a protocol ping;
    #: no pong within ``stall_probe_timeout`` is a stall (engine.core.stall).
    stall_probe: bool = attrs.field(default=True, validator=_bool)
    stall_probe_floor: float = attrs.field(default=2.0, validator=_seconds())
    stall_probe_intervals: float = attrs.field(default=4.0, validator=_factor(1.0, 1000.0))
    stall_probe_timeout: float = attrs.field(default=2.0, validator=_seconds())
    #: Upbit's idle timeout as observed (60 s; the docs say about 120 s). Not a setting of
    #: Upbit's, but what the keepalive settings are checked against.
    server_idle_timeout: float = attrs.field(default=UPBIT_IDLE_TIMEOUT, validator=_seconds())

    # Reconnect backoff -----------------------------------------------------------------------
    #: First delay before reconnecting, in seconds.
    backoff_initial: float = attrs.field(default=0.5, validator=_seconds())
    #: Longest delay between reconnect attempts, in seconds.
    backoff_max: float = attrs.field(default=30.0, validator=_seconds())
    #: Growth of the delay per consecutive failure.
    backoff_multiplier: float = attrs.field(default=2.0, validator=_factor(1.0, 100.0))
    #: Jitter of the delays, so tickets restarting together do not reconnect in lockstep: every
    #: delay (realtime and private tickets, snapshot tickets, restarts in the tree) is drawn from
    #: ``(1 - backoff_jitter)`` to all of its nominal value; 0 turns it off.
    backoff_jitter: float = attrs.field(default=0.2, validator=_factor(0.0, 1.0))
    #: Seed of the jitter RNG; ``None`` seeds from the OS. Set it for reproducible runs.
    seed: int | None = attrs.field(default=None, validator=_seed)

    # Restart intensity (supervisor) ----------------------------------------------------------
    #: Restarts of one supervisor allowed within ``restart_window`` before it gives up and
    #: escalates (OTP's default is 1 in 5 s; network flaps need more room).
    max_restarts: int = attrs.field(default=10, validator=_count(0))
    #: The sliding window, in seconds, for ``max_restarts``.
    restart_window: float = attrs.field(default=60.0, validator=_seconds())
    #: Seconds each actor is given to stop cleanly at shutdown before it is cancelled.
    shutdown_grace: float = attrs.field(default=5.0, validator=_seconds(zero_ok=True))

    # Snapshots -------------------------------------------------------------------------------
    #: Seconds a snapshot request waits for one SNAPSHOT per requested (type, code).
    snapshot_timeout: float = attrs.field(default=5.0, validator=_seconds())
    #: Seconds an idle snapshot ticket stays connected for reuse before it closes.
    snapshot_linger: float = attrs.field(default=10.0, validator=_seconds(zero_ok=True))

    # Prometheus over HTTP ---------------------------------------------------------------------
    #: Serve ``metrics()`` for Prometheus on this TCP port (0: any free port; see
    #: ``Engine.metrics_address``), through the standard client library; ``None``: not served.
    metrics_port: int | None = attrs.field(default=None, validator=_optional_port)
    #: The address the metrics endpoint listens on: loopback unless you open it on purpose
    #: (``"0.0.0.0"`` for a Prometheus server on another host).
    metrics_host: str = attrs.field(default="127.0.0.1", validator=_host)

    # Debug channel ---------------------------------------------------------------------------
    #: Serve the read-only debug channel (tree, tickets, subscriptions, metrics, events) at
    #: ``"unix:PATH"`` (a socket of mode 0600) or ``"127.0.0.1:PORT"`` (0: a free port; see
    #: ``Engine.debug_address``); ``True``: a Unix socket in ``$XDG_RUNTIME_DIR`` or the temp
    #: directory. Loopback only. ``None``: not served.
    debug: str | None = attrs.field(default=None, converter=_debug_address)

    # Trade backfill --------------------------------------------------------------------------
    #: Fetch the trades a trade subscription missed in a gap from the REST API and deliver them
    #: before its live trades (``subscribe_realtime(..., backfill=)`` decides per subscription).
    backfill: bool = attrs.field(default=True, validator=_bool)
    #: Seconds a backfill may take to fetch (from its start: fetches take turns in the REST
    #: budget), and then to be read, before what is left is reported unfilled (live trades are
    #: held meanwhile).
    backfill_timeout: float = attrs.field(default=30.0, validator=_seconds())
    #: REST pages (500 trades each) one backfill fetches at most; beyond, the older part of the
    #: gap is reported unfilled (``page_limit``).
    backfill_max_pages: int = attrs.field(default=20, validator=_count())
    #: Backfills fetched at once (they share the quotation budget of 10 requests/s anyway).
    backfill_concurrency: int = attrs.field(default=4, validator=_count())

    # Market catalog --------------------------------------------------------------------------
    #: Check codes against the catalog before subscribing (Upbit ignores unlisted codes).
    validate_codes: bool = attrs.field(default=True, validator=_bool)
    #: Seconds before the catalog is fetched again (listings change a few times a week).
    catalog_ttl: float = attrs.field(default=300.0, validator=_seconds())
    #: Seconds allowed for each catalog HTTP request.
    catalog_timeout: float = attrs.field(default=10.0, validator=_seconds())
    #: Seconds before retrying after a failed refresh (the previous catalog is served meanwhile).
    catalog_retry_interval: float = attrs.field(default=30.0, validator=_seconds())
    #: Also fetch each KRW pair's supported orderbook levels, to check ``level`` per pair.
    catalog_instruments: bool = attrs.field(default=True, validator=_bool)

    # Router ----------------------------------------------------------------------------------
    #: Messages buffered per subscriber before its overflow policy applies.
    subscriber_buffer: int = attrs.field(default=1024, validator=_count())
    #: Overflow policy per data type: lossless-fail for trade/myOrder/myAsset, conflate-latest
    #: for ticker/orderbook/candles. A mapping such as ``{"ticker": "fail"}`` overrides some.
    overflow: OverflowPolicies = attrs.field(factory=OverflowPolicies, converter=_overflow)
    #: Seconds without messages or readers after which ``cleanup_inactive`` releases a
    #: realtime subscription.
    inactive_after: float = attrs.field(default=300.0, validator=_seconds())

    # Transport ---------------------------------------------------------------------------------
    #: WebSocket implementation used by tickets: ``"websockets"`` (the websockets package's
    #: sans-IO core on Trio streams; its receive loop measured many times faster, see
    #: docs/BENCHMARKS.md) or ``"trio-websocket"``. Both pass the same test suite.
    transport: str = attrs.field(default="websockets", validator=_choice(KNOWN_TRANSPORTS))

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        if not self.ping_timeout < self.ping_interval:
            problems.append(
                f"ping_timeout ({self.ping_timeout:g} s) must be shorter than ping_interval "
                f"({self.ping_interval:g} s), so one ping is judged before the next is sent"
            )
        if not self.ping_interval < self.server_idle_timeout:
            problems.append(
                f"ping_interval ({self.ping_interval:g} s) must be shorter than "
                f"server_idle_timeout ({self.server_idle_timeout:g} s), or Upbit drops idle sockets"
            )
        if self.stall_timeout is not None and not self.stall_timeout > UPBIT_STATUS_INTERVAL:
            problems.append(
                f"stall_timeout ({self.stall_timeout:g} s) must be longer than Upbit's status "
                f"interval ({UPBIT_STATUS_INTERVAL:g} s), or healthy quiet sockets look stalled"
            )
        if self.backoff_initial > self.backoff_max:
            problems.append(
                f"backoff_initial ({self.backoff_initial:g} s) must not exceed backoff_max "
                f"({self.backoff_max:g} s)"
            )
        if self.messages_per_second > self.messages_per_minute:
            problems.append(
                f"messages_per_second ({self.messages_per_second}) must not exceed "
                f"messages_per_minute ({self.messages_per_minute})"
            )
        if (self.access_key is None) != (self.secret_key is None):
            given, missing = (
                ("access_key", "secret_key")
                if self.secret_key is None
                else ("secret_key", "access_key")
            )
            problems.append(f"{given} is set but {missing} is not: give both keys or neither")
        if problems:
            raise ValueError("invalid EngineConfig: " + "; ".join(problems))

    @property
    def has_credentials(self) -> bool:
        """Whether API keys are set, so private streams (myOrder, myAsset) are possible."""
        return self.access_key is not None

    def backoff_policy(self) -> BackoffPolicy:
        """The one reconnect backoff every kind of ticket uses (``backoff_*`` fields)."""
        return BackoffPolicy(
            initial=self.backoff_initial,
            maximum=self.backoff_max,
            multiplier=self.backoff_multiplier,
            jitter=Jitter.FRACTION,
            fraction=self.backoff_jitter,
        )

    def evolve(self, **changes: Any) -> EngineConfig:
        """A copy with ``changes`` applied and validated again."""
        _check_names(changes)
        return attrs.evolve(self, **changes)

    @classmethod
    def from_options(cls, config: EngineConfig | None = None, /, **options: Any) -> EngineConfig:
        """Build from keyword options (as ``open_engine(**options)`` receives them).

        With ``config``, the options are applied on top of it. Unknown names raise
        ``TypeError`` with the closest valid name.
        """
        if config is not None and not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, got {type(config).__name__}")
        _check_names(options)
        if config is None:
            return cls(**options)
        return attrs.evolve(config, **options)


def _check_names(options: Mapping[str, object]) -> None:
    valid = [field.name for field in attrs.fields(EngineConfig)]
    unknown = [name for name in options if name not in valid]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    raise TypeError(f"unknown EngineConfig option {', '.join(hints)}")
