"""QuotationClient against a fake Upbit (httpx.MockTransport): pacing per group, Remaining-Req,
429 backoff and exhaustion, 418 blocks, errors, statistics; and the header readers.

:class:`FakeUpbit` is also the fake the history tests page through: it serves
``/v1/trades/ticks`` (one UTC day per ``days_ago``, newest first, exclusive ``cursor``, ``to``,
``count`` capped at 500) and ``/v1/candles/...`` (exclusive ``to``, newest first, ``count``
capped at 200), counts every group's requests over a sliding second on Trio's clock and answers
429 beyond 10, as Upbit does per IP.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing

from engine.errors import (
    ConnectionFailedError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    UnknownMarketError,
)
from engine.rest import (
    QUOTATION_GROUPS,
    QuotationClient,
    QuotationPolicy,
    QuotationStatistics,
    RemainingReq,
)
from engine.rest.quotation_limits import (
    block_seconds,
    group_for_path,
    parse_remaining_req,
    parse_retry_after,
)

REST = "https://rest.test"
#: The fake's wall clock: what "today" means for days_ago.
NOW = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
LIMIT = 10

# The fake's own idea of the groups (not the client's table, so a wrong table fails).
_FAKE_GROUPS = {
    "/v1/market/all": "market",
    "/v1/trades/ticks": "trade",
    "/v1/ticker": "ticker",
    "/v1/orderbook": "orderbook",
}

Scripted = Callable[[httpx.Request], httpx.Response]


def _fake_group(path: str) -> str:
    if path.startswith("/v1/candles/"):
        return "candle"
    return _FAKE_GROUPS[path]


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def error_body(name: object, message: str) -> dict[str, Any]:
    return {"error": {"name": name, "message": message}}


@attrs.frozen
class Sent:
    at: float
    group: str
    request: httpx.Request

    @property
    def params(self) -> Mapping[str, str]:
        return dict(self.request.url.params)


class FakeUpbit:
    """Upbit's quotation REST as far as the client and the history fetchers rely on it."""

    def __init__(
        self,
        *,
        trades: Iterable[dict[str, Any]] = (),
        candles: Mapping[str, Iterable[dict[str, Any]]] | None = None,
        markets: Iterable[str] = ("KRW-BTC",),
        now: datetime = NOW,
        overlap: int = 0,
        remaining_sec: int | None = None,
    ) -> None:
        self.now = now
        self.markets = set(markets)
        self.sent: list[Sent] = []
        self.violations = 0
        self.cursor_misses = 0
        #: Answers to give before the normal ones, per group (or "*" for any group).
        self.script: dict[str, deque[Scripted]] = {}
        #: A page after ``cursor`` repeats this many rows before it (pages overlapping).
        self.overlap = overlap
        #: A fixed ``sec=`` in Remaining-Req; None: what the sliding second has left.
        self.remaining_sec = remaining_sec
        self.ignore_cursor = False
        self._days: dict[date, list[dict[str, Any]]] = {}
        for row in trades:
            day = datetime.fromtimestamp(row["timestamp"] / 1000, UTC).date()
            self._days.setdefault(day, []).append(row)
        for rows in self._days.values():
            # Newest first; rows of one millisecond in the order they were seeded, reversed.
            rows.reverse()
            rows.sort(key=lambda r: -r["timestamp"])
        self._candles = {
            path: sorted(rows, key=lambda r: r["candle_date_time_utc"], reverse=True)
            for path, rows in (candles or {}).items()
        }

    def client(self, policy: QuotationPolicy | None = None) -> QuotationClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return QuotationClient(REST, client=http, policy=policy)

    def add_script(self, group: str, *answers: Scripted) -> None:
        self.script.setdefault(group, deque()).extend(answers)

    def of(self, group: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.group == group]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        now = trio.current_time()
        group = _fake_group(request.url.path)
        self.sent.append(Sent(now, group, request))
        in_window = sum(1 for s in self.of(group) if s.at > now - 1.0)
        queue = self.script.get(group) or self.script.get("*")
        if queue:
            response = queue.popleft()(request)
        elif in_window > LIMIT:
            self.violations += 1
            response = httpx.Response(429, json=error_body(429, "Too many requests"))
        else:
            response = self._route(request)
        sec = max(0, LIMIT - in_window) if self.remaining_sec is None else self.remaining_sec
        response.headers.setdefault("Remaining-Req", f"group={group}; min=600; sec={sec}")
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        path = request.url.path
        if "market" in params and params["market"] not in self.markets:
            return httpx.Response(404, json=error_body(404, "Code not found"))
        if path == "/v1/trades/ticks":
            return self._trades(params)
        if path in self._candles:
            return self._candle_page(path, params)
        if path == "/v1/market/all":
            return httpx.Response(200, json=[{"market": m} for m in sorted(self.markets)])
        return httpx.Response(200, json=[])

    def _trades(self, params: httpx.QueryParams) -> httpx.Response:
        count = min(int(params.get("count", "1")), 500)
        days_ago = int(params.get("days_ago", "0"))
        if "days_ago" in params and not 1 <= days_ago <= 7:
            return httpx.Response(400, json=error_body(400, "days_ago must be 1 to 7"))
        day = self.now.date() - timedelta(days=days_ago)
        now_ms = _ms(self.now)
        rows = [row for row in self._days.get(day, []) if row["timestamp"] <= now_ms]
        if "to" in params:
            hours, minutes, seconds = (int(part) for part in params["to"].split(":"))
            cutoff = _ms(datetime(day.year, day.month, day.day, tzinfo=UTC)) + 1000 * (
                hours * 3600 + minutes * 60 + seconds
            )
            rows = [row for row in rows if row["timestamp"] < cutoff]  # the named second excluded
        if "cursor" in params and not self.ignore_cursor:
            ids = [row.get("sequential_id") for row in rows]
            cursor = int(params["cursor"])
            if cursor not in ids:  # the cursor is not known to cross into another day
                self.cursor_misses += 1
                return httpx.Response(200, json=[])
            rows = rows[max(0, ids.index(cursor) + 1 - self.overlap) :]
        return httpx.Response(200, json=rows[:count])

    def _candle_page(self, path: str, params: httpx.QueryParams) -> httpx.Response:
        count = min(int(params.get("count", "1")), 200)
        rows = self._candles[path]
        if "to" in params:
            to = datetime.fromisoformat(params["to"])
            if to.tzinfo is None:
                return httpx.Response(400, json=error_body(400, "to needs an offset"))
            stamp = to.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            rows = [row for row in rows if row["candle_date_time_utc"] < stamp]
        return httpx.Response(200, json=rows[:count])


