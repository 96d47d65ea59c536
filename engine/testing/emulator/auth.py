"""JWT checks for ``/websocket/v1/private`` (docs/UPBIT.md, Endpoints), plus a token maker.

Upbit's token: HMAC with the secret key as raw bytes, HS512 recommended (HS256 in older examples),
payload ``access_key`` + ``nonce`` (a fresh UUID per token), no ``exp``/``iat``.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping

import attrs
import jwt

__all__ = ("AuthResult", "NonceLedger", "check_bearer", "make_jwt")


@attrs.frozen
class AuthResult:
    """Who the upgrade request authenticated as, or why it failed."""

    access_key: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class NonceLedger:
    """Nonces already used, to optionally refuse replayed tokens."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def use(self, access_key: str, nonce: str) -> bool:
        """Record a nonce; False when it was seen before for this key."""
        key = (access_key, nonce)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def make_jwt(
    access_key: str, secret_key: str, *, algorithm: str = "HS512", nonce: str | None = None
) -> str:
    """A token as Upbit expects it: ``{"access_key", "nonce"}`` signed with the secret key."""
    payload = {"access_key": access_key, "nonce": nonce or str(uuid.uuid4())}
    with warnings.catch_warnings():
        # Short test secrets are legitimate here; PyJWT's key-length advice is not.
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret_key, algorithm=algorithm)


def check_bearer(
    authorization: str | None,
    keys: Mapping[str, str],
    *,
    algorithms: tuple[str, ...],
    nonces: NonceLedger | None = None,
) -> AuthResult:
    """Verify an ``Authorization`` header value against the configured key pairs."""
    if authorization is None:
        return AuthResult(None, "no Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return AuthResult(None, "Authorization is not 'Bearer <jwt>'")
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        return AuthResult(None, f"not a JWT: {exc}")
    algorithm = header.get("alg")
    if algorithm not in algorithms:
        return AuthResult(None, f"algorithm {algorithm!r} not accepted (use one of {algorithms})")
    access_key = claims.get("access_key")
    if not isinstance(access_key, str) or access_key not in keys:
        return AuthResult(None, "unknown access_key")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            jwt.decode(
                token, keys[access_key], algorithms=[algorithm], options={"require": ["nonce"]}
            )
    except jwt.PyJWTError as exc:
        return AuthResult(None, f"token rejected: {exc}")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        return AuthResult(None, "nonce must be a non-empty string")
    if nonces is not None and not nonces.use(access_key, nonce):
        return AuthResult(None, "nonce already used")
    return AuthResult(access_key)
