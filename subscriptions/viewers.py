"""The Purchase viewer and the Customer viewer: a purchase or a customer
with the subscriptions it belongs to (tabs: overview, items, customer,
Subscription Billing, payments, e-mails, notifications, history)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from commerce.access import HtmxHttpRequest, client_of, staff_required
from commerce.models import OutboxNotification, Purchase, WebhookDelivery
from commerce.paging import paginate
from commerce.tables import PurchaseTable
from customers.models import Customer, CustomerEmail

from .models import Subscription
from .tables import SubscriptionTable, listed
from .views import billing_context, history_context

TABS = [
    ("overview", "Overview"),
    ("items", "Items"),
    ("customer", "Customer"),
    ("billing", "Subscription Billing"),
    ("payments", "Payments"),
    ("emails", "E-mails"),
    ("notifications", "Notifications"),
    ("history", "History"),
]


@require_GET
@staff_required()
def purchase_viewer(request: HtmxHttpRequest, pk: int, tab: str = "overview") -> HttpResponse:
    """Header, action bar and one tab; with htmx only the tab is sent."""
    if tab not in dict(TABS):
        raise Http404("No such tab.")
    purchase = get_object_or_404(
        Purchase.objects.select_related("customer", "payment_method", "subscription"),
        pk=pk,
        client=client_of(request),
    )
    subs = subscriptions_of(purchase)
    context: dict[str, Any] = {
        "purchase": purchase,
        "subs": subs,
        "tab": tab,
        "tabs": TABS,
        "refundable": purchase.status in Purchase.REFUNDABLE,
        "invoiced": purchase.status in Purchase.INVOICED,
    }
    context.update(_tab_context(request, tab, purchase, subs))
    context["tab_template"] = f"purchases/tabs/{tab}.html"
    if request.htmx:
        return render(request, "purchases/tab_panel.html", context)
    return render(request, "purchases/viewer.html", context)


def subscriptions_of(purchase: Purchase) -> list[Subscription]:
    """The subscriptions a purchase created or renewed (two indexed lookups;
    an OR across the join would scan the whole table)."""
    ids = set(
        purchase.items.exclude(subscription_item=None).values_list(
            "subscription_item__subscription_id", flat=True
        )
    )
    if purchase.subscription_id:
        ids.add(purchase.subscription_id)
    return list(
        Subscription.objects.filter(pk__in=ids)
        .select_related("payment_method", "customer")
        .order_by("id")
    )


def _tab_context(
    request: HtmxHttpRequest, tab: str, purchase: Purchase, subs: list[Subscription]
) -> dict[str, Any]:
    if tab == "items":
        return {"lines": purchase.items.select_related("product", "subscription_item")}
    if tab == "billing":
        chosen = request.GET.get("subscription", "")
        sub = next((s for s in subs if str(s.pk) == chosen), subs[0] if subs else None)
        return billing_context(request, purchase, sub)
    if tab == "payments":
        related = Purchase.objects.filter(subscription__in=subs).exclude(pk=purchase.pk)
        return {
            "related": related.select_related("payment_method").order_by("-created_at")[:50],
            "documents": purchase.documents.order_by("kind", "number"),
        }
    if tab == "notifications":
        notes = OutboxNotification.objects.filter(Q(purchase=purchase) | Q(subscription__in=subs))
        deliveries = WebhookDelivery.objects.filter(notification__in=notes).select_related(
            "notification", "endpoint"
        )
        return {
            "notifications": notes.order_by("-created_at")[:100],
            "deliveries": deliveries.order_by("-created_at", "-id")[:100],
        }
    if tab == "emails":
        emails = CustomerEmail.objects.filter(Q(purchase=purchase) | Q(subscription__in=subs))
        return {"emails": emails.order_by("-created_at", "-id")[:100]}
    if tab == "history":
        return history_context(purchase, subs)
    return {}


@require_GET
@staff_required()
def customer_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk, client=client_of(request))
    purchases = PurchaseTable(customer.purchases.select_related("customer"), prefix="p-")
    subscriptions = SubscriptionTable(listed(customer.subscriptions.all()), prefix="s-")
    paginate(request, purchases, 10)
    paginate(request, subscriptions, 10)
    return render(
        request,
        "customers/detail.html",
        {"customer": customer, "purchases": purchases, "subscriptions": subscriptions},
    )
