"""The Subscription object of docs/api.md, as the API returns it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from commerce.models import Document, DocumentKind, PurchaseItem
from commerce.money import split_vat

from ..models import Subscription, SubscriptionItem


def rfc3339(value: datetime | None) -> str | None:
    """UTC, second precision, ``Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


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
    return {
        "Id": sub.pk,
        "SubscriptionStatus": sub.status,
        "RenewalType": sub.renewal_type,
        "CustomerId": sub.customer_id,
        "CustomerReferenceId": sub.customer.reference_id,
        "CustomerCurrencyId": sub.currency,
        "StartDate": rfc3339(sub.start_date),
        "EndDate": rfc3339(sub.end_date),
        "NextBillingDate": rfc3339(sub.next_billing_date),
        "NextBillingDateReminder": rfc3339(sub.reminder_date(items)),
        "GracePeriodDays": client.grace_period_days,
        "IntervalMonthCount": sub.interval_months,
        "IntervalDayCount": sub.interval_days,
        "StartIntervalMonthCount": sub.start_interval_months,
        "StartIntervalDayCount": sub.start_interval_days,
        "LastIntervalNo": sub.last_interval_no,
        "Items": [_item(item, sub, lines[item.pk]) for item in items],
    }


def _item(item: SubscriptionItem, sub: Subscription, lines: list[dict[str, Any]]) -> dict[str, Any]:
    gross, net, vat = split_vat(item.line_amount, sub.currency, sub.client.vat_rate)
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
        "NextBillingCustomerGrossPrice": str(gross),
        "NextBillingCustomerNetPrice": str(net),
        "NextBillingCustomerVatPrice": str(vat),
        "NextBillingCurrencyId": sub.currency,
        "SubscriptionPurchaseItems": lines,
    }


def document_object(doc: Document) -> dict[str, Any]:
    """An invoice or credit note (docs/documents.md); the PDF at ``PdfUrl``."""
    return {
        "DocumentId": doc.pk,
        "Kind": "Invoice" if doc.kind == DocumentKind.INVOICE else "CreditNote",
        "Number": doc.display_number,
        "PurchaseId": doc.purchase_id,
        "IssuedAt": rfc3339(doc.issued_at),
        "Currency": doc.currency,
        "Net": str(doc.net),
        "Vat": str(doc.vat),
        "VatRate": str(doc.vat_rate),
        "Total": str(doc.total),
        "Reason": doc.reason or None,
        "PdfUrl": reverse("api-getdocumentpdf") + f"?documentId={doc.pk}",
    }
