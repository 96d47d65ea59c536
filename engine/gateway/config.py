"""The gateway's configuration: from flags or a TOML file, validated at construction with
messages that name the setting and the fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Final

import attrs

from engine.core.keys import PRIVATE_TYPES
from engine.core.specs import Spec, parse_spec
from engine.gateway.sharding import parse_shard, shard_codes

__all__ = ("GatewayConfig", "Spec", "parse_spec_text")

_NAME: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_spec_text(text: str) -> Spec:
    """A spec the gateway publishes: public market data only."""
    if text.partition(":")[0] in PRIVATE_TYPES:
        raise ValueError(
            f"{text!r}: the gateway publishes public market data only: an account's orders "
            "and assets must not go to a shared bus"
        )
    return parse_spec(text)


def _name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"GatewayConfig.{attribute.name} must be letters, digits, '-' or '_' (it is used in "
            f"NATS names and subjects), got {value!r}"
        )


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"GatewayConfig.{attribute.name} must be a number > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class GatewayConfig:
    """Where to publish and what; every field has a default but the NATS URL and the specs."""

    #: NATS server URL(s), comma separated (``nats://127.0.0.1:4222``).
    nats: str
    #: What to subscribe to and publish.
    specs: tuple[Spec, ...]
    #: This gateway's name: its events go to ``{prefix}.events.{name}``.
    name: str = attrs.field(default="gateway", validator=_name)
    #: The JetStream stream (created if missing, checked if present) and its subject prefix.
    stream: str = attrs.field(default="UPBIT", validator=_name)
    prefix: str = attrs.field(default="upbit", validator=_name)
    #: The stream's limits: seconds a message is kept, bytes in all (0: no limit), and the
    #: duplicate window (seconds; two gateways' copies of one message inside it are stored once).
    max_age: float = attrs.field(default=86_400.0, validator=_positive)
    max_bytes: int = 0
    duplicate_window: float = attrs.field(default=120.0, validator=_positive)
    #: Messages held while NATS is unreachable; beyond it new ones are refused (and counted,
    #: and reported on the events subject when NATS is back).
    buffer: int = attrs.field(default=100_000, validator=_positive)
    #: Messages per publish batch, and seconds one publish may wait for its ack.
    batch: int = attrs.field(default=256, validator=_positive)
    publish_timeout: float = attrs.field(default=2.0, validator=_positive)
    #: ``(I, N)``: this gateway publishes only the codes shard I of N owns
    #: (:mod:`engine.gateway.sharding`); ``None``: every code of ``specs``.
    shard: tuple[int, int] | None = None

    def own_specs(self) -> tuple[Spec, ...]:
        """``specs`` restricted to this gateway's shard (specs left without codes dropped)."""
        if self.shard is None:
            return self.specs
        index, count = self.shard
        mine = (Spec(spec.data_type, shard_codes(spec.codes, index, count)) for spec in self.specs)
        return tuple(spec for spec in mine if spec.codes)

    def __attrs_post_init__(self) -> None:
        if not self.specs:
            raise ValueError("GatewayConfig.specs: give at least one TYPE:CODE[,CODE...]")
        if self.duplicate_window > self.max_age:
            raise ValueError(
                f"GatewayConfig.duplicate_window ({self.duplicate_window:g} s) must not exceed "
                f"max_age ({self.max_age:g} s): JetStream refuses such a stream"
            )

    @property
    def events_subject(self) -> str:
        return f"{self.prefix}.events.{self.name}"

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> GatewayConfig:
        """Read ``path`` (a ``[gateway]`` table; ``specs = ["trade:KRW-BTC", ...]``); keyword
        ``overrides`` that are not ``None`` win (the command line over the file)."""
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        table = data.get("gateway", data)
        if not isinstance(table, dict):
            raise ValueError(f"{path}: expected a [gateway] table")
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
        values = dict(table)
        if isinstance(values.get("shard"), str):
            values["shard"] = parse_shard(values["shard"])
        if "specs" in values:
            values["specs"] = tuple(parse_spec_text(text) for text in values["specs"])
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)
