"""How each service runs on Kubernetes: what its ``ServiceSpec`` does not say.

The facts a service states itself (health port, lanes, threads) are repeated here
because the manifests are generated on machines where not every service is
installed; ``tests/deploy/test_consistency.py`` checks them against the installed
``ServiceSpec`` and settings classes, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: Namespace of the rendered objects; KEDA reaches the ops service by its cluster DNS name in it.
NAMESPACE = "nightshift"

#: Where the ops service answers KEDA's metrics-api scaler: ``{"backlog": N, "oldest_age_seconds": S}``.
BACKLOG_URL = "http://ops.{namespace}.svc.cluster.local:8120/api/metrics/backlog/{pool}"

#: Minutes before a burst-producing schedule fires that its pools are raised.
PRESCALE_LEAD_MINUTES = 5
#: Minutes after the fire the raised floor holds (the backlog trigger takes over after).
PRESCALE_HOLD_MINUTES = 30

Component = Literal["worker", "scheduler", "web"]


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container (Kubernetes quantities)."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


@dataclass(frozen=True)
class Pool:
    """A worker pool's autoscaling: one KEDA ScaledObject (or HPA).

    Parameters:
      min_replicas: Never fewer (1: the first message of a quiet hour waits for no pod start).
      max_replicas: Never more (what Redis, PostgreSQL and providers can take).
      backlog_per_replica: Target backlog per replica (the HPA's AverageValue).
      oldest_age_s: Target age of the oldest message, seconds (the second trigger).
      prescale_replicas: Floor held around each fire of a schedule that floods this pool.
    """

    min_replicas: int
    max_replicas: int
    backlog_per_replica: int
    oldest_age_s: int
    prescale_replicas: int


@dataclass(frozen=True)
class Deployed:
    """One service's deployment.

    Parameters:
      name: The service (``nightshift run <name>``).
      component: ``worker``, ``scheduler`` or ``web``.
      health_port: Where ``/livez``, ``/readyz`` and ``/metrics`` are served.
      lanes: The lanes its worker consumes (queues ``<name>_<lane>``).
      replicas: Replicas of the base (a pool's autoscaler takes over).
      resources: Requests and limits fitting its worker profile.
      env: Plain values of the service's own settings (prefixed variables).
      secret_env: Variables read from its Secret ``nightshift-<name>``, by key (besides
        ``SHARED_SECRET_ENV``, which every process reads from ``SHARED_SECRET``).
      egress_ports: TCP ports it reaches beyond DNS, Redis, PostgreSQL and the OTLP collector.
      ingress_from: Namespaces allowed to reach its port beside the monitoring one.
      pool: Its autoscaling, for a worker pool.
      tmp_size: Size limit of its writable ``/tmp``.
      worker_beside: A web service whose actors run in a second container of the same pod
        (``nightshift worker <name>``, health on ``health_port + 1``), as its spec's
        ``separate_worker`` says; its pool then scales those pods.
    """

    name: str
    component: Component
    health_port: int
    lanes: tuple[str, ...]
    replicas: int
    resources: Resources
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, str] = field(default_factory=dict)
    egress_ports: tuple[int, ...] = ()
    ingress_from: tuple[str, ...] = ()
    pool: Pool | None = None
    tmp_size: str = "64Mi"
    worker_beside: bool = False

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(f"{self.name}_{lane}" for lane in self.lanes)


#: Object storage (S3 over HTTPS); credentials come from the pod's workload identity or these keys.
STORAGE_SECRETS = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}
#: Every process reads these two from its own Secret (its own database role and Redis ACL user).
CONNECTION_SECRETS = {"REDIS_URL": "REDIS_URL", "DATABASE_URL": "DATABASE_URL"}

#: The Secret every process reads the platform's key rings from: one place to rotate them, since
#: every service must sign, check and open messages with the same keys (docs/security.md).
SHARED_SECRET = "nightshift-shared"  # noqa: S105 - the Secret's name, not a value
#: Required in production by every process (``CommonSettings``): variable -> key in ``SHARED_SECRET``.
SHARED_SECRET_ENV = {"MESSAGE_SIGNING_KEYS": "MESSAGE_SIGNING_KEYS", "SEALING_KEYS": "SEALING_KEYS"}

#: The default profile: one process of 8 threads, mostly waiting on PostgreSQL.
DEFAULT_RESOURCES = Resources(cpu_request="100m", memory_request="192Mi", cpu_limit="1", memory_limit="512Mi")

SERVICES: tuple[Deployed, ...] = (
    Deployed(
        name="users",
        component="worker",
        health_port=8101,
        lanes=("high", "normal", "low"),
        replicas=1,
        resources=DEFAULT_RESOURCES,
        # GDPR_PROOF_KEY signs the GDPR proofs and the subject digests (the finishing steps, ``nightshift gdpr``).
        secret_env={**CONNECTION_SECRETS, **STORAGE_SECRETS, "GDPR_PROOF_KEY": "GDPR_PROOF_KEY"},
        egress_ports=(443,),
        pool=Pool(min_replicas=1, max_replicas=6, backlog_per_replica=400, oldest_age_s=60, prescale_replicas=2),
    ),
    Deployed(
        name="posts",
        component="worker",
        health_port=8104,
        lanes=("high", "normal", "low"),
        replicas=1,
        resources=DEFAULT_RESOURCES,
        secret_env={**CONNECTION_SECRETS, **STORAGE_SECRETS},
        egress_ports=(443,),
        pool=Pool(min_replicas=1, max_replicas=6, backlog_per_replica=400, oldest_age_s=60, prescale_replicas=2),
    ),
    # CPU-bound: as many single-threaded processes as CPUs it may use; os.cpu_count() would see the node's.
    Deployed(
        name="media",
        component="worker",
        health_port=8103,
        lanes=("high", "low"),
        replicas=1,
        resources=Resources(cpu_request="2", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi"),
        env={"MEDIA_PROCESSES": "2", "MEDIA_PREFETCH": "1"},
        secret_env={**CONNECTION_SECRETS, **STORAGE_SECRETS},
        egress_ports=(443,),
        pool=Pool(min_replicas=1, max_replicas=12, backlog_per_replica=8, oldest_age_s=30, prescale_replicas=4),
        tmp_size="512Mi",
    ),
    # I/O-bound: 16 threads waiting on the mail provider; little CPU, modest memory.
    Deployed(
        name="notifications",
        component="worker",
        health_port=8102,
        lanes=("critical", "high", "normal", "low"),
        replicas=1,
        resources=Resources(cpu_request="100m", memory_request="160Mi", cpu_limit="500m", memory_limit="384Mi"),
        secret_env={
            **CONNECTION_SECRETS,
            "NOTIFICATIONS_SENDGRID_API_KEY": "NOTIFICATIONS_SENDGRID_API_KEY",
            # Signs the one-click unsubscribe links (required in production).
            "NOTIFICATIONS_UNSUBSCRIBE_SECRET": "NOTIFICATIONS_UNSUBSCRIBE_SECRET",
        },
        egress_ports=(443, 587),
        pool=Pool(min_replicas=1, max_replicas=20, backlog_per_replica=1000, oldest_age_s=120, prescale_replicas=10),
    ),
    # One active on the Redis lease, one standing by.
    Deployed(
        name="scheduler",
        component="scheduler",
        health_port=8110,
        lanes=(),
        replicas=2,
        resources=Resources(cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi"),
        secret_env=CONNECTION_SECRETS,
    ),
    # The dashboard and the alert evaluator (one active on its lease), with the ops worker (alert
    # delivery, maintenance) in a second container of each pod; 443 for the alert webhook.
    Deployed(
        name="ops",
        component="web",
        health_port=8120,
        lanes=("normal", "low"),
        replicas=2,
        resources=Resources(cpu_request="200m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi"),
        env={"OPS_SECURE_COOKIES": "true"},
        secret_env=CONNECTION_SECRETS,
        egress_ports=(443,),
        ingress_from=("keda", "ingress-nginx"),
        pool=Pool(min_replicas=2, max_replicas=4, backlog_per_replica=200, oldest_age_s=120, prescale_replicas=2),
        worker_beside=True,
    ),
)


def deployed(name: str) -> Deployed:
    """The deployment of service *name*.

    Raises:
      KeyError: Naming the deployed services.
    """
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(f"no deployment for service {name!r} (deployed: {', '.join(s.name for s in SERVICES)})")
