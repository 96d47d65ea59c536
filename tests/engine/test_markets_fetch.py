"""fetch_catalog over httpx.MockTransport (every failure mode) and over a real loopback socket."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import h11
import httpx
import orjson
import pytest
import trio

from engine.errors import CatalogUnavailableError
from engine.rest import REST_REQUESTS_PER_SECOND, fetch_catalog
from tests.engine.test_markets_samples import instruments, market_all

REST = "https://rest.test"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeUpbit:
    """Answers the two endpoints from the samples; records every request and its Trio time."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, httpx.Request]] = []
        self.market_all: Callable[[], httpx.Response] = lambda: httpx.Response(
            200, json=market_all()
        )
        self.instruments: Callable[[list[str]], httpx.Response] = lambda codes: httpx.Response(
            200, json=instruments(codes)
        )

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((trio.current_time(), request))
        if request.url.path == "/v1/market/all":
            return self.market_all()
        if request.url.path == "/v1/orderbook/instruments":
            return self.instruments(request.url.params["markets"].split(","))
        return httpx.Response(404, json={"error": {"name": "not_found", "message": "no route"}})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def paths(self) -> list[str]:
        return [request.url.path for _, request in self.requests]


async def test_success_fetches_details_and_krw_instruments() -> None:
    upbit = FakeUpbit()
    async with upbit.client() as client:
        cat = await fetch_catalog(REST + "/", client=client)
    assert len(cat) == 11
    assert cat.get("KRW-DOGE") is not None
    assert set(cat.instruments) == {"KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-USDT", "KRW-DOGE"}
    assert cat.instruments_error is None
    first = upbit.requests[0][1]
    assert str(first.url) == "https://rest.test/v1/market/all?is_details=true"
    assert first.headers["accept"] == "application/json"
    assert "origin" not in first.headers  # Origin would put us in the 1-per-10-s group
    asked = upbit.requests[1][1].url.params["markets"].split(",")
    assert asked == ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-USDT", "KRW-DOGE"]


async def test_instruments_are_batched_and_spaced_under_the_rest_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit()
    async with upbit.client() as client:
        cat = await fetch_catalog(REST, client=client, instruments_batch_size=2)
    batches = [r.url.params["markets"] for _, r in upbit.requests[1:]]
    assert batches == ["KRW-BTC,KRW-ETH", "KRW-XRP,KRW-USDT", "KRW-DOGE"]
    times = [t for t, _ in upbit.requests[1:]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2
    assert all(gap >= 1 / REST_REQUESTS_PER_SECOND - 1e-9 for gap in gaps)
    assert len(cat.instruments) == 5


async def test_without_instruments_only_one_request_is_made() -> None:
    upbit = FakeUpbit()
    async with upbit.client() as client:
        cat = await fetch_catalog(REST, client=client, with_instruments=False)
    assert upbit.paths() == ["/v1/market/all"]
    assert not cat.has_instruments
    assert cat.instruments_error is None


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"error": {"name": 404, "message": "Code not found"}}, "HTTP 404 Not Found"),
        (500, b"oops", "HTTP 500 Internal Server Error"),
        (
            400,
            {"error": {"name": 400, "message": "Type mismatch error. Check the parameters type!"}},
            "Upbit error 400: 'Type mismatch error. Check the parameters type!'",
        ),
        (429, {"error": {"name": 429, "message": "Too many requests"}}, "rate limited by Upbit"),
        (418, b"", "HTTP 418"),
    ],
)
async def test_http_errors_name_the_url_and_status(status: int, body: Any, expected: str) -> None:
    upbit = FakeUpbit()
    if isinstance(body, bytes):
        upbit.market_all = lambda: httpx.Response(status, content=body)
    else:
        upbit.market_all = lambda: httpx.Response(
            status, json=body, headers={"Remaining-Req": "group=market; min=600; sec=0"}
        )
    async with upbit.client() as client:
        with pytest.raises(CatalogUnavailableError) as info:
            await fetch_catalog(REST, client=client)
    text = str(info.value)
    assert "GET https://rest.test/v1/market/all?is_details=true failed" in text
    assert expected in text
    if status == 429:
        assert "Remaining-Req: group=market; min=600; sec=0" in text


async def test_timeout_is_enforced_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    start = trio.current_time()
    async with httpx.AsyncClient(transport=httpx.MockTransport(silent)) as client:
        with pytest.raises(CatalogUnavailableError) as info:
            await fetch_catalog(REST, client=client, timeout=2.5)
    assert trio.current_time() - start == pytest.approx(2.5)
    assert "no answer within 2.5 s" in str(info.value)
    assert "rest.test/v1/market/all" in str(info.value)


async def test_httpx_timeouts_are_reported_the_same_way() -> None:
    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(timing_out)) as client:
        with pytest.raises(CatalogUnavailableError, match="no answer within 10 s"):
            await fetch_catalog(REST, client=client)


