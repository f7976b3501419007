"""Signed webhook notifications (docs/notifications.md) against a real HTTP receiver on
127.0.0.1, started by the tests."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from time_machine import escape_hatch

from commerce.models import OutboxNotification, WebhookDelivery, WebhookEndpoint
from subscriptions import services
from subscriptions.notifications import webhooks
from subscriptions.notifications.tasks import deliver_notifications
from tests.conftest import STAFF, subscribe
from tests.factories import ClientFactory
from tests.subscriptions.test_renewal_workers import workers  # noqa: F401 - a fixture


class Receiver:
    """An HTTP endpoint that records what it is sent and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.delay = 0.0  # seconds before answering
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
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


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """What a receiver does: the stock Standard Webhooks verifier."""
    try:
        Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
    except WebhookVerificationError:
        return False
    return True


@pytest.fixture(autouse=True)
def local_receivers(settings):
    """The receivers here listen on 127.0.0.1 over plain http, which a real
    deployment refuses (see the safe-target tests below)."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


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
    assert verify(endpoint.secret, headers, body)
    named = {k.lower(): v for k, v in headers.items()}
    assert named["webhook-id"] == str(notification.id)  # stable across retries
    assert not verify(endpoint.secret, headers, body.replace(b"Manual", b"Autom"))
    assert not verify(WebhookEndpoint.new_secret(), headers, body)
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


def test_an_admin_adds_an_endpoint_sees_its_secret_once_and_rotates_it(login, sm2, receiver):
    admin = login(sm2, "admin")
    page = admin.post(
        "/settings/webhooks/new/",
        {"url": receiver.url, "types": ["PaidOrderNotification"]},
    ).content.decode()
    endpoint = WebhookEndpoint.objects.get(client=sm2)
    assert endpoint.types == ["PaidOrderNotification"] and endpoint.secret in page
    settings_page = admin.get("/settings/").content.decode()
    assert receiver.url in settings_page and endpoint.secret not in settings_page
    rotated = admin.post(f"/settings/webhooks/{endpoint.pk}/rotate/").content.decode()
    old, endpoint = endpoint.secret, WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert endpoint.secret != old and endpoint.secret in rotated
    admin.post(f"/settings/webhooks/{endpoint.pk}/toggle/")
    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).is_active
    bad = admin.post("/settings/webhooks/new/", {"url": "not a url"})
    assert bad.status_code == 200 and "Enter a valid URL" in bad.content.decode()


def test_endpoints_are_for_admins_of_their_own_client(login, sm1, sm2, receiver):
    theirs = WebhookEndpoint.objects.create(client=sm1, url=receiver.url, secret="s")
    assert (
        login(sm2, "support").post("/settings/webhooks/new/", {"url": receiver.url}).status_code
        == 403
    )
    admin = login(sm2, "admin")
    assert admin.post(f"/settings/webhooks/{theirs.pk}/rotate/").status_code == 404
    assert WebhookEndpoint.objects.get(pk=theirs.pk).secret == "s"


def test_the_notifications_page_and_tab_list_deliveries_and_support_resends(
    login, sm2, monthly, endpoint, receiver
):
    receiver.status = 500
    subscribe(sm2, monthly)
    deliver()
    delivery = WebhookDelivery.objects.get()
    viewer = login(sm2, "viewer")
    listing = viewer.get("/notifications/").content.decode()
    assert "PaidOrderNotification" in listing and "500" in listing and "Resend" not in listing
    assert viewer.post(f"/notifications/deliveries/{delivery.pk}/resend/").status_code == 403
    support = login(sm2, "support")
    tab = support.get(f"/purchases/{delivery.notification.purchase_id}/notifications/")
    assert "Resend" in tab.content.decode() and receiver.url in tab.content.decode()
    receiver.status = 200
    support.post(f"/notifications/deliveries/{delivery.pk}/resend/")
    webhooks.send_due()
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    failed_only = support.get("/notifications/?status=failed").content.decode()
    assert "No deliveries." in failed_only


def test_another_clients_delivery_cannot_be_resent(login, sm1, sm2, receiver):
    from tests.factories import ProductFactory

    WebhookEndpoint.objects.create(client=sm1, url=receiver.url, secret="s")
    subscribe(sm1, ProductFactory(client=sm1), email="x@example.com")
    deliver()
    theirs = WebhookDelivery.objects.get()
    assert (
        login(sm2, "support").post(f"/notifications/deliveries/{theirs.pk}/resend/").status_code
        == 404
    )


@pytest.mark.worker
@pytest.mark.postgres
def test_notifications_written_while_no_worker_runs_go_out_when_one_starts(
    workers,  # noqa: F811 - the fixture imported above
    sm2,
    monthly,
    endpoint,
    receiver,
    clock,
):
    """The after-commit task waits in Redis; the worker started later sends it."""
    from commerce import celery_app
    from tests.subscriptions.test_renewal_workers import wait_for

    def route(routes):
        # Celery builds its router once per process: rebuild it from the routes.
        celery_app.conf.task_routes = routes
        celery_app.amqp.flush_routes()
        celery_app.amqp.__dict__.pop("router", None)

    routes = celery_app.conf.task_routes
    route({"subscriptions.notifications.tasks.deliver_notifications": {"queue": workers.queue}})
    try:
        sub = subscribe(sm2, monthly)  # committed; no worker is running
        switch(sub)
        assert receiver.received == []
        workers.start(
            concurrency=1, WEBHOOK_ALLOW_HTTP="true", WEBHOOK_ALLOW_PRIVATE_TARGETS="true"
        )
        wait_for(lambda: len(receiver.received) == 2, "both notifications at the receiver")
    finally:
        route(routes)
    types = sorted(b["meta"]["type"] for b in receiver.bodies())
    assert types == ["PaidOrderNotification", "SubscriptionRenewalTypeChangedNotification"]
    # The worker signed with real time; the verifier checks it against "now".
    clock.move_to(escape_hatch.time.time(), tick=False)
    assert all(verify(endpoint.secret, h, b) for h, b in receiver.received)


def test_payload_ids_are_integers_dates_are_to_the_second_and_cancellation_links_to_the_portal(
    sm2, monthly, sm1
):
    sub = subscribe(sm2, monthly)
    signup = OutboxNotification.objects.get(subscription=sub, type="PaidOrderNotification")
    billing = signup.payload["Purchase"]["Items"][0]["RecurringBilling"]
    assert billing["SubscriptionId"] == sub.pk
    assert signup.payload["Purchase"]["Id"] == signup.purchase_id
    assert billing["NextBillingDate"] == "2026-02-28T12:00:00Z"
    assert billing["CancellationUrl"] == f"http://127.0.0.1:8000/portal/link/{sm2.slug}/"
    assert json.loads(webhooks.body_of(signup))["meta"]["date"] == "2026-01-31T12:00:00Z"
    services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF)
    changed = OutboxNotification.objects.filter(subscription=sub).latest("created_at")
    assert changed.payload["Subscription"]["Id"] == sub.pk
    # Manual already: nothing left to turn off, so no link.
    renewal = services.renew_early(subscription=sub, actor=STAFF)
    paid = OutboxNotification.objects.get(purchase=renewal.purchase)
    assert paid.payload["Purchase"]["Items"][0]["RecurringBilling"]["CancellationUrl"] == ""


# --- safe targets ---------------------------------------------------------------


@pytest.fixture
def production_rules(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False


@pytest.fixture
def resolves(monkeypatch):
    """resolves({"hooks.example.com": "10.0.0.7"}): DNS as the test says."""

    def answer(table):
        def getaddrinfo(host, port, *args, **kwargs):
            try:
                address = str(ipaddress.ip_address(host))  # an address is itself
            except ValueError:
                if host not in table:
                    raise OSError(f"unknown host {host}") from None
                address = table[host]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    return answer


@pytest.mark.parametrize(
    "url, reason",
    [
        ("https://127.0.0.1/hooks", "not public"),
        ("https://169.254.169.254/latest/meta-data", "not public"),
        ("https://10.1.2.3/hooks", "not public"),
        ("https://[::1]/hooks", "not public"),
        ("https://internal.example.com/hooks", "not public"),
        ("http://hooks.example.com/in", "https://"),
        ("ftp://hooks.example.com/in", "https://"),
        ("https://user:secret@hooks.example.com/in", "user name or password"),
    ],
)
def test_an_unsafe_webhook_target_is_refused_when_saved(
    login, sm2, production_rules, resolves, url, reason
):
    resolves({"internal.example.com": "10.0.0.7", "hooks.example.com": "93.184.216.34"})
    answer = login(sm2, "admin").post("/settings/webhooks/new/", {"url": url})
    assert answer.status_code == 200 and reason in answer.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_public_target_is_accepted(login, sm2, production_rules, resolves):
    resolves({"hooks.example.com": "93.184.216.34"})
    answer = login(sm2, "admin").post(
        "/settings/webhooks/new/", {"url": "https://hooks.example.com/in"}
    )
    assert "Copy the signing secret now" in answer.content.decode()


def test_a_name_that_resolves_to_a_private_address_at_send_time_is_not_sent_to(
    sm2, monthly, production_rules, resolves, monkeypatch
):
    endpoint = WebhookEndpoint.objects.create(
        client=sm2, url="https://hooks.example.com/in", secret=WebhookEndpoint.new_secret()
    )
    resolves({"hooks.example.com": "169.254.169.254"})  # it was public when saved
    connected = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connected.append(a))
    switch(subscribe(sm2, monthly))
    deliver()
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    assert connected == [] and delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_status_code is None and "not public" in delivery.last_response


def test_a_redirect_is_not_followed(sm2, monthly, endpoint, receiver):
    receiver.status = 302  # e.g. Location: http://169.254.169.254/
    switch(subscribe(sm2, monthly))
    deliver()
    assert len(receiver.received) == 2  # each notification once, not followed anywhere
    delivery = WebhookDelivery.objects.first()
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)  # retried later


def test_a_paused_endpoint_is_not_retried(sm2, monthly, endpoint, receiver):
    receiver.status = 503
    switch(subscribe(sm2, monthly))
    deliver()
    endpoint.is_active = False
    endpoint.save()
    tried = len(receiver.received)
    webhooks.send_due(now=timezone.now() + timedelta(hours=1))
    assert len(receiver.received) == tried


def test_only_admins_see_what_a_receiver_answered(login, sm2, monthly, endpoint, receiver):
    receiver.status = 500
    switch(subscribe(sm2, monthly))
    deliver()
    assert "try later" in login(sm2, "admin").get("/notifications/").content.decode()
    assert "try later" not in login(sm2, "support").get("/notifications/").content.decode()


@pytest.mark.worker
@pytest.mark.postgres
def test_a_slow_endpoint_does_not_delay_another(
    workers,  # noqa: F811 - the fixture imported above
    sm2,
    monthly,
):
    """Each endpoint's deliveries are sent by a task of their own: a receiver
    that takes seconds to answer holds up only itself."""
    from commerce import celery_app
    from tests.subscriptions.test_renewal_workers import wait_for

    slow, fast = Receiver(), Receiver()
    slow.delay = 6
    for receiver in (slow, fast):
        WebhookEndpoint.objects.create(
            client=sm2, url=receiver.url, secret=WebhookEndpoint.new_secret()
        )
    amqp, routes = celery_app.amqp, celery_app.conf.task_routes
    celery_app.conf.task_routes = {"subscriptions.notifications.tasks.*": {"queue": workers.queue}}
    amqp.flush_routes()
    amqp.__dict__.pop("router", None)
    try:
        local = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
        workers.start(concurrency=2, WEBHOOK_TIMEOUT_SECONDS="30", **local)
        sub = subscribe(sm2, monthly)  # PaidOrderNotification
        switch(sub)  # SubscriptionRenewalTypeChangedNotification
        wait_for(lambda: len(fast.received) == 2, "both notifications at the fast receiver")
        assert len(slow.received) <= 1  # still busy with its first
        wait_for(lambda: len(slow.received) == 2, "both at the slow one, in its own time")
    finally:
        celery_app.conf.task_routes = routes
        amqp.flush_routes()
        amqp.__dict__.pop("router", None)
        for receiver in (slow, fast):
            receiver.server.shutdown()


def test_support_retries_all_failed_deliveries_of_an_endpoint(
    login, sm2, monthly, endpoint, receiver
):
    receiver.status = 500
    switch(subscribe(sm2, monthly))
    deliver()
    WebhookDelivery.objects.update(status="failed", attempts=24)  # gave up, 48 hours later
    receiver.status = 200  # the client fixed their receiver
    support = login(sm2, "support")
    page = support.get("/notifications/").content.decode()
    assert "2 failed" in page and "Retry all failed" in page
    done = support.post(f"/settings/webhooks/{endpoint.pk}/retry-failed/", follow=True)
    assert "2 failed deliveries to" in done.content.decode()
    deliver()
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}
    theirs = login(ClientFactory(), "support")
    assert theirs.post(f"/settings/webhooks/{endpoint.pk}/retry-failed/").status_code == 404


def test_operators_see_endpoints_and_deliveries_in_admin_without_the_secret(
    admin_client, sm2, monthly, endpoint, receiver
):
    switch(subscribe(sm2, monthly))
    deliver()
    page = admin_client.get(f"/admin/commerce/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and endpoint.secret not in page.content.decode()
    listing = admin_client.get("/admin/commerce/webhookdelivery/").content.decode()
    assert endpoint.url in listing
