"""Benchmark the actor runtime against bare Trio memory channels, in the same run.

Measures, each as the median of several rounds:

* **cast**: messages per second from one actor to another through ``ActorRef.cast``, against a
  bare producer/consumer loop over a memory channel of the same capacity;
* **call**: round trips per second through ``ActorRef.call``, against a bare request/response
  loop over two memory channels;
* **restart latency**: from a crash to the restarted incarnation's ``Started`` event, with zero
  backoff, on Trio's real clock.

Run: ``uv run python bench/actors.py`` (``--quick`` for a short smoke run that does not touch
docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import (
    ActorContext,
    ActorRef,
    ChildSpec,
    Reply,
    RestartIntensity,
    Started,
    open_supervisor,
)
from bench._report import write_section

CAPACITY = 64


@attrs.frozen
class Ping:
    value: int
    reply: Reply[int]


@attrs.frozen
class Crash:
    pass


async def bare_send_loop(n: int) -> float:
    """Seconds for ``n`` messages through a bare channel, producer and consumer tasks."""
    send, receive = trio.open_memory_channel[int](CAPACITY)

    async def produce() -> None:
        async with send:
            for i in range(n):
                await send.send(i)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with receive:
            async for _ in receive:
                pass
    return time.perf_counter() - start


async def cast_loop(n: int) -> float:
    """Seconds for ``n`` casts from a producer actor to a consumer actor."""
    done = trio.Event()
    go = trio.Event()
    consumer_ref: list[ActorRef[int]] = []

    async def consumer(
        ctx: ActorContext[int], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        consumer_ref.append(ctx.ref)
        task_status.started()
        count = 0
        async for _ in ctx.mailbox:
            count += 1
            if count == n:
                done.set()

    async def producer(
        ctx: ActorContext[None], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await go.wait()
        cast = consumer_ref[0].cast
        for i in range(n):
            await cast(i)
        await ctx.wait_stop_requested()

    specs: list[ChildSpec[Any]] = [
        ChildSpec("consumer", consumer, mailbox_size=CAPACITY),
        ChildSpec("producer", producer),
    ]
    async with open_supervisor(specs, name="bench"):
        start = time.perf_counter()
        go.set()
        await done.wait()
        return time.perf_counter() - start


async def bare_round_trips(n: int) -> float:
    """Seconds for ``n`` request/response round trips over two bare channels."""
    request_send, request_receive = trio.open_memory_channel[int](CAPACITY)
    response_send, response_receive = trio.open_memory_channel[int](1)

    async def serve() -> None:
        async with request_receive, response_send:
            async for value in request_receive:
                await response_send.send(value)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with request_send, response_receive:
            for i in range(n):
                await request_send.send(i)
                await response_receive.receive()
    return time.perf_counter() - start


async def call_loop(n: int) -> float:
    """Seconds for ``n`` calls from a client actor to a server actor."""
    done = trio.Event()
    go = trio.Event()
    server_ref: list[ActorRef[Ping]] = []

    async def server(
        ctx: ActorContext[Ping], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        server_ref.append(ctx.ref)
        task_status.started()
        async for ping in ctx.mailbox:
            ping.reply.send(ping.value)

    async def client(
        ctx: ActorContext[None], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await go.wait()
        call = server_ref[0].call
        for i in range(n):
            await call(lambda reply, i=i: Ping(i, reply))  # type: ignore[misc]
        done.set()
        await ctx.wait_stop_requested()

    specs: list[ChildSpec[Any]] = [
        ChildSpec("server", server, mailbox_size=CAPACITY),
        ChildSpec("client", client),
    ]
    async with open_supervisor(specs, name="bench"):
        start = time.perf_counter()
        go.set()
        await done.wait()
        return time.perf_counter() - start


async def restart_latencies(n: int) -> list[float]:
    """Seconds from sending a crash to the restarted incarnation being ready, ``n`` times."""

    async def fragile(
        ctx: ActorContext[Crash], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        async for _ in ctx.mailbox:
            raise RuntimeError("crash requested by the benchmark")

    spec = ChildSpec("fragile", fragile)
    latencies: list[float] = []
    intensity = RestartIntensity(max_restarts=n + 1, period=3600.0)
    async with open_supervisor([spec], name="bench", intensity=intensity) as supervisor:
        with supervisor.subscribe(max_buffer=16) as events:
            for _ in range(n):
                ref = supervisor.ref(spec)
                start = time.perf_counter()
                await ref.cast(Crash())
                async for event in events:
                    if isinstance(event, Started) and event.generation == ref.generation + 1:
                        break
                latencies.append(time.perf_counter() - start)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run; do not write the report")
    args = parser.parse_args()
    n, rounds, restarts = (2_000, 3, 50) if args.quick else (100_000, 7, 2_000)
    half = n // 2

    # Interleave the baselines with what they are compared to, round by round, so that load
    # from elsewhere on the machine hits both alike; report medians of times and of ratios.
    times: dict[str, list[float]] = {"bare": [], "cast": [], "bare_rt": [], "call": []}
    for _ in range(rounds):
        times["bare"].append(trio.run(bare_send_loop, n))
        times["cast"].append(trio.run(cast_loop, n))
        times["bare_rt"].append(trio.run(bare_round_trips, half))
        times["call"].append(trio.run(call_loop, half))
    bare, cast, bare_rt, call = (statistics.median(times[key]) for key in times)
    cast_ratio = statistics.median(c / b for c, b in zip(times["cast"], times["bare"], strict=True))
    call_ratio = statistics.median(
        c / b for c, b in zip(times["call"], times["bare_rt"], strict=True)
    )
    latencies = sorted(trio.run(restart_latencies, restarts))

    def rate(seconds: float, count: int) -> str:
        return f"{count / seconds:,.0f}"

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:,.1f}"

    p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
    rows = [
        ("bare channel send/receive (producer task -> consumer task)", bare, n, 1.0),
        ("`ActorRef.cast` (producer actor -> consumer actor)", cast, n, cast_ratio),
        ("bare request/response over two channels", bare_rt, half, 1.0),
        ("`ActorRef.call` round trip (client actor -> server actor)", call, half, call_ratio),
    ]
    table = "\n".join(
        f"| {label} | {rate(seconds, count)} | {us(seconds / count)} | {ratio:.2f} |"
        for label, seconds, count, ratio in rows
    )
    body = f"""
{rounds} rounds, each running every loop once in turn ({n:,} casts, {half:,} calls); rates are
medians over the rounds, ratios are medians of the per-round ratios. Mailbox capacity {CAPACITY}.

| path | rate (per s) | cost per message (µs) | ratio to its bare baseline |
|---|---:|---:|---:|
{table}

One `call` round trip costs {call / half / (bare / n):.2f}x one bare channel send/receive.

Restart latency (crash cast -> `Started` of the next incarnation, zero backoff, real clock,
{restarts:,} restarts): median {us(statistics.median(latencies))} µs, p99 {us(p99)} µs,
max {us(latencies[-1])} µs.
"""
    print(body)
    if not args.quick:
        write_section("actors", "Actor runtime (actors/)", body)


if __name__ == "__main__":
    main()
