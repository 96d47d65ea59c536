"""Tests for engine.core.registry: the registry state machine."""

from __future__ import annotations

import itertools
import os

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engine.core.inspect import find_conflicts
from engine.core.keys import StreamKey, distinct_codes
from engine.core.lifecycle import next_state
from engine.core.registry import (
    TRANSITIONS,
    ConflictKind,
    Event,
    IllegalTransition,
    Registry,
    SubscriptionKind,
    SubscriptionState,
    TicketChange,
    TicketStatus,
    coalesce_changes,
)
from engine.errors import InvalidSubscriptionError

S = SubscriptionState
#: HYPOTHESIS_PROFILE=long runs the stateful test ten times longer.
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"


def tk(code: str) -> StreamKey:
    return StreamKey("ticker", code)


def tr(code: str) -> StreamKey:
    return StreamKey("trade", code)


def connect(reg: Registry, ticket: str, generation: int = 1, now: float = 0.0) -> TicketChange:
    """Connect and confirm the replay; returns the replay."""
    (replay,) = reg.ticket_connected(ticket, generation, now=now)
    assert reg.ticket_sent(ticket, generation, replay.keys, now=now)
    return replay


def send(reg: Registry, change: TicketChange, now: float = 0.0) -> None:
    assert reg.ticket_sent(change.ticket, change.generation, change.keys, now=now)


def state_of(reg: Registry) -> object:
    return (
        reg.subscriptions(live_only=False),
        tuple(reg.ticket_status(name) for name in reg.tickets()),
    )


# ---------------------------------------------------------------------------------------------
# Lifecycle table


def test_every_state_has_a_row_and_terminal_states_only_absorb() -> None:
    assert set(TRANSITIONS) == set(S)
    for state in (S.CLOSED, S.FAILED):
        assert set(TRANSITIONS[state].values()) == {state}


def test_unlisted_transitions_raise_a_clear_internal_error() -> None:
    with pytest.raises(IllegalTransition, match=r"sub-9 cannot take event 'modify'.*'closed'"):
        next_state("sub-9", S.CLOSED, Event.MODIFY)
    with pytest.raises(IllegalTransition, match="stopped"):
        next_state("sub-9", S.ACTIVE, Event.STOPPED)
    assert next_state("sub-9", S.MODIFYING, Event.APPLIED) is S.ACTIVE


# ---------------------------------------------------------------------------------------------
# Subscribe, replay, send


def test_changes_are_held_while_disconnected_and_replayed_in_creation_order() -> None:
    reg = Registry()
    first, changes = reg.subscribe("ticker", ["KRW-BTC", "KRW-ETH"], now=1.0)
    assert (first.id, first.state, first.tickets, changes) == (
        "sub-1",
        S.PENDING,
        ("realtime-0",),
        [],
    )
    reg.subscribe(["trade", "ticker"], ["KRW-XRP", "KRW-BTC"], now=2.0)
    assert reg.tickets_needing_connection() == ("realtime-0",)
    (replay,) = reg.ticket_connected("realtime-0", 1, now=3.0)
    assert replay.replay
    assert replay.keys == (
        tk("KRW-BTC"),
        tk("KRW-ETH"),
        tr("KRW-XRP"),
        tr("KRW-BTC"),
        tk("KRW-XRP"),
    )
    assert replay.snapshot_wanted == frozenset(replay.keys)
    assert reg.replay_request("realtime-0", 1) == replay.keys
    assert reg.replay_request("realtime-0", 7) == ()
    assert all(sub.state is S.PENDING for sub in reg.subscriptions())
    send(reg, replay)
    assert all(sub.state is S.ACTIVE for sub in reg.subscriptions())
    assert reg.tickets_needing_connection() == ()


def test_a_new_code_on_a_live_ticket_sends_the_complete_set() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    sub, (change,) = reg.subscribe("ticker", ["KRW-ETH"], now=1.0)
    assert change.keys == (tk("KRW-BTC"), tk("KRW-ETH"))
    assert change.snapshot_wanted == {tk("KRW-ETH")}
    assert (change.park, change.hard_reset, change.replay) == (False, False, False)
    assert sub.state is S.PENDING
    send(reg, change)
    assert reg.subscription(sub.id).state is S.ACTIVE


def test_a_joining_subscriber_asks_for_a_snapshot_unless_it_declines() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    joined, (change,) = reg.subscribe("ticker", ["KRW-BTC"], now=1.0)
    assert change.keys == (tk("KRW-BTC"),)
    assert change.snapshot_wanted == {tk("KRW-BTC")}
    # Its stream already flows, so it is active at once.
    assert joined.state is S.ACTIVE
    quiet, changes = reg.subscribe("ticker", ["KRW-BTC"], snapshot=False, now=2.0)
    assert changes == []
    assert quiet.state is S.ACTIVE


def test_all_types_of_a_code_share_a_ticket_and_capacity_opens_the_next() -> None:
    reg = Registry(capacity=2)
    reg.subscribe("ticker", ["A-1", "A-2"], now=0.0)
    reg.subscribe("trade", ["A-2", "A-3"], now=0.0)
    assert reg.ticket_status("realtime-0").desired == (tk("A-1"), tk("A-2"), tr("A-2"))
    assert reg.ticket_status("realtime-1").desired == (tr("A-3"),)
    assert reg.subscription("sub-2").tickets == ("realtime-0", "realtime-1")
    assert reg.tickets_needing_connection() == ("realtime-0", "realtime-1")


# ---------------------------------------------------------------------------------------------
# Modify


def test_modify_keeps_flowing_codes_realtime_and_returns_to_active_when_sent() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC", "KRW-ETH"], now=0.0)
    connect(reg, "realtime-0")
    sub, (change,) = reg.modify(sub.id, ["KRW-ETH", "KRW-XRP"], now=1.0)
    assert sub.state is S.MODIFYING
    assert sub.codes == ("KRW-ETH", "KRW-XRP")
    assert change.keys == (tk("KRW-ETH"), tk("KRW-XRP"))
    assert change.snapshot_wanted == {tk("KRW-XRP")}
    send(reg, change)
    assert reg.subscription(sub.id).state is S.ACTIVE


def test_modify_to_the_same_codes_changes_nothing() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    again, changes = reg.modify(sub.id, ["KRW-BTC", "KRW-BTC"], now=1.0)
    assert (again, changes) == (sub, [])


