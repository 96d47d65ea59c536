"""Upbit's wire format, sans-IO: request frames (:mod:`engine.wire.protocol`), the typed frozen
models (:mod:`engine.wire.messages`), the SIMPLE-format abbreviations (:mod:`engine.wire.keys`),
decoding (:mod:`engine.wire.decode`) and encoding (:mod:`engine.wire.encode`)."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