def answer(status: int, body: Any = None, **headers: str) -> Scripted:
    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return respond


def too_many(retry_after: str | None = None) -> Scripted:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return answer(429, error_body(429, "Too many requests"), **headers)


def max_in_any_second(times: list[float]) -> int:
    """The most requests inside any half-open one-second window (t - 1, t]."""
    return max((sum(1 for u in times if t - 1.0 < u <= t) for t in times), default=0)


# ----------------------------------------------------------------------------------------------
# Header readers


def test_paths_map_to_their_groups() -> None:
    assert group_for_path("/v1/trades/ticks") == "trade"
    assert group_for_path("/v1/candles/minutes/1") == "candle"
    assert group_for_path("/v1/candles/seconds") == "candle"
    assert group_for_path("/v1/market/all") == "market"
    assert group_for_path("/v1/ticker") == "ticker"
    assert group_for_path("/v1/ticker/all") == "ticker"
    assert group_for_path("/v1/orderbook") == "orderbook"
    assert group_for_path("/v1/orderbook/instruments") == "orderbook"
    assert set(QUOTATION_GROUPS) == {"market", "candle", "trade", "ticker", "orderbook"}
    with pytest.raises(ValueError, match="not a quotation REST path"):
        group_for_path("/v1/orders")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("group=trade; min=600; sec=9", RemainingReq("trade", 9, 600)),
        ("GROUP=candle;MIN=1800;SEC=0", RemainingReq("candle", 0, 1800)),
        ("group = market ; sec = 3", RemainingReq("market", 3, None)),
        ("group=origin; min=x; sec=", RemainingReq("origin", None, None)),
        ("min=600; sec=9", None),
        ("", None),
        (None, None),
        ("garbage", None),
    ],
)
def test_remaining_req_is_read_in_any_case(header: str | None, expected: object) -> None:
    assert parse_remaining_req(header) == expected


def test_retry_after_in_seconds_or_as_a_date() -> None:
    reference = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Sat, 10 Oct 2026 12:00:30 GMT", reference=reference) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (error_body(418, "요청 수 제한을 초과하여 60초 동안 차단되었습니다."), 60.0),
        (error_body(418, "1시간 30분 동안 차단"), 5400.0),
        (error_body(418, "blocked for 10 minutes"), 600.0),
        (error_body(418, "blocked for 45 s"), 45.0),
        ({"error": {"name": 418, "message": "blocked", "retry_after": 12}}, 12.0),
        ({"retry_after": 7.5}, 7.5),
        (error_body(418, "I'm a teapot"), None),
        ({"error": {"name": 418, "retry_after": True}}, None),
        ("not an object", None),
        (None, None),
    ],
)
def test_block_time_is_read_from_the_body_when_it_can_be(body: object, expected: object) -> None:
    assert block_seconds(body) == expected


