"""The listener: one TCP port for REST and both WebSockets, admission, restarts.

Each accepted TCP stream is read with h11 up to a request head. REST requests are answered on the
spot (keep-alive works), and so are the fault controls under ``/emulator/`` when they are on
(``emulator.control``; they bypass REST limits and ``fail_rest``). A WebSocket upgrade goes
through admission (forced rejections, the connect limit, the JWT on ``/private``) and is then
handed, with the bytes already read, to a :class:`~engine.testing.emulator.session.Session`.
Going down closes the listening socket, so connects are refused by the kernel until it is reopened
on the same port.
"""

from __future__ import annotations

import math
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
import trio

from engine.testing.config import EmulatorConfig
from engine.testing.emulator.auth import AuthResult, NonceLedger, check_bearer
from engine.testing.emulator.control import CONTROL_PREFIX, ControlAnswer
from engine.testing.emulator.history import TradeHistory
from engine.testing.emulator.http import HttpConnection, HttpRequest
from engine.testing.emulator.limits import ConnectGuard, RestGuard
from engine.testing.emulator.requests import ERROR_MESSAGES
from engine.testing.emulator.rest import ListingLike, answer_rest, rest_group
from engine.testing.emulator.transport import ServerStream
from engine.testing.introspection import EventKind, Refusal

__all__ = ("PRIVATE_PATH", "PUBLIC_PATH", "Server")

PUBLIC_PATH = "/websocket/v1"
PRIVATE_PATH = "/websocket/v1/private"
_HEAD_TIMEOUT = 30.0
#: Control parameters are a few short names; anything bigger is a mistake.
_MAX_CONTROL_BODY = 64 * 1024

SessionRunner = Callable[
    [str, tuple[str, int], ServerStream, AuthResult | None, list[tuple[bytes, bytes]]],
    Awaitable[None],
]
Recorder = Callable[[EventKind, int | None, str], None]
ControlHandler = Callable[[HttpRequest, bytes], Awaitable[ControlAnswer]]


def _error_body(name: str | int, message: str) -> bytes:
    return orjson.dumps({"error": {"name": name, "message": message}})


class _ForcedRejection:
    def __init__(self, status: int, count: int, until: float) -> None:
        self.status = status
        self.count = count
        self.until = until


