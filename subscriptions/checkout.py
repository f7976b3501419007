"""The public checkout of one client (docs/back-office.md): the only public page that
creates subscriptions, through ``services.sign_up`` like the API."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from commerce import limits
from commerce.gateway import PaymentKind
from commerce.models import Client, Product
from commerce.money import split_vat
from customers.models import Customer
from customers.portal_views import send_link

from . import services
from .errors import InvalidInput
from .models import HistoryEntry

T = services.TransactionStatus

FIELD_FOR = {
    "Email": "email",
    "CardNumber": "card_number",
    "ExpiryMonth": "expiry_month",
    "ExpiryYear": "expiry_year",
    "Quantity": None,
    "Items": None,
    "ProductId": None,
}


CARD_FIELDS_MISSING = {
    "card_number": "Enter the card number.",
    "expiry_month": "Enter the month the card expires (1–12).",
    "expiry_year": "Enter the year the card expires.",
}


@dataclass
class Summary:
    """The order as the customer sees it before buying (docs/back-office.md)."""

    lines: list[tuple[Product, int, Decimal]]  # product, quantity, amount
    currency: str = ""
    total: Decimal = Decimal("0")
    net: Decimal = Decimal("0")
    vat: Decimal = Decimal("0")
    vat_rate: Decimal = Decimal("0")
    problem: str = ""


class CheckoutForm(forms.Form):
    email = forms.EmailField(
        label="E-mail", error_messages={"required": "Enter your e-mail address."}
    )
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    company = forms.CharField(max_length=200, required=False)
    payment = forms.ChoiceField(
        choices=[(PaymentKind.CARD, "Card"), (PaymentKind.INVOICE, "Invoice (pay by wire)")],
        widget=forms.RadioSelect,
        initial=PaymentKind.CARD,
    )
    card_number = forms.CharField(
        max_length=23,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"}),
    )
    expiry_month = forms.IntegerField(min_value=1, max_value=12, required=False)
    expiry_year = forms.IntegerField(min_value=2000, max_value=2100, required=False)
    confirm_auto_renewal = forms.BooleanField(
        required=False,
        initial=True,
        label="Confirm auto-renewal",
        help_text="Renew automatically at the end of each billing interval. "
        "Untick to renew manually.",
    )

    def __init__(self, *args: object, client: Client, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.client = client
        self.products = list(client.products.filter(is_active=True).order_by("name"))
        for product in self.products:
            self.fields[f"qty_{product.pk}"] = forms.IntegerField(
                min_value=0, max_value=10_000, initial=0, required=False, label=product.name
            )
        if not client.is_sm2:
            del self.fields["confirm_auto_renewal"]

    def product_rows(self) -> list[tuple[Product, forms.BoundField]]:
        return [(p, self[f"qty_{p.pk}"]) for p in self.products]

    def lines(self) -> list[services.Line]:
        return [
            services.Line(p, self.cleaned_data[f"qty_{p.pk}"])
            for p in self.products
            if self.cleaned_data.get(f"qty_{p.pk}")
        ]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("payment") == PaymentKind.CARD:
            for name, message in CARD_FIELDS_MISSING.items():
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, message)
        quantities = [data.get(f"qty_{p.pk}") for p in self.products]
        if not any(quantities):
            self.add_error(None, "Choose at least one product (quantity 1 or more).")
        return data

    def quantities(self) -> list[services.Line]:
        """The lines whose quantity is valid, whatever the other fields hold."""
        lines = []
        for product in self.products:
            field = self[f"qty_{product.pk}"]
            try:
                quantity = self.fields[field.name].clean(field.value())
            except forms.ValidationError:
                continue
            if quantity:
                lines.append(services.Line(product, quantity))
        return lines

    def summary(self) -> Summary:
        lines = self.quantities()
        currencies = {line.product.currency for line in lines}
        summary = Summary(
            [(li.product, li.quantity, li.product.price * li.quantity) for li in lines]
        )
        if len(currencies) > 1:
            summary.problem = (
                "These products are sold in different currencies: order them one at a time."
            )
        elif lines:
            summary.currency = currencies.pop()
            summary.vat_rate = self.client.vat_rate
            total = services.order_total(lines)
            summary.total, summary.net, summary.vat = split_vat(
                total, summary.currency, self.client.vat_rate
            )
        return summary

    def payment_input(self) -> services.CardInput | services.InvoiceInput:
        data = self.cleaned_data
        if data["payment"] == PaymentKind.INVOICE:
            return services.InvoiceInput()
        return services.CardInput(data["card_number"], data["expiry_month"], data["expiry_year"])


class OrderForm(CheckoutForm):
    """The checkout's products and payment, for a customer signed in to the
    portal (who they are is known: no e-mail or name fields)."""

    def __init__(self, *args: object, client: Client, **kwargs: object) -> None:
        super().__init__(*args, client=client, **kwargs)
        for name in ("email", "first_name", "last_name", "company"):
            del self.fields[name]


def place_order(
    request: HttpRequest, form: CheckoutForm, customer: services.CustomerInput
) -> services.SignUpResult | None:
    """``services.sign_up`` with what the form holds, never changing an
    existing customer's details; errors go onto the form (None)."""
    data = form.cleaned_data
    try:
        result = services.sign_up(
            client=form.client,
            customer=customer,
            lines=form.lines(),
            payment=form.payment_input(),
            confirm_auto_renewal=data.get("confirm_auto_renewal", True),
            actor=services.Actor(HistoryEntry.ActorKind.CUSTOMER, customer.email),
            update_customer=False,
        )
    except InvalidInput as exc:
        for key, message in exc.fields.items():
            form.add_error(FIELD_FOR.get(key), message)
        return None
    if result.subscriptions or result.transaction_status in (T.SUCCESS, T.PENDING):
        return result
    form.add_error(None, _declined_message(result))
    return None


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest, slug: str) -> HttpResponse:
    """The public checkout. An e-mail address that already has an account
    here buys nothing from this page: the address gets a sign-in link and
    the order is placed from the portal (docs/portal.md), so nobody can
    change another customer's details or attach purchases to their account."""
    client = get_object_or_404(Client, slug=slug)
    form = CheckoutForm(request.POST or None, client=client)
    if request.method == "POST" and limits.over(
        request, group="checkout-ip", key=limits.by_address, rate=settings.CHECKOUT_RATE_PER_ADDRESS
    ):
        return limits.too_many(
            request,
            "Too many orders were tried from your address. Nothing more was charged; "
            "please try again in an hour or contact us.",
            template="checkout/limited.html",
            context={"client": client},
        )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        email = data["email"].strip().lower()
        known = Customer.objects.filter(client=client, email=email).first()
        if known is not None:
            send_link(request, client, email, known)  # within the per-address link limit
            return render(request, "checkout/known.html", {"client": client, "email": email})
        customer = services.CustomerInput(
            email=email,
            first_name=data["first_name"],
            last_name=data["last_name"],
            company=data["company"],
        )
        result = place_order(request, form, customer)
        if result is not None:
            return render(request, "checkout/done.html", {"client": client, "result": result})
    return render(
        request,
        "checkout/form.html",
        {"client": client, "form": form, "summary": form.summary()},
        status=400 if request.method == "POST" else 200,
    )


@require_GET
def summary(request: HttpRequest, slug: str) -> HttpResponse:
    """The order summary for the quantities in the query string (the checkout
    and the portal's New order page ask for it as quantities change)."""
    client = get_object_or_404(Client, slug=slug)
    form = CheckoutForm(request.GET, client=client)
    return render(request, "checkout/_summary.html", {"client": client, "summary": form.summary()})


def _declined_message(result: services.SignUpResult) -> str:
    if result.transaction_status == T.ERROR:
        return (
            "The payment service did not answer. Nothing was charged; please try again in a minute."
        )
    return f"Your card was declined: {result.message} Nothing was charged; try another card."
