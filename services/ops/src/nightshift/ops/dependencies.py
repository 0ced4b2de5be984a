"""``check_dependencies``: PostgreSQL, Redis, storage and the mail provider, probed for real.

Each check returns a :class:`Check` (ok or not, a one-line detail, the figures). A
failed check is a ``dependency`` condition for the alert lifecycle, keyed by the
check's name, so it fires once and resolves when a later run finds it healthy.

- ``postgresql``: connects, counts transactions open longer than
  ``OPS_LONG_TRANSACTION_S``, estimates bloat from the dead tuples of the largest
  tables, and measures replication lag on ``OPS_REPLICA_DATABASE_URL`` when set.
- ``redis_broker`` / ``redis_app``: memory against ``maxmemory`` (over 90 % fails) and
  the eviction policy: a broker Redis that may evict (any policy but ``noeviction``)
  loses messages, so it fails critical.
- ``storage``: writes, reads back and deletes a probe object.
- ``mail``: the outbox folder is writable; an SMTP server answers ``NOOP``
  (``OPS_MAIL_PROBE_SMTP``); SendGrid answers an authenticated read of the key's scopes
  (``OPS_MAIL_PROBE_SENDGRID_API_KEY``).
"""

from __future__ import annotations

import smtplib
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.settings import CommonSettings
from nightshift.common.storage import Storage
from nightshift.ops.alert_rules import Condition
from nightshift.ops.settings import OpsSettings

#: Share of ``maxmemory`` above which a Redis check fails.
MEMORY_LIMIT_SHARE = 0.9
#: Dead tuples over live ones above which a table is reported as bloated.
BLOAT_RATIO = 0.5


@dataclass(frozen=True)
class Check:
    """One dependency's health."""

    name: str
    ok: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "figures": self.figures}

    def condition(self) -> Condition | None:
        """The alert condition of a failed check, None for a healthy one."""
        if self.ok:
            return None
        facts = {name: value for name, value in self.figures.items() if isinstance(value, int | float | str)}
        return Condition(f"dependency:{self.name}", "dependency", self.severity, f"{self.name}: {self.detail}", facts)


def check_postgresql(sessions: sessionmaker[Session], options: OpsSettings) -> Check:
    """Connectivity, long-running transactions, bloat estimate, replication lag."""
    try:
        with sessions() as session:
            long_running = session.execute(
                text(
                    "SELECT count(*), COALESCE(max(extract(epoch FROM now() - xact_start)), 0) FROM pg_stat_activity "
                    "WHERE xact_start IS NOT NULL AND now() - xact_start > make_interval(secs => :limit)"
                ),
                {"limit": options.long_transaction_s},
            ).one()
            bloated = session.execute(
                text(
                    "SELECT relname, n_dead_tup, n_live_tup FROM pg_stat_user_tables "
                    "WHERE n_dead_tup > 1000 AND n_dead_tup > :ratio * greatest(n_live_tup, 1) "
                    "ORDER BY n_dead_tup DESC LIMIT 5"
                ),
                {"ratio": BLOAT_RATIO},
            ).all()
    except Exception as error:
        return Check("postgresql", False, f"unreachable: {type(error).__name__}: {error}", severity="critical")
    figures: dict[str, Any] = {
        "long_transactions": int(long_running[0]),
        "longest_transaction_s": round(float(long_running[1])),
        "bloated_tables": ",".join(row[0] for row in bloated),
    }
    problems = []
    if long_running[0]:
        problems.append(f"{long_running[0]} transactions open longer than {options.long_transaction_s} s")
    if options.replica_database_url:
        lag = replication_lag_s(options.replica_database_url)
        figures["replication_lag_s"] = lag if lag is not None else "unknown"
        if lag is None:
            problems.append("the replica is unreachable")
    if bloated:
        figures["bloat"] = [{"table": r[0], "dead": r[1], "live": r[2]} for r in bloated]
    return Check("postgresql", not problems, "; ".join(problems) or "ok", figures)


