"""Recordings: ``record`` writes rotating gzip JSON lines a user can read with anything, and
``RecordedMarket`` replays them through the emulator, so a client sees the recorded messages in
the recorded order (real time, short)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import trio

from engine.facade.open import open_engine
from engine.gateway.config import Spec
from engine.gateway.recorder import FORMAT, Recorder, record
from engine.testing import EmulatorConfig, RecordedMarket, open_emulator
from engine.testing.recorded_market import read_recording
from engine.wire.messages import Trade

CODES = ("KRW-BTC", "KRW-ETH")
SPECS = (Spec("trade", CODES), Spec("ticker", CODES))


async def _record(directory: Path, seconds: float, rotate_bytes: int = 1 << 28) -> Recorder:
    rec = Recorder(directory, specs=SPECS, rotate_bytes=rotate_bytes)
    config = EmulatorConfig(markets=(*CODES, "KRW-XRP"), seed=4, rate_scale=20.0)
    async with (
        open_emulator(config) as emu,
        open_engine(ws_url=emu.ws_url, rest_url=emu.rest_url) as eng,
    ):
        with trio.move_on_after(seconds):
            await record(eng, SPECS, rec)
    rec.close()
    return rec


def _lines(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle]


async def test_a_recording_is_gzip_json_lines_and_rotates(tmp_path: Path) -> None:
    rec = await _record(tmp_path, 2.5, rotate_bytes=20_000)
    assert len(rec.files) >= 2  # rotated by size
    lines = _lines(rec.files[0])
    assert lines[0]["format"] == FORMAT
    assert lines[0]["specs"] == ["trade:KRW-BTC,KRW-ETH", "ticker:KRW-BTC,KRW-ETH"]
    messages = [line["msg"] for line in lines[1:] if "msg" in line]
    assert {m["type"] for m in messages} <= {"trade", "ticker"}
    assert all(isinstance(line["t"], float) for line in lines[1:])
    written = [line for path in rec.files for line in _lines(path)[1:]]
    assert len(written) == rec.records
    messages = [line for line in written if "msg" in line]
    assert len(read_recording(rec.files)) == len(messages) > 20  # every message read back


async def test_a_replayed_recording_gives_the_recorded_messages_in_order(tmp_path: Path) -> None:
    rec = await _record(tmp_path, 3.0)
    recorded = [
        message["sequential_id"]
        for _, message in read_recording(rec.files)
        if message["type"] == "trade" and message["code"] == "KRW-BTC"
    ]
    assert len(recorded) > 10
    market = RecordedMarket(rec.files, speed=4.0)
    got: list[int] = []
    async with open_emulator(EmulatorConfig(seed=1), simulator=market) as emu:
        assert sorted(listing.market for listing in emu.catalog) == sorted(CODES)
        async with open_engine(ws_url=emu.ws_url, rest_url=emu.rest_url, backfill=False) as eng:
            sub = await eng.subscribe_realtime("trade", ["KRW-BTC"])
            with trio.move_on_after(3.0 / 4.0 + 2.0):
                async for item in eng.stream(sub):
                    if isinstance(item, Trade) and item.stream_type == "REALTIME":
                        got.append(item.sequential_id)
                        if got[-1] == recorded[-1]:
                            break
    assert got  # the replay streamed
    start = recorded.index(got[0])
    assert got == recorded[start : start + len(got)]  # the recorded trades, in order
    assert got[-1] == recorded[-1]  # through the end of the recording
