"""``nightshift schedule list | pause | resume | run | set-cron | history``.

Changes are written to PostgreSQL with who made them; the active scheduler reads
them within a second (``SCHEDULER_RELOAD_INTERVAL_MS``), so no restart is needed,
and they survive restarts and redeploys.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import socket
from typing import Any

import click

#: Help text of ``--by``.
BY_HELP = "Who makes the change (default: user@host)."


def _default_by() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


@click.group()
def schedule() -> None:
    """List, pause, resume, run and reschedule periodic jobs."""


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_schedules(as_json: bool) -> None:
    """Every schedule: cron, next and last fire, last outcome, last change."""
    from nightshift.common.schedule_control import describe_schedules

    with _session() as session:
        rows = describe_schedules(session)
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        click.echo("no schedules")
        return
    for row in rows:
        state = "paused" if row["paused"] else ("active" if row["declared"] else "undeclared")
        click.echo(f"{row['name']}  [{state}]  {row['cron']!r} {row['timezone']}  -> {row['actor']} on {row['queue']}")
        click.echo(f"    next fire:   {_when(row['next_fire'], row['timezone'])}")
        click.echo(
            f"    last fire:   {_when(row['last_fire_at'], row['timezone'])}"
            f"  outcome: {row['last_outcome'] or '-'}  message: {row['last_message_id'] or '-'}"
        )
        if row["changed_at"]:
            click.echo(f"    changed:     {row['change']} by {row['changed_by']} at {_when(row['changed_at'], 'UTC')}")


@schedule.command()
@click.argument("name")
@click.option("--by", default=_default_by, help=BY_HELP)
def pause(name: str, by: str) -> None:
    """Stop firing NAME until it is resumed."""
    _change(name, "pause", by=by)


@schedule.command()
@click.argument("name")
@click.option("--by", default=_default_by, help=BY_HELP)
def resume(name: str, by: str) -> None:
    """Fire NAME again from now on (fires due while paused are not run)."""
    _change(name, "resume", by=by)


@schedule.command("set-cron")
@click.argument("name")
@click.argument("cron", required=False)
@click.option("--declared", is_flag=True, help="Go back to the cron expression declared in the code.")
@click.option("--by", default=_default_by, help=BY_HELP)
def set_cron(name: str, cron: str | None, declared: bool, by: str) -> None:
    """Fire NAME on CRON (5 fields, or 6 with seconds first) instead of its declared expression."""
    if (cron is None) == (not declared):
        raise click.UsageError("give either CRON or --declared")
    _change(name, "set_cron", by=by, cron=cron)


@schedule.command("run")
@click.argument("name")
@click.option("--by", default=_default_by, help=BY_HELP)
def run_now(name: str, by: str) -> None:
    """Enqueue NAME's message now, once, besides its regular fires."""
    from nightshift.common import runtime
    from nightshift.common.broker import build_broker
    from nightshift.common.schedule_control import run_now as enqueue_now

    declared = _declared()
    if name not in declared:
        raise click.ClickException(f"unknown schedule {name!r} (declared: {', '.join(declared) or 'none'})")
    broker = build_broker(runtime.settings(), set_global=False)
    try:
        message = enqueue_now(name, broker=broker, sessions=runtime.session_factory(), by=by)
    finally:
        broker.close()
    click.echo(f"{message.message_id} {message.actor_name} -> {message.queue_name}")


@schedule.command()
@click.argument("name")
@click.option("--limit", default=20, show_default=True, help="How many events, newest first.")
def history(name: str, limit: int) -> None:
    """NAME's recorded events: operators' changes and skipped fires, newest first."""
    from nightshift.common import schedule_control

    with _session() as session:
        try:
            schedule_control.get(session, name)
        except schedule_control.UnknownSchedule as error:
            raise click.ClickException(str(error)) from None
        events = schedule_control.events(session, name, limit=limit)
    for event in events:
        fires = (
            f"  fires {event.first_fire_at:%Y-%m-%d %H:%M:%S}..{event.last_fire_at:%H:%M:%S}Z"
            if event.first_fire_at and event.last_fire_at
            else ""
        )
        click.echo(f"{event.at:%Y-%m-%d %H:%M:%S}Z  {event.kind:<16} {event.detail}{fires}  by {event.by}")


def _change(name: str, kind: str, *, by: str, cron: str | None = None) -> None:
    from nightshift.common import runtime
    from nightshift.common.db.engine import transaction
    from nightshift.common.schedule_control import UnknownSchedule
    from nightshift.common.schedule_control import change as apply_change

    _declared()
    try:
        with transaction(runtime.session_factory()) as session:
            row = apply_change(session, name, kind, by=by, cron=cron)
            click.echo(f"{row.name}: {row.change} (by {by})")
    except (UnknownSchedule, ValueError) as error:
        raise click.ClickException(str(error)) from None


def _declared() -> dict[str, Any]:
    """The declared schedules, added to the database if no scheduler has yet."""
    from nightshift.common import runtime
    from nightshift.common.db.engine import transaction
    from nightshift.common.schedules import installed_schedules
    from nightshift.scheduler import store
    from nightshift.scheduler.settings import SchedulerSettings

    options = runtime.service_settings(SchedulerSettings)
    declared = installed_schedules(options.extra_schedule_modules)
    with transaction(runtime.session_factory()) as session:
        store.sync_declared(
            session, declared, default_timezone=runtime.settings().timezone, now=dt.datetime.now(dt.UTC), only_new=True
        )
    return declared


def _session() -> Any:
    from nightshift.common import runtime

    _declared()
    return runtime.session_factory()()


def _when(moment: str | None, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    if not moment:
        return "-"
    value = dt.datetime.fromisoformat(moment)
    return f"{value.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M:%S %Z} ({value.astimezone(dt.UTC):%H:%M:%SZ})"
