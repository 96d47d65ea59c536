"""The operator's command line, as processes in a real terminal: a standalone emulator (``-v``,
faults over HTTP), ``watch`` with a debug channel, ``inspect`` (text, JSON and the live dashboard
in tmux, read back with ``capture-pane``), SIGTERM and a closed pipe.

Real processes on loopback with wall-clock deadlines: every wait polls for a condition and gives
up after ``DEADLINE`` seconds, and every process is killed at the end whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

DEADLINE = 60.0
CLI = [sys.executable, "-m", "engine.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TERM": "xterm-256color", "COLUMNS": "160"}


def _wait(what: str, check: Callable[[], object]) -> object:
    """Poll ``check`` until it returns something true; fail after ``DEADLINE`` seconds."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.2)  # a poll interval, not synchronisation: the condition decides
    raise AssertionError(f"timed out waiting for {what}")


class Lines:
    """A process's output, read line by line without blocking the test forever."""

    def __init__(self, process: subprocess.Popen[str], stream: str) -> None:
        self.process = process
        self.lines: list[str] = []
        self._stream = getattr(process, stream)
        os.set_blocking(self._stream.fileno(), False)

    def poll(self) -> list[str]:
        while True:
            line = self._stream.readline()
            if not line:
                return self.lines
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> re.Match[str]:
        def find() -> re.Match[str] | None:
            for line in self.poll():
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode}: {self.lines}")
            return None

        match = _wait(repr(pattern), find)
        assert isinstance(match, re.Match)
        return match


@contextmanager
def _process(*args: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def _emulator() -> Iterator[tuple[Lines, dict[str, str]]]:
    with _process("emulator", "--port", "0", "-v", "--seed", "3") as process:
        out = Lines(process, "stdout")
        urls = {
            "ws": out.wait_for(r"public WebSocket\s+(\S+)")[1],
            "rest": out.wait_for(r"REST\s+(http://\S+)")[1],
            "control": out.wait_for(r"fault controls\s+(http://\S+)")[1],
        }
        yield out, urls


@contextmanager
def _watch(urls: dict[str, str], socket: Path, *specs: str) -> Iterator[tuple[Lines, Lines]]:
    args = ["watch", "--ws-url", urls["ws"], "--rest-url", urls["rest"], "--debug"]
    with _process(*args, f"unix:{socket}", *specs) as process:
        out, err = Lines(process, "stdout"), Lines(process, "stderr")
        err.wait_for(r"^debug channel on unix:")
        out.wait_for(r"REALTIME")
        yield out, err


def _inspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "inspect", *args], capture_output=True, text=True, env=ENV, timeout=DEADLINE
    )


def test_watch_ends_quietly_when_its_reader_goes_away() -> None:
    command = " ".join([*CLI, "watch", "--emulator", "trade:KRW-BTC,KRW-ETH"])
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -1"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=DEADLINE,
    )
    assert done.returncode == 0  # pipefail: watch itself exited 0
    assert len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr


def test_inspect_prints_the_tree_and_json_and_sigterm_stops_watch(tmp_path: Path) -> None:
    socket = tmp_path / "engine.sock"
    with (
        _emulator() as (_, urls),
        _watch(urls, socket, "trade:KRW-BTC", "ticker:KRW-BTC") as (
            out,
            err,
        ),
    ):
        text = _inspect(f"unix:{socket}")
        assert text.returncode == 0, text.stderr
        assert text.stdout.startswith("engine supervisor")
        assert "realtime-0 [streaming]" in text.stdout
        assert "subscriptions: 2" in text.stdout
        assert "sub-1 active trade KRW-BTC on realtime-0" in text.stdout
        assert "realtime-0 connected (generation 1)" in text.stdout
        as_json = _inspect(f"unix:{socket}", "--json")
        assert as_json.returncode == 0, as_json.stderr
        replies = [json.loads(line) for line in as_json.stdout.splitlines()]
        assert [r["cmd"] for r in replies] == ["tree", "tickets", "subscriptions"]
        assert replies[2]["subscriptions"][1]["types"] == ["ticker"]
        process = out.process
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 0
        assert "Traceback" not in "\n".join(err.poll())
        assert not socket.exists()  # the engine closed and removed its socket
    gone = _inspect(f"unix:{socket}")
    assert gone.returncode == 1
    assert "cannot reach the debug channel" in gone.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="the dashboard test needs tmux")
def test_the_dashboard_follows_a_drop_and_the_engine_stopping_in_tmux(tmp_path: Path) -> None:
    socket = tmp_path / "engine.sock"
    session = f"upbit-engine-test-{os.getpid()}"
    specs = ("trade:KRW-BTC,KRW-ETH", "ticker:KRW-BTC")
    with _emulator() as (emulator, urls), _watch(urls, socket, *specs) as (out, _):
        inspect = " ".join([*CLI, "inspect", f"unix:{socket}", "--follow", "--interval", "0.5"])
        shell = f"cd {os.getcwd()} && {inspect}; echo EXIT=$?; sleep 60"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", shell],
            check=True,
            env=ENV,
            timeout=DEADLINE,
        )
        try:

            def pane(*needles: str) -> str | None:
                text = subprocess.run(
                    ["tmux", "capture-pane", "-p", "-t", session],
                    capture_output=True,
                    text=True,
                    timeout=DEADLINE,
                ).stdout
                return text if all(needle in text for needle in needles) else None

            screen = _wait("the dashboard", lambda: pane("Tickets", "Subscriptions", "Events"))
            assert isinstance(screen, str)
            _wait("a streaming ticket and its rates", lambda: pane("streaming", "trade ", "sub-2"))
            _wait("the first connect in the tail", lambda: pane("realtime-0 connected"))
            response = httpx.post(f"{urls['control']}/drop", timeout=DEADLINE)
            assert response.status_code == 200
            emulator.wait_for(r"fault drop")
            screen = _wait(
                "the loss and the reconnect",
                lambda: pane("realtime-0 lost its connection", "realtime-0 reconnected"),
            )
            assert isinstance(screen, str)
            _wait("the gap in the tail", lambda: pane("gap of"))
            out.process.send_signal(signal.SIGTERM)
            assert out.process.wait(timeout=DEADLINE) == 0
            _wait("the dashboard to see the engine stop", lambda: pane("the engine stopped"))
            _wait("inspect to exit 0", lambda: pane("EXIT=0"))
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], timeout=DEADLINE, check=False)
