"""Signed webhook notifications (SPEC 7) against a real HTTP receiver on
127.0.0.1, started by the tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from commerce import webhooks
from commerce.models import OutboxNotification, WebhookDelivery, WebhookEndpoint
from commerce.tasks import deliver_notifications
from subscriptions import services
from tests.conftest import STAFF, subscribe


class Receiver:
    """An HTTP endpoint that records what it is sent and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"thanks" if receiver.status < 300 else b"try later")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does with X-Signature (the README shows the same)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def endpoint(sm2, receiver):
    return WebhookEndpoint.objects.create(
        client=sm2, url=receiver.url, secret=WebhookEndpoint.new_secret()
    )


def switch(sub, renewal_type="Manual"):
    return services.switch_renewal_type(subscription=sub, renewal_type=renewal_type, actor=STAFF)


def deliver():
    webhooks.fan_out()
    return webhooks.send_due()


def test_a_notification_is_delivered_signed(sm2, monthly, endpoint, receiver):
    sub = subscribe(sm2, monthly)
    switch(sub)
    deliver()
    notification = OutboxNotification.objects.get(
        subscription=sub, type="SubscriptionRenewalTypeChangedNotification"
    )
    typed = [
        (h, b) for h, b in receiver.received if json.loads(b)["meta"]["id"] == str(notification.id)
    ]
    headers, body = typed[0]
    payload = json.loads(body)
    assert payload["meta"]["type"] == "SubscriptionRenewalTypeChangedNotification"
    assert payload["Subscription"]["RenewalType"] == "Manual"
    assert verify(endpoint.secret, headers["X-Signature"], body)
    assert not verify(endpoint.secret, headers["X-Signature"], body.replace(b"Manual", b"Autom"))
    assert not verify("whsec_other", headers["X-Signature"], body)
    delivery = WebhookDelivery.objects.get(notification=notification)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.last_response == "thanks"


def test_a_receiver_that_is_down_gets_it_with_backoff_once_it_is_back(
    sm2, monthly, endpoint, receiver
):
    receiver.status = 503
    sub = subscribe(sm2, monthly)
    webhooks.fan_out()
    start = timezone.now()
    webhooks.send_due(now=start)
    delivery = WebhookDelivery.objects.get(notification__subscription=sub)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
    assert delivery.next_attempt_at == start + timedelta(seconds=15)
    assert webhooks.send_due(now=start + timedelta(seconds=14)) == 0  # not yet
    webhooks.send_due(now=start + timedelta(seconds=16))
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at == start + timedelta(seconds=16 + 30)
    receiver.status = 200
    webhooks.send_due(now=start + timedelta(seconds=47))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert len({b["meta"]["id"] for b in receiver.bodies()}) == 1  # the same notification


def test_a_refused_connection_is_retried_too(sm2, monthly):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    WebhookEndpoint.objects.create(
        client=sm2, url=f"http://127.0.0.1:{port}/x", secret=WebhookEndpoint.new_secret()
    )
    sub = subscribe(sm2, monthly)
    deliver()
    delivery = WebhookDelivery.objects.get(notification__subscription=sub)
    assert (delivery.status, delivery.last_status_code) == ("pending", None)
    assert "ConnectionRefused" in delivery.last_response or "refused" in delivery.last_response


def test_24_attempts_within_48_hours_then_failed(sm2, monthly, endpoint, receiver):
    receiver.status = 500
    sub = subscribe(sm2, monthly)
    webhooks.fan_out()
    start = timezone.now()
    webhooks.send_due(now=start)
    delivery = WebhookDelivery.objects.get(notification__subscription=sub)
    while delivery.status == "pending":
        webhooks.send_due(now=delivery.next_attempt_at)
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 24)
    assert delivery.last_attempt_at - start < timedelta(hours=48)
    assert len(receiver.received) == 24


def test_types_and_inactive_endpoints_are_respected(sm2, monthly, receiver):
    WebhookEndpoint.objects.create(
        client=sm2,
        url=receiver.url,
        secret="s",
        types=["SubscriptionRenewalTypeChangedNotification"],
    )
    WebhookEndpoint.objects.create(client=sm2, url=receiver.url, secret="s", is_active=False)
    sub = subscribe(sm2, monthly)  # PaidOrderNotification: not wanted
    switch(sub)
    deliver()
    assert [b["meta"]["type"] for b in receiver.bodies()] == [
        "SubscriptionRenewalTypeChangedNotification"
    ]


def test_another_clients_notifications_never_reach_this_endpoint(
    sm1, sm2, monthly, endpoint, receiver
):
    from tests.factories import ProductFactory

    subscribe(sm1, ProductFactory(client=sm1), email="other@example.com")
    deliver()
    assert receiver.received == []


def test_resend_sends_the_same_notification_again(sm2, monthly, endpoint, receiver):
    subscribe(sm2, monthly)
    deliver()
    delivery = WebhookDelivery.objects.get()
    webhooks.resend(delivery)
    webhooks.send_due()
    ids = [b["meta"]["id"] for b in receiver.bodies()]
    assert len(ids) == 2 and ids[0] == ids[1]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_delivered_after_commit_and_a_rolled_back_one_never(
    sm2, monthly, endpoint, receiver
):
    sub = subscribe(sm2, monthly)  # commits; the after-commit task ran (eager here)
    assert [b["meta"]["type"] for b in receiver.bodies()] == ["PaidOrderNotification"]
    with pytest.raises(RuntimeError), transaction.atomic():
        switch(sub)
        raise RuntimeError("something after the change failed")
    deliver_notifications()
    assert [b["meta"]["type"] for b in receiver.bodies()] == ["PaidOrderNotification"]
    assert not OutboxNotification.objects.filter(
        type="SubscriptionRenewalTypeChangedNotification"
    ).exists()
