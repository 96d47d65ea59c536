"""A small, generic, supervised actor runtime on Trio. It knows nothing about Upbit.

An *actor* is an async callable that owns its nursery, reads a bounded mailbox and reports ready
with ``task_status.started()``. A :class:`Supervisor` starts actors in order, restarts them by an
OTP strategy within a restart intensity and with jittered backoff, stops them in reverse order,
and publishes what happens as events and as a frozen tree snapshot.
"""

from __future__ import annotations

from actors.actor import ActorContext as ActorContext
from actors.actor import ActorFunction as ActorFunction
from actors.actor import Shutdown as Shutdown
from actors.errors import ActorDeadError as ActorDeadError
from actors.errors import ActorError as ActorError
from actors.errors import CallTimeoutError as CallTimeoutError
from actors.errors import ChildNotRunningError as ChildNotRunningError
from actors.errors import ChildStartError as ChildStartError
from actors.errors import DuplicateChildError as DuplicateChildError
from actors.errors import NeverReadyError as NeverReadyError
from actors.errors import ReplyAlreadySentError as ReplyAlreadySentError
from actors.errors import StartTimeoutError as StartTimeoutError
from actors.errors import SupervisorGaveUpError as SupervisorGaveUpError
from actors.errors import UnknownChildError as UnknownChildError
from actors.events import EventSubscription as EventSubscription
from actors.events import Exited as Exited
from actors.events import GaveUp as GaveUp
from actors.events import Restarting as Restarting
from actors.events import RestartRecord as RestartRecord
from actors.events import Started as Started
from actors.events import SupervisorEvent as SupervisorEvent
from actors.intensity import Backoff as Backoff
from actors.intensity import BackoffPolicy as BackoffPolicy
from actors.intensity import Jitter as Jitter
from actors.intensity import RestartIntensity as RestartIntensity
from actors.intensity import RestartWindow as RestartWindow
from actors.mailbox import ActorRef as ActorRef
from actors.mailbox import Mailbox as Mailbox
from actors.mailbox import MailboxStatistics as MailboxStatistics
from actors.mailbox import Reply as Reply
from actors.named import NamedRef as NamedRef
from actors.spec import ChildSpec as ChildSpec
from actors.strategy import ExitKind as ExitKind
from actors.strategy import ExitReason as ExitReason
from actors.strategy import Restart as Restart
from actors.strategy import Strategy as Strategy
from actors.strategy import restart_group as restart_group
from actors.strategy import should_restart as should_restart
from actors.supervisor import RestartHook as RestartHook
from actors.supervisor import Supervisor as Supervisor
from actors.supervisor import open_supervisor as open_supervisor
from actors.supervisor import supervisor_spec as supervisor_spec
from actors.tree import NodeKind as NodeKind
from actors.tree import NodeSnapshot as NodeSnapshot
from actors.tree import NodeState as NodeState

__all__ = (
    "ActorContext",
    "ActorDeadError",
    "ActorError",
    "ActorFunction",
    "ActorRef",
    "Backoff",
    "BackoffPolicy",
    "CallTimeoutError",
    "ChildNotRunningError",
    "ChildSpec",
    "ChildStartError",
    "DuplicateChildError",
    "EventSubscription",
    "ExitKind",
    "ExitReason",
    "Exited",
    "GaveUp",
    "Jitter",
    "Mailbox",
    "MailboxStatistics",
    "NamedRef",
    "NeverReadyError",
    "NodeKind",
    "NodeSnapshot",
    "NodeState",
    "Reply",
    "ReplyAlreadySentError",
    "Restart",
    "RestartHook",
    "RestartIntensity",
    "RestartRecord",
    "RestartWindow",
    "Restarting",
    "Shutdown",
    "Started",
    "StartTimeoutError",
    "Strategy",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorGaveUpError",
    "UnknownChildError",
    "open_supervisor",
    "restart_group",
    "should_restart",
    "supervisor_spec",
)
