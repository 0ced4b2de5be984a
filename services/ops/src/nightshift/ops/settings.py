"""Settings of the ops service (prefix ``OPS_``)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator
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

    # --- alerts (docs/alerts.md) --------------------------------------------------------------
    #: The dashboard's address as operators reach it: alerts link to ``<public_url>/alerts/<id>``.
    public_url: str = "http://127.0.0.1:8120"
    #: Seconds between two evaluations of the rules (one active evaluator, the others standing by).
    alert_interval_s: float = Field(default=30.0, ge=0.1)
    #: Lifetime of the evaluator's lease without renewal (renewed every third of it).
    alert_lease_ttl_ms: int = Field(default=15_000, ge=1000)
    #: Where alerts are POSTed as signed JSON; none: email only.
    alert_webhook_url: str | None = None
    #: HMAC-SHA256 key of the webhook's ``X-Nightshift-Signature`` (required with the URL).
    alert_webhook_secret: str | None = Field(default=None, validate_default=True)
    #: ``backlog``: a queue's backlog (ready + in flight + due soon) above this fires.
    alert_backlog_max: int = Field(default=1000, ge=1)
    #: Per-queue overrides of ``alert_backlog_max`` (JSON object, ``{"media_high": 5000}``).
    alert_backlog_max_per_queue: dict[str, int] = Field(default_factory=dict)
    #: ``oldest_message``: the oldest ready message older than this many seconds fires.
    alert_oldest_age_max_s: float = Field(default=300.0, gt=0)
    #: Per-queue overrides of ``alert_oldest_age_max_s``.
    alert_oldest_age_max_s_per_queue: dict[str, float] = Field(default_factory=dict)
    #: ``no_consumer``: a queue with at least this backlog and no live worker consuming it fires.
    alert_no_consumer_min_backlog: int = Field(default=1, ge=1)
    #: ``worker_lost``: a worker whose heartbeat stopped this many seconds ago (and was not cleanly stopped).
    alert_worker_lost_after_s: float = Field(default=30.0, gt=0)
    #: ``stuck_job``: a job running longer than this factor times its actor's p95 (last 24 h) fires…
    alert_stuck_factor: float = Field(default=5.0, gt=1)
    #: …and never below this many seconds…
    alert_stuck_min_s: float = Field(default=60.0, gt=0)
    #: …and only for actors with at least this many finished attempts in the last 24 h.
    alert_stuck_min_samples: int = Field(default=20, ge=1)
    #: Per-actor overrides of ``alert_stuck_factor``.
    alert_stuck_factor_per_actor: dict[str, float] = Field(default_factory=dict)
    #: ``failure_rate``: the window the recent failure rate is measured over, in seconds.
    alert_failure_window_s: int = Field(default=900, ge=60)
    #: …fires when it is at least this factor times the actor's rate over the previous 24 h…
    alert_failure_factor: float = Field(default=3.0, gt=1)
    #: …and at least this much above it (absolute: 0.1 = ten points), with…
    alert_failure_min_increase: float = Field(default=0.1, gt=0, le=1)
    #: …at least this many attempts in the window.
    alert_failure_min_attempts: int = Field(default=20, ge=1)
    #: ``perf_drift``: the actor's p95 over the last hour above this factor times its p95 over the same
    #: hour of the previous seven days…
    alert_drift_factor: float = Field(default=2.0, gt=1)
    #: …with at least this many attempts in both.
    alert_drift_min_samples: int = Field(default=50, ge=1)
    #: Per-actor overrides of ``alert_drift_factor``.
    alert_drift_factor_per_actor: dict[str, float] = Field(default_factory=dict)
    #: ``dead_letters``: at least this many jobs of a queue died in the window below fires.
    alert_dead_letters_max: int = Field(default=10, ge=1)
    #: The window of ``alert_dead_letters_max``, in seconds.
    alert_dead_letters_window_s: int = Field(default=900, ge=60)
    #: ``schedule_missed``: an active schedule whose due fire was not enqueued this many seconds after.
    alert_schedule_grace_s: float = Field(default=120.0, gt=0)
    #: An alert raised by another service (``ops.alert_raised``) resolves after this long unless raised again.
    alert_raised_resolve_after_s: int = Field(default=86_400, ge=60)

    # --- maintenance (docs/alerts.md) --------------------------------------------------------
    #: The application's cache (a Redis database of its own); none: the application's Redis
    #: (``REDIS_URL``, or through Sentinel when ``REDIS_SENTINELS`` is set).
    cache_redis_url: str | None = None
    #: Keys sampled with ``SCAN`` per run of ``collect_cache_stats``.
    cache_sample_keys: int = Field(default=2000, ge=10)
    #: Rows deleted per statement by ``purge_expired_data`` (each batch its own short transaction).
    purge_batch_size: int = Field(default=5000, ge=1)
    #: Audit rows read per batch by ``roll_up_actor_stats`` (each batch its own short transaction).
    rollup_batch_size: int = Field(default=50_000, ge=1)
    #: Retention, in days, of each kind of data ``purge_expired_data`` deletes.
    retention_job_records_days: int = Field(default=30, ge=1)
    retention_task_audit_days: int = Field(default=30, ge=1)
    retention_outbox_days: int = Field(default=7, ge=1)
    retention_processed_keys_days: int = Field(default=30, ge=1)
    retention_delivery_logs_days: int = Field(default=90, ge=1)
    retention_dead_letters_days: int = Field(default=14, ge=1)
    retention_alerts_days: int = Field(default=180, ge=1)
    retention_idempotent_requests_days: int = Field(default=2, ge=1)
    retention_maintenance_runs_days: int = Field(default=90, ge=1)
    #: A read replica to measure replication lag on; none: not measured.
    replica_database_url: str | None = None
    #: A transaction open longer than this many seconds is reported (and alerted).
    long_transaction_s: int = Field(default=300, ge=1)
    #: SMTP server probed with ``NOOP`` by ``check_dependencies`` (``host:port``); none: not probed.
    mail_probe_smtp: str | None = None
    #: SendGrid key probed with an authenticated read of its scopes; none: not probed.
    mail_probe_sendgrid_api_key: str | None = None

    def extra_queue_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.extra_queues.split(",") if name.strip())

    @field_validator("alert_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("alert_webhook_url") and not value:
            raise ValueError("required when OPS_ALERT_WEBHOOK_URL is set")
        return value