def test_policy_and_base_url_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        QuotationPolicy(timeout=0)
    with pytest.raises(ValueError, match="requests_per_second"):
        QuotationPolicy(requests_per_second=0)
    with pytest.raises(ValueError, match="max_retries"):
        QuotationPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="backoff_factor"):
        QuotationPolicy(backoff_factor=0.5)
    with pytest.raises(ValueError, match="safety_margin"):
        QuotationPolicy(safety_margin=math.nan)
    with pytest.raises(ValueError, match="http"):
        QuotationClient("ftp://api.upbit.com")


# ----------------------------------------------------------------------------------------------
# Pacing


async def test_each_group_is_paced_to_ten_in_any_second_independently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)  # never "spent": only the client's own limiter paces
    results: list[object] = []

    async def one(path: str, params: dict[str, str | int]) -> None:
        results.append(await client.get_json(path, params))

    async with upbit.client() as client:
        async with trio.open_nursery() as nursery:
            for _ in range(35):
                nursery.start_soon(one, "/v1/trades/ticks", {"market": "KRW-BTC"})
                nursery.start_soon(one, "/v1/candles/minutes/1", {"market": "KRW-BTC"})
            nursery.start_soon(one, "/v1/market/all", {})
        stats = client.statistics()
    assert len(results) == 71
    assert upbit.violations == 0
    for group in ("trade", "candle"):
        times = [sent.at for sent in upbit.of(group)]
        assert len(times) == 35
        assert max_in_any_second(times) == LIMIT
        # Groups are independent: each sends its first ten at once, the rest a window later.
        assert times[LIMIT - 1] == pytest.approx(0.0)
        assert times[LIMIT] >= 1.0 + 0.1 - 1e-9  # the window plus the safety margin
    assert upbit.of("market")[0].at == pytest.approx(0.0)
    assert stats.requests == {"market": 1, "candle": 35, "trade": 35, "ticker": 0, "orderbook": 0}
    assert stats.total_requests == 71
    assert stats.waited["trade"] > 0
    assert stats.waited["candle"] > 0
    assert stats.waited["market"] == 0
    assert stats.rate_limited == stats.retries == stats.failures == 0


async def test_pacing_without_a_limiter_would_be_caught_by_the_fake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Guards the test above: the fake does answer 429 to an eleventh request in one second.
    upbit = FakeUpbit()
    async with httpx.AsyncClient(transport=httpx.MockTransport(upbit)) as http:
        statuses = [(await http.get(f"{REST}/v1/ticker")).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    assert upbit.violations == 1


async def test_remaining_sec_zero_holds_that_group_for_the_next_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=7)
    upbit.add_script("trade", answer(200, [], **{"remaining-req": "group=trade; min=600; sec=0"}))
    async with upbit.client() as client:
        await client.get_json("/v1/trades/ticks", {"market": "KRW-BTC"})
        assert client.statistics().remaining["trade"] == RemainingReq("trade", 0, 600)
        await client.get_json("/v1/candles/minutes/1", {"market": "KRW-BTC"})
        await client.get_json("/v1/trades/ticks", {"market": "KRW-BTC"})
        stats = client.statistics()
    trade = [sent.at for sent in upbit.of("trade")]
    assert trade[1] - trade[0] >= 1.0 - 1e-9
    assert upbit.of("candle")[0].at == pytest.approx(trade[0])  # other groups are not held
    assert stats.held["trade"] == pytest.approx(1.0)
    assert stats.remaining["trade"] == RemainingReq("trade", 7, 600)


async def test_a_429_is_retried_after_retry_after_then_succeeds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("trade", too_many("2"), too_many("2"))
    async with upbit.client() as client:
        rows = await client.get_json("/v1/trades/ticks", {"market": "KRW-BTC"})
        stats = client.statistics()
    assert rows == []
    times = [sent.at for sent in upbit.of("trade")]
    assert len(times) == 3
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([2.0, 2.0])
    assert (stats.rate_limited, stats.retries, stats.failures) == (2, 2, 0)
    assert stats.held["trade"] == pytest.approx(4.0)