def test_modify_dropping_a_shared_code_is_applied_at_once() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    sub, _ = reg.subscribe("ticker", ["KRW-BTC", "KRW-ETH"], now=0.0)
    connect(reg, "realtime-0")
    # KRW-ETH is only sub-2's, so it leaves the set; what remains already streams.
    sub, (change,) = reg.modify(sub.id, ["KRW-BTC"], now=1.0)
    assert change.keys == (tk("KRW-BTC"),)
    assert sub.state is S.ACTIVE


def test_a_closed_subscription_cannot_be_modified() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    reg.unsubscribe(sub.id, now=1.0)
    with pytest.raises(InvalidSubscriptionError, match="subscribe again"):
        reg.modify(sub.id, ["KRW-ETH"], now=2.0)


# ---------------------------------------------------------------------------------------------
# Unsubscribe


def test_soft_unsubscribe_resends_the_reduced_set_then_parks() -> None:
    reg = Registry()
    first, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    second, _ = reg.subscribe("ticker", ["KRW-ETH"], now=0.0)
    connect(reg, "realtime-0")
    first, (change,) = reg.unsubscribe(first.id, now=1.0)
    assert first.state is S.CLOSING
    assert change.keys == (tk("KRW-ETH"),)
    assert change.snapshot_wanted == frozenset()
    send(reg, change)
    assert reg.subscription(first.id).state is S.CLOSED
    second, (park,) = reg.unsubscribe(second.id, now=2.0)
    assert (park.keys, park.park, park.hard_reset) == ((), True, False)
    assert reg.closable_tickets() == ("realtime-0",)
    send(reg, park)
    assert reg.subscription(second.id).state is S.CLOSED
    status = reg.ticket_status("realtime-0")
    assert status.parked
    assert not status.idle
    usage = reg.usage(3.0)["realtime"]
    assert (usage.open, usage.parked) == (1, 1)
    assert usage.efficiency.ticket == 0.0


def test_unsubscribing_a_shared_stream_closes_at_once_without_a_send() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    sub, changes = reg.unsubscribe(sub.id, now=1.0)
    assert (sub.state, changes) == (S.CLOSED, [])
    again, changes = reg.unsubscribe(sub.id, now=2.0)
    assert (again.state, changes) == (S.CLOSED, [])


def test_closing_waits_for_a_queued_set_that_still_carries_the_stream() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    (replay,) = reg.ticket_connected("realtime-0", 1, now=0.0)
    sub, _ = reg.subscribe("ticker", ["KRW-ETH"], now=1.0)
    (added,) = reg.ticket_status("realtime-0").queued[1:]
    sub, (removal,) = reg.unsubscribe(sub.id, now=2.0)
    assert sub.state is S.CLOSING
    # The ticket sends the replay, then the set with KRW-ETH: not stopped yet.
    send(reg, replay)
    assert reg.ticket_sent("realtime-0", 1, added, now=3.0)
    assert reg.subscription(sub.id).state is S.CLOSING
    send(reg, removal)
    assert reg.subscription(sub.id).state is S.CLOSED


def test_a_coalesced_send_of_a_burst_that_went_back_and_forth_retires_it_all() -> None:
    # Found by the engine's fault-injection test: a burst of modifications A, B, A, B, A
    # coalesces into one send of A; matching by set retired only up to the first A, left the
    # rest queued for ever, and a subscription closed meanwhile never reached CLOSED.
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    other, _ = reg.subscribe("trade", ["KRW-XRP"], now=0.5)
    changes: list[TicketChange] = []
    for step in range(5):
        codes = ["KRW-BTC", "KRW-ETH"] if step % 2 else ["KRW-BTC"]
        changes.extend(reg.modify(sub.id, codes, now=1.0 + step)[1])
    changes.extend(reg.unsubscribe(other.id, now=7.0)[1])
    other = reg.subscription(other.id)
    assert other.state is S.CLOSING
    merged = coalesce_changes(changes)
    assert merged.serial == max(change.serial for change in changes) > 0
    assert reg.ticket_sent("realtime-0", 1, merged.keys, through=merged.serial, now=8.0)
    assert reg.ticket_status("realtime-0").queued == ()
    assert reg.subscription(other.id).state is S.CLOSED
    assert reg.subscription(sub.id).state is S.ACTIVE
    # A probe step (serial 0) confirms what it sent but retires nothing queued.
    (change,) = reg.modify(sub.id, ["KRW-ETH"], now=9.0)[1]
    assert reg.ticket_sent("realtime-0", 1, change.keys, through=0, now=9.0)
    assert reg.ticket_status("realtime-0").queued == (change.keys,)


def test_hard_unsubscribe_resets_the_connection_with_what_remains() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    reg.subscribe("trade", ["KRW-ETH"], now=0.0)
    connect(reg, "realtime-0")
    sub, (change,) = reg.unsubscribe(sub.id, mode="hard", now=1.0)
    assert (change.hard_reset, change.park, change.keys) == (True, False, (tr("KRW-ETH"),))
    assert sub.state is S.CLOSING
    assert reg.ticket_lost("realtime-0", 1, None, now=2.0)
    assert reg.subscription(sub.id).state is S.CLOSED
    assert reg.subscription("sub-2").state is S.PENDING
    replay = connect(reg, "realtime-0", 2, now=3.0)
    assert replay.keys == (tr("KRW-ETH"),)
    assert reg.subscription("sub-2").state is S.ACTIVE


def test_unsubscribe_mode_is_checked() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    with pytest.raises(ValueError, match="'soft' or 'hard'"):
        reg.unsubscribe(sub.id, mode="gentle", now=1.0)  # type: ignore[arg-type]


def test_fail_releases_the_streams_and_keeps_the_reason() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    sub, (park,) = reg.fail(sub.id, "consumer overflow", now=1.0)
    assert (sub.state, sub.failure, park.park) == (S.FAILED, "consumer overflow", True)
    again, changes = reg.fail(sub.id, "twice", now=2.0)
    assert (again.failure, changes) == ("consumer overflow", [])
    assert reg.unsubscribe(sub.id, now=3.0)[0].state is S.FAILED


# ---------------------------------------------------------------------------------------------
# Ticket lifecycle and generations


