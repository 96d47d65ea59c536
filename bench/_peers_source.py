"""The frame source of ``bench/peers.py``: Upbit-shaped trade frames, pre-encoded, written in bulk.

It must never be what limits a receive loop, so it does no per-frame work while streaming: at
start-up it renders a few thousand realistic ``KRW-BTC`` trades (the emulator's market
simulator, so fields and sizes are Upbit's), encodes each once as an unmasked binary frame in
DEFAULT and in SIMPLE keys, and concatenates them into one buffer per format, cut into chunks at
frame boundaries. A connection then gets the chunks in a loop with ``sendall``, which costs a
system call per chunk and nothing per frame.

Per WebSocket connection, as Upbit behaves for what the benchmark's clients ask:

- the handshake is answered (no extensions, so nobody compresses), then the first request is
  read; its ``format`` object picks the buffer (cryptofeed asks for SIMPLE, everyone else gets
  DEFAULT);
- a request naming ``trade`` for the code starts the stream: one SNAPSHOT frame first (the
  engine's router holds REALTIME frames until a stream's SNAPSHOT), unless the request said
  ``isOnlyRealtime``; a snapshot-only request gets its SNAPSHOT and nothing more (the engine's
  snapshot and parking requests);
- a protocol ping gets its pong, a text ``PING`` gets ``{"status":"UP"}``, a close frame gets a
  close frame back, all between two chunks (frames are never interleaved); later requests are
  read and ignored;
- the stream ends when the client goes away.

Run as ``python -m bench._peers_source`` from the project root: it prints one JSON line (port
and frame sizes), then serves until its standard input closes, so it never outlives the
benchmark.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import os
import socket
import struct
import sys
import threading
from collections.abc import Iterator

import orjson

__all__ = ("CODE", "FrameSet", "build_frames", "main")

#: The one code every loop streams.
CODE = "KRW-BTC"
#: Distinct trades in the buffer (each has its own ``sequential_id``): far more than the
#: engine's de-duplication window (256 ids per code), so cycling the buffer repeats no id it
#: still remembers.
TRADES = 8192
#: Bytes per ``sendall``; chunks end on frame boundaries so control frames fit between them.
CHUNK = 256 * 1024

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
_STATUS_UP = b'{"status":"UP"}'


def _frame(payload: bytes, opcode: int = _OP_BINARY) -> bytes:
    """One unmasked, unfragmented server frame."""
    size = len(payload)
    first = 0x80 | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 0x10000:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


class FrameSet:
    """One format's frames: the SNAPSHOT frame and the REALTIME buffer in chunks."""

    def __init__(self, snapshot: bytes, frames: list[bytes]) -> None:
        self.snapshot = snapshot
        self.buffer = b"".join(frames)
        self.frames = len(frames)
        view = memoryview(self.buffer)
        chunks: list[memoryview] = []
        start = end = 0
        for frame in frames:
            if end - start + len(frame) > CHUNK and end > start:
                chunks.append(view[start:end])
                start = end
            end += len(frame)
        chunks.append(view[start:end])
        self.chunks = tuple(chunks)

    @property
    def mean_frame_bytes(self) -> float:
        return len(self.buffer) / self.frames


def build_frames(trades: int = TRADES, seed: int = 7) -> dict[str, FrameSet]:
    """The DEFAULT and SIMPLE frame sets for ``trades`` consecutive simulated trades."""
    from engine.testing.marketdata import MarketSimulator, default_catalog, to_simple

    catalog = [listing for listing in default_catalog(0) if listing.market == CODE]
    simulator = MarketSimulator(catalog, seed=seed, rate_scale=0.0, rates={CODE: 50.0})
    snapshot = simulator.render("trade", CODE, "SNAPSHOT")
    assert snapshot is not None
    messages: list[dict[str, object]] = []
    horizon = 0.0
    while len(messages) < trades:
        horizon += 10.0
        for event in simulator.events_until(horizon):
            message = simulator.render_event(event, "trade")
            if message is not None:
                messages.append(message)
    messages = messages[:trades]
    return {
        "DEFAULT": FrameSet(
            _frame(orjson.dumps(snapshot)), [_frame(orjson.dumps(m)) for m in messages]
        ),
        "SIMPLE": FrameSet(
            _frame(orjson.dumps(to_simple(snapshot))),
            [_frame(orjson.dumps(to_simple(m))) for m in messages],
        ),
    }


# -- one connection --------------------------------------------------------------------------


class _ClientFrames:
    """Parses masked client frames from a socket (blocking reads)."""

    def __init__(self, sock: socket.socket, pending: bytes) -> None:
        self._sock = sock
        self._data = bytearray(pending)

    def _need(self, size: int) -> bool:
        while len(self._data) < size:
            chunk = self._sock.recv(65536)
            if not chunk:
                return False
            self._data += chunk
        return True

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while True:
            if not self._need(2):
                return
            opcode, marker = self._data[0] & 0x0F, self._data[1] & 0x7F
            masked = self._data[1] & 0x80
            offset = 2
            if marker == 126:
                if not self._need(4):
                    return
                (marker,) = struct.unpack_from("!H", self._data, 2)
                offset = 4
            elif marker == 127:
                if not self._need(10):
                    return
                (marker,) = struct.unpack_from("!Q", self._data, 2)
                offset = 10
            mask_size = 4 if masked else 0
            if not self._need(offset + mask_size + marker):
                return
            key = bytes(self._data[offset : offset + mask_size])
            body = bytes(self._data[offset + mask_size : offset + mask_size + marker])
            del self._data[: offset + mask_size + marker]
            if masked:
                body = bytes(b ^ key[i & 3] for i, b in enumerate(body))
            yield opcode, body


