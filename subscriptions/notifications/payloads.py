"""The payloads written to the outbox (docs/notifications.md)."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.urls import reverse

from commerce.models import Purchase, PurchaseItem

from ..models import Subscription, SubscriptionItem


def _date(value: Any) -> str | None:
    """RFC 3339, UTC, to the second (as the API writes dates)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@cache
def _portal_entry(slug: str) -> str:
    return f"{settings.SITE_URL}{reverse('portal-request-link', args=[slug])}"


def cancellation_url(sub: Subscription, item: SubscriptionItem) -> str:
    """Where the customer can stop the item from renewing: the client's portal
    (its sign-in page, which e-mails them a link; no credential is stored in a
    payload). Empty when there is nothing to stop."""
    return _portal_entry(sub.client.slug) if sub.customer_can_stop(item) else ""


def subscription_payload(sub: Subscription, items: list[SubscriptionItem]) -> dict[str, Any]:
    return {
        "Subscription": {
            "Id": sub.pk,
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
                "SubscriptionId": sub.pk,
                "SubscriptionItemRunningNo": item.running_no,
                "SubscriptionEventtypeId": event_code,
                "IntervalNo": pi.interval_no,
                "NextBillingDate": _date(sub.next_billing_date),
                "Status": sub.status,
                "ItemStatus": item.status,
                "RenewalType": sub.renewal_type,
                "CancellationUrl": cancellation_url(sub, item),
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
