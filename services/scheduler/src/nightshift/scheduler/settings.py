"""Settings of the scheduler service (prefix ``SCHEDULER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    """The leader lease, how often schedules are re-read, and when a fire counts as missed."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    #: How long the leader lease lives without renewal; a standby takes over at most
    #: about this long (plus a third of it) after the active scheduler dies.
    lease_ttl_ms: int = Field(default=5000, ge=300, le=60_000)
    #: How often the active scheduler re-reads the schedules (operators' changes).
    reload_interval_ms: int = Field(default=1000, ge=50, le=5000)
    #: A fire enqueued later than this after its time counts as missed.
    misfire_tolerance_ms: int = Field(default=1000, ge=10)
    #: Port of /livez, /readyz, /status and /metrics; None uses the service's (8110), 0 any free one.
    health_port: int | None = Field(default=None, ge=0, le=65535)
    #: Extra schedules modules, comma-separated (tests and one-off jobs).
    extra_schedules: str = ""

    @property
    def extra_schedule_modules(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.extra_schedules.split(",") if name.strip())
