"""The customer self-service portal's pages (docs/portal.md): a customer who
entered through a signed link (``customers.portal_views``) sees only their
own subscriptions and invoices at that client, and acts through the same
lifecycle services as staff, with themselves as the actor in history."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from commerce import documents
from commerce.filters import parse_id
from commerce.models import Document, DocumentKind, Purchase
from commerce.money import split_vat
from customers.models import Customer
from customers.portal_views import portal_customer

from . import actions, services
from .checkout import OrderForm, place_order
from .errors import DomainError
from .models import Subscription, SubscriptionItem
from .refund_views import document_response


@dataclass
class Row:
    sub: Subscription
    items: list[SubscriptionItem]
    amount: Decimal
    actions: list[tuple[str, str, int | None]]  # (action, label, item running no)


def _subscriptions(customer: Customer) -> list[Row]:
    subs = (
        customer.subscriptions.select_related("payment_method")
        .prefetch_related(
            Prefetch(
                "items",
                queryset=SubscriptionItem.objects.select_related("product").order_by("running_no"),
            )
        )
        .order_by("-id")
    )
    rows = []
    for sub in subs:
        items = list(sub.items.all())
        rows.append(
            Row(sub, items, sub.billing_amount(items), actions.offered_to_customer(sub, items))
        )
    return rows


@require_GET
@portal_customer
def home(request: HttpRequest, customer: Customer) -> HttpResponse:
    return render(
        request,
        "portal/home.html",
        {"customer": customer, "client": customer.client, "rows": _subscriptions(customer)},
    )


@require_GET
@portal_customer
def purchases(request: HttpRequest, customer: Customer) -> HttpResponse:
    bought = customer.purchases.order_by("-created_at", "-id")[:200]
    notes = Document.objects.filter(
        purchase__customer=customer, kind=DocumentKind.CREDIT_NOTE
    ).order_by("issued_at", "id")
    return render(
        request,
        "portal/purchases.html",
        {
            "customer": customer,
            "client": customer.client,
            "purchases": bought,
            "credit_notes": notes,
            "invoiced": Purchase.INVOICED,
        },
    )


@require_GET
@portal_customer
def purchase_pdf(request: HttpRequest, customer: Customer, pk: int) -> HttpResponse:
    """The invoice of one of the customer's paid purchases, as PDF."""
    purchase = get_object_or_404(Purchase, pk=pk, customer=customer, status__in=Purchase.INVOICED)
    return document_response(documents.invoice_for(purchase), pdf=True)


@require_GET
@portal_customer
def document_pdf(request: HttpRequest, customer: Customer, pk: int) -> HttpResponse:
    """One of the customer's credit notes (or invoices), as PDF."""
    doc = get_object_or_404(Document, pk=pk, purchase__customer=customer)
    return document_response(doc, pdf=True)


@require_GET
@portal_customer
def invoice(request: HttpRequest, customer: Customer, pk: int) -> HttpResponse:
    purchase = get_object_or_404(
        Purchase.objects.select_related("payment_method"), pk=pk, customer=customer
    )
    lines = list(purchase.items.select_related("product"))
    gross, net, vat = split_vat(purchase.total, purchase.currency, customer.client.vat_rate)
    return render(
        request,
        "portal/invoice.html",
        {
            "customer": customer,
            "client": customer.client,
            "purchase": purchase,
            "lines": lines,
            "net": net,
            "vat": vat,
            "gross": gross,
        },
    )


# --- actions ----------------------------------------------------------------------------

QUESTIONS = {
    "renewal-off": (
        "Turn off automatic renewal?",
        "Your subscription stays active until {date}. We will not charge your card then; "
        "we will remind you before that date and you can renew with one click, here.",
    ),
    "renewal-on": (
        "Turn on automatic renewal?",
        "We will charge {card} {amount} on {date} and at every billing date after that.",
    ),
    "cancel-item": (
        "Cancel {product}?",
        "{product} is not billed again; you keep it until {date}. You can reinstate it here.",
    ),
    "reinstate-item": (
        "Reinstate {product}?",
        "{product} is billed again from {date} (at once if that date has passed).",
    ),
    "renew-now": (
        "Renew now?",
        "We charge {card} {amount} now for the next billing period.",
    ),
    "renew-invoice": (
        "Renew by invoice?",
        "We e-mail you an invoice of {amount} for the next billing period; your subscription "
        "renews when it is paid by bank transfer.",
    ),
}


def _own_subscription(customer: Customer, pk: int) -> Subscription:
    """Another customer's subscription is a 404, whatever id is typed in."""
    return get_object_or_404(
        Subscription.objects.select_related("payment_method", "client"),
        pk=pk,
        customer=customer,
        client=customer.client,
    )


