"""Drift controls: each departure from the documented wire, checked on the wire with a raw client.

Also: drift at run time and through fault plans, the JSON round trip of ``SetDrift``, the
Hypothesis strategies, the ``first_sent`` liveness record and the drift statistics.
"""

from __future__ import annotations

import orjson
import pytest
import trio
import trio_websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from engine.testing import (
    Drift,
    Emulator,
    EmulatorConfig,
    FaultPlan,
    FaultStep,
    SetDrift,
    SetLatency,
    drifts,
    fault_plans,
    make_my_asset,
)
from engine.testing.drift import GARBAGE_KINDS, UNKNOWN_TYPES
from engine.testing.faults import ACTION_TYPES, action_from_json, action_to_json
from engine.wire.keys import DEFAULT_TO_SIMPLE, ORDERBOOK_UNIT_KEYS

from ._wire import connect, emulator, recv_dict, recv_raw, send, subscribe

BTC: dict[str, object] = {"type": "ticker", "codes": ["KRW-BTC"]}
TRADE_KEYS_2024 = ("best_ask_price", "best_ask_size", "best_bid_price", "best_bid_size")


def _body(value: object) -> object:
    """The message inside a ``*_LIST`` frame."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return value


def classify(raw: str | bytes) -> str:
    """``data``, ``unknown:<type>`` or the garbage kind a frame is (see ``GARBAGE_KINDS``)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        value = _body(orjson.loads(text))
    except orjson.JSONDecodeError:
        return "truncated_json" if text.startswith(("{", "[")) else "not_json"
    if value == [1, 2, 3]:
        return "number_array"
    if value == {"status": "DOWN"}:
        return "unknown_status"
    assert isinstance(value, dict), text
    kind = value.get("type", value.get("ty"))
    if kind is None:
        return "no_known_keys"
    if isinstance(kind, int):
        return "numeric_type"
    assert isinstance(kind, str), text
    return f"unknown:{kind}" if kind in UNKNOWN_TYPES else "data"


async def frames(ws: trio_websocket.WebSocketConnection, count: int) -> list[str | bytes]:
    return [await recv_raw(ws) for _ in range(count)]


async def data(ws: trio_websocket.WebSocketConnection, count: int) -> list[dict[str, object]]:
    """The next ``count`` data messages (list formats unwrapped)."""
    out: list[dict[str, object]] = []
    while len(out) < count:
        raw = await recv_raw(ws)
        if classify(raw) == "data":
            message = _body(orjson.loads(raw))
            assert isinstance(message, dict)
            out.append(message)
    return out


# -- each drift on the wire -----------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "suffix"), [(5, ".15"), (5, ""), (30, ".1"), (40, ".15")])
async def test_orderbook_rows_ignore_the_requested_depth(
    autojump_clock: MockClock, rows: int, suffix: str
) -> None:
    async with emulator(drift=Drift(orderbook_rows=rows)) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "orderbook", "codes": [f"KRW-BTC{suffix}"]}))
        books = await data(ws, 8)
    assert books[0]["stream_type"] == "SNAPSHOT"
    for book in books:
        units = book["orderbook_units"]
        assert isinstance(units, list)
        assert len(units) == rows
        if rows > 30:
            # Beyond the simulated book: zero rows, as Upbit pads a thin book.
            padding = units[30:]
            assert all(set(row.values()) == {0.0} for row in padding)
            assert all(row["ask_price"] > 0 for row in units[:30])


async def test_orderbook_rows_in_simple_format(autojump_clock: MockClock) -> None:
    async with emulator(drift=Drift(orderbook_rows=3)) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "orderbook", "codes": ["KRW-ETH.30"]}, fmt="SIMPLE"))
        books = await data(ws, 4)
    key = DEFAULT_TO_SIMPLE["orderbook"]["orderbook_units"]
    assert all(len(book[key]) == 3 for book in books)  # type: ignore[arg-type]


