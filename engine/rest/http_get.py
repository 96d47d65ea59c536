"""One bounded GET: the request within ``timeout`` (Trio's clock and httpx's own), and every
transport failure turned into the caller's error class with a message that says what to check.
Shared by the catalog fetch and the quotation client."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx
import trio

__all__ = ("JSON_HEADERS", "get_within")

JSON_HEADERS: Mapping[str, str] = {"Accept": "application/json"}


async def get_within(
    client: httpx.AsyncClient,
    url: str,
    *,
    seconds: float,
    error: Callable[[str], Exception],
    what: str,
    timeout_hint: str,
    check_hint: str,
    params: Mapping[str, str | int] | None = None,
) -> httpx.Response:
    """GET ``url``; ``error(message)`` is raised for a timeout (naming ``timeout_hint``) or a
    network failure (naming ``check_hint``)."""
    try:
        with trio.fail_after(seconds):
            return await client.get(url, params=params, headers=JSON_HEADERS, timeout=seconds)
    except (trio.TooSlowError, httpx.TimeoutException):
        raise error(
            f"{what} failed: no answer within {seconds:g} s; check the network or raise "
            f"{timeout_hint}"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise error(
            f"{what} failed: {type(exc).__name__}: {exc or 'no detail'}; check {check_hint} "
            "and the network"
        ) from exc
