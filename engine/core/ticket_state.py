"""One ticket's mutable state inside the registry (only the registry touches it)."""

from __future__ import annotations

import attrs

from engine.core.keys import StreamKey
from engine.core.records import SubscriptionKind, TicketStatus

__all__ = ("TicketState",)

#: Failed subscriptions each ticket remembers for ``registry()`` (the newest ones).
_FAILED_KEPT = 10


@attrs.define
class TicketState:
    """Mutable per-ticket state; only the registry touches it."""

    name: str
    mode: SubscriptionKind
    desired: tuple[StreamKey, ...] = ()
    generation: int | None = None
    last_generation: int = 0
    sent: tuple[StreamKey, ...] | None = None
    sent_set: frozenset[StreamKey] = frozenset()
    queued: list[tuple[StreamKey, ...]] = attrs.Factory(list)
    #: The registry's serial of each queued set (see ``TicketChange.serial``).
    serials: list[int] = attrs.Factory(list)
    created_at: float | None = None
    connected_at: float | None = None
    last_message: float | None = None
    lost_cause: str | None = None
    awaiting: dict[StreamKey, float] = attrs.Factory(dict)
    failure: str | None = None
    failed_at: float | None = None
    suspects: list[str] = attrs.Factory(list)
    failed: list[tuple[str, str, float]] = attrs.Factory(list)

    def note_failed(self, sub_id: str, reason: str, now: float) -> None:
        self.failed.append((sub_id, reason, now))
        del self.failed[:-_FAILED_KEPT]
        if sub_id in self.suspects:
            self.suspects.remove(sub_id)

    def status(self) -> TicketStatus:
        return TicketStatus(
            ticket=self.name,
            mode=self.mode,
            desired=self.desired,
            generation=self.generation,
            last_generation=self.last_generation,
            sent=self.sent,
            queued=tuple(self.queued),
            created_at=self.created_at,
            connected_at=self.connected_at,
            last_message=self.last_message,
            lost_cause=self.lost_cause,
            awaiting_snapshot=tuple(self.awaiting.items()),
            failure=self.failure,
            failed_at=self.failed_at,
            suspects=tuple(self.suspects),
            failed=tuple(self.failed),
        )
