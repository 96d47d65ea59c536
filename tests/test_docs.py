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


_APP_BLOCK = re.compile(
    r"^## In your application\n\n```python\n(.*?)^```", re.MULTILINE | re.DOTALL
)


def test_the_readme_application_example_survives_an_outage_and_ends() -> None:
    # The README's main example talks to the real Upbit, so it is not marked runnable; here it
    # runs as written against the emulator, through a dropped connection and an unsubscribe
    # from another task, and must print every event kind it handles.
    from contextlib import asynccontextmanager
    from io import StringIO
    from typing import Any

    from trio.testing import MockClock

    from engine import open_engine
    from engine.testing import MAJOR_MARKETS, DropConnections, EmulatorConfig, open_emulator

    match = _APP_BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match is not None, "README.md lost its '## In your application' example"
    source = match.group(1).replace("trio.run(main)", "")
    out = StringIO()
    namespace: dict[str, Any] = {"__name__": "__readme__", "print": lambda *a: print(*a, file=out)}
    exec(compile(source, "README.md", "exec"), namespace)

    @asynccontextmanager
    async def on_emulator() -> Any:
        async with (
            open_emulator(EmulatorConfig(markets=MAJOR_MARKETS, seed=7)) as emu,
            open_engine(ws_url=emu.ws_url, rest_url=emu.rest_url, seed=1) as eng,
            trio.open_nursery() as nursery,
        ):

            async def outage_then_unsubscribe() -> None:
                await trio.sleep(3)
                await emu.apply(DropConnections("all", "abort"))
                await trio.sleep(10)
                for sub in eng.subscriptions():  # the example keeps no id
                    await eng.unsubscribe_realtime(sub.id)

            nursery.start_soon(outage_then_unsubscribe)
            yield eng

    namespace["open_engine"] = on_emulator

    async def bounded() -> None:
        with trio.fail_after(600):  # mock seconds: a loop that stops ending fails, not hangs
            await namespace["main"]()

    trio.run(bounded, clock=MockClock(autojump_threshold=0))
    printed = out.getvalue()
    for expected in ("KRW-BTC", "interrupted:", "may have missed", "ended: unsubscribed"):
        assert expected in printed, f"the example printed no {expected!r}:\n{printed[-2000:]}"