def _read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > 65536:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _accept_key(head: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            digest = hashlib.sha1(value.strip() + _GUID).digest()
            return base64.b64encode(digest)
    return None


def _request_plan(text: bytes) -> tuple[str, bool, bool]:
    """(format, whether to stream REALTIME, whether to send a SNAPSHOT) for one request."""
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "DEFAULT", False, False
    if not isinstance(items, list):
        return "DEFAULT", False, False
    fmt, stream, snapshot = "DEFAULT", False, False
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("format"), str):
            fmt = "SIMPLE" if item["format"].upper().startswith("SIMPLE") else "DEFAULT"
        if item.get("type") == "trade" and CODE in (item.get("codes") or ()):
            only_snapshot = bool(item.get("isOnlySnapshot") or item.get("is_only_snapshot"))
            only_realtime = bool(item.get("isOnlyRealtime") or item.get("is_only_realtime"))
            stream = stream or not only_snapshot
            snapshot = snapshot or not only_realtime
    return fmt, stream, snapshot


class _Connection:
    def __init__(self, sock: socket.socket, frames: dict[str, FrameSet]) -> None:
        self.sock = sock
        self.frames = frames
        self.control: collections.deque[bytes] = collections.deque()
        self.closing = threading.Event()

    def serve(self) -> None:
        sock = self.sock
        try:
            parsed = _read_head(sock)
            if parsed is None:
                return
            head, rest = parsed
            key = _accept_key(head)
            if key is None:
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + key + b"\r\n\r\n"
            )
            reader = iter(_ClientFrames(sock, rest))
            plan = self._first_request(reader)
            if plan is None:
                return
            fmt, stream, snapshot = plan
            chosen = self.frames[fmt]
            threading.Thread(target=self._read_rest, args=(reader,), daemon=True).start()
            if snapshot:
                sock.sendall(chosen.snapshot)
            if stream:
                self._stream(chosen)
            else:
                self._idle()
        except OSError:
            return
        finally:
            sock.close()

    def _first_request(self, reader: Iterator[tuple[int, bytes]]) -> tuple[str, bool, bool] | None:
        for opcode, body in reader:
            if opcode == _OP_PING:
                self.sock.sendall(_frame(body, _OP_PONG))
            elif opcode == _OP_CLOSE:
                self.sock.sendall(_frame(body[:2], _OP_CLOSE))
                return None
            elif opcode == _OP_TEXT and body.strip() == b"PING":
                self.sock.sendall(_frame(_STATUS_UP))
            elif opcode in (_OP_TEXT, _OP_BINARY):
                return _request_plan(body)
        return None

    def _read_rest(self, reader: Iterator[tuple[int, bytes]]) -> None:
        # Control frames are queued for the writer, which sends them between two chunks.
        try:
            for opcode, body in reader:
                if opcode == _OP_PING:
                    self.control.append(_frame(body, _OP_PONG))
                elif opcode == _OP_CLOSE:
                    self.control.append(_frame(body[:2], _OP_CLOSE))
                    return
                elif opcode == _OP_TEXT and body.strip() == b"PING":
                    self.control.append(_frame(_STATUS_UP))
        except OSError:
            pass
        finally:
            self.closing.set()

    def _flush_control(self) -> None:
        control, sendall = self.control, self.sock.sendall
        while control:
            sendall(control.popleft())

    def _stream(self, chosen: FrameSet) -> None:
        sendall, control, closing = self.sock.sendall, self.control, self.closing.is_set
        chunks = chosen.chunks
        while not closing():
            for chunk in chunks:
                sendall(chunk)
                if control:
                    self._flush_control()
                if closing():
                    break
        self._flush_control()
        self.sock.shutdown(socket.SHUT_WR)
        self._drain()

    def _idle(self) -> None:
        while not self.closing.wait(0.05):
            if self.control:
                self._flush_control()
        self._flush_control()

    def _drain(self) -> None:
        # Let the client finish its side (it may still be sending) before the socket closes.
        self.sock.settimeout(5.0)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass


def _serve(listener: socket.socket, frames: dict[str, FrameSet]) -> None:
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_Connection(sock, frames).serve, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bench/peers.py's frame source")
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    frames = build_frames()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    threading.Thread(target=_serve, args=(listener, frames), daemon=True).start()
    summary = {
        "port": port,
        "code": CODE,
        "trades": TRADES,
        "frame_bytes": {name: round(fs.mean_frame_bytes, 1) for name, fs in frames.items()},
        "chunk_bytes": CHUNK,
    }
    print(orjson.dumps(summary).decode(), flush=True)
    # Serve until the benchmark closes our standard input (or dies).
    sys.stdin.buffer.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
