"""Observability (internal): the metrics the actors record and their Prometheus rendering, the
debug tree's records, and the rate-limited logs of undecodable frames and connection failures."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
