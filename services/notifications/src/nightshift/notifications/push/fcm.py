"""Firebase Cloud Messaging HTTP v1 through a service account (``google-auth``).

``google-auth`` signs a JWT with the service account's key, trades it at the
account's ``token_uri`` for an OAuth2 access token and refreshes it before it
expires (its credentials count as expired a few minutes early);
``AuthorizedSession`` adds the bearer token to every request and refreshes on a
401. One session per process, shared by the worker's threads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from nightshift.common.errors import ConfigurationError
from nightshift.notifications.errors import ProviderUnavailable
from nightshift.notifications.push.http_errors import classify

#: The OAuth2 scope of FCM sends.
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class FcmClient:
    """Sends to FCM registration tokens.

    Parameters:
      credentials_file: The service account's JSON key file.
      project_id: The Firebase project (the key file's by default).
      base_url: FCM's API (a local server in tests).
      timeout_s: Seconds allowed per request.

    Raises:
      ConfigurationError: The key file is missing or malformed.
    """

    def __init__(
        self, credentials_file: str, *, project_id: str | None = None, base_url: str, timeout_s: float = 10.0
    ) -> None:
        try:
            info = json.loads(Path(credentials_file).read_text())
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[FCM_SCOPE]
            )
        except (OSError, ValueError, KeyError) as error:
            raise ConfigurationError(
                f"NOTIFICATIONS_FCM_CREDENTIALS_FILE: unusable service account ({type(error).__name__})"
            ) from None
        self.project_id = project_id or info.get("project_id")
        if not self.project_id:
            raise ConfigurationError("NOTIFICATIONS_FCM_PROJECT_ID is required (the key file names no project)")
        self.session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        self.url = f"{base_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self.timeout_s = timeout_s

    def send(self, token: str, *, title: str, body: str, data: dict[str, str]) -> str:
        """Send one notification to *token*; return FCM's message name.

        Raises:
          DeadToken: ``UNREGISTERED`` or 404 (remove the device).
          ProviderBusy, ProviderUnavailable: 429 or 5xx (with or without ``Retry-After``), no connection.
          ProviderRejected: Any other 4xx.
        """
        message: dict[str, Any] = {
            "message": {"token": token, "notification": {"title": title, "body": body}, "data": data}
        }
        try:
            response = self.session.post(self.url, json=message, timeout=self.timeout_s)
        except (requests.RequestException, GoogleAuthError) as error:
            raise ProviderUnavailable(f"FCM unreachable: {type(error).__name__}") from None
        if response.status_code == 200:
            return str(response.json().get("name", ""))
        raise classify(
            "FCM", response.status_code, response.headers.get("Retry-After"), dead=_unregistered(response)
        ) from None


def _unregistered(response: requests.Response) -> bool:
    try:
        error: dict[str, Any] = response.json().get("error", {})
    except ValueError:
        return False
    codes = {detail.get("errorCode") for detail in error.get("details", []) if isinstance(detail, dict)}
    return "UNREGISTERED" in codes
