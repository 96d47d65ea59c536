"""The engine, bare receive loops and the peer libraries, on the same trade stream in one run.

One frame source (``bench/_peers_source.py``, its own process) streams pre-encoded Upbit trade
frames for one code over ``ws://127.0.0.1``; each receive loop in turn, in a fresh process of its
own, connects, counts ``--warmup`` frames untimed, then times ``--frames`` frames received and
JSON-decoded, and exits. Rounds interleave every loop (the order rotates each round), and the
report gives medians and min-max of frames per second, and each loop's ratio to the bare
sans-IO loop of the same round.

Loops (``--only`` takes these names; the source-alone row always runs):

- ``engine-websockets`` / ``engine-trio-websocket``: ``open_engine`` with that transport,
  ``subscribe_realtime`` and a consumer draining ``stream()``;
- ``sansio``: Trio streams + ``websockets``' sans-IO ``ClientProtocol`` + ``orjson.loads``;
- ``trio-websocket``: ``get_message`` + ``orjson.loads``;
- ``asyncio-websockets``: the ``websockets`` asyncio client + ``orjson.loads`` (reference);
- ``ccxt``: ccxt.pro's ``upbit`` with ``watch_trades``;
- ``cryptofeed``: cryptofeed's ``Upbit`` feed, uvloop off.

The peers are installed into ``bench/.peers-venv`` (created with ``uv`` on first use, reused
afterwards), never into the project's environment; they run there as subprocesses
(``bench/peers/*.py``). A peer that cannot be installed or run gets a row saying why.

Run: ``uv run python bench/peers.py [--rounds N] [--frames N] [--only NAME ...]`` (5 to 15
minutes with the defaults, depending on what else the machine runs; writes the ``peers``
section of docs/BENCHMARKS.md unless ``--only`` or ``--no-write`` is given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._peers_loops import SANSIO_RECEIVE
from bench._report import write_section
from engine.transport import TrioWebsocketTransport

__all__ = ("LOOPS", "Loop", "main")

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEERS_DIR = ROOT / "bench" / "peers"
#: The Python the peers venv is built with: on 3.11 pip resolves cryptofeed 2.4.1, the version
#: verified against a local emulator (cryptofeed's newer releases need Python 3.12 or later).
PEERS_PYTHON = "3.11"
#: Peer pins: the versions verified against a local ``ws://`` emulator, ccxt 4.5.90 (ccxt.pro's
#: ``upbit``, driven as ``bench/peers/ccxt_upbit.py`` describes) and cryptofeed 2.4.1 (its
#: ``Upbit`` feed, driven as ``bench/peers/cryptofeed_upbit.py`` describes).
PEER_PINS = {"ccxt": "ccxt==4.5.90", "cryptofeed": "cryptofeed==2.4.1"}
#: Libraries the peers share with the project: pinned to the project's own versions so the
#: comparison is of the clients, not of the JSON parser or the WebSocket core.
SHARED_PINS = ("orjson", "websockets")
INSTALL_TIMEOUT = 900.0
#: trio-websocket's default bytes per read (``trio_websocket._impl.RECEIVE_BYTES``), quoted in
#: the report; the bare sans-IO loop's is ``bench._peers_loops.SANSIO_RECEIVE``.
TRIO_WEBSOCKET_RECEIVE = 4096
SOURCE_START_TIMEOUT = 60.0


@attrs.frozen
class Loop:
    name: str
    label: str
    #: "project" (``bench/_peers_loops.py`` in this environment), "script" (a runner in
    #: bench/peers/ with this environment's Python) or "peer" (a runner in the peers venv).
    kind: str
    #: The ``_peers_loops`` loop name, or the runner script's file name.
    target: str
    transport: str | None = None


SOURCE = Loop(
    "source", "source alone: raw socket reader, no WebSocket parsing", "project", "source"
)
LOOPS = (
    Loop(
        "engine-websockets",
        "**engine**, `websockets` transport: `subscribe_realtime` + `stream()` consumer",
        "project",
        "engine",
        "websockets",
    ),
    Loop(
        "engine-trio-websocket",
        "**engine**, trio-websocket transport: `subscribe_realtime` + `stream()` consumer",
        "project",
        "engine",
        "trio-websocket",
    ),
    Loop(
        "sansio",
        "bare: Trio streams + `websockets` sans-IO `ClientProtocol` + `orjson.loads`",
        "project",
        "sansio",
    ),
    Loop(
        "trio-websocket",
        "bare: trio-websocket `get_message` + `orjson.loads`",
        "project",
        "trio-websocket",
    ),
    Loop(
        "asyncio-websockets",
        "reference: `websockets` asyncio client + `orjson.loads`",
        "script",
        "asyncio_websockets.py",
    ),
    Loop(
        "ccxt",
        "ccxt.pro `upbit`, `watch_trades` (counted at `handle_message`)",
        "peer",
        "ccxt_upbit.py",
    ),
    Loop(
        "cryptofeed",
        "cryptofeed `Upbit` feed, trades, uvloop off (SIMPLE keys)",
        "peer",
        "cryptofeed_upbit.py",
    ),
)
BASELINE = "sansio"
TABLE_HEAD = (
    "| receive loop | frames/s, median | min-max | ratio to bare sans-IO | CPU µs per frame "
    "| ratio, CPU-normalised | CPU share |\n|---|---:|---:|---:|---:|---:|---:|"
)


# -- the peers' environment ---------------------------------------------------------------------


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " / ".join(kept) or "no output"


def _venv_python() -> Path:
    return PEERS_VENV / "bin" / "python"


def _command(command: Sequence[str], timeout: float) -> str | None:
    """Run ``command``; ``None`` if it succeeded, else why it did not."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"took over {timeout:g} s"
    except OSError as exc:
        return str(exc)
    return None if done.returncode == 0 else _tail(done.stderr or done.stdout)


