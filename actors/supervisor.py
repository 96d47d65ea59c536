"""An OTP-style supervisor on Trio.

Theory of operation
-------------------
A :class:`Supervisor` is one Trio task (its *loop*) plus a nursery holding one task per running
child. Each child task runs an incarnation inside its own cancel scope and never raises an
``Exception`` into the nursery: it reports the exit to the loop through the supervisor's own
(unbounded) control mailbox. The loop is the only writer of the supervisor's state and handles
one thing at a time, as an OTP supervisor does:

* **start**: children start one by one, in order, each with ``nursery.start`` inside a
  ``move_on_after(start_timeout)``; the next starts only once the previous is ready.
* **exit of a child**: decided by :mod:`actors.strategy`. A restart is counted in the
  :class:`~actors.RestartWindow` first; if that exceeds the intensity the supervisor stops every
  child in reverse order and raises :class:`~actors.SupervisorGaveUpError`. Otherwise the other
  members of the restart group are stopped in reverse order, the backoff delay is drawn, and a
  *plan* (the group, in start order, due at now + delay) is queued.
* **plans** run when due, between messages: each member is started in order and the restart
  hook is awaited before the next. A failed start is handled exactly like a crash of that child
  at that moment (counted, strategy applied again), so the rest of the group waits for it.
* **stop**: children are stopped in reverse start order; each gets a stop request (its mailbox
  stops accepting, ``ctx.wait_stop_requested()`` returns), ``shutdown`` seconds of grace, then
  cancellation of its scope.

Queued messages are handled before due plans, so a stop request is never starved by a crash
loop (OTP's ``try_again_restart``).

Where it lives
--------------
This module is the public face. :mod:`actors._supervisor` holds the :class:`Supervisor` (its API,
start-up and shutdown, and the loop); :mod:`actors._restarts` the restart handling (window,
plans, the strategy applied to an exit); :mod:`actors._inspect` lookups by name and
:meth:`Supervisor.tree` snapshots; :mod:`actors._child` starting, running and stopping one
incarnation; :mod:`actors._launch` :func:`open_supervisor` and :func:`supervisor_spec`.
"""

from __future__ import annotations

from actors._launch import open_supervisor as open_supervisor
from actors._launch import supervisor_spec as supervisor_spec
from actors._restarts import RestartHook as RestartHook
from actors._supervisor import Supervisor as Supervisor

__all__ = ("RestartHook", "Supervisor", "open_supervisor", "supervisor_spec")
