"""The emulator's WebSocket connections: the open ones, the ones in their handshake, and the newest
``closed_history`` closed ones.

Memory stays bounded however many connections come and go: a closed connection is remembered until
``closed_history`` newer ones have closed, a failed handshake (never visible to a test) is
forgotten at once. A failed lookup names the known connections, or says that the one asked for was
forgotten.
"""

from __future__ import annotations

from collections import deque

from engine.testing.emulator.session import Session

__all__ = ("Connections",)


class Connections:
    def __init__(self, closed_history: int) -> None:
        self._closed_history = closed_history
        #: Open connections, connections still in their handshake and the newest
        #: ``closed_history`` closed ones (ids in ``_closed``, oldest first).
        self._sessions: dict[int, Session] = {}
        self._closed: deque[int] = deque()
        self._next_id = 1

    def next_id(self) -> int:
        """The id of a new connection (1, 2, 3, ...)."""
        conn_id = self._next_id
        self._next_id += 1
        return conn_id

    def add(self, session: Session) -> None:
        self._sessions[session.conn_id] = session

    def retire(self, session: Session) -> None:
        """A session ended: keep it among the newest ``closed_history`` closed connections and
        forget the oldest beyond that (a failed handshake was never visible: forget it now)."""
        if not session.established:
            self._sessions.pop(session.conn_id, None)
            return
        self._closed.append(session.conn_id)
        while len(self._closed) > self._closed_history:
            self._sessions.pop(self._closed.popleft(), None)

    def established(self) -> list[Session]:
        """Connections past their handshake, open or remembered closed, oldest first."""
        return [s for s in self._sessions.values() if s.established]

    def open(self) -> list[Session]:
        """Connections past their handshake and not closed, oldest first."""
        return [s for s in self.established() if s.closed_at is None]

    def is_open(self, conn_id: int) -> bool:
        session = self._sessions.get(conn_id)
        return session is not None and session.closed_at is None

    def get(self, conn_id: int) -> Session:
        """An established connection, open or closed (``KeyError`` naming the known ids, or
        saying it was forgotten beyond ``closed_history``)."""
        session = self._sessions.get(conn_id)
        if session is None or not session.established:
            known = sorted(s.conn_id for s in self.established())
            if session is None and 0 < conn_id < self._next_id:
                limit = self._closed_history
                raise KeyError(
                    f"connection {conn_id} is closed and forgotten: the emulator keeps only the "
                    f"newest {limit} closed connections (EmulatorConfig.closed_history={limit}); "
                    f"known connections: {known}"
                )
            raise KeyError(f"no connection {conn_id}; known connections: {known}")
        return session

    def get_open(self, conn_id: int) -> Session:
        """For controls: the connection must still be open (``ValueError`` if it closed)."""
        session = self.get(conn_id)
        if session.closed_at is not None:
            open_ids = [s.conn_id for s in self.open()]
            raise ValueError(
                f"connection {conn_id} is closed ({session.close_reason}); open connections: "
                f"{open_ids}"
            )
        return session
