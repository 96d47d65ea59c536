"""What the receive loops could not read: counted, logged sparingly, never fatal.

The engine is a tolerant reader (docs/UPBIT.md#drift-history). A frame that cannot be decoded at
all is skipped and counted per reason (``ProtocolError.reason``); a frame of a type the engine does
not model is counted per type; a field the decoder had to leave ``None`` is counted per
``(type, field)`` as drift. None of these ends a connection: only transport failures, error
frames and stalls do.

Each reason (and each drifting data type) is logged at WARNING at most once per
``log_interval`` seconds, with how many more happened since and a short sample of the frame, so a
server that drifts on every frame costs one log line a minute, not thousands. Sans-IO: the clock
is injected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from engine.errors import ProtocolError
from engine.observability.operator_events import ErrorFrame, FrameDrift, OperatorEvent
from engine.observability.throttle import LogThrottle

__all__ = ("LOG_INTERVAL", "MAX_KEYS", "OTHER", "SAMPLE_BYTES", "FrameReport", "sample_of")

#: Seconds between two WARNING lines about the same reason.
LOG_INTERVAL: Final = 60.0
#: The most of a frame a log line quotes.
SAMPLE_BYTES: Final = 200
#: Distinct unknown types and drifted (type, field) pairs counted by name; the server chooses
#: them, so beyond this many they are counted under "other" (memory and metric labels bounded).
MAX_KEYS: Final = 64
OTHER: Final = "other"

_log = logging.getLogger("engine.wire")


def sample_of(frame: bytes | bytearray | memoryview | str) -> str:
    """At most :data:`SAMPLE_BYTES` of ``frame``, printable, marked when cut."""
    raw = frame.encode("utf-8", "replace") if isinstance(frame, str) else bytes(frame)
    cut = raw[:SAMPLE_BYTES]
    text = cut.decode("utf-8", "replace")
    return repr(text) + ("..." if len(raw) > SAMPLE_BYTES else "")


class FrameReport:
    """Counters of undecodable frames, unmodelled types and drifted fields (a ``DriftSink``).

    Written by the receive loops of every ticket (realtime, private and snapshot); read by
    ``Engine.metrics()``.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        log_interval: float = LOG_INTERVAL,
        logger: logging.Logger = _log,
    ) -> None:
        #: Frames skipped because they could not be decoded, per ``ProtocolError.reason``.
        self.undecodable: dict[str, int] = {}
        #: Data frames of types the engine does not model, per type.
        self.unknown_types: dict[str, int] = {}
        #: Fields left ``None`` (or at their default), per ``(data type, field)``.
        self.drifted_fields: dict[tuple[str, str], int] = {}
        #: Drifted fields per problem (``missing``, ``null``, ``type``).
        self.drift_problems: dict[str, int] = {}
        #: Error frames received, per Upbit error name (each one closes its connection).
        self.error_frames: dict[str, int] = {}
        self._throttle = LogThrottle(clock, log_interval)
        self._log = logger
        self._clock = clock
        #: Told of each report that is logged (the engine's journal), and of every error frame.
        self.on_report: Callable[[OperatorEvent], None] | None = None

    def error_frame(self, ticket: str, name: str, message: str) -> None:
        """Upbit sent the error frame ``name`` on ``ticket`` (the connection ends with it)."""
        name = _bounded(self.error_frames, name)
        self.error_frames[name] = self.error_frames.get(name, 0) + 1
        if self.on_report is not None:
            self.on_report(ErrorFrame(at=self._clock(), ticket=ticket, error=name, detail=message))

    def _told(self, problem: str, detail: str, ticket: str, suppressed: int) -> None:
        if self.on_report is not None:
            self.on_report(
                FrameDrift(
                    at=self._clock(),
                    problem=problem,
                    detail=detail,
                    ticket=ticket,
                    suppressed=suppressed,
                )
            )

    def undecodable_frame(
        self, error: ProtocolError, frame: bytes | bytearray | memoryview | str, ticket: str
    ) -> None:
        """``frame``, received on ``ticket``, was skipped because of ``error``."""
        reason = error.reason
        self.undecodable[reason] = self.undecodable.get(reason, 0) + 1
        suppressed = self._throttle.admit(f"undecodable:{reason}")
        if suppressed is not None:
            self._log.warning(
                "skipped an undecodable frame on %s (%s: %s)%s; sample %s",
                ticket,
                reason,
                error,
                _more(suppressed),
                sample_of(frame),
                extra={"ticket": ticket, "reason": reason, "suppressed": suppressed},
            )
            self._told("undecodable", f"{reason}: {error}", ticket, suppressed)

    def unknown_type(self, data_type: str, ticket: str) -> None:
        """A frame of ``data_type``, which the engine does not model, arrived on ``ticket``."""
        data_type = _bounded(self.unknown_types, data_type)
        self.unknown_types[data_type] = self.unknown_types.get(data_type, 0) + 1
        suppressed = self._throttle.admit(f"unknown:{data_type}")
        if suppressed is not None:
            self._log.warning(
                "skipped a frame of unmodelled type %r on %s%s",
                data_type[:40],
                ticket,
                _more(suppressed),
                extra={"ticket": ticket, "data_type": data_type, "suppressed": suppressed},
            )
            self._told("unmodelled_type", data_type[:40], ticket, suppressed)

    def field_drift(self, data_type: str, field: str, problem: str) -> None:
        """Count a field the decoder left ``None``; a WARNING per data type a minute at most."""
        key = (data_type, field)
        if key not in self.drifted_fields and len(self.drifted_fields) >= MAX_KEYS:
            key = data_type, field = (OTHER, OTHER)
        self.drifted_fields[key] = self.drifted_fields.get(key, 0) + 1
        self.drift_problems[problem] = self.drift_problems.get(problem, 0) + 1
        suppressed = self._throttle.admit(f"drift:{data_type}")
        if suppressed is not None:
            self._log.warning(
                "%s frames drift from the model: field %r was %s; kept as None%s",
                data_type,
                field,
                problem,
                _more(suppressed, "drifted field(s)"),
                extra={"data_type": data_type, "field": field, "problem": problem},
            )
            self._told("field", f"{data_type}.{field} was {problem}", "", suppressed)

    @property
    def total_undecodable(self) -> int:
        """Frames skipped for any reason."""
        return sum(self.undecodable.values())


def _bounded(counts: dict[str, int], key: str) -> str:
    return key if key in counts or len(counts) < MAX_KEYS else OTHER


def _more(count: int, what: str = "more") -> str:
    if not count:
        return ""
    return f" (+{count} {what} since the last report)"
