"""A client for Upbit's quotation REST API that keeps within Upbit's limits on its own.

Theory of operation. Every request names a path; the path decides its rate-limit group
(:func:`~engine.rest.quotation_limits.group_for_path`). Before sending, a request waits, on Trio's
clock, for three things in turn:

1. the end of a 418 block, which holds *every* request of the client (or, with
   ``QuotationPolicy.wait_out_blocks=False``, makes it raise at once without sending);
2. the end of its group's hold: Upbit said ``Remaining-Req: ... sec=0`` (wait for the next
   second) or answered 429 (exponential backoff, honouring ``Retry-After`` up to a cap);
3. a slot in its group's sliding window (10 requests in any second, plus a safety margin), so
   the client never relies on Upbit to push back in the first place.

One client is one budget: the engine's backfill and a user's history calls share its limiters,
holds and block state when they share the client (Upbit counts per IP, so one client per process
is the right number). A 429 is retried a bounded number of times and then raised as
:class:`~engine.errors.RateLimitedError`; a 418 is raised at once. Every request is bounded by
``QuotationPolicy.timeout``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from types import TracebackType

import attrs
import httpx
import trio

from engine.core.ratelimit import DEFAULT_SAFETY_MARGIN, SlidingWindowLimiter
from engine.errors import ConnectionFailedError, ProtocolError, RateLimitedError
from engine.observability.operator_events import OperatorEvent, RateLimited
from engine.rest.http_get import get_within
from engine.rest.quotation_limits import (
    QUOTATION_GROUPS,
    RemainingReq,
    block_seconds,
    group_for_path,
    parse_http_date,
    parse_remaining_req,
    parse_retry_after,
)
from engine.rest.quotation_replies import error_for_status, parse_json_body

__all__ = ("UPBIT_REST_URL", "QuotationClient", "QuotationPolicy", "QuotationStatistics")

_log = logging.getLogger("engine.rest")

#: Upbit's REST root.
UPBIT_REST_URL = "https://api.upbit.com"

#: ``Remaining-Req: sec=0`` means the group's current second is spent; one second from the
#: answer is the latest the next one can start, whatever Upbit's second boundaries are.
_SPENT_SECOND_WAIT = 1.0
# No Origin header: Upbit puts requests carrying one in a 1-per-10-s group (docs/UPBIT.md).

_Params = Mapping[str, str | int]


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _non_negative_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an integer >= 0, got {value!r}")


@attrs.frozen
class QuotationPolicy:
    """How a :class:`QuotationClient` paces, retries and waits. The defaults follow Upbit's
    documented limits and its official SDK (429 retried with backoff, ``Retry-After`` honoured
    up to 60 s)."""

    #: Requests per second per group (Upbit: 10 for each quotation group, per IP).
    requests_per_second: int = attrs.field(default=10, validator=_non_negative_int)
    #: Seconds added to the one-second window: Upbit's clock sees our sends after network jitter.
    safety_margin: float = DEFAULT_SAFETY_MARGIN
    #: Bound on each HTTP request (not on the wait for a slot before it).
    timeout: float = attrs.field(default=10.0, validator=_positive)
    #: 429 answers retried per request before :class:`RateLimitedError` is raised.
    max_retries: int = attrs.field(default=4, validator=_non_negative_int)
    #: First wait after a 429 (unless ``Retry-After`` asks for more); times ``backoff_factor`` for
    #: every further retry.
    backoff_base: float = attrs.field(default=0.5, validator=_positive)
    backoff_factor: float = attrs.field(default=2.0, validator=_positive)
    #: The longest wait after a 429, whatever ``Retry-After`` asks for.
    backoff_cap: float = attrs.field(default=60.0, validator=_positive)
    #: A 418's block time when neither ``Retry-After`` nor the body states one readably.
    block_default: float = attrs.field(default=60.0, validator=_positive)
    #: After a 418: later requests wait for the block to end (True), or raise at once (False).
    wait_out_blocks: bool = True

    def __attrs_post_init__(self) -> None:
        if self.requests_per_second < 1:
            raise ValueError(f"requests_per_second must be >= 1, got {self.requests_per_second}")
        if not (math.isfinite(self.safety_margin) and self.safety_margin >= 0):
            raise ValueError(f"safety_margin must be >= 0 seconds, got {self.safety_margin!r}")
        if self.backoff_factor < 1:
            # A factor below 1 would retry ever sooner while Upbit keeps refusing.
            raise ValueError(f"backoff_factor must be >= 1, got {self.backoff_factor!r}")


@attrs.frozen
class QuotationStatistics:
    """A snapshot of one :class:`QuotationClient` (for ``metrics()``). Times are Trio's clock."""

    #: HTTP requests sent per group, retries included.
    requests: Mapping[str, int]
    #: 429 answers received.
    rate_limited: int
    #: 418 answers received.
    blocked: int
    #: Requests sent again after a 429.
    retries: int
    #: Requests that raised (errors, timeouts, rate limits), counted once each.
    failures: int
    #: Seconds requests waited for a slot in their group's sliding window, per group.
    waited: Mapping[str, float]
    #: Seconds requests waited because Upbit pushed back (sec=0, 429, 418), per group.
    held: Mapping[str, float]
    #: When the current 418 block ends, or ``None`` when the client is not blocked.
    blocked_until: float | None
    #: The last ``Remaining-Req`` header seen, per group it named.
    remaining: Mapping[str, RemainingReq]

    @property
    def total_requests(self) -> int:
        """HTTP requests sent, all groups together."""
        return sum(self.requests.values())


