"""Who is calling (an API credential, HTTP Basic) and how fast they may call
(docs/api.md). Errors are shaped in ``errors``."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from commerce import limits
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
        # Failed attempts per address are limited (API_FAILED_AUTH_RATE): an
        # address over it gets 429 before its credentials are even looked at.
        failures = limits.usage(
            request,
            group="api-failed-auth",
            key=limits.by_address,
            rate=settings.API_FAILED_AUTH_RATE,
        )
        if failures.over:
            raise exceptions.Throttled(
                wait=failures.wait, detail="Too many failed sign-ins from this address."
            )
        try:
            key_id, _, secret = base64.b64decode(parts[1]).decode().partition(":")
        except (IndexError, binascii.Error, UnicodeDecodeError) as error:
            self._failed(request)
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from error
        credential = ApiCredential.objects.select_related("client").filter(key_id=key_id).first()
        if credential is None or not credential.matches(secret):
            self._failed(request)
            raise exceptions.AuthenticationFailed("Unknown or revoked API credentials.")
        now = timezone.now()
        if credential.last_used_at is None or now - credential.last_used_at > timedelta(minutes=1):
            ApiCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        return CredentialUser(credential), credential

    def _failed(self, request: Request) -> None:
        """Count the failure (an atomic increment); one over the limit is
        answered 429, so parallel guesses get no more 401s than the limit."""
        failures = limits.usage(
            request,
            group="api-failed-auth",
            key=limits.by_address,
            rate=settings.API_FAILED_AUTH_RATE,
            count=True,
        )
        if failures.over:
            raise exceptions.Throttled(
                wait=failures.wait, detail="Too many failed sign-ins from this address."
            )

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="Subscription API"'


class CredentialRateThrottle(BaseThrottle):
    """A rate limit per credential (``API_RATE_LIMIT``, e.g. ``600/m``),
    counted with an atomic increment in the shared cache (django-ratelimit),
    so parallel calls cannot slip past it."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        credential = request.auth
        if not isinstance(credential, ApiCredential):
            return True
        calls = limits.usage(
            request,
            group="api-credential",
            key=lambda group, request: str(credential.pk),
            rate=settings.API_RATE_LIMIT,
            count=True,
        )
        self.seconds = calls.wait
        return not calls.over

    def wait(self) -> float | None:
        return self.seconds
