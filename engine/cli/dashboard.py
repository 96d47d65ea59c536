"""``upbit-engine inspect --follow``: a live terminal dashboard of a running engine, drawn with
rich from the debug channel's replies.

Per ticket: its state and time in it, streams, messages per second by type, reconnects and last
failure; per subscription: its rate, buffer, gaps and drops; then the tail of the event stream.
Rates are differences between two polls of the channel's counters, over the engine's own clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Final, TextIO

import trio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.cli.debug_client import DebugClient, DebugClientError, open_debug_client

__all__ = ("Dashboard", "run_dashboard")

#: Seconds a failed poll waits for the event follower to report that the engine stopped.
GONE_GRACE: Final = 5.0
#: Events kept at the bottom of the dashboard.
EVENT_TAIL: Final = 12
_LEVEL_STYLE: Final = {
    "connection_lost": "red",
    "connect_failed": "red",
    "ticket_failed": "bold red",
    "subscription_failed": "bold red",
    "actor_gave_up": "bold red",
    "error_frame": "yellow",
    "rate_limited": "yellow",
    "slow_subscriber": "yellow",
    "frame_drift": "yellow",
    "actor_restarting": "yellow",
    "events_dropped": "yellow",
    "connected": "green",
    "replayed": "green",
}


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _rows(value: object) -> list[dict[str, object]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _rates(
    now: Mapping[str, object], before: Mapping[str, object] | None, seconds: float
) -> dict[str, float]:
    """Per-key increase per second between two counter maps (new keys count from 0)."""
    if before is None or seconds <= 0:
        return {}
    return {
        key: max(0.0, _number(value) - _number(before.get(key, 0))) / seconds
        for key, value in now.items()
    }


class Dashboard:
    """The dashboard's state: the last two polls (for rates) and the event tail. Pure: fed with
    replies, rendered to rich renderables; the terminal loop is :func:`run_dashboard`."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.tickets: list[dict[str, object]] = []
        self.subscriptions: list[dict[str, object]] = []
        self.events: deque[dict[str, object]] = deque(maxlen=EVENT_TAIL)
        self.ticket_rates: dict[str, dict[str, float]] = {}
        self.sub_rates: dict[str, float] = {}
        self._routed: dict[str, Mapping[str, object]] = {}
        self._delivered: Mapping[str, object] = {}
        self._tickets_at: float | None = None
        self._subs_at: float | None = None
        self.gone: str | None = None

    def update_tickets(self, reply: Mapping[str, object]) -> None:
        at = _number(reply.get("at"))
        rows = reply.get("tickets")
        self.tickets = (
            [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
        )
        seconds = at - self._tickets_at if self._tickets_at is not None else 0.0
        routed_now: dict[str, Mapping[str, object]] = {}
        for row in self.tickets:
            name = str(row.get("ticket"))
            routed = row.get("routed")
            routed_now[name] = routed if isinstance(routed, dict) else {}
            self.ticket_rates[name] = _rates(routed_now[name], self._routed.get(name), seconds)
        self._routed = routed_now
        self._tickets_at = at

    def update_subscriptions(self, reply: Mapping[str, object]) -> None:
        at = _number(reply.get("at"))
        rows = reply.get("subscriptions")
        self.subscriptions = (
            [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
        )
        delivered = {
            str(row.get("id")): _number(row.get("delivered")) for row in self.subscriptions
        }
        seconds = at - self._subs_at if self._subs_at is not None else 0.0
        self.sub_rates = _rates(delivered, self._delivered, seconds)
        self._delivered = delivered
        self._subs_at = at

    def add_event(self, event: Mapping[str, object]) -> None:
        self.events.append(dict(event))

    def render(self) -> RenderableType:
        title = Text(f"upbit-engine at {self.address}", style="bold")
        if self.gone:
            title.append(f"  -- {self.gone}", style="bold red")
        return Group(title, self._ticket_table(), self._sub_table(), self._event_table())

    def _ticket_table(self) -> Table:
        table = Table(title="Tickets", title_justify="left", expand=True)
        for column in ("ticket", "state", "for", "streams", "msgs/s by type", "reconnects"):
            table.add_column(column, no_wrap=True)
        table.add_column("last failure", overflow="ellipsis", no_wrap=True)
        for row in self.tickets:
            name = str(row.get("ticket"))
            rates = self.ticket_rates.get(name, {})
            by_type = " ".join(f"{k} {v:,.1f}" for k, v in sorted(rates.items()) if v) or "-"
            state = str(row.get("state", "?"))
            style = {"streaming": "green", "down": "red", "parked": "dim"}.get(state, "")
            table.add_row(
                name,
                Text(f"{state} ({row.get('connection_state', '-')})", style=style),
                f"{_number(row.get('time_in_state')):.1f}s",
                str(row.get("streams", 0)),
                by_type,
                str(row.get("reconnects", 0)),
                str(row.get("last_failure") or "-"),
            )
        return table

    def _sub_table(self) -> Table:
        table = Table(title="Subscriptions", title_justify="left", expand=True)
        for column in ("id", "types", "codes", "msgs/s", "buffer", "gaps", "dropped", "state"):
            table.add_column(column, no_wrap=True)
        for row in self.subscriptions:
            sub_id = str(row.get("id"))
            codes = row.get("codes")
            code_list: Sequence[object] = codes if isinstance(codes, list) else []
            shown = ",".join(str(code) for code in code_list[:3])
            if len(code_list) > 3:
                shown += f" (+{len(code_list) - 3})"
            types = row.get("types")
            buffered, size = row.get("buffered", 0), row.get("max_size")
            gaps = int(_number(row.get("gaps")))
            table.add_row(
                sub_id,
                ",".join(str(t) for t in types) if isinstance(types, list) else "-",
                shown or "-",
                f"{self.sub_rates.get(sub_id, 0.0):,.1f}",
                f"{buffered}/{size}" if size else str(buffered),
                Text(str(gaps), style="yellow" if gaps else ""),
                str(row.get("dropped", 0)),
                str(row.get("state", "?")),
            )
        return table

    def _event_table(self) -> Table:
        table = Table(title="Events", title_justify="left", expand=True, show_header=False)
        table.add_column("time", no_wrap=True, width=12)
        table.add_column("event", overflow="ellipsis", no_wrap=True, ratio=1)
        for event in self.events:
            utc = str(event.get("utc", ""))
            stamp = utc[11:23] if len(utc) >= 23 else utc
            kind = str(event.get("kind", ""))
            table.add_row(
                stamp, Text(str(event.get("summary", kind)), style=_LEVEL_STYLE.get(kind, ""))
            )
        if not self.events:
            table.add_row("", Text("(no events yet)", style="dim"))
        return table


async def run_dashboard(address: str, client: DebugClient, out: TextIO, interval: float) -> None:
    """Poll ``client`` every ``interval`` seconds and follow the events on a second connection,
    redrawing the dashboard in place, until cancelled (Ctrl-C, SIGTERM) or the engine stops."""
    dashboard = Dashboard(address)
    console = Console(file=out)
    with Live(console=console, auto_refresh=False, redirect_stdout=False) as live:
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                events_client, stream = await open_debug_client(address)
                async with stream:
                    async for event in events_client.follow(recent=EVENT_TAIL):
                        dashboard.add_event(event)
                        live.update(dashboard.render(), refresh=True)
                dashboard.gone = "the engine stopped"
                live.update(dashboard.render(), refresh=True)
                nursery.cancel_scope.cancel()

            nursery.start_soon(follow)
            while True:
                try:
                    dashboard.update_tickets(await client.request("tickets"))
                    dashboard.update_subscriptions(await client.request("subscriptions"))
                except DebugClientError:
                    # The engine went away between two polls: give the follower a moment to
                    # say how it ended (it ends the dashboard); else this error is the answer.
                    await trio.sleep(GONE_GRACE)
                    raise
                live.update(dashboard.render(), refresh=True)
                await trio.sleep(interval)
