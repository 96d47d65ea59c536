"""The subscription lifecycle as an explicit transition table (h11 style).

Theory of operation
-------------------
A subscription's state says where its streams stand *on the wire*:

- ``PENDING``: registered; not every one of its streams has been sent on a live connection yet
  (new, or its ticket is reconnecting).
- ``ACTIVE``: every stream it wants is in the last set its ticket(s) confirmed sending.
- ``MODIFYING``: its codes changed and the new set is not confirmed sent yet.
- ``CLOSING``: unsubscribed; some live connection may still carry (or is queued to send) a stream
  only it wanted.
- ``CLOSED`` / ``FAILED``: terminal. Nothing of it is wanted any more.

Events are what the registry learns (see :class:`Event`). Every allowed ``(state, event)`` pair is
listed in :data:`TRANSITIONS`; a pair that maps a state to itself is allowed and changes nothing
(a late message for a closed subscription, a repeated unsubscribe). A pair that is not listed is
a bug in the engine and raises :class:`IllegalTransition`: the registry checks the user-reachable
cases (modifying a closed subscription) first and raises a user-facing error instead.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ("TRANSITIONS", "Event", "IllegalTransition", "SubscriptionState", "next_state")


class SubscriptionState(enum.StrEnum):
    """Where a subscription's streams stand on the wire (see the module's theory of operation)."""

    PENDING = "pending"
    ACTIVE = "active"
    MODIFYING = "modifying"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"

    @property
    def is_live(self) -> bool:
        """Whether the subscription still wants its streams (PENDING, ACTIVE or MODIFYING)."""
        return self in _LIVE

    @property
    def is_terminal(self) -> bool:
        """CLOSED or FAILED."""
        return self in (SubscriptionState.CLOSED, SubscriptionState.FAILED)


_LIVE = frozenset(
    {SubscriptionState.PENDING, SubscriptionState.ACTIVE, SubscriptionState.MODIFYING}
)


class Event(enum.StrEnum):
    """What the registry learns about a subscription."""

    #: A message was delivered to it.
    ACTIVATE = "activate"
    #: Every stream it wants is in the sets its tickets confirmed sending.
    APPLIED = "applied"
    #: Its codes were changed.
    MODIFY = "modify"
    #: A ticket carrying some of its streams lost its connection.
    LOST = "lost"
    #: The user unsubscribed it (soft or hard).
    UNSUBSCRIBE = "unsubscribe"
    #: No live connection carries, or is queued to send, a stream only it wanted.
    STOPPED = "stopped"
    #: It failed (validation after the fact, server error, consumer overflow, ...).
    FAIL = "fail"


_S = SubscriptionState
_E = Event

#: state -> event -> next state. Missing pairs are illegal.
TRANSITIONS: Mapping[SubscriptionState, Mapping[Event, SubscriptionState]] = MappingProxyType(
    {
        _S.PENDING: MappingProxyType(
            {
                _E.ACTIVATE: _S.ACTIVE,
                _E.APPLIED: _S.ACTIVE,
                _E.MODIFY: _S.PENDING,
                _E.LOST: _S.PENDING,
                _E.UNSUBSCRIBE: _S.CLOSING,
                _E.FAIL: _S.FAILED,
            }
        ),
        _S.ACTIVE: MappingProxyType(
            {
                _E.ACTIVATE: _S.ACTIVE,
                _E.APPLIED: _S.ACTIVE,
                _E.MODIFY: _S.MODIFYING,
                _E.LOST: _S.PENDING,
                _E.UNSUBSCRIBE: _S.CLOSING,
                _E.FAIL: _S.FAILED,
            }
        ),
        _S.MODIFYING: MappingProxyType(
            {
                # Data for the codes it kept keeps flowing; that does not finish the change.
                _E.ACTIVATE: _S.MODIFYING,
                _E.APPLIED: _S.ACTIVE,
                _E.MODIFY: _S.MODIFYING,
                _E.LOST: _S.PENDING,
                _E.UNSUBSCRIBE: _S.CLOSING,
                _E.FAIL: _S.FAILED,
            }
        ),
        _S.CLOSING: MappingProxyType(
            {
                # Up to a couple of stale frames arrive after a replacement (docs/UPBIT.md).
                _E.ACTIVATE: _S.CLOSING,
                _E.UNSUBSCRIBE: _S.CLOSING,
                _E.STOPPED: _S.CLOSED,
                _E.FAIL: _S.FAILED,
            }
        ),
        _S.CLOSED: MappingProxyType(
            {_E.ACTIVATE: _S.CLOSED, _E.UNSUBSCRIBE: _S.CLOSED, _E.FAIL: _S.CLOSED}
        ),
        _S.FAILED: MappingProxyType(
            {_E.ACTIVATE: _S.FAILED, _E.UNSUBSCRIBE: _S.FAILED, _E.FAIL: _S.FAILED}
        ),
    }
)


class IllegalTransition(RuntimeError):
    """An event arrived in a state where it cannot happen: a bug in the engine, not user error."""

    def __init__(self, subscription_id: str, state: SubscriptionState, event: Event) -> None:
        self.subscription_id = subscription_id
        self.state = state
        self.event = event
        allowed = ", ".join(e.value for e in TRANSITIONS[state]) or "none"
        super().__init__(
            f"internal error: subscription {subscription_id} cannot take event {event.value!r} "
            f"in state {state.value!r} (allowed there: {allowed}); please report this"
        )


def next_state(subscription_id: str, state: SubscriptionState, event: Event) -> SubscriptionState:
    """The state after ``event``; raises :class:`IllegalTransition` for an unlisted pair."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(subscription_id, state, event) from None
