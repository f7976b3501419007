"""Search forms of the back office (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from .models import DATE_HINT, DATE_INPUT, Client, DateFormat, Product, Purchase


def parse_id(term: str, prefix: str = "", *, digits: int = 17) -> int | None:
    """'1042' -> 1042; with a prefix, 'S1042' and 's1042' too. At most
    ``digits`` digits (17 fits a bigint; 9 an integer column)."""
    term = term.strip()
    if prefix and term[:1].upper() == prefix:
        term = term[1:]
    # ASCII digits only ("²".isdigit() is true too), and short enough for a bigint.
    return int(term) if term.isascii() and term.isdigit() and len(term) <= digits else None


def customer_q(term: str, path: str = "customer__") -> Q:
    """A full e-mail matches exactly (customers' e-mails are stored lower-case
    and indexed); other text matches the start of the e-mail, first or last name."""
    term = term.strip()
    if "@" in term:
        return Q(**{f"{path}email": term.lower()})
    return (
        Q(**{f"{path}email__istartswith": term})
        | Q(**{f"{path}last_name__istartswith": term})
        | Q(**{f"{path}first_name__istartswith": term})
    )


CUSTOMER_LOOKUP_CAP = 200  # few matches: look customers up first; many: the join finds 25 fast


def by_customer(queryset: QuerySet[Any], term: str, client: Client) -> QuerySet[Any]:
    """Rows of the customers matching ``term``: the customers first, through
    their own indexes, then their rows. (A join ordered by date would walk
    the whole list at a million rows.) Very common prefixes fall back to the join."""
    ids = list(
        client.customers.filter(customer_q(term, path="")).values_list("pk", flat=True)[
            : CUSTOMER_LOOKUP_CAP + 1
        ]
    )
    if len(ids) > CUSTOMER_LOOKUP_CAP:
        return queryset.filter(customer_q(term))
    return queryset.filter(customer_id__in=ids)


def in_client_format(field: forms.Field, client: Client) -> None:
    """A date field that shows and reads dates the way ``client`` writes them
    (Client.date_format; ISO dates are read too), as the tables show them."""
    assert isinstance(field, forms.DateField)
    typed = DATE_INPUT[DateFormat(client.date_format)]
    field.input_formats = list(dict.fromkeys([typed, "%Y-%m-%d"]))
    hint = DATE_HINT[DateFormat(client.date_format)]
    field.widget = forms.DateInput(
        format=typed, attrs={"placeholder": hint, "autocomplete": "off", "size": 11}
    )
    field.help_text = hint


class PurchaseFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Purchase id, S-id, e-mail or name"}),
    )
    product = django_filters.ModelChoiceFilter(
        queryset=Product.objects.none(),
        method="by_product",
        label="Product",
        empty_label="All products",
    )
    status = django_filters.ChoiceFilter(
        choices=Purchase.Status.choices, empty_label="All statuses"
    )
    category = django_filters.ChoiceFilter(
        choices=Purchase.Category.choices, empty_label="All categories"
    )
    created_from = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label="From"
    )
    created_to = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", label="To"
    )

    class Meta:
        model = Purchase
        fields: list[str] = []

    def __init__(self, *args: object, client: Client, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.client = client
        self.filters["product"].queryset = client.products.order_by("name")
        for name in ("created_from", "created_to"):
            in_client_format(self.form.fields[name], client)

    def search(self, queryset: QuerySet[Purchase], name: str, value: str) -> QuerySet[Purchase]:
        value = value.strip()
        if not value:
            return queryset
        if value[:1] in "sS" and (sub_id := parse_id(value, "S")) is not None:
            return queryset.filter(subscription_id=sub_id)
        if (number := parse_id(value)) is not None:
            return queryset.filter(Q(pk=number) | Q(subscription_id=number))
        return by_customer(queryset, value, self.client)

    def by_product(
        self, queryset: QuerySet[Purchase], name: str, value: Product
    ) -> QuerySet[Purchase]:
        return queryset.filter(items__product=value).distinct() if value else queryset
