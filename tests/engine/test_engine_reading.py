"""The reading model, through the public API: one reader per subscription, re-opening a stream
marks it consumed again, ``cleanup_inactive`` never ends a stream that is read, and a stream
never stops without an ``Ended`` event or an exception."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from engine import Ended, StreamBusyError
from engine.core.registry import ConflictKind
from engine.events import EVENT_TYPES

from ._engine_support import WAIT, engine_on_emulator, settle, until


async def test_a_second_stream_while_one_is_open_is_refused_with_the_fix(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, _emu):
        sid = await eng.subscribe_realtime("trade", "KRW-BTC")
        first = eng.stream(sid)
        with pytest.raises(StreamBusyError, match="one reader") as info:
            eng.stream(sid)
        assert "Close that stream first" in str(info.value)
        first.close()
        # Closed: the subscription can be read again, and the new stream gets every item.
        async with eng.stream(sid) as second:
            items = await until(second, lambda item: not isinstance(item, EVENT_TYPES))
            assert items[-1].type == "trade"


async def test_a_second_task_cannot_split_one_stream(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, _emu):
        sid = await eng.subscribe_realtime("trade", "KRW-BTC")
        refused: list[BaseException] = []
        got: list[object] = []
        async with eng.stream(sid) as stream, trio.open_nursery() as nursery:

            async def reader() -> None:
                async for item in stream:
                    got.append(item)
                    if len(got) == 5:
                        nursery.start_soon(intruder)
                    if len(got) == 30:
                        return

            async def intruder() -> None:
                try:
                    await stream.receive()
                except StreamBusyError as exc:
                    refused.append(exc)

            nursery.cancel_scope.deadline = trio.current_time() + WAIT
            nursery.start_soon(reader)
        assert len(got) == 30, "the first reader got every item it asked for"
        assert len(refused) == 1, "the second task was refused at once"
        assert "is read by task" in str(refused[0])


async def test_a_stream_whose_reader_ended_can_be_taken_over(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, _emu):
        sid = await eng.subscribe_realtime("trade", "KRW-BTC")
        stream = eng.stream(sid)

        async def read_one() -> None:
            await stream.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_one)
        # The task that read it has ended (without closing it): another task may read on...
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_one)
        # ...and once that one has ended too, a new stream may be opened.
        replacement = eng.stream(sid)
        assert stream.closed, "the abandoned stream was closed when replaced"
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive()
        await replacement.receive()


async def test_reopening_a_stream_marks_it_consumed_again(autojump_clock: MockClock) -> None:
    # The reported sequence: async with + break, then stream() again and read on.
    async with engine_on_emulator() as (eng, emu):
        sid = await eng.subscribe_realtime("trade", "KRW-BTC")
        async with eng.stream(sid) as stream:
            async for _ in stream:
                break
        async with eng.stream(sid) as stream:
            await settle(eng, emu)
            outcome = await eng.cleanup_inactive()
            assert sid not in outcome.subscriptions, "a re-opened stream is consumed"
            assert eng.subscription(sid).consumer_open
            items = await until(stream, lambda item: not isinstance(item, EVENT_TYPES))
            assert items[-1].type == "trade", "the reader reads on"
        # Closed again: now it is inactive.
        outcome = await eng.cleanup_inactive()
        assert outcome.subscriptions == (sid,)


async def test_cleanup_never_ends_a_stream_that_is_read(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        # A quiet stream: no trades for a while, and the reader waits on it.
        quiet = await eng.subscribe_realtime("ticker", "KRW-XRP")
        unread = await eng.subscribe_realtime("ticker", "KRW-ETH")
        await settle(eng, emu)
        stream = eng.stream(quiet)
        eng.stream(unread).close()

        async def read_forever() -> None:
            async for _ in stream:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_forever)
            await trio.sleep(5)  # mock time passes: far beyond inactive_after
            outcome = await eng.cleanup_inactive(inactive_after=0.001)
            assert quiet not in outcome.subscriptions, "a read stream is never released"
            assert unread in outcome.subscriptions, "a closed one is"
            assert eng.subscription(quiet).is_live
            nursery.cancel_scope.cancel()


async def test_releasing_a_read_subscription_ends_its_loop_with_an_event(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        mine = await eng.subscribe_realtime("trade", "KRW-BTC")
        other = await eng.subscribe_realtime("trade", "KRW-ETH")
        ended: list[object] = []
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                async with eng.stream(mine) as stream:
                    async for item in stream:
                        ended.append(item)
                    # The loop ended by itself, after an explicit last item.

            nursery.start_soon(reader)
            await settle(eng, emu)
            with trio.fail_after(WAIT):
                await emu.wait_for(lambda: bool(ended))  # the reader is in its loop
            await eng.unsubscribe_realtime(mine)
        assert isinstance(ended[-1], Ended), "the last item says the stream ended"
        assert ended[-1].reason == "unsubscribed"
        assert ended[-1].subscription_id == mine
        assert ended[-1].utc is not None
        # A stream opened after the end says so too, rather than end silently.
        async with eng.stream(mine) as late:
            item = await late.receive()
            assert isinstance(item, Ended)
            with pytest.raises(trio.EndOfChannel):
                await late.receive()
        # Engine shutdown ends the other reader's loop explicitly as well.
        stream = eng.stream(other)
    last: object = None
    async for item in stream:
        last = item
    assert isinstance(last, Ended)
    assert last.reason == "the engine closed"


async def test_duplicate_advice_matches_the_reading_model(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, _emu):
        await eng.subscribe_realtime("ticker", "KRW-BTC")
        await eng.subscribe_realtime("ticker", "KRW-BTC")
        (finding,) = [c for c in eng.detect_conflicts() if c.kind is ConflictKind.DUPLICATE]
        assert "several places" not in finding.message
        assert "one reader" in finding.message
        assert "memory channel" in finding.message
        problems = eng.subscription_problems("ticker", "KRW-BTC")
        assert any("one reader" in problem for problem in problems)


async def test_an_unclosed_stream_of_an_ended_subscription_holds_no_reader_slot(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, _emu):
        sid = await eng.subscribe_realtime("trade", "KRW-BTC")
        forgotten = eng.stream(sid)  # never closed, never read
        await eng.unsubscribe_realtime(sid)
        # The ended subscription can still be opened (to read its end) without StreamBusyError,
        # and the forgotten stream still reads to its Ended.
        late = eng.stream(sid)
        assert isinstance(await late.receive(), Ended)
        assert isinstance(await forgotten.receive(), Ended)
