"""Refunds from the Purchase viewer and the documents of a purchase
(docs/documents.md): the Refund page previews what is given back and what
happens to the subscription, then refunds through ``services.refund``."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce import documents
from commerce.access import HtmxHttpRequest, client_of, require_role, staff_required
from commerce.models import Document, Purchase, RefundReason

from . import services
from .errors import DomainError
from .views import staff_actor


class RefundForm(forms.Form):
    HOW = [
        ("full", "Everything that is left"),
        ("amount", "An amount"),
        ("lines", "Lines and quantities"),
    ]
    how = forms.ChoiceField(choices=HOW, widget=forms.RadioSelect, initial="full", label="Refund")
    amount = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )
    reason = forms.ChoiceField(choices=RefundReason.choices, initial=RefundReason.REQUESTED)
    note = forms.CharField(
        required=False, max_length=500, label="Note (on the credit note)", strip=True
    )
    key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args: Any, purchase: Purchase, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.purchase = purchase
        self.line_rows = []
        for item, left in services.lines_left(purchase):
            name = f"qty_{item.running_no}"
            self.fields[name] = forms.IntegerField(
                required=False, min_value=0, max_value=left, initial=0, label=item.product.name
            )
            self.line_rows.append((item, left, self[name]))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("how") == "amount" and not data.get("amount"):
            self.add_error("amount", "Enter the amount to refund.")
        if data.get("how") == "lines" and not self.quantities():
            self.add_error(None, "Enter a quantity of 1 or more for a line to refund.")
        return data

    def quantities(self) -> dict[int, int]:
        return {
            item.running_no: self.cleaned_data[field.name]
            for item, _left, field in self.line_rows
            if self.cleaned_data.get(field.name)
        }

    def choice(self) -> dict[str, Any]:
        how = self.cleaned_data["how"]
        if how == "amount":
            return {"amount": self.cleaned_data["amount"]}
        if how == "lines":
            return {"quantities": self.quantities()}
        return {}


@require_http_methods(["GET", "POST"])
@staff_required()
def refund(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the form. POST "preview": what is refunded (net, VAT, total) and
    what happens to the subscription. POST "confirm": refund it."""
    purchase = get_object_or_404(
        Purchase.objects.select_related("client", "customer"), pk=pk, client=client_of(request)
    )
    require_role(request, "support")
    key = request.POST.get("key", "")
    done = None
    if key and "\x00" not in key and len(key) <= 100:  # else the form says what is wrong
        done = Document.objects.filter(purchase=purchase, refund_key=key).first()
    if done is not None:  # the same form sent again (a second click): refunded once
        messages.success(
            request, f"Refunded {done.total} {done.currency}; credit note {done.display_number}."
        )
        return redirect("purchase-tab", pk=purchase.pk, tab="payments")
    if purchase.status not in Purchase.REFUNDABLE:
        messages.error(
            request,
            f"Purchase {purchase.pk} is {purchase.get_status_display().lower()}: "
            "only paid purchases can be refunded.",
        )
        return redirect("purchase-tab", pk=purchase.pk, tab="payments")
    data = request.POST if request.method == "POST" else None
    form = RefundForm(data, purchase=purchase, initial={"key": uuid.uuid4().hex})
    quote = None
    if form.is_bound and form.is_valid():
        try:
            quote = services.quote_refund(purchase, **form.choice())
            if request.POST.get("step") == "confirm" and request.POST.get("previewed") == str(
                quote.amount
            ):
                note = services.refund(
                    purchase=purchase,
                    actor=staff_actor(request),
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data["note"],
                    key=form.cleaned_data["key"],
                    **form.choice(),
                )
                messages.success(
                    request,
                    f"Refunded {note.total} {note.currency}; credit note {note.display_number}.",
                )
                return redirect("purchase-tab", pk=purchase.pk, tab="payments")
        except DomainError as exc:
            form.add_error(None, exc.reason)
    remaining = purchase.total - purchase.refunded_amount
    return render(
        request,
        "purchases/refund.html",
        {"purchase": purchase, "form": form, "quote": quote, "remaining": remaining},
        status=400 if form.is_bound and form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_required()
def chargeback(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: what a chargeback does. POST: record that the card holder's bank
    took the money back (docs/documents.md)."""
    purchase = get_object_or_404(
        Purchase.objects.select_related("client", "customer"), pk=pk, client=client_of(request)
    )
    require_role(request, "support")
    if request.method == "POST":
        try:
            services.chargeback(purchase=purchase, actor=staff_actor(request))
            messages.success(
                request,
                f"Chargeback of {purchase.total} {purchase.currency} recorded on purchase "
                f"{purchase.pk}.",
            )
        except DomainError as exc:
            messages.error(request, exc.reason)
        return redirect("purchase-tab", pk=purchase.pk, tab="payments")
    return render(request, "purchases/chargeback.html", {"purchase": purchase})


@csrf_exempt
@require_POST
def gateway_event(request: HttpRequest) -> HttpResponse:
    """The payment gateway's callback (docs/documents.md): ``charge.disputed``
    records a chargeback on the purchase paid with that charge. Signed:
    ``X-Gateway-Signature: sha256=<HMAC-SHA256 of the body>`` with
    ``GATEWAY_WEBHOOK_SECRET``. A repeated event changes nothing."""
    expected = hmac.new(
        settings.GATEWAY_WEBHOOK_SECRET.encode(), request.body, hashlib.sha256
    ).hexdigest()
    given = request.headers.get("X-Gateway-Signature", "").removeprefix("sha256=")
    if not hmac.compare_digest(expected, given):
        return JsonResponse({"error": "Bad signature."}, status=401)
    try:
        event = json.loads(request.body)
        kind, reference = str(event["type"]), str(event["reference"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "Expected JSON with type and reference."}, status=400)
    if kind != "charge.disputed":
        return JsonResponse({"status": "ignored"})
    purchase = Purchase.objects.filter(gateway_reference=reference).first() if reference else None
    if purchase is None:
        return JsonResponse({"error": "No purchase was paid with that charge."}, status=404)
    if purchase.status == Purchase.Status.CHARGEBACK:
        return JsonResponse({"status": "already recorded"})
    try:
        services.chargeback(purchase=purchase, actor=services.Actor.gateway())
    except DomainError as exc:
        return JsonResponse({"error": exc.reason}, status=409)
    return JsonResponse({"status": "recorded"})


@require_GET
@staff_required()
def document(request: HtmxHttpRequest, pk: int, pdf: bool = False) -> HttpResponse:
    doc = get_object_or_404(
        Document.objects.select_related("purchase__customer", "client"),
        pk=pk,
        client=client_of(request),
    )
    return document_response(doc, pdf=pdf)


@require_GET
@staff_required()
def purchase_invoice(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The purchase's invoice (issued now if it has none yet), as PDF."""
    purchase = get_object_or_404(Purchase, pk=pk, client=client_of(request))
    if purchase.status not in Purchase.INVOICED:
        messages.error(request, "An invoice is issued once the purchase is paid.")
        return redirect("purchase-tab", pk=purchase.pk, tab="payments")
    return document_response(documents.invoice_for(purchase), pdf=True)


def document_response(doc: Document, *, pdf: bool) -> HttpResponse:
    if not pdf:
        return HttpResponse(documents.render_html(doc))
    response = HttpResponse(documents.render_pdf(doc), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{doc.filename}"'
    return response