def replication_lag_s(url: str) -> float | None:
    """Seconds since the replica replayed its last transaction; None when it cannot be read."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            lag = connection.scalar(
                text("SELECT COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)")
            )
            return round(float(lag or 0), 1)
    except Exception:
        return None
    finally:
        engine.dispose()


def check_redis(name: str, client: redis.Redis[bytes], *, broker: bool) -> Check:
    """Memory against ``maxmemory`` and the eviction policy (a broker must not evict)."""
    try:
        memory: Any = client.info("memory")
    except redis.RedisError as error:
        return Check(name, False, f"unreachable: {error}", severity="critical")
    used = int(memory.get("used_memory", 0))
    limit = int(memory.get("maxmemory", 0))
    policy = str(memory.get("maxmemory_policy", "noeviction"))
    figures: dict[str, Any] = {"used_memory": used, "maxmemory": limit, "maxmemory_policy": policy}
    if broker and policy != "noeviction":
        return Check(
            name,
            False,
            f"eviction policy {policy}: the broker may evict messages (use noeviction)",
            figures,
            severity="critical",
        )
    if limit and used > MEMORY_LIMIT_SHARE * limit:
        return Check(name, False, f"memory {used / limit:.0%} of maxmemory", figures)
    return Check(name, True, "ok", figures)


def check_storage(storage: Storage) -> Check:
    """Write, read back and delete a probe object."""
    key = f"ops/probes/{uuid.uuid4().hex}"
    payload = uuid.uuid4().bytes
    try:
        storage.put(key, payload, content_type="application/octet-stream")
        read = storage.get(key)
        storage.delete(key)
    except Exception as error:
        return Check("storage", False, f"probe failed: {type(error).__name__}: {error}", severity="critical")
    if read != payload:
        return Check("storage", False, "probe read back different bytes", severity="critical")
    return Check("storage", True, "ok", {"probe": key})


def check_mail(settings: CommonSettings, options: OpsSettings) -> Check:
    """The mail provider accepts work: outbox writable, SMTP ``NOOP``, or SendGrid's scopes read."""
    try:
        if settings.mail_backend == "outbox":
            folder = Path(settings.outbox_dir)
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"probe")
            probe.unlink()
            return Check("mail", True, "ok", {"backend": "outbox"})
        if settings.mail_backend == "smtp" and options.mail_probe_smtp:
            host, _, port = options.mail_probe_smtp.rpartition(":")
            with smtplib.SMTP(host, int(port), timeout=10) as smtp:
                code, _ = smtp.noop()
            return Check("mail", code == 250, "ok" if code == 250 else f"NOOP answered {code}", {"backend": "smtp"})
        if settings.mail_backend == "sendgrid" and options.mail_probe_sendgrid_api_key:
            request = urllib.request.Request(
                "https://api.sendgrid.com/v3/scopes",
                headers={"Authorization": f"Bearer {options.mail_probe_sendgrid_api_key}"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a fixed https URL
                status = response.status
            return Check(
                "mail", status == 200, "ok" if status == 200 else f"answered {status}", {"backend": "sendgrid"}
            )
    except (OSError, smtplib.SMTPException, urllib.error.URLError, ValueError) as error:
        return Check("mail", False, f"probe failed: {type(error).__name__}: {error}")
    return Check("mail", True, "not probed (no probe configured for this backend)", {"backend": settings.mail_backend})


def check_all(
    sessions: sessionmaker[Session],
    broker_client: redis.Redis[bytes],
    app_client: redis.Redis[bytes],
    storage: Storage,
    settings: CommonSettings,
    options: OpsSettings,
) -> list[Check]:
    """Every check, in a fixed order."""
    return [
        check_postgresql(sessions, options),
        check_redis("redis_broker", broker_client, broker=True),
        check_redis("redis_app", app_client, broker=False),
        check_storage(storage),
        check_mail(settings, options),
    ]
