"""Counting frames the same way in every receive loop of ``bench/peers.py`` (standard library only).

Imported by the project's own loops and by the peer runners in ``bench/peers/``, which run in the
separate peers virtualenv, so nothing here may import a project dependency.

A loop calls :meth:`Meter.tick` once per frame it has received *and* decoded. The first
``warmup`` ticks are not timed (connection set-up, the SNAPSHOT, caches warming); the clock and
the process CPU time are read at tick ``warmup`` and again at tick ``warmup + frames``, and then
``done`` is set. Each runner prints one JSON line: :func:`result_line` or :func:`error_line`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

__all__ = ("Meter", "error_line", "pin", "result_line")


class Meter:
    """Times ``frames`` ticks after ``warmup`` ticks; calls ``on_done`` once when finished."""

    __slots__ = ("count", "cpu", "done", "first", "last", "on_done", "seconds", "started")

    def __init__(self, warmup: int, frames: int, on_done: Callable[[], None] | None = None) -> None:
        self.count = 0
        self.first = warmup
        self.last = warmup + frames
        self.started = (0.0, 0.0)
        self.seconds = 0.0
        self.cpu = 0.0
        self.done = False
        self.on_done = on_done

    def tick(self) -> None:
        count = self.count = self.count + 1
        if count == self.first:
            self.started = (time.perf_counter(), time.process_time())
        elif count == self.last:
            wall, cpu = self.started
            self.seconds = time.perf_counter() - wall
            self.cpu = time.process_time() - cpu
            self.done = True
            if self.on_done is not None:
                self.on_done()

    def result(self, **extra: object) -> str:
        """The result line of a finished meter."""
        frames = self.last - self.first
        return result_line(frames=frames, seconds=self.seconds, cpu=self.cpu, **extra)


def result_line(*, frames: int, seconds: float, cpu: float, **extra: object) -> str:
    return json.dumps(
        {"ok": True, "frames": frames, "seconds": seconds, "cpu": cpu, **extra}, sort_keys=True
    )


def error_line(reason: str, **extra: object) -> str:
    return json.dumps({"ok": False, "error": reason, **extra}, sort_keys=True)


def pin(cpu: int | None) -> None:
    """Pin this process to one CPU (``None``: leave it to the scheduler)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
