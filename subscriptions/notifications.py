"""Notification types (SPEC 4, 7) and the payloads written to the outbox."""

from __future__ import annotations

from typing import Any

from commerce import webhooks
from commerce.models import OutboxNotification, Purchase, PurchaseItem
from customers.emails import queue_for_notification

from .models import Subscription, SubscriptionItem

PAID_ORDER = "PaidOrderNotification"
NEW_OFFLINE_PAYMENT = "NewOfflinePaymentPurchaseNotification"
PAYMENT_DECLINED = "OnlinePaymentDeclined"
BILLING_CANCELED = "RecurringBillingCanceledNotification"
BILLING_REINSTATED = "RecurringBillingReinstatedNotification"
RENEWAL_TYPE_CHANGED = "SubscriptionRenewalTypeChangedNotification"
BILLING_DATE_EXTENDED = "SubscriptionBillingDateExtendedNotification"
ON_GRACE = "RecurringBillingOnGraceNotification"
ON_HOLD = "RecurringBillingOnHoldNotification"
REFUND = "RefundNotification"
PARTIAL_REFUND = "PartialRefundNotification"
CHARGEBACK = "ChargebackNotification"
REMINDER_CHARGE = "SubscriptionReminderChargeNotification"
REMINDER_OFFLINE = "SubscriptionReminderOfflinePayNotification"
REMINDER_CARD_EXPIRING = "SubscriptionReminderPayOptExpNotification"
TYPES = [
    PAID_ORDER,
    NEW_OFFLINE_PAYMENT,
    PAYMENT_DECLINED,
    BILLING_CANCELED,
    BILLING_REINSTATED,
    RENEWAL_TYPE_CHANGED,
    BILLING_DATE_EXTENDED,
    ON_GRACE,
    ON_HOLD,
    REFUND,
    PARTIAL_REFUND,
    CHARGEBACK,
    REMINDER_CHARGE,
    REMINDER_OFFLINE,
    REMINDER_CARD_EXPIRING,
]


def _date(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def subscription_payload(sub: Subscription, items: list[SubscriptionItem]) -> dict[str, Any]:
    return {
        "Subscription": {
            "Id": sub.display_id,
            "CustomerId": sub.customer_id,
            "Status": sub.status,
            "RenewalType": sub.renewal_type,
            "NextBillingDate": _date(sub.next_billing_date),
            "LastIntervalNo": sub.last_interval_no,
            "Items": [
                {"RunningNo": i.running_no, "Status": i.status, "ProductId": i.product_id}
                for i in items
            ],
        }
    }


def purchase_payload(
    purchase: Purchase,
    subs: list[tuple[Subscription, list[SubscriptionItem]]],
    event_code: str,
    lines: list[PurchaseItem] | None = None,
) -> dict[str, Any]:
    """A purchase with, per item, its RecurringBilling object (SPEC 7)."""
    by_item = {item.pk: (sub, item) for sub, items in subs for item in items}
    out = []
    for pi in purchase.items.all() if lines is None else lines:
        line: dict[str, Any] = {
            "RunningNo": pi.running_no,
            "ProductId": pi.product_id,
            "Quantity": pi.quantity,
            "UnitPrice": str(pi.unit_price),
            "Amount": str(pi.amount),
        }
        if pi.subscription_item_id in by_item:
            sub, item = by_item[pi.subscription_item_id]
            line["RecurringBilling"] = {
                "SubscriptionId": sub.display_id,
                "SubscriptionItemRunningNo": item.running_no,
                "SubscriptionEventtypeId": event_code,
                "IntervalNo": pi.interval_no,
                "NextBillingDate": _date(sub.next_billing_date),
                "Status": sub.status,
                "ItemStatus": item.status,
                "RenewalType": sub.renewal_type,
                "CancellationUrl": "",
            }
        out.append(line)
    return {
        "Purchase": {
            "Id": purchase.pk,
            "CustomerId": purchase.customer_id,
            "Category": purchase.category,
            "Status": purchase.status,
            "Total": str(purchase.total),
            "CurrencyId": purchase.currency,
            "Items": out,
        }
    }


def queue(
    purchase: Purchase, notification: str, payload: dict[str, Any], *, generate_mail: bool = True
) -> OutboxNotification:
    """Outbox row (and customer e-mail) for a purchase-level event
    (sign-up, declines, refunds)."""
    at = purchase.paid_at or purchase.created_at
    row = OutboxNotification.objects.create(
        client_id=purchase.client_id,
        type=notification,
        payload=payload,
        subscription_id=purchase.subscription_id,
        purchase=purchase,
        generate_mail=generate_mail,
        created_at=at,
    )
    webhooks.deliver_after_commit()
    if generate_mail:
        queue_for_notification(
            notification, subscription=purchase.subscription, purchase=purchase, at=at
        )
    return row
