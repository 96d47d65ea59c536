"""Engine events: what the engine itself says inside a subscriber's stream.

``async for msg in engine.stream(sub_id)`` yields Upbit's messages (:mod:`engine.messages`) and,
between them, these events. There are two, one for each end of a connection outage:

- :class:`Interrupted` arrives as soon as the connection carrying some of the subscription's
  streams is lost: from now on the data on hand may be stale, and a quiet stream is quiet because
  nothing can arrive, not because nothing happened.
- :class:`Gap` arrives once the connection is restored, before the fresh SNAPSHOT of each stream:
  messages may have been missed between ``start`` and ``end``. Exactly one per outage and
  subscriber; it follows the matching :class:`Interrupted`.

Events are never dropped or conflated by a full buffer. Like messages they have a ``type``
(``"interrupted"``, ``"gap"``), so ``if msg.type == "trade"`` style dispatch needs no special case.
Times are Trio clock seconds (``trio.current_time()``), the clock the engine's timeouts use.
"""

from __future__ import annotations

from typing import ClassVar, TypeAlias

import attrs

__all__ = ("EngineEvent", "Gap", "Interrupted")


@attrs.frozen(weakref_slot=False)
class Interrupted:
    """The connection ``ticket`` carrying ``codes`` of this subscription was lost at ``start``.

    ``cause`` says why (the transport's error, a stall, a server close). A :class:`Gap` for the
    same ticket follows when the streams are restored.
    """

    type: ClassVar[str] = "interrupted"

    ticket: str
    start: float
    cause: str
    #: The pair codes of this subscription the connection carried (sorted; empty for a
    #: subscription to account-wide private streams such as ``myAsset``).
    codes: tuple[str, ...]


@attrs.frozen(weakref_slot=False)
class Gap:
    """Messages of ``codes`` may have been missed between ``start`` and ``end``.

    ``start`` is when the connection ``ticket`` was lost, ``end`` when the stream was restored (a
    fresh SNAPSHOT of each public stream follows). ``end`` is ``None`` when the subscription's
    streams left the lost connection before it came back (they were moved to another ticket,
    whose own SNAPSHOT ends the gap).
    """

    type: ClassVar[str] = "gap"

    ticket: str
    start: float
    end: float | None
    cause: str
    #: The pair codes affected (sorted; empty for account-wide private streams).
    codes: tuple[str, ...]

    @property
    def duration(self) -> float | None:
        """``end - start`` in seconds, or ``None`` for an open-ended gap."""
        return None if self.end is None else self.end - self.start


EngineEvent: TypeAlias = Interrupted | Gap
"""Any event the engine inserts into a subscriber's stream."""
