"""HTTP/1.1 on an accepted TCP stream, with h11: read request heads, write plain responses.

The dispatcher reads each request head itself so that REST and WebSocket share one port. For a
WebSocket upgrade it keeps the raw bytes of the request, which :class:`ServerStream` replays to
trio-websocket (wsproto parses the handshake again from them).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import attrs
import h11
import trio

__all__ = ("HttpConnection", "HttpRequest")

_MAX_HEAD = 64 * 1024


@attrs.frozen
class HttpRequest:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    #: Lower-case names; a repeated header keeps its last value.
    headers: dict[str, str]
    #: The bytes of this request as received (and anything that followed it so far).
    raw: bytes

    @property
    def is_websocket(self) -> bool:
        return self.headers.get("upgrade", "").lower() == "websocket"


class HttpConnection:
    """One client's HTTP/1.1 connection (keep-alive supported)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        self._raw = bytearray()

    async def next_request(self) -> HttpRequest | None:
        """The next request head, or None when the client closed or sent garbage."""
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                await self.respond(400, b"malformed HTTP request", close=True)
                return None
            if event is h11.NEED_DATA:
                if not await self._receive_more():
                    return None
                continue
            if isinstance(event, h11.Request):
                return self._request(event)
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
            # Data / EndOfMessage of a GET: nothing to do with them.

    async def _receive_more(self) -> bool:
        """Feed the next bytes from the client to h11; False when the client went away."""
        try:
            data = bytes(await self.stream.receive_some(65536))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        self._raw += data
        self._h11.receive_data(data)
        return True

    async def read_body(self, limit: int) -> bytes | None:
        """The body of the request just read (``b""`` if it has none), or None when the client
        went away, sent garbage or more than ``limit`` bytes."""
        conn = self._h11
        if conn.they_are_waiting_for_100_continue:
            # curl waits a second for this before sending a larger body.
            try:
                await self.stream.send_all(
                    conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                )
            except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
                return None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return None
            if event is h11.NEED_DATA:
                if not await self._receive_more():
                    return None
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    return None
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:  # ConnectionClosed or PAUSED: no complete body will come
                return None

    def _request(self, event: h11.Request) -> HttpRequest:
        target = event.target.decode("latin-1")
        parts = urlsplit(target)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers
        }
        return HttpRequest(
            method=event.method.decode("ascii", "replace"),
            target=target,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            raw=bytes(self._raw),
        )

    async def respond(
        self,
        status: int,
        body: bytes,
        *,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/json; charset=utf-8",
        close: bool = False,
    ) -> bool:
        """Send a complete response; True when the connection may carry another request."""
        conn = self._h11
        all_headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ]
        if close:
            all_headers.append(("Connection", "close"))
        try:
            pieces = [
                conn.send(h11.Response(status_code=status, headers=all_headers)),
                conn.send(h11.Data(data=body)),
                conn.send(h11.EndOfMessage()),
            ]
        except h11.LocalProtocolError:
            return False
        try:
            await self.stream.send_all(b"".join(piece or b"" for piece in pieces))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        if close or conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return False
        try:
            # Finish reading the request (a GET has no body) before the next cycle.
            while conn.their_state is h11.SEND_BODY:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data_in = bytes(await self.stream.receive_some(65536))
                    conn.receive_data(data_in)
            conn.start_next_cycle()
        except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        self._raw = bytearray(conn.trailing_data[0])
        return True
