"""``TYPE:CODE[,CODE...]``: how the command line and the gateway's configuration name a
subscription (``trade:KRW-BTC,KRW-ETH``; ``myAsset`` and ``myOrder`` may go without codes)."""

from __future__ import annotations

import attrs

from engine.core.keys import PRIVATE_TYPES

__all__ = ("Spec", "parse_spec")


@attrs.frozen
class Spec:
    """One data type and its codes (empty: a private type over every market)."""

    data_type: str
    codes: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.data_type}:{','.join(self.codes)}" if self.codes else self.data_type


def parse_spec(text: str) -> Spec:
    """``text`` as a :class:`Spec`; ``ValueError`` saying how to write it. Types and codes are
    checked later, against the catalog, by the engine's validation."""
    data_type, _, codes_text = text.partition(":")
    codes = tuple(code for code in codes_text.split(",") if code)
    if not data_type:
        raise ValueError(f"{text!r}: write TYPE:CODE[,CODE...], e.g. trade:KRW-BTC")
    if not codes and data_type not in PRIVATE_TYPES:
        raise ValueError(
            f"{text!r}: write TYPE:CODE[,CODE...]; {data_type} needs codes, e.g. "
            f"{data_type}:KRW-BTC,KRW-ETH (only myAsset and myOrder go without)"
        )
    return Spec(data_type, codes)