async def test_no_snapshot_codes_get_realtime_only(autojump_clock: MockClock) -> None:
    drift = Drift(no_snapshot_codes={"KRW-ETH"})
    async with emulator(drift=drift) as emu, connect(emu) as ws:
        codes = ["KRW-BTC", "KRW-ETH"]
        await send(
            ws, subscribe({"type": "ticker", "codes": codes}, {"type": "trade", "codes": codes})
        )
        messages = await data(ws, 60)
        snapshots = {(m["type"], m["code"]) for m in messages if m["stream_type"] == "SNAPSHOT"}
        assert snapshots == {("ticker", "KRW-BTC"), ("trade", "KRW-BTC")}
        assert {m["code"] for m in messages if m["stream_type"] == "REALTIME"} == set(codes)
        assert emu.statistics().snapshots_withheld == 2


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE"])
async def test_null_fields_are_sent_as_null(autojump_clock: MockClock, fmt: str) -> None:
    drift = Drift(
        null_fields={
            ("ticker", "acc_trade_price_24h"),
            ("*", "timestamp"),
            ("orderbook", "orderbook_units.ask_size"),
            ("trade", "no_such_field"),
        }
    )
    async with emulator(drift=drift) as emu, connect(emu) as ws:
        items: list[dict[str, object]] = [
            {"type": t, "codes": ["KRW-BTC"]} for t in ("ticker", "trade", "orderbook")
        ]
        await send(ws, subscribe(*items, fmt=fmt))
        messages = await data(ws, 30)
    simple = fmt == "SIMPLE"
    seen = set()
    for message in messages:
        kind = message["ty" if simple else "type"]
        assert isinstance(kind, str)
        seen.add(kind)
        keys = DEFAULT_TO_SIMPLE[kind] if simple else {k: k for k in DEFAULT_TO_SIMPLE[kind]}
        assert message[keys["timestamp"]] is None, message
        assert set(message) == set(keys.values()), "nulls replace values, they add no key"
        if kind == "ticker":
            assert message[keys["acc_trade_price_24h"]] is None
            assert message[keys["trade_price"]] is not None
        if kind == "orderbook":
            rows = message[keys["orderbook_units"]]
            assert isinstance(rows, list)
            size = ORDERBOOK_UNIT_KEYS["ask_size"] if simple else "ask_size"
            price = ORDERBOOK_UNIT_KEYS["ask_price"] if simple else "ask_price"
            assert all(row[size] is None and row[price] is not None for row in rows)
    assert seen == {"ticker", "trade", "orderbook"}


async def test_a_whole_orderbook_can_be_nulled_in_simple_format(autojump_clock: MockClock) -> None:
    drift = Drift(null_fields={("orderbook", "orderbook_units")}, extra_fields=True)
    async with emulator(drift=drift) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "orderbook", "codes": ["KRW-BTC"]}, fmt="SIMPLE"))
        (book,) = await data(ws, 1)
    assert book[DEFAULT_TO_SIMPLE["orderbook"]["orderbook_units"]] is None


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE"])
async def test_legacy_trade_lacks_the_best_quote_fields(
    autojump_clock: MockClock, fmt: str
) -> None:
    async with emulator(drift=Drift(legacy_trade=True)) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"]}, fmt=fmt))
        trades = await data(ws, 10)
    table = DEFAULT_TO_SIMPLE["trade"]
    expected = {table[k] if fmt == "SIMPLE" else k for k in table if k not in TRADE_KEYS_2024}
    assert all(set(trade) == expected for trade in trades)


async def test_object_delisting_date(autojump_clock: MockClock) -> None:
    async with emulator(drift=Drift(object_delisting_date=True)) as emu, connect(emu) as ws:
        await send(ws, subscribe(BTC))
        tickers = await data(ws, 5)
        await send(ws, subscribe(BTC, fmt="SIMPLE"))
        simple = await data(ws, 5)
    date = {"year": 2026, "month": 12, "day": 31}
    assert all(ticker["delisting_date"] == date for ticker in tickers)
    assert all(ticker[DEFAULT_TO_SIMPLE["ticker"]["delisting_date"]] == date for ticker in simple)


