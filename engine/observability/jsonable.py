"""Engine values as plain JSON data: the debug channel's replies, ``--json`` output.

attrs instances become objects (with their ``type``/``kind`` class name where they have one),
enums their values, times ISO 8601 strings, sets sorted lists, mappings with tuple keys
``"a/b"`` keys, non-finite floats ``null``. Fields whose names say they hold a credential are
never written (the debug channel must carry no secret, whatever a future record holds).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Set
from datetime import date, datetime
from typing import TYPE_CHECKING, Final, cast

import attrs

if TYPE_CHECKING:
    from attrs import AttrsInstance

__all__ = ("SECRET_FIELD", "to_jsonable")

#: Field names never serialised: keys, secrets, tokens, signed headers.
SECRET_FIELD: Final = re.compile(
    r"(secret|access_key|token|jwt|authorization|password|headers|credential)", re.IGNORECASE
)
_REDACTED: Final = "<redacted>"


def to_jsonable(value: object, *, depth: int = 0) -> object:
    """``value`` as JSON-ready data (dicts, lists, strings, numbers, booleans, ``None``)."""
    if depth > 32:  # a cycle, or a structure no reader wants in one line
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, depth=depth + 1)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if attrs.has(type(value)):
        return _attrs_object(value, depth)
    if isinstance(value, Mapping):
        return {
            _key(key): _REDACTED
            if SECRET_FIELD.search(_key(key))
            else to_jsonable(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, Set):
        items = [to_jsonable(item, depth=depth + 1) for item in value]
        return sorted(items, key=repr)
    if isinstance(value, list | tuple):
        return [to_jsonable(item, depth=depth + 1) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return str(value)


def _attrs_object(value: object, depth: int) -> dict[str, object]:
    cls = cast("type[AttrsInstance]", type(value))
    out: dict[str, object] = {}
    for tag in ("kind", "type"):
        # ClassVar tags (OperatorEvent.kind, message and event .type) name the object.
        tagged = getattr(cls, tag, None)
        if isinstance(tagged, str) and tag not in attrs.fields_dict(cls):
            out[tag] = tagged
            break
    for field in attrs.fields(cls):
        if SECRET_FIELD.search(field.name):
            continue
        out[field.name] = to_jsonable(getattr(value, field.name), depth=depth + 1)
    return out


def _key(key: object) -> str:
    if isinstance(key, tuple):
        return "/".join(str(to_jsonable(part)) for part in key)
    if isinstance(key, enum.Enum):
        return str(key.value)
    if attrs.has(type(key)):
        return str(key)
    return str(key)