async def test_a_429_without_retry_after_backs_off_exponentially(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("candle", too_many(), too_many(), too_many())
    async with upbit.client(QuotationPolicy(backoff_base=0.5, backoff_factor=2.0)) as client:
        await client.get_json("/v1/candles/days", {"market": "KRW-BTC"})
    times = [sent.at for sent in upbit.of("candle")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.5, 1.0, 2.0])


async def test_retry_after_is_honoured_only_up_to_the_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("trade", too_many("1000"))
    async with upbit.client(QuotationPolicy(backoff_cap=60.0)) as client:
        await client.get_json("/v1/trades/ticks", {"market": "KRW-BTC"})
    first, second = (sent.at for sent in upbit.of("trade"))
    assert second - first == pytest.approx(60.0)


async def test_a_429_holds_the_whole_group_not_only_the_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("trade", too_many("3"))
    async with upbit.client() as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get_json, "/v1/trades/ticks", {"market": "KRW-BTC"})
        await trio.sleep(0.5)
        nursery.start_soon(client.get_json, "/v1/trades/ticks", {"market": "KRW-BTC"})
    times = [sent.at for sent in upbit.of("trade")]
    assert len(times) == 3
    assert min(times[1:]) >= 3.0 - 1e-9  # the newcomer waited for the backoff too


async def test_429s_beyond_the_retries_raise_rate_limited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("trade", *[too_many("1")] * 10)
    async with upbit.client(QuotationPolicy(max_retries=2)) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_json("/v1/trades/ticks", {"market": "KRW-BTC"})
        stats = client.statistics()
    assert info.value.status == 429
    assert info.value.retry_after == pytest.approx(2.0)  # the third backoff: 0.5 * 2**2
    assert "after 2 retries" in str(info.value)
    assert len(upbit.of("trade")) == 3
    assert (stats.rate_limited, stats.retries, stats.failures) == (3, 2, 1)


# ----------------------------------------------------------------------------------------------
# 418 blocks


async def test_a_418_raises_at_once_and_holds_every_later_request_until_it_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("trade", answer(418, error_body(418, "I'm a teapot"), **{"Retry-After": "30"}))
    async with upbit.client() as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_json("/v1/trades/ticks", {"market": "KRW-BTC"})
        banned_at = upbit.sent[0].at
        assert info.value.status == 418
        assert info.value.retry_after == 30.0
        blocked = client.statistics()
        assert blocked.blocked == 1
        assert blocked.blocked_until == pytest.approx(banned_at + 30.0)
        async with trio.open_nursery() as nursery:
            for path in ("/v1/candles/minutes/1", "/v1/market/all", "/v1/trades/ticks"):
                nursery.start_soon(client.get_json, path, {"market": "KRW-BTC"})
        after = client.statistics()
    assert len(upbit.sent) == 4
    assert all(sent.at >= banned_at + 30.0 - 1e-9 for sent in upbit.sent[1:])
    assert after.blocked_until is None
    assert after.held["candle"] == pytest.approx(30.0)
    assert after.failures == 1


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (error_body(418, "요청 제한 초과로 120초 동안 차단되었습니다."), {}, 120.0),
        (error_body(418, "blocked 5 minutes"), {"Retry-After": "60"}, 300.0),
        (b"<html>teapot</html>", {}, 45.0),
        (error_body(418, "I'm a teapot"), {}, 45.0),
    ],
)
async def test_the_block_time_comes_from_retry_after_the_body_or_the_default(
    autojump_clock: trio.testing.MockClock, body: Any, headers: dict[str, str], expected: float
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("*", answer(418, body, **headers))
    async with upbit.client(QuotationPolicy(block_default=45.0)) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_json("/v1/ticker", {"markets": "KRW-BTC"})
        await client.get_json("/v1/ticker", {"markets": "KRW-BTC"})
    assert info.value.retry_after == expected
    assert upbit.sent[1].at - upbit.sent[0].at == pytest.approx(expected)


async def test_a_block_can_make_later_requests_raise_instead_of_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("*", answer(418, None, **{"Retry-After": "30"}))
    async with upbit.client(QuotationPolicy(wait_out_blocks=False)) as client:
        with pytest.raises(RateLimitedError):
            await client.get_json("/v1/orderbook", {"markets": "KRW-BTC"})
        await trio.sleep(10)
        with pytest.raises(RateLimitedError) as info:
            await client.get_json("/v1/candles/days", {"market": "KRW-BTC"})
        assert info.value.retry_after == pytest.approx(20.0)
        assert "nothing was sent" in str(info.value)
        assert len(upbit.sent) == 1
        await trio.sleep(20)
        await client.get_json("/v1/candles/days", {"market": "KRW-BTC"})
    assert len(upbit.sent) == 2


# ----------------------------------------------------------------------------------------------
# Errors, timeouts, bodies


async def test_code_not_found_is_an_unknown_market() -> None:
    upbit = FakeUpbit(remaining_sec=5)
    async with upbit.client() as client:
        with pytest.raises(UnknownMarketError) as info:
            await client.get_json("/v1/trades/ticks", {"market": "KRW-NOPE", "count": 5})
    assert info.value.codes == ("KRW-NOPE",)
    assert "Code not found" in str(info.value)
    assert "/v1/trades/ticks?market=KRW-NOPE&count=5" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "name", "text"),
    [
        (
            400,
            error_body(400, "Type mismatch error. Check the parameters type!"),
            "400",
            "mismatch",
        ),
        (404, error_body(404, "Not Found"), "404", "Not Found"),
        (500, b"oops", "HTTP 500", "retry later"),
        (503, error_body("server_error", "maintenance"), "server_error", "maintenance"),
    ],
)
async def test_error_answers_become_server_errors(
    status: int, body: Any, name: str, text: str
) -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("*", answer(status, body))
    async with upbit.client() as client:
        with pytest.raises(ServerError) as info:
            await client.get_json("/v1/candles/days", {"market": "KRW-BTC"})
        assert client.statistics().failures == 1
    assert info.value.name == name
    assert text in str(info.value)
    assert f"HTTP {status}" in str(info.value)


