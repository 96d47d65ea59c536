"""Recording streams to files: ``upbit-engine record`` (and :func:`record`).

Format: gzip-compressed JSON lines, one file per period, named
``{prefix}-{UTC start, YYYYmmddTHHMMSSZ}.jsonl.gz``. The first line is a header
(``{"format": "upbit-engine-recording", "version": 1, "specs": [...], "started": ...}``); then
one line per message, ``{"t": <receive time, unix ms>, "msg": <Upbit DEFAULT JSON>}``, and one
per engine event, ``{"t": ..., "event": {...}}`` (gaps and backfills stay visible in the file).

Why gzip JSON lines and not Parquet: the messages are heterogeneous (tickers, trades,
orderbooks with nested rows, candles, and whatever fields Upbit adds), which JSON keeps as they
came; a file is readable by anything (``zcat | jq``), appendable, and a file cut short by a crash
keeps every complete block; the standard library writes it, where Parquet would add pyarrow
(about 100 MB) and a schema per type. For columnar analysis, convert a day's files afterwards.

A new file starts every ``rotate_seconds`` or once ``rotate_bytes`` (uncompressed) were written.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import orjson

from engine.events import Backfilled, Ended, Gap, Interrupted, SnapshotMissing
from engine.facade.engine import Engine
from engine.gateway.config import Spec
from engine.gateway.encoding import payload_of
from engine.observability.jsonable import to_jsonable
from engine.wire.messages import Message

__all__ = ("FORMAT", "Recorder", "record")

FORMAT: Final = "upbit-engine-recording"


class Recorder:
    """Writes records to rotating gzip JSON-lines files in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        specs: Sequence[Spec] = (),
        rotate_seconds: float = 3600.0,
        rotate_bytes: int = 256 * 1024 * 1024,
        prefix: str = "upbit",
    ) -> None:
        if not rotate_seconds > 0 or not rotate_bytes > 0:
            raise ValueError("rotate_seconds and rotate_bytes must be > 0")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._specs = [f"{spec.data_type}:{','.join(spec.codes)}" for spec in specs]
        self._rotate_seconds = rotate_seconds
        self._rotate_bytes = rotate_bytes
        self._prefix = prefix
        self._file: gzip.GzipFile | None = None
        self._opened = 0.0
        self._written = 0
        #: Files written so far (the current one last), and records in all of them.
        self.files: list[Path] = []
        self.records = 0

    def write_message(self, message: Message) -> None:
        self._write({"t": time.time() * 1000.0, "msg": payload_of(message)})

    def write_event(self, event: object) -> None:
        self._write({"t": time.time() * 1000.0, "event": to_jsonable(event)})

    def _write(self, record: dict[str, object]) -> None:
        now = time.monotonic()
        if (
            self._file is None
            or now - self._opened >= self._rotate_seconds
            or self._written >= self._rotate_bytes
        ):
            self._rotate(now)
        assert self._file is not None
        line = orjson.dumps(record) + b"\n"
        self._file.write(line)
        self._written += len(line)
        self.records += 1

    def _rotate(self, now: float) -> None:
        self.close()
        started = datetime.now(UTC)
        name = f"{self._prefix}-{started.strftime('%Y%m%dT%H%M%S')}Z.jsonl.gz"
        path = self.directory / name
        serial = 1
        while path.exists():  # two rotations in one second (a small rotate_bytes)
            serial += 1
            path = self.directory / name.replace("Z.jsonl", f"Z-{serial:03d}.jsonl")
        # Kept open across writes; closed by close() or the next rotation.
        self._file = gzip.open(path, "wb", compresslevel=6)  # noqa: SIM115
        self.files.append(path)
        self._opened, self._written = now, 0
        header = {
            "format": FORMAT,
            "version": 1,
            "specs": self._specs,
            "started": started.isoformat(),
        }
        self._file.write(orjson.dumps(header) + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def record(eng: Engine, specs: Sequence[Spec], recorder: Recorder) -> None:
    """Subscribe to ``specs`` and write every message and event until cancelled."""
    import trio

    async def one(sub_id: str) -> None:
        async for item in eng.stream(sub_id):
            if isinstance(item, Interrupted | Gap | SnapshotMissing | Backfilled | Ended):
                recorder.write_event(item)
            else:
                recorder.write_message(item)

    async with trio.open_nursery() as nursery:
        for spec in specs:
            sub_id = await eng.subscribe_realtime(spec.data_type, list(spec.codes))
            nursery.start_soon(one, sub_id)
