"""Subscriptions list and the Subscription Billing tab's actions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import django_filters
from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce.access import HtmxHttpRequest, client_of, require_role, staff_required
from commerce.filters import by_customer, in_client_format, parse_id
from commerce.models import Client, Product, Purchase
from commerce.paging import paginate

from . import actions, history_display, services
from .errors import DomainError
from .models import (
    RENEWING_ITEMS,
    HistoryEntry,
    RenewalRun,
    RenewalType,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from .tables import RenewalRunTable, SubscriptionTable, listed


def staff_actor(request: HtmxHttpRequest) -> services.Actor:
    """The history actor for the signed-in staff member."""
    return services.Actor.staff(request.user)  # type: ignore[arg-type]


class SubscriptionFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "S-id, e-mail or name"}),
    )
    status = django_filters.ChoiceFilter(
        choices=SubscriptionStatus.choices, empty_label="All statuses"
    )
    renewal = django_filters.ChoiceFilter(
        choices=RenewalType.choices, label="Renewal", empty_label="All", method="by_renewal"
    )
    product = django_filters.ModelChoiceFilter(
        queryset=lambda request: Product.objects.filter(client=client_of(request)).order_by("name"),
        label="Product",
        empty_label="All products",
        method="by_product",
    )

    class Meta:
        model = Subscription
        fields: list[str] = []

    def search(
        self, queryset: QuerySet[Subscription], name: str, value: str
    ) -> QuerySet[Subscription]:
        if (sub_id := parse_id(value, "S")) is not None:
            return queryset.filter(pk=sub_id)
        if not value.strip():
            return queryset
        return by_customer(queryset, value, client_of(self.request))

    def by_renewal(
        self, queryset: QuerySet[Subscription], name: str, value: str
    ) -> QuerySet[Subscription]:
        """SM 2.0: the subscription's renewal type. SM 1.0: an item still up
        for renewal whose product renews that way (docs/back-office.md)."""
        if client_of(self.request).is_sm2:
            return queryset.filter(renewal_type=value)
        mode = Product.RenewalMode.AUTOMATIC
        if value == RenewalType.MANUAL:
            mode = Product.RenewalMode.MANUAL
        items = SubscriptionItem.objects.filter(
            subscription=OuterRef("pk"),
            status__in=RENEWING_ITEMS,
            product__renewal_mode=mode,
        )
        return queryset.filter(Exists(items))

    def by_product(
        self, queryset: QuerySet[Subscription], name: str, value: Product
    ) -> QuerySet[Subscription]:
        items = SubscriptionItem.objects.filter(subscription=OuterRef("pk"), product=value)
        return queryset.filter(Exists(items))


def _subscription_for_user(request: HtmxHttpRequest, pk: int) -> Subscription:
    return get_object_or_404(
        Subscription.objects.select_related("customer", "payment_method", "client"),
        pk=pk,
        client=client_of(request),
    )


@require_GET
@staff_required()
def subscription_list(request: HtmxHttpRequest) -> HttpResponse:
    qs = listed(client_of(request).subscriptions.all())
    filterset = SubscriptionFilter(request.GET, queryset=qs, request=request)
    table = SubscriptionTable(filterset.qs)
    paginate(request, table)
    template = "subscriptions/list.html" + ("#subscription-results" if request.htmx else "")
    return render(request, template, {"filter": filterset, "table": table})


@require_GET
@staff_required()
def subscription_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A subscription opens in the Purchase viewer of its sign-up purchase."""
    sub = _subscription_for_user(request, pk)
    purchase = signup_purchase(sub)
    return redirect("purchase-tab", pk=purchase.pk, tab="billing")


def signup_purchase(sub: Subscription) -> Purchase:
    purchase = (
        Purchase.objects.filter(items__subscription_item__subscription=sub).order_by("id").first()
    )
    if purchase is None:
        raise Http404("This subscription has no purchase.")
    return purchase


