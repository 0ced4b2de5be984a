"""Settings of the users service (prefix ``USERS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from nightshift.common.settings import LOCAL_ENV_FILE


class UsersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_", env_file=LOCAL_ENV_FILE, extra="ignore", frozen=True)

    #: Rows deleted per transaction by the token cleanup: small enough to never hold long locks.
    cleanup_batch_size: int = Field(default=5000, ge=1, le=100_000)
    #: Sessions not seen for longer than this are deleted.
    session_retention_days: int = Field(default=30, ge=1)
