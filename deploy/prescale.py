"""Schedule-driven pre-scaling: raise a pool before a schedule floods its queues.

A schedule that declares ``floods=("notifications_low",)`` (the Monday 09:00 digest)
is known in advance to fill those queues; waiting for the backlog to show up costs a
polling interval, the HPA's reaction and a pod start-up while the burst ages. Each such
schedule becomes a KEDA ``cron`` trigger on the flooded pools that holds a floor of
replicas from a few minutes before every fire until a while after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deploy.pools import PRESCALE_HOLD_MINUTES, PRESCALE_LEAD_MINUTES, Deployed
from nightshift.common.schedules import Schedule, cron_fields


def shift_cron(cron: str, minutes: int) -> str:
    """*cron* moved by *minutes* (negative: earlier), as a five-field expression.

    Only what the shift can keep exact is accepted: a fixed minute, and a fixed hour
    (or ``*``) when the shift changes the hour; the day fields are kept, so a shift
    may not cross midnight.

    Raises:
      ValueError: Naming the expression when its seconds are not 0, or when the shift
        cannot be expressed by changing only the minute and hour fields.
    """
    fields = cron_fields(cron)
    if fields["second"] != "0":
        raise ValueError(f"cron {cron!r}: cannot pre-scale a schedule that fires at a second other than 0")
    if not fields["minute"].isdigit():
        raise ValueError(f"cron {cron!r}: cannot pre-scale a schedule whose minute is not one fixed number")
    total = int(fields["minute"]) + minutes
    hours, minute = divmod(total, 60)
    hour = fields["hour"]
    if hours and hour != "*":
        if not hour.isdigit():
            raise ValueError(f"cron {cron!r}: cannot shift a list or range of hours by {minutes} minutes")
        shifted = int(hour) + hours
        if not 0 <= shifted <= 23:
            raise ValueError(f"cron {cron!r}: shifting by {minutes} minutes crosses midnight")
        hour = str(shifted)
    return " ".join((str(minute), hour, fields["day"], fields["month"], fields["day_of_week"]))


def flooding_schedules(schedules: Iterable[Schedule], service: Deployed) -> list[Schedule]:
    """The schedules whose fires flood one of *service*'s queues, by name."""
    queues = set(service.queues)
    return sorted((s for s in schedules if queues.intersection(s.floods)), key=lambda s: s.name)


def cron_triggers(schedules: Iterable[Schedule], service: Deployed, *, timezone: str) -> list[dict[str, Any]]:
    """KEDA ``cron`` triggers that raise *service*'s pool around each flooding fire.

    Parameters:
      schedules: Every installed schedule.
      service: The pool's service; it must have a pool.
      timezone: The platform's ``TIMEZONE``, for schedules that name none.

    Raises:
      ValueError: When a flooding schedule's cron cannot be shifted (see :func:`shift_cron`),
        or *service* has no pool.
    """
    if service.pool is None:
        raise ValueError(f"service {service.name!r} has no worker pool to pre-scale")
    triggers = []
    for schedule in flooding_schedules(schedules, service):
        triggers.append(
            {
                "type": "cron",
                "name": f"prescale-{schedule.name.replace('_', '-').replace('.', '-')}",
                "metadata": {
                    "timezone": schedule.timezone or timezone,
                    "start": shift_cron(schedule.cron, -PRESCALE_LEAD_MINUTES),
                    "end": shift_cron(schedule.cron, PRESCALE_HOLD_MINUTES),
                    "desiredReplicas": str(service.pool.prescale_replicas),
                },
            }
        )
    return triggers
