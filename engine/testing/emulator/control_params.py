"""The parameters of one fault-control request (``emulator.control``), checked one name at a time.

Parameters come from the query string, a form body (``curl -d conn=1``) or a JSON object body
(``Content-Type: application/json``); a name given twice keeps the body's value. Every check
raises :class:`BadParameter` with a message that says what to send instead, which the control
answers with a 400.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import TypeVar
from urllib.parse import parse_qs

import orjson

__all__ = ("BadParameter", "Params")

T = TypeVar("T")

#: Values that mean "no value" (``fail-rest?status=none`` ends a failure); JSON ``null`` too.
_NONE_WORDS = frozenset({"none", "null"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class BadParameter(ValueError):
    """A parameter is missing, unknown or malformed; the message says what to send instead."""


def _shown(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _body_values(body: bytes, content_type: str) -> dict[str, object]:
    if not body.strip():
        return {}
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise BadParameter(
                "the form body is not name=value pairs joined by & (for example conn=1&how=reset)"
            ) from None
        return {name: values[-1] for name, values in form.items()}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadParameter(
            'the body is not JSON: send a JSON object such as {"conn": 1}, a form body '
            "(conn=1, with Content-Type: application/x-www-form-urlencoded) or a query string"
        ) from None
    if not isinstance(parsed, dict):
        raise BadParameter(
            f'the JSON body must be an object such as {{"conn": 1}}, not {type(parsed).__name__}'
        )
    return parsed


class Params:
    """One request's parameters. Each getter returns None when the name is absent, blank or
    ``none``/``null``; :meth:`need` turns that into a "required" error."""

    def __init__(self, query: Mapping[str, Sequence[str]], body: bytes, content_type: str) -> None:
        values: dict[str, object] = {name: items[-1] for name, items in query.items() if items}
        values.update(_body_values(body, content_type))
        self._values = values

    def only(self, *names: str) -> None:
        """Refuse names the endpoint does not take (a typo would otherwise be ignored)."""
        unknown = sorted(set(self._values) - set(names))
        if unknown:
            takes = ", ".join(names) if names else "no parameters"
            listed = ", ".join(repr(name) for name in unknown)
            raise BadParameter(f"unknown parameter {listed}; this endpoint takes {takes}")

    def is_none(self, name: str) -> bool:
        """Whether ``name`` was given explicitly as ``none``/``null``."""
        raw = self._values.get(name, "")
        return raw is None or (isinstance(raw, str) and raw.strip().lower() in _NONE_WORDS)

    def _raw(self, name: str) -> object | None:
        raw = self._values.get(name)
        if isinstance(raw, str) and (not raw.strip() or raw.strip().lower() in _NONE_WORDS):
            return None
        return raw

    @staticmethod
    def need(value: T | None, name: str, hint: str) -> T:
        if value is None:
            raise BadParameter(f"{name} is required: {hint}")
        return value

    def integer(
        self, name: str, hint: str, *, at_least: int | None = None, at_most: int | None = None
    ) -> int | None:
        raw = self._raw(name)
        if raw is None:
            return None
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str):
            with contextlib.suppress(ValueError):
                value = int(raw.strip())
        bad = value is None
        bad = bad or (at_least is not None and value is not None and value < at_least)
        bad = bad or (at_most is not None and value is not None and value > at_most)
        if bad or value is None:
            raise BadParameter(f"{name} must be {hint}, got {_shown(raw)}")
        return value

    def number(
        self, name: str, hint: str, *, at_least: float | None = None, above: float | None = None
    ) -> float | None:
        raw = self._raw(name)
        if raw is None:
            return None
        value = math.nan
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        elif isinstance(raw, str):
            with contextlib.suppress(ValueError):
                value = float(raw.strip())
        bad = not math.isfinite(value)
        bad = bad or (at_least is not None and value < at_least)
        bad = bad or (above is not None and value <= above)
        if bad:
            raise BadParameter(f"{name} must be {hint}, got {_shown(raw)}")
        return value

    def flag(self, name: str) -> bool | None:
        raw = self._raw(name)
        if raw is None or isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower() if isinstance(raw, str | int) else ""
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise BadParameter(f"{name} must be true or false, got {_shown(raw)}")

    def word(
        self, name: str, hint: str, choices: Sequence[str] | None = None, *, max_length: int = 200
    ) -> str | None:
        raw = self._raw(name)
        if raw is None:
            return None
        if not isinstance(raw, str) or len(raw) > max_length:
            raise BadParameter(f"{name} must be {hint}, got {_shown(raw)}")
        if choices is not None and raw not in choices:
            raise BadParameter(f"{name} must be one of {', '.join(choices)}, got {_shown(raw)}")
        return raw