class Server:
    def __init__(
        self,
        config: EmulatorConfig,
        catalog: Sequence[ListingLike],
        *,
        run_session: SessionRunner,
        record: Recorder,
        limits_enforced: Callable[[], bool],
        history: TradeHistory | None = None,
        control: ControlHandler | None = None,
    ) -> None:
        self.config = config
        self.port = config.port
        self._catalog = tuple(catalog)
        self._by_market = {listing.market: listing for listing in self._catalog}
        self._run_session = run_session
        self._record = record
        self._limits_enforced = limits_enforced
        self._guard = ConnectGuard(config.limits)
        self._rest_guard = RestGuard(config.limits)
        self._history = history
        self._control = control
        self._nonces = NonceLedger()
        self._forced: _ForcedRejection | None = None
        #: (status, group or None for every group) REST answers while set (Emulator.fail_rest).
        self.rest_failure: tuple[int, str | None] | None = None
        self._listeners: list[trio.SocketListener] = []
        self._reserved: socket.socket | None = None
        self._pending: set[trio.SocketStream] = set()
        self._accept_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self.accepted = 0
        self.refused = 0
        self.refusals: deque[Refusal] = deque(maxlen=config.history_limit)

    @property
    def listed(self) -> Mapping[str, ListingLike]:
        """The catalog by market code."""
        return self._by_market

    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    # -- listening ------------------------------------------------------------------------------

    def _bound_socket(self) -> socket.socket:
        family, _, _, _, address = socket.getaddrinfo(
            self.config.host or None, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            raise
        return sock

    async def listen(self, nursery: trio.Nursery) -> None:
        """Bind (the same port again after a restart) and start accepting."""
        self._nursery = nursery
        # Synchronous from releasing the reserved port to listening on it: no task can run in
        # between, so nothing of ours can take the port.
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        sock = self._bound_socket()
        sock.listen(128)
        sock.setblocking(False)
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        self._listeners = [listener]
        self.port = sock.getsockname()[1]
        scope = self._accept_scope = trio.CancelScope()
        nursery.start_soon(self._accept_loop, listener, scope)
        await trio.lowlevel.checkpoint()

    async def stop_listening(self) -> None:
        """Stop accepting; connects are refused until :meth:`listen`.

        The port stays reserved by a bound socket that does not listen: connects get RST, and no
        client socket can be given the port as its own ephemeral port (a TCP self-connect to a
        closed port in the ephemeral range would otherwise block the restart).
        """
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        for listener in self._listeners:
            listener.socket.close()
        self._listeners = []
        # A restart also kills connections still in their HTTP phase (REST keep-alive, upgrades
        # not yet answered); sessions are dropped by the emulator.
        for pending in list(self._pending):
            pending.socket.close()
        self._pending.clear()
        if self._reserved is None:
            self._reserved = self._bound_socket()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Release the reserved port, if any (the listeners close with their tasks)."""
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    async def _accept_loop(self, listener: trio.SocketListener, scope: trio.CancelScope) -> None:
        assert self._nursery is not None
        with scope:
            async with listener:  # closes the socket on cancellation too
                await self._accept_forever(listener)

    async def _accept_forever(self, listener: trio.SocketListener) -> None:
        assert self._nursery is not None
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return
            except OSError:
                # Out of file descriptors or similar: back off briefly, keep serving.
                await trio.sleep(0.05)
                continue
            self._nursery.start_soon(self._handle_tcp, stream)

    # -- forced rejections (fault injection) ------------------------------------------------------

    def reject_connects(self, status: int, count: int, block: float | None) -> None:
        until = trio.current_time() + block if block else float("-inf")
        self._forced = _ForcedRejection(status, 0 if block else count, until)

    def _forced_status(self, now: float) -> tuple[int, float] | None:
        forced = self._forced
        if forced is None:
            return None
        if now < forced.until:
            return forced.status, forced.until - now
        if forced.count > 0:
            forced.count -= 1
            return forced.status, 1.0
        self._forced = None
        return None

    # -- one TCP connection ---------------------------------------------------------------------

    async def _handle_tcp(self, stream: trio.SocketStream) -> None:
        self._pending.add(stream)
        try:
            host, port = stream.socket.getpeername()[:2]
            peer = (str(host), int(port))
            http = HttpConnection(stream)
            while True:
                with trio.move_on_after(_HEAD_TIMEOUT):
                    request = await http.next_request()
                    if request is None:
                        return
                    if request.is_websocket:
                        break
                    path = request.path
                    if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
                        if not await self._control_request(http, request):
                            return
                        continue
                    if not await self._rest(http, request, peer):
                        return
                    continue
                return  # no complete head in time
            await self._upgrade(http, request, peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._pending.discard(stream)
            await trio.aclose_forcefully(stream)

    async def _control_request(self, http: HttpConnection, request: HttpRequest) -> bool:
        if self._control is None:
            message = (
                "the fault controls are off; EmulatorConfig(fault_controls=True) turns them on "
                "(the upbit-engine emulator command has them on)"
            )
            return await http.respond(404, _error_body("not_found", message))
        body = await http.read_body(_MAX_CONTROL_BODY)
        if body is None:
            message = f"send a complete body of at most {_MAX_CONTROL_BODY} bytes"
            await http.respond(400, _error_body("bad_body", message), close=True)
            return False
        # A restart closes every connection still in its HTTP phase: not the one asking for it,
        # which must live to answer.
        self._pending.discard(http.stream)
        answer = await self._control(request, body)
        if not answer.close:
            self._pending.add(http.stream)
        return await http.respond(
            answer.status,
            orjson.dumps(answer.body),
            headers=list(answer.headers),
            close=answer.close,
        )

    async def _rest(
        self, http: HttpConnection, request: HttpRequest, peer: tuple[str, int]
    ) -> bool:
        per_minute = self.config.limits.rest_per_second * 60  # ``min`` is deprecated and fixed
        group = rest_group(request.path)
        now = trio.current_time()
        failure = self.rest_failure
        if failure is not None and failure[1] in (None, group):
            self._record("fault", None, f"REST {request.path} answered {failure[0]} (fail_rest)")
            body = _error_body(failure[0], "injected failure (Emulator.fail_rest)")
            return await http.respond(failure[0], body)
        if self._limits_enforced():
            verdict = self._rest_guard.admit(peer[0], group, now)
            if not verdict.allowed:
                wait = max(1, math.ceil(verdict.retry_after))
                message = "Too many API requests."
                if verdict.status == 418:
                    # Upbit names a block time in the 418 answer; its wording is unconfirmed.
                    message = f"Too many API requests. Blocked for {wait} seconds."
                headers = [
                    ("Retry-After", str(wait)),
                    ("Remaining-Req", f"group={group}; min={per_minute}; sec=0"),
                ]
                return await http.respond(
                    verdict.status, _error_body(verdict.status, message), headers=headers
                )
            remaining = verdict.remaining_second
        else:
            remaining = self._rest_guard.remaining(peer[0], group, now)
        answer = answer_rest(
            request.method,
            request.path,
            request.query,
            self._catalog,
            self._by_market,
            self._history,
            self.config.quirks,
        )
        header = f"group={answer.group}; min={per_minute}; sec={remaining}"
        return await http.respond(
            answer.status, orjson.dumps(answer.body), headers=[("Remaining-Req", header)]
        )

    async def _refuse(
        self,
        http: HttpConnection,
        request: HttpRequest,
        peer: tuple[str, int],
        status: int,
        *,
        retry_after: float = 0.0,
        detail: str = "",
    ) -> None:
        if status == 401:
            name, message = "INVALID_AUTH", ERROR_MESSAGES["INVALID_AUTH"]
        elif status == 418:
            name = "I'm a teapot"
            message = f"{ERROR_MESSAGES[name]} ({math.ceil(retry_after)} 초)"
        else:
            name, message = "Too Many Requests", ERROR_MESSAGES["Too Many Requests"]
        headers = []
        if status in (418, 429):
            headers.append(("Retry-After", str(max(1, math.ceil(retry_after)))))
            headers.append(("Remaining-Req", "group=websocket-connect; min=300; sec=0"))
        self.refused += 1
        reason = detail or name
        self.refusals.append(Refusal(trio.current_time(), peer, request.path, status, reason))
        self._record("refuse", None, f"{status} {reason} for {peer[0]}:{peer[1]}")
        await http.respond(status, _error_body(name, message), headers=headers, close=True)

    async def _upgrade(
        self, http: HttpConnection, request: HttpRequest, peer: tuple[str, int]
    ) -> None:
        config = self.config
        if request.path not in (PUBLIC_PATH, PRIVATE_PATH):
            await http.respond(404, _error_body(404, f"no WebSocket at {request.path}"), close=True)
            return
        now = trio.current_time()
        auth: AuthResult | None = None
        if request.path == PRIVATE_PATH:
            auth = check_bearer(
                request.headers.get("authorization"),
                config.access_keys,
                algorithms=config.jwt_algorithms,
                nonces=self._nonces if config.reject_reused_nonce else None,
            )
            if not auth.ok and config.auth_failure == "http_401":
                await self._refuse(http, request, peer, 401, detail=auth.error or "")
                return
        forced = self._forced_status(now)
        if forced is not None:
            status, wait = forced
            await self._refuse(
                http, request, peer, status, retry_after=wait, detail="fault injected"
            )
            return
        remaining = config.limits.connects_per_second
        if self._limits_enforced():
            key = auth.access_key if auth is not None and auth.access_key else peer[0]
            verdict = self._guard.admit(key, now, origin="origin" in request.headers)
            if not verdict.allowed:
                await self._refuse(
                    http, request, peer, verdict.status, retry_after=verdict.retry_after
                )
                return
            remaining = verdict.remaining_second
        self.accepted += 1
        self._pending.discard(http.stream)  # from here on the session owns it
        stream = ServerStream(
            http.stream,
            request.raw,
            buffer_limit=config.send_buffer_limit,
            ping_is_activity=config.ping_resets_idle,
            recent=config.recent_frames,
        )
        headers = [
            (b"Remaining-Req", f"group=websocket-connect; min=300; sec={remaining}".encode()),
            (b"Limit-By-IP", b"Yes"),
        ]
        await self._run_session(request.path, peer, stream, auth, headers)
