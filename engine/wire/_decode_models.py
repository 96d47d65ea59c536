"""The decoder of one model: frame shapes (layouts), type signatures and their plans.

Part of the decoder (:mod:`engine.wire.decode` has the theory of operation). :func:`_model_decoder`
returns the per-frame function, a closure kept short on purpose: it reads the values with the
current layout's ``itemgetter``, compares their types with the signature accepted last and builds
the model. Whatever that common case lacks (a new frame shape, a new signature, drift, unknown
keys) is a method of :class:`_Shapes`, which also holds the decoder's caches; its
:class:`_Cursor` is the decoder's only state that changes from frame to frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Final

import attrs

from engine.errors import ProtocolError
from engine.wire._decode_fields import (
    _NONE_TYPE,
    DriftSink,
    _constant,
    _Converter,
    _Decoder,
    _Field,
    _json_type_name,
)
from engine.wire.messages import FrozenFields

#: Signatures cached per decoder; more than this many distinct shapes means hostile input, and
#: those are then validated every time instead of growing memory.
_SIGNATURE_CACHE_SIZE: Final = 64


def _maker(cls: type[Any]) -> type[Any]:
    """The class whose constructor builds ``cls`` instances fastest; relabel them as ``cls``.

    attrs' frozen ``__init__`` stores each field through ``object.__setattr__``, one C call per
    field, which made construction over half of all decode time. A mutable twin class with the
    same slots (and defaults) stores the values with plain attribute assignment; setting the
    finished object's ``__class__`` to ``cls`` then gives exactly the object ``cls(*values)``
    would. CPython allows that because the memory layouts are identical (why the models have no
    ``__weakref__`` slot). Where an interpreter refuses, ``cls`` itself is returned: use it as
    is, without relabelling.
    """
    fields = attrs.fields(cls)
    twin = attrs.make_class(
        f"_{cls.__name__}Maker",
        {
            field.name: attrs.field(default=field.default)
            if field.default is not attrs.NOTHING
            else attrs.field()
            for field in fields
        },
        slots=True,
        weakref_slot=False,
        eq=False,
        order=False,
        repr=False,
    )
    probe = tuple(range(len(fields)))
    try:
        made = twin(*probe)
        made.__class__ = cls
    except TypeError:
        return cls
    return twin if made == cls(*probe) and type(made) is cls else cls


def _tuple_getter(keys: Sequence[str]) -> Callable[[Any], tuple[object, ...]]:
    """``itemgetter`` that always returns a tuple (its one-key form returns the bare value)."""
    if len(keys) >= 2:
        return itemgetter(*keys)
    if len(keys) == 1:
        (only,) = keys
        return lambda obj: (obj[only],)
    return lambda obj: ()


@attrs.frozen
class _Layout:
    """How to read one shape of frame: which optional keys it lacks, and their defaults."""

    getter: Callable[[Any], tuple[object, ...]]
    absent: tuple[str, ...]
    defaults: tuple[tuple[int, object], ...]
    #: How many keys a frame of this shape has when it carries no unknown key.
    present: int
    #: Absent fields that count as drift.
    drifted: tuple[str, ...]
    #: Indexes of the absent fields (their defaults are no drift of the plan's).
    filled: frozenset[int]


#: A plan for one signature: the conversions it needs, and the drift it reports.
_Plan = tuple[tuple[tuple[int, _Converter], ...], tuple[tuple[str, str], ...]]
_NO_PLAN: Final[_Plan] = ((), ())


class _Cursor:
    """The mutable state of one decoder: the layout and the signature seen last, compared
    before any hashing because consecutive frames of a stream share them."""

    __slots__ = ("layout", "plan", "signature")

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.signature: list[type] = []
        self.plan: _Plan = _NO_PLAN


def _read(obj: dict[str, Any], layout: _Layout) -> tuple[object, ...] | list[object]:
    """The values of ``obj`` in constructor order, the layout's absent fields at their defaults."""
    values = layout.getter(obj)
    if not layout.defaults:
        return values
    filled = list(values)
    for index, default in layout.defaults:  # ascending, so each lands at its final index
        filled.insert(index, default)
    return filled