def billing_context(
    request: HtmxHttpRequest, purchase: Purchase, sub: Subscription | None
) -> dict[str, Any]:
    """Everything the Subscription Billing tab shows (constant query count)."""
    if sub is None:
        return {"purchase": purchase, "sub": None}
    items = list(sub.items.select_related("product").order_by("running_no"))
    invoice = actions.pending_invoice(sub)
    billings = list(
        Purchase.objects.filter(Q(subscription=sub) | Q(pk=purchase.pk))
        .filter(category__in=["signup", "renewal", "alignment"])
        .order_by("-created_at")[:50]
    )
    return {
        "purchase": purchase,
        "sub": sub,
        "items": [
            (item, [actions.ACTIONS[n] for n in actions.offered_for_item(sub, item)])
            for item in items
        ],
        "actions": [actions.ACTIONS[n] for n in actions.offered(sub, items, invoice)],
        "billings": billings,
        "invoice": invoice,
        "item_changes": [(k, v) for k, v in ITEM_CHANGES.items() if k != "add"],
    }


class ChangeDateForm(forms.Form):
    next_billing_date = forms.DateField(label="New next billing date")

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        in_client_format(self.fields["next_billing_date"], client)


@require_http_methods(["GET", "POST"])
@staff_required()
def subscription_action(request: HtmxHttpRequest, pk: int, name: str) -> HttpResponse:
    """GET: the confirmation step. POST: run the action, then show the tab."""
    sub = _subscription_for_user(request, pk)
    action = actions.ACTIONS.get(name)
    if action is None:
        raise Http404("No such action.")
    purchase = _purchase_in_scope(request, sub)
    require_role(request, "support")
    running_no = parse_id(request.GET.get("item") or request.POST.get("item") or "", digits=9)
    form = None
    if name == "change-date":
        form = ChangeDateForm(request.POST or None, client=sub.client)
    if request.method == "POST" and (form is None or form.is_valid()):
        new_date = None
        if form is not None:
            new_date = datetime.combine(
                form.cleaned_data["next_billing_date"], sub.next_billing_date.timetz()
            ).astimezone(UTC)
        try:
            text = actions.perform(
                name,
                sub=sub,
                actor=staff_actor(request),
                running_no=running_no,
                new_date=new_date,
            )
            messages.success(request, text)
        except DomainError as exc:
            messages.error(request, f"{action.label} was refused: {exc.reason}")
        return _billing_response(request, purchase, sub)
    context = {
        "action": action,
        "sub": sub,
        "purchase": purchase,
        "item": running_no,
        "form": form,
        "question": action.question.format(sub=sub.display_id, item=running_no),
    }
    template = "subscriptions/confirm.html" + ("#confirm-box" if request.htmx else "")
    return render(request, template, context, status=200 if request.method == "GET" else 400)


class NoteForm(forms.Form):
    text = forms.CharField(
        max_length=2000,
        error_messages={
            "required": "Write a note first.",
            "max_length": "A note is at most 2,000 characters.",
        },
    )


@require_POST
@staff_required()
def add_note(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    sub = _subscription_for_user(request, pk)
    purchase = _purchase_in_scope(request, sub)
    require_role(request, "support")
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors["text"]))
    else:
        try:
            services.add_note(
                subscription=sub, text=form.cleaned_data["text"], actor=staff_actor(request)
            )
            messages.success(request, "Note added.")
        except DomainError as exc:
            messages.error(request, exc.reason)
    if request.htmx:
        return render(request, "purchases/tabs/history.html", history_context(purchase, [sub]))
    return redirect("purchase-tab", pk=purchase.pk, tab="history")


def history_context(purchase: Purchase, subs: list[Subscription]) -> dict[str, Any]:
    entries = (
        HistoryEntry.objects.filter(subscription__in=subs)
        .select_related("subscription")
        .order_by("-created_at", "-id")[:200]
    )
    shown = history_display.shown(list(entries), purchase.client.date_format)
    return {"purchase": purchase, "subs": subs, "entries": shown}


