"""The customer self-service portal (docs/portal.md): signed links, what a customer
sees, their actions through the lifecycle services with themselves as actor."""

import re
from datetime import timedelta

import pytest

from commerce.gateway import CARD_DECLINED
from customers.emails import send_pending
from customers.models import Customer, CustomerEmail
from customers.portal import make_token
from subscriptions.models import HistoryEntry
from tests.conftest import T0, fresh, item_statuses, sent_to, sign_up, subscribe
from tests.factories import ProductFactory

LINK = re.compile(r"http://127\.0\.0\.1:8000(/portal/enter/[^/\s\"]+/)")


def enter(client, customer):
    answer = client.get(f"/portal/enter/{make_token(customer)}/")
    assert answer.status_code == 302 and answer["Location"] == "/portal/"
    return client


@pytest.fixture
def ann(sm2, monthly):
    return subscribe(sm2, monthly, email="ann@example.com")


def test_every_customer_email_carries_a_link_that_opens_their_portal(client, ann):
    send_pending()  # what the e-mail worker does after commit: render and send
    message = sent_to("ann@example.com")
    path = LINK.search(message.body).group(1)
    assert path in message.alternatives[0].content
    assert client.get(path).status_code == 302
    # The stored copy, which staff can read, has no link in it.
    stored = CustomerEmail.objects.filter(subscription=ann).latest("id")
    assert "/portal/enter/" not in stored.body_text + stored.body_html
    assert "personal portal link, sent to the customer only" in stored.body_text
    page = client.get("/portal/").content.decode()
    assert ann.display_id in page and "Pro monthly" in page
    assert "Automatic — we charge your card" in page
    assert "10.00 EUR" in page and ann.next_billing_date.strftime("%-d %B %Y") in page


def test_an_expired_or_tampered_link_is_refused_with_a_clear_page(client, ann, clock, settings):
    token = make_token(ann.customer)
    clock.move_to(T0 + timedelta(seconds=settings.PORTAL_LINK_MAX_AGE + 60))
    expired = client.get(f"/portal/enter/{token}/")
    assert expired.status_code == 403
    assert "This link has expired" in expired.content.decode()
    # The page has the form it talks about, for the customer's shop.
    assert f'action="/portal/link/{ann.client.slug}/"' in expired.content.decode()
    assert 'name="email"' in expired.content.decode()
    tampered = client.get(f"/portal/enter/{token[:-2]}xx/")
    assert tampered.status_code == 403
    assert "This link is not valid" in tampered.content.decode()
    assert "below" not in tampered.content.decode()  # no form to point at
    assert client.get("/portal/").status_code == 403  # no session was started


def test_without_a_link_the_portal_shows_nothing(client, ann):
    answer = client.get("/portal/")
    assert answer.status_code == 403
    assert "open the “Manage your subscriptions” link" in answer.content.decode()
    assert 'data-testid="sub-' not in answer.content.decode()


def test_another_customers_subscription_or_invoice_is_a_404(client, sm2, monthly, ann):
    bob = sign_up(sm2, monthly, email="bob@example.com")
    enter(client, ann.customer)
    theirs = bob.subscriptions[0]
    assert client.get(f"/portal/subscriptions/{theirs.pk}/renewal-off/").status_code == 404
    assert client.post(f"/portal/subscriptions/{theirs.pk}/renewal-off/").status_code == 404
    assert fresh(theirs).renewal_type == "Automatic"
    assert client.get(f"/portal/invoices/{bob.purchase.pk}/").status_code == 404
    page = client.get("/portal/").content.decode()
    assert f'data-testid="sub-{theirs.pk}"' not in page and f'data-testid="sub-{ann.pk}"' in page


def test_a_link_of_another_clients_customer_shows_only_that_clients_data(client, sm1, ann):
    other = subscribe(sm1, ProductFactory(client=sm1, name="Classic"), email="ann@example.com")
    enter(client, other.customer)
    page = client.get("/portal/").content.decode()
    assert f'data-testid="sub-{other.pk}"' in page and f'data-testid="sub-{ann.pk}"' not in page


def test_turning_off_auto_renewal_asks_first_then_writes_history_as_the_customer(client, ann):
    enter(client, ann.customer)
    ask = client.get(f"/portal/subscriptions/{ann.pk}/renewal-off/").content.decode()
    date = ann.next_billing_date.strftime("%d %B %Y")
    assert "Turn off automatic renewal?" in ask and f"stays active until {date}" in ask
    assert fresh(ann).renewal_type == "Automatic"  # asking changes nothing
    done = client.post(f"/portal/subscriptions/{ann.pk}/renewal-off/", follow=True)
    assert "Automatic renewal is off" in done.content.decode()
    assert fresh(ann).renewal_type == "Manual"
    entry = HistoryEntry.objects.filter(subscription=ann).latest("id")
    assert (entry.event_code, entry.actor_kind, entry.actor_label) == (
        "renTypeUpd",
        "customer",
        "ann@example.com",
    )
    # Manual now: the customer can turn it back on, or renew now.
    page = client.get("/portal/").content.decode()
    assert "Turn on automatic renewal" in page and "Renew now" in page


