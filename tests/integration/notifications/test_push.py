"""Push through the real clients: FCM HTTP v1 (google-auth, a local OAuth token endpoint) and Web Push (pywebpush)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common.contracts.notifications import SEND_PUSH
from nightshift.common.db.engine import make_session_factory
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.notifications.errors import ProviderBusy
from nightshift.notifications.models import PushDelivery, PushDevice
from nightshift.notifications.push.devices import register_device
from nightshift.notifications.push.fcm import FcmClient
from nightshift.notifications.push.webpush import new_vapid_key
from tests.support.http_server import QuietHandler, serving

pytestmark = pytest.mark.integration

SERVICE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushStub:
    """Google's token endpoint, FCM and a Web Push service, on one local server that records requests."""

    url: str = ""
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    fcm: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    webpush: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    dead_tokens: set[str] = field(default_factory=set)
    gone_paths: set[str] = field(default_factory=set)
    #: (status, Retry-After) answered by FCM instead of accepting, when set.
    fcm_failure: tuple[int, str] | None = None


@pytest.fixture
def push_stub() -> Iterator[PushStub]:
    stub = PushStub()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, answer, extra = 200, b"{}", {}
            if self.path == "/token":
                stub.token_requests.append(parse_qs(body.decode()))
                answer = json.dumps(
                    {"access_token": f"access-{len(stub.token_requests)}", "expires_in": 3600, "token_type": "Bearer"}
                ).encode()
            elif self.path.endswith("/messages:send"):
                message = json.loads(body)
                stub.fcm.append((headers, message))
                if stub.fcm_failure is not None:
                    status, extra = stub.fcm_failure[0], {"Retry-After": stub.fcm_failure[1]}
                elif message["message"]["token"] in stub.dead_tokens:
                    status = 404
                    answer = json.dumps(
                        {
                            "error": {
                                "code": 404,
                                "status": "NOT_FOUND",
                                "details": [
                                    {
                                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                        "errorCode": "UNREGISTERED",
                                    }
                                ],
                            }
                        }
                    ).encode()
                else:
                    answer = json.dumps({"name": f"projects/demo/messages/{len(stub.fcm)}"}).encode()
            elif self.path.startswith("/webpush/"):
                stub.webpush.append((self.path, headers, body))
                status = 410 if self.path in stub.gone_paths else 201
                extra = {"Location": f"{stub.url}/messages/{len(stub.webpush)}"}
                answer = b""
            else:
                status = 404
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    with serving(Handler) as url:
        stub.url = url
        yield stub


def _service_account(stub: PushStub, folder: Path) -> Path:
    pem = SERVICE_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = folder / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "demo",
                "private_key_id": "key-1",
                "private_key": pem,
                "client_email": "push@demo.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{stub.url}/token",
            }
        )
    )
    return path


@dataclass
class Browser:
    """A Web Push subscription's keys, held by the browser that decrypts."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return _b64url(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        decoded: dict[str, Any] = json.loads(plain)
        return decoded


@pytest.fixture
def push_config(configure_mail: Callable[..., None], push_stub: PushStub, tmp_path: Path) -> PushStub:
    configure_mail(
        NOTIFICATIONS_FCM_CREDENTIALS_FILE=str(_service_account(push_stub, tmp_path)),
        NOTIFICATIONS_FCM_URL=push_stub.url,
        NOTIFICATIONS_VAPID_PRIVATE_KEY=new_vapid_key(),
    )
    return push_stub


def test_push_reaches_every_device_and_dead_tokens_are_removed(
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    make_user: Callable[..., int],
    push_config: PushStub,
    run_worker: Any,
) -> None:
    stub = push_config
    user = make_user(locale="fr", display_name="Ada")
    sessions = make_session_factory(clean_db)
    register_device(sessions, user, "fcm", "token-alive")
    dead = register_device(sessions, user, "fcm", "token-dead")
    browser, gone_browser = Browser(), Browser()
    register_device(
        sessions, user, "webpush", f"{stub.url}/webpush/a", p256dh=browser.p256dh, auth=_b64url(browser.auth)
    )
    gone = register_device(
        sessions, user, "webpush", f"{stub.url}/webpush/b", p256dh=gone_browser.p256dh, auth=_b64url(gone_browser.auth)
    )
    stub.dead_tokens.add("token-dead")
    stub.gone_paths.add("/webpush/b")
    run_worker({SEND_PUSH.queue_name})

    publish(
        "notification.requested",
        {"user_id": user, "channel": "push", "template": "welcome", "idempotency_key": f"welcome-push:{user}"},
    )

    def deliveries() -> list[PushDelivery] | None:
        with Session(clean_db) as session:
            rows = list(session.scalars(select(PushDelivery).order_by(PushDelivery.device_id)).all())
        return rows if len(rows) == 4 else None

    rows = wait_for(deliveries, what="four push deliveries")
    assert sorted((r.device_id in (dead, gone), r.status) for r in rows) == [
        (False, "sent"),
        (False, "sent"),
        (True, "removed"),
        (True, "removed"),
    ]
    with Session(clean_db) as session:
        remaining = session.scalars(select(PushDevice.token).order_by(PushDevice.id)).all()
    assert remaining == ["token-alive", f"{stub.url}/webpush/a"]

    # FCM: a bearer token obtained from the local OAuth endpoint with a JWT signed by the service account.
    [grant] = stub.token_requests
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header, claims, signature = grant["assertion"][0].split(".")
    SERVICE_KEY.public_key().verify(
        _unb64url(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    payload = json.loads(_unb64url(claims))
    # google-auth posts to the account's token_uri (ours) with Google's audience in the assertion.
    assert (payload["aud"], payload["iss"]) == (
        "https://oauth2.googleapis.com/token",
        "push@demo.iam.gserviceaccount.com",
    )
    assert payload["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert [headers["authorization"] for headers, _ in stub.fcm] == ["Bearer access-1", "Bearer access-1"]
    sent = next(m["message"] for _, m in stub.fcm if m["message"]["token"] == "token-alive")
    assert sent["notification"] == {"title": "Bienvenue sur Nightshift", "body": "Bonjour Ada, votre compte est prêt."}

    # Web Push: encrypted for the subscription (aes128gcm), VAPID-signed.
    _path, headers, body = next(item for item in stub.webpush if item[0] == "/webpush/a")
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["authorization"].startswith("vapid t=")
    assert b"Bienvenue" not in body
    assert browser.decrypt(body) == {
        "title": "Bienvenue sur Nightshift",
        "body": "Bonjour Ada, votre compte est prêt.",
        "data": {"template": "welcome"},
    }


def test_fcm_429_with_retry_after_is_retried_no_sooner(push_stub: PushStub, tmp_path: Path) -> None:
    client = FcmClient(str(_service_account(push_stub, tmp_path)), base_url=push_stub.url)
    push_stub.fcm_failure = (429, "7")

    with pytest.raises(ProviderBusy) as busy:
        client.send("token", title="t", body="b", data={})
    assert busy.value.retry_after_ms == 7000
