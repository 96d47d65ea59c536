"""The ``upbit-engine`` command line; ``upbit-engine emulator`` is tried as a new user would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import orjson
import pytest
import trio
import trio_websocket

from engine.cli.entry import build_parser, main


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "emulator" in capsys.readouterr().out


def test_emulator_options() -> None:
    args = build_parser().parse_args(
        [
            "emulator",
            "--host",
            "0.0.0.0",
            "--port",
            "8765",
            "--seed",
            "3",
            "--rate-scale",
            "0.5",
            "--no-limits",
        ]
    )
    assert (args.command, args.host, args.port, args.seed, args.rate_scale, args.no_limits) == (
        "emulator",
        "0.0.0.0",
        8765,
        3,
        0.5,
        True,
    )
    defaults = build_parser().parse_args(["emulator"])
    assert (
        defaults.host,
        defaults.port,
        defaults.seed,
        defaults.rate_scale,
        defaults.no_limits,
    ) == (
        "127.0.0.1",
        0,
        0,
        1.0,
        False,
    )


def test_emulator_rejects_negative_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "-1"]) == 2
    assert "must be >= 0" in capsys.readouterr().err


async def _read_until(process: trio.Process, pattern: bytes, buffer: bytearray) -> re.Match[bytes]:
    assert process.stdout is not None
    while (match := re.search(pattern, buffer)) is None:
        chunk = await process.stdout.receive_some(4096)
        if not chunk:
            raise AssertionError(f"the emulator exited early; it printed {bytes(buffer)!r}")
        buffer += chunk
    return match


async def test_emulator_command_serves_a_plain_client() -> None:
    """`upbit-engine emulator` prints its URLs; a plain client gets a binary SNAPSHOT then
    REALTIME frames; Ctrl-C stops it cleanly."""
    command = [sys.executable, "-m", "engine.cli", "emulator", "--port", "0", "--seed", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, env=env)
    output = bytearray()
    try:
        with trio.fail_after(60):
            url = (await _read_until(process, rb"public WebSocket\s+(ws://\S+)", output))[
                1
            ].decode()
            await _read_until(process, rb"Press Ctrl-C", output)
            for label in (b"private WebSocket", b"REST", b"access key", b"secret key"):
                assert label in output
            host, port = url.removeprefix("ws://").split("/")[0].split(":")
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream, trio.open_nursery() as nursery:
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, f"{host}:{port}", "/websocket/v1"
                )
                request = [{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC"]}]
                await ws.send_message(orjson.dumps(request).decode())
                frames = [await ws.get_message() for _ in range(3)]
                await ws.aclose()
            assert all(isinstance(frame, bytes) for frame in frames)
            stream_types = [orjson.loads(frame)["stream_type"] for frame in frames]
            assert stream_types == ["SNAPSHOT", "REALTIME", "REALTIME"]
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
            await _read_until(process, rb"stopped", output)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        assert process.stdout is not None
        await process.stdout.aclose()
