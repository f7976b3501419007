"""Webhook delivery of the notification outbox (docs/notifications.md).

A state change writes its ``OutboxNotification`` in its own transaction; after
commit a worker (``tasks.deliver_notifications``, also run by beat
every minute, so nothing is lost if a trigger is) does two things:

1. **fan out**: each undelivered outbox row becomes one ``WebhookDelivery``
   per active endpoint of its client that wants its type (unique per
   notification and endpoint), and the row is marked handed over;
2. **send**: due deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` and a
   lease, POSTed outside any transaction, and the answer recorded. 2xx is
   delivered; anything else or a timeout is tried again with exponential
   backoff — at most 24 attempts within 48 hours, then failed.

The body is ``{"meta": {"type", "id", "date"}, ...payload}``, signed per the
Standard Webhooks specification (https://www.standardwebhooks.com/):
``webhook-id`` (the notification id, stable across retries, so receivers can
drop duplicates — a delivery may be sent twice if a worker dies between
sending and recording), ``webhook-timestamp`` (unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``
keyed with the base64-decoded part of the endpoint's ``whsec_…`` secret, so
stock verifiers (``standardwebhooks``, svix) accept it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from commerce import locks
from commerce.models import OutboxNotification, WebhookDelivery, WebhookEndpoint

MAX_ATTEMPTS = 24
LEASE = timedelta(minutes=5)  # a claimed delivery is not claimed again for this long
D = WebhookDelivery.Status


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 15 s doubling, at most 3 hours
    (23 waits add up to about 43 hours, inside the 48 of docs/notifications.md)."""
    return timedelta(seconds=min(15 * 2 ** (attempts - 1), 3 * 3600))


def body_of(notification: OutboxNotification) -> bytes:
    meta = {
        "type": notification.type,
        "id": str(notification.id),
        "date": notification.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return json.dumps({"meta": meta, **notification.payload}, separators=(",", ":")).encode()


def signing_key(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret. Secrets made before Standard
    Webhooks signing were URL-safe base64; the same bytes are the key."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        pass
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        return secret.encode()  # not base64 at all (typed in by hand): the text is the key


def signature_headers(secret: str, message_id: str, body: bytes, at: int) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery attempt."""
    signed = f"{message_id}.{at}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(at),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def fan_out(limit: int = 1000) -> int:
    """Turn undelivered outbox rows into deliveries; returns the rows handled."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            OutboxNotification.objects.select_for_update(skip_locked=True)
            .filter(delivered_at__isnull=True)
            .order_by("created_at")[:limit]
        )
        if not rows:
            return 0
        endpoints: dict[int, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(
            client_id__in={r.client_id for r in rows}, is_active=True
        ):
            endpoints.setdefault(endpoint.client_id, []).append(endpoint)
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(notification=row, endpoint=endpoint, next_attempt_at=now)
                for row in rows
                for endpoint in endpoints.get(row.client_id, [])
                if endpoint.wants(row.type)
            ],
            ignore_conflicts=True,
        )
        OutboxNotification.objects.filter(pk__in=[r.pk for r in rows]).update(delivered_at=now)
    return len(rows)


def _due(now: datetime, endpoint_id: int | None = None) -> QuerySet[WebhookDelivery]:
    due = WebhookDelivery.objects.filter(
        status=D.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
    )
    return due if endpoint_id is None else due.filter(endpoint_id=endpoint_id)


def due_endpoints(now: datetime | None = None) -> list[int]:
    """The endpoints with deliveries due now (each is sent by its own task)."""
    due = _due(now or timezone.now()).values_list("endpoint_id", flat=True)
    return sorted(set(due))


def next_attempt(endpoint_id: int) -> datetime | None:
    """When the endpoint's next retry is due, if any."""
    waiting = WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id, status=D.PENDING, endpoint__is_active=True
    )
    return waiting.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()


# The first key of the advisory locks that keep one task per endpoint sending.
def sending_to(endpoint_id: int) -> AbstractContextManager[bool]:
    """Whether this task is the one sending to the endpoint now (an advisory
    lock): one process per endpoint at most, so a slow receiver can hold up
    one worker process, never all of them."""
    return locks.held(locks.LockSpace.WEBHOOK_ENDPOINT, endpoint_id)