class _Shapes:
    """What one model decoder knows beyond the common case: the model's fields, the layouts and
    signatures met so far (cached), and the slow paths that meet new ones.

    ``nested_in`` names the parent type of an entry model (``"myAsset:assets"`` for
    ``AssetBalance``): its drift is reported as that type's ``<list field>.<field>``."""

    __slots__ = (
        "cls",
        "cursor",
        "defaults",
        "fields",
        "keeps_extra",
        "keys",
        "known",
        "label",
        "layouts",
        "maker",
        "names",
        "optional",
        "parent_type",
        "signatures",
    )

    def __init__(
        self,
        cls: type[Any],
        fields: Sequence[_Field],
        label: str,
        nested_in: str | None,
        maker: type[Any],
    ) -> None:
        self.cls = cls
        self.fields = fields
        self.label = label
        self.maker = maker
        self.keys = tuple(field.key for field in fields)
        list_field = "" if nested_in is None else nested_in.partition(":")[2]
        self.names = tuple(
            field.name if nested_in is None else f"{list_field}.{field.name}" for field in fields
        )
        self.parent_type = None if nested_in is None else nested_in.partition(":")[0]
        self.defaults = tuple(field.default for field in fields)
        self.known = frozenset(self.keys)
        self.keeps_extra = any(attribute.name == "extra" for attribute in attrs.fields(cls))
        self.optional = tuple(
            (index, field) for index, field in enumerate(fields) if not field.required
        )
        self.layouts: dict[tuple[str, ...], _Layout] = {}
        self.signatures: dict[tuple[tuple[str, ...], tuple[type, ...]], _Plan] = {}
        self.cursor = _Cursor(self.layout_for(()))

    def layout_for(self, absent: tuple[str, ...]) -> _Layout:
        layout = self.layouts.get(absent)
        if layout is None:
            optional, names = self.optional, self.names
            layout = _Layout(
                _tuple_getter([key for key in self.keys if key not in absent]),
                absent,
                tuple((index, field.default) for index, field in optional if field.key in absent),
                len(self.keys) - len(absent),
                tuple(
                    names[index]
                    for index, field in optional
                    if field.key in absent and not field.usual
                ),
                frozenset(index for index, field in optional if field.key in absent),
            )
            if len(self.layouts) < _SIGNATURE_CACHE_SIZE:
                self.layouts[absent] = layout
        return layout

    def missing_identity(self, obj: dict[str, Any]) -> ProtocolError:
        missing = [
            repr(field.key) if field.key == field.name else f"{field.key!r} ({field.name})"
            for field in self.fields
            if field.required and field.key not in obj
        ]
        return ProtocolError(f"{self.label} lacks {', '.join(missing)}", reason="identity")

    def relayout(self, obj: dict[str, Any]) -> tuple[object, ...] | list[object]:
        """Values of a frame the current layout cannot read: switch to the layout of its shape."""
        absent = tuple([field.key for _, field in self.optional if field.key not in obj])
        layout = self.layout_for(absent)
        try:
            values = _read(obj, layout)
        except KeyError:
            raise self.missing_identity(obj) from None
        cursor = self.cursor
        if layout is not cursor.layout:
            cursor.layout = layout
            cursor.signature = []  # plans are per layout
        return values

    def reshape(self, obj: dict[str, Any], values: Any) -> tuple[Any, dict[str, Any] | None]:
        """A frame with more keys than its layout reads: an absent key is back, or keys the
        model does not know (kept in ``extra``)."""
        layout = self.cursor.layout
        if any(key in obj for key in layout.absent):
            values = self.relayout(obj)
            layout = self.cursor.layout
        if len(obj) == layout.present:
            return values, None
        known = self.known
        return values, {key: value for key, value in obj.items() if key not in known}

    def plan_for(self, layout: _Layout, signature: tuple[type, ...]) -> _Plan:
        """Validate a signature not met before, field by field, and cache its plan."""
        problems: list[str] = []
        conversions: list[tuple[int, _Converter]] = []
        drifted: list[tuple[str, str]] = []
        for index, (field, value_type) in enumerate(zip(self.fields, signature, strict=True)):
            kind = field.kind
            if index in layout.filled:
                continue  # the layout's default, already reported as missing
            if value_type in kind.accepted:
                converter = kind.converters.get(value_type)
                if converter is not None:
                    conversions.append((index, converter))
            elif field.required:
                problems.append(
                    f"{field.key!r} must be {kind.description}, not {_json_type_name(value_type)}"
                )
            elif value_type is _NONE_TYPE:
                if field.default is not None:
                    conversions.append((index, _constant(field.default)))
                if not field.usual:
                    drifted.append((self.names[index], "null"))
            else:
                conversions.append((index, _constant(field.default)))
                drifted.append((self.names[index], "type"))
        if problems:
            raise ProtocolError(f"{self.label}: " + "; ".join(problems), reason="identity")
        missing = [(name, "missing") for name in layout.drifted]
        plan: _Plan = (tuple(conversions), (*missing, *drifted))
        if plan == _NO_PLAN:
            plan = _NO_PLAN  # the identity the fast path checks
        if len(self.signatures) < _SIGNATURE_CACHE_SIZE:
            self.signatures[(layout.absent, signature)] = plan
        return plan

    def finish(
        self, values: Any, plan: _Plan, extra: dict[str, Any] | None, sink: DriftSink
    ) -> Any:
        """Conversions, drift reports and unknown keys: whatever the common case lacks."""
        conversions, drifted = plan
        if conversions:
            converted = list(values)
            for index, converter in conversions:
                try:
                    converted[index] = converter(converted[index], sink)
                except ProtocolError:
                    converted[index] = self.defaults[index]
                    drifted += ((self.names[index], "type"),)
            values = converted
        if drifted:
            data_type = values[0] if self.parent_type is None else self.parent_type
            for name, problem in drifted:
                sink.field_drift(data_type, name, problem)
        if extra and self.keeps_extra:
            return self.maker(*values, FrozenFields.wrap(extra))
        return self.maker(*values)


