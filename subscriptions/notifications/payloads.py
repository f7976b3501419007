"""The payloads written to the outbox (docs/notifications.md)."""

from __future__ import annotations

from typing import Any

from commerce.models import Purchase, PurchaseItem

from ..models import Subscription, SubscriptionItem


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
    """A purchase with, per item, its RecurringBilling object (docs/notifications.md)."""
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