def test_renew_a_manual_subscription_now(client, sm2, monthly):
    sub = subscribe(sm2, monthly, email="max@example.com", auto=False)
    enter(client, sub.customer)
    client.post(f"/portal/subscriptions/{sub.pk}/renew-now/")
    assert fresh(sub).last_interval_no == 2
    assert HistoryEntry.objects.filter(
        subscription=sub, event_code="renewed", actor_kind="customer"
    ).exists()


def test_sm1_customer_cancels_and_reinstates_an_item(client, sm1):
    sub = subscribe(sm1, ProductFactory(client=sm1, name="Classic"), email="c@example.com")
    enter(client, sub.customer)
    page = client.get("/portal/").content.decode()
    assert "Cancel Classic" in page and "automatic renewal" not in page
    client.post(f"/portal/subscriptions/{sub.pk}/cancel-item/", {"item": 1})
    assert item_statuses(sub) == ["Deactivated"]
    assert fresh(sub).status == "Deactivated"
    client.post(f"/portal/subscriptions/{sub.pk}/reinstate-item/", {"item": 1})
    assert item_statuses(sub) == ["Active"]
    kinds = set(sub.history.filter(actor_kind="customer").values_list("event_code", flat=True))
    assert kinds == {"deactivate", "reinstate"}


def test_an_action_not_offered_now_is_refused_and_changes_nothing(client, sm1):
    sub = subscribe(sm1, ProductFactory(client=sm1), email="d@example.com")
    enter(client, sub.customer)
    answer = client.post(f"/portal/subscriptions/{sub.pk}/renewal-off/", follow=True)
    assert "not possible for this subscription right now" in answer.content.decode()
    assert client.get(f"/portal/subscriptions/{sub.pk}/nonsense/").status_code == 404
    assert item_statuses(sub) == ["Active"]


def test_update_the_card(client, ann):
    enter(client, ann.customer)
    bad = client.post("/portal/card/", {"number": "12", "expiry_month": 1, "expiry_year": 2020})
    assert "Enter the card number as 12 to 19 digits." in bad.content.decode()
    assert fresh(ann).payment_method.token.startswith("tok_approved_")
    client.post("/portal/card/", {"number": CARD_DECLINED, "expiry_month": 12, "expiry_year": 2031})
    method = fresh(ann).payment_method
    assert method.token.startswith("tok_declined_") and (method.brand, method.last4) == (
        "Visa",
        "0002",
    )
    entry = HistoryEntry.objects.filter(subscription=ann).latest("id")
    assert entry.event_code == "updPayment" and entry.actor_kind == "customer"
    assert "•••• 0002" in entry.summary


def test_edit_contact_details(client, ann):
    enter(client, ann.customer)
    client.post("/portal/contact/", {"first_name": "Anna", "last_name": "Berg", "company": "AB"})
    customer = Customer.objects.get(pk=ann.customer_id)
    assert (customer.first_name, customer.last_name, customer.company) == ("Anna", "Berg", "AB")
    entry = HistoryEntry.objects.filter(subscription=ann, event_code="contact").get()
    assert entry.actor_kind == "customer" and entry.after["first_name"] == "Anna"


def test_invoices_and_a_printable_invoice(client, sm2, monthly, ann):
    sm2.vat_rate = 19
    sm2.save()
    enter(client, ann.customer)
    listing = client.get("/portal/invoices/").content.decode()
    purchase = ann.customer.purchases.get()
    assert f"/portal/invoices/{purchase.pk}/" in listing
    page = client.get(f"/portal/invoices/{purchase.pk}/").content.decode()
    # 10.00 gross at 19 %: net 8.40 (10 / 1.19 = 8.403...), VAT 1.60
    assert "8.40 EUR" in page and "1.60 EUR" in page and "data-print" in page


def test_asking_for_a_link_by_email(client, sm2, ann):
    page = client.get(f"/portal/link/{sm2.slug}/")
    assert "Send me a link" in page.content.decode()
    before = CustomerEmail.objects.count()
    sent = client.post(f"/portal/link/{sm2.slug}/", {"email": "ANN@example.com"})
    assert "a link to your account is on its way" in sent.content.decode()
    email = CustomerEmail.objects.latest("id")
    assert (email.kind, email.to) == ("portal_link", "ann@example.com")
    send_pending()
    path = LINK.search(sent_to("ann@example.com").body).group(1)
    assert client.get(path).status_code == 302
    # An unknown address gets the same answer and no e-mail.
    client.post(f"/portal/link/{sm2.slug}/", {"email": "nobody@example.com"})
    assert CustomerEmail.objects.count() == before + 1
