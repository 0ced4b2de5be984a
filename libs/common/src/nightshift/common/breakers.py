"""Circuit breakers shared by every worker through Redis.

One breaker per external dependency (a mail provider, a push provider, each
webhook endpoint). Its state lives in one Redis hash, changed by Lua scripts, so
every worker sees and moves the same breaker:

* **closed** — calls go through; ``failure_threshold`` failures in a row open it;
* **open** — calls fail fast with :class:`BreakerOpen` (a :class:`Deferred`:
  the message waits until ``open_ms`` has passed, without using a retry);
* **half_open** — once ``open_ms`` has passed, one call at a time is let through
  as a probe (its lease lasts ``probe_ms``, so a probe whose worker died does not
  block the breaker); a success closes the breaker, a failure opens it again.

Transitions are counted in the same hash; :class:`BreakerCollector` exposes
states and transitions to Prometheus, :func:`breaker_states` to the CLI and the
dashboard, and an opening calls ``on_open`` (by default :func:`alert_operators`,
which publishes ``ops.alert_raised``).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nightshift.common.errors import BreakerOpen, Deferred, NightshiftError, TransientError

logger = logging.getLogger(__name__)

#: Redis set of every breaker name ever used.
NAMES_KEY = "breakers:names"
#: Redis hash of one breaker's state.
BREAKER_KEY = "breakers:{name}"
#: The states, in the order of the ``nightshift_breaker_state`` gauge's values.
STATES = ("closed", "half_open", "open")
#: What a breaker name may hold (it is a Redis key and a metric label).
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,99}$")
#: Longest last-error text kept (error messages name types and statuses, never personal data).
_ERROR_CHARS = 300

_ALLOW = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return {1, 0} end
local now = tonumber(ARGV[1])
if state == 'open' then
  local reopen = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
  if now < reopen then return {0, reopen} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[2]), 'changed_at', now)
  redis.call('HINCRBY', KEYS[1], 't:half_open', 1)
  return {2, 0}
end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return {0, probe_until} end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[2]))
return {2, 0}
"""

_FAILURE = """
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('HSET', KEYS[1], 'last_error', ARGV[4], 'last_failure_at', now)
if state == 'open' then return 0 end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'half_open' or failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'open_until', now + tonumber(ARGV[3]),
             'changed_at', now)
  redis.call('HINCRBY', KEYS[1], 't:open', 1)
  return 1
end
return 0
"""

_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'changed_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 't:closed', 1)
  return 1
end
if redis.call('HGET', KEYS[1], 'failures') and redis.call('HGET', KEYS[1], 'failures') ~= '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
end
return 0
"""


@dataclass(frozen=True)
class BreakerState:
    """One breaker as Redis holds it.

    Parameters:
      name: The dependency (``mail:sendgrid``, ``push:fcm``, ``webhook:12``).
      state: ``closed``, ``open`` or ``half_open``.
      failures: Failures in a row since the last success.
      failure_threshold, open_ms: Its configuration, as last used.
      opened_at_ms: When it last opened (epoch milliseconds), if ever.
      open_until_ms: When an open breaker lets a probe through.
      changed_at_ms: When its state last changed.
      last_error: The last failure's description (types and statuses only).
      transitions: How many times it went to each state.
    """

    name: str
    state: str
    failures: int = 0
    failure_threshold: int = 0
    open_ms: int = 0
    opened_at_ms: int | None = None
    open_until_ms: int | None = None
    changed_at_ms: int | None = None
    last_error: str | None = None
    transitions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data (the CLI's ``--json``, the dashboard's API)."""
        return {
            "name": self.name,
            "state": self.state,
            "failures": self.failures,
            "failure_threshold": self.failure_threshold,
            "open_ms": self.open_ms,
            "opened_at_ms": self.opened_at_ms,
            "open_until_ms": self.open_until_ms,
            "changed_at_ms": self.changed_at_ms,
            "last_error": self.last_error,
            "transitions": dict(self.transitions),
        }


