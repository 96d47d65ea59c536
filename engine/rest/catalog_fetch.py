"""Fetching the market catalog over HTTP from Trio (httpx runs on Trio through anyio).

One ``GET /v1/market/all?is_details=true`` (REST group ``market``, 10 requests/s per IP), then,
optionally, ``GET /v1/orderbook/instruments?markets=...`` for the KRW pairs in batches (group
``orderbook``, also 10/s per IP). Only KRW pairs are asked for: BTC and USDT pairs have level 0
only, so their policies add nothing to validation. The instruments endpoint is an optional
refinement: if it fails, the catalog is returned without (or with partial) instruments and
:attr:`MarketCatalog.instruments_error` says why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import httpx
import orjson
import trio

from engine.errors import CatalogUnavailableError
from engine.markets.catalog import MarketCatalog, OrderbookInstrument, parse_orderbook_instruments
from engine.rest.http_get import get_within

__all__ = ("INSTRUMENTS_BATCH_SIZE", "REST_REQUESTS_PER_SECOND", "fetch_catalog")

_log = logging.getLogger("engine.markets")

#: Codes per instruments request: keeps URLs short (about 1 KB) while 289 KRW pairs take 3 calls.
INSTRUMENTS_BATCH_SIZE = 100
#: Upbit's quotation REST limit per group and IP; consecutive calls are spaced to stay under it.
REST_REQUESTS_PER_SECOND = 10.0

_MARKET_ALL = "/v1/market/all"
_INSTRUMENTS = "/v1/orderbook/instruments"


async def fetch_catalog(
    rest_url: str,
    *,
    # The public signature: a per-request bound (enforced with trio.fail_after inside), not a
    # deadline for the whole call, so the ASYNC109 advice does not fit.
    timeout: float = 10.0,  # noqa: ASYNC109
    with_instruments: bool = True,
    client: httpx.AsyncClient | None = None,
    instruments_batch_size: int = INSTRUMENTS_BATCH_SIZE,
) -> MarketCatalog:
    """Fetch and parse the catalog from ``rest_url`` (``"https://api.upbit.com"``).

    ``timeout`` bounds each HTTP request, on Trio's clock. ``client`` lets the caller share a
    connection pool or plug in a transport (``httpx.MockTransport`` in tests); without one, a
    client is opened and closed here. Raises :class:`CatalogUnavailableError` naming the URL and
    the cause when the catalog cannot be fetched or parsed. Instruments failures never raise.
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if instruments_batch_size < 1:
        raise ValueError(f"instruments_batch_size must be >= 1, got {instruments_batch_size!r}")
    base = rest_url.rstrip("/")
    if client is None:
        # trust_env stays on (proxies from the environment apply), as for any httpx client.
        async with httpx.AsyncClient(timeout=timeout) as own_client:
            return await _fetch(base, own_client, timeout, with_instruments, instruments_batch_size)
    return await _fetch(base, client, timeout, with_instruments, instruments_batch_size)


async def _fetch(
    base: str,
    client: httpx.AsyncClient,
    per_request: float,
    with_instruments: bool,
    batch_size: int,
) -> MarketCatalog:
    url = f"{base}{_MARKET_ALL}?is_details=true"
    obj = await _get_json(client, url, per_request)
    try:
        catalog = MarketCatalog.from_json(obj)
    except CatalogUnavailableError as exc:
        raise CatalogUnavailableError(f"market catalog from {url} is unusable: {exc}") from exc
    if not with_instruments:
        return catalog
    instruments, error = await _fetch_instruments(
        base, client, per_request, catalog.codes(quote="KRW"), batch_size
    )
    if error is not None:
        _log.warning(
            "orderbook instruments incomplete, levels checked for KRW-ness only: %.300s", error
        )
    return catalog.with_instruments(instruments, error=error)


async def _fetch_instruments(
    base: str,
    client: httpx.AsyncClient,
    per_request: float,
    codes: Sequence[str],
    batch_size: int,
) -> tuple[list[OrderbookInstrument], str | None]:
    """Instruments for ``codes``; stops at the first failing batch and says why."""
    found: list[OrderbookInstrument] = []
    skipped = 0
    first_skip = ""
    interval = 1.0 / REST_REQUESTS_PER_SECOND
    next_allowed = trio.current_time()
    batches = [codes[i : i + batch_size] for i in range(0, len(codes), batch_size)]
    for number, batch in enumerate(batches):
        # Space the calls so a refresh never bursts past the per-second group limit.
        await trio.sleep_until(next_allowed)
        next_allowed = trio.current_time() + interval
        url = f"{base}{_INSTRUMENTS}?markets={','.join(batch)}"
        try:
            # Named by count, not by its codes: the URL would make every error line 1 KB long.
            what = f"GET {base}{_INSTRUMENTS}?markets=<{len(batch)} codes>"
            rows, problems = parse_orderbook_instruments(
                await _get_json(client, url, per_request, what=what)
            )
        except CatalogUnavailableError as exc:
            missing = sum(len(b) for b in batches[number:])
            return found, (
                f"orderbook instruments unavailable for {missing} of {len(codes)} KRW pairs: {exc}"
            )
        found.extend(rows)
        if problems and not first_skip:
            first_skip = problems[0]
        skipped += len(problems)
    if skipped:
        return found, f"skipped {skipped} malformed orderbook instrument rows, e.g. {first_skip}"
    return found, None


async def _get_json(
    client: httpx.AsyncClient, url: str, per_request: float, *, what: str | None = None
) -> object:
    """GET ``url`` and parse its JSON body; every failure becomes CatalogUnavailableError
    (its message names the request as ``what``, ``GET url`` by default)."""
    what = what or f"GET {url}"
    response = await get_within(
        client,
        url,
        seconds=per_request,
        error=CatalogUnavailableError,
        what=what,
        timeout_hint="catalog_timeout",
        check_hint="rest_url",
    )
    if response.status_code != 200:
        raise CatalogUnavailableError(f"{what} failed: {_status_text(response)}")
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        snippet = response.content[:80].decode("utf-8", "replace")
        raise CatalogUnavailableError(
            f"{what} returned a body that is not JSON ({exc}); it starts with {snippet!r}"
        ) from exc


def _status_text(response: httpx.Response) -> str:
    text = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        text += f" (Upbit error {error.get('name')!r}: {error.get('message')!r})"
    if response.status_code in (418, 429):
        remaining = response.headers.get("Remaining-Req")
        text += "; rate limited by Upbit, wait before retrying"
        if remaining:
            text += f" (Remaining-Req: {remaining})"
    return text