class QuotationClient:
    """Upbit's quotation REST API within its limits; see the module docstring.

    ``client`` lets the caller share a connection pool or plug in a transport
    (``httpx.MockTransport`` in tests); the caller then closes it. Without one, the client opens
    its own, closed by :meth:`aclose` or by leaving ``async with``.
    """

    def __init__(
        self,
        base_url: str = UPBIT_REST_URL,
        *,
        client: httpx.AsyncClient | None = None,
        policy: QuotationPolicy | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL such as {UPBIT_REST_URL!r}")
        self._base = base_url.rstrip("/")
        self._policy = policy if policy is not None else QuotationPolicy()
        self._owned = client is None
        self._http = client if client is not None else httpx.AsyncClient()
        window = ((self._policy.requests_per_second, 1.0),)
        margin = self._policy.safety_margin
        self._limiters = {
            group: SlidingWindowLimiter(window, safety_margin=margin) for group in QUOTATION_GROUPS
        }
        self._held_until = dict.fromkeys(QUOTATION_GROUPS, -math.inf)
        self._blocked_until = -math.inf
        self._requests = dict.fromkeys(QUOTATION_GROUPS, 0)
        self._waited = dict.fromkeys(QUOTATION_GROUPS, 0.0)
        self._held = dict.fromkeys(QUOTATION_GROUPS, 0.0)
        self._remaining: dict[str, RemainingReq] = {}
        self._rate_limited = 0
        self._blocked = 0
        self._retries = 0
        self._failures = 0
        #: Told of each 429 and 418 (the engine's journal logs them, rate-limited); without
        #: it, the client logs them itself on ``engine.rest``.
        self.on_event: Callable[[OperatorEvent], None] | None = None

    @property
    def base_url(self) -> str:
        """The REST root requests go to, without a trailing slash."""
        return self._base

    @property
    def policy(self) -> QuotationPolicy:
        """How this client paces, retries and waits."""
        return self._policy

    async def aclose(self) -> None:
        """Close the HTTP client if this object opened it."""
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> QuotationClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def get_json(self, path: str, params: _Params | None = None) -> object:
        """``GET path`` within the limits, and its JSON body (integers exact).

        Raises :class:`RateLimitedError` (429 after the retries, 418 at once),
        :class:`~engine.errors.UnknownMarketError` (404 "Code not found"),
        :class:`~engine.errors.ServerError` (other error statuses),
        :class:`~engine.errors.ConnectionFailedError` (timeout, network) and
        :class:`~engine.errors.ProtocolError` (a body that is not JSON).
        """
        group = group_for_path(path)
        url = f"{self._base}{path}"
        what = _request_text(url, params)
        attempt = 0
        try:
            while True:
                await self._wait_turn(group)
                response = await self._send(group, url, params, what)
                status = response.status_code
                if status == 200:
                    return parse_json_body(response.content, what=what)
                if status == 418:
                    raise self._on_blocked(response, what)
                if status != 429:
                    raise error_for_status(
                        status, response.reason_phrase, response.content, what=what, params=params
                    )
                self._on_rate_limited(group, response, attempt, what)
                attempt += 1
                self._retries += 1
        except Exception:
            # Cancellation is not a failure of the request, so only Exception counts.
            self._failures += 1
            raise

    async def _wait_turn(self, group: str) -> None:
        """Return once ``group`` may send now, with the send recorded in its window."""
        limiter = self._limiters[group]
        while True:
            now = trio.current_time()
            if self._blocked_until > now:
                if not self._policy.wait_out_blocks:
                    raise RateLimitedError(
                        418,
                        retry_after=self._blocked_until - now,
                        detail="this client is blocked by an earlier 418; nothing was sent",
                    )
                await self._hold(group, self._blocked_until)
            elif self._held_until[group] > now:
                await self._hold(group, self._held_until[group])
            elif limiter.try_acquire(now):
                # Recorded at the moment of sending (engine/runtime/pacing.py says why).
                return
            else:
                await trio.sleep(limiter.delay(now))
                self._waited[group] += trio.current_time() - now

    async def _hold(self, group: str, until: float) -> None:
        start = trio.current_time()
        await trio.sleep_until(until)
        self._held[group] += trio.current_time() - start

    async def _send(
        self, group: str, url: str, params: _Params | None, what: str
    ) -> httpx.Response:
        self._requests[group] += 1
        response = await get_within(
            self._http,
            url,
            seconds=self._policy.timeout,
            error=ConnectionFailedError,
            what=what,
            timeout_hint="QuotationPolicy.timeout",
            check_hint="base_url",
            params=params,
        )
        self._note_remaining(group, response)
        return response

    def _note_remaining(self, group: str, response: httpx.Response) -> None:
        remaining = parse_remaining_req(response.headers.get("Remaining-Req"))
        if remaining is None:
            return
        self._remaining[remaining.group] = remaining
        if remaining.second == 0:
            # The group the request was paced in waits: that is the budget we spend next.
            until = trio.current_time() + _SPENT_SECOND_WAIT
            self._held_until[group] = max(self._held_until[group], until)

    def _on_rate_limited(
        self, group: str, response: httpx.Response, attempt: int, what: str
    ) -> None:
        """Hold the group for the backoff after a 429, or raise once the retries are spent."""
        policy = self._policy
        self._rate_limited += 1
        asked = parse_retry_after(
            response.headers.get("Retry-After"),
            reference=parse_http_date(response.headers.get("Date")),
        )
        backoff = policy.backoff_base * policy.backoff_factor**attempt
        wait = min(policy.backoff_cap, max(backoff, asked or 0.0))
        # Every caller of the group waits, not only this one: the group's budget is spent.
        until = trio.current_time() + wait
        self._held_until[group] = max(self._held_until[group], until)
        if attempt >= policy.max_retries:
            raise RateLimitedError(
                429,
                retry_after=wait,
                detail=f"{what} was still refused after {policy.max_retries} retries",
                advice="the quotation groups allow 10 requests/s per IP, so another client on "
                "this IP may be using the budget: wait, then request less often",
            )
        self._tell(429, what, wait, "%s: 429, retry %d in %.3g s", attempt + 1)

    def _tell(self, status: int, what: str, wait: float, line: str, *args: object) -> None:
        if self.on_event is not None:
            self.on_event(
                RateLimited(
                    at=trio.current_time(),
                    source="rest",
                    status=status,
                    request=what,
                    retry_in=wait,
                )
            )
            return
        level = logging.ERROR if status == 418 else logging.WARNING
        _log.log(level, line, what, *args, wait)

    def _on_blocked(self, response: httpx.Response, what: str) -> RateLimitedError:
        """Record a 418 block for every later request, and the error to raise now."""
        self._blocked += 1
        asked = parse_retry_after(
            response.headers.get("Retry-After"),
            reference=parse_http_date(response.headers.get("Date")),
        )
        try:
            stated = block_seconds(parse_json_body(response.content, what=what))
        except ProtocolError:
            stated = None
        readable = [seconds for seconds in (asked, stated) if seconds is not None]
        seconds = max(readable) if readable else self._policy.block_default
        self._blocked_until = max(self._blocked_until, trio.current_time() + seconds)
        self._tell(418, what, seconds, "%s: 418, every request of this client waits %.3g s")
        return RateLimitedError(
            418,
            retry_after=seconds,
            detail=f"{what}; every later request of this client waits until the block ends",
        )

    def statistics(self) -> QuotationStatistics:
        """A frozen snapshot of the counters and the current block (call from Trio)."""
        now = trio.current_time()
        return QuotationStatistics(
            requests=dict(self._requests),
            rate_limited=self._rate_limited,
            blocked=self._blocked,
            retries=self._retries,
            failures=self._failures,
            waited=dict(self._waited),
            held=dict(self._held),
            blocked_until=self._blocked_until if self._blocked_until > now else None,
            remaining=dict(self._remaining),
        )

    def __repr__(self) -> str:
        return f"<QuotationClient {self._base} requests={sum(self._requests.values())}>"


def _request_text(url: str, params: _Params | None) -> str:
    """``GET url?query`` for messages and logs, a long list of codes named by its count."""
    if not params:
        return f"GET {url}"
    shown: dict[str, str] = {}
    for name, value in httpx.QueryParams(params).multi_items():
        codes = value.split(",")
        shown[name] = f"<{len(codes)} codes>" if len(codes) > 3 else value
    return f"GET {url}?" + "&".join(f"{name}={value}" for name, value in shown.items())
