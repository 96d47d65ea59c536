"""EngineConfig: documented defaults, per-field and cross-field validation, copying, secrecy."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from engine.config import (
    FORMATS,
    UPBIT_CONNECTS_PER_SECOND,
    UPBIT_IDLE_TIMEOUT,
    UPBIT_MESSAGES_PER_MINUTE,
    UPBIT_MESSAGES_PER_SECOND,
    UPBIT_STATUS_INTERVAL,
    EngineConfig,
    OverflowPolicies,
    OverflowPolicy,
)
from engine.wire.keys import CANDLE_TYPES

SECRET = "s3cr3t-value-that-must-not-leak"


def test_defaults_match_the_brief_and_upbits_documented_limits() -> None:
    config = EngineConfig()
    # Endpoints (docs/UPBIT.md, Endpoints, authentication and compression).
    assert config.ws_url == "wss://api.upbit.com/websocket/v1"
    assert config.private_ws_url == "wss://api.upbit.com/websocket/v1/private"
    assert config.rest_url == "https://api.upbit.com"
    # The default pools: one snapshot ticket, two realtime tickets.
    assert config.snapshot_pool_size == 1
    assert config.realtime_pool_size == 2
    # Upbit's rate limits (docs/UPBIT.md, Rate limits).
    assert (UPBIT_CONNECTS_PER_SECOND, UPBIT_MESSAGES_PER_SECOND) == (5, 5)
    assert UPBIT_MESSAGES_PER_MINUTE == 100
    assert config.connects_per_second == 5
    assert config.messages_per_second == 5
    assert config.messages_per_minute == 100
    # Keepalive well inside the ~60 s observed idle timeout (docs/UPBIT.md, Keepalive).
    assert UPBIT_IDLE_TIMEOUT == 60.0
    assert config.ping_timeout < config.ping_interval < config.server_idle_timeout
    assert 10 <= config.ping_interval <= 20
    assert config.ping_timeout == 10
    assert config.text_ping is True
    assert config.stall_timeout is not None
    # A quiet connection's stall is found within 15 s: past one 10 s status interval.
    assert UPBIT_STATUS_INTERVAL < config.stall_timeout < 15
    assert config.stall_probe_floor == 2.0
    assert config.stall_probe_timeout == 2.0
    # Snapshots and catalog.
    assert config.snapshot_timeout == 5.0
    assert config.catalog_ttl == 300.0
    assert config.validate_codes is True
    assert config.format in FORMATS
    assert config.transport == "websockets"
    # No keys unless given.
    assert config.access_key is None
    assert config.secret_key is None
    assert not config.has_credentials
    # Backoff grows from a short first delay to a bounded maximum.
    assert 0 < config.backoff_initial < config.backoff_max
    assert config.backoff_multiplier > 1
    assert 0 <= config.backoff_jitter <= 1
    assert config.max_restarts >= 1


def test_default_overflow_policies() -> None:
    policies = EngineConfig().overflow
    for lossless in ("trade", "myOrder", "myAsset"):
        assert policies.for_type(lossless) is OverflowPolicy.FAIL
    for latest in ("ticker", "orderbook", *CANDLE_TYPES):
        assert policies.for_type(latest) is OverflowPolicy.CONFLATE
    with pytest.raises(KeyError, match="no overflow policy for data type 'quote'"):
        policies.for_type("quote")


def test_overflow_accepts_a_partial_mapping() -> None:
    config = EngineConfig(overflow={"ticker": "fail", "candle.1m": OverflowPolicy.FAIL})
    assert config.overflow.ticker is OverflowPolicy.FAIL
    assert config.overflow.for_type("candle.240m") is OverflowPolicy.FAIL
    assert config.overflow.trade is OverflowPolicy.FAIL  # untouched default
    assert config.overflow.orderbook is OverflowPolicy.CONFLATE
    explicit = EngineConfig(overflow=OverflowPolicies(trade="conflate"))
    assert explicit.overflow.trade is OverflowPolicy.CONFLATE


@pytest.mark.parametrize(
    ("overflow", "message"),
    [
        ({"tick": "fail"}, "EngineConfig.overflow: unknown data type 'tick'"),
        ({"trade": "drop"}, "overflow policy must be one of 'fail', 'conflate', got 'drop'"),
        (["fail"], "EngineConfig.overflow must be an OverflowPolicies or a mapping"),
    ],
)
def test_bad_overflow_settings(overflow: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineConfig(overflow=overflow)


BAD_VALUES: list[tuple[str, Any]] = [
    ("ws_url", "https://api.upbit.com/websocket/v1"),
    ("ws_url", "wss://"),
    ("private_ws_url", None),
    ("rest_url", "api.upbit.com"),
    ("access_key", ""),
    ("jwt_algorithm", "RS256"),
    ("snapshot_pool_size", 0),
    ("realtime_pool_size", 1.5),
    ("realtime_pool_size", True),
    ("format", "JSON_LIST"),
    ("format", "simple"),
    ("connects_per_second", 0),
    ("messages_per_second", -5),
    ("messages_per_minute", "100"),
    ("coalesce_window", -0.1),
    ("connect_timeout", 0),
    ("ping_interval", float("nan")),
    ("ping_timeout", "10"),
    ("text_ping", 1),
    ("stall_timeout", 0),
    ("stall_probe", "yes"),
    ("stall_probe_floor", 0),
    ("stall_probe_intervals", 0.5),
    ("stall_probe_timeout", -2),
    ("server_idle_timeout", float("inf")),
    ("backoff_initial", 0),
    ("backoff_max", -1),
    ("backoff_multiplier", 0.5),
    ("backoff_jitter", 1.5),
    ("seed", 1.0),
    ("max_restarts", -1),
    ("restart_window", 0),
    ("shutdown_grace", -1),
    ("snapshot_timeout", 0),
    ("snapshot_linger", -1),
    ("metrics_port", 70000),
    ("metrics_port", "9100"),
    ("metrics_host", ""),
    ("debug", "0.0.0.0:8765"),
    ("debug", "unix:"),
    ("debug", 8765),
    ("backfill", "on"),
    ("backfill_timeout", 0),
    ("backfill_max_pages", 0),
    ("backfill_concurrency", 2.5),
    ("validate_codes", "yes"),
    ("catalog_ttl", 0),
    ("catalog_timeout", -1),
    ("catalog_retry_interval", 0),
    ("catalog_instruments", None),
    ("subscriber_buffer", 0),
    ("inactive_after", 0),
    ("transport", "aiohttp"),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_each_validator_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"EngineConfig\.{field} must be") as info:
        EngineConfig(**{field: value})
    assert str(info.value)


def test_every_field_has_a_rejection_test_or_accepts_anything_sensible() -> None:
    tested = {field for field, _ in BAD_VALUES} | {"secret_key", "overflow"}
    assert tested == {field.name for field in attrs.fields(EngineConfig)}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"ping_timeout": 15, "ping_interval": 15},
            "ping_timeout (15 s) must be shorter than ping_interval",
        ),
        (
            {"ping_interval": 60, "stall_timeout": 90},
            "ping_interval (60 s) must be shorter than server_idle_timeout",
        ),
        (
            {"stall_timeout": 9},
            "stall_timeout (9 s) must be longer than Upbit's status interval (10 s)",
        ),
        ({"backoff_initial": 40}, "backoff_initial (40 s) must not exceed backoff_max (30 s)"),
        (
            {"messages_per_second": 200},
            "messages_per_second (200) must not exceed messages_per_minute",
        ),
        (
            {"access_key": "ak"},
            "access_key is set but secret_key is not: give both keys or neither",
        ),
        ({"secret_key": SECRET}, "secret_key is set but access_key is not"),
    ],
)
def test_cross_field_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"invalid EngineConfig") as info:
        EngineConfig(**changes)
    assert message in str(info.value)
    assert SECRET not in str(info.value)


def test_cross_field_problems_are_all_listed() -> None:
    with pytest.raises(ValueError, match="invalid EngineConfig") as info:
        EngineConfig(backoff_initial=40, access_key="ak", messages_per_second=101)
    text = str(info.value)
    assert "backoff_initial" in text
    assert "access_key is set" in text
    assert "messages_per_second" in text


def test_stall_check_can_be_disabled_and_limits_can_be_raised() -> None:
    config = EngineConfig(stall_timeout=None, messages_per_second=50, messages_per_minute=1000)
    assert config.stall_timeout is None
    assert config.messages_per_second == 50


def test_secret_is_not_in_repr_or_str() -> None:
    config = EngineConfig(access_key="my-access", secret_key=SECRET)
    assert config.has_credentials
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert "secret_key='***'" in repr(config)
    assert "access_key='my-access'" in repr(config)
    assert config.secret_key == SECRET
    assert "secret_key=None" in repr(EngineConfig())


def test_bad_secret_is_not_echoed() -> None:
    with pytest.raises(ValueError, match="secret_key") as info:
        EngineConfig(access_key="ak", secret_key="   ")
    assert str(info.value) == "EngineConfig.secret_key must be a non-empty str or None"
    with pytest.raises(ValueError, match="secret_key") as info:
        EngineConfig(access_key="ak", secret_key=SECRET.encode())  # type: ignore[arg-type]
    assert SECRET not in str(info.value)


def test_frozen_and_keyword_only() -> None:
    config = EngineConfig()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.ping_interval = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        EngineConfig("wss://example")  # type: ignore[call-arg]
    assert hash(config) == hash(EngineConfig())
    assert config == EngineConfig()


def test_evolve_copies_and_revalidates() -> None:
    base = EngineConfig()
    simple = base.evolve(format="SIMPLE", seed=7)
    assert simple.format == "SIMPLE"
    assert simple.seed == 7
    assert base.format == "DEFAULT"
    with pytest.raises(ValueError, match=r"EngineConfig\.format must be"):
        base.evolve(format="XML")
    with pytest.raises(TypeError, match="'ping_intervl' \\(did you mean 'ping_interval'\\?\\)"):
        base.evolve(ping_intervl=3)


def test_from_options() -> None:
    config = EngineConfig.from_options(ws_url="ws://127.0.0.1:8765/websocket/v1", seed=1)
    assert config.ws_url == "ws://127.0.0.1:8765/websocket/v1"
    assert config.realtime_pool_size == 2
    on_top = EngineConfig.from_options(config, realtime_pool_size=4)
    assert on_top.ws_url == config.ws_url
    assert on_top.realtime_pool_size == 4
    assert EngineConfig.from_options() == EngineConfig()
    with pytest.raises(TypeError, match="unknown EngineConfig option 'colour'"):
        EngineConfig.from_options(colour="blue")
    with pytest.raises(TypeError, match="config must be an EngineConfig"):
        EngineConfig.from_options({"seed": 1})  # type: ignore[arg-type]
