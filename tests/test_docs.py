"""The runnable examples in the docs run, so the docs stay true to the code.

A fenced ``python`` block directly preceded by the line ``<!-- run -->`` is executed in a fresh
namespace (top-level ``await`` allowed, run under Trio). Blocks in one file may build on earlier
blocks of the same section only through what they import themselves.
"""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "docs" / "USAGE.md")
_BLOCK = re.compile(r"^<!-- run -->\n```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _runnable_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 3
            blocks.append((f"{path.name}:{line}", match.group(1)))
    return blocks


BLOCKS = _runnable_blocks()


def test_docs_have_runnable_examples() -> None:
    # Guards against the marker being lost in an edit, which would silently test nothing.
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("where", "source"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_example_runs(where: str, source: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = compile(source, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    result = eval(code, namespace)
    if isinstance(result, types.CoroutineType):
        coroutine = result

        async def run() -> None:
            await coroutine

        trio.run(run)
    capsys.readouterr()