def test_stale_generations_change_nothing() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0", 1)
    assert reg.ticket_lost("realtime-0", 1, "network", now=1.0)
    connect(reg, "realtime-0", 2, now=2.0)
    before = state_of(reg)
    assert not reg.ticket_sent("realtime-0", 1, (), now=3.0)
    assert not reg.ticket_lost("realtime-0", 1, "late report", now=3.0)
    assert reg.ticket_connected("realtime-0", 2, now=3.0) == []
    assert reg.ticket_connected("realtime-0", 1, now=3.0) == []
    assert state_of(reg) == before


def test_a_lost_ticket_sends_its_subscriptions_back_to_pending() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    assert reg.ticket_lost("realtime-0", 1, "1006 abnormal closure", now=1.0)
    assert reg.subscription(sub.id).state is S.PENDING
    view = reg.registry_view(1.0)["realtime-0"]
    assert (view["status"], view["error"]) == ("error", "1006 abnormal closure")
    # Changes while down are held; the replay carries the latest set.
    _, changes = reg.subscribe("trade", ["KRW-BTC"], now=2.0)
    assert changes == []
    replay = connect(reg, "realtime-0", 2, now=3.0)
    assert replay.keys == (tk("KRW-BTC"), tr("KRW-BTC"))
    assert reg.subscription(sub.id).state is S.ACTIVE


def test_a_newer_connection_supersedes_an_unreported_loss() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0", 1)
    (replay,) = reg.ticket_connected("realtime-0", 5, now=1.0)
    assert replay.generation == 5
    assert reg.subscription(sub.id).state is S.PENDING
    assert reg.ticket_status("realtime-0").last_generation == 5


# ---------------------------------------------------------------------------------------------
# Error frames traced to requests; tickets that give up


def test_a_rejected_request_with_one_suspect_fails_it_and_keeps_the_others() -> None:
    reg = Registry()
    good, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    bad, (change,) = reg.subscribe("trade", ["KRW-ETH"], now=1.0)
    send(reg, change, now=1.0)
    failed, (after,) = reg.reject("realtime-0", {tr("KRW-ETH")}, "INVALID_PARAM: nope", now=2.0)
    assert failed == (bad.id,)
    assert reg.subscription(bad.id).state is S.FAILED
    assert reg.subscription(bad.id).failure == "INVALID_PARAM: nope"
    assert after.keys == (tk("KRW-BTC"),)
    assert reg.subscription(good.id).state is S.ACTIVE
    view = reg.registry_view(2.0)["realtime-0"]
    assert view["status"] == "active"
    assert view["failed"] == {bad.id: "INVALID_PARAM: nope"}
    # Keys nobody wants any more blame nobody.
    assert reg.reject("realtime-0", {tr("KRW-XRP")}, "again", now=3.0) == ((), [])


def test_several_suspects_are_tested_one_request_each_on_the_next_connection() -> None:
    reg = Registry()
    base, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    first, _ = reg.subscribe("ticker", ["KRW-ETH", "KRW-BTC"], now=1.0)
    second, _ = reg.subscribe("trade", ["KRW-XRP"], now=1.0)
    keys = {tk("KRW-ETH"), tr("KRW-XRP")}
    assert reg.reject("realtime-0", keys, "INVALID_PARAM", now=2.0) == ((), [])
    assert reg.ticket_status("realtime-0").suspects == (first.id, second.id)
    assert reg.ticket_lost("realtime-0", 1, "Upbit error INVALID_PARAM", now=2.0)
    steps = reg.ticket_connected("realtime-0", 2, now=3.0)
    # The trusted set first, then one step per suspect, each adding its own streams.
    assert [(step.keys, step.probe) for step in steps] == [
        ((tk("KRW-BTC"),), ()),
        ((tk("KRW-BTC"), tk("KRW-ETH")), (first.id,)),
        ((tk("KRW-BTC"), tk("KRW-ETH"), tr("KRW-XRP")), (second.id,)),
    ]
    assert all(step.replay for step in steps)
    # A joiner of a carried stream still asks for its own SNAPSHOT.
    assert steps[1].snapshot_wanted == {tk("KRW-BTC"), tk("KRW-ETH")}
    assert reg.ticket_status("realtime-0").queued == (steps[-1].keys,)
    for step in steps:
        send(reg, step, now=3.0)
    assert reg.ticket_status("realtime-0").queued == ()
    assert {reg.subscription(s.id).state for s in (base, first, second)} == {S.ACTIVE}
    reg.probe_passed("realtime-0", [first.id])
    assert reg.ticket_status("realtime-0").suspects == (second.id,)
    # The probe of the second one drew the error: only it fails.
    failed, _ = reg.reject("realtime-0", set(), "INVALID_PARAM", subscriptions=[second.id], now=4.0)
    assert failed == (second.id,)
    assert reg.ticket_status("realtime-0").suspects == ()
    assert reg.ticket_lost("realtime-0", 2, "Upbit error INVALID_PARAM", now=4.0)
    (replay,) = reg.ticket_connected("realtime-0", 3, now=5.0)
    assert (replay.keys, replay.probe) == ((tk("KRW-BTC"), tk("KRW-ETH")), ())


def test_suspects_that_left_the_ticket_are_not_probed() -> None:
    reg = Registry()
    connect_later, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    first, _ = reg.subscribe("ticker", ["KRW-ETH"], now=1.0)
    second, _ = reg.subscribe("ticker", ["KRW-XRP"], now=1.0)
    reg.reject("realtime-0", {tk("KRW-ETH"), tk("KRW-XRP")}, "bad", now=2.0)
    reg.ticket_lost("realtime-0", 1, "error", now=2.0)
    reg.unsubscribe(first.id, now=2.5)
    steps = reg.ticket_connected("realtime-0", 2, now=3.0)
    assert [step.probe for step in steps] == [(), (second.id,)]
    reg.unsubscribe(second.id, now=3.5)
    reg.ticket_lost("realtime-0", 2, "error", now=4.0)
    (replay,) = reg.ticket_connected("realtime-0", 3, now=5.0)
    assert (replay.keys, replay.probe) == ((tk("KRW-BTC"),), ())
    assert reg.ticket_status("realtime-0").suspects == ()
    assert reg.subscription(connect_later.id).state is S.PENDING


