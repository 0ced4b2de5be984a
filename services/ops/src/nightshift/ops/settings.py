"""Settings of the ops service (prefix ``OPS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings


class OpsSettings(ServiceSettings):
    """Where the dashboard listens, how sessions and logins behave, and where traces are shown."""

    model_config = SettingsConfigDict(env_prefix="OPS_")

    #: Interface the web process binds (the container is reached from outside).
    host: str = "0.0.0.0"  # noqa: S104
    #: Port of the dashboard, the JSON API, ``/metrics`` and the probes; None uses the service's (8120).
    port: int | None = Field(default=None, ge=0, le=65535)
    #: Link to a trace, ``{trace_id}`` replaced (Jaeger's UI by default).
    trace_url_template: str = "http://127.0.0.1:16686/trace/{trace_id}"
    #: How long a login lasts without activity.
    session_idle_s: int = Field(default=8 * 3600, ge=60)
    #: Failed logins allowed per name (and per client address) in ``login_window_s`` before refusing.
    login_max_failures: int = Field(default=5, ge=1)
    #: The window over which failed logins are counted, and how long a locked name stays locked.
    login_window_s: int = Field(default=900, ge=1)
    #: Set the ``Secure`` flag on the session cookie (behind HTTPS).
    secure_cookies: bool = False
    #: How often the live parts of the pages are pushed (server-sent events).
    stream_interval_ms: int = Field(default=2000, ge=100)
    #: Queues shown beside the installed services' ones, comma-separated (tests, one-off pools).
    extra_queues: str = ""

    def extra_queue_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.extra_queues.split(",") if name.strip())
