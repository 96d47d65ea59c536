"""Issue 14's acceptance for trade backfill: Hypothesis-drawn FaultPlans (drops, restarts, stalls,
refused connects) against a trading emulator, and one property checked per subscriber and code:

    every trade the emulator's market made for a subscribed code while the subscription had it
    (from the first trade it received to the last) is delivered exactly once, in the market's
    order, or lies in a range a ``Backfilled`` event reports as unfilled;

plus: each code a ``Gap`` announces a backfill for gets its ``Backfilled``, and no live trade
comes between BACKFILL trades and their ``Backfilled``. The same for candle periods
(``candle.1s``): across each filled gap, every second the market traded in has its candle, in
order, or is reported unfilled. The oracle is the emulator's own record of every trade it made
(``Emulator.trades_made``), which the engine never sees.

Each example runs ``trio.run`` under ``MockClock(autojump_threshold=0)`` (about 90 mock seconds:
a 40 s plan, then until every backfill is released). ``HYPOTHESIS_PROFILE=long`` runs
``UPBIT_BACKFILL_EXAMPLES`` examples (default 200).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs
import trio
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from engine import Backfilled, Candle, Engine, Gap, Interrupted, Trade, open_engine
from engine.routing.buffer import StreamItem
from engine.testing import MAJOR_MARKETS, EmulatorConfig, FaultPlan, fault_plans, open_emulator
from engine.testing.faults import DropConnections, RejectConnects, RestartServer, StallConnection

from ._fault_workload import settle_timeout

LONG = os.environ.get("HYPOTHESIS_PROFILE", "") in {"long", "faults-long", "thorough"}
EXAMPLES = int(os.environ.get("UPBIT_BACKFILL_EXAMPLES", "200")) if LONG else 25
CODES = ("KRW-BTC", "KRW-ETH", "KRW-XRP")
#: Trades per second a code is set to: quiet, busy, very busy.
RATES = (0.3, 3.0, 12.0)
HORIZON = 40.0
ACTIONS = (DropConnections, RestartServer, StallConnection, RejectConnects)


@attrs.frozen
class Case:
    plan: FaultPlan
    rates: tuple[float, ...]
    #: Each subscription: its type (``trade`` or ``candle.1s``) and codes.
    subscriptions: tuple[tuple[str, tuple[str, ...]], ...]
    seed: int


def cases() -> st.SearchStrategy[Case]:
    codes = st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True).map(tuple)
    subscription = st.tuples(st.sampled_from(("trade", "trade", "candle.1s")), codes)
    return st.builds(
        Case,
        fault_plans(min_steps=1, max_steps=5, horizon=HORIZON, max_downtime=8.0, actions=ACTIONS),
        st.tuples(*(st.sampled_from(RATES) for _ in CODES)),
        st.lists(subscription, min_size=1, max_size=2).map(tuple),
        st.integers(0, 2**16),
    )


@attrs.define
class Outcome:
    items: dict[str, list[StreamItem]]
    codes: dict[str, tuple[str, tuple[str, ...]]]
    made: dict[str, list[tuple[int, int]]]  # code -> (sequential_id, trade time), market order
    #: Trade streams still held for a backfill once the engine settled (must be 0).
    held: int = 0
    #: The plan's stalls as (Trio start, Trio end, market ms start, market ms end).
    stalls: list[tuple[float, float, int, int]] = attrs.Factory(list)


async def _read(eng: Engine, sub_id: str, into: list[StreamItem]) -> None:
    async for item in eng.stream(sub_id):
        into.append(item)


async def run_case(case: Case) -> Outcome:
    config = EmulatorConfig(markets=MAJOR_MARKETS, seed=7, feed_interval=0.1, recent_frames=0)
    async with open_emulator(config) as emu:
        for code, rate in zip(CODES, case.rates, strict=True):
            emu.set_rate(code, rate)
        async with open_engine(ws_url=emu.ws_url, rest_url=emu.rest_url, seed=case.seed) as eng:
            outcome = Outcome({}, {}, {})
            async with trio.open_nursery() as nursery:
                for data_type, codes in case.subscriptions:
                    sub_id = await eng.subscribe_realtime(data_type, codes)
                    outcome.codes[sub_id] = (data_type, codes)
                    outcome.items[sub_id] = []
                    nursery.start_soon(_read, eng, sub_id, outcome.items[sub_id])
                started, market = trio.current_time(), emu.market_now_ms
                for step in case.plan.steps:
                    if isinstance(step.action, StallConnection):
                        length = step.action.duration or 2 * HORIZON
                        begin, end = started + step.at, started + step.at + length
                        outcome.stalls.append(
                            (
                                begin,
                                end,
                                market + int(step.at * 1000) - 500,
                                market + int((step.at + length) * 1000) + 500,
                            )
                        )
                await emu.run_plan(case.plan)
                # 418 refusals alone cost at least 60 s each (see settle_timeout).
                await eng.wait_settled(timeout=settle_timeout(case.plan) + 60.0)
                outcome.held = eng.metrics().backfill_streams
                await trio.sleep(5.0)  # live trades after the last backfill
                nursery.cancel_scope.cancel()
        outcome.made = {
            code: [(t.sequential_id, t.trade_timestamp) for t in emu.trades_made(code)]
            for code in CODES
        }
    return outcome


def check(outcome: Outcome) -> list[str]:
    problems: list[str] = []
    for sub_id, items in outcome.items.items():
        data_type, codes = outcome.codes[sub_id]
        excused = _unnoticed_stalls(outcome.stalls, items)
        for code in codes:
            if data_type == "trade":
                problems += _check_code(sub_id, code, items, outcome.made[code], excused)
            else:
                problems += _check_candles(sub_id, code, items, outcome.made[code], excused)
    return problems


def _unnoticed_stalls(
    stalls: list[tuple[float, float, int, int]], items: Sequence[StreamItem]
) -> list[tuple[int, int]]:
    """The market-time windows of stalls that ended before the engine noticed them (no
    Interrupted during one): the emulator's stalled server sends nothing and drops what it had,
    a loss a client cannot see while the silence is shorter than its stall probe (2 s at least,
    and a few of the connection's usual intervals). A probed silence is checked against REST
    (test_engine_backfill.py); only the unprobed ones are excused here."""
    losses = [item.start for item in items if isinstance(item, Interrupted)]
    return [
        (low, high)
        for begin, end, low, high in stalls
        if not any(begin <= at <= end + 6.0 for at in losses)
    ]


def _period(candle: Candle) -> int:
    assert candle.candle_date_time_utc is not None
    stamp = datetime.fromisoformat(candle.candle_date_time_utc).replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def _check_candles(
    sub_id: str,
    code: str,
    items: Sequence[StreamItem],
    made: list[tuple[int, int]],
    excused: Sequence[tuple[int, int]] = (),
) -> list[str]:
    """Across each filled gap, every second the market traded in has its candle, in order, or
    is reported unfilled. (Live, Upbit pushes a candle at most once a second, so a live 1 s
    period may be skipped by design: only the gaps are checked.)"""
    where = f"{sub_id} {code} candle.1s"
    problems: list[str] = []
    traded = sorted({at // 1000 * 1000 for _, at in made})
    periods: list[int] = []
    live_before: int | None = None
    open_report: Backfilled | None = None
    filled: set[int] = set()
    for item in items:
        if isinstance(item, Backfilled) and item.code == code:
            if live_before is not None and item.since_ms != live_before:
                problems.append(f"{where}: since {item.since_ms}, last delivered {live_before}")
            open_report, filled = item, set(filled)
        elif isinstance(item, Candle) and item.code == code:
            period = _period(item)
            if periods and period < periods[-1]:
                problems.append(f"{where}: period {period} after {periods[-1]}")
            periods.append(period)
            if item.stream_type == "BACKFILL":
                filled.add(period)
                continue
            if open_report is not None:
                hole = [p for p in traded if open_report.since_ms < p < period]
                lost = [
                    p
                    for p in hole
                    if p not in filled
                    and not open_report.covers(p)
                    and not any(low <= p + 999 and p < high for low, high in excused)
                ]
                if lost:
                    problems.append(f"{where}: periods {lost[:3]} neither filled nor reported")
                open_report, filled = None, set()
            live_before = period
    return problems


def _check_code(
    sub_id: str,
    code: str,
    items: Sequence[StreamItem],
    made: list[tuple[int, int]],
    excused: Sequence[tuple[int, int]] = (),
) -> list[str]:
    where = f"{sub_id} {code}"
    problems: list[str] = []
    delivered: list[Trade] = []
    reports: list[Backfilled] = []
    filling = False
    for item in items:
        if isinstance(item, Gap) and code in item.backfill:
            filling = True
        elif isinstance(item, Backfilled) and item.code == code:
            filling = False  # a silence checked has no Gap before it
            reports.append(item)
        elif isinstance(item, Trade) and item.code == code:
            if item.stream_type == "BACKFILL":
                filling = True  # a Backfilled must follow before any live trade
            elif filling:
                problems.append(f"{where}: live trade {item.sequential_id} before its Backfilled")
            delivered.append(item)
    if filling:
        problems.append(f"{where}: a backfill announced was never reported")
    if not delivered:
        return problems
    ids = [t.sequential_id for t in delivered]
    if len(ids) != len(set(ids)):
        problems.append(f"{where}: {len(ids) - len(set(ids))} trades delivered twice")
    position = {sid: index for index, (sid, _) in enumerate(made)}
    unknown = [sid for sid in ids if sid not in position]
    if unknown:
        return [*problems, f"{where}: trades the market never made: {unknown[:5]}"]
    order = [position[sid] for sid in ids]
    if order != sorted(order):
        problems.append(f"{where}: trades out of the market's order")
    got = set(ids)
    missing = [
        (sid, at)
        for sid, at in made[min(order) : max(order) + 1]
        if sid not in got
        and not any(report.covers(at) for report in reports)
        and not any(low <= at < high for low, high in excused)
    ]
    if missing:
        problems.append(
            f"{where}: {len(missing)} trades neither delivered nor reported unfilled, e.g. "
            f"{missing[:3]} (delivered {len(ids)}, reports {reports!r})"
        )
    return problems


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_every_trade_is_delivered_once_in_order_or_reported_unfilled(case: Case) -> None:
    note(repr(case))
    outcome = trio.run(run_case, case, clock=MockClock(autojump_threshold=0))
    backfilled = sum(
        1 for items in outcome.items.values() for i in items if isinstance(i, Backfilled)
    )
    note(f"{backfilled} backfills, {sum(map(len, outcome.items.values()))} items")
    problems = check(outcome)
    if outcome.held:
        problems.append(f"{outcome.held} streams still held once the engine settled")
    assert not problems, "\n".join(problems)


def test_the_oracle_catches_a_hole_a_duplicate_and_a_reordering() -> None:
    made = [(sid, sid * 10) for sid in range(1, 8)]

    def trade(sid: int, stream: str = "REALTIME") -> Trade:
        return Trade(
            type="trade", code="X", sequential_id=sid, trade_timestamp=sid * 10, stream_type=stream
        )

    whole = [trade(1), trade(2), trade(3)]
    assert _check_code("s", "X", whole, made) == []
    assert _check_code("s", "X", [trade(1), trade(3)], made)  # a hole
    assert _check_code("s", "X", [trade(1), trade(2), trade(2)], made)  # a duplicate
    assert _check_code("s", "X", [trade(2), trade(1)], made)  # out of order
    gap = Gap("t", 0.0, 1.0, "x", ("X",), ("X",))
    report = Backfilled("t", "X", 10, 40, 1, (), 2.0)
    filled = [trade(1), gap, trade(2, "BACKFILL"), report, trade(4)]
    assert "3 trades" not in " ".join(_check_code("s", "X", filled, made))
    assert _check_code("s", "X", filled, made)  # trade 3 neither delivered nor reported
    from engine.events import Unfilled

    told = attrs.evolve(report, unfilled=(Unfilled(30, 31, "rest_error"),))
    assert _check_code("s", "X", [trade(1), gap, trade(2, "BACKFILL"), told, trade(4)], made) == []
    assert _check_code("s", "X", [trade(1), gap, trade(2, "BACKFILL"), trade(4), told], made)