async def test_a_body_that_is_not_json_is_a_protocol_error() -> None:
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("*", answer(200, b"<html>maintenance</html>"))
    async with upbit.client() as client:
        with pytest.raises(ProtocolError) as info:
            await client.get_json("/v1/ticker", {"markets": "KRW-BTC"})
    assert info.value.reason == "not_json"
    assert "<html>maintenance" in str(info.value)


async def test_every_request_is_bounded_by_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    http = httpx.AsyncClient(transport=httpx.MockTransport(silent))
    async with http, QuotationClient(REST, client=http, policy=QuotationPolicy(timeout=3)) as qc:
        started = trio.current_time()
        with pytest.raises(ConnectionFailedError, match="no answer within 3 s"):
            await qc.get_json("/v1/ticker", {"markets": "KRW-BTC"})
        assert trio.current_time() - started == pytest.approx(3.0)


async def test_network_failures_are_connection_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    async with http, QuotationClient(REST, client=http) as client:
        with pytest.raises(ConnectionFailedError, match="ConnectError: connection refused"):
            await client.get_json("/v1/market/all")


async def test_big_integers_stay_exact_and_no_origin_header_is_sent() -> None:
    big = 2**62 + 1
    upbit = FakeUpbit(remaining_sec=5)
    upbit.add_script("*", answer(200, [{"sequential_id": big, "huge": 2**70}]))
    async with upbit.client() as client:
        rows = await client.get_json("/v1/trades/ticks", {"market": "KRW-BTC", "cursor": big})
    assert rows == [{"sequential_id": big, "huge": 2**70}]
    request = upbit.sent[0].request
    assert request.url.params["cursor"] == str(big)
    assert "origin" not in request.headers
    assert request.headers["accept"] == "application/json"


async def test_an_unknown_path_is_refused_before_sending() -> None:
    upbit = FakeUpbit()
    async with upbit.client() as client:
        with pytest.raises(ValueError, match="not a quotation REST path"):
            await client.get_json("/v1/accounts")
    assert upbit.sent == []


async def test_an_owned_http_client_is_closed_with_the_quotation_client() -> None:
    client = QuotationClient()
    assert client.base_url == "https://api.upbit.com"
    async with client:
        pass
    assert client._http.is_closed
    http = httpx.AsyncClient()
    async with http:
        async with QuotationClient(REST + "/", client=http) as borrowed:
            assert borrowed.base_url == REST
        assert not http.is_closed  # the caller's client stays the caller's


async def test_statistics_are_a_frozen_snapshot(autojump_clock: trio.testing.MockClock) -> None:
    upbit = FakeUpbit()
    async with upbit.client() as client:
        before = client.statistics()
        await client.get_json("/v1/market/all")
        after = client.statistics()
    assert isinstance(before, QuotationStatistics)
    assert before.total_requests == 0
    assert after.requests["market"] == 1
    assert after.remaining["market"] == RemainingReq("market", 9, 600)
    assert before.blocked_until is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        after.rate_limited = 3  # type: ignore[misc]
