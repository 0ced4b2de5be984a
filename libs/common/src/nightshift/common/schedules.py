"""How a service declares its periodic jobs.

Each service lists its schedules in its own ``schedules.py`` as a module-level
``SCHEDULES`` tuple; the scheduler service finds that module through the
service's :class:`~nightshift.common.service.ServiceSpec` (``schedules_module``)
and fires each schedule by enqueuing a message for its contract. Nothing here
runs task code.

Example::

    SCHEDULES = (
        Schedule("cleanup_expired_tokens", "0 2 * * *", CLEANUP_EXPIRED_TOKENS),
    )
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nightshift.common.contracts import Contract

#: What happens to fires missed while no scheduler was active (downtime, failover):
#: ``skip`` drops them, ``coalesce`` runs once for all of them if the latest was
#: missed by less than the grace, ``catch_up`` runs each one within the catch-up window.
#: Dropped fires are recorded as schedule events either way.
MisfirePolicy = Literal["skip", "coalesce", "catch_up"]

#: What happens when a fire comes while the previous run is still queued or running.
OverlapPolicy = Literal["allow", "skip"]

#: The attribute of a service's schedules module that lists its schedules.
SCHEDULES_ATTRIBUTE = "SCHEDULES"

#: Default grace: a fire missed by less than this still runs (once).
DEFAULT_GRACE = dt.timedelta(minutes=10)

#: Default catch-up window of the ``catch_up`` policy.
DEFAULT_CATCH_UP_WINDOW = dt.timedelta(hours=1)

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
_QUEUE = re.compile(r"^[a-z][a-z0-9]*_(critical|high|normal|low)$")


@dataclass(frozen=True)
class Schedule:
    """One periodic job.

    Parameters:
      name: Unique across the platform (the actor's name is a good choice); it names the
        fires' message ids, so never reuse one for another job.
      cron: Five fields (minute hour day month weekday) or six with seconds first.
      contract: The actor to enqueue a message for.
      payload: The actor's keyword arguments, validated against the contract at import.
      timezone: IANA name; None means the platform's ``TIMEZONE`` setting.
      misfire: Policy for fires missed during downtime or failover.
      grace: How late the one run of ``coalesce`` may be; a fire missed by more is skipped.
      catch_up_window: How far back ``catch_up`` replays missed fires.
      overlap: Whether to fire while the previous run is still queued or running.
      description: One line shown by ``nightshift schedule list``.
      floods: Queues each fire fills with a burst of messages (a digest's emails, say): the
        Kubernetes manifests raise those queues' worker pools a few minutes before every fire
        (``python -m deploy.manifests`` reads this).

    Raises:
      ValueError: When the name, cron expression, timezone or windows are malformed.
      InvalidPayload: When *payload* does not match the contract.
    """

    name: str
    cron: str
    contract: Contract[Any]
    payload: Mapping[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    misfire: MisfirePolicy = "coalesce"
    grace: dt.timedelta = DEFAULT_GRACE
    catch_up_window: dt.timedelta = DEFAULT_CATCH_UP_WINDOW
    overlap: OverlapPolicy = "allow"
    description: str = ""
    floods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"schedule name {self.name!r}: lowercase letters, digits, '_', '.', '-'")
        validate_cron(self.cron)
        if self.timezone is not None:
            validate_timezone(self.timezone)
        if self.misfire not in ("skip", "coalesce", "catch_up"):
            raise ValueError(f"schedule {self.name!r}: unknown misfire policy {self.misfire!r}")
        if self.overlap not in ("allow", "skip"):
            raise ValueError(f"schedule {self.name!r}: unknown overlap policy {self.overlap!r}")
        if self.grace < dt.timedelta(0) or self.catch_up_window < dt.timedelta(0):
            raise ValueError(f"schedule {self.name!r}: grace and catch_up_window must not be negative")
        for queue in self.floods:
            if not _QUEUE.match(queue):
                raise ValueError(f"schedule {self.name!r}: floods {queue!r} is not a queue name like notifications_low")
        self.contract.parse(self.payload)  # fail at import, not at 02:00


def cron_fields(cron: str) -> dict[str, str]:
    """Split a 5- or 6-field cron expression into named fields.

    Raises:
      ValueError: When it has another number of fields.
    """
    parts = cron.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise ValueError(f"cron {cron!r}: expected 5 fields (or 6 with seconds first), got {len(cron.split())}")
    second, minute, hour, day, month, day_of_week = parts
    return {
        "second": second,
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": day_of_week,
    }


def validate_cron(cron: str) -> None:
    """Check *cron* is an expression the scheduler can compute fire times for.

    The fields are checked by APScheduler's cron parser, which the scheduler
    service installs; a service image without it (its worker never reads the
    schedules) only gets the field count and weekdays checked.

    Raises:
      ValueError: Naming the expression and what is wrong with it.
    """
    fields = crontab_to_trigger_fields(cron)
    try:
        from apscheduler.triggers.cron import CronTrigger
    except ImportError:
        return
    try:
        CronTrigger(**fields, timezone=dt.UTC)
    except ValueError as error:
        raise ValueError(f"cron {cron!r}: {error}") from None


#: APScheduler's weekday names, indexed by crontab weekday number (0 and 7 are Sunday).
_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_to_trigger_fields(cron: str) -> dict[str, str]:
    """The keyword arguments of APScheduler's ``CronTrigger`` for a crontab expression.

    Crontab counts weekdays from Sunday = 0 (7 too); APScheduler from Monday = 0.
    Numeric weekdays (lists, ranges, steps) are expanded into names, so ``0-6``,
    ``1-5`` and ``*/2`` mean what they mean to cron.

    Raises:
      ValueError: When a numeric weekday is out of 0..7.
    """
    fields = cron_fields(cron)
    if not any(char.isdigit() for char in fields["day_of_week"]):
        return fields
    days: list[str] = []
    for item in fields["day_of_week"].split(","):
        try:
            numbers = _weekday_numbers(item)
        except ValueError:
            raise ValueError(f"cron {cron!r}: weekday {item!r} must be numbers in 0..7 or names") from None
        days.extend(_WEEKDAY_NAMES[number] for number in numbers if _WEEKDAY_NAMES[number] not in days)
    return {**fields, "day_of_week": ",".join(days)}


def _weekday_numbers(item: str) -> range:
    """The crontab weekday numbers of one list item (``3``, ``1-5``, ``*/2``, ``1/2``).

    Raises:
      ValueError: When it is not numeric or not within 0..7.
    """
    span, _, step_text = item.partition("/")
    if span == "*":
        low, high = 0, 6
    elif "-" in span:
        low_text, _, high_text = span.partition("-")
        low, high = int(low_text), int(high_text)
    else:
        low = high = int(span)
        if step_text:
            high = 6
    step = int(step_text or 1)
    if not 0 <= low <= high <= 7 or step < 1:
        raise ValueError(item)
    return range(low, high + 1, step)


def validate_timezone(name: str) -> ZoneInfo:
    """The zone called *name*.

    Raises:
      ValueError: When no such IANA zone exists.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (expected an IANA name like Europe/Paris)") from None


def module_schedules(module_name: str) -> tuple[Schedule, ...]:
    """The schedules a module declares in its ``SCHEDULES`` tuple.

    Raises:
      TypeError: When ``SCHEDULES`` is missing or holds something else.
    """
    module = importlib.import_module(module_name)
    schedules = getattr(module, SCHEDULES_ATTRIBUTE, None)
    if not isinstance(schedules, Iterable) or not all(isinstance(item, Schedule) for item in schedules):
        raise TypeError(f"{module_name}.{SCHEDULES_ATTRIBUTE} must be a tuple of Schedule")
    return tuple(schedules)


def installed_schedules(extra_modules: Iterable[str] = ()) -> dict[str, Schedule]:
    """Every schedule of every installed service (plus *extra_modules*), by name.

    Raises:
      ValueError: When two schedules share a name.
    """
    from nightshift.common.service import installed_services

    modules = [spec.schedules_module for spec in installed_services().values() if spec.schedules_module]
    found: dict[str, Schedule] = {}
    for module_name in (*modules, *extra_modules):
        for schedule in module_schedules(module_name):
            if schedule.name in found:
                raise ValueError(f"schedule {schedule.name!r} is declared twice (again in {module_name})")
            found[schedule.name] = schedule
    return found
