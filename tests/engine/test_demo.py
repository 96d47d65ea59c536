"""The demo runs the whole scenario on the emulator and reports what happened."""

from __future__ import annotations

import io

from engine.cli.demo import run_demo


async def test_demo_runs_every_step_and_recovers_from_the_drop(autojump_clock: object) -> None:
    out = io.StringIO()
    summary = await run_demo(duration=20, seed=3, out=out)
    text = out.getvalue()

    # Every data type subscribed produced messages.
    assert set(summary.messages_by_type) == {"ticker", "trade", "orderbook", "candle.1s"}
    assert all(count > 0 for count in summary.messages_by_type.values())
    # The bulk snapshot covered every KRW pair of the emulator's catalog plus 5 orderbooks.
    assert summary.snapshot_codes > 200
    # The dropped connection was restored and every live stream was told about the gap.
    assert summary.reconnects >= 1
    assert summary.gaps >= 4
    # Upbit's limits were never exceeded, and the planner kept every ticket useful.
    assert summary.emulator_limit_violations == 0
    assert summary.ticket_efficiency == 1.0
    for step in (
        "1. one-shot",
        "2. bulk",
        "3. realtime",
        "4. fault",
        "5. modify",
        "6. soft",
        "7. hard",
    ):
        assert step in text
    assert "supervisor tree:" in text
    assert "realtime-0" in text
    assert text.rstrip().splitlines()[-1].startswith("summary:")