async def test_unreachable_host_names_the_cause() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(CatalogUnavailableError) as info:
            await fetch_catalog(REST, client=client)
    assert "ConnectError: [Errno 111] Connection refused" in str(info.value)
    assert "check rest_url" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_bad_url_is_reported() -> None:
    with pytest.raises(CatalogUnavailableError, match="UnsupportedProtocol"):
        await fetch_catalog("ftp://example.invalid")


async def test_bad_json_is_reported_with_the_start_of_the_body() -> None:
    upbit = FakeUpbit()
    upbit.market_all = lambda: httpx.Response(200, content=b"<html>maintenance</html>")
    async with upbit.client() as client:
        with pytest.raises(CatalogUnavailableError) as info:
            await fetch_catalog(REST, client=client)
    assert "is not JSON" in str(info.value)
    assert "<html>maintenance" in str(info.value)


async def test_json_of_the_wrong_shape_is_reported() -> None:
    upbit = FakeUpbit()
    upbit.market_all = lambda: httpx.Response(200, json={"markets": []})
    async with upbit.client() as client:
        with pytest.raises(CatalogUnavailableError) as info:
            await fetch_catalog(REST, client=client)
    assert "market catalog from https://rest.test/v1/market/all" in str(info.value)
    assert "expected a JSON array of markets" in str(info.value)


async def test_failing_instruments_keep_the_catalog_and_flag_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    upbit = FakeUpbit()
    upbit.instruments = lambda codes: httpx.Response(500, content=b"down")
    caplog.set_level(logging.WARNING, logger="engine.markets")
    async with upbit.client() as client:
        cat = await fetch_catalog(REST, client=client)
    assert len(cat) == 11
    assert not cat.has_instruments
    assert cat.instruments_error is not None
    assert "unavailable for 5 of 5 KRW pairs" in cat.instruments_error
    assert "HTTP 500" in cat.instruments_error
    assert "levels checked for KRW-ness only" in caplog.text


async def test_a_failing_later_batch_keeps_the_earlier_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit()
    calls = 0

    def flaky(codes: list[str]) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            return httpx.Response(200, content=b"not json")
        return httpx.Response(200, json=instruments(codes))

    upbit.instruments = flaky
    async with upbit.client() as client:
        cat = await fetch_catalog(REST, client=client, instruments_batch_size=2)
    assert set(cat.instruments) == {"KRW-BTC", "KRW-ETH"}
    assert calls == 2  # stops at the first failing batch instead of hammering
    assert cat.instruments_error is not None
    assert "unavailable for 3 of 5 KRW pairs" in cat.instruments_error


async def test_malformed_instrument_rows_are_skipped_and_flagged() -> None:
    upbit = FakeUpbit()
    upbit.instruments = lambda codes: httpx.Response(
        200, json=[*instruments(codes), {"market": "KRW-ETH", "supported_levels": "all"}]
    )
    async with upbit.client() as client:
        cat = await fetch_catalog(REST, client=client)
    assert len(cat.instruments) == 5
    assert cat.instruments_error is not None
    assert "skipped 1 malformed orderbook instrument rows" in cat.instruments_error


async def test_instruments_answer_that_is_not_an_array_is_flagged() -> None:
    upbit = FakeUpbit()
    upbit.instruments = lambda codes: httpx.Response(200, json={"unexpected": True})
    async with upbit.client() as client:
        cat = await fetch_catalog(REST, client=client)
    assert not cat.has_instruments
    assert cat.instruments_error is not None
    assert "must be a JSON array" in cat.instruments_error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"timeout": 0}, "timeout must be a positive"), ({"instruments_batch_size": 0}, ">= 1")],
)
async def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await fetch_catalog(REST, **kwargs)


# A real socket -----------------------------------------------------------------------------


async def _serve_one_http_connection(stream: trio.SocketStream, seen: list[str]) -> None:
    """A minimal HTTP/1.1 server for one request per connection, parsed with h11."""
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(4096))
            continue
        if isinstance(event, h11.Request):
            break
        raise AssertionError(f"unexpected event {event!r}")
    target = event.target.decode()
    seen.append(target)
    if target.startswith("/v1/market/all"):
        body = orjson.dumps(market_all())
    else:
        markets = target.partition("markets=")[2].replace("%2C", ",").split(",")
        body = orjson.dumps(instruments(markets))
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    await stream.send_all(head.encode() + body)
    await stream.aclose()


async def test_fetch_over_a_real_loopback_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    seen: list[str] = []

    async def handler(stream: trio.SocketStream) -> None:
        await _serve_one_http_connection(stream, seen)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            # client=None: fetch_catalog opens and closes its own httpx client.
            cat = await fetch_catalog(f"http://127.0.0.1:{port}", timeout=5)
            nursery.cancel_scope.cancel()
    assert len(cat) == 11
    assert cat.instrument("KRW-BTC") is not None
    assert seen[0] == "/v1/market/all?is_details=true"
    assert seen[1].startswith("/v1/orderbook/instruments?markets=KRW-BTC")
