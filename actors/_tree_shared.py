"""State shared by every supervisor of one tree (a leaf module: actors, children and named refs
all use it, and it uses none of them)."""

from __future__ import annotations

import random

import attrs
import trio

from actors.events import EventBus

__all__ = ("TreeShared",)


@attrs.define(eq=False)
class TreeShared:
    """State shared by every supervisor of one tree."""

    bus: EventBus
    rng: random.Random
    generations: dict[tuple[str, ...], int] = attrs.field(factory=dict)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def next_generation(self, path: tuple[str, ...]) -> int:
        # Kept per path for the whole tree, so a child's generations keep growing even across a
        # restart of its supervisor or a terminate/start_child under the same name.
        generation = self.generations.get(path, -1) + 1
        self.generations[path] = generation
        return generation

    def notify_changed(self) -> None:
        """Wake everyone waiting for some child to change state (named refs waiting to resolve)."""
        self.changed.set()
        self.changed = trio.Event()