def _purchase_in_scope(request: HtmxHttpRequest, sub: Subscription) -> Purchase:
    purchase_id = parse_id(request.GET.get("purchase") or request.POST.get("purchase") or "")
    if purchase_id is None:
        return signup_purchase(sub)
    return get_object_or_404(Purchase, pk=purchase_id, client=client_of(request))


def _billing_response(
    request: HtmxHttpRequest, purchase: Purchase, sub: Subscription
) -> HttpResponse:
    if request.htmx:
        sub.refresh_from_db()
        return render(
            request, "purchases/tabs/billing.html", billing_context(request, purchase, sub)
        )
    url = reverse("purchase-tab", kwargs={"pk": purchase.pk, "tab": "billing"})
    return redirect(f"{url}?subscription={sub.pk}")


@require_GET
@staff_required()
def renewal_runs(request: HtmxHttpRequest) -> HttpResponse:
    """Past sweeps of this client, and the running one's live progress."""
    runs = (
        RenewalRun.objects.filter(client=client_of(request))
        .select_related("client")
        .order_by("-started_at", "-id")
    )
    table = RenewalRunTable(runs)
    paginate(request, table)
    running = runs.filter(status=RenewalRun.Status.RUNNING).first()
    template = "subscriptions/renewal_runs.html" + ("#run-progress" if request.htmx else "")
    return render(request, template, {"table": table, "running": running})


@require_POST
@staff_required("admin")
def start_renewal_run(request: HtmxHttpRequest) -> HttpResponse:
    """Sweep this client now instead of waiting for the schedule."""
    from .tasks import sweep

    transaction.on_commit(lambda: sweep.delay(client_id=client_of(request).pk, trigger="staff"))
    messages.success(request, "A renewal sweep was started; its progress shows below.")
    return redirect("renewal-runs")


# --- item changes (docs/api.md) in the Subscription Billing tab ------------------------

ITEM_CHANGES = {
    "add": "Add item",
    "quantity": "Change quantity",
    "product": "Change product",
    "price": "Change price",
}
ALIGNMENTS = [
    ("align", "Now: charge the prorated difference up to the next billing date"),
    ("extend", "Now: extend the current interval by one full interval and charge it"),
    ("next", "From the next billing date: nothing is charged now"),
]


class ItemChangeForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.none(), label="Product")
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000, label="Quantity (total)")
    price = forms.DecimalField(
        min_value=Decimal("0"), max_digits=12, decimal_places=2, label="Unit price"
    )
    price_includes_vat = forms.BooleanField(
        required=False, initial=True, label="Price includes VAT"
    )
    alignment = forms.ChoiceField(
        choices=ALIGNMENTS, initial="align", widget=forms.RadioSelect, label="When"
    )
    expected = forms.CharField(required=False, widget=forms.HiddenInput)

    FIELDS = {
        "add": ["product", "quantity", "alignment"],
        "quantity": ["quantity", "alignment"],
        "product": ["product", "alignment"],
        "price": ["price", "price_includes_vat", "alignment"],
    }

    def __init__(self, *args: Any, kind: str, sub: Subscription, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in [*self.FIELDS[kind], "expected"]:
                del self.fields[name]
        if "product" in self.fields:
            product_field = self.fields["product"]
            assert isinstance(product_field, forms.ModelChoiceField)
            # Only products that can join this subscription (docs/api.md).
            product_field.queryset = Product.objects.filter(
                client_id=sub.client_id,
                is_subscription=True,
                is_active=True,
                currency=sub.currency,
                interval_months=sub.interval_months,
                interval_days=sub.interval_days,
            ).order_by("name")


def _change_of(
    kind: str, data: dict[str, Any], sub: Subscription, item: SubscriptionItem | None
) -> services.ItemChange:
    """The form as the service's change (the service names the history code)."""
    if kind == "add":
        return services.ItemChange(
            kind=services.ChangeKind.ADD, product=data["product"], quantity=data["quantity"]
        )
    assert item is not None
    if kind == "quantity":
        return services.quantity_change(item, data["quantity"])
    if kind == "product":
        return services.product_change(item, data["product"])
    return services.ItemChange(
        kind=services.ChangeKind.PRICE,
        running_no=item.running_no,
        price=services.CustomerPrice(sub.currency, data["price"], data["price_includes_vat"]),
    )


@require_http_methods(["GET", "POST"])
@staff_required()
def item_change(request: HtmxHttpRequest, pk: int, kind: str) -> HttpResponse:
    """GET: the form. POST ``step=preview``: what is charged now and at the next
    billing date. POST ``step=confirm``: make the change, if the amount is
    still the one previewed; otherwise show the new preview."""
    sub = _subscription_for_user(request, pk)
    if kind not in ITEM_CHANGES:
        raise Http404("No such change.")
    purchase = _purchase_in_scope(request, sub)
    require_role(request, "support")
    running_no = parse_id(request.GET.get("item") or request.POST.get("item") or "", digits=9)
    item = (
        sub.items.select_related("product").filter(running_no=running_no).first()
        if running_no is not None
        else None
    )
    if kind != "add" and item is None:
        raise Http404("No such item.")
    initial = {}
    if item is not None:
        initial = {"product": item.product, "quantity": item.quantity, "price": item.unit_price}
    form = ItemChangeForm(
        request.POST if request.method == "POST" else None, kind=kind, sub=sub, initial=initial
    )
    quote, status = None, 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            change = _change_of(kind, data, sub, item)
            wanted = data["alignment"]
            alignment = services.Alignment(align=wanted != "next", extend=wanted == "extend")
            preview = services.Alignment(
                preview_only=True, align=alignment.align, extend=alignment.extend
            )
            try:
                quote = services.change_item(
                    subscription=sub, change=change, alignment=preview, actor=staff_actor(request)
                )
                if request.POST.get("step") == "confirm":
                    if data["expected"] == _previewed(quote, wanted):
                        done = services.change_item(
                            subscription=sub,
                            change=change,
                            alignment=alignment,
                            actor=staff_actor(request),
                        )
                        messages.success(request, _done_message(sub, done))
                        return _billing_response(request, purchase, sub)
                    form.add_error(
                        None,
                        "The amount changed since the preview (the subscription was changed "
                        "meanwhile). Check the new amounts and confirm again.",
                    )
                status = 200
            except DomainError as exc:
                form.add_error(None, exc.reason)
                quote = None
    context = {
        "sub": sub,
        "purchase": purchase,
        "item": item,
        "kind": kind,
        "title": ITEM_CHANGES[kind],
        "form": form,
        "quote": quote,
        "previewed": _previewed(quote, form.cleaned_data.get("alignment", ""))
        if quote is not None
        else "",
    }
    template = "subscriptions/item_change.html" + ("#item-change-box" if request.htmx else "")
    return render(request, template, context, status=status)


def _previewed(quote: services.Quote, alignment: str) -> str:
    """What the user saw: confirming applies exactly that or nothing."""
    return "|".join(
        map(str, [quote.charge_now, quote.product.pk, quote.quantity, quote.unit_price, alignment])
    )


def _done_message(sub: Subscription, quote: services.Quote) -> str:
    charged = (
        f"{quote.charge_now} {quote.currency} charged now (purchase {quote.purchase.pk})"
        if quote.purchase is not None
        else "nothing charged now"
    )
    return (
        f"Item {quote.running_no} is now {quote.product.name} x {quote.quantity} @ "
        f"{quote.unit_price} {quote.currency}; {charged}. Next billing date "
        f"{quote.next_billing_date:%Y-%m-%d}: {quote.next_billing_total} {quote.currency}."
    )
