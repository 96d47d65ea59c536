"""Events and registry entries carry wall-clock time (UTC) beside the Trio clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trio.testing import MockClock

from engine import Gap, Interrupted

from ._engine_support import engine_on_emulator, until


async def test_events_and_registry_entries_say_when_in_utc(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        async with eng.stream(sub) as stream:
            await until(stream, lambda item: not isinstance(item, Interrupted | Gap))
            await emu.drop()
            items = await until(stream, lambda item: isinstance(item, Gap))
        interrupted, gap = items[0], items[-1]
        assert isinstance(interrupted, Interrupted)
        assert isinstance(gap, Gap)
        wall = datetime.now(UTC)
        for event in (interrupted, gap):
            assert event.utc is not None
            assert event.utc.tzinfo is UTC
            assert abs(wall - event.utc) < timedelta(minutes=1)
        assert gap.utc is not None
        assert interrupted.utc is not None
        assert gap.utc >= interrupted.utc
        entry = eng.registry()["realtime-0"]
        created, last = entry.created_at_utc, entry.last_message_utc
        assert isinstance(created, datetime)
        assert isinstance(last, datetime)
        # The same moments as the Trio times beside them, on the wall clock.
        last_at, created_at = entry.last_message, entry.created_at
        assert isinstance(last_at, float)
        assert isinstance(created_at, float)
        trio_span = last_at - created_at
        assert abs((last - created).total_seconds() - trio_span) < 1e-3
        assert entry.last_failure_at_utc is not None
