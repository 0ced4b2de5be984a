"""PostgreSQL roles for least privilege, as the migrations create them.

Every service has a group role ``nightshift_<service>`` (``NOLOGIN``): a
deployment creates the service's login user and grants it the group role, so
no password lives in a migration. ``nightshift_worker`` holds what every
worker process writes (job records, audit, outbox, idempotency keys, the GDPR
workflow) and is granted to each service's role; ``nightshift_migrations`` owns
the schema. The table → service matrix is in ``docs/security.md``.

These functions return SQL statements for ``op.execute`` in a migration; roles are
cluster-wide, so creating one is idempotent and a downgrade only revokes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: What every worker process writes, whatever its service (granted to each service's role).
WORKER_ROLE = "nightshift_worker"
#: Owns the schema: the migrations job runs as a member of it.
MIGRATIONS_ROLE = "nightshift_migrations"

#: Reading only.
READ = ("SELECT",)
#: Reading and adding rows.
APPEND = ("SELECT", "INSERT")
#: Reading, adding and changing rows.
WRITE = ("SELECT", "INSERT", "UPDATE")
#: Everything a service does to its own rows.
OWN = ("SELECT", "INSERT", "UPDATE", "DELETE")


def service_role(service: str) -> str:
    """The group role of *service* (``nightshift_media``)."""
    return f"nightshift_{service}"


def create_role(role: str, *, member_of: Iterable[str] = ()) -> list[str]:
    """SQL creating the ``NOLOGIN`` role *role* when missing, a member of *member_of*."""
    statements = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
    ]
    statements += [f"GRANT {group} TO {role}" for group in member_of]
    return statements


def grant(role: str, privileges: Mapping[str, tuple[str, ...]]) -> list[str]:
    """SQL granting *role* the privileges on each table, and the use of their sequences where it inserts.

    Parameters:
      role: The role receiving them.
      privileges: Table name → privileges (``READ``, ``APPEND``, ``WRITE``, ``OWN``).
    """
    statements = [f"GRANT {', '.join(kinds)} ON TABLE {table} TO {role}" for table, kinds in privileges.items()]
    inserted = [table for table, kinds in privileges.items() if "INSERT" in kinds]
    if inserted:
        tables = ", ".join(f"'public.{table}'::regclass" for table in inserted)
        statements.append(_for_sequences(tables, f"GRANT USAGE, SELECT ON SEQUENCE {{}} TO {role}"))
    return statements


def revoke(role: str, tables: Iterable[str]) -> list[str]:
    """SQL taking back everything *role* was granted on *tables* and their sequences (for downgrades)."""
    names = list(tables)
    statements = [f"REVOKE ALL ON TABLE {', '.join(names)} FROM {role}"]
    quoted = ", ".join(f"'public.{table}'::regclass" for table in names)
    statements.append(_for_sequences(quoted, f"REVOKE ALL ON SEQUENCE {{}} FROM {role}"))
    return statements


def _for_sequences(tables: str, statement: str) -> str:
    """A block running *statement* (``{}`` standing for the sequence) for each sequence owned by *tables*."""
    # No "%" here: Alembic's text() would read it as a parameter.
    before, after = statement.split("{}")
    return (
        "DO $$ DECLARE sequence regclass; BEGIN "  # noqa: S608 - names from the migrations' constants
        "FOR sequence IN SELECT d.objid::regclass FROM pg_depend d JOIN pg_class c ON c.oid = d.objid "
        f"WHERE c.relkind = 'S' AND d.deptype IN ('a', 'i') AND d.refobjid IN ({tables}) LOOP "
        f"EXECUTE '{before}' || sequence::text || '{after}'; "
        "END LOOP; END $$"
    )
