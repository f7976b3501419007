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
