"""The facade's one validation path: what ``subscribe_realtime``, ``modify_subscription``,
``request_snapshots_batch`` and ``subscription_problems`` check before anything is sent.

Sans-IO: the market catalog is passed in. Each data type of a request is checked by
:func:`engine.markets.subscription_problems`; on top come the rules that concern a whole request
(types that take ``units``/``level``, API keys for private types, no snapshots of private
types). A request of a single public type raises the markets module's own error, so that codes
that are merely unlisted give :class:`~engine.errors.UnknownMarketError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.core.keys import PRIVATE_TYPES, StreamKey
from engine.core.registry import Subscription
from engine.errors import InvalidSubscriptionError
from engine.markets.catalog import MarketCatalog
from engine.markets.validation import check_subscription, subscription_problems

__all__ = (
    "Ask",
    "codes_kept",
    "codes_of",
    "normal_level",
    "normal_units",
    "raise_problems",
    "request_problems",
    "snapshot_keys",
    "types_of",
)

#: Upbit's default orderbook depth and price grouping: asking for them explicitly is the same
#: stream as not asking, so they normalise to ``None`` and duplicates are recognised.
_DEFAULT_UNITS = 30
_DEFAULT_LEVEL = 0

#: One request to check: its data types and codes.
Ask = tuple[tuple[str, ...], tuple[str, ...]]


def codes_of(symbols: Sequence[str] | str | None) -> tuple[str, ...]:
    """The codes of a request; ``None`` means none (myAsset, or myOrder of every market)."""
    if symbols is None:
        return ()
    return (symbols,) if isinstance(symbols, str) else tuple(symbols)


def types_of(data_type: str | Sequence[str]) -> tuple[str, ...]:
    """One data type or several, as a tuple."""
    return (data_type,) if isinstance(data_type, str) else tuple(data_type)


def normal_units(units: int | None) -> int | None:
    """``None`` for Upbit's default depth."""
    return None if units == _DEFAULT_UNITS else units


def normal_level(level: float | None) -> float | None:
    """``None`` for Upbit's default price grouping."""
    return None if level == _DEFAULT_LEVEL else level


def request_problems(
    asks: Sequence[Ask],
    *,
    units: int | None,
    level: float | None,
    catalog: MarketCatalog | None,
    has_credentials: bool,
    snapshot: bool = False,
) -> list[str]:
    """Every reason, once each, the requests ``asks`` would be refused or ignored.

    ``snapshot``: one-shot lookups, where ``units``/``level`` apply to the orderbook entries
    among them and private types have no snapshot to give.
    """
    reasons: list[str] = []

    def add(found: Sequence[str]) -> None:
        reasons.extend(reason for reason in found if reason not in reasons)

    for types, codes in asks:
        if not types:
            add(["give at least one data type, such as 'ticker'"])
        for data_type in types:
            book = data_type == "orderbook"
            add(
                subscription_problems(
                    data_type,
                    [] if data_type == "myAsset" else list(codes),
                    units=units if book else None,
                    level=level if book else None,
                    catalog=catalog,
                )
            )
        add(_request_rules(types, units, level, has_credentials, snapshot))
    return reasons


def _request_rules(
    types: tuple[str, ...],
    units: int | None,
    level: float | None,
    has_credentials: bool,
    snapshot: bool,
) -> list[str]:
    private = [t for t in types if t in PRIVATE_TYPES]
    if snapshot:
        return [f"{t} has no snapshots: subscribe to it instead" for t in private]
    found: list[str] = []
    if (units is not None or level is not None) and "orderbook" not in types:
        found.append("units and level apply to orderbook only")
    if private and not has_credentials:
        found.append(
            f"{', '.join(private)} need API keys: open the engine with access_key and secret_key"
        )
    return found


def raise_problems(
    asks: Sequence[Ask],
    *,
    units: int | None,
    level: float | None,
    catalog: MarketCatalog | None,
    has_credentials: bool,
    snapshot: bool = False,
) -> None:
    """Raise :class:`~engine.errors.InvalidSubscriptionError` with every reason, if any.

    A single request of one public type raises the markets module's own error first
    (``UnknownMarketError`` when only unlisted codes are wrong).
    """
    if len(asks) == 1:
        ((types, codes),) = asks
        if len(types) == 1 and types[0] not in PRIVATE_TYPES:
            book = types[0] == "orderbook"
            check_subscription(
                types[0],
                list(codes),
                units=units if book or not snapshot else None,
                level=level if book or not snapshot else None,
                catalog=catalog,
            )
    reasons = request_problems(
        asks,
        units=units,
        level=level,
        catalog=catalog,
        has_credentials=has_credentials,
        snapshot=snapshot,
    )
    if reasons:
        raise InvalidSubscriptionError(reasons)


def codes_kept(
    sub: Subscription,
    *,
    current_symbols: Sequence[str] | str | None,
    release: Sequence[str] | str | None,
) -> tuple[str, ...]:
    """What a ``soft_unsubscribe`` leaves streaming: the codes ``release`` does not name, or
    ``()`` when the subscription ends. ``current_symbols`` (the original API's argument) must
    name every symbol the subscription streams, and ends it."""
    if current_symbols is not None:
        named = set(codes_of(current_symbols))
        if named != set(sub.codes):
            raise InvalidSubscriptionError(
                [
                    f"current_symbols names the symbols {sub.id} streams now "
                    f"({', '.join(sub.codes)}) and ends it; got "
                    f"{', '.join(sorted(named)) or 'none'}. To release only some "
                    "symbols, pass release=[...]"
                ]
            )
    if release is None:
        return ()
    released = set(codes_of(release))
    unknown = sorted(released.difference(sub.codes))
    if unknown:
        raise InvalidSubscriptionError(
            [
                f"{sub.id} does not stream {', '.join(unknown)}; "
                f"its symbols are {', '.join(sub.codes)}"
            ]
        )
    return tuple(code for code in sub.codes if code not in released)


def snapshot_keys(
    data_type: str, codes: tuple[str, ...], units: int | None, level: float | None
) -> list[StreamKey]:
    """The streams a one-shot lookup asks for (``units``/``level`` only for orderbooks)."""
    book = data_type == "orderbook"
    return [
        StreamKey(data_type, code, units if book else None, level if book else None)
        for code in codes
    ]