async def test_without_drift_the_delisting_date_is_null(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe(BTC))
        (ticker,) = await data(ws, 1)
    assert ticker["delisting_date"] is None


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE", "JSON_LIST"])
async def test_omit_stream_type(autojump_clock: MockClock, fmt: str) -> None:
    async with emulator(drift=Drift(omit_stream_type=True)) as emu, connect(emu) as ws:
        items: list[dict[str, object]] = [
            {"type": t, "codes": ["KRW-BTC"]} for t in ("ticker", "orderbook", "candle.1s")
        ]
        await send(ws, subscribe(*items, fmt=fmt))
        messages = await data(ws, 12)
    # The first three are the SNAPSHOTs: nothing tells them from REALTIME frames any more.
    assert all("stream_type" not in m and "st" not in m for m in messages)
    assert len({m.get("type", m.get("ty")) for m in messages[:3]}) == 3


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE_LIST"])
async def test_extra_fields_on_every_data_frame(autojump_clock: MockClock, fmt: str) -> None:
    async with emulator(drift=Drift(extra_fields=True)) as emu, connect(emu) as ws:
        items: list[dict[str, object]] = [
            {"type": t, "codes": ["KRW-BTC"]} for t in ("ticker", "trade", "orderbook")
        ]
        await send(ws, subscribe(*items, fmt=fmt))
        messages = await data(ws, 20)
        assert emu.statistics().drifted_frames >= 20
    rows_key = "obu" if fmt.startswith("SIMPLE") else "orderbook_units"
    for message in messages:
        assert message["new_field_2027"] == 1
        nested = message["new_object_2027"]
        assert isinstance(nested, dict)
        assert nested["nested"] == {"flag": True}
        rows = message.get(rows_key)
        if rows is not None:
            assert isinstance(rows, list)
            assert all(row["new_row_field_2027"] == 0 for row in rows)


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST"])
async def test_garbage_after_every_n_data_frames_rotating_kinds(
    autojump_clock: MockClock, fmt: str
) -> None:
    every = 3
    async with emulator(drift=Drift(garbage_every=every)) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]}, fmt=fmt))
        raws = await frames(ws, (every + 1) * len(GARBAGE_KINDS) * 2)
        # Snapshots count as data frames too: the cadence starts with the first frame.
        kinds = [classify(raw) for raw in raws]
        shape = ["garbage" if kind in GARBAGE_KINDS else kind for kind in kinds]
        assert shape == (["data"] * every + ["garbage"]) * (len(kinds) // (every + 1))
        garbage = [kind for kind in kinds if kind != "data"]
        assert garbage == list(GARBAGE_KINDS) * 2
        assert emu.statistics().garbage_frames >= len(garbage)
    # The numeric type is keyed as the connection's format keys ``type``.
    numeric = _body(orjson.loads(raws[kinds.index("numeric_type")]))
    assert isinstance(numeric, dict)
    assert numeric["ty" if fmt.startswith("SIMPLE") else "type"] == 7


async def test_garbage_counts_per_connection(autojump_clock: MockClock) -> None:
    async with emulator(drift=Drift(garbage_every=2)) as emu, connect(emu) as a, connect(emu) as b:
        await send(a, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        first = [classify(raw) for raw in await frames(a, 6)]
        await send(b, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        second = [classify(raw) for raw in await frames(b, 6)]
    # Each connection starts its own count and its own rotation.
    expected = ["data", "data", "not_json", "data", "data", "truncated_json"]
    assert first == expected
    assert second == expected


async def test_unknown_types_after_every_n_data_frames(autojump_clock: MockClock) -> None:
    every = 4
    async with emulator(drift=Drift(unknown_type_every=every)) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"]}))
        raws = await frames(ws, (every + 1) * 4)
        assert emu.statistics().unknown_type_frames >= 4
    kinds = [classify(raw) for raw in raws]
    unknown = [f"unknown:{t}" for t in UNKNOWN_TYPES]
    assert kinds == ["data"] * every + [unknown[0]] + ["data"] * every + [unknown[1]] + [
        "data"
    ] * every + [unknown[0]] + ["data"] * every + [unknown[1]]
    announcement = orjson.loads(raws[every])
    assert announcement["type"] == "announcement"
    assert "code" not in announcement
    assert announcement["stream_type"] == "REALTIME"


async def test_unknown_types_in_simple_format_without_stream_type(
    autojump_clock: MockClock,
) -> None:
    drift = Drift(unknown_type_every=1, omit_stream_type=True)
    async with emulator(drift=drift) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}, fmt="SIMPLE"))
        raws = await frames(ws, 4)
    indicator = orjson.loads(raws[3])
    assert indicator["ty"] == "indicator"
    assert indicator["cd"] == "KRW-BTC"
    assert "st" not in indicator


async def test_garbage_and_unknown_due_together_both_follow(autojump_clock: MockClock) -> None:
    drift = Drift(garbage_every=2, unknown_type_every=2)
    async with emulator(drift=drift) as emu, connect(emu) as ws:
        await send(ws, subscribe(BTC))
        kinds = [classify(raw) for raw in await frames(ws, 8)]
    first = ["data", "data", "not_json", "unknown:announcement"]
    assert kinds == [*first, "data", "data", "truncated_json", "unknown:indicator"]