def test_a_suspect_alone_on_its_ticket_is_probed_without_a_trusted_step() -> None:
    reg = Registry()
    first, _ = reg.subscribe("ticker", ["KRW-ETH"], now=0.0)
    second, _ = reg.subscribe("ticker", ["KRW-XRP"], now=0.0)
    connect(reg, "realtime-0")
    reg.reject("realtime-0", {tk("KRW-ETH"), tk("KRW-XRP")}, "bad", now=1.0)
    reg.ticket_lost("realtime-0", 1, "error", now=1.0)
    steps = reg.ticket_connected("realtime-0", 2, now=2.0)
    assert [(step.keys, step.probe) for step in steps] == [
        ((tk("KRW-ETH"),), (first.id,)),
        ((tk("KRW-ETH"), tk("KRW-XRP")), (second.id,)),
    ]


def test_a_ticket_that_gave_up_fails_its_subscriptions_and_shows_error() -> None:
    reg = Registry()
    mine, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    other, _ = reg.subscribe("ticker", ["KRW-BTC"], kind="snapshot", now=0.0)
    connect(reg, "realtime-0")
    reg.ticket_lost("realtime-0", 1, "1006", now=1.0)
    failed, changes = reg.ticket_failed("realtime-0", "failed 11 times in 60 s", now=2.0)
    assert failed == (mine.id,)
    assert changes == []  # disconnected: nothing to send
    assert reg.subscription(mine.id).failure == "failed 11 times in 60 s"
    assert reg.subscription(other.id).is_live
    assert "realtime-0" not in reg.tickets_needing_connection()
    view = reg.registry_view(3.0)["realtime-0"]
    assert (view["status"], view["error"]) == ("error", "failed 11 times in 60 s")
    assert reg.ticket_status("realtime-0").failed_at == 2.0
    # A new subscription placed on it starts it again; connecting clears the failure.
    reg.subscribe("trade", ["KRW-ETH"], now=4.0)
    assert "realtime-0" in reg.tickets_needing_connection()
    connect(reg, "realtime-0", 2, now=5.0)
    assert reg.registry_view(5.0)["realtime-0"]["status"] == "active"
    assert reg.ticket_status("realtime-0").failure is None


def test_a_ticket_left_empty_by_failed_subscriptions_shows_error_until_it_reconnects() -> None:
    reg = Registry()
    sub, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    connect(reg, "realtime-0")
    reg.reject("realtime-0", {tk("KRW-BTC")}, "INVALID_PARAM: no", now=1.0)
    reg.ticket_lost("realtime-0", 1, "Upbit error INVALID_PARAM", now=1.0)
    view = reg.registry_view(2.0)
    assert view["realtime-0"]["status"] == "error"
    assert view["realtime-0"]["error"] == "INVALID_PARAM: no"
    assert view["realtime-0"]["failed"] == {sub.id: "INVALID_PARAM: no"}
    reg.subscribe("trade", ["KRW-ETH"], now=3.0)
    connect(reg, "realtime-0", 2, now=4.0)
    assert reg.registry_view(5.0)["realtime-0"]["status"] == "active"


def test_unknown_ids_say_what_to_use() -> None:
    reg = Registry()
    with pytest.raises(InvalidSubscriptionError, match="returned by subscribe"):
        reg.subscription("sub-404")
    with pytest.raises(ValueError, match="unknown ticket 'realtime-9'"):
        reg.note_message("realtime-9", now=0.0)


# ---------------------------------------------------------------------------------------------
# Snapshot and private pools


def test_snapshot_asks_are_merged_and_removal_sends_nothing() -> None:
    reg = Registry()
    first, _ = reg.subscribe("ticker", ["KRW-BTC"], kind="snapshot", now=0.0)
    assert first.kind is SubscriptionKind.SNAPSHOT
    assert first.tickets == ("snapshot-0",)
    connect(reg, "snapshot-0")
    assert reg.subscription(first.id).state is S.ACTIVE
    _, (change,) = reg.subscribe("ticker", ["KRW-BTC", "KRW-ETH"], kind="snapshot", now=1.0)
    # The unanswered ask is repeated, because a new request replaces the old one.
    assert change.keys == (tk("KRW-BTC"), tk("KRW-ETH"))
    assert change.snapshot_wanted == {tk("KRW-BTC"), tk("KRW-ETH")}
    first, changes = reg.unsubscribe(first.id, now=2.0)
    assert (first.state, changes) == (S.CLOSED, [])
    # A realtime stream of the same key lives on another pool.
    reg.subscribe("ticker", ["KRW-BTC"], now=3.0)
    assert reg.ticket_status("realtime-0").desired == (tk("KRW-BTC"),)
    assert find_conflicts(reg.subscriptions(), [], now=None, snapshot_timeout=1.0) == []


def test_private_streams_get_no_snapshots_and_close_when_empty() -> None:
    reg = Registry()
    sub, _ = reg.subscribe(["myOrder", "myAsset"], [], now=0.0)
    assert sub.kind is SubscriptionKind.PRIVATE
    assert sub.keys == (StreamKey("myOrder", ""), StreamKey("myAsset", ""))
    replay = connect(reg, "private-0")
    assert replay.snapshot_wanted == frozenset()
    orders, (change,) = reg.subscribe("myOrder", ["KRW-BTC"], now=1.0)
    assert change.snapshot_wanted == frozenset()
    send(reg, change)
    reg.unsubscribe(orders.id, now=2.0)
    _, (close,) = reg.unsubscribe(sub.id, now=3.0)
    assert (close.keys, close.hard_reset, close.park) == ((), True, False)


@pytest.mark.parametrize(
    ("types", "codes", "options", "message"),
    [
        (["ticker", "myOrder"], ["KRW-BTC"], {}, "subscribe to them separately"),
        ("myAsset", ["KRW-BTC"], {}, "myAsset takes no codes"),
        ("ticker", [], {}, "at least one code"),
        ("ticker", ["KRW-BTC"], {"units": 15}, "orderbook only"),
        ("ticker", [""], {}, "non-empty strings"),
        (["ticker", "ticker"], ["KRW-BTC"], {}, "repeat"),
        ("ticker", ["KRW-BTC"], {"kind": "private"}, "myOrder/myAsset only"),
        ("ticker", ["KRW-BTC"], {"kind": "bulk"}, "kind must be one of"),
        ([], ["KRW-BTC"], {}, "at least one data type"),
    ],
)
def test_malformed_subscriptions_are_rejected_with_the_fix(
    types: str | list[str], codes: list[str], options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidSubscriptionError, match=message):
        Registry().subscribe(types, codes, now=0.0, **options)  # type: ignore[arg-type]


