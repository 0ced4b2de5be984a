"""Settings of the users service (prefix ``USERS_``)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings


class UsersSettings(ServiceSettings):
    """How the token and session cleanup works."""

    model_config = SettingsConfigDict(env_prefix="USERS_")

    #: Rows deleted per transaction by the token cleanup: small enough to never hold long locks.
    cleanup_batch_size: int = Field(default=5000, ge=1, le=100_000)
    #: Sessions not seen for longer than this are deleted.
    session_retention_days: int = Field(default=30, ge=1)

    def session_retention(self) -> dt.timedelta:
        """How long an idle session is kept."""
        return dt.timedelta(days=self.session_retention_days)
