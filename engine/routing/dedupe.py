"""Trade de-duplication memory: which subscribers already received which ``sequential_id``.

Upbit's ``sequential_id`` is unique per trade but does not order trades, so "newer than the last
one" cannot tell a duplicate; only remembering recent ids can. Duplicates arise when a stream is
re-requested: a reconnect or a move to another ticket re-sends the latest trade as a SNAPSHOT,
and a REALTIME frame may race a re-requested SNAPSHOT of the same trade.

One window per trade code, shared by every ticket (a moved stream's SNAPSHOT arrives on a new
ticket). For each recent id it keeps the tuple of subscribers that received it; on the hot path
that tuple is the stream's own, shared, so remembering costs no allocation. Memory is bounded:
the oldest id leaves when ``limit`` is exceeded.
"""

from __future__ import annotations

from collections import deque

__all__ = ("TradeWindow",)


class TradeWindow:
    """The last ``limit`` trade ids of one code and who received each."""

    __slots__ = ("ids", "limit", "order")

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"the de-duplication window must be a positive int, got {limit!r}")
        self.limit = limit
        #: sequential_id -> subscribers that received it (read directly on the hot path).
        self.ids: dict[int, tuple[str, ...]] = {}
        self.order: deque[int] = deque()

    def add(self, sequential_id: int, recipients: tuple[str, ...]) -> None:
        """Record that ``recipients`` received ``sequential_id`` (more of them, if known)."""
        ids = self.ids
        known = ids.get(sequential_id)
        if known is not None:
            ids[sequential_id] = known + tuple(sub for sub in recipients if sub not in known)
            return
        ids[sequential_id] = recipients
        order = self.order
        order.append(sequential_id)
        if len(order) > self.limit:
            del ids[order.popleft()]

    def add_new(self, sequential_id: int, recipients: tuple[str, ...]) -> None:
        """:meth:`add` for an id known to be absent (the hot path checked): one lookup less."""
        ids = self.ids
        ids[sequential_id] = recipients
        order = self.order
        order.append(sequential_id)
        if len(order) > self.limit:
            del ids[order.popleft()]

    def __len__(self) -> int:
        return len(self.ids)
