"""Packs wanted streams onto tickets, diffs plans, builds each ticket's request, measures
efficiency. Sans-IO and deterministic.

Theory of operation
-------------------
A wanted stream is a :class:`StreamKey` (type, code, orderbook units and level). Each pool of
tickets (WebSocket connections) gets a :class:`TicketPlan`: which keys each ticket carries, in
subscription-creation order, which is also the replay order after a reconnect.

- :func:`plan` updates a packing incrementally: **sticky** (keys stay where they are),
  **merged** (a new key joins the ticket that already carries its code, so one request can merge
  several types over the same codes), **fill-first** (otherwise the first ticket with room
  below ``capacity`` distinct codes). Fewer connections means fewer connects, which Upbit rate
  limits at 5 per second, and Upbit advises reusing connections; one socket carried all 855
  listed pairs in a probe.
- :func:`consolidate` runs after removals so a pool never keeps more tickets open than
  :func:`tickets_needed`; :func:`repack` is the from-scratch optimiser behind
  ``optimize_subscriptions``; :func:`diff` compares two plans.
- :func:`build_ticket_request` turns one ticket's complete set into type objects, marking codes
  that already stream ``is_only_realtime`` so nobody gets a duplicate SNAPSHOT;
  :func:`parking_request` and :func:`snapshot_request` build the other two kinds of request.
- :func:`measure_efficiency` defines ticket efficiency (see :class:`Efficiency`): stream
  efficiency x connection efficiency.
"""

from __future__ import annotations

from engine._plan_efficiency import Efficiency, measure_efficiency
from engine._plan_keys import (
    PRIVATE_TYPES,
    StreamKey,
    TicketDiff,
    TicketPlan,
    distinct_codes,
    ordered_unique,
)
from engine._plan_packing import consolidate, diff, plan, repack, tickets_needed
from engine._plan_requests import (
    build_ticket_request,
    fresh_keys,
    parking_request,
    snapshot_request,
)

__all__ = (
    "PRIVATE_TYPES",
    "Efficiency",
    "StreamKey",
    "TicketDiff",
    "TicketPlan",
    "build_ticket_request",
    "consolidate",
    "diff",
    "distinct_codes",
    "fresh_keys",
    "measure_efficiency",
    "ordered_unique",
    "parking_request",
    "plan",
    "repack",
    "snapshot_request",
    "tickets_needed",
)
