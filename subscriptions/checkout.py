"""The public checkout of one client (docs/back-office.md): the only public page that
creates subscriptions, through ``services.sign_up`` like the API."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from commerce import limits
from commerce.gateway import PaymentKind
from commerce.models import Client, Product
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


class CheckoutForm(forms.Form):
    email = forms.EmailField(label="E-mail")
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
            for name in ("card_number", "expiry_month", "expiry_year"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, "Required for card payments.")
        quantities = [data.get(f"qty_{p.pk}") for p in self.products]
        if not any(quantities):
            self.add_error(None, "Choose at least one product (quantity 1 or more).")
        return data

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
        {"client": client, "form": form},
        status=400 if request.method == "POST" else 200,
    )


def _declined_message(result: services.SignUpResult) -> str:
    if result.transaction_status == T.ERROR:
        return (
            "The payment service did not answer. Nothing was charged; please try again in a minute."
        )
    return f"Your card was declined: {result.message} Nothing was charged; try another card."
