"""RFC 6455 framing the emulator does by hand (sans-IO).

Server frames are never masked, so the bytes of one data frame are the same for every connection:
the feed encodes each frame once and hands the same ``bytes`` object to every subscriber. Client
frames are only *scanned* here (opcode and length), to see protocol pings that trio-websocket
answers internally; decoding stays with wsproto.
"""

from __future__ import annotations

import struct

__all__ = (
    "OPCODE_BINARY",
    "OPCODE_CONTINUATION",
    "OPCODE_CLOSE",
    "OPCODE_PING",
    "OPCODE_PONG",
    "OPCODE_TEXT",
    "ClientFrameScanner",
    "encode_frame",
    "frame_payload",
)

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA

_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def encode_frame(payload: bytes, opcode: int = OPCODE_BINARY) -> bytes:
    """One complete, unmasked (server-to-client) frame carrying ``payload``."""
    size = len(payload)
    first = 0x80 | opcode  # FIN set: the emulator never fragments
    if size < 126:
        return bytes((first, size)) + payload
    if size < 0x10000:
        return _SHORT.pack(first, 126, size) + payload
    return _LONG.pack(first, 127, size) + payload


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame made by :func:`encode_frame` (for introspection)."""
    marker = frame[1] & 0x7F
    if marker < 126:
        return frame[2:]
    if marker == 126:
        return frame[4:]
    return frame[10:]


class ClientFrameScanner:
    """Incrementally finds frame boundaries in client-to-server bytes and reports opcodes.

    Only headers are parsed; payload bytes are skipped without copying. Fed the raw bytes after
    the HTTP upgrade, in any chunking, it yields each frame's opcode once the header is complete.
    """

    def __init__(self) -> None:
        self._header = bytearray()
        self._skip = 0  # payload bytes of the current frame still to pass over

    def feed(self, data: bytes) -> list[int]:
        opcodes: list[int] = []
        view = memoryview(data)
        pos = 0
        end = len(view)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            self._header += view[pos : pos + 1]
            pos += 1
            needed = self._header_size()
            if needed is not None and len(self._header) == needed:
                opcodes.append(self._header[0] & 0x0F)
                self._skip = self._payload_size()
                self._header.clear()
        return opcodes

    def _header_size(self) -> int | None:
        if len(self._header) < 2:
            return None
        marker = self._header[1] & 0x7F
        masked = 4 if self._header[1] & 0x80 else 0
        extra = 0 if marker < 126 else (2 if marker == 126 else 8)
        return 2 + extra + masked

    def _payload_size(self) -> int:
        marker = self._header[1] & 0x7F
        if marker < 126:
            return marker
        if marker == 126:
            return int.from_bytes(self._header[2:4], "big")
        return int.from_bytes(self._header[2:10], "big")
