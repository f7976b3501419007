"""The public checkout (docs/back-office.md): SM 2.0 Confirm auto-renewal, SM 1.0 product
variations, declined cards, invalid input."""

from commerce.models import Purchase
from subscriptions.models import Subscription
from tests.factories import ProductFactory


def buy(client, vendor, product, **extra):
    data = {
        "email": "new@example.com",
        "first_name": "Nia",
        "last_name": "Nu",
        "payment": "card",
        "card_number": "4242 4242 4242 4242",
        "expiry_month": 12,
        "expiry_year": 2099,
        f"qty_{product.pk}": 1,
        **extra,
    }
    return client.post(f"/checkout/{vendor.slug}/", data)


def test_sm2_box_ticked_creates_an_automatic_subscription(client, sm2, monthly):
    page = buy(client, sm2, monthly, confirm_auto_renewal="on")
    assert "Thank you!" in page.content.decode()
    assert Subscription.objects.get().renewal_type == "Automatic"


def test_sm2_box_unticked_creates_a_manual_subscription(client, sm2, monthly):
    assert "Confirm auto-renewal" in client.get(f"/checkout/{sm2.slug}/").content.decode()
    buy(client, sm2, monthly)
    sub = Subscription.objects.get()
    assert (sub.status, sub.renewal_type) == ("Active", "Manual")


def test_sm1_offers_the_manual_variation_and_it_awaits_reinstate(client, sm1):
    ProductFactory(client=sm1, name="Backup (auto)")
    manual = ProductFactory(
        client=sm1, name="Backup (manual)", renewal_mode="manual", is_one_time_rebilling=True
    )
    form = client.get(f"/checkout/{sm1.slug}/").content.decode()
    assert "Confirm auto-renewal" not in form
    assert "renews automatically" in form and "manual renewal" in form
    buy(client, sm1, manual)
    sub = Subscription.objects.get()
    assert (sub.status, sub.renewal_type, sub.items.get().status) == (
        "Deactivated",
        None,
        "AwaitingReinstate",
    )


def test_a_declined_card_shows_an_error_and_creates_no_subscription(client, sm2, monthly):
    page = buy(client, sm2, monthly, card_number="4000000000000002")
    assert page.status_code == 400
    assert "Your card was declined: Card declined by issuer." in page.content.decode()
    assert not Subscription.objects.exists()
    assert Purchase.objects.get().status == "declined"
    assert 'value="new@example.com"' in page.content.decode()  # nothing typed is lost


def test_invalid_input_is_shown_per_field(client, sm2, monthly):
    page = buy(client, sm2, monthly, card_number="", expiry_year=2001, **{f"qty_{monthly.pk}": 0})
    html = page.content.decode()
    assert page.status_code == 400
    assert "Required for card payments." in html
    assert not Purchase.objects.exists()
    page = buy(client, sm2, monthly, expiry_month=1, expiry_year=2025)
    assert "The card has expired." in page.content.decode()


def test_invoice_checkout_creates_a_new_subscription(client, sm2, monthly):
    page = buy(client, sm2, monthly, payment="invoice", card_number="")
    assert "We will send an invoice" in page.content.decode()
    assert Subscription.objects.get().status == "New"


def test_unknown_client_is_404(client, db):
    assert client.get("/checkout/nope/").status_code == 404


def test_a_known_address_changes_nothing_and_gets_a_sign_in_link(client, sm2, monthly):
    """Anonymous checkout with an existing customer's e-mail: no details
    changed, nothing bought or attached; the address gets a portal link."""
    from customers.emails import send_pending
    from customers.models import Customer
    from tests.conftest import sent_to, sign_up

    first = sign_up(sm2, monthly, email="ann@example.com")
    ann = Customer.objects.get(client=sm2, email="ann@example.com")
    ann.first_name, ann.company = "Ann", "Ann Ltd"
    ann.save()
    purchases = Purchase.objects.filter(customer=ann).count()
    page = buy(client, sm2, monthly, email="ANN@example.com", first_name="Mallory", company="Evil")
    assert page.status_code == 200
    assert "already has an account" in page.content.decode()
    assert "Nothing was charged" in page.content.decode()
    ann.refresh_from_db()
    assert (ann.first_name, ann.company) == ("Ann", "Ann Ltd")
    assert Purchase.objects.filter(customer=ann).count() == purchases
    assert ann.payment_methods.count() == 1  # no card of the stranger's attached
    send_pending()
    assert "/portal/enter/" in sent_to("ann@example.com").body
    assert first.subscriptions


def test_a_signed_in_customer_orders_from_the_portal_without_changing_details(client, sm2, monthly):
    from customers.models import Customer
    from customers.portal import make_token
    from tests.conftest import sign_up

    sign_up(sm2, monthly, email="ann@example.com")
    ann = Customer.objects.get(client=sm2, email="ann@example.com")
    ann.first_name = "Ann"
    ann.save()
    client.get(f"/portal/enter/{make_token(ann)}/")
    form = client.get("/portal/order/").content.decode()
    assert "New order" in form and 'name="email"' not in form
    bad = client.post("/portal/order/", {"payment": "card"})
    assert bad.status_code == 400 and "Choose at least one product" in bad.content.decode()
    done = client.post(
        "/portal/order/",
        {
            "payment": "card",
            "card_number": "4242 4242 4242 4242",
            "expiry_month": 12,
            "expiry_year": 2099,
            f"qty_{monthly.pk}": 2,
        },
    )
    assert done.status_code == 302
    assert ann.subscriptions.count() == 2
    ann.refresh_from_db()
    assert ann.first_name == "Ann"
    assert "order" in client.get("/portal/").content.decode()
