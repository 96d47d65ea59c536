"""Where the debug channel listens: ``unix:PATH`` or ``127.0.0.1:PORT``, never a public
interface (the channel is read-only, but it shows what a trading process subscribes to).

The same forms are taken by ``open_engine(debug=...)``, ``upbit-engine watch --debug`` and
``upbit-engine inspect``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Final, Literal

import attrs

__all__ = ("LOOPBACK_HOSTS", "DebugAddress", "default_debug_path", "parse_debug_address")

#: The hosts a TCP debug channel may bind: loopback only.
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: The longest Unix socket path most systems take (``sun_path`` is 108 bytes on Linux).
_MAX_UNIX_PATH: Final = 104


def default_debug_path() -> str:
    """``$XDG_RUNTIME_DIR`` (private to the user) or the temp dir, one socket per process."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"upbit-engine-{os.getpid()}.sock")


@attrs.frozen
class DebugAddress:
    """A parsed debug channel address."""

    kind: Literal["unix", "tcp"]
    #: The socket file (``kind == "unix"``).
    path: str = ""
    #: Host and port (``kind == "tcp"``; port 0 asks for a free one).
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_debug_address(value: str | bool) -> DebugAddress:
    """``value`` as a :class:`DebugAddress`; ``True`` (or ``"unix"``) is a Unix socket at
    :func:`default_debug_path`. Raises ``ValueError`` saying what to write instead."""
    if value is True or value == "unix":
        return DebugAddress("unix", path=default_debug_path())
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"debug address must be 'unix:PATH' or '127.0.0.1:PORT' (or True), got {value!r}"
        )
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path:
            raise ValueError("debug address 'unix:' needs a path, e.g. unix:/tmp/engine.sock")
        if len(os.fsencode(path)) > _MAX_UNIX_PATH:
            raise ValueError(
                f"debug socket path is {len(os.fsencode(path))} bytes; Unix sockets take at "
                f"most {_MAX_UNIX_PATH}: use a shorter path"
            )
        return DebugAddress("unix", path=path)
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ValueError(
            f"debug address {value!r} is neither 'unix:PATH' nor 'HOST:PORT' "
            "(e.g. unix:/tmp/engine.sock or 127.0.0.1:8765)"
        )
    if host not in LOOPBACK_HOSTS:
        raise ValueError(
            f"debug address {value!r}: the debug channel only listens on loopback "
            f"({', '.join(sorted(LOOPBACK_HOSTS))}) or a Unix socket, never {host!r}"
        )
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"debug address {value!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"debug address {value!r}: port must be 0-65535 (0: a free one)")
    return DebugAddress("tcp", host=host, port=port)
