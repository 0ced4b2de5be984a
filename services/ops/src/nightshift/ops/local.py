"""``nightshift up``'s banner hook: a local operator with a fresh password, and where the dashboard is.

There is no default password anywhere: each ``nightshift up`` generates one
for the operator ``local`` (creating it, or resetting its password) and prints
it once, in the banner.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from nightshift.ops.accounts import create_operator
from nightshift.ops.passwords import generate_password

#: The operator ``nightshift up`` signs in as.
LOCAL_OPERATOR = "local"


def banner(sessions: sessionmaker[Session], base_url: str) -> list[str]:
    """Create or reset the local operator; return the banner lines (dashboard URL and credentials)."""
    password = generate_password()
    create_operator(sessions, LOCAL_OPERATOR, "operator", password)
    return [
        f"dashboard      {base_url}/   (API: {base_url}/api/docs)",
        f"  sign in as   {LOCAL_OPERATOR} / {password}   (new password each start)",
    ]
