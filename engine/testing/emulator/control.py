"""Fault controls over HTTP, on the REST port (``EmulatorConfig.fault_controls``).

``POST /emulator/<action>`` applies a fault through the :class:`Emulator` method it names, so any
client can be broken from outside Python (``curl -d conn=1 http://127.0.0.1:PORT/emulator/drop``);
``GET /emulator/connections`` and ``GET /emulator/statistics`` report as JSON; ``GET /emulator``
lists the endpoints. Parameters: see ``control_params``. An action is answered once it is applied
(a drop once the connections are closed, a restart once the server is down, not after the
downtime); a bad parameter gets a 400 whose message says what to fix.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol, TypeVar

import attrs
import trio

from engine.testing.emulator.control_params import BadParameter, Params
from engine.testing.emulator.http import HttpRequest
from engine.testing.emulator.rest import REST_GROUPS, ListingLike
from engine.testing.emulator.session import MALFORMED_KINDS, MalformedKind
from engine.testing.faults import DropHow
from engine.testing.introspection import ConnectionInfo, EmulatorStatistics

__all__ = ("CONTROL_PREFIX", "Control", "ControlAnswer", "ControlHost", "connection_json")

#: Every control lives under this path; nothing of Upbit's does.
CONTROL_PREFIX = "/emulator"

T = TypeVar("T")

_DROP_HOWS: tuple[DropHow, ...] = ("abort", "reset", "close1000", "close1001")
_CONN = "the id of an open connection, a whole number >= 1 (GET /emulator/connections lists them)"
_SECONDS = "a number of seconds"


class ControlHost(Protocol):
    """What the controls need of the emulator (``Emulator`` has it)."""

    @property
    def catalog(self) -> Sequence[ListingLike]: ...
    @property
    def latency(self) -> float: ...
    @property
    def limits_enforced(self) -> bool: ...
    def connections(self, *, open_only: bool = ...) -> tuple[ConnectionInfo, ...]: ...
    def statistics(self) -> EmulatorStatistics: ...
    async def drop(self, conn_id: int | None = ..., *, how: DropHow = ...) -> None: ...
    async def restart(
        self,
        *,
        downtime: float = ...,
        how: DropHow = ...,
        task_status: trio.TaskStatus[None] = ...,
    ) -> None: ...
    def stall(self, conn_id: int, *, duration: float | None = ...) -> None: ...
    def unstall(self, conn_id: int) -> None: ...
    def inject_error(
        self, conn_id: int, name: str = ..., message: str | None = ..., *, close: bool = ...
    ) -> None: ...
    def inject_malformed(self, conn_id: int, kind: MalformedKind = ...) -> None: ...
    def set_latency(self, seconds: float, conn_id: int | None = ...) -> None: ...
    def reject_connects(
        self, status: Literal[429, 418] = ..., *, count: int = ..., block: float | None = ...
    ) -> None: ...
    def fail_rest(self, status: int | None = ..., *, group: str | None = ...) -> None: ...
    def set_limits(self, enforce: bool) -> None: ...
    def set_rate(self, code: str, per_second: float) -> None: ...


@attrs.frozen
class ControlAnswer:
    status: int
    body: object
    headers: tuple[tuple[str, str], ...] = ()
    #: Close the HTTP connection after answering (a restart: the server is down).
    close: bool = False


def _error(
    status: int, name: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> ControlAnswer:
    return ControlAnswer(status, {"error": {"name": name, "message": message}}, headers)


def _pick(choices: Sequence[T], raw: str | None, default: T) -> T:
    """``raw`` as the member of ``choices`` it equals (the caller checked it is one)."""
    return next((choice for choice in choices if choice == raw), default)


def connection_json(info: ConnectionInfo) -> dict[str, object]:
    """A connection as ``GET /emulator/connections`` shows it: ``ConnectionInfo``'s fields, with
    counts instead of the requests and frames themselves."""
    return {
        "conn_id": info.conn_id,
        "open": info.open,
        "path": info.path,
        "peer": f"{info.peer[0]}:{info.peer[1]}",
        "access_key": info.access_key,
        "format": info.format,
        "subscriptions": [entry.as_json() for entry in info.subscriptions],
        "requests": len(info.requests),
        "frames_sent": info.frames_sent,
        "frames_dropped": info.frames_dropped,
        "pings_received": info.pings_received,
        "opened_at": info.opened_at,
        "closed_at": info.closed_at,
        "close_reason": info.close_reason,
        "stalled": info.stalled,
        "status_stream": info.status_stream,
    }


_Handler = Callable[["Control", Params], Awaitable[dict[str, object]]]


@attrs.frozen
class _Endpoint:
    method: Literal["GET", "POST"]
    params: str
    does: str
    handler: _Handler


class Control:
    """Answers the requests under :data:`CONTROL_PREFIX` for one emulator."""

    def __init__(self, host: ControlHost, nursery: trio.Nursery) -> None:
        self._host = host
        # Restarts run here: they outlive the request that asked for them.
        self._nursery = nursery

    # -- dispatch -------------------------------------------------------------------------------

    async def answer(self, request: HttpRequest, body: bytes) -> ControlAnswer:
        name = request.path.removeprefix(CONTROL_PREFIX).strip("/")
        if not name:
            if request.method != "GET":
                return _error(405, "method_not_allowed", "use GET", headers=(("Allow", "GET"),))
            return ControlAnswer(200, {"endpoints": self.index()})
        endpoint = _ENDPOINTS.get(name)
        if endpoint is None:
            known = ", ".join(_ENDPOINTS)
            return _error(404, "not_found", f"no control {request.path}; there are: {known}")
        if request.method != endpoint.method:
            return _error(
                405,
                "method_not_allowed",
                f"use {endpoint.method} for {request.path}",
                headers=(("Allow", endpoint.method),),
            )
        try:
            params = Params(request.query, body, request.headers.get("content-type", ""))
            result = await endpoint.handler(self, params)
        except BadParameter as exc:
            return _error(400, "bad_parameter", str(exc))
        except (KeyError, ValueError) as exc:
            # The emulator's own checks (a connection that closed meanwhile, a replayed market).
            message = exc.args[0] if exc.args else repr(exc)
            return _error(400, "bad_parameter", str(message))
        if endpoint.method == "GET":
            return ControlAnswer(200, result)
        return ControlAnswer(200, {"ok": True, "action": name, **result}, close=name == "restart")

    def index(self) -> list[dict[str, str]]:
        return [
            {
                "method": endpoint.method,
                "path": f"{CONTROL_PREFIX}/{name}",
                "params": endpoint.params,
                "does": endpoint.does,
            }
            for name, endpoint in _ENDPOINTS.items()
        ]

    def _open_ids(self) -> list[int]:
        return [info.conn_id for info in self._host.connections(open_only=True)]

    def _conn(self, params: Params) -> int | None:
        """The ``conn`` parameter, checked to name an open connection (None if absent)."""
        conn = params.integer("conn", _CONN, at_least=1)
        if conn is not None and conn not in (open_ids := self._open_ids()):
            raise BadParameter(f"conn {conn} is not an open connection; open now: {open_ids}")
        return conn

    def _needed_conn(self, params: Params) -> int:
        conn = self._conn(params)
        if conn is None:
            raise BadParameter(f"conn is required: {_CONN}; open now: {self._open_ids()}")
        return conn

    # -- actions --------------------------------------------------------------------------------

    def _how(self, params: Params) -> DropHow:
        raw = params.word("how", "a way to drop", _DROP_HOWS)
        return _pick(_DROP_HOWS, raw, "abort")

    async def _drop(self, params: Params) -> dict[str, object]:
        params.only("conn", "how")
        conn = self._conn(params)
        how = self._how(params)
        dropped = self._open_ids() if conn is None else [conn]
        await self._host.drop(conn, how=how)
        return {"dropped": dropped, "how": how}

    async def _restart(self, params: Params) -> dict[str, object]:
        params.only("downtime", "how")
        downtime = params.number("downtime", f"{_SECONDS} >= 0", at_least=0.0)
        downtime = 1.0 if downtime is None else downtime
        how = self._how(params)
        restart = functools.partial(self._host.restart, downtime=downtime, how=how)
        await self._nursery.start(restart)
        return {"downtime": downtime, "how": how}

    async def _stall(self, params: Params) -> dict[str, object]:
        params.only("conn", "duration")
        conn = self._needed_conn(params)
        duration = params.number(
            "duration", f"{_SECONDS} > 0 (or none: until /emulator/unstall)", above=0.0
        )
        self._host.stall(conn, duration=duration)
        return {"conn": conn, "duration": duration}

    async def _unstall(self, params: Params) -> dict[str, object]:
        params.only("conn")
        conn = self._needed_conn(params)
        self._host.unstall(conn)
        return {"conn": conn}

    async def _inject_error(self, params: Params) -> dict[str, object]:
        params.only("conn", "name", "message", "close")
        conn = self._needed_conn(params)
        name = params.word("name", "an error name such as INVALID_PARAM", max_length=100)
        name = name or "INVALID_PARAM"
        message = params.word("message", "a text of at most 500 characters", max_length=500)
        close = params.flag("close")
        close = True if close is None else close
        self._host.inject_error(conn, name, message, close=close)
        return {"conn": conn, "name": name, "message": message, "close": close}

    async def _inject_malformed(self, params: Params) -> dict[str, object]:
        params.only("conn", "kind")
        conn = self._needed_conn(params)
        raw = params.word("kind", "a kind of malformed frame", MALFORMED_KINDS)
        kind = _pick(MALFORMED_KINDS, raw, "truncated_json")
        self._host.inject_malformed(conn, kind)
        return {"conn": conn, "kind": kind}

    async def _latency(self, params: Params) -> dict[str, object]:
        params.only("seconds", "conn")
        hint = f"{_SECONDS} >= 0"
        seconds = params.need(params.number("seconds", hint, at_least=0.0), "seconds", hint)
        conn = self._conn(params)
        self._host.set_latency(seconds, conn)
        return {"seconds": seconds, "conn": conn}

    async def _reject_connects(self, params: Params) -> dict[str, object]:
        params.only("status", "count", "block")
        raw_status = params.integer("status", "429 or 418")
        if raw_status not in (None, 429, 418):
            raise BadParameter(f"status must be 429 or 418, got {raw_status}")
        status: Literal[429, 418] = 418 if raw_status == 418 else 429
        count = params.integer("count", "a whole number >= 1", at_least=1)
        count = 1 if count is None else count
        block = params.number("block", f"{_SECONDS} > 0 (or none: refuse count upgrades)", above=0)
        self._host.reject_connects(status, count=count, block=block)
        return {"status": status, "count": count, "block": block}

    async def _fail_rest(self, params: Params) -> dict[str, object]:
        params.only("status", "group")
        hint = "an HTTP error status 400-599, or none to end the failure"
        status: int | None = None
        if not params.is_none("status"):
            status = params.integer("status", hint, at_least=400, at_most=599) or 500
        group = params.word("group", "a REST group", REST_GROUPS)
        self._host.fail_rest(status, group=group)
        return {"status": status, "group": group}

    async def _limits(self, params: Params) -> dict[str, object]:
        params.only("enforce")
        enforce = params.need(params.flag("enforce"), "enforce", "true or false")
        self._host.set_limits(enforce)
        return {"enforce": enforce}

    async def _rate(self, params: Params) -> dict[str, object]:
        params.only("code", "per_second")
        hint = "a pair the emulator lists, such as KRW-BTC (GET /v1/market/all lists them)"
        code = params.need(params.word("code", hint, max_length=40), "code", hint)
        if code not in {listing.market for listing in self._host.catalog}:
            raise BadParameter(f"code must be {hint}, got {code!r}")
        rate_hint = "trades per second >= 0 (0 silences the pair)"
        per_second = params.need(
            params.number("per_second", rate_hint, at_least=0.0), "per_second", rate_hint
        )
        self._host.set_rate(code, per_second)
        return {"code": code, "per_second": per_second}

    # -- reports --------------------------------------------------------------------------------

    async def _connections(self, params: Params) -> dict[str, object]:
        params.only("open_only")
        open_only = bool(params.flag("open_only"))
        infos = self._host.connections(open_only=open_only)
        return {"connections": [connection_json(info) for info in infos]}

    async def _statistics(self, params: Params) -> dict[str, object]:
        params.only()
        stats = attrs.asdict(self._host.statistics())
        host = self._host
        return {**stats, "limits_enforced": host.limits_enforced, "latency": host.latency}


_DROP_HOW = "how (abort, reset, close1000, close1001; default abort)"
#: The controls, in the order ``GET /emulator`` lists them.
_ENDPOINTS: dict[str, _Endpoint] = {
    "drop": _Endpoint(
        "POST",
        f"conn (default: every open connection), {_DROP_HOW}",
        "drop connections; answers once they are closed",
        Control._drop,
    ),
    "restart": _Endpoint(
        "POST",
        f"downtime (seconds >= 0, default 1), {_DROP_HOW}",
        "stop listening, drop every connection, listen again after downtime; answers "
        "once the server is down",
        Control._restart,
    ),
    "stall": _Endpoint(
        "POST",
        "conn (required), duration (seconds > 0; default: until /emulator/unstall)",
        "send nothing, answer no pings, read no requests",
        Control._stall,
    ),
    "unstall": _Endpoint(
        "POST", "conn (required)", "resume a stalled connection", Control._unstall
    ),
    "error": _Endpoint(
        "POST",
        "conn (required), name (default INVALID_PARAM), message, close (default true)",
        "send an error frame (then close 1000, unless close=false)",
        Control._inject_error,
    ),
    "malformed": _Endpoint(
        "POST",
        f"conn (required), kind ({', '.join(MALFORMED_KINDS)}; default truncated_json)",
        "send an undecodable frame",
        Control._inject_malformed,
    ),
    "latency": _Endpoint(
        "POST",
        "seconds (required, >= 0), conn (default: every connection, future ones too)",
        "delay every frame sent",
        Control._latency,
    ),
    "reject-connects": _Endpoint(
        "POST",
        "status (429 or 418, default 429), count (>= 1, default 1), block (seconds > 0)",
        "refuse the next count upgrades, or every upgrade for block seconds",
        Control._reject_connects,
    ),
    "fail-rest": _Endpoint(
        "POST",
        f"status (400-599, default 500; none ends it), group ({', '.join(REST_GROUPS)}; "
        "default every group)",
        "answer REST requests with an error status",
        Control._fail_rest,
    ),
    "limits": _Endpoint(
        "POST",
        "enforce (true or false, required)",
        "enforce or relax rate limits",
        Control._limits,
    ),
    "rate": _Endpoint(
        "POST",
        "code (a listed pair, required), per_second (>= 0, required; 0 silences it)",
        "set a pair's trades per second",
        Control._rate,
    ),
    "connections": _Endpoint(
        "GET",
        "open_only (true or false, default false)",
        "the open connections and the newest closed ones",
        Control._connections,
    ),
    "statistics": _Endpoint(
        "GET", "none", "counters since start, limits and latency", Control._statistics
    ),
}
