"""Settings of the GDPR workflow (prefix ``GDPR_``), shared by every service taking part."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from nightshift.common.errors import ConfigurationError
from nightshift.common.settings import ServiceSettings

#: Signs proofs and subject digests outside production, where no secret is configured.
DEVELOPMENT_PROOF_KEY = "nightshift-development-gdpr-proof-key"

#: A request must be completed within a month at most (GDPR art. 12(3)).
MAX_DEADLINE_DAYS = 31


class GdprSettings(ServiceSettings):
    """The proof key, the deadline and the export link's lifetime."""

    model_config = SettingsConfigDict(env_prefix="GDPR_")

    #: HMAC key of the proofs and of the subject digests kept after an erasure; required in production.
    proof_key: SecretStr | None = None
    #: A request not completed this many days after it was made raises an alert.
    deadline_days: int = Field(default=30, ge=1, le=MAX_DEADLINE_DAYS)
    #: How long the emailed link to an export archive works (storage links live a week at most).
    export_link_hours: int = Field(default=7 * 24, ge=1, le=7 * 24)

    def key(self, environment: str) -> bytes:
        """The proof key's bytes.

        Raises:
          ConfigurationError: In production, when ``GDPR_PROOF_KEY`` is not set.
        """
        if self.proof_key is None or not self.proof_key.get_secret_value():
            if environment == "production":
                raise ConfigurationError("GDPR_PROOF_KEY must be set in production")
            return DEVELOPMENT_PROOF_KEY.encode()
        return self.proof_key.get_secret_value().encode()

    def deadline(self) -> dt.timedelta:
        return dt.timedelta(days=self.deadline_days)

    def export_link_lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.export_link_hours)
