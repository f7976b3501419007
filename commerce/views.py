"""Purchase search and the Purchase viewer."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from customers.models import CustomerEmail
from subscriptions.models import Subscription
from subscriptions.views import billing_context, history_context

from .access import HtmxHttpRequest, client_of, membership_of, staff_required
from .filters import PurchaseFilter
from .models import Client, OutboxNotification, Purchase, WebhookDelivery
from .paging import paginate
from .tables import PurchaseTable

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
def home(request: HtmxHttpRequest) -> HttpResponse:
    """Staff go to purchase search; everyone else sees what runs here."""
    if membership_of(request) is not None:
        return redirect("purchases")
    return render(request, "home.html", {"clients": Client.objects.order_by("name")})


def _purchase_filter(request: HtmxHttpRequest) -> PurchaseFilter:
    client = client_of(request)
    qs = client.purchases.select_related("customer")
    return PurchaseFilter(request.GET, queryset=qs, client=client)


@require_GET
@staff_required()
def purchase_search(request: HtmxHttpRequest) -> HttpResponse:
    filterset = _purchase_filter(request)
    table = PurchaseTable(filterset.qs)
    paginate(request, table)
    template = "purchases/search.html" + ("#purchase-results" if request.htmx else "")
    return render(request, template, {"filter": filterset, "table": table})


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@staff_required()
def purchase_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """The filtered set as CSV, streamed in chunks so any size fits in memory."""
    filterset = _purchase_filter(request)
    rows = filterset.qs.order_by("-created_at", "-id").values_list(
        "id",
        "created_at",
        "customer__email",
        "category",
        "status",
        "total",
        "currency",
        "subscription_id",
    )
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(
            [
                "PurchaseId",
                "Created",
                "CustomerEmail",
                "Category",
                "Status",
                "Total",
                "Currency",
                "SubscriptionId",
            ]
        )
        for pid, created, email, category, status, total, currency, sub_id in rows.iterator(
            chunk_size=2000
        ):
            yield writer.writerow(
                [
                    pid,
                    created.isoformat(),
                    email,
                    category,
                    status,
                    total,
                    currency,
                    f"S{sub_id}" if sub_id else "",
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="purchases.csv"'
    return response


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
    context: dict[str, Any] = {"purchase": purchase, "subs": subs, "tab": tab, "tabs": TABS}
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
        return {"related": related.select_related("payment_method").order_by("-created_at")[:50]}
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