def test_an_empty_pool_cannot_take_subscriptions() -> None:
    with pytest.raises(InvalidSubscriptionError, match="private pool has no tickets"):
        Registry(private=0).subscribe("myAsset", [], now=0.0)


# ---------------------------------------------------------------------------------------------
# Consolidation and optimize


def test_removals_fold_tickets_back_together_gaining_side_first() -> None:
    reg = Registry(capacity=2)
    reg.subscribe("ticker", ["A-1"], now=0.0)
    extra, _ = reg.subscribe("ticker", ["A-2"], now=0.0)
    reg.subscribe("ticker", ["A-3"], now=0.0)
    connect(reg, "realtime-0")
    connect(reg, "realtime-1")
    _, changes = reg.unsubscribe(extra.id, now=1.0)
    # Two codes fit one ticket: A-3 moves over (with a fresh SNAPSHOT) and realtime-1 parks.
    assert [(c.ticket, c.keys, c.park) for c in changes] == [
        ("realtime-0", (tk("A-1"), tk("A-3")), False),
        ("realtime-1", (), True),
    ]
    assert changes[0].snapshot_wanted == {tk("A-3")}
    report, changes = reg.optimize(now=2.0)
    assert changes == []
    assert [(r.mode, r.moved, r.open_before, r.open_after) for r in report] == [
        (SubscriptionKind.REALTIME, 0, 1, 1),
        (SubscriptionKind.PRIVATE, 0, 0, 0),
    ]


# ---------------------------------------------------------------------------------------------
# Inspection


def test_conflicts_duplicates_overlaps_and_missing_snapshots() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC", "KRW-ETH"], now=0.0)
    reg.subscribe("ticker", ["KRW-ETH", "KRW-BTC"], now=0.0)
    reg.subscribe("ticker", ["KRW-ETH", "KRW-XRP"], now=0.0)
    (replay,) = reg.ticket_connected("realtime-0", 1, now=0.0)
    reg.ticket_sent("realtime-0", 1, replay.keys, snapshot_keys=replay.keys, now=10.0)
    reg.note_snapshot("realtime-0", tk("KRW-BTC"), now=10.5)
    reg.note_snapshot("realtime-0", tk("KRW-ETH"), now=10.5)
    kinds = [c.kind for c in reg.detect_conflicts()]
    assert kinds == [ConflictKind.DUPLICATE, ConflictKind.OVERLAP, ConflictKind.OVERLAP]
    duplicate = reg.detect_conflicts()[0]
    assert duplicate.subscriptions == ("sub-1", "sub-2")
    late = reg.detect_conflicts(16.0, snapshot_timeout=5.0)[-1]
    assert late.kind is ConflictKind.MISSING_SNAPSHOT
    assert late.keys == (tk("KRW-XRP"),)
    assert "KRW-XRP" in late.message
    assert reg.detect_conflicts(12.0, snapshot_timeout=5.0)[-1].kind is ConflictKind.OVERLAP


def _status(ticket: str, mode: SubscriptionKind, desired: tuple[StreamKey, ...]) -> TicketStatus:
    return TicketStatus(
        ticket=ticket,
        mode=mode,
        desired=desired,
        generation=None,
        last_generation=0,
        sent=None,
        queued=(),
        created_at=None,
        connected_at=None,
        last_message=None,
        lost_cause=None,
        awaiting_snapshot=(),
    )


def test_conflict_detector_finds_broken_placements() -> None:
    realtime = SubscriptionKind.REALTIME
    reg = Registry()
    snap, _ = reg.subscribe("ticker", ["KRW-BTC"], kind="snapshot", now=0.0)
    # A snapshot subscription placed on a realtime ticket: the mix the pools exist to prevent.
    snap = attrs.evolve(snap, tickets=("realtime-0",))
    statuses = [
        _status("realtime-0", realtime, (tk("KRW-BTC"), tr("KRW-ETH"))),
        _status("realtime-1", realtime, (tk("KRW-BTC"), tk("KRW-ETH"))),
    ]
    found = find_conflicts([snap], statuses, now=None, snapshot_timeout=5.0)
    kinds = [c.kind for c in found]
    assert kinds.count(ConflictKind.MODE_MIX) == 1
    assert ConflictKind.SPLIT_STREAM in kinds
    split_codes = [c for c in found if c.kind is ConflictKind.SPLIT_CODE]
    assert {c.message.split()[0] for c in split_codes} == {"KRW-BTC", "KRW-ETH"}


def test_check_duplicate_ignores_code_order() -> None:
    reg = Registry()
    reg.subscribe("orderbook", ["KRW-BTC", "KRW-ETH"], units=15, now=0.0)
    assert reg.check_duplicate("orderbook", ["KRW-ETH", "KRW-BTC"], units=15)
    assert not reg.check_duplicate("orderbook", ["KRW-ETH", "KRW-BTC"])
    assert not reg.check_duplicate("orderbook", ["KRW-BTC", "KRW-ETH"], units=15, kind="snapshot")


def test_inactive_subscriptions() -> None:
    reg = Registry()
    quiet, _ = reg.subscribe("trade", ["KRW-BTC"], now=0.0)
    busy, _ = reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    closed, _ = reg.subscribe("ticker", ["KRW-ETH"], now=0.0)
    own, _ = reg.subscribe("myOrder", [], now=0.0)
    stuck, _ = reg.subscribe("ticker", ["KRW-XRP"], kind="snapshot", now=0.0)
    # Tickets down: streams cannot flow, so silence proves nothing (except for snapshots).
    assert reg.inactive(100.0, 60.0) == [stuck.id]
    connect(reg, "realtime-0", now=1.0)
    connect(reg, "private-0", now=1.0)
    reg.mark_active(busy.id, now=90.0)
    reg.consumer_closed(closed.id, now=50.0)
    assert reg.inactive(100.0, 60.0) == [quiet.id, closed.id, stuck.id]
    assert reg.subscription(busy.id).last_message_at == 90.0
    assert reg.subscription(closed.id).consumer_open is False
    assert own.id not in reg.inactive(1000.0, 60.0)


