"""The endpoint and upgrade headers of each ticket (engine.runtime.credentials): a private
ticket presents a freshly signed JWT on every connect, a public one nothing."""

from __future__ import annotations

import jwt
import pytest

from engine.config import EngineConfig
from engine.runtime.credentials import endpoint_for, upgrade_headers

SECRET = "s" * 64  # long enough that decoding here raises no key-length warning


def _config(**overrides: object) -> EngineConfig:
    values: dict[str, object] = {"access_key": "my-access", "secret_key": SECRET}
    values.update(overrides)
    return EngineConfig(**values)  # type: ignore[arg-type]


def test_each_call_signs_a_fresh_hs512_token_with_the_access_key() -> None:
    headers = [upgrade_headers(_config(), "private-0") for _ in range(2)]
    assert all(name == "Authorization" for ((name, _),) in headers)
    tokens = [value.removeprefix("Bearer ") for ((_, value),) in headers]
    claims = [
        jwt.decode(token, SECRET, algorithms=["HS512"], options={"require": ["nonce"]})
        for token in tokens
    ]
    assert all(jwt.get_unverified_header(token)["alg"] == "HS512" for token in tokens)
    assert {claim["access_key"] for claim in claims} == {"my-access"}
    assert claims[0]["nonce"] != claims[1]["nonce"]


def test_the_configured_algorithm_signs() -> None:
    ((_, value),) = upgrade_headers(_config(jwt_algorithm="HS256"), "private-0")
    token = value.removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["access_key"] == "my-access"


def test_public_tickets_present_nothing_and_use_the_public_endpoint() -> None:
    config = _config()
    assert upgrade_headers(config, "realtime-3") == []
    assert endpoint_for(config, "realtime-3") == config.ws_url
    assert endpoint_for(config, "private-0") == config.private_ws_url
    assert config.ws_url != config.private_ws_url


def test_a_private_ticket_without_keys_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="access_key and secret_key"):
        upgrade_headers(EngineConfig(), "private-0")
