"""``upbit-engine emulator -v`` as a user runs it: a client connects and subscribes, a fault is
injected over the control URL with plain HTTP, the verbose log shows all three, SIGTERM stops it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import orjson
import trio
import trio_websocket

_STAMP = rb"(\d\d):(\d\d):(\d\d)\.\d{3}"


async def _read_until(process: trio.Process, pattern: bytes, buffer: bytearray) -> re.Match[bytes]:
    assert process.stdout is not None
    while (match := re.search(pattern, buffer, re.MULTILINE)) is None:
        chunk = await process.stdout.receive_some(4096)
        if not chunk:
            raise AssertionError(f"the emulator exited early; it printed {bytes(buffer)!r}")
        buffer += chunk
    return match


def _seconds_from_utc_now(match: re.Match[bytes]) -> float:
    hours, minutes, seconds = (int(part) for part in match.groups()[:3])
    now = datetime.now(UTC)
    delta = (hours * 3600 + minutes * 60 + seconds) - (
        now.hour * 3600 + now.minute * 60 + now.second
    )
    return min(abs(delta), 86400 - abs(delta))  # across midnight


async def test_verbose_log_and_a_fault_over_http() -> None:
    command = [sys.executable, "-m", "engine.cli", "emulator", "--port", "0", "-v", "--seed", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, env=env)
    output = bytearray()
    try:
        with trio.fail_after(60):
            ws_url = (await _read_until(process, rb"public WebSocket\s+(ws://\S+)", output))[1]
            rest_url = (await _read_until(process, rb"REST\s+(http://\S+)", output))[1]
            control = (await _read_until(process, rb"fault controls\s+(http://\S+)", output))[1]
            await _read_until(process, rb"Press Ctrl-C", output)
            async with httpx.AsyncClient() as http:
                markets = (await http.get(f"{rest_url.decode()}/v1/market/all")).json()
                codes = [m["market"] for m in markets if m["market"].startswith("KRW-")][:100]
                assert len(codes) == 100
                async with trio_websocket.open_websocket_url(ws_url.decode()) as ws:
                    request = [{"ticket": "cli"}, {"type": "ticker", "codes": codes}]
                    await ws.send_message(orjson.dumps(request).decode())
                    await ws.get_message()
                    dropped = await http.post(f"{control.decode()}/drop", data={"conn": "1"})
                    assert dropped.json() == {
                        "ok": True,
                        "action": "drop",
                        "dropped": [1],
                        "how": "abort",
                    }
            connected = await _read_until(
                process, _STAMP + rb" conn 1 connect /websocket/v1 from 127\.0\.0\.1$", output
            )
            assert _seconds_from_utc_now(connected) < 120, "the time is UTC"
            # 100 codes are counted, not listed: the line stays short.
            await _read_until(
                process,
                _STAMP + rb" conn 1 request subscribe: ticket cli, ticker 100 codes$",
                output,
            )
            await _read_until(process, _STAMP + rb" conn 1 fault drop \(abort\)$", output)
            await _read_until(process, _STAMP + rb" conn 1 close dropped \(abort\)$", output)
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            await _read_until(process, rb"^stopped$", output)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        assert process.stdout is not None
        await process.stdout.aclose()
