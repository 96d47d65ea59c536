"""Choosing the parking code for a soft unsubscribe (sans-IO).

A soft unsubscribe replaces a ticket's realtime set with one snapshot-only ticker request for a
"parking" code, whose single reply the engine swallows. The code must be listed (or Upbit sends
nothing and the swallow waits in vain) and must not be one the ticket streams (its reply would be
mistaken for data). The parking table first specified for the engine named "BTC-USDT",
"ETH-USDT" and "BTC-KRW" (for KRW, BTC and USDT streams). Those are base-first spellings, not
Upbit codes, which are quote first (docs/UPBIT.md, Market codes): "BTC-KRW" does not exist and
would get no reply. The pairs meant are ``USDT-BTC``, ``USDT-ETH`` and ``KRW-BTC``, and those are
used here. The table's idea, park in a different quote market than the streamed one, is kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

from engine.errors import NoParkingCodeError
from engine.markets.catalog import KNOWN_QUOTES, MarketCatalog, split_code

__all__ = ("PARKING_PREFERENCES", "choose_parking_code")

#: Preferred parking codes, keyed by the first streamed quote market in KRW, BTC, USDT order.
#: Each row starts with the corrected first choice (``USDT-BTC``, ``USDT-ETH``, ``KRW-BTC``) and
#: continues with liquid pairs of the other quote markets, so a row rarely runs dry. ``"USDT"`` is
#: also the row used when nothing public is streamed, so the default parking code is ``KRW-BTC``.
PARKING_PREFERENCES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "KRW": ("USDT-BTC", "USDT-ETH", "BTC-ETH", "USDT-XRP", "BTC-XRP"),
        "BTC": ("USDT-ETH", "USDT-BTC", "KRW-ETH", "KRW-BTC", "USDT-XRP"),
        "USDT": ("KRW-BTC", "KRW-ETH", "BTC-ETH", "KRW-XRP", "BTC-XRP"),
    }
)


def _bare(code: str) -> str:
    # "KRW-BTC.15" streams KRW-BTC: the orderbook unit suffix is not part of the pair.
    return code.partition(".")[0]


def choose_parking_code(streamed_codes: Collection[str], catalog: MarketCatalog | None) -> str:
    """A listed code, never one in ``streamed_codes``, to park a ticket on; deterministic.

    Order of preference:

    1. the row of :data:`PARKING_PREFERENCES` for the streamed quote markets, keeping only
       codes in a quote market nothing is streamed in;
    2. (with a catalog) any listed code in such a quote market, in catalog order;
    3. the rest of that row, then of the other rows, in any quote market;
    4. (with a catalog) any listed code that is not streamed.

    Without a catalog, listing cannot be checked, so only the preference rows are used.
    Raises :class:`NoParkingCodeError` if every candidate is streamed (or none is listed).
    """
    streamed = {_bare(code) for code in streamed_codes}
    streamed_quotes = {parts[0] for code in streamed if (parts := split_code(code)) is not None}
    row_key = next((quote for quote in KNOWN_QUOTES if quote in streamed_quotes), "USDT")
    rows = [PARKING_PREFERENCES[row_key]] + [
        row for key, row in PARKING_PREFERENCES.items() if key != row_key
    ]
    preferred = [code for row in rows for code in row]

    def usable(code: str) -> bool:
        return code not in streamed and (catalog is None or code in catalog)

    def other_quote(code: str) -> bool:
        return code.partition("-")[0] not in streamed_quotes

    for code in preferred:
        if usable(code) and other_quote(code):
            return code
    if catalog is not None:
        for code in catalog:
            if usable(code) and other_quote(code):
                return code
    for code in preferred:
        if usable(code):
            return code
    if catalog is not None:
        for code in catalog:
            if usable(code):
                return code
    where = "in the catalog" if catalog is not None else f"among {', '.join(preferred)}"
    raise NoParkingCodeError(
        f"no parking code for a soft unsubscribe: every code {where} is streamed by this "
        "ticket; use hard_unsubscribe (close and reopen the connection) instead"
    )
