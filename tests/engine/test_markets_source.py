"""CatalogSource: TTL refresh on Trio's clock, shared fetches, serving stale on failure."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio
import trio.testing

from engine.errors import CatalogUnavailableError
from engine.markets import MarketCatalog
from engine.rest import CatalogSource
from tests.engine.test_markets_samples import catalog, instruments, market_all

FIRST = catalog()
SECOND = MarketCatalog.from_json([*market_all(), {"market": "KRW-NEW"}])


class ScriptedFetch:
    """An async fetch that returns or raises from a script, taking ``delay`` seconds."""

    def __init__(self, *outcomes: MarketCatalog | Exception, delay: float = 1.0) -> None:
        self.outcomes = list(outcomes)
        self.delay = delay
        self.calls = 0
        self.started = trio.Event()

    async def __call__(self) -> MarketCatalog:
        self.calls += 1
        self.started.set()
        await trio.sleep(self.delay)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def test_get_fetches_once_then_serves_until_the_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetch = ScriptedFetch(FIRST, SECOND)
    source = CatalogSource(fetch, ttl=300)
    assert source.current is None
    assert await source.get() is FIRST
    await trio.sleep(298)  # fetched at t=1, so still fresh at t=299
    assert await source.get() is FIRST
    assert fetch.calls == 1
    await trio.sleep(2)
    assert await source.get() is SECOND
    assert fetch.calls == 2
    stats = source.statistics()
    assert stats.fetches == 2
    assert stats.failures == 0
    assert stats.age == 0
    assert not stats.refreshing


async def test_concurrent_callers_share_one_fetch(autojump_clock: trio.testing.MockClock) -> None:
    fetch = ScriptedFetch(FIRST, delay=5)
    source = CatalogSource(fetch, ttl=60)
    results: list[MarketCatalog] = []

    async def caller() -> None:
        results.append(await source.get())

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(caller)
        await fetch.started.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert source.statistics().refreshing
    assert fetch.calls == 1
    assert results == [FIRST] * 5
    assert all(result is FIRST for result in results)


async def test_failed_refresh_serves_the_previous_catalog_and_reports(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    boom = CatalogUnavailableError("GET https://api.upbit.com/v1/market/all failed: HTTP 500")
    fetch = ScriptedFetch(FIRST, boom, boom, SECOND)
    errors: list[CatalogUnavailableError] = []
    source = CatalogSource(fetch, ttl=100, retry_interval=30, on_error=errors.append)
    caplog.set_level(logging.WARNING, logger="engine.markets")

    assert await source.get() is FIRST
    await trio.sleep(100)
    assert await source.get() is FIRST  # refresh failed: previous catalog served
    assert fetch.calls == 2
    assert errors == [boom]
    failed_with = source.last_error
    assert failed_with is boom
    assert "serving the previous catalog" in caplog.text
    assert "HTTP 500" in caplog.text

    # Within the retry interval nobody waits on another doomed fetch.
    await trio.sleep(29)
    assert await source.get() is FIRST
    assert fetch.calls == 2

    await trio.sleep(1)
    assert await source.get() is FIRST  # second failure
    assert fetch.calls == 3
    stats = source.statistics()
    assert stats.failures == 2
    assert stats.last_error is not None
    assert "HTTP 500" in stats.last_error

    await trio.sleep(30)
    assert await source.get() is SECOND
    assert source.last_error is None
    assert source.statistics().last_error is None


async def test_waiters_on_a_failed_refresh_also_get_the_previous_catalog(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetch = ScriptedFetch(FIRST, CatalogUnavailableError("down"))
    source = CatalogSource(fetch, ttl=10)
    await source.get()
    await trio.sleep(10)
    results: list[MarketCatalog] = []

    async def caller() -> None:
        results.append(await source.get())

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(caller)
    assert results == [FIRST] * 3
    assert fetch.calls == 2


async def test_without_any_catalog_errors_reach_every_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetch = ScriptedFetch(CatalogUnavailableError("GET x failed: refused"))
    source = CatalogSource(fetch)
    failures: list[str] = []

    async def caller() -> None:
        try:
            await source.get()
        except CatalogUnavailableError as exc:
            failures.append(str(exc))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(caller)
    assert failures == ["GET x failed: refused"] * 3
    assert fetch.calls == 1
    # The next call tries again at once: there is nothing to serve meanwhile.
    with pytest.raises(CatalogUnavailableError):
        await source.get()
    assert fetch.calls == 2


async def test_a_cancelled_leader_hands_the_fetch_to_a_waiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetch = ScriptedFetch(FIRST, delay=5)
    source = CatalogSource(fetch)
    got: list[MarketCatalog] = []

    async def waiter() -> None:
        got.append(await source.get())

    leader_scope = trio.CancelScope()

    async def leader() -> None:
        with leader_scope:
            await source.get()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leader)
        await fetch.started.wait()
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        leader_scope.cancel()
    assert leader_scope.cancelled_caught
    assert got == [FIRST]
    assert fetch.calls == 2


async def test_refresh_forces_a_fetch(autojump_clock: trio.testing.MockClock) -> None:
    fetch = ScriptedFetch(FIRST, SECOND)
    source = CatalogSource(fetch, ttl=300)
    await source.get()
    assert await source.refresh() is SECOND
    assert fetch.calls == 2


async def test_initial_catalog_counts_as_fresh_from_first_use(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetch = ScriptedFetch(SECOND)
    source = CatalogSource(fetch, ttl=50, initial=FIRST)
    assert source.current is FIRST
    assert await source.get() is FIRST
    await trio.sleep(49)
    assert await source.get() is FIRST
    assert fetch.calls == 0
    await trio.sleep(1)
    assert await source.get() is SECOND


async def test_run_keeps_the_catalog_fresh_in_the_background(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetch = ScriptedFetch(FIRST, SECOND, delay=1)
    source = CatalogSource(fetch, ttl=100)
    async with trio.open_nursery() as nursery:
        await nursery.start(source.run)
        assert source.current is FIRST
        await trio.sleep(101.5)  # fetched at t=1, due at t=101, refreshed at t=102
        assert source.current is SECOND
        assert fetch.calls == 2
        nursery.cancel_scope.cancel()


async def test_run_fails_if_the_first_fetch_fails(autojump_clock: trio.testing.MockClock) -> None:
    source = CatalogSource(ScriptedFetch(CatalogUnavailableError("down")))
    with pytest.raises(CatalogUnavailableError, match="down"):
        await source.run()


async def test_for_url_fetches_with_fetch_catalog() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/market/all":
            return httpx.Response(200, json=market_all())
        return httpx.Response(200, json=instruments())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        source = CatalogSource.for_url("https://rest.test", client=client, ttl=10)
        cat = await source.get()
    assert cat == FIRST


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ttl": 0}, ValueError, "ttl must be a positive number"),
        ({"ttl": float("inf")}, ValueError, "ttl must be a positive number"),
        ({"retry_interval": -1}, ValueError, "retry_interval must be a positive number"),
        ({"ttl": "300"}, TypeError, "ttl must be a number of seconds"),
    ],
)
def test_bad_settings_are_rejected(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        CatalogSource(ScriptedFetch(FIRST), **kwargs)  # type: ignore[arg-type]