async def test_everything_at_once(autojump_clock: MockClock) -> None:
    drift = Drift.everything(garbage_every=5, unknown_type_every=7)
    codes = ["KRW-BTC", "KRW-XRP"]
    async with emulator(drift=drift) as emu, connect(emu) as ws:
        items: list[dict[str, object]] = [
            {"type": t, "codes": codes} for t in ("ticker", "trade", "orderbook")
        ]
        await send(ws, subscribe(*items, fmt="SIMPLE_LIST"))
        kinds = [classify(raw) for raw in await frames(ws, 120)]
        stats = emu.statistics()
    assert set(kinds) >= {"data", *GARBAGE_KINDS, *(f"unknown:{t}" for t in UNKNOWN_TYPES)}
    assert stats.snapshots_withheld == 3
    assert stats.drifted_frames >= kinds.count("data")
    assert drift.active
    assert all(
        value not in (None, False, frozenset()) for value in Drift.everything().as_json().values()
    )


# -- at run time, through plans -------------------------------------------------------------------


async def test_set_drift_applies_from_then_on_and_drift_off_restores(
    autojump_clock: MockClock,
) -> None:
    async with emulator(rates={"KRW-BTC": 5.0}) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}))
        before = await data(ws, 3)
        emu.set_drift(Drift(legacy_trade=True))
        assert emu.drift == Drift(legacy_trade=True)
        # Frames rendered before the change may still be queued: wait for the first new shape.
        while "best_ask_price" in (await data(ws, 1))[0]:
            pass
        during = await data(ws, 3)
        emu.set_drift(Drift())
        while "best_ask_price" not in (await data(ws, 1))[0]:
            pass
        after = await data(ws, 3)
    assert all("best_ask_price" in m for m in before + after)
    assert not any("best_ask_price" in m for m in during)
    details = [event.detail for event in emu.history() if event.kind == "fault"]
    assert details[-1] == "drift off"
    assert details[-2].startswith("drift Drift(")


async def test_drift_off_takes_the_plain_path(autojump_clock: MockClock) -> None:
    def plain(emu: Emulator) -> bool:
        return emu.feed.drift is None

    async with emulator(drift=Drift(extra_fields=True)) as emu:
        assert not plain(emu)
        emu.set_drift(Drift())
        assert plain(emu), "Drift() must cost nothing: the plain dispatch loop runs"
        with pytest.raises(TypeError, match="takes a Drift"):
            emu.set_drift({"legacy_trade": True})  # type: ignore[arg-type]


async def test_set_drift_through_run_plan(autojump_clock: MockClock) -> None:
    plan = FaultPlan(
        (
            FaultStep(5.0, SetDrift(Drift(legacy_trade=True))),
            FaultStep(10.0, SetDrift(Drift())),
        )
    )
    shapes: list[bool] = []
    async with emulator(rates={"KRW-BTC": 5.0}) as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(emu.run_plan, plan)
            # Read until the documented shape is back after the drift.
            while not (False in shapes and shapes[-3:] == [True] * 3):
                shapes.append("best_ask_price" in (await data(ws, 1))[0])
    # Documented, then legacy for the plan's middle five seconds, then documented again.
    first_legacy = shapes.index(False)
    back = shapes.index(True, first_legacy)
    assert all(shapes[:first_legacy])
    assert not any(shapes[first_legacy:back])
    assert all(shapes[back:])
    assert back - first_legacy >= 5, "about 5 trades a second for five seconds"


# -- private events -------------------------------------------------------------------------------


async def test_drift_reaches_private_events(autojump_clock: MockClock) -> None:
    drift = Drift(null_fields={("myAsset", "assets.balance")}, extra_fields=True)
    async with emulator(drift=drift) as emu, connect(emu, private=True) as ws:
        await send(ws, subscribe({"type": "myAsset"}, fmt="SIMPLE"))
        await emu.wait_requests(1, kind="subscribe")
        assert emu.emit_my_asset(make_my_asset(assets=[("KRW", "1000", "0")])) == 1
        message = await recv_dict(ws)
        assert message["ast"] == [{"cu": "KRW", "b": None, "l": 0.0, "new_row_field_2027": 0}]
        assert message["new_field_2027"] == 1
        assert set(emu.first_sent()) == {(1, "myAsset", "")}


