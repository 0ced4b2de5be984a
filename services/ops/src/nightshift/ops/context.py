"""What the web process shares between requests: settings, database, broker, Redis, the known queues."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.service import installed_services
from nightshift.common.settings import CommonSettings
from nightshift.ops.settings import OpsSettings
from nightshift.ops.throttle import LoginThrottle


def service_queues(extra: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every installed service's queues, by service (the worker pools), and *extra* queues as pools of their own."""
    pools = {name: spec.queues for name, spec in installed_services().items() if spec.queues}
    return pools | {queue: (queue,) for queue in extra}


@dataclass(frozen=True)
class OpsContext:
    """The process's shared objects.

    Parameters:
      settings: The common settings.
      options: The ops settings.
      sessions: Sessions on the platform's database.
      broker: The broker (full middleware stack: what ops enqueues is recorded like any publish).
      app_redis: The application Redis (login throttling).
      pools: The queues of each service (worker pool), from the installed specs.
    """

    settings: CommonSettings
    options: OpsSettings
    sessions: sessionmaker[Session]
    broker: NightshiftRedisBroker
    app_redis: redis.Redis[bytes]
    pools: dict[str, tuple[str, ...]] = field(default_factory=service_queues)

    @property
    def engine(self) -> Engine:
        """The engine behind :attr:`sessions` (for the library's job status, which reads with it)."""
        bind = self.sessions.kw["bind"]
        if not isinstance(bind, Engine):
            raise TypeError("the ops sessionmaker is not bound to an engine")
        return bind

    @classmethod
    def build(
        cls,
        settings: CommonSettings,
        options: OpsSettings,
        sessions: sessionmaker[Session],
        broker: NightshiftRedisBroker,
        app_redis: redis.Redis[bytes],
    ) -> OpsContext:
        """A context whose pools are the installed services' plus ``OPS_EXTRA_QUEUES``."""
        pools = service_queues(options.extra_queue_names())
        return cls(settings, options, sessions, broker, app_redis, pools)

    @property
    def queues(self) -> list[str]:
        """Every known queue, in service order."""
        return [queue for queues in self.pools.values() for queue in queues]

    @property
    def throttle(self) -> LoginThrottle:
        return LoginThrottle(
            self.app_redis, max_failures=self.options.login_max_failures, window_s=self.options.login_window_s
        )
