"""The Subscription object of SPEC 6.4, as the API returns it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from commerce.models import PurchaseItem
from commerce.money import quantize

from ..models import Subscription, SubscriptionItem


def rfc3339(value: datetime | None) -> str | None:
    """UTC, second precision, ``Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def prices(gross: Decimal, currency: str, vat_rate: Decimal) -> dict[str, str]:
    """Stored prices are what the customer pays (gross); the client's one VAT
    rate splits them (SPEC 6.3 decision), rounded half-up per currency."""
    net = quantize(gross / (1 + vat_rate / 100), currency)
    return {"Gross": str(quantize(gross, currency)), "Net": str(net), "Vat": str(gross - net)}


def subscription_object(sub: Subscription) -> dict[str, Any]:
    client = sub.client
    items = list(sub.items.select_related("product").order_by("running_no"))
    lines: dict[int, list[dict[str, Any]]] = {item.pk: [] for item in items}
    for item_id, purchase_id, running_no, interval_no in (
        PurchaseItem.objects.filter(subscription_item__in=items)
        .order_by("purchase_id", "running_no")
        .values_list("subscription_item_id", "purchase_id", "running_no", "interval_no")
    ):
        lines[item_id].append(
            {
                "PurchaseId": purchase_id,
                "PurchaseItemRunningNo": running_no,
                "SubscriptionIntervalNo": interval_no,
            }
        )
    reminder_days = min(
        (i.product.reminder_days for i in items if i.product.reminder_days is not None),
        default=client.reminder_days,
    )
    return {
        "Id": sub.display_id,
        "SubscriptionStatus": sub.status,
        "RenewalType": sub.renewal_type,
        "CustomerId": sub.customer_id,
        "CustomerReferenceId": sub.customer.reference_id,
        "CustomerCurrencyId": sub.currency,
        "StartDate": rfc3339(sub.start_date),
        "EndDate": rfc3339(sub.end_date),
        "NextBillingDate": rfc3339(sub.next_billing_date),
        "NextBillingDateReminder": rfc3339(sub.next_billing_date - timedelta(days=reminder_days)),
        "GracePeriodDays": client.grace_period_days,
        "IntervalMonthCount": sub.interval_months,
        "IntervalDayCount": sub.interval_days,
        "StartIntervalMonthCount": sub.start_interval_months,
        "StartIntervalDayCount": sub.start_interval_days,
        "LastIntervalNo": sub.last_interval_no,
        "Items": [_item(item, sub, lines[item.pk]) for item in items],
    }


def _item(item: SubscriptionItem, sub: Subscription, lines: list[dict[str, Any]]) -> dict[str, Any]:
    price = prices(item.unit_price * item.quantity, sub.currency, sub.client.vat_rate)
    return {
        "RunningNo": item.running_no,
        "Version": item.version,
        "IsCurrent": True,  # earlier versions are not kept apart; the row is the current one
        "Status": item.status,
        "ProductId": item.product_id,
        "ProductName": item.product.name,
        "Quantity": item.quantity,
        "RecurrenceCount": item.recurrence_count,
        "LastIntervalNo": item.last_interval_no,
        "StartDate": rfc3339(item.start_date),
        "EndDate": rfc3339(item.end_date),
        "DeactivationDate": rfc3339(item.deactivation_date),
        "NextBillingCustomerGrossPrice": price["Gross"],
        "NextBillingCustomerNetPrice": price["Net"],
        "NextBillingCustomerVatPrice": price["Vat"],
        "NextBillingCurrencyId": sub.currency,
        "SubscriptionPurchaseItems": lines,
    }
