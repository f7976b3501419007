"""Who is calling (an API credential, HTTP Basic) and how fast they may call
(docs/api.md). Errors are shaped in ``errors``."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from commerce.models import ApiCredential


class CredentialUser:
    """What ``request.user`` is for an API call: the credential's caller."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, credential: ApiCredential) -> None:
        self.credential = credential
        self.pk = None

    def __str__(self) -> str:
        return f"API {self.credential.label}"


class CredentialAuthentication(BaseAuthentication):
    """``Authorization: Basic base64(key_id:secret)``; revoked keys are refused."""

    def authenticate(self, request: Request) -> tuple[CredentialUser, ApiCredential] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"basic":
            return None
        try:
            key_id, _, secret = base64.b64decode(parts[1]).decode().partition(":")
        except (IndexError, binascii.Error, UnicodeDecodeError) as error:
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from error
        credential = ApiCredential.objects.select_related("client").filter(key_id=key_id).first()
        if credential is None or not credential.matches(secret):
            raise exceptions.AuthenticationFailed("Unknown or revoked API credentials.")
        now = timezone.now()
        if credential.last_used_at is None or now - credential.last_used_at > timedelta(minutes=1):
            ApiCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        return CredentialUser(credential), credential

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="Subscription API"'


class CredentialRateThrottle(SimpleRateThrottle):
    """A rate limit per credential (``API_RATE_LIMIT``, e.g. ``600/min``)."""

    scope = "credential"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiCredential):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