def _installed(packages: Sequence[str]) -> dict[str, str]:
    """Versions of ``packages`` in the peers venv (missing ones left out)."""
    if not _venv_python().exists():
        return {}
    script = (
        "import json\nfrom importlib.metadata import version\nfound = {}\n"
        f"for name in {tuple(packages)!r}:\n"
        "    try:\n        found[name] = version(name)\n"
        "    except Exception:\n        pass\nprint(json.dumps(found))\n"
    )
    try:
        probe = subprocess.run(
            [str(_venv_python()), "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        found: dict[str, str] = json.loads(probe.stdout)
    except (subprocess.TimeoutExpired, OSError, json.JSONDecodeError):
        return {}
    return found


def prepare_peers(wanted: Sequence[str]) -> dict[str, str | None]:
    """Make sure each wanted peer is installed in the peers venv; ``{peer: why not}``.

    A peer counts as installed when its pinned version and the project's versions of the
    shared libraries are all present; otherwise it is (re)installed with ``uv pip``.
    """
    shared = {name: version(name) for name in SHARED_PINS}
    problems: dict[str, str | None] = {}
    for peer in wanted:
        pin = PEER_PINS[peer]
        expected = {peer: pin.partition("==")[2], **shared}
        if _installed(list(expected)) == expected:
            problems[peer] = None
            continue
        uv = shutil.which("uv")
        if uv is None:
            problems[peer] = f"uv is not on PATH: cannot install {pin} into the peers' virtualenv"
            continue
        where = PEERS_VENV.relative_to(ROOT)
        if not _venv_python().exists():
            print(f"creating {where} (Python {PEERS_PYTHON})...", flush=True)
            failed = _command([uv, "venv", str(PEERS_VENV), "--python", PEERS_PYTHON], 300)
            if failed is not None:
                problems[peer] = f"could not create the peers' virtualenv: {failed}"
                continue
        print(f"installing {pin} into {where}...", flush=True)
        pins = [pin, *(f"{name}=={v}" for name, v in shared.items())]
        failed = _command(
            [uv, "pip", "install", "--python", str(_venv_python()), *pins], INSTALL_TIMEOUT
        )
        problems[peer] = None if failed is None else f"installing {pin} failed: {failed}"
    return problems


def peer_versions() -> dict[str, str]:
    """What the report quotes from the peers venv."""
    return _installed(("ccxt", "aiohttp", "cryptofeed", "websockets", "yapic.json", "orjson"))


# -- the source ---------------------------------------------------------------------------------


class Source:
    """The frame source process, with what it reported at start-up."""

    def __init__(self, cpu: int | None) -> None:
        command = [sys.executable, "-m", "bench._peers_source"]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        self._process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        stdout = self._process.stdout
        assert stdout is not None
        # Building the frames takes a few seconds; a source that is not up in a minute never is.
        ready, _, _ = select.select([stdout], [], [], SOURCE_START_TIMEOUT)
        line = stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(
                f"the frame source was not ready within {SOURCE_START_TIMEOUT:g} s "
                "(its error output is above)"
            )
        info = json.loads(line)
        self.url = f"ws://127.0.0.1:{info['port']}/websocket/v1"
        self.trades: int = info["trades"]
        self.chunk_bytes: int = info["chunk_bytes"]
        self._frame_bytes: dict[str, float] = info["frame_bytes"]

    def frame_bytes(self, fmt: str) -> float:
        """Mean frame size in bytes in ``fmt`` ("DEFAULT" or "SIMPLE")."""
        return self._frame_bytes[fmt]

    def close(self) -> None:
        process = self._process
        if process.stdin is not None:
            process.stdin.close()  # the source serves until its stdin closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- running the loops --------------------------------------------------------------------------


@attrs.frozen
class Run:
    """One loop's result in one round: a measurement, or why there is none."""

    frames: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    error: str | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rate(self) -> float:
        return self.frames / self.seconds

    @classmethod
    def parse(cls, stdout: str, stderr: str, returncode: int) -> Run:
        for line in reversed(stdout.strip().splitlines()):
            try:
                found = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(found, dict) and "ok" in found:
                if found["ok"]:
                    return cls(found["frames"], found["seconds"], found["cpu"])
                return cls(error=str(found["error"]), skipped=bool(found.get("skipped")))
        return cls(error=f"no result (exit code {returncode}): {_tail(stderr)}")


def run_loop(
    loop: Loop,
    source: Source,
    settings: argparse.Namespace,
    cpu: int | None,
    unavailable: dict[str, str | None],
) -> Run:
    reason = unavailable.get(loop.name)
    if reason is not None:
        return Run(error=reason, skipped=True)
    window = [
        "--url",
        source.url,
        "--warmup",
        str(settings.warmup),
        "--frames",
        str(settings.frames),
    ]
    window += ["--timeout", str(settings.timeout)]
    if cpu is not None:
        window += ["--cpu", str(cpu)]
    if loop.kind == "project":
        command = [sys.executable, "-m", "bench._peers_loops", loop.target, *window]
        if loop.transport is not None:
            command += ["--transport", loop.transport]
        if loop.target == "source":
            command += ["--frame-bytes", str(source.frame_bytes("DEFAULT"))]
    elif loop.kind == "script":
        command = [sys.executable, str(PEERS_DIR / loop.target), *window]
    else:
        command = [str(_venv_python()), str(PEERS_DIR / loop.target), *window]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=settings.timeout + 30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Run(error=f"the runner did not exit within {settings.timeout + 30:g} s")
    return Run.parse(done.stdout, done.stderr, done.returncode)


def run_rounds(
    loops: Sequence[Loop], source: Source, settings: argparse.Namespace, cpu: int | None
) -> dict[str, list[Run]]:
    unavailable = prepare_peers([loop.name for loop in loops if loop.kind == "peer"])
    runs: dict[str, list[Run]] = {loop.name: [] for loop in (SOURCE, *loops)}
    for index in range(settings.rounds):
        # A rotating order, so no loop always runs first (or right after the same neighbour).
        shift = index % len(loops)
        for loop in (SOURCE, *loops[shift:], *loops[:shift]):
            if runs[loop.name] and runs[loop.name][-1].skipped:
                result = runs[loop.name][-1]  # a skip is not retried every round
            else:
                result = run_loop(loop, source, settings, cpu, unavailable)
            runs[loop.name].append(result)
            shown = (
                f"{result.rate:>10,.0f} frames/s  cpu {result.cpu / result.seconds:4.0%}"
                if result.ok
                else f"{'skipped' if result.skipped else 'FAILED'}: {result.error}"
            )
            print(f"round {index + 1} {loop.name:22s} {shown}", flush=True)
    return runs


# -- the report -----------------------------------------------------------------------------------


def _span(values: Sequence[float]) -> str:
    return f"{statistics.median(values):,.0f} | {min(values):,.0f}-{max(values):,.0f}"


def _short(error: str | None, limit: int = 240) -> str:
    text = (error or "").replace("|", "/")  # a pipe would split the table cell
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ratio(pairs: Sequence[float]) -> str:
    return f"{statistics.median(pairs):.2f}" if pairs else "-"


def _row(loop: Loop, results: Sequence[Run], baseline: Sequence[Run]) -> str:
    good = [r for r in results if r.ok]
    if not good:
        first = results[0]
        word = "skipped" if first.skipped else "failed"
        return f"| {loop.label} | {word}: {_short(first.error)} | | | | | |"
    # Paired by round (both ran in the same round), so slow drifts in machine load cancel.
    paired = [(r, b) for r, b in zip(results, baseline, strict=False) if r.ok and b.ok]
    wall = [r.rate / b.rate for r, b in paired]
    cpu = [(b.cpu / b.frames) / (r.cpu / r.frames) for r, b in paired]
    if loop is SOURCE:
        wall = cpu = []  # not a client: its ratio would say nothing
    cpu_us = statistics.median(r.cpu / r.frames * 1e6 for r in good)
    share = statistics.median(r.cpu / r.seconds for r in good)
    failures = [r.error for r in results if not r.ok]
    note = (
        f" ({len(failures)} of {len(results)} rounds failed: {_short(failures[0])})"
        if failures
        else ""
    )
    return (
        f"| {loop.label}{note} | {_span([r.rate for r in good])} | {_ratio(wall)} "
        f"| {cpu_us:.1f} | {_ratio(cpu)} | {share:.0%} |"
    )


def report(
    loops: Sequence[Loop],
    runs: dict[str, list[Run]],
    source: Source,
    settings: argparse.Namespace,
    cpus: tuple[int, int] | None,
    load: float,
) -> str:
    baseline = runs.get(BASELINE, [])
    rows = [_row(loop, runs[loop.name], baseline) for loop in (*loops, SOURCE)]
    alone = [r for r in runs[SOURCE.name] if r.ok]
    default_bytes, simple_bytes = source.frame_bytes("DEFAULT"), source.frame_bytes("SIMPLE")
    if alone:
        alone_rate = statistics.median(r.rate for r in alone)
        megabytes = alone_rate * default_bytes / 1e6
        fastest = max(
            (
                statistics.median(r.rate for r in runs[loop.name] if r.ok)
                for loop in loops
                if any(r.ok for r in runs[loop.name])
            ),
            default=0.0,
        )
        source_line = (
            f"The source alone delivers {alone_rate:,.0f} frames/s ({megabytes:,.0f} MB/s) to a "
            f"reader that parses nothing, {alone_rate / fastest:.1f}x the fastest loop here, so "
            "the source is not what limits any row."
            if fastest
            else f"The source alone delivers {alone_rate:,.0f} frames/s ({megabytes:,.0f} MB/s)."
        )
    else:
        source_line = "**The source-alone measurement failed**; see its row."
    peers = peer_versions()
    peer_text = ", ".join(f"{name} {v}" for name, v in peers.items()) or "not installed"
    project = ", ".join(
        f"{name} {version(name)}" for name in ("trio", "trio-websocket", "websockets", "orjson")
    )
    pinning = (
        f"The source is pinned to CPU {cpus[0]} and every loop to CPU {cpus[1]} "
        "(`os.sched_setaffinity`)."
        if cpus
        else "No CPU pinning (`--no-pin`)."
    )
    table = "\n".join(rows)
    rounds = f"{settings.rounds} round" + ("s" if settings.rounds > 1 else "")
    return _reflow(f"""
Frames received **and** JSON-decoded per second, by receive loops that each connect to the same
local source: {rounds}, each running every loop once in a fresh process (order
rotated per round); a loop counts {settings.warmup:,} frames untimed, then times
{settings.frames:,} frames. Median and min-max over the rounds; the ratio is the median of
per-round ratios to the bare sans-IO loop of the same round. CPU is the loop process's CPU time
over the timed window: its share of wall time shows whether the loop had a core to itself (on a
shared machine it often does not), and the CPU-normalised ratio (bare sans-IO CPU per frame over
the loop's, per round) is what the loop reaches relative to the bare loop given the same CPU.

The stream: `trade` of one code (KRW-BTC), {source.trades:,} distinct simulated
trades (the emulator's market simulator, so fields and sizes are Upbit's) pre-encoded once as
unmasked binary frames and written in bulk ({source.chunk_bytes // 1024} KiB
`sendall`s) by a separate process: one SNAPSHOT frame first, then REALTIME frames. Mean frame
{default_bytes:.0f} bytes in DEFAULT keys; cryptofeed asks for SIMPLE keys (and
`isOnlyRealtime`), so it gets the same trades in SIMPLE keys ({simple_bytes:.0f} bytes), as Upbit
would send them. {source_line} {pinning} The machine's 2 cores are shared with whatever else
runs (load average at start: {load:.1f}), so absolute rates drift between runs: compare ratios
within the run.

{TABLE_HEAD}
{table}

Where each loop counts: the engine at its subscriber (every `Trade` the consumer task pulls from
`stream()`, after the transport, typed decoding, routing and the subscriber buffer); the bare
loops after `orjson.loads`; ccxt at `handle_message` (after ccxt decoded and processed the
frame; its `watch_trades` returns coalesce under load, a consumer task keeps calling it);
cryptofeed after `message_handler` (parsed with `Decimal` floats, a `Trade` built and passed to
an async callback). Event loops: Trio for the engine and the bare Trio loops, stock asyncio for
the others (cryptofeed with `FeedHandler(config={{"uvloop": False}})`). Socket reads: the bare
sans-IO loop asks for {SANSIO_RECEIVE // 1024} KiB per `receive_some`; trio-websocket (bare and in
the engine) reads its default {TRIO_WEBSOCKET_RECEIVE // 1024} KiB; the engine's and the bare
trio-websocket loop's message queues are the engine transport's
({TrioWebsocketTransport().message_queue_size}).

Versions: Python {platform.python_version()}; project: {project}; peers (in
`bench/.peers-venv`, Python {PEERS_PYTHON}, not project dependencies): {peer_text}.
""")


def _reflow(text: str) -> str:
    """Re-wrap the prose paragraphs (not the table) after the values were filled in."""
    paragraphs = text.strip().split("\n\n")
    return "\n\n".join(
        part if part.startswith("|") else textwrap.fill(" ".join(part.split()), 100)
        for part in paragraphs
    )


# -- main ---------------------------------------------------------------------------------------


def _cpus(pin: bool) -> tuple[int, int] | None:
    if not pin:
        return None
    usable = sorted(os.sched_getaffinity(0))
    return (usable[0], usable[1]) if len(usable) >= 2 else None


def main(argv: Sequence[str] | None = None) -> int:
    names = [loop.name for loop in LOOPS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--frames", type=int, default=200_000, help="timed frames per loop and round"
    )
    parser.add_argument("--warmup", type=int, help="untimed frames first (default frames/10)")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=", ".join(names))
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per loop run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin source and loop to CPUs")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.frames < 1:
        parser.error("--rounds and --frames must be at least 1")
    args.warmup = args.warmup if args.warmup is not None else max(1, args.frames // 10)
    if args.warmup < 1:
        parser.error("--warmup must be at least 1")
    loops = [loop for loop in LOOPS if not args.only or loop.name in args.only]
    cpus = _cpus(not args.no_pin)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with Source(cpus[0] if cpus else None) as source:
        runs = run_rounds(loops, source, args, cpus[1] if cpus else None)
        body = report(loops, runs, source, args, cpus, load)
    print(body)
    print(f"total {time.perf_counter() - started:.0f} s")
    if not (args.only or args.no_write):
        write_section(
            "peers", "Receive loops side by side: the engine, bare clients and peer libraries", body
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
