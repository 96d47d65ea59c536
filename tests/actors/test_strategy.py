"""The sans-IO restart decisions: who is restarted, and with whom."""

from __future__ import annotations

import pytest

from actors.strategy import ExitKind, ExitReason, Restart, Strategy, restart_group, should_restart

ORDER = ("registry", "markets", "tickets", "debug")


@pytest.mark.parametrize(
    ("restart", "kind", "expected"),
    [
        (Restart.PERMANENT, ExitKind.NORMAL, True),
        (Restart.PERMANENT, ExitKind.SHUTDOWN, True),
        (Restart.PERMANENT, ExitKind.ERROR, True),
        (Restart.TRANSIENT, ExitKind.NORMAL, False),
        (Restart.TRANSIENT, ExitKind.SHUTDOWN, False),
        (Restart.TRANSIENT, ExitKind.ERROR, True),
        (Restart.TRANSIENT, ExitKind.KILLED, True),
        (Restart.TEMPORARY, ExitKind.NORMAL, False),
        (Restart.TEMPORARY, ExitKind.ERROR, False),
        (Restart.TEMPORARY, ExitKind.KILLED, False),
    ],
)
def test_should_restart_follows_otp(restart: Restart, kind: ExitKind, expected: bool) -> None:
    assert should_restart(restart, ExitReason(kind)) is expected


@pytest.mark.parametrize(
    ("strategy", "failed", "group"),
    [
        (Strategy.ONE_FOR_ONE, "tickets", ("tickets",)),
        (Strategy.ONE_FOR_ALL, "tickets", ORDER),
        (Strategy.REST_FOR_ONE, "markets", ("markets", "tickets", "debug")),
        (Strategy.REST_FOR_ONE, "debug", ("debug",)),
        (Strategy.REST_FOR_ONE, "registry", ORDER),
    ],
)
def test_restart_group(strategy: Strategy, failed: str, group: tuple[str, ...]) -> None:
    assert restart_group(strategy, ORDER, failed) == group


def test_restart_group_needs_a_known_child() -> None:
    with pytest.raises(ValueError, match="ghost"):
        restart_group(Strategy.ONE_FOR_ONE, ORDER, "ghost")


def test_exit_reason_reads_well() -> None:
    error = ValueError("boom")
    assert str(ExitReason(ExitKind.ERROR, error)) == "error: ValueError('boom')"
    assert str(ExitReason(ExitKind.KILLED, detail="after 5 s")) == "killed (after 5 s)"
    assert ExitReason(ExitKind.ERROR, error).abnormal
    assert not ExitReason(ExitKind.SHUTDOWN).abnormal
