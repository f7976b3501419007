"""The customer list (the Customer viewer is ``subscriptions.viewers``)."""

import django_filters
from django import forms
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from commerce.access import HtmxHttpRequest, client_of, staff_required
from commerce.filters import customer_q
from commerce.paging import paginate

from .models import Customer
from .tables import CustomerTable


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "E-mail or name"}),
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def search(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        return queryset.filter(customer_q(value, path="")) if value.strip() else queryset


@require_GET
@staff_required()
def customer_list(request: HtmxHttpRequest) -> HttpResponse:
    filterset = CustomerFilter(request.GET, queryset=client_of(request).customers.all())
    table = CustomerTable(filterset.qs)
    paginate(request, table)
    template = "customers/list.html" + ("#customer-results" if request.htmx else "")
    return render(request, template, {"filter": filterset, "table": table})
