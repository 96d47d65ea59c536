"""Ticket efficiency, defined precisely. Re-exported by :mod:`engine.core`.

- **Stream efficiency** = useful streams / carried streams. *Carried* counts every stream an open
  ticket carries: duplicates (a key on two tickets counts twice), stale streams (carried but no
  longer wanted) and one per parking request. *Useful* counts each distinct wanted stream that is
  carried, once. 1.0 when nothing is carried.
- **Connection efficiency** = tickets needed / tickets open, where tickets needed is
  ``ceil(distinct wanted codes / capacity)`` (at least 1 if anything is wanted, 0 if nothing,
  at most the pool size). 1.0 when both are 0; 0.0 when something is wanted but nothing is open;
  capped at 1.0 (an overloaded pool needs more tickets than it has open).
- **Ticket efficiency** = stream efficiency x connection efficiency.

The performance target is at least 60 %. A pool packed by the planner sits at 100 % in steady state;
the only expected loss is a parked (or idle) ticket that is still open, which cleanup closes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import attrs

from engine.core.keys import StreamKey, distinct_codes, ordered_unique
from engine.core.packing import tickets_needed

__all__ = ("Efficiency", "measure_efficiency")


@attrs.frozen
class Efficiency:
    """Ticket efficiency of one pool, with every part it is computed from."""

    #: Distinct wanted streams.
    wanted_streams: int
    #: Streams carried by open tickets (duplicates, stale streams and parking requests included).
    carried_streams: int
    #: Distinct wanted streams that some open ticket carries.
    useful_streams: int
    #: Distinct codes among the wanted streams.
    wanted_codes: int
    #: Distinct codes a ticket should carry at most.
    capacity: int
    #: The fewest tickets that could carry the wanted codes.
    tickets_needed: int
    #: Tickets open (carrying, parked or idle).
    tickets_open: int
    #: useful_streams / carried_streams.
    stream: float
    #: tickets_needed / tickets_open.
    connection: float
    #: stream x connection.
    ticket: float


def measure_efficiency(
    wanted: Iterable[StreamKey],
    carried: Mapping[str, Iterable[StreamKey]],
    *,
    capacity: int,
    parked: Collection[str] = (),
    max_tickets: int | None = None,
) -> Efficiency:
    """Efficiency of a pool whose open tickets carry ``carried`` (ticket id -> streams).

    ``parked`` names open tickets holding a parking request (each adds one unwanted stream);
    ``max_tickets`` is the pool size, which caps tickets needed.
    """
    wanted_keys = ordered_unique(wanted)
    wanted_set = set(wanted_keys)
    carried_lists = {name: tuple(keys) for name, keys in carried.items()}
    carried_count = sum(len(keys) for keys in carried_lists.values()) + sum(
        1 for name in parked if name in carried_lists
    )
    useful = len({key for keys in carried_lists.values() for key in keys if key in wanted_set})
    codes = len(distinct_codes(wanted_keys))
    needed = tickets_needed(codes, capacity, max_tickets=max_tickets)
    open_count = len(carried_lists)
    stream = useful / carried_count if carried_count else 1.0
    # Nothing open is perfect if nothing is wanted, and worthless if something is.
    nothing_open = 0.0 if needed else 1.0
    connection = min(1.0, needed / open_count) if open_count else nothing_open
    return Efficiency(
        wanted_streams=len(wanted_keys),
        carried_streams=carried_count,
        useful_streams=useful,
        wanted_codes=codes,
        capacity=capacity,
        tickets_needed=needed,
        tickets_open=open_count,
        stream=stream,
        connection=connection,
        ticket=stream * connection,
    )
