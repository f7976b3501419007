"""The public checkout (docs/back-office.md): SM 2.0 Confirm auto-renewal, SM 1.0 product
variations, declined cards, invalid input."""

from decimal import Decimal

from commerce.models import Purchase
from subscriptions.models import Subscription
from tests.factories import ClientFactory, ProductFactory


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


def error_under(html, field_id):
    """The error list the page shows right under the field ``field_id``."""
    start = html.index(f'id="{field_id}"')
    block = html[start : html.index("</div>", start)]
    return block[block.index('class="errorlist"') :] if 'class="errorlist"' in block else ""


def test_invalid_input_is_shown_per_field(client, sm2, monthly):
    page = buy(client, sm2, monthly, card_number="", expiry_month="", expiry_year="", email="nope")
    html = page.content.decode()
    assert page.status_code == 400
    assert "Enter the card number." in error_under(html, "id_card_number")
    assert "Enter the month the card expires (1–12)." in error_under(html, "id_expiry_month")
    assert "Enter the year the card expires." in error_under(html, "id_expiry_year")
    assert "Enter a valid email address." in error_under(html, "id_email")
    assert error_under(html, "id_first_name") == ""
    assert not Purchase.objects.exists()
    page = buy(client, sm2, monthly, **{f"qty_{monthly.pk}": 0})
    assert "Choose at least one product" in page.content.decode()
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


def test_the_checkout_shows_the_order_total_before_buying(client, sm2, monthly):
    """Prices include VAT (here 19 %); the summary follows the quantities."""
    sm2.vat_rate = Decimal("19.00")
    sm2.save()
    team = ProductFactory(client=sm2, name="Team plan", price=Decimal("240.00"))
    empty = client.get(f"/checkout/{sm2.slug}/summary/").content.decode()
    assert "Choose a quantity of 1 or more" in empty
    html = client.get(
        f"/checkout/{sm2.slug}/summary/", {f"qty_{monthly.pk}": 2, f"qty_{team.pk}": 1}
    ).content.decode()
    # 2 x 10.00 + 240.00 = 260.00 gross; net 260.00 / 1.19 = 218.49; VAT 41.51.
    assert "Team plan" in html and "20.00 EUR" in html
    assert "218.49 EUR" in html and "41.51 EUR" in html
    assert 'data-testid="order-total">260.00 EUR<' in html
    # Nonsense quantities are left out, never a server error.
    bad = client.get(f"/checkout/{sm2.slug}/summary/", {f"qty_{monthly.pk}": "-3x"})
    assert bad.status_code == 200 and "Choose a quantity" in bad.content.decode()
    # A form sent back with errors keeps its summary.
    page = buy(client, sm2, monthly, card_number="", **{f"qty_{team.pk}": 1})
    assert 'data-testid="order-total">250.00 EUR<' in page.content.decode()


def test_the_checkout_carries_the_clients_brand_and_test_cards_only_in_a_sandbox(
    client, sm2, monthly
):
    html = client.get(f"/checkout/{sm2.slug}/").content.decode()
    assert f'<strong class="portal-brand">{sm2.name}</strong>' in html
    assert "Commerce Assistant" not in html
    assert "4242 4242 4242 4242" not in html
    sandbox = ClientFactory(is_sandbox=True)
    ProductFactory(client=sandbox)
    assert "4242 4242 4242 4242" in client.get(f"/checkout/{sandbox.slug}/").content.decode()
