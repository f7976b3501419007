from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from commerce.gateway import CARD_APPROVED
from subscriptions import services
from subscriptions.models import Subscription
from tests.factories import ClientFactory, ProductFactory

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
STAFF = services.SYSTEM


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Live-server and worker threads close their connections when done, so
    the test database can be dropped at the end."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def eager_celery(request):
    """Tasks run inline unless a test starts real workers (marked ``worker``)."""
    from commerce import celery_app

    eager = "worker" not in request.keywords
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def fresh_limits():
    """Limits count in the cache (Redis when the tests run on it): each test
    starts with nothing counted."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clock(time_machine):
    """Every test starts at T0 (31 January 2026, 12:00 UTC) unless it travels."""
    time_machine.move_to(T0, tick=True)
    return time_machine


@pytest.fixture
def sm1(db):
    return ClientFactory(sm_version="1.0", name="Classic Vendor")


@pytest.fixture
def sm2(db):
    return ClientFactory(sm_version="2.0", name="Modern Vendor")


@pytest.fixture
def monthly(sm2):
    return ProductFactory(client=sm2, name="Pro monthly", price=Decimal("10.00"))


@pytest.fixture(params=["1.0", "2.0"], ids=["sm1", "sm2"])
def vendor(request, sm1, sm2):
    """Runs the test once for an SM 1.0 and once for an SM 2.0 client."""
    return sm1 if request.param == "1.0" else sm2


@pytest.fixture
def plan(vendor):
    """A monthly, automatically renewing product of ``vendor``."""
    return ProductFactory(client=vendor, name="Pro monthly", price=Decimal("10.00"))


def card(number: str = CARD_APPROVED) -> services.CardInput:
    return services.CardInput(number=number, expiry_month=12, expiry_year=2099)


def sign_up(
    client,
    *products,
    number: str = CARD_APPROVED,
    auto: bool = True,
    at: datetime = T0,
    email: str = "buyer@example.com",
    invoice: bool = False,
    quantity: int = 1,
) -> services.SignUpResult:
    payment = services.InvoiceInput() if invoice else card(number)
    return services.sign_up(
        client=client,
        customer=services.CustomerInput(email=email, first_name="Bo", last_name="Buyer"),
        lines=[services.Line(p, quantity) for p in products],
        payment=payment,
        confirm_auto_renewal=auto,
        actor=STAFF,
        at=at,
    )


def subscribe(client, *products, **kwargs) -> Subscription:
    result = sign_up(client, *products, **kwargs)
    assert result.subscriptions, result.message
    return result.subscriptions[0]


def fresh(sub: Subscription) -> Subscription:
    return Subscription.objects.get(pk=sub.pk)


def item_statuses(sub: Subscription) -> list[str]:
    return list(sub.items.order_by("running_no").values_list("status", flat=True))


def notification_types(sub: Subscription) -> list[str]:
    return list(sub.notifications.order_by("created_at", "type").values_list("type", flat=True))


def history_codes(sub: Subscription) -> list[str]:
    return list(sub.history.order_by("created_at", "id").values_list("event_code", flat=True))


@pytest.fixture
def needs_postgres():
    """Row locks only exist on PostgreSQL. Locally on SQLite these tests are
    skipped; in CI (CI=true) PostgreSQL is required and missing it fails."""
    if connection.vendor != "postgresql":
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run against PostgreSQL (DATABASE_URL is not PostgreSQL)")
        pytest.skip("needs PostgreSQL (set DATABASE_URL); runs in CI")


@pytest.fixture
def login(client):
    """login(vendor, role) -> Django test client signed in as that staff member."""
    from tests.factories import StaffFactory

    def sign_in(vendor, role="support"):
        staff = StaffFactory(client=vendor, role=role)
        client.force_login(staff.user)
        return client

    return sign_in


def sent_to(address: str):
    """The last e-mail sent to ``address`` (as the customer got it, with its
    portal link: the stored copy has the link masked)."""
    from django.core import mail

    return next(m for m in reversed(mail.outbox) if address in m.to)


def assets_from_elsewhere(html: str) -> list[str]:
    """Scripts, stylesheets and images the page loads from another host (a
    CDN): an absolute or protocol-relative ``src``/``href`` on those tags. (A
    search for "cdn" in the text would also find it in a random token.)"""
    tag = r'<(?:script|link|img)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"'
    return re.findall(tag, html, flags=re.IGNORECASE)