def send_due(
    *, now: datetime | None = None, limit: int = 100, endpoint_id: int | None = None
) -> int:
    """Send the deliveries that are due (of one endpoint, or all), one at a
    time: each is claimed with a lease (``LEASE``, far longer than an attempt
    can take: connecting and each read are bounded by the timeout), sent and
    recorded before the next is claimed. Returns how many were tried."""
    now = now or timezone.now()
    tried = 0
    while tried < limit:
        with transaction.atomic():
            delivery = (
                _due(now, endpoint_id)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("notification", "endpoint")
                .order_by("next_attempt_at")
                .first()
            )
            if delivery is None:
                break
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + LEASE)
        _send(delivery, now)
        tried += 1
    return tried


class UnsafeTarget(ValueError):
    """A webhook URL this platform will not send to, with the reason."""


EXCERPT = 200  # characters of a receiver's answer that are kept


def checked_target(url: str) -> tuple[SplitResult, list[str]]:
    """The URL's parts and the addresses its host resolves to, if it is a
    safe target: https (http only where ``WEBHOOK_ALLOW_HTTP``, i.e. in
    development), no credentials, and every address public
    (``ipaddress.is_global``) unless ``WEBHOOK_ALLOW_PRIVATE_TARGETS``.
    Checked when an endpoint is saved and again at every send (a name may
    resolve elsewhere later); the connection then goes to a checked address."""
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeTarget("Webhook URLs must start with https://.")
    if parts.username or parts.password:
        raise UnsafeTarget("A webhook URL may not contain a user name or password.")
    if not parts.hostname:
        raise UnsafeTarget("The URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        raise UnsafeTarget(f"{parts.hostname} cannot be resolved ({error}).") from error
    addresses = sorted({str(info[4][0]) for info in infos})
    private = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
    if private and not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        raise UnsafeTarget(
            f"{parts.hostname} resolves to an address that is not public ({private[0]}); "
            "webhooks go to public addresses only."
        )
    return parts, addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, not to a new lookup."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST to a checked target; redirects are not followed (a 3xx is an
    answer like any other that is not 2xx). Returns the status code and the
    start of the answer."""
    parts, addresses = checked_target(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    conn = kind(parts.hostname or "", port, addresses[0], settings.WEBHOOK_TIMEOUT_SECONDS)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read(EXCERPT).decode(errors="replace")
    finally:
        conn.close()


def _send(delivery: WebhookDelivery, now: datetime) -> None:
    body = body_of(delivery.notification)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CommerceAssistant-Webhooks/1.0",
        **signature_headers(
            delivery.endpoint.secret, str(delivery.notification.id), body, int(time.time())
        ),
    }
    code: int | None
    try:
        code, text = post(delivery.endpoint.url, body, headers)
    except UnsafeTarget as error:
        code, text = None, f"Not sent: {error}"
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, bad answer
        code, text = None, f"{type(error).__name__}: {error}"
    _record(delivery, code, text, now)


def _record(delivery: WebhookDelivery, code: int | None, text: str, now: datetime) -> None:
    attempts = delivery.attempts + 1
    fields: dict[str, object] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "last_status_code": code,
        "last_response": text[:EXCERPT],
    }
    if code is not None and 200 <= code < 300:
        fields |= {"status": D.DELIVERED, "delivered_at": now}
    elif attempts >= MAX_ATTEMPTS:
        fields["status"] = D.FAILED
    else:
        fields["next_attempt_at"] = now + backoff(attempts)
    # Only the attempt that claimed it records (a resend meanwhile starts anew).
    WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(**fields)


def retry_failed(endpoint: WebhookEndpoint) -> int:
    """Every failed delivery of the endpoint goes again now, each with a
    fresh budget of attempts. Returns how many."""
    return WebhookDelivery.objects.filter(endpoint=endpoint, status=D.FAILED).update(
        status=D.PENDING, attempts=0, next_attempt_at=timezone.now()
    )


def resend(delivery: WebhookDelivery) -> None:
    """Send again now, with a fresh budget of attempts (staff's Resend; the
    caller has it delivered, ``tasks.deliver_after_commit``)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=D.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
