"""Shared by the benchmark scripts: write one script's results into docs/BENCHMARKS.md.

Each script owns one section, delimited by HTML comment markers, and replaces only that section,
so scripts can be re-run in any order without clobbering each other's numbers.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import sys
import time
from pathlib import Path

__all__ = ("BENCHMARKS_MD", "command_line", "machine_line", "write_section")

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"


def command_line() -> str:
    """The exact command that produced the numbers, as a user would type it."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(Path.cwd())
    return "uv run python " + shlex.join([str(script), *sys.argv[1:]])


def machine_line() -> str:
    return (
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )


def write_section(name: str, title: str, body: str, *, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md with ``title`` and ``body``."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = (
        f"{start}\n## {title}\n\nCommand: `{command_line()}`  \n"
        f"Measured: {machine_line()}\n\n{body.strip()}\n{end}"
    )
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