# -- first_sent: the liveness record --------------------------------------------------------------


async def test_first_sent_records_the_first_frame_of_each_stream(autojump_clock: MockClock) -> None:
    drift = Drift(no_snapshot_codes={"KRW-ETH"})
    async with emulator(drift=drift) as emu, connect(emu) as ws, connect(emu) as other:
        assert emu.first_sent() == {}
        items: list[dict[str, object]] = [
            {"type": t, "codes": ["KRW-BTC", "KRW-ETH"]} for t in ("ticker", "orderbook")
        ]
        await send(ws, subscribe(*items))
        (request,) = await emu.wait_requests(1, conn_id=1, kind="subscribe")
        await emu.wait_for(lambda: len(emu.first_sent(1)) == 4)
        first = emu.first_sent(1)
        # SNAPSHOTs go out with the request; KRW-ETH has none, so it waits for market events.
        assert first[(1, "ticker", "KRW-BTC")] == request.at
        assert first[(1, "orderbook", "KRW-BTC")] == request.at
        assert first[(1, "ticker", "KRW-ETH")] > request.at
        assert first[(1, "orderbook", "KRW-ETH")] > request.at
        assert emu.first_sent(2) == {}

        # A format change re-registers the streams: the record is kept.
        await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}, {"format": "SIMPLE"}])
        await emu.wait_requests(2, conn_id=1)
        await recv_until_list(ws)
        assert emu.first_sent(1) == first

        # A new subscription request starts the record again.
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-XRP"]}))
        records = await emu.wait_requests(2, conn_id=1, kind="subscribe")
        assert emu.first_sent(1) == {(1, "trade", "KRW-XRP"): records[-1].at}

        await send(other, subscribe(BTC))
        await emu.wait_for(lambda: len(emu.first_sent(2)) == 1)
        assert set(emu.first_sent()) == {(1, "trade", "KRW-XRP"), (2, "ticker", "KRW-BTC")}


async def recv_until_list(ws: trio_websocket.WebSocketConnection) -> None:
    while True:
        message = orjson.loads(await recv_raw(ws))
        if isinstance(message, dict) and ("method" in message or "mthd" in message):
            return


async def test_first_sent_of_a_stream_without_snapshot(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe(dict(BTC, is_only_realtime=True)))
        (request,) = await emu.wait_requests(1, kind="subscribe")
        (message,) = await data(ws, 1)
        assert message["stream_type"] == "REALTIME"
        at = emu.first_sent()[(1, "ticker", "KRW-BTC")]
        assert request.at < at <= trio.current_time()


async def test_first_sent_kept_after_close(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        async with connect(emu) as ws:
            await send(ws, subscribe(BTC))
            await data(ws, 1)
        await emu.wait_closed(1)
        assert set(emu.first_sent()) == {(1, "ticker", "KRW-BTC")}
        with pytest.raises(KeyError, match="no connection 9"):
            emu.first_sent(9)


# -- the values ------------------------------------------------------------------------------------


def test_drift_is_off_by_default() -> None:
    assert not Drift().active
    assert EmulatorConfig().drift == Drift()
    assert Drift(legacy_trade=True).active


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"orderbook_rows": 0}, "orderbook_rows must be >= 1"),
        ({"garbage_every": 0}, "garbage_every must be >= 1"),
        ({"unknown_type_every": -1}, "unknown_type_every must be >= 1"),
        ({"null_fields": {("ticker", "type")}}, "cannot be nulled"),
        ({"null_fields": {("ticker",)}}, "pairs"),
    ],
)
def test_drift_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Drift(**changes)  # type: ignore[arg-type]


def test_drift_rejects_a_single_code_string() -> None:
    with pytest.raises(TypeError, match="collection of codes"):
        Drift(no_snapshot_codes="KRW-BTC")


def test_drift_json_round_trip() -> None:
    drift = Drift.everything()
    assert Drift.from_json(orjson.loads(orjson.dumps(drift.as_json()))) == drift


def test_set_drift_round_trips_through_json_like_every_action() -> None:
    plan = FaultPlan(
        (
            FaultStep(1.0, SetDrift(Drift.everything())),
            FaultStep(2.0, SetLatency(0.5)),
            FaultStep(3.0, SetDrift()),
        ),
        seed=7,
    )
    assert FaultPlan.from_json(plan.to_json()) == plan
    name, fields = action_to_json(SetDrift(Drift(null_fields={("*", "timestamp")})))
    assert name == "SetDrift"
    assert action_from_json(name, orjson.loads(orjson.dumps(fields))) == SetDrift(
        Drift(null_fields={("*", "timestamp")})
    )
    with pytest.raises(ValueError, match="unknown fault action"):
        action_from_json("SetWeather", {})