@require_http_methods(["GET", "POST"])
@portal_customer
def act(request: HttpRequest, customer: Customer, pk: int, action: str) -> HttpResponse:
    """GET: what will happen and when, with a confirm button. POST: do it."""
    if action not in QUESTIONS:
        raise Http404("No such action.")
    sub = _own_subscription(customer, pk)
    items = list(sub.items.select_related("product").order_by("running_no"))
    item_no = parse_id(request.GET.get("item") or request.POST.get("item") or "", digits=9)
    offered = {(a, n) for a, _, n in actions.offered_to_customer(sub, items)}
    if (action, item_no) not in offered:
        messages.error(request, "That is not possible for this subscription right now.")
        return redirect("portal")
    product = next((i.product.name for i in items if i.running_no == item_no), "")
    amount = sub.billing_amount(items)
    facts = {
        "date": f"{sub.next_billing_date:%d %B %Y}",
        "card": str(sub.payment_method),
        "amount": f"{amount} {sub.currency}",
        "product": product,
    }
    question, effect = (text.format(**facts) for text in QUESTIONS[action])
    if request.method == "POST":
        try:
            actions.perform_for_customer(action, sub, item_no, services.Actor.customer(customer))
            messages.success(request, _done(action, sub.pk))
        except DomainError as exc:
            messages.error(request, f"That did not work: {exc.reason}")
        return redirect("portal")
    return render(
        request,
        "portal/confirm.html",
        {
            "customer": customer,
            "client": customer.client,
            "sub": sub,
            "action": action,
            "item": item_no,
            "question": question,
            "effect": effect,
            "danger": action in ("renewal-off", "cancel-item"),
        },
    )


def _done(action: str, pk: int) -> str:
    return {
        "renewal-off": f"Automatic renewal is off for S{pk}.",
        "renewal-on": f"Automatic renewal is on for S{pk}.",
        "cancel-item": f"Cancelled. S{pk} will not bill that product again.",
        "reinstate-item": f"Reinstated. S{pk} bills that product again.",
        "renew-now": f"Thank you: S{pk} is renewed.",
        "renew-invoice": f"The invoice for S{pk} is on its way to you by e-mail.",
    }[action]


# --- card and contact details --------------------------------------------------------------


class CardForm(forms.Form):
    number = forms.CharField(label="Card number", max_length=23)
    expiry_month = forms.IntegerField(label="Expiry month", min_value=1, max_value=12)
    expiry_year = forms.IntegerField(label="Expiry year", min_value=2000, max_value=2200)


@require_http_methods(["GET", "POST"])
@portal_customer
def card(request: HttpRequest, customer: Customer) -> HttpResponse:
    form = CardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            method = services.update_card(
                customer=customer,
                card=services.CardInput(
                    number=data["number"],
                    expiry_month=data["expiry_month"],
                    expiry_year=data["expiry_year"],
                ),
                actor=services.Actor.customer(customer),
            )
            messages.success(request, f"Your subscriptions are now billed to {method}.")
            return redirect("portal")
        except DomainError as exc:
            for name, message in exc.fields.items():
                field = {"CardNumber": "number", "ExpiryMonth": "expiry_month"}.get(
                    name, "expiry_year"
                )
                form.add_error(field, message)
    return render(
        request, "portal/card.html", {"customer": customer, "client": customer.client, "form": form}
    )


class ContactForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=100, required=False)
    last_name = forms.CharField(label="Last name", max_length=100, required=False)
    company = forms.CharField(label="Company", max_length=200, required=False)


@require_http_methods(["GET", "POST"])
@portal_customer
def contact(request: HttpRequest, customer: Customer) -> HttpResponse:
    current = {name: getattr(customer, name) for name in ContactForm.base_fields}
    form = ContactForm(request.POST or None, initial=current)
    if request.method == "POST" and form.is_valid():
        services.update_contact(
            customer=customer, changes=form.cleaned_data, actor=services.Actor.customer(customer)
        )
        messages.success(request, "Your contact details are saved.")
        return redirect("portal")
    return render(
        request,
        "portal/contact.html",
        {"customer": customer, "client": customer.client, "form": form},
    )


@require_http_methods(["GET", "POST"])
@portal_customer
def order(request: HttpRequest, customer: Customer) -> HttpResponse:
    """A new purchase by a signed-in customer (where the checkout sends an
    e-mail address that already has an account): their details stay as
    they are."""
    form = OrderForm(request.POST or None, client=customer.client)
    if request.method == "POST" and form.is_valid():
        result = place_order(request, form, services.CustomerInput(email=customer.email))
        if result is not None:
            messages.success(request, f"Thank you: order {result.purchase.pk} is placed.")
            return redirect("portal")
    return render(
        request,
        "portal/order.html",
        {"client": customer.client, "customer": customer, "form": form, "summary": form.summary()},
        status=400 if request.method == "POST" else 200,
    )