def test_registry_view_has_the_briefs_shape() -> None:
    reg = Registry()
    reg.subscribe(["ticker", "trade"], ["KRW-BTC", "KRW-ETH"], now=5.0)
    connect(reg, "realtime-0", now=6.0)
    reg.note_message("realtime-0", now=7.0)
    view = reg.registry_view(8.0)
    assert list(view) == ["realtime-0"]
    entry = view["realtime-0"]
    assert {
        k: entry[k]
        for k in ("mode", "data_types", "symbols", "created_at", "last_message", "status")
    } == {
        "mode": "realtime",
        "data_types": ["ticker", "trade"],
        "symbols": ["KRW-BTC", "KRW-ETH"],
        "created_at": 5.0,
        "last_message": 7.0,
        "status": "active",
    }
    assert reg.registry_view(40.0, stall_after=30.0)["realtime-0"]["status"] == "inactive"


def test_usage_reports_each_pool_at_full_efficiency_in_steady_state() -> None:
    reg = Registry()
    reg.subscribe(["ticker", "trade"], ["KRW-BTC", "KRW-ETH"], now=0.0)
    connect(reg, "realtime-0")
    usage = reg.usage(1.0)
    assert set(usage) == {"realtime", "snapshot", "private"}
    realtime = usage["realtime"]
    assert (realtime.tickets, realtime.open, realtime.streams, realtime.codes) == (2, 1, 4, 2)
    assert realtime.subscriptions == 1
    assert realtime.efficiency.ticket == 1.0
    assert realtime.wire_efficiency.ticket == 1.0
    assert usage["snapshot"].efficiency.ticket == 1.0


def test_routes_list_subscribers_per_stream() -> None:
    reg = Registry()
    reg.subscribe("ticker", ["KRW-BTC"], now=0.0)
    reg.subscribe(["ticker", "trade"], ["KRW-BTC"], now=0.0)
    assert reg.routes("realtime") == {tk("KRW-BTC"): ("sub-1", "sub-2"), tr("KRW-BTC"): ("sub-2",)}
    assert reg.wanted("realtime") == (tk("KRW-BTC"), tr("KRW-BTC"))


def test_closed_records_are_retained_up_to_a_bound() -> None:
    reg = Registry(retain_closed=2)
    for code in ("A-1", "A-2", "A-3"):
        sub, _ = reg.subscribe("ticker", [code], now=0.0)
        reg.unsubscribe(sub.id, now=1.0)
    assert [s.id for s in reg.subscriptions(live_only=False)] == ["sub-2", "sub-3"]


# ---------------------------------------------------------------------------------------------
# coalesce_changes


def test_coalesce_keeps_the_latest_set_and_accumulates_wishes() -> None:
    a = TicketChange("realtime-0", 3, (tk("A"),), frozenset({tk("A")}))
    b = TicketChange("realtime-0", 3, (tk("A"), tk("B")), frozenset({tk("B")}), hard_reset=True)
    c = TicketChange("realtime-0", 3, (tk("B"),), frozenset(), park=False)
    merged = coalesce_changes([a, b, c])
    assert merged.keys == (tk("B"),)
    assert merged.snapshot_wanted == {tk("B")}
    assert merged.hard_reset
    park = coalesce_changes([a, TicketChange("realtime-0", 3, (), park=True)])
    assert (park.park, park.snapshot_wanted) == (True, frozenset())
    with pytest.raises(ValueError, match="one ticket and generation"):
        coalesce_changes([a, TicketChange("realtime-0", 4, ())])
    with pytest.raises(ValueError, match="at least one"):
        coalesce_changes([])


# ---------------------------------------------------------------------------------------------
# Stateful property test

CODES = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "BTC-ETH", "USDT-BTC")
TYPES = ("ticker", "trade", "orderbook")


