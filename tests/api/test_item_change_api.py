"""The four item-change endpoints (docs/api.md): prices in the answer,
preview, all six AlignmentSettings combinations, 400 / 404 / 409."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commerce.gateway import CARD_DECLINES_AFTER_FIRST
from commerce.models import Purchase
from tests.api.conftest import Api
from tests.conftest import fresh, history_codes, subscribe
from tests.factories import ClientFactory, ProductFactory

MARCH_10 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MARCH_22 = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def products(sm2):
    sm2.vat_rate = Decimal("19")
    sm2.save()
    return (
        ProductFactory(client=sm2, name="Pro", price=Decimal("10.00")),
        ProductFactory(client=sm2, name="Premium", price=Decimal("25.00")),
    )


@pytest.fixture
def sub(sm2, products, clock):
    clock.move_to(MARCH_10, tick=False)
    created = subscribe(sm2, products[0], at=MARCH_10)  # paid to 10 April: 31 days
    clock.move_to(MARCH_22, tick=False)  # 19 days left
    return created


def upgrade(api: Api, sub, product, **alignment):
    return api.post(
        "updatesubscriptionitem",
        {
            "SubscriptionId": sub.display_id,
            "RunningNumber": 1,
            "ProductId": product.pk,
            "UpdateAction": "Upgrade",
            "AlignmentSettings": alignment,
        },
    )


# (preview, align, extend) -> charged now, next billing date, whether it applies.
# 15.00 more x 19 / 31 = 9.19; extending charges a full month of Premium, 25.00.
COMBINATIONS = [
    ((True, False, False), "0.00", "2026-04-10", False),
    ((True, True, False), "9.19", "2026-04-10", False),
    ((True, True, True), "25.00", "2026-04-10", False),
    ((False, False, False), "0.00", "2026-04-10", True),
    ((False, True, False), "9.19", "2026-04-10", True),
    ((False, True, True), "25.00", "2026-05-10", True),
]


@pytest.mark.parametrize(("flags", "charged", "next_date", "applies"), COMBINATIONS)
def test_every_alignment_combination(api, sub, products, flags, charged, next_date, applies):
    preview, align, extend = flags
    answer = upgrade(
        api,
        sub,
        products[1],
        GetCustomerPricePreviewOnly=preview,
        AlignToCurrentInterval=align,
        ExtendInterval=extend,
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["ResultMessage"] == "OK"
    assert body["AlignmentCustomerGrossPrice"] == charged
    assert body["NextBillingCustomerGrossPrice"] == "25.00"
    # 25.00 gross at 19 % VAT: net 21.01 (25 / 1.19 = 21.008...), VAT 3.99
    assert (body["NextBillingCustomerNetPrice"], body["NextBillingCustomerVatPrice"]) == (
        "21.01",
        "3.99",
    )
    assert body["PriceCurrencyId"] == "EUR"
    after = fresh(sub)
    assert after.next_billing_date.date().isoformat() == next_date
    assert (after.items.get().product == products[1]) is applies
    charges = Purchase.objects.filter(subscription=sub, category="alignment")
    assert charges.count() == (1 if applies and charged != "0.00" else 0)
    assert (body["PurchaseId"] is not None) is (applies and charged != "0.00")


def test_aligned_charge_splits_into_net_and_vat(api, sub, products):
    body = upgrade(api, sub, products[1], AlignToCurrentInterval=True).json()
    # 9.19 gross / 1.19 = 7.7226... -> net 7.72, VAT 1.47
    assert (
        body["AlignmentCustomerGrossPrice"],
        body["AlignmentCustomerNetPrice"],
        body["AlignmentCustomerVatPrice"],
    ) == ("9.19", "7.72", "1.47")


def test_extend_without_align_is_a_400(api, sub, products):
    answer = upgrade(api, sub, products[1], ExtendInterval=True)
    assert answer.status_code == 400
    assert "AlignmentSettings.ExtendInterval" in answer.json()["Errors"]


def test_add_item_with_a_net_customer_price(api, sub, sm2):
    addon = ProductFactory(client=sm2, name="Add-on", price=Decimal("99.00"))
    answer = api.post(
        "addsubscriptionitem",
        {
            "SubscriptionId": sub.display_id,
            "ProductId": addon.pk,
            "Quantity": 2,
            "CustomerPrice": {"CurrencyId": "EUR", "IsGross": False, "Value": "5.00"},
            "AlignmentSettings": {"AlignToCurrentInterval": True},
        },
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    # net 5.00 + 19 % = 5.95 gross a unit; 2 units = 11.90; x 19 / 31 = 7.2935... -> 7.29
    assert body["NextBillingCustomerGrossPrice"] == "11.90"
    assert body["AlignmentCustomerGrossPrice"] == "7.29"
    assert body["RunningNumber"] == 2
    items = body["Subscription"]["Items"]
    assert [(i["RunningNo"], i["Quantity"]) for i in items] == [(1, 1), (2, 2)]
    assert history_codes(sub)[-1] == "add"


def test_increase_quantity_and_update_price(api, sub):
    answer = api.post(
        "increasesubscriptionitemquantity",
        {"SubscriptionId": sub.display_id, "RunningNumber": 1, "Quantity": 2},
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["NextBillingCustomerGrossPrice"] == "30.00"  # 3 x 10.00
    answer = api.post(
        "updatesubscriptionitemprice",
        {
            "SubscriptionId": sub.display_id,
            "RunningNumber": 1,
            "CustomerPrice": {"CurrencyId": "eur", "IsGross": True, "Value": "8.50"},
        },
    )
    assert answer.status_code == 200, answer.json()
    item = fresh(sub).items.get()
    assert (item.quantity, item.unit_price, item.version) == (3, Decimal("8.50"), 3)
    assert history_codes(sub)[-2:] == ["incqty", "update"]


def test_bad_input_is_a_400_with_the_field_and_changes_nothing(api, sub, sm2, products):
    weekly = ProductFactory(client=sm2, interval_months=0, interval_days=7)
    cases = [
        (
            "updatesubscriptionitemprice",
            {"RunningNumber": 1, "CustomerPrice": {"CurrencyId": "EUR", "Value": "-1"}},
            "CustomerPrice.Value",
        ),
        ("increasesubscriptionitemquantity", {"RunningNumber": 1, "Quantity": 0}, "Quantity"),
        ("addsubscriptionitem", {}, "ProductId"),
        (
            "updatesubscriptionitem",
            {
                "RunningNumber": 1,
                "ProductId": products[0].pk,
                "Quantity": 1,
                "CustomerPrice": {"CurrencyId": "EUR", "Value": "1.00"},
                "AlignmentSettings": {"AlignToCurrentInterval": True},
            },
            "AlignmentSettings.AlignToCurrentInterval",  # 9.00 less: a credit
        ),
    ]
    for endpoint, body, field in cases:
        answer = api.post(endpoint, {"SubscriptionId": sub.display_id, **body})
        assert answer.status_code == 400, (endpoint, answer.json())
        assert field in answer.json()["Errors"], (endpoint, answer.json())
    # An unknown product is a 404; a price in another currency than the
    # subscription's conflicts with it: 409. Both name the field.
    for endpoint, body, field, status in [
        ("updatesubscriptionitem", {"RunningNumber": 1, "ProductId": weekly.pk}, "ProductId", 409),
        ("addsubscriptionitem", {"ProductId": 10**12}, "ProductId", 404),
        (
            "updatesubscriptionitemprice",
            {"RunningNumber": 1, "CustomerPrice": {"CurrencyId": "USD", "Value": "1"}},
            "CustomerPrice.CurrencyId",
            409,
        ),
    ]:
        answer = api.post(endpoint, {"SubscriptionId": sub.display_id, **body})
        assert answer.status_code == status, (endpoint, answer.json())
        assert field in answer.json()["Errors"], (endpoint, answer.json())
    assert fresh(sub).row_version == sub.row_version
    assert not Purchase.objects.filter(subscription=sub, category="alignment").exists()


def test_another_clients_subscription_item_or_product(api, sub, products):
    other = ClientFactory()
    theirs = subscribe(other, ProductFactory(client=other), email="x@example.com")
    answer = api.post(
        "increasesubscriptionitemquantity",
        {"SubscriptionId": theirs.display_id, "RunningNumber": 1, "Quantity": 1},
    )
    assert answer.status_code == 404
    answer = api.post(
        "increasesubscriptionitemquantity",
        {"SubscriptionId": sub.display_id, "RunningNumber": 9, "Quantity": 1},
    )
    assert answer.status_code == 404
    their_product = ProductFactory(client=other)
    answer = api.post(
        "addsubscriptionitem", {"SubscriptionId": sub.display_id, "ProductId": their_product.pk}
    )
    assert answer.status_code == 404  # another client's product: as if it did not exist
    assert fresh(theirs).items.get().quantity == 1


def test_declined_charge_is_a_409_and_changes_nothing(api, sm2, products, clock):
    clock.move_to(MARCH_10, tick=False)
    sub = subscribe(sm2, products[0], number=CARD_DECLINES_AFTER_FIRST, at=MARCH_10)
    clock.move_to(MARCH_22, tick=False)
    answer = upgrade(api, sub, products[1], AlignToCurrentInterval=True)
    assert answer.status_code == 409
    assert "declined" in answer.json()["ResultMessage"]
    assert fresh(sub).items.get().product == products[0]


def test_a_deactivated_subscription_is_a_409(api, sub, products):
    api.post("deactivatesubscriptionitems", {"SubscriptionId": sub.display_id, "Items": [1]})
    answer = upgrade(api, sub, products[1])
    assert answer.status_code == 409
    assert "only while the subscription is Active" in answer.json()["ResultMessage"]


def test_idempotency_key_charges_once(api, sub, products):
    first = api.post(
        "increasesubscriptionitemquantity",
        {
            "SubscriptionId": sub.display_id,
            "RunningNumber": 1,
            "Quantity": 1,
            "AlignmentSettings": {"AlignToCurrentInterval": True},
        },
        key="qty-1",
    )
    again = api.post(
        "increasesubscriptionitemquantity",
        {
            "SubscriptionId": sub.display_id,
            "RunningNumber": 1,
            "Quantity": 1,
            "AlignmentSettings": {"AlignToCurrentInterval": True},
        },
        key="qty-1",
    )
    assert first.json() == again.json()
    assert fresh(sub).items.get().quantity == 2
    assert Purchase.objects.filter(subscription=sub, category="alignment").count() == 1