def is_dependency_failure(error: BaseException) -> bool:
    """The default failure test: a transient error (unreachable, timeout, 5xx, 429) counts.

    A permanent error (a 4xx for a bad request) means the dependency answered: it
    does not count against the breaker.
    """
    return isinstance(error, TransientError) or (
        not isinstance(error, NightshiftError) and isinstance(error, OSError | TimeoutError)
    )


def alert_operators(state: BreakerState) -> None:
    """Publish ``ops.alert_raised`` for a breaker that just opened (once per opening)."""
    from nightshift.common.events import publish

    publish(
        "ops.alert_raised",
        {
            "alert_key": f"breaker_open:{state.name}:{state.opened_at_ms}",
            "source": "breakers",
            "kind": "breaker_open",
            "severity": "warning",
            "summary": f"Circuit breaker {state.name} opened after {state.failures} failures in a row",
            "facts": {
                "breaker": state.name,
                "failures": state.failures,
                "open_s": state.open_ms / 1000,
                "last_error": (state.last_error or "")[:200],
            },
        },
    )


class CircuitBreaker:
    """The breaker of one dependency, shared through Redis by every worker.

    Parameters:
      client: The application Redis.
      name: The dependency (lowercase letters, digits, ``_.:-``).
      failure_threshold: Failures in a row that open it.
      open_ms: How long it stays open before a probe is let through.
      probe_ms: How long one probe holds the half-open breaker.
      is_failure: Which errors count against it (transient ones by default).
      on_open: Called with the state when *this* call opened it; errors it raises are logged.

    Raises:
      ValueError: The name or a setting is malformed.
    """

    def __init__(
        self,
        client: redis.Redis[bytes],
        name: str,
        *,
        failure_threshold: int = 5,
        open_ms: int = 30_000,
        probe_ms: int = 15_000,
        is_failure: Callable[[BaseException], bool] = is_dependency_failure,
        on_open: Callable[[BreakerState], None] | None = alert_operators,
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"breaker name {name!r} must match {_NAME.pattern}")
        if failure_threshold < 1 or open_ms < 1 or probe_ms < 1:
            raise ValueError("failure_threshold, open_ms and probe_ms must be positive")
        self.client = client
        self.name = name
        self.key = BREAKER_KEY.format(name=name)
        self.failure_threshold = failure_threshold
        self.open_ms = open_ms
        self.probe_ms = probe_ms
        self.is_failure = is_failure
        self.on_open = on_open
        self._allow = client.register_script(_ALLOW)
        self._failure = client.register_script(_FAILURE)
        self._success = client.register_script(_SUCCESS)
        self._registered = False

    def allow(self) -> None:
        """Let a call through, or refuse it while the breaker is open or being probed.

        Raises:
          BreakerOpen: With the delay until the breaker may let a call through again
            (plus up to a second of jitter, so waiting messages do not return together).
        """
        self._register()
        verdict, retry_at = self._allow(keys=[self.key], args=[_now_ms(), self.probe_ms])
        if int(verdict) == 0:
            delay = max(int(retry_at) - _now_ms(), 0) + random.randint(50, 1000)
            raise BreakerOpen(f"circuit breaker {self.name} is open", delay_ms=delay)

    def record_success(self) -> None:
        """A call succeeded (or the dependency answered): a probe's success closes the breaker."""
        self._success(keys=[self.key], args=[_now_ms()])

    def record_failure(self, error: BaseException | str) -> bool:
        """A call failed; return True if this failure opened the breaker (``on_open`` was called)."""
        description = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        opened = bool(
            int(
                self._failure(
                    keys=[self.key],
                    args=[_now_ms(), self.failure_threshold, self.open_ms, description[:_ERROR_CHARS]],
                )
            )
        )
        if opened:
            logger.warning("Circuit breaker %s opened (%s).", self.name, description[:_ERROR_CHARS])
            if self.on_open is not None:
                try:
                    self.on_open(self.state())
                except Exception:
                    logger.exception("Could not raise the alert for circuit breaker %s.", self.name)
        return opened

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block as one call through the breaker.

        Raises:
          BreakerOpen: Before the block runs, while the breaker is open.
        """
        self.allow()
        try:
            yield
        except Deferred:
            raise  # not a call: a rate limit said "not now"
        except BaseException as error:
            if self.is_failure(error):
                self.record_failure(error)
            else:
                self.record_success()
            raise
        self.record_success()

    def state(self) -> BreakerState:
        """This breaker's current state."""
        return read_state(self.client, self.name)

    def reset(self) -> None:
        """Close the breaker and forget its failures (an operator's decision)."""
        self.client.hset(self.key, mapping={"state": "closed", "failures": 0, "changed_at": _now_ms()})

    def _register(self) -> None:
        if not self._registered:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.sadd(NAMES_KEY, self.name)
                pipe.hset(self.key, mapping={"failure_threshold": self.failure_threshold, "open_ms": self.open_ms})
                pipe.execute()
            self._registered = True


