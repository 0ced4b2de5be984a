"""Who a request comes from, and whether they may do what it asks.

A browser signs in with a session cookie (HttpOnly, SameSite=Strict); every
state change it makes carries the session's CSRF token (a form field or the
``X-CSRF-Token`` header). A program sends ``Authorization: Bearer <token>``;
tokens carry no ambient authority, so they need no CSRF token. Pages redirect
an anonymous visitor to the login; the JSON API answers 401, and 403 to a
principal without the scope.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request

from nightshift.ops.accounts import Principal, session_principal, token_principal
from nightshift.ops.context import OpsContext
from nightshift.ops.errors import InvalidCredentials

#: The session cookie.
SESSION_COOKIE = "nightshift_session"

#: The form field and the header carrying the CSRF token.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

#: Methods that change nothing, so need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """An anonymous request for a page: redirected to the login."""


def context(request: Request) -> OpsContext:
    ctx: OpsContext = request.app.state.ctx
    return ctx


def identify(request: Request) -> Principal | None:
    """The principal of *request* (bearer token first, then the session cookie); None if anonymous.

    Raises:
      HTTPException: 401 for a bearer token that matches nothing (a wrong token is not anonymity).
    """
    ctx = context(request)
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        try:
            return token_principal(ctx.sessions, header[7:].strip())
        except InvalidCredentials as error:
            raise HTTPException(401, str(error), headers={"WWW-Authenticate": "Bearer"}) from None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            return session_principal(ctx.sessions, cookie, idle_s=ctx.options.session_idle_s)
        except InvalidCredentials:
            return None
    return None


async def _csrf_from(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    return token


def _check(principal: Principal, scope: str) -> Principal:
    if not principal.may(scope):
        raise HTTPException(403, f"{principal.name} may not {scope} (needs the {scope!r} scope)")
    return principal


def api_access(scope: str) -> Callable[[Request], object]:
    """A dependency: the JSON API's principal, who must hold *scope* (401/403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = identify(request)
        if principal is None:
            raise HTTPException(401, "sign in or send an API token", headers={"WWW-Authenticate": "Bearer"})
        await _require_csrf(request, principal)
        return _check(principal, scope)

    return dependency


def page_access(scope: str) -> Callable[[Request], object]:
    """A dependency: a page's principal, who must hold *scope*; anonymous visitors go to the login."""

    async def dependency(request: Request) -> Principal:
        principal = identify(request)
        if principal is None:
            raise LoginRequired
        await _require_csrf(request, principal)
        return _check(principal, scope)

    return dependency


async def _require_csrf(request: Request, principal: Principal) -> None:
    """Refuse a state change from a browser session that does not carry its CSRF token (403)."""
    if request.method in SAFE_METHODS or principal.csrf_token is None:
        return
    sent = await _csrf_from(request)
    if not sent or not hmac.compare_digest(sent, principal.csrf_token):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
