from decimal import Decimal

import pytest

from commerce.gateway import CARD_DECLINED, CARD_TRANSIENT_ERROR
from commerce.models import OutboxNotification, Purchase
from customers.models import Customer
from subscriptions.errors import InvalidInput
from subscriptions.models import HistoryEntry, Subscription
from tests.conftest import T0, history_codes, item_statuses, notification_types, sign_up, subscribe
from tests.factories import ClientFactory, ProductFactory


def test_sm2_signup_with_auto_renewal_confirmed_is_active_automatic(sm2, monthly):
    sub = subscribe(sm2, monthly, auto=True)
    assert (sub.status, item_statuses(sub), sub.renewal_type) == ("Active", ["Active"], "Automatic")
    assert sub.last_interval_no == 1
    assert sub.next_billing_date.date().isoformat() == "2026-02-28"
    assert history_codes(sub) == ["new"]


def test_sm2_signup_with_box_unticked_is_active_manual_on_the_same_product(sm2, monthly):
    sub = subscribe(sm2, monthly, auto=False)
    assert (sub.status, item_statuses(sub), sub.renewal_type) == ("Active", ["Active"], "Manual")


def test_sm1_automatic_product_signs_up_active_without_renewal_type(sm1):
    product = ProductFactory(client=sm1, renewal_mode="automatic")
    sub = subscribe(sm1, product)
    assert (sub.status, item_statuses(sub), sub.renewal_type) == ("Active", ["Active"], None)


def test_sm1_manual_product_signs_up_deactivated_awaiting_reinstate(sm1):
    product = ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    sub = subscribe(sm1, product)
    assert (sub.status, item_statuses(sub)) == ("Deactivated", ["AwaitingReinstate"])


def test_paid_signup_queues_paid_order_notification_with_recurring_billing(vendor, plan):
    result = sign_up(vendor, plan)
    note = OutboxNotification.objects.get(purchase=result.purchase)
    assert note.type == "PaidOrderNotification"
    billing = note.payload["Purchase"]["Items"][0]["RecurringBilling"]
    assert billing["SubscriptionId"] == result.subscriptions[0].pk  # a JSON integer
    assert billing["IntervalNo"] == 1 and billing["Status"] == "Active"
    assert result.purchase.status == "paid" and result.purchase.total == Decimal("10.00")


def test_offline_signup_creates_new_subscription_awaiting_payment(vendor, plan):
    result = sign_up(vendor, plan, invoice=True)
    sub = result.subscriptions[0]
    assert (sub.status, item_statuses(sub), sub.last_interval_no) == ("New", ["Active"], 0)
    assert result.transaction_status == "Pending"
    assert notification_types(sub) == ["NewOfflinePaymentPurchaseNotification"]


def test_declined_card_creates_nothing_but_a_declined_purchase(vendor, plan):
    result = sign_up(vendor, plan, number=CARD_DECLINED)
    assert result.transaction_status == "Rejected"
    assert not Subscription.objects.exists()
    assert Purchase.objects.get().status == "declined"
    assert OutboxNotification.objects.get().type == "OnlinePaymentDeclined"
    assert "declined" in result.message.lower()


def test_transient_gateway_error_is_reported_as_error_and_creates_no_subscription(vendor, plan):
    result = sign_up(vendor, plan, number=CARD_TRANSIENT_ERROR)
    assert result.transaction_status == "Error"
    assert not Subscription.objects.exists()
    assert Purchase.objects.get().status == "failed"


def test_items_with_the_same_interval_share_one_subscription(sm2, monthly):
    addon = ProductFactory(client=sm2, name="Add-on", price=Decimal("2.50"))
    yearly = ProductFactory(
        client=sm2, name="Yearly", interval_months=12, initial_interval_months=12
    )
    result = sign_up(sm2, monthly, addon, yearly)
    assert len(result.subscriptions) == 2
    monthly_sub = next(s for s in result.subscriptions if s.interval_months == 1)
    assert list(monthly_sub.items.values_list("running_no", "product__name")) == [
        (1, "Pro monthly"),
        (2, "Add-on"),
    ]
    assert result.purchase.total == Decimal("22.50")
    assert HistoryEntry.objects.filter(event_code="new").count() == 2


def test_customer_is_unique_per_client_by_email(sm2, monthly):
    other = ClientFactory()
    other_product = ProductFactory(client=other)
    sign_up(sm2, monthly, email="Same@Example.com")
    sign_up(sm2, monthly, email="same@example.com")
    sign_up(other, other_product, email="same@example.com")
    assert Customer.objects.filter(client=sm2).count() == 1
    assert Customer.objects.count() == 2


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"email": "not-an-email"}, "Email"),
        ({"number": "12ab"}, "CardNumber"),
        ({"quantity": 0}, "Quantity"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_created(sm2, monthly, kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        sign_up(sm2, monthly, **kwargs)
    assert field in exc.value.fields
    assert not Purchase.objects.exists() and not Subscription.objects.exists()


def test_expired_card_is_refused(sm2, monthly):
    from subscriptions import services

    with pytest.raises(InvalidInput) as exc:
        services.sign_up(
            client=sm2,
            customer=services.CustomerInput(email="a@b.co"),
            lines=[services.Line(monthly)],
            actor=services.SYSTEM,
            at=T0,
            payment=services.CardInput("4242424242424242", 12, 2025),
        )
    assert exc.value.fields == {"ExpiryYear": "The card has expired."}


def test_another_clients_product_and_mixed_currencies_are_refused(sm2, monthly):
    foreign = ProductFactory()
    dollars = ProductFactory(client=sm2, currency="USD")
    with pytest.raises(InvalidInput) as exc:
        sign_up(sm2, monthly, foreign)
    assert "ProductId" in exc.value.fields
    with pytest.raises(InvalidInput) as exc:
        sign_up(sm2, monthly, dollars)
    assert "same currency" in exc.value.fields["Items"]
