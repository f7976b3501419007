"""Home and purchase search (the Purchase viewer is ``subscriptions.viewers``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from . import csvsafe
from .access import HtmxHttpRequest, client_of, membership_of, staff_required
from .filters import PurchaseFilter
from .models import Client
from .paging import paginate
from .tables import PurchaseTable


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
                csvsafe.row(
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
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="purchases.csv"'
    return response
