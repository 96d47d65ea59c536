"""Subscription validation against Upbit's rules and, optionally, the market catalog (sans-IO).

Upbit answers most mistakes with silence (unknown or lower-case codes, unsupported levels) or with
an error that closes the socket (unknown types, codes on ``myAsset``). So every request is checked
before anything is sent, and *every* problem is reported at once, each with the fix.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import attrs

from engine.errors import InvalidSubscriptionError, UnknownMarketError
from engine.markets.catalog import KNOWN_QUOTES, MarketCatalog, split_code
from engine.wire.keys import CANDLE_TYPES

__all__ = (
    "ORDERBOOK_UNITS",
    "PRIVATE_TYPES",
    "PUBLIC_TYPES",
    "SUBSCRIBABLE_TYPES",
    "check_subscription",
    "subscription_problems",
    "validate_subscription",
)

#: Types served on the public endpoint; they require codes.
PUBLIC_TYPES: tuple[str, ...] = ("ticker", "trade", "orderbook", *CANDLE_TYPES)
#: Types served on the private endpoint (JWT): ``myOrder`` codes are optional, ``myAsset`` has none.
PRIVATE_TYPES: tuple[str, ...] = ("myOrder", "myAsset")
#: Every ``data_type`` this engine subscribes to.
SUBSCRIBABLE_TYPES: tuple[str, ...] = PUBLIC_TYPES + PRIVATE_TYPES
#: Orderbook depths Upbit serves since 2025-07-02; any other suffix silently gives 30.
ORDERBOOK_UNITS: tuple[int, ...] = (1, 5, 15, 30)

# Upbit types that exist but that this engine does not subscribe to.
_OTHER_UPBIT_TYPES = ("announcement", "indicator", "indicator_signal")
# Common spellings of candle units Upbit does not use, mapped to the one it does.
_CANDLE_ALIASES = {"1h": "60m", "60": "60m", "4h": "240m", "240": "240m", "1": "1m"}
# Spelling suggestions cost a difflib scan of the catalog; only do it for the first few codes.
_MAX_SUGGESTIONS = 5
_MAX_NAMED = 10


@attrs.frozen
class _Problem:
    text: str
    #: Set when the problem is only that this well-formed code is not listed.
    unlisted: str | None = None


def subscription_problems(
    data_type: str,
    codes: Sequence[str] | str | None,
    *,
    units: int | None = None,
    level: float | None = None,
    catalog: MarketCatalog | None,
) -> list[str]:
    """Every reason the subscription would be refused or silently ignored; empty when fine.

    ``catalog`` adds the listing check (and per-pair ``level`` checks when it holds
    instruments); pass ``None`` to check only what can be known without it.
    """
    problems = _problems(data_type, codes, units=units, level=level, catalog=catalog)
    return _render(problems, catalog)


def validate_subscription(
    data_type: str,
    codes: Sequence[str] | str | None,
    *,
    units: int | None = None,
    level: float | None = None,
    catalog: MarketCatalog | None,
) -> bool:
    """Whether the subscription passes every check (:func:`subscription_problems` is empty).

    The same verb as ``Engine.validate_subscription``: answers, never raises for a bad request.
    """
    return not _problems(data_type, codes, units=units, level=level, catalog=catalog)


def check_subscription(
    data_type: str,
    codes: Sequence[str] | str | None,
    *,
    units: int | None = None,
    level: float | None = None,
    catalog: MarketCatalog | None,
) -> None:
    """Raise if :func:`subscription_problems` finds anything (like ``Engine.check_subscription``).

    Raises :class:`UnknownMarketError` when the only problem is codes missing from the
    catalog, else :class:`InvalidSubscriptionError` listing every problem.
    """
    problems = _problems(data_type, codes, units=units, level=level, catalog=catalog)
    if not problems:
        return
    if all(problem.unlisted is not None for problem in problems):
        raise _unknown_market_error(problems, catalog)
    raise InvalidSubscriptionError(_render(problems, catalog))


# --------------------------------------------------------------------------------------------


def _problems(
    data_type: object,
    codes: object,
    *,
    units: object,
    level: object,
    catalog: MarketCatalog | None,
) -> list[_Problem]:
    problems: list[_Problem] = []
    known_type = _check_type(data_type, problems)
    kind = data_type if known_type and isinstance(data_type, str) else None
    code_list = _code_list(kind, codes, problems)
    well_formed = _check_codes(kind, code_list, catalog, problems)
    _check_units(kind, units, problems)
    _check_level(kind, level, well_formed, catalog, problems)
    return problems


def _check_type(data_type: object, problems: list[_Problem]) -> bool:
    if not isinstance(data_type, str):
        problems.append(
            _Problem(
                f"data_type must be a str such as 'ticker', got {type(data_type).__name__} "
                f"{data_type!r}"
            )
        )
        return False
    if data_type in SUBSCRIBABLE_TYPES:
        return True
    problems.append(_Problem(_type_advice(data_type)))
    return False


def _type_advice(data_type: str) -> str:
    head = f"unknown data_type {data_type!r}"
    by_case = {t.lower(): t for t in SUBSCRIBABLE_TYPES}
    if data_type.lower() in by_case:
        return f"{head}: type names are case-sensitive, use {by_case[data_type.lower()]!r}"
    if data_type in _OTHER_UPBIT_TYPES:
        return (
            f"{data_type!r} is an Upbit type this engine does not subscribe to; "
            f"use one of {', '.join(SUBSCRIBABLE_TYPES)}"
        )
    units = ", ".join(t.removeprefix("candle.") for t in CANDLE_TYPES)
    if data_type.lower().startswith("candle"):
        unit = data_type.lower().partition(".")[2]
        alias = _CANDLE_ALIASES.get(unit)
        hint = f" (for {unit!r} use 'candle.{alias}')" if alias else ""
        return (
            f"{head}: candle units are {units}, written as 'candle.<unit>' such as "
            f"'candle.1m'{hint}"
        )
    close = difflib.get_close_matches(data_type, SUBSCRIBABLE_TYPES, n=1, cutoff=0.6)
    if close:
        return f"{head}: did you mean {close[0]!r}?"
    return f"{head}: use one of {', '.join(SUBSCRIBABLE_TYPES)}"


def _code_list(kind: str | None, codes: object, problems: list[_Problem]) -> list[object]:
    """The codes as a list (possibly empty), recording problems with the container itself."""
    if codes is None:
        if kind in PUBLIC_TYPES:
            problems.append(
                _Problem(f"{kind} needs codes: pass a non-empty list such as ['KRW-BTC']")
            )
        return []
    if kind == "myAsset":
        if isinstance(codes, str) or not isinstance(codes, Collection) or len(codes):
            problems.append(
                _Problem(
                    "myAsset takes no codes (it always reports every asset; Upbit answers "
                    "WRONG_FORMAT otherwise): drop codes or pass []"
                )
            )
        return []
    if isinstance(codes, str):
        # The most common mistake: one code instead of a list of one.
        parts = [part.strip() for part in codes.split(",")] if "," in codes else [codes]
        suggestion = "[" + ", ".join(repr(part) for part in parts) + "]"
        problems.append(
            _Problem(
                f"codes must be a list of codes, not a single str: use {suggestion} "
                f"instead of {codes!r}"
            )
        )
        return list(parts)
    if isinstance(codes, bytes | bytearray | Mapping) or not isinstance(codes, Collection):
        problems.append(
            _Problem(f"codes must be a list of str such as ['KRW-BTC'], got {type(codes).__name__}")
        )
        return []
    items = list(codes)
    if not items and kind in PUBLIC_TYPES:
        problems.append(_Problem(f"{kind} needs at least one code, such as ['KRW-BTC']"))
    return items


def _check_codes(
    kind: str | None,
    items: list[object],
    catalog: MarketCatalog | None,
    problems: list[_Problem],
) -> list[str]:
    """Check each code; returns the well-formed ones (used by the ``level`` check)."""
    quotes = catalog.quotes if catalog is not None and len(catalog) else KNOWN_QUOTES
    well_formed: list[str] = []
    counts = Counter(item for item in items if isinstance(item, str))
    for code, count in counts.items():
        if count > 1:
            problems.append(_Problem(f"{code!r} appears {count} times in codes: list it once"))
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, str):
            problems.append(
                _Problem(f"codes[{index}] must be a str, got {type(item).__name__} {item!r}")
            )
            continue
        if item in seen:
            continue
        seen.add(item)
        text = _format_advice(kind, item, quotes, catalog)
        if text is not None:
            problems.append(_Problem(text))
            continue
        well_formed.append(item)
        if catalog is not None and item not in catalog:
            problems.append(_Problem(f"{item!r} is not listed on Upbit", unlisted=item))
    return well_formed


def _format_advice(
    kind: str | None, code: str, quotes: Sequence[str], catalog: MarketCatalog | None
) -> str | None:
    """Why ``code`` is not a usable code, with the fix; ``None`` if it is fine."""
    if code != code.strip():
        return f"{code!r} has surrounding spaces: use {code.strip()!r}"
    stem, dot, suffix = code.partition(".")
    if dot:
        fixed = stem.upper() if split_code(stem.upper()) is not None else stem
        if kind == "orderbook":
            valid = ", ".join(map(str, ORDERBOOK_UNITS))
            return (
                f"{code!r}: give the orderbook depth as units= (one of {valid}), not as a "
                f"'.{suffix}' suffix; use {fixed!r}"
            )
        return f"{code!r}: a '.N' suffix only applies to orderbook units; use {fixed!r}"
    parts = split_code(code)
    if parts is None:
        return _shape_advice(code, quotes)
    quote, base = parts
    if quote not in quotes:
        listing = ", ".join(quotes)
        reversed_code = f"{base}-{quote}"
        if base in quotes and (catalog is None or reversed_code in catalog):
            return (
                f"{code!r}: {quote!r} is not a quote market ({listing}); codes are quote "
                f"first: did you mean {reversed_code!r}?"
            )
        return f"{code!r}: {quote!r} is not a quote market; use one of {listing}"
    if base == "KRW" and quote != "KRW":
        # KRW is never traded as a base, so this is a reversed code.
        return f"{code!r}: codes are quote first: did you mean 'KRW-{quote}'?"
    return None


def _shape_advice(code: str, quotes: Sequence[str]) -> str:
    usage = "codes are 'QUOTE-BASE' in upper case with A-Z/0-9 parts, such as 'KRW-BTC'"
    upper = code.upper()
    if upper != code and split_code(upper) is not None:
        return f"use {upper!r}, not {code!r}: Upbit ignores codes that are not upper case"
    for separator in ("/", "_", " ", ":"):
        left, sep, right = upper.partition(separator)
        if sep and split_code(f"{left}-{right}") is not None:
            # "BTC/KRW" is the ccxt (base/quote) spelling; other separators usually keep
            # Upbit's quote-first order.
            first, second = _quote_first(left, right, quotes, base_first=separator == "/")
            return f"{code!r} is not an Upbit code: use '{first}-{second}' ({usage})"
    if upper.endswith("KRW") and split_code(f"KRW-{upper[:-3]}") is not None:
        return f"{code!r} is not an Upbit code: use 'KRW-{upper[:-3]}' ({usage})"
    for quote in quotes:
        rest = upper.removeprefix(quote)
        if rest != upper and split_code(f"{quote}-{rest}") is not None:
            return f"{code!r} is not an Upbit code: use '{quote}-{rest}' ({usage})"
    return f"{code!r} is not a market code: {usage}"


def _quote_first(
    left: str, right: str, quotes: Sequence[str], *, base_first: bool
) -> tuple[str, str]:
    # KRW is never a base on Upbit, so it always goes first.
    if "KRW" in (left, right):
        return ("KRW", right) if left == "KRW" else ("KRW", left)
    if (left in quotes) != (right in quotes):
        return (left, right) if left in quotes else (right, left)
    return (right, left) if base_first else (left, right)


def _check_units(kind: str | None, units: object, problems: list[_Problem]) -> None:
    if units is None:
        return
    valid = ", ".join(map(str, ORDERBOOK_UNITS))
    if kind is not None and kind != "orderbook":
        problems.append(_Problem(f"units only applies to orderbook, not {kind}: drop units"))
        return
    if isinstance(units, bool) or not isinstance(units, int):
        problems.append(_Problem(f"units must be an int, one of {valid}; got {units!r}"))
    elif units not in ORDERBOOK_UNITS:
        problems.append(
            _Problem(
                f"units={units} is not supported: Upbit serves orderbooks of {valid} bid/ask "
                "pairs (any other depth silently gives 30)"
            )
        )


def _check_level(
    kind: str | None,
    level: object,
    codes: list[str],
    catalog: MarketCatalog | None,
    problems: list[_Problem],
) -> None:
    if level is None:
        return
    if kind is not None and kind != "orderbook":
        problems.append(
            _Problem(f"level (price grouping) only applies to orderbook, not {kind}: drop level")
        )
        return
    if isinstance(level, bool) or not isinstance(level, int | float):
        problems.append(_Problem(f"level must be a number >= 0, got {level!r}"))
        return
    if not math.isfinite(level) or level < 0:
        problems.append(_Problem(f"level must be a finite number >= 0, got {level!r}"))
        return
    if level == 0:
        # 0 is the plain book, which every pair supports.
        return
    shown = f"{level:g}"
    not_krw = [code for code in codes if not code.startswith("KRW-")]
    if not_krw:
        problems.append(
            _Problem(
                f"level={shown} on {_name_list(not_krw)}: price grouping exists only on KRW "
                "pairs (BTC and USDT pairs only have level 0); drop level or subscribe those "
                "codes separately without it"
            )
        )
    if catalog is None:
        return
    for code in codes:
        instrument = catalog.instrument(code) if code.startswith("KRW-") else None
        if instrument is not None and not instrument.supports_level(level):
            levels = ", ".join(f"{value:g}" for value in instrument.supported_levels)
            problems.append(
                _Problem(
                    f"level={shown} is not supported by {code!r} (Upbit would send nothing); "
                    f"use one of {levels}"
                )
            )


def _name_list(codes: Sequence[str]) -> str:
    shown = ", ".join(repr(code) for code in codes[:_MAX_NAMED])
    more = len(codes) - _MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


# Rendering ----------------------------------------------------------------------------------


def _render(problems: list[_Problem], catalog: MarketCatalog | None = None) -> list[str]:
    """Reasons in the order found; all unlisted codes merged into one reason where the first was."""
    reasons: list[str] = []
    merged = False
    for problem in problems:
        if problem.unlisted is None:
            reasons.append(problem.text)
        elif not merged:
            merged = True
            reasons.append(_unknown_market_error(problems, catalog).reasons[0])
    return reasons


def _unknown_market_error(
    problems: list[_Problem], catalog: MarketCatalog | None
) -> UnknownMarketError:
    unlisted = [p.unlisted for p in problems if p.unlisted is not None]
    hints: list[str] = []
    if catalog is not None:
        for code in unlisted[:_MAX_SUGGESTIONS]:
            guess = _closest_listed(code, catalog)
            if guess is not None:
                hints.append(f"for {code!r} did you mean {guess!r}?")
    hints.append("Upbit ignores unlisted codes without an error, so fix or drop them")
    return UnknownMarketError(unlisted, hint="; ".join(hints))


def _closest_listed(code: str, catalog: MarketCatalog) -> str | None:
    quote, _, base = code.partition("-")
    reversed_code = f"{base}-{quote}"
    if reversed_code in catalog:
        return reversed_code
    # Compare bases only: the shared "KRW-" prefix would make every KRW code look close.
    bases = {listed.partition("-")[2]: listed for listed in catalog.codes(quote)}
    close = difflib.get_close_matches(base, list(bases), n=1, cutoff=0.75)
    if close:
        return bases[close[0]]
    # The same base in another quote market (e.g. 'KRW-FOO' listed only as 'BTC-FOO').
    for other in catalog.quotes:
        if f"{other}-{base}" in catalog:
            return f"{other}-{base}"
    return None