class RegistryMachine(RuleBasedStateMachine):
    """Random operations against the registry, checking its invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.reg = Registry(realtime=3, snapshot=1, private=1, capacity=2)
        self.now = 0.0
        self.ids: list[str] = []
        self.closed_seen: dict[str, bool] = {}

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    def desired(self) -> dict[str, tuple[StreamKey, ...]]:
        return {name: self.reg.ticket_status(name).desired for name in self.reg.tickets()}

    def check_changes(
        self,
        changes: list[TicketChange],
        before: dict[str, tuple[StreamKey, ...]],
        joined: set[StreamKey],
    ) -> None:
        for change in changes:
            status = self.reg.ticket_status(change.ticket)
            # Only live connections get changes, and always the complete set.
            assert status.generation == change.generation
            assert change.keys == status.desired
            assert status.queued[-1] == change.keys
            if change.park:
                assert change.keys == ()
            fresh = set(change.keys) - set(before[change.ticket])
            assert change.snapshot_wanted <= set(change.keys)
            assert change.snapshot_wanted <= fresh | joined

    def check_joiners(
        self,
        changes: list[TicketChange],
        before: dict[str, tuple[StreamKey, ...]],
        kind: SubscriptionKind,
        joined: set[StreamKey],
    ) -> None:
        """Keys a snapshot-wanting subscriber joins on a live ticket must be re-snapshotted."""
        for name in self.reg.tickets(kind):
            status = self.reg.ticket_status(name)
            if not status.connected:
                continue
            for key in joined & set(before[name]) & set(status.desired):
                assert any(c.ticket == name and key in c.snapshot_wanted for c in changes), key

    def pick(self, data: st.DataObject) -> str | None:
        return data.draw(st.sampled_from(self.ids)) if self.ids else None

    @rule(
        types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True),
        codes=st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True),
        snapshot=st.booleans(),
        kind=st.sampled_from(["realtime", "realtime", "snapshot"]),
    )
    def subscribe(self, types: list[str], codes: list[str], snapshot: bool, kind: str) -> None:
        before = self.desired()
        sub, changes = self.reg.subscribe(
            types, codes, kind=kind, snapshot=snapshot, now=self.tick()
        )
        self.check_changes(changes, before, set(sub.keys))
        if sub.snapshot:
            self.check_joiners(changes, before, sub.kind, set(sub.keys))
        self.ids.append(sub.id)

    @rule(every_market=st.booleans())
    def subscribe_private(self, every_market: bool) -> None:
        before = self.desired()
        codes = [] if every_market else ["KRW-BTC"]
        sub, changes = self.reg.subscribe("myOrder", codes, now=self.tick())
        self.check_changes(changes, before, set())
        assert all(not change.snapshot_wanted for change in changes)
        self.ids.append(sub.id)

    @rule(
        data=st.data(), codes=st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True)
    )
    def modify(self, data: st.DataObject, codes: list[str]) -> None:
        sub_id = self.pick(data)
        if sub_id is None:
            return
        sub = self.reg.subscription(sub_id)
        if sub.kind is SubscriptionKind.PRIVATE:
            return
        before = self.desired()
        if not sub.is_live:
            with pytest.raises(InvalidSubscriptionError):
                self.reg.modify(sub_id, codes, now=self.tick())
            return
        updated, changes = self.reg.modify(sub_id, codes, now=self.tick())
        assert updated.codes == tuple(codes)
        added = set(updated.keys) - set(sub.keys)
        self.check_changes(changes, before, added)
        if sub.snapshot:
            self.check_joiners(changes, before, sub.kind, added)

    @rule(data=st.data(), hard=st.booleans())
    def unsubscribe(self, data: st.DataObject, hard: bool) -> None:
        sub_id = self.pick(data)
        if sub_id is None:
            return
        before = self.desired()
        sub, changes = self.reg.unsubscribe(
            sub_id, mode="hard" if hard else "soft", now=self.tick()
        )
        assert not sub.is_live
        self.check_changes(changes, before, set())
        wanted = {key for live in self.reg.subscriptions() for key in live.keys}
        on_tickets = {key for keys in self.desired().values() for key in keys}
        assert not (set(sub.keys) - wanted) & on_tickets

    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        sub_id = self.pick(data)
        if sub_id is None:
            return
        before = self.desired()
        sub, changes = self.reg.fail(sub_id, "test failure", now=self.tick())
        assert sub.state.is_terminal
        self.check_changes(changes, before, set())

    @rule(data=st.data())
    def mark_active(self, data: st.DataObject) -> None:
        sub_id = self.pick(data)
        if sub_id is not None:
            assert self.reg.mark_active(sub_id, now=self.tick()).last_message_at == self.now

    @rule(data=st.data(), needed=st.booleans())
    def connect(self, data: st.DataObject, needed: bool) -> None:
        # Mostly what the engine does (start tickets that should carry streams), sometimes any.
        candidates = self.reg.tickets_needing_connection() if needed else ()
        name = data.draw(st.sampled_from(candidates or self.reg.tickets()))
        status = self.reg.ticket_status(name)
        generation = status.last_generation + 1
        changes = self.reg.ticket_connected(name, generation, now=self.tick())
        assert self.reg.ticket_status(name).generation == generation
        if not status.desired:
            assert changes == []
            return
        assert all(change.replay for change in changes)
        # The last step carries the whole set; earlier steps grow it in creation order.
        assert changes[-1].keys == status.desired == self.reg.replay_request(name, generation)
        suspects = self.reg.ticket_status(name).suspects
        probes = [change.probe for change in changes if change.probe]
        assert probes == [(sub_id,) for sub_id in suspects]
        for earlier, later in itertools.pairwise(changes):
            assert set(earlier.keys) <= set(later.keys)
            assert later.probe
        for change in changes:
            assert list(change.keys) == [key for key in status.desired if key in change.keys]
            for sub_id in change.probe:
                sub = self.reg.subscription(sub_id)
                assert sub.is_live
                assert name in sub.tickets
                assert {k for k in sub.keys if k in status.desired} <= set(change.keys)

    @rule(data=st.data(), explicit=st.booleans())
    def reject(self, data: st.DataObject, explicit: bool) -> None:
        connected = [
            name
            for name in self.reg.tickets()
            if self.reg.ticket_status(name).connected and self.reg.ticket_status(name).desired
        ]
        if not connected:
            return
        name = data.draw(st.sampled_from(connected))
        desired = self.reg.ticket_status(name).desired
        keys = set(data.draw(st.lists(st.sampled_from(desired), min_size=1, max_size=3)))
        on_ticket = [sub for sub in self.reg.subscriptions() if name in sub.tickets]
        if explicit:
            named = [data.draw(st.sampled_from(on_ticket)).id]
            suspects = named
        else:
            named = None
            suspects = [sub.id for sub in on_ticket if keys & set(sub.keys)]
        before = set(self.reg.ticket_status(name).suspects)
        failed, _ = self.reg.reject(name, keys, "rejected", subscriptions=named, now=self.tick())
        if len(suspects) == 1:
            assert failed == tuple(suspects)
            assert self.reg.subscription(suspects[0]).state is S.FAILED
            assert suspects[0] not in self.reg.ticket_status(name).suspects
        else:
            assert failed == ()
            now_suspect = self.reg.ticket_status(name).suspects
            assert set(now_suspect) == before | set(suspects)
            serials = [self.reg.subscription(sub_id).serial for sub_id in now_suspect]
            assert serials == sorted(serials)

    @rule(data=st.data())
    def probe_passes(self, data: st.DataObject) -> None:
        with_suspects = [n for n in self.reg.tickets() if self.reg.ticket_status(n).suspects]
        if not with_suspects:
            return
        name = data.draw(st.sampled_from(with_suspects))
        first = self.reg.ticket_status(name).suspects[0]
        self.reg.probe_passed(name, [first])
        assert first not in self.reg.ticket_status(name).suspects

    @rule(data=st.data())
    def give_up(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.reg.tickets()))
        on_ticket = {sub.id for sub in self.reg.subscriptions() if name in sub.tickets}
        failed, _ = self.reg.ticket_failed(name, "gave up", now=self.tick())
        assert set(failed) == on_ticket
        assert all(not self.reg.subscription(sub_id).is_live for sub_id in failed)
        if not self.reg.ticket_status(name).connected:
            assert self.reg.registry_view(self.now)[name]["status"] == "error"

    @rule(data=st.data(), cause=st.sampled_from([None, "1006", "stalled"]))
    def lose(self, data: st.DataObject, cause: str | None) -> None:
        name = data.draw(st.sampled_from(self.reg.tickets()))
        generation = self.reg.ticket_status(name).generation
        if generation is None:
            return
        assert self.reg.ticket_lost(name, generation, cause, now=self.tick())
        for sub in self.reg.subscriptions():
            if name in sub.tickets:
                assert sub.state is S.PENDING

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        connected = [
            name
            for name in self.reg.tickets()
            if self.reg.ticket_status(name).connected and self.reg.ticket_status(name).queued
        ]
        if not connected:
            return
        name = data.draw(st.sampled_from(connected))
        status = self.reg.ticket_status(name)
        # A ticket sends handed-over sets in order, possibly skipping to a later one.
        index = data.draw(st.integers(0, len(status.queued) - 1))
        keys = status.queued[index]
        assert self.reg.ticket_sent(
            name, status.generation or 0, keys, snapshot_keys=keys, now=self.tick()
        )
        assert self.reg.ticket_status(name).sent == keys

    @rule()
    def settle_everything(self) -> None:
        # Steady state: every ticket that should run connects and sends its latest set.
        for name in self.reg.tickets_needing_connection():
            status = self.reg.ticket_status(name)
            self.reg.ticket_connected(name, status.last_generation + 1, now=self.tick())
        for name in self.reg.tickets():
            status = self.reg.ticket_status(name)
            # A ticket coalesces to the latest set; the registry cannot tell which of several
            # equal queued sets went out, so repeating it may be needed to retire them all (each
            # send retires at least one).
            while status.connected and status.queued:
                generation = status.generation or 0
                assert self.reg.ticket_sent(name, generation, status.queued[-1], now=self.tick())
                status = self.reg.ticket_status(name)
            assert status.queued == ()
        for sub in self.reg.subscriptions():
            if sub.kind is not SubscriptionKind.SNAPSHOT or sub.tickets:
                assert sub.state is S.ACTIVE, sub
        assert not self.reg.subscriptions(live_only=False) or all(
            sub.state is not S.CLOSING for sub in self.reg.subscriptions(live_only=False)
        )

    @rule(data=st.data(), kind=st.sampled_from(["sent", "lost", "connected"]))
    def stale_report(self, data: st.DataObject, kind: str) -> None:
        name = data.draw(st.sampled_from(self.reg.tickets()))
        status = self.reg.ticket_status(name)
        stale = data.draw(
            st.sampled_from(
                [g for g in range(status.last_generation + 1) if g != status.generation]
            )
        )
        before = state_of(self.reg)
        if kind == "sent":
            assert not self.reg.ticket_sent(name, stale, status.desired, now=self.tick())
        elif kind == "lost":
            assert not self.reg.ticket_lost(name, stale, "late", now=self.tick())
        else:
            assert self.reg.ticket_connected(name, stale, now=self.tick()) == []
        assert state_of(self.reg) == before

    @rule()
    def optimize(self) -> None:
        before = self.desired()
        _, changes = self.reg.optimize(now=self.tick())
        self.check_changes(changes, before, set())

    @invariant()
    def desired_sets_match_live_subscriptions(self) -> None:
        for kind in SubscriptionKind:
            live = [sub for sub in self.reg.subscriptions() if sub.kind is kind]
            # Creation order, computed independently of the registry.
            expected = list(
                dict.fromkeys(
                    key for sub in sorted(live, key=lambda s: s.serial) for key in sub.keys
                )
            )
            placed: dict[StreamKey, str] = {}
            codes: dict[str, set[str]] = {}
            for name in self.reg.tickets(kind):
                desired = self.reg.ticket_status(name).desired
                for key in desired:
                    assert key not in placed, f"{key} on {placed.get(key)} and {name}"
                    placed[key] = name
                    codes.setdefault(key.code, set()).add(name)
                # Replay order is creation order.
                assert list(desired) == [key for key in expected if key in set(desired)]
            assert set(placed) == set(expected)
            assert all(len(names) == 1 for names in codes.values())
            for sub in live:
                assert sub.tickets == tuple(
                    name
                    for name in self.reg.tickets(kind)
                    if {placed[k] for k in sub.keys} & {name}
                )

    @invariant()
    def states_follow_the_wire(self) -> None:
        for sub in self.reg.subscriptions(live_only=False):
            if sub.state in (S.PENDING, S.MODIFYING):
                # Settled: a subscription fully on the wire would be ACTIVE.
                sent_everywhere = all(
                    self.reg.ticket_status(name).connected
                    and key in set(self.reg.ticket_status(name).sent or ())
                    for key in sub.keys
                    for name in sub.tickets
                    if key in self.reg.ticket_status(name).desired
                )
                assert not sent_everywhere or not sub.tickets

    @invariant()
    def closed_means_off_the_wire(self) -> None:
        # Checked when a subscription becomes CLOSED: no live connection of its pool carries, or
        # has queued, a stream only it wanted.
        states = {sub.id: sub for sub in self.reg.subscriptions(live_only=False)}
        for sub_id, sub in states.items():
            if sub.state is not S.CLOSED or self.closed_seen.get(sub_id):
                continue
            self.closed_seen[sub_id] = True
            if sub.kind is SubscriptionKind.SNAPSHOT:
                continue
            wanted = set(self.reg.wanted(sub.kind))
            for name in self.reg.tickets(sub.kind):
                carried = self.reg.ticket_status(name).may_carry()
                assert not (set(sub.keys) - wanted) & carried, (sub_id, name)

    @invariant()
    def efficiency_is_full_unless_a_ticket_is_parked(self) -> None:
        usage = self.reg.usage(self.now)
        for kind in SubscriptionKind:
            statuses = [self.reg.ticket_status(name) for name in self.reg.tickets(kind)]
            if not any(status.connected and not status.desired for status in statuses):
                assert usage[kind.value].efficiency.ticket == 1.0, usage[kind.value]

    @invariant()
    def no_conflicts_but_overlaps_and_duplicates(self) -> None:
        kinds = {c.kind for c in self.reg.detect_conflicts()}
        assert kinds <= {ConflictKind.OVERLAP, ConflictKind.DUPLICATE}

    @invariant()
    def codes_fit_the_capacity_when_they_can(self) -> None:
        for kind in SubscriptionKind:
            names = self.reg.tickets(kind)
            wanted = self.reg.wanted(kind)
            if len(distinct_codes(wanted)) <= self.reg.capacity * len(names):
                for name in names:
                    desired = self.reg.ticket_status(name).desired
                    assert len(distinct_codes(desired)) <= self.reg.capacity


TestRegistryMachine = RegistryMachine.TestCase
TestRegistryMachine.settings = settings(
    max_examples=400 if LONG else 40, stateful_step_count=60 if LONG else 30, deadline=None
)
