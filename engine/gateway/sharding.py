"""Splitting the market set between gateways when one IP's limits are not enough.

Rendezvous (highest-random-weight) hashing: a code belongs to the shard with the highest
``blake2b(f"{shard}:{code}")``. Every gateway computes the same assignment from the code and
the shard count alone (no coordination), the shards are balanced within a few percent, and
going from N to N+1 shards moves only the codes the new shard wins (about 1/(N+1) of them),
so a resize re-subscribes few streams. See docs/DESIGN.md "Gateway" for the capacity arithmetic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ("owner", "parse_shard", "shard_codes")


def _weight(shard: int, code: str) -> int:
    digest = hashlib.blake2b(f"{shard}:{code}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(code: str, shards: int) -> int:
    """The shard (1 to ``shards``) that publishes ``code``."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    return max(range(1, shards + 1), key=lambda shard: _weight(shard, code))


def shard_codes(codes: Iterable[str], shard: int, shards: int) -> tuple[str, ...]:
    """The codes of ``codes`` that shard ``shard`` of ``shards`` publishes, in their order."""
    return tuple(code for code in codes if owner(code, shards) == shard)


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``: this gateway is shard 2 of 3 (1-based)."""
    shard_text, _, count_text = text.partition("/")
    try:
        shard, count = int(shard_text), int(count_text)
    except ValueError:
        raise ValueError(f"shard {text!r}: write I/N, e.g. 1/3 (this is shard 1 of 3)") from None
    if not 1 <= shard <= count:
        raise ValueError(f"shard {text!r}: I must be between 1 and N")
    return shard, count
