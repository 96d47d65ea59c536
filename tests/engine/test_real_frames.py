"""Real Upbit WebSocket frames from public sources, run through the decoder.

Every ``*.json`` file in ``tests/data/upbit-frames/`` holds one frame exactly as its source printed
it: official documentation examples, third-party wire captures and client-library fixtures, from
2018 to 2026. ``PROVENANCE.md`` in that folder says where each one comes from. ``docs/UPBIT.md``
(section "Drift history") explains why old shapes are kept: Upbit changes its wire, and a client
has to keep decoding what it has seen before.

What every frame must do:

- decode without raising;
- a market-data or private frame decodes to the model of its ``type``/``ty``, with the same
  ``type`` and ``code``/``cd`` (``myAsset`` has no code); a trade keeps its ``sequential_id``;
- ``{"status":"UP"}`` decodes to :class:`~engine.wire.messages.StatusUp`, an error frame to
  :class:`~engine.wire.messages.ErrorReply` with the same name, a LIST_SUBSCRIPTIONS reply to
  :class:`~engine.wire.messages.SubscriptionList`;
- a JSON_LIST frame (a JSON array) decodes to a list, item by item;
- a frame of a type the engine does not model (``announcement``, ``indicator``...) and a legacy
  frame with ``market``/``mk`` but no ``type``/``ty`` decode to
  ``engine.wire.messages.UnknownMessage`` (attributes ``type``, ``code``, ``fields``); a legacy
  frame may instead decode to the current model of the same kind.

The data set itself is checked too: each category below must keep at least one file, and every
file must be listed in ``PROVENANCE.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import engine.wire.messages as messages
from engine.wire.messages import (
    Candle,
    ErrorReply,
    MyAsset,
    MyOrder,
    Orderbook,
    StatusUp,
    SubscriptionList,
    Ticker,
    Trade,
)
from engine.wire.protocol import decode_frame

FRAMES_DIR = Path(__file__).resolve().parents[1] / "data" / "upbit-frames"
FRAME_FILES = sorted(FRAMES_DIR.glob("*.json"))
PROVENANCE = FRAMES_DIR / "PROVENANCE.md"

#: Being added to engine.wire.messages; looked up lazily so this module imports before it exists.
UNKNOWN_MESSAGE: Any = getattr(messages, "UnknownMessage", None)

MODELS: Mapping[str, Any] = {
    "ticker": Ticker,
    "trade": Trade,
    "orderbook": Orderbook,
    "myOrder": MyOrder,
    "myAsset": MyAsset,
}
#: What a legacy frame (``market``/``mk`` instead of ``type``/``code``) may decode to instead.
LEGACY_MODELS = (Ticker, Trade, Orderbook)

FILE_NAME = re.compile(r"^[a-z]+-(default|simple|jsonlist|simplelist)-[a-z0-9-]+\.json$")

#: Categories the data set must keep covering; see ``_categories``.
REQUIRED_CATEGORIES = frozenset(
    {
        "ticker",
        "trade",
        "orderbook",
        "candle",
        "myOrder",
        "myAsset",
        "status",
        "error",
        "LIST_SUBSCRIPTIONS",
        "DEFAULT",
        "SIMPLE",
        "JSON_LIST",
        "legacy",
        "unmodelled",
    }
)


def _load(path: Path) -> Any:
    # Decimal keeps every digit; integers (sequential_id, timestamps) stay int.
    return json.loads(path.read_bytes(), parse_float=Decimal)


def _model_for(data_type: object) -> Any:
    if not isinstance(data_type, str):
        return None
    if data_type.startswith("candle."):
        return Candle
    return MODELS.get(data_type)


def _check_legacy_model(obj: Mapping[str, Any], decoded: object, legacy_code: object) -> None:
    code = getattr(decoded, "code", None)
    assert code == legacy_code, (
        f"legacy frame decoded with code {code!r}, frame has {legacy_code!r}"
    )
    if isinstance(decoded, Trade):
        assert decoded.sequential_id == obj.get("sequential_id", obj.get("sid"))


def _check_unknown(obj: Mapping[str, Any], decoded: Any) -> None:
    data_type = obj.get("type", obj.get("ty"))
    legacy_code = obj.get("market", obj.get("mk"))
    if data_type is None and isinstance(decoded, LEGACY_MODELS):
        _check_legacy_model(obj, decoded, legacy_code)
        return
    assert UNKNOWN_MESSAGE is not None, (
        f"frame of type {data_type!r} needs engine.wire.messages.UnknownMessage, "
        "which does not exist"
    )
    assert isinstance(decoded, UNKNOWN_MESSAGE), (
        f"expected UnknownMessage, got {type(decoded).__name__}"
    )
    assert isinstance(decoded.fields, Mapping)
    if data_type is None:
        # A legacy frame: the decoder may or may not lift `market`/`mk` into `code`.
        assert decoded.code in (legacy_code, None)
    else:
        assert decoded.type == data_type
        assert decoded.code == obj.get("code", obj.get("cd"))


def _check_object(obj: Mapping[str, Any], decoded: Any) -> None:
    if "status" in obj:
        assert isinstance(decoded, StatusUp)
        return
    if "error" in obj:
        assert isinstance(decoded, ErrorReply)
        assert decoded.name == obj["error"]["name"]
        assert decoded.message == obj["error"].get("message", "")
        return
    if "method" in obj or "mthd" in obj:
        assert isinstance(decoded, SubscriptionList)
        assert decoded.method == obj.get("method", obj.get("mthd"))
        assert decoded.ticket == str(obj.get("ticket", obj.get("tckt")))
        assert len(decoded.result) == len(obj.get("result", obj.get("rslt")))
        return
    data_type = obj.get("type", obj.get("ty"))
    model = _model_for(data_type)
    if model is None:
        _check_unknown(obj, decoded)
        return
    assert isinstance(decoded, model), f"expected {model.__name__}, got {type(decoded).__name__}"
    assert decoded.type == data_type
    if model is not MyAsset:
        assert decoded.code == obj.get("code", obj.get("cd"))
    if model is Trade:
        assert decoded.sequential_id == obj.get("sequential_id", obj.get("sid"))


@pytest.mark.parametrize("path", FRAME_FILES, ids=[path.name for path in FRAME_FILES])
def test_real_frame_decodes(path: Path) -> None:
    frame = _load(path)
    decoded = decode_frame(path.read_bytes())
    if isinstance(frame, list):
        assert isinstance(decoded, list), f"a JSON array must decode to a list, not {decoded!r}"
        assert len(decoded) == len(frame)
        for item, decoded_item in zip(frame, decoded, strict=True):
            _check_object(item, decoded_item)
    else:
        _check_object(frame, decoded)


def _categories(frame: Any) -> set[str]:
    if isinstance(frame, list):
        found = {"JSON_LIST" if any("type" in item for item in frame) else "SIMPLE_LIST"}
        for item in frame:
            found |= _categories(item) - {"DEFAULT", "SIMPLE"}
        return found
    if "status" in frame:
        return {"status"}
    if "error" in frame:
        return {"error"}
    if "method" in frame or "mthd" in frame:
        return {"LIST_SUBSCRIPTIONS"}
    if "type" in frame or "ty" in frame:
        data_type = frame.get("type", frame.get("ty"))
        found = {"DEFAULT" if "type" in frame else "SIMPLE"}
        model = _model_for(data_type)
        if model is None:
            found.add("unmodelled")
        else:
            found.add("candle" if model is Candle else data_type)
        return found
    if "market" in frame or "mk" in frame:
        return {"legacy", "DEFAULT" if "market" in frame else "SIMPLE"}
    return set()


def test_data_set_covers_every_category() -> None:
    assert FRAME_FILES, f"no frames in {FRAMES_DIR}"
    covered: set[str] = set()
    for path in FRAME_FILES:
        covered |= _categories(_load(path))
    missing = REQUIRED_CATEGORIES - covered
    assert not missing, f"no frame file left for: {', '.join(sorted(missing))}"


def test_every_frame_file_is_named_and_listed_in_provenance() -> None:
    listed = set(
        re.findall(r"^\|\s*`?([a-z0-9.-]+\.json)`?\s*\|", PROVENANCE.read_text("utf-8"), re.M)
    )
    on_disk = {path.name for path in FRAME_FILES}
    assert on_disk - listed == set(), "frame files missing from PROVENANCE.md"
    assert listed - on_disk == set(), "PROVENANCE.md lists files that do not exist"
    badly_named = sorted(name for name in on_disk if not FILE_NAME.match(name))
    assert not badly_named, f"not <type>-<format>-<source>-<n>.json: {badly_named}"
