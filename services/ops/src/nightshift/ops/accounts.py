"""Operators, their browser sessions and the API tokens: who is signed in and what they may do.

A viewer may read; an operator may also act (replay, revoke, purge, pause…). API
tokens carry scopes instead: ``read``, ``act`` and ``publish`` (``POST
/api/events/…``). Everything secret is stored as a hash (see :mod:`passwords`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.ops.errors import InvalidCredentials, UnknownOperator
from nightshift.ops.models import ApiToken, Operator, OperatorSession
from nightshift.ops.passwords import TOKEN_PREFIX, burn_time, digest, hash_password, new_secret, verify_password

#: Roles of people and the scopes each grants.
ROLES = {"viewer": frozenset({"read"}), "operator": frozenset({"read", "act"})}

#: Scopes an API token may carry.
SCOPES = ("read", "act", "publish")


@dataclass(frozen=True)
class Principal:
    """Who makes a request, and what they may do.

    Parameters:
      name: The operator's or the token's name (what the audit shows).
      via: ``dashboard`` (a browser session), ``api`` (a token) or ``cli``.
      scopes: ``read``, ``act``, ``publish``.
      csrf_token: The session's CSRF token; None for a token (no ambient authority to abuse).
    """

    name: str
    via: str
    scopes: frozenset[str]
    csrf_token: str | None = None

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def create_operator(sessions: sessionmaker[Session], name: str, role: str, password: str) -> Operator:
    """Add an operator, or set the role and password of an existing one.

    Raises:
      ValueError: An unknown role, an empty name or a too short password.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if not name.strip():
        raise ValueError("an operator needs a name")
    password_hash = hash_password(password)
    with transaction(sessions) as session:
        operator = session.scalar(select(Operator).where(Operator.name == name))
        if operator is None:
            operator = Operator(name=name, role=role, password_hash=password_hash)
            session.add(operator)
        else:
            operator.role, operator.password_hash, operator.disabled_at = role, password_hash, None
            session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))
        session.flush()
        return operator


def authenticate(sessions: sessionmaker[Session], name: str, password: str) -> Operator:
    """The operator *name* if *password* is theirs.

    Raises:
      InvalidCredentials: Unknown name, disabled operator or wrong password (one message for all).
    """
    with sessions() as session:
        operator = session.scalar(select(Operator).where(Operator.name == name, Operator.disabled_at.is_(None)))
    if operator is None:
        burn_time(password)
        raise InvalidCredentials("wrong name or password")
    if not verify_password(operator.password_hash, password):
        raise InvalidCredentials("wrong name or password")
    return operator


def open_session(sessions: sessionmaker[Session], operator: Operator, *, idle_s: int) -> str:
    """Start a browser session for *operator*; return the cookie value (stored only as a digest)."""
    token = new_secret()
    with transaction(sessions) as session:
        session.add(
            OperatorSession(
                token_hash=digest(token),
                operator_id=operator.id,
                csrf_token=secrets.token_urlsafe(32),
                expires_at=_now() + dt.timedelta(seconds=idle_s),
            )
        )
    return token


def session_principal(sessions: sessionmaker[Session], token: str, *, idle_s: int) -> Principal:
    """Who the session cookie *token* signs in; its expiry moves on with each use.

    Raises:
      InvalidCredentials: No such session, or it expired.
    """
    now = _now()
    with transaction(sessions) as session:
        row = session.execute(
            select(OperatorSession, Operator)
            .join(Operator, Operator.id == OperatorSession.operator_id)
            .where(OperatorSession.token_hash == digest(token), Operator.disabled_at.is_(None))
        ).one_or_none()
        if row is None or row[0].expires_at <= now:
            raise InvalidCredentials("not signed in")
        login, operator = row
        if login.expires_at - now < dt.timedelta(seconds=idle_s) * 0.9:  # write at most every tenth of it
            login.expires_at = now + dt.timedelta(seconds=idle_s)
        return Principal(operator.name, "dashboard", ROLES[operator.role], login.csrf_token)


def close_session(sessions: sessionmaker[Session], token: str) -> None:
    """Sign the session *token* out."""
    with transaction(sessions) as session:
        session.execute(delete(OperatorSession).where(OperatorSession.token_hash == digest(token)))


def create_token(sessions: sessionmaker[Session], name: str, scopes: Iterable[str], *, by: str) -> str:
    """Create the API token *name* with *scopes*; return it (it is shown once, stored as a digest).

    Raises:
      ValueError: An unknown scope, no scope, or a token of that name exists already.
    """
    wanted = sorted(set(scopes))
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if unknown or not wanted:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(unknown) or 'none'})")
    token = new_secret(TOKEN_PREFIX)
    with transaction(sessions) as session:
        if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise ValueError(f"an API token named {name!r} exists already")
        session.add(ApiToken(name=name, token_hash=digest(token), scopes=wanted, created_by=by))
    return token


def revoke_token(sessions: sessionmaker[Session], name: str) -> None:
    """Revoke the API token *name*.

    Raises:
      UnknownOperator: No live token has that name.
    """
    with transaction(sessions) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)))
        if row is None:
            raise UnknownOperator(f"no API token named {name!r}")
        row.revoked_at = _now()


def token_principal(sessions: sessionmaker[Session], token: str) -> Principal:
    """Who the bearer *token* is.

    Raises:
      InvalidCredentials: No live token matches.
    """
    with sessions() as session:
        row = session.scalar(
            select(ApiToken).where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))
        )
    if row is None:
        raise InvalidCredentials("invalid API token")
    return Principal(f"token:{row.name}", "api", frozenset(row.scopes))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
