"""Early renewal, refunds and chargebacks (docs/lifecycle.md)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commerce.gateway import CARD_DECLINES_AFTER_FIRST
from commerce.models import OutboxNotification, Purchase
from subscriptions import services
from subscriptions.errors import TransitionNotAllowed
from tests.conftest import (
    STAFF,
    T0,
    fresh,
    history_codes,
    item_statuses,
    notification_types,
    sign_up,
    subscribe,
)

FEB28 = datetime(2026, 2, 28, 12, tzinfo=UTC)


def test_early_renewal_charges_now_and_keeps_the_remaining_time(vendor, plan):
    sub = subscribe(vendor, plan)
    outcome = services.renew_early(subscription=sub, actor=STAFF, at=T0 + timedelta(days=5))
    sub = fresh(sub)
    assert (outcome.status, sub.status, sub.last_interval_no) == ("Success", "Active", 2)
    assert sub.next_billing_date == datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert history_codes(sub)[-2:] == ["renewalReq", "renewed"]
    assert notification_types(sub)[-1] == "PaidOrderNotification"


def test_early_renewal_with_reset_starts_a_new_interval_today(vendor, plan):
    sub = subscribe(vendor, plan)
    now = T0 + timedelta(days=5)
    services.renew_early(
        subscription=sub, actor=STAFF, dates=services.NextDates.FROM_PAYMENT, at=now
    )
    assert fresh(sub).next_billing_date == datetime(2026, 3, 5, 12, tzinfo=UTC)


def test_declined_early_renewal_changes_nothing(vendor, plan):
    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    outcome = services.renew_early(subscription=sub, actor=STAFF, at=T0 + timedelta(days=5))
    sub = fresh(sub)
    assert (outcome.status, sub.status, sub.last_interval_no) == ("Rejected", "Active", 1)
    assert sub.next_billing_date == FEB28


def test_early_renewal_of_a_deactivated_subscription_is_refused(vendor, plan):
    sub = subscribe(vendor, plan)
    services.deactivate_items(subscription=sub, running_nos=[1], actor=STAFF)
    with pytest.raises(TransitionNotAllowed, match="Active subscription"):
        services.renew_early(subscription=sub, actor=STAFF)


def test_full_refund_deactivates_the_subscription(vendor, plan):
    result = sign_up(vendor, plan)
    services.refund(purchase=result.purchase, actor=STAFF)
    sub = fresh(result.subscriptions[0])
    assert (sub.status, item_statuses(sub)) == ("Deactivated", ["Deactivated"])
    assert Purchase.objects.get(pk=result.purchase.pk).status == "refunded"
    assert notification_types(sub)[-1] == "RefundNotification"
    assert history_codes(sub)[-1] == "deactivate"


def test_partial_refund_leaves_the_subscription_unchanged(vendor, plan):
    result = sign_up(vendor, plan)
    services.refund(purchase=result.purchase, actor=STAFF, amount=Decimal("2.50"))
    sub = fresh(result.subscriptions[0])
    assert (sub.status, item_statuses(sub)) == ("Active", ["Active"])
    purchase = Purchase.objects.get(pk=result.purchase.pk)
    assert (purchase.status, purchase.refunded_amount) == ("partially_refunded", Decimal("2.50"))
    assert notification_types(sub)[-1] == "PartialRefundNotification"


def test_refund_of_more_than_was_paid_is_refused(vendor, plan):
    result = sign_up(vendor, plan)
    services.refund(purchase=result.purchase, actor=STAFF, amount=Decimal("8"))
    with pytest.raises(TransitionNotAllowed, match="2.00 EUR"):
        services.refund(purchase=result.purchase, actor=STAFF, amount=Decimal("3"))
    assert Purchase.objects.get(pk=result.purchase.pk).refunded_amount == Decimal("8.00")


def test_chargeback_deactivates_the_subscription(vendor, plan):
    result = sign_up(vendor, plan)
    services.chargeback(purchase=result.purchase, actor=STAFF)
    assert fresh(result.subscriptions[0]).status == "Deactivated"
    assert OutboxNotification.objects.filter(type="ChargebackNotification").count() == 1


def test_a_declined_purchase_cannot_be_refunded(vendor, plan):
    result = sign_up(vendor, plan, number="4000000000000002")
    with pytest.raises(TransitionNotAllowed, match="only paid purchases"):
        services.refund(purchase=result.purchase, actor=STAFF)
