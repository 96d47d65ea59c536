"""A client of the engine's debug channel (``upbit-engine inspect``): connect to ``unix:PATH`` or
``127.0.0.1:PORT``, send a request line, read JSON lines."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Final

import orjson
import trio

from engine.debug_address import DebugAddress, parse_debug_address

__all__ = ("DebugClient", "DebugClientError", "open_debug_client")

#: Seconds a reply may take before the client gives up on the engine.
REPLY_TIMEOUT: Final = 10.0
_MAX_LINE: Final = 64 * 1024 * 1024


class DebugClientError(Exception):
    """The channel could not be reached, or answered with an error."""


class DebugClient:
    """One connection to a debug channel."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._pending = bytearray()

    async def send(self, line: str) -> None:
        await self._stream.send_all(line.encode() + b"\n")

    async def read(self) -> dict[str, Any] | None:
        """The next JSON line, or ``None`` when the engine closed the connection."""
        while True:
            end = self._pending.find(b"\n")
            if end >= 0:
                line = bytes(self._pending[:end])
                del self._pending[: end + 1]
                obj = orjson.loads(line)
                if not isinstance(obj, dict):
                    raise DebugClientError(f"unexpected reply {line[:80]!r}")
                return obj
            if len(self._pending) > _MAX_LINE:
                raise DebugClientError("a reply line is too long")
            data = await self._stream.receive_some(65536)
            if not data:
                return None
            self._pending.extend(data)

    async def request(self, line: str) -> dict[str, Any]:
        """Send one request and return its reply; ``DebugClientError`` if it failed."""
        await self.send(line)
        with trio.move_on_after(REPLY_TIMEOUT) as scope:
            reply = await self.read()
        if scope.cancelled_caught:
            raise DebugClientError(f"no reply to {line!r} within {REPLY_TIMEOUT:g} s")
        if reply is None:
            raise DebugClientError("the engine closed the debug connection")
        if not reply.get("ok"):
            raise DebugClientError(str(reply.get("error", reply)))
        return reply

    async def follow(self, recent: int = 20) -> AsyncGenerator[dict[str, Any], None]:
        """``events follow``: the recent events, then each live one, as event objects; ends
        when the engine stops or closes the connection."""
        reply = await self.request(f"events {recent} follow")
        events = reply.get("events")
        for event in events if isinstance(events, list) else ():
            yield event
        while (line := await self.read()) is not None:
            event = line.get("event")
            if isinstance(event, dict):
                yield event
            elif "end" in line:
                return


async def open_debug_client(address: str | DebugAddress) -> tuple[DebugClient, trio.abc.Stream]:
    """Connect to ``address``; ``DebugClientError`` saying why not."""
    where = address if isinstance(address, DebugAddress) else parse_debug_address(address)
    try:
        if where.kind == "unix":
            stream: trio.abc.Stream = await trio.open_unix_socket(where.path)
        else:
            stream = await trio.open_tcp_stream(where.host, where.port)
    except OSError as exc:
        raise DebugClientError(
            f"cannot reach the debug channel at {where} ({exc.strerror or exc}); is the engine "
            "running with open_engine(debug=...) or watch --debug?"
        ) from None
    return DebugClient(stream), stream
