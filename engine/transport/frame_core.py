"""The sans-I/O heart of the ``websockets`` transport: bytes in, messages and bytes out.

Theory of operation
-------------------

websockets' :class:`~websockets.client.ClientProtocol` is the protocol authority here: it writes
the upgrade request, checks the response, answers pings, runs the close handshake, enforces the
message-size limit and fails the connection (close 1002/1007/1009/1011) on anything malformed.
Its frame parser is a chain of Python generators, though, and costs about as much per frame as
the whole rest of a receive loop. So data frames take a **fast path** around it:

- The bytes from the socket are split into frames here, by reading each frame header. A frame
  that is *final, unmasked, text or binary, within the size limit, and not part of a fragmented
  message* is sliced out and queued as a message directly (text is decoded and checked as UTF-8,
  which websockets leaves to its caller anyway).
- Every other frame (control frames, fragments, anything odd) is handed to the protocol
  **whole**, one complete frame at a time, so the protocol's own buffer is always empty between
  frames and the two paths can alternate without either losing its place. A header the protocol
  rejects on sight (masked frame, unknown opcode, length over the limit) is handed over at once
  with everything after it, because the protocol fails the connection there and discards the
  rest.
- Once the protocol has left the OPEN state (close received or sent, or failed), everything goes
  to it unsplit: it only discards data from then on.

The fast path accepts a strict subset of what the protocol accepts and produces the same
messages, so switching it off (``fast_path=False``, used by the benchmark) changes speed only.

During the opening handshake only the bytes up to the end of the HTTP head are fed to the
protocol; whatever follows in the same read is already WebSocket frames and goes through the
splitter like any later read.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState, InvalidURI
from websockets.exceptions import ProtocolError as WsProtocolError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ("WsClientCore",)

_HEAD_END = b"\r\n\r\n"
# The opcodes RFC 6455 defines; the protocol rejects any other at the header.
_KNOWN_OPCODES = frozenset(int(op) for op in Opcode)
# First header byte of a final, unextended text / binary frame: the only shapes the fast path takes.
_FINAL_TEXT = 0x81
_FINAL_BINARY = 0x82


class WsClientCore:
    """One client connection's protocol state, without any I/O.

    Feed it what the socket delivered (:meth:`receive_handshake_data` until
    :attr:`handshake_done`, then :meth:`receive_data` / :meth:`receive_eof`), take complete
    messages from :attr:`messages`, and write :meth:`data_to_send` to the socket whenever
    :attr:`output_pending` is set.
    """

    __slots__ = (
        "_acked",
        "_fast_path",
        "_fragment_is_text",
        "_fragments",
        "_head_tail",
        "_max_size",
        "_pending",
        "_ping_ids",
        "_pings",
        "_protocol",
        "_receiving_eof",
        "handshake_done",
        "messages",
        "output_pending",
    )

    def __init__(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        max_message_size: int,
        fast_path: bool = True,
    ) -> None:
        try:
            uri = parse_uri(url)
        except InvalidURI as exc:
            raise ValueError(f"not a usable WebSocket URL: {exc}") from None
        protocol = ClientProtocol(uri, max_size=max_message_size)
        request = protocol.connect()
        for name, value in headers:
            request.headers[name] = value
        protocol.send_request(request)
        self._protocol = protocol
        self._max_size = max_message_size
        self._fast_path = fast_path
        #: Complete messages in arrival order: ``bytes`` for binary frames, ``str`` for text.
        self.messages: deque[bytes | str] = deque()
        #: Whether :meth:`data_to_send` has something (the upgrade request is queued already).
        self.output_pending = True
        #: True once the upgrade succeeded or failed (see :attr:`handshake_error`).
        self.handshake_done = False
        # The last bytes of the HTTP head seen so far, to find its end; None once found.
        self._head_tail: bytes | None = b""
        self._pending = b""  # an incomplete frame waiting for the rest of its bytes
        self._fragments: list[bytes] | None = None
        self._fragment_is_text = False
        self._receiving_eof = False
        # Deterministic ping payloads: a counter, so runs are reproducible.
        self._ping_ids = itertools.count()
        self._pings: dict[bytes, int] = {}
        self._acked = -1

    # -- opening handshake ---------------------------------------------------------------------

    @property
    def handshake_error(self) -> Exception | None:
        """Why the upgrade failed (websockets' exception), or ``None``."""
        return self._protocol.handshake_exc

    def receive_handshake_data(self, received: bytes | bytearray) -> None:
        """Feed bytes that arrived before :attr:`handshake_done`."""
        data = bytes(received) if isinstance(received, bytearray) else received
        protocol = self._protocol
        if self._head_tail is None:
            # Past the head of a refusal: its body, which the protocol reads to build the error.
            protocol.receive_data(data)
            self._settle_handshake()
            return
        scanned = self._head_tail + data
        end = scanned.find(_HEAD_END)
        if end < 0:
            # Still inside the HTTP head: the protocol takes it all.
            self._head_tail = scanned[-3:]
            protocol.receive_data(data)
            self._settle_handshake()
            return
        cut = end + len(_HEAD_END) - (len(scanned) - len(data))
        protocol.receive_data(data[:cut])
        self._head_tail = None
        if protocol.state is State.OPEN:
            protocol.events_received()  # the 101 response: nothing in it is needed
            self.handshake_done = True
            if cut < len(data):
                self.receive_data(data[cut:])
            return
        # A refusal (its body may follow) or a malformed answer: the protocol reads the rest.
        if cut < len(data):
            protocol.receive_data(data[cut:])
        self._settle_handshake()

    def receive_handshake_eof(self) -> None:
        """The peer closed the socket during the upgrade."""
        self._protocol.receive_eof()
        self._settle_handshake()

    def _settle_handshake(self) -> None:
        if self._protocol.handshake_exc is not None:
            self.handshake_done = True

    # -- receiving -----------------------------------------------------------------------------

    def receive_data(self, received: bytes | bytearray) -> None:
        """Feed bytes from the socket; complete messages are appended to :attr:`messages`."""
        if self._receiving_eof:
            return  # a reader that raced with a local close: nothing more is accepted
        # Messages are sliced out of this, and must be bytes (a TLS stream may give bytearray).
        data = bytes(received) if isinstance(received, bytearray) else received
        if self._pending:
            data = self._pending + data
            self._pending = b""
        protocol = self._protocol
        if not self._fast_path or protocol.state is not State.OPEN:
            protocol.receive_data(data)
            self._take_events()
            return
        append = self.messages.append
        final_binary, final_text = _FINAL_BINARY, _FINAL_TEXT
        limit = self._max_size
        # Inside a fragmented message no frame is fast (the protocol checks continuations).
        fast_limit = limit if self._fragments is None else -1
        size = len(data)
        pos = 0
        # The hot loop: one iteration per frame, locals only (see the module docstring).
        while pos + 2 <= size:
            length = data[pos + 1]
            if length == 126:  # most Upbit frames: 126 to 65535 bytes
                start = pos + 4
                if start > size:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
            elif length < 126:
                start = pos + 2
            elif length == 127:
                start = pos + 10
                if start > size:
                    break
                length = int.from_bytes(data[pos + 2 : start], "big")
            else:
                # The mask bit: a server must never mask, the protocol fails on sight.
                self._hand_over_rest(data, pos)
                return
            end = start + length
            if length <= fast_limit:
                first = data[pos]
                if first == final_binary:
                    if end > size:
                        break
                    append(data[start:end])
                    pos = end
                    continue
                if first == final_text:
                    if end > size:
                        break
                    try:
                        append(data[start:end].decode())
                    except UnicodeDecodeError as exc:
                        self._fail_invalid_text(exc)
                        return
                    pos = end
                    continue
            # Not a plain data frame: the protocol's, whole.
            if length > limit or (data[pos] & 0x0F) not in _KNOWN_OPCODES:
                self._hand_over_rest(data, pos)
                return
            if end > size:
                break
            protocol.receive_data(data[pos:end])
            self._take_events()
            if not self.is_open:
                if end < size:
                    protocol.receive_data(data[end:])
                return
            fast_limit = limit if self._fragments is None else -1
            pos = end
        if pos < size:
            self._pending = data[pos:]

    def receive_eof(self) -> None:
        """The socket ended (or broke). Idempotent."""
        if self._receiving_eof:
            return
        self._receiving_eof = True
        protocol = self._protocol
        if self._pending:
            protocol.receive_data(self._pending)  # an incomplete frame: the protocol will say so
            self._pending = b""
        protocol.receive_eof()
        protocol.events_received()
        self.output_pending = True

    def _hand_over_rest(self, data: bytes, pos: int) -> None:
        self._protocol.receive_data(data[pos:])
        self._take_events()

    def _take_events(self) -> None:
        self.output_pending = True  # pongs, close echoes and failures all queue output
        for event in self._protocol.events_received():
            if not isinstance(event, Frame):
                continue  # the handshake response, consumed before any frame
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if event.fin:
                    if not self._deliver(opcode is Opcode.TEXT, bytes(event.data)):
                        return
                else:
                    self._fragments = [bytes(event.data)]
                    self._fragment_is_text = opcode is Opcode.TEXT
            elif opcode is Opcode.CONT:
                # The protocol rejects a continuation without a start, so fragments exist here.
                fragments = self._fragments
                assert fragments is not None
                fragments.append(bytes(event.data))
                if event.fin:
                    self._fragments = None
                    if not self._deliver(self._fragment_is_text, b"".join(fragments)):
                        return
            elif opcode is Opcode.PONG:
                self._on_pong(bytes(event.data))
            # PING: the protocol queued the pong. CLOSE: it recorded the frame and echoed it.

    def _deliver(self, text: bool, payload: bytes) -> bool:
        if not text:
            self.messages.append(payload)
            return True
        try:
            self.messages.append(payload.decode())
        except UnicodeDecodeError as exc:
            self._fail_invalid_text(exc)
            return False
        return True

    def _fail_invalid_text(self, exc: UnicodeDecodeError) -> None:
        # RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection with 1007.
        self._protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
        self.output_pending = True

    # -- sending -------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket, in order; clears :attr:`output_pending`."""
        self.output_pending = False
        # SEND_EOF (b"") is websockets' cue to half-close; the transport closes the whole socket
        # once the connection is over, so joining it away loses nothing.
        return b"".join(self._protocol.data_to_send())

    def send_text(self, text: str) -> bool:
        """Queue a text frame; ``False`` when the connection is no longer open."""
        try:
            self._protocol.send_text(text.encode())
        except InvalidState:
            return False
        self.output_pending = True
        return True

    def send_ping(self) -> int | None:
        """Queue a ping and return its id, or ``None`` when the connection is no longer open."""
        ping_id = next(self._ping_ids)
        payload = ping_id.to_bytes(8, "big")
        try:
            self._protocol.send_ping(payload)
        except InvalidState:
            return None
        self._pings[payload] = ping_id
        self.output_pending = True
        return ping_id

    def pong_received(self, ping_id: int) -> bool:
        """Whether the ping ``ping_id`` (or a later one) has been answered."""
        return self._acked >= ping_id

    def forget_ping(self, ping_id: int) -> None:
        """Stop tracking a ping whose caller gave up waiting."""
        self._pings.pop(ping_id.to_bytes(8, "big"), None)

    def _on_pong(self, payload: bytes) -> None:
        ping_id = self._pings.pop(payload, None)
        if ping_id is None:
            return  # unsolicited, or for a ping nobody waits for any more
        # A pong answers every earlier ping too (RFC 6455 section 5.5.3 allows skipping some).
        self._acked = max(self._acked, ping_id)
        self._pings = {key: value for key, value in self._pings.items() if value > ping_id}

    def send_close(self, code: int, reason: str) -> bool:
        """Start the close handshake; ``False`` if it is closing or closed already.

        ``ValueError`` for a close code that may not be sent.
        """
        if self._protocol.state is not State.OPEN:
            return False
        try:
            self._protocol.send_close(code, reason)
        except WsProtocolError:
            raise ValueError(
                f"close code {code} cannot be sent in a close frame; "
                "use 1000 (normal), 1001 (going away) or an application code in 3000-4999"
            ) from None
        self.output_pending = True
        return True

    # -- state ---------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether messages may still be sent."""
        return self._protocol.state is State.OPEN

    @property
    def close_handshake_done(self) -> bool:
        """Whether the peer's close frame arrived or the socket ended."""
        protocol = self._protocol
        return protocol.close_rcvd is not None or protocol.state is State.CLOSED

    @property
    def close_state(self) -> tuple[int | None, str] | None:
        """``None`` while open; else the close frame received, failing that the one sent, failing
        that ``(None, "")`` for a socket that ended without any close frame."""
        protocol = self._protocol
        if protocol.close_rcvd is not None:
            return int(protocol.close_rcvd.code), protocol.close_rcvd.reason
        if protocol.close_sent is not None:
            return int(protocol.close_sent.code), protocol.close_sent.reason
        if protocol.state is State.CLOSED:
            return None, ""
        return None