def test_set_drift_is_an_action_type() -> None:
    assert SetDrift in ACTION_TYPES
    assert ACTION_TYPES[-1] is SetDrift


def test_generated_plans_draw_drift_only_when_asked() -> None:
    for seed in range(30):
        plan = FaultPlan.generate(seed, steps=10)
        assert not any(isinstance(step.action, SetDrift) for step in plan.steps)
        # The same plans as when ACTION_TYPES had no SetDrift: recorded seeds still replay.
        assert plan == FaultPlan.generate(seed, steps=10, actions=ACTION_TYPES[:-1])
    drifted = [FaultPlan.generate(seed, steps=10, drift=True) for seed in range(10)]
    actions = [step.action for plan in drifted for step in plan.steps]
    assert any(isinstance(action, SetDrift) and action.drift.active for action in actions)
    only = FaultPlan.generate(1, steps=5, actions=(SetDrift,), drift=True)
    assert all(isinstance(step.action, SetDrift) for step in only.steps)
    with pytest.raises(ValueError, match="at least one fault type"):
        FaultPlan.generate(1, actions=(SetDrift,))


@settings(max_examples=50)
@given(fault_plans(max_steps=6))
def test_fault_plans_draw_no_drift_by_default(plan: FaultPlan) -> None:
    assert not any(isinstance(step.action, SetDrift) for step in plan.steps)


@given(st.data())
def test_fault_plans_draw_drift_when_asked(data: st.DataObject) -> None:
    plan = data.draw(fault_plans(min_steps=1, actions=(SetDrift,), drift=True))
    assert all(isinstance(step.action, SetDrift) for step in plan.steps)
    fixed = Drift(legacy_trade=True)
    plan = data.draw(fault_plans(min_steps=1, actions=(SetDrift,), drift=st.just(fixed)))
    assert {step.action for step in plan.steps} == {SetDrift(fixed)}
    assert FaultPlan.from_json(plan.to_json()) == plan


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drift=drifts())
async def test_any_drift_keeps_the_wire_consistent(autojump_clock: MockClock, drift: Drift) -> None:
    """Whatever the drift, every frame is data, garbage or an unknown type, shaped as told."""
    codes = ["KRW-BTC", "KRW-ETH"]
    async with emulator(drift=drift) as emu, connect(emu) as ws:
        items: list[dict[str, object]] = [
            {"type": "ticker", "codes": codes},
            {"type": "trade", "codes": codes},
            {"type": "orderbook", "codes": [f"{code}.15" for code in codes]},
        ]
        await send(ws, subscribe(*items))
        raws = await frames(ws, 40)
        await _check_frames(emu, drift, raws)


async def _check_frames(emu: Emulator, drift: Drift, raws: list[str | bytes]) -> None:
    extra = 0
    for raw in raws:
        kind = classify(raw)
        if kind in GARBAGE_KINDS:
            assert drift.garbage_every is not None
            extra += 1
            continue
        if kind.startswith("unknown:"):
            assert drift.unknown_type_every is not None
            extra += 1
            continue
        message = orjson.loads(raw)
        if drift.omit_stream_type:
            assert "stream_type" not in message
        elif {("*", "stream_type"), (message["type"], "stream_type")} & drift.null_fields:
            assert message["stream_type"] is None
        else:
            assert message["stream_type"] in ("SNAPSHOT", "REALTIME")
            if message["stream_type"] == "SNAPSHOT":
                assert message["code"] not in drift.no_snapshot_codes
        assert ("new_field_2027" in message) == drift.extra_fields
        if message["type"] == "orderbook" and message["orderbook_units"] is not None:
            assert len(message["orderbook_units"]) == (drift.orderbook_rows or 15)
        if message["type"] == "trade":
            assert ("best_ask_price" in message) != drift.legacy_trade
        for data_type, field in drift.null_fields:
            if data_type in ("*", message["type"]) and "." not in field and field in message:
                assert message[field] is None
    stats = emu.statistics()
    assert stats.garbage_frames + stats.unknown_type_frames >= extra
