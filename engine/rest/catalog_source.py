"""A TTL-refreshed, shared market catalog on Trio's clock.

Theory of operation: :meth:`CatalogSource.get` returns the held catalog while it is fresh. When it
is due, the first caller fetches (the "leader") and later callers wait for that same fetch, so a
burst of callers costs one request. A failed refresh keeps serving the previous catalog and puts
the next attempt ``retry_interval`` away, so callers are not each made to wait out a timeout while
Upbit is unreachable; only when no catalog was ever fetched does the error reach callers. If the
leader is cancelled, a waiting caller takes over the fetch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import httpx
import trio

from engine.errors import CatalogUnavailableError
from engine.markets.catalog import MarketCatalog
from engine.rest.catalog_fetch import fetch_catalog

__all__ = ("CatalogSource", "CatalogSourceStatistics")

_log = logging.getLogger("engine.markets")


@attrs.frozen
class CatalogSourceStatistics:
    """A snapshot of a :class:`CatalogSource`'s state."""

    #: Successful fetches so far.
    fetches: int
    #: Failed fetches so far.
    failures: int
    #: Seconds since the held catalog was fetched (Trio's clock), or ``None`` if none is held.
    age: float | None
    #: The last fetch error, cleared by the next success.
    last_error: str | None
    #: Whether a fetch is in flight.
    refreshing: bool


@attrs.define(eq=False)
class _Attempt:
    done: trio.Event = attrs.Factory(trio.Event)
    catalog: MarketCatalog | None = None
    error: CatalogUnavailableError | None = None


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class CatalogSource:
    """Holds the current :class:`MarketCatalog` and refreshes it when older than ``ttl``.

    ``fetch`` is any ``async () -> MarketCatalog`` raising :class:`CatalogUnavailableError` on
    failure (see :meth:`for_url`). ``on_error`` is called with each refresh failure, in addition to
    a warning on the ``engine.markets`` logger.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[MarketCatalog]],
        *,
        ttl: float = 300.0,
        retry_interval: float = 30.0,
        initial: MarketCatalog | None = None,
        on_error: Callable[[CatalogUnavailableError], object] | None = None,
    ) -> None:
        self._fetch = fetch
        self._ttl = _positive("ttl", ttl)
        self._retry_interval = _positive("retry_interval", retry_interval)
        self.on_error = on_error
        #: Called with each fetched catalog and the one it replaces (``None`` at first).
        self.on_refresh: Callable[[MarketCatalog, MarketCatalog | None], object] | None = None
        self._catalog = initial
        self._fetched_at: float | None = None
        # Trio time at which the held catalog is due for a refresh; -inf means "now". An
        # ``initial`` catalog counts as fetched at first use (the constructor may run before
        # Trio does, when there is no clock to read).
        self._due = -math.inf
        self._initial_pending = initial is not None
        self._attempt: _Attempt | None = None
        self._fetches = 0
        self._failures = 0
        self._last_error: CatalogUnavailableError | None = None

    @classmethod
    def for_url(
        cls,
        rest_url: str,
        *,
        ttl: float = 300.0,
        retry_interval: float = 30.0,
        timeout: float = 10.0,
        with_instruments: bool = True,
        client: httpx.AsyncClient | None = None,
        on_error: Callable[[CatalogUnavailableError], object] | None = None,
    ) -> CatalogSource:
        """A source fetching from Upbit's REST API at ``rest_url`` with :func:`fetch_catalog`."""
        fetch = partial(
            fetch_catalog,
            rest_url,
            timeout=timeout,
            with_instruments=with_instruments,
            client=client,
        )
        return cls(fetch, ttl=ttl, retry_interval=retry_interval, on_error=on_error)

    @property
    def current(self) -> MarketCatalog | None:
        """The held catalog, possibly stale, without fetching; ``None`` before the first fetch."""
        return self._catalog

    @property
    def last_error(self) -> CatalogUnavailableError | None:
        """The most recent refresh failure, cleared by the next success."""
        return self._last_error

    def _start_clock(self) -> None:
        if self._initial_pending:
            self._initial_pending = False
            self._fetched_at = trio.current_time()
            self._due = self._fetched_at + self._ttl

    def statistics(self) -> CatalogSourceStatistics:
        """Counts, age and last error, for metrics and debugging."""
        self._start_clock()
        age = None if self._fetched_at is None else trio.current_time() - self._fetched_at
        return CatalogSourceStatistics(
            fetches=self._fetches,
            failures=self._failures,
            age=age,
            last_error=None if self._last_error is None else str(self._last_error),
            refreshing=self._attempt is not None,
        )

    async def get(self) -> MarketCatalog:
        """The catalog, refetched first if it is older than ``ttl``.

        Raises :class:`CatalogUnavailableError` only if no catalog has ever been fetched.
        """
        self._start_clock()
        while True:
            if self._catalog is not None and trio.current_time() < self._due:
                await trio.lowlevel.checkpoint()
                return self._catalog
            result = await self._join_or_lead()
            if result is not None:
                return result

    async def refresh(self) -> MarketCatalog:
        """Fetch now (or join a fetch in flight), whatever the held catalog's age.

        Like :meth:`get`, a failure falls back to the held catalog if there is one.
        """
        self._start_clock()
        self._due = -math.inf
        while True:
            result = await self._join_or_lead()
            if result is not None:
                return result

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the catalog fresh in the background, so :meth:`get` rarely waits.

        Reports started after the first successful fetch (raising if that fails, so a
        supervisor can retry), then refreshes whenever the catalog falls due, forever.
        """
        await self.get()
        task_status.started()
        while True:
            await trio.sleep_until(self._due)
            await self.get()

    # ----------------------------------------------------------------------------------------

    async def _join_or_lead(self) -> MarketCatalog | None:
        """Share the fetch in flight or start one; ``None`` means "look again"."""
        attempt = self._attempt
        if attempt is None:
            return await self._lead()
        await attempt.done.wait()
        if attempt.catalog is not None:
            return attempt.catalog
        if attempt.error is not None:
            if self._catalog is not None:
                return self._catalog
            raise CatalogUnavailableError(str(attempt.error)) from attempt.error
        return None  # the leader was cancelled; someone must fetch again

    async def _lead(self) -> MarketCatalog:
        attempt = self._attempt = _Attempt()
        try:
            catalog = await self._fetch()
        except CatalogUnavailableError as exc:
            attempt.error = exc
            self._failures += 1
            self._last_error = exc
            self._due = trio.current_time() + self._retry_interval
            held = "serving the previous catalog" if self._catalog is not None else "no catalog yet"
            # The cause can quote a URL with a hundred codes: the line stays readable.
            _log.warning("market catalog refresh failed (%s): %.300s", held, exc)
            if self.on_error is not None:
                self.on_error(exc)
            if self._catalog is None:
                raise
            return self._catalog
        else:
            attempt.catalog = catalog
            previous, self._catalog = self._catalog, catalog
            if self.on_refresh is not None:
                self.on_refresh(catalog, previous)
            self._fetches += 1
            self._last_error = None
            self._fetched_at = trio.current_time()
            self._due = self._fetched_at + self._ttl
            return catalog
        finally:
            self._attempt = None
            attempt.done.set()
