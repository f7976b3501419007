"""Test clocks of sandbox clients (issue 10): only sandboxes have one, it only
moves forward, everything time-based for that client follows it, and
advancing one client touches no other client's subscriptions."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from commerce import clock
from commerce.gateway import CARD_DECLINED
from commerce.models import Client, Purchase
from customers.models import CustomerEmail
from customers.portal import EXPIRED, customer_from_token, make_token
from subscriptions import services
from subscriptions.tasks import advance_clock
from tests.conftest import STAFF, T0, card, fresh, history_codes, subscribe
from tests.factories import ClientFactory, ProductFactory


@pytest.fixture
def sandbox(db):
    return ClientFactory(name="Sandbox", is_sandbox=True)


def advance(client, **by):
    target = clock.target_of(Client.objects.get(pk=client.pk), **by)
    advance_clock(client.pk, target.isoformat())
    return target


def test_a_production_client_cannot_have_a_clock(sm2):
    with pytest.raises(clock.ClockError, match="not a sandbox client"):
        clock.target_of(sm2, days=1)
    sm2.clock_offset = timedelta(days=1)
    with pytest.raises(ValidationError):
        sm2.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        sm2.save()


def test_a_production_client_admin_cannot_advance(login, sm2):
    staff = login(sm2, "admin")
    answer = staff.post("/settings/clock/", {"by": "month"}, follow=True)
    assert "The clock was not moved" in answer.content.decode()
    assert Client.objects.get(pk=sm2.pk).clock_offset == timedelta(0)
    assert "Sandbox clock" not in answer.content.decode()


def test_the_clock_never_moves_backwards(sandbox, login):
    advance(sandbox, days=3)
    sandbox.refresh_from_db()
    with pytest.raises(clock.ClockError, match="only move forward"):
        clock.target_of(sandbox, to=sandbox.now() - timedelta(days=1))
    staff = login(sandbox, "admin")
    answer = staff.post("/settings/clock/", {"by": "date", "to": "2026-01-01"}, follow=True)
    assert "can only move forward" in answer.content.decode()
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.filter(pk=sandbox.pk).update(clock_offset=timedelta(days=-1))
    sandbox.refresh_from_db()
    with pytest.raises(ValidationError, match="stays a sandbox"):
        sandbox.is_sandbox = False
        sandbox.full_clean()


def test_advancing_one_sandbox_leaves_other_clients_untouched(sandbox, sm2):
    other_sandbox = ClientFactory(name="Other sandbox", is_sandbox=True)
    ours = subscribe(sandbox, ProductFactory(client=sandbox), email="a@example.com")
    theirs = subscribe(other_sandbox, ProductFactory(client=other_sandbox), email="b@example.com")
    real = subscribe(sm2, ProductFactory(client=sm2), email="c@example.com")
    advance(sandbox, months=1)
    assert fresh(ours).last_interval_no == 2  # renewed at its billing date
    for untouched in (theirs, real):
        assert fresh(untouched).last_interval_no == 1
        assert fresh(untouched).row_version == untouched.row_version
        assert not Purchase.objects.filter(subscription=untouched, category="renewal").exists()
    assert Client.objects.get(pk=other_sandbox.pk).clock_offset == timedelta(0)
    assert Client.objects.get(pk=sm2.pk).clock_offset == timedelta(0)


def test_a_subscription_walks_through_its_life_on_the_sandbox_clock(sandbox):
    sub = subscribe(sandbox, ProductFactory(client=sandbox), email="walk@example.com", at=None)
    first_date = fresh(sub).next_billing_date  # 28 Feb: one month after 31 Jan
    advance(sandbox, months=1)
    sub = fresh(sub)
    assert sub.next_billing_date > first_date and sub.status == "Active"
    renewal = Purchase.objects.get(subscription=sub, category="renewal")
    assert renewal.status == "paid" and renewal.created_at.date() == first_date.date()
    kinds = list(CustomerEmail.objects.filter(subscription=sub).values_list("kind", flat=True))
    assert "reminder" in kinds and kinds.count("receipt") == 2
    assert history_codes(sub)[-1] == "renewed"
    services.update_card(customer=sub.customer, card=card(CARD_DECLINED), actor=STAFF)
    # The next billing date is 31 Mar (the 31 Jan anchor); 28 Feb + 35 days = 4 Apr:
    # that renewal was declined, and the retries on grace days 1, 3 and 5 too.
    advance(sandbox, days=35)
    assert fresh(sub).status == "Grace"
    assert Purchase.objects.get(subscription=sub, interval_no=3).status == "declined"
    advance(sandbox, days=8)  # 7 days of grace (to 7 Apr): Hold
    assert fresh(sub).status == "Hold"
    advance(sandbox, days=8)  # 7 days of hold: Deactivated
    sub = fresh(sub)
    assert sub.status == "Deactivated"
    assert {"grace", "hold", "deactivate"} <= set(history_codes(sub))


def test_services_and_portal_links_use_the_sandbox_clock(sandbox, clock, settings):
    advance(sandbox, days=40)
    sandbox.refresh_from_db()
    sub = subscribe(sandbox, ProductFactory(client=sandbox), email="late@example.com", at=None)
    assert abs(sub.start_date - sandbox.now()) < timedelta(minutes=1)
    assert sub.start_date > T0 + timedelta(days=39)
    # A portal link ages on the sandbox clock: real time has not moved, the clock has.
    token = make_token(sub.customer)
    assert customer_from_token(token) == sub.customer
    advance(sandbox, days=settings.PORTAL_LINK_MAX_AGE // 86400 + 1)
    assert customer_from_token(token) == EXPIRED


def test_the_header_shows_the_sandbox_clock_and_admins_advance_it(
    login, sandbox, django_capture_on_commit_callbacks
):
    staff = login(sandbox, "admin")
    page = staff.get("/settings/").content.decode()
    assert "Sandbox clock: 2026-01-31" in page and "+ 1 month" in page
    with django_capture_on_commit_callbacks(execute=True):  # the worker's part, here
        staff.post("/settings/clock/", {"by": "week"})
    answer = staff.get("/settings/").content.decode()
    assert "The clock is moving to 2026-02-07" in answer
    assert "Sandbox clock: 2026-02-07" in answer
    viewer = login(sandbox, "viewer")
    assert "Sandbox clock: 2026-02-07" in viewer.get("/purchases/").content.decode()
    assert viewer.post("/settings/clock/", {"by": "week"}).status_code == 403


def test_an_impossible_date_is_a_message_not_an_error(sandbox, login):
    staff = login(sandbox, "admin")
    for value in ("2027-02-30", "not a date", "9999-99-99"):
        answer = staff.post("/settings/clock/", {"by": "date", "to": value}, follow=True)
        assert answer.status_code == 200
        assert "Choose the date to advance to." in answer.content.decode()