def read_state(client: redis.Redis[bytes], name: str) -> BreakerState:
    """The state of breaker *name* (closed with no history if it was never used)."""
    raw = {key.decode(): value.decode() for key, value in client.hgetall(BREAKER_KEY.format(name=name)).items()}
    return _state_from(name, raw)


def breaker_states(client: redis.Redis[bytes]) -> list[BreakerState]:
    """Every breaker ever used, by name: what ``nightshift breakers list`` and the dashboard show.

    Parameters:
      client: The application Redis (``runtime.app_redis()``).
    """
    names = sorted(name.decode() for name in client.smembers(NAMES_KEY))
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(BREAKER_KEY.format(name=name))
        hashes = pipe.execute()
    return [
        _state_from(name, {key.decode(): value.decode() for key, value in raw.items()})
        for name, raw in zip(names, hashes, strict=True)
    ]


def reset_breaker(client: redis.Redis[bytes], name: str) -> BreakerState:
    """Close breaker *name* at once (an operator's decision).

    Raises:
      KeyError: No breaker has that name.
    """
    if not client.sismember(NAMES_KEY, name):
        raise KeyError(f"no circuit breaker called {name!r}")
    client.hset(BREAKER_KEY.format(name=name), mapping={"state": "closed", "failures": 0, "changed_at": _now_ms()})
    return read_state(client, name)


class BreakerCollector(Collector):
    """Prometheus collector of every breaker's state and transitions, read from Redis at scrape time.

    ``nightshift_breaker_state{breaker}``: 0 closed, 1 half-open, 2 open;
    ``nightshift_breaker_transitions_total{breaker,to}``: transitions into each state.
    Every worker exposes the same shared figures (aggregate them with ``max``).
    """

    def __init__(self, client: redis.Redis[bytes]) -> None:
        self.client = client

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "nightshift_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", labels=["breaker"]
        )
        transitions = CounterMetricFamily(
            "nightshift_breaker_transitions", "Circuit breaker transitions into each state.", labels=["breaker", "to"]
        )
        try:
            states = breaker_states(self.client)
        except redis.RedisError:
            logger.warning("Circuit breaker states unavailable (Redis unreachable).")
            states = []
        for breaker in states:
            state.add_metric([breaker.name], STATES.index(breaker.state) if breaker.state in STATES else 0)
            for to in STATES:
                transitions.add_metric([breaker.name, to], breaker.transitions.get(to, 0))
        yield state
        yield transitions

    def describe(self) -> Iterable[Metric]:
        return []


def _state_from(name: str, raw: dict[str, str]) -> BreakerState:
    def number(key: str) -> int | None:
        return int(float(raw[key])) if raw.get(key) else None

    return BreakerState(
        name=name,
        state=raw.get("state", "closed"),
        failures=number("failures") or 0,
        failure_threshold=number("failure_threshold") or 0,
        open_ms=number("open_ms") or 0,
        opened_at_ms=number("opened_at"),
        open_until_ms=number("open_until"),
        changed_at_ms=number("changed_at"),
        last_error=raw.get("last_error"),
        transitions={to: int(raw.get(f"t:{to}", "0")) for to in STATES},
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
