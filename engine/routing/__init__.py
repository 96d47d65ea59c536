"""Routing (internal): fan-out of decoded frames to subscriber buffers, SNAPSHOT gating, trade
de-duplication, outages (``Interrupted``/``Gap``) and a subscription's one-reader stream."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