def _model_decoder(
    cls: type[Any],
    fields: Sequence[_Field],
    label: str,
    maker: type[Any],
    *,
    nested_in: str | None = None,
) -> _Decoder:
    """A function turning one JSON object (a dict) into an instance of ``cls``, built by
    ``maker`` (``_maker(cls)``; relabelled as ``cls`` unless it is ``cls``).

    ``nested_in`` names the parent type of an entry model (see :class:`_Shapes`)."""
    shapes = _Shapes(cls, fields, label, nested_in, maker)
    # The per-frame closure reads these from cells, not through attributes of ``shapes``.
    cursor, signatures = shapes.cursor, shapes.signatures
    relayout, reshape, plan_for, finish = (
        shapes.relayout,
        shapes.reshape,
        shapes.plan_for,
        shapes.finish,
    )
    read = _read
    relabel = maker is not cls

    def decode(obj: Any, sink: DriftSink) -> Any:
        layout = cursor.layout
        try:
            values = read(obj, layout) if layout.absent else layout.getter(obj)
        except KeyError:
            values = relayout(obj)
            layout = cursor.layout
        extra = None
        if len(obj) != layout.present:
            values, extra = reshape(obj, values)
            layout = cursor.layout
        signature = list(map(type, values))
        if signature == cursor.signature:
            plan = cursor.plan
        else:
            key = tuple(signature)
            cached = signatures.get((layout.absent, key))
            plan = plan_for(layout, key) if cached is None else cached
            cursor.signature, cursor.plan = signature, plan
        if plan is _NO_PLAN and extra is None:
            model = maker(*values)  # the common case: every field as modelled
        else:
            model = finish(values, plan, extra, sink)
        if relabel:
            model.__class__ = cls
        return model

    return decode
