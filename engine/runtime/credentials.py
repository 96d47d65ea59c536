"""Where a ticket connects and what it presents: the public or private endpoint, and for
private tickets a freshly signed JWT on every connect (Upbit refuses a reused nonce)."""

from __future__ import annotations

import uuid
import warnings

import jwt

from engine.config import EngineConfig

__all__ = ("endpoint_for", "is_private", "upgrade_headers")


def is_private(ticket: str) -> bool:
    return ticket.startswith("private-")


def endpoint_for(config: EngineConfig, ticket: str) -> str:
    """The WebSocket URL ``ticket`` connects to."""
    return config.private_ws_url if is_private(ticket) else config.ws_url


def upgrade_headers(config: EngineConfig, ticket: str) -> list[tuple[str, str]]:
    """Upgrade headers: ``Authorization: Bearer <JWT>`` for private tickets, none for public."""
    if not is_private(ticket):
        return []
    if config.access_key is None or config.secret_key is None:
        raise ValueError(f"{ticket} needs access_key and secret_key in EngineConfig")
    payload = {"access_key": config.access_key, "nonce": str(uuid.uuid4())}
    with warnings.catch_warnings():
        # Upbit issues the secret keys (40 characters): shorter than PyJWT's advice for HS512,
        # and nothing the user can change, so the advice is noise on every connect.
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = jwt.encode(payload, config.secret_key, algorithm=config.jwt_algorithm)
    return [("Authorization", f"Bearer {token}")]
