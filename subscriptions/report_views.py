"""The Reports section (docs/back-office.md): four pages, each with its filters, charts
(Chart.js from static/, not a CDN), tables and a CSV of every figure."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta
from django import forms
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from commerce import csvsafe
from commerce.access import HtmxHttpRequest, client_of, staff_required
from commerce.filters import in_client_format
from commerce.models import Client, Product

from . import reports, rollups
from .dates import Interval
from .models import SubscriptionStatus
from .reports import Filters

# One page per group of figures, so that each page's queries stay within
# the time budget at a million subscriptions (bench/backoffice.py).
PAGES = [
    ("overview", "Subscriptions"),
    ("mrr", "MRR & ARR"),
    ("revenue", "Revenue"),
    ("churn", "Churn"),
    ("renewals", "Renewal success"),
    ("upcoming", "Upcoming renewals"),
]
MAX_MONTHS = 36


class ReportFilterForm(forms.Form):
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    currency = forms.ChoiceField(label="Currency")
    product = forms.ModelChoiceField(
        queryset=Product.objects.none(), required=False, empty_label="All products"
    )

    def __init__(self, data: Any, *, client: Client) -> None:
        super().__init__(data)
        self.client = client
        in_client_format(self.fields["start"], client)
        in_client_format(self.fields["end"], client)
        self.fields["currency"].choices = [(c, c) for c in reports.currencies(client)]  # type: ignore[attr-defined]
        product = self.fields["product"]
        assert isinstance(product, forms.ModelChoiceField)
        product.queryset = Product.objects.filter(client=client, is_subscription=True).order_by(
            "name"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", "Must be on or after From.")
        elif start and end and (end.year - start.year) * 12 + end.month - start.month >= MAX_MONTHS:
            self.add_error("start", f"Show at most {MAX_MONTHS} months at a time.")
        return data

    def filters(self) -> Filters:
        """The chosen filters, or the defaults: the last 12 months, the main currency."""
        today = self.client.now().date()  # a sandbox client's test clock
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        end = data.get("end") or today
        start = data.get("start") or (end.replace(day=1) - relativedelta(months=11))
        currency = data.get("currency") or reports.currencies(self.client)[0]
        return Filters(self.client, currency, start, end, data.get("product"))


@dataclass
class Figure:
    """One figure: a chart spec for static/js/reports.js and its table."""

    name: str
    title: str
    kind: str  # bar, stacked, line
    columns: list[str]
    rows: list[list[Any]]
    series: list[str]  # the columns charted
    note: str = ""

    @property
    def chart_id(self) -> str:
        return f"chart-{self.name}"

    def chart(self) -> dict[str, Any]:
        index = {c: i for i, c in enumerate(self.columns)}
        return {
            "kind": self.kind,
            "labels": [str(r[0]) for r in self.rows],
            "series": [
                {"label": s, "data": [_number(r[index[s]]) for r in self.rows]} for s in self.series
            ],
        }


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _month(value: date) -> str:
    return value.strftime("%Y-%m")


def figures(page: str, f: Filters) -> tuple[list[Figure], dict[str, Any]]:
    cur = f.currency
    if page == "overview":
        o = reports.overview(f)
        statuses = sorted({s for s, _, _ in o.by_status})
        types = sorted({t for _, t, _ in o.by_status})
        counts = {(s, t): n for s, t, n in o.by_status}
        columns = ["Status", *[t or "No renewal type (SM 1.0)" for t in types], "Total"]
        names = dict(SubscriptionStatus.choices)
        rows = [
            [
                names.get(s, s),
                *[counts.get((s, t), 0) for t in types],
                sum(counts.get((s, t), 0) for t in types),
            ]
            for s in statuses
        ]
        return [
            Figure(
                "status",
                "Subscriptions by status and renewal type",
                "stacked",
                columns,
                rows,
                columns[1:-1],
            ),
        ], {"cards": {"Active subscriptions": o.active, "Subscribers": o.subscribers}}
    if page == "mrr":
        m = reports.mrr(f)
        intervals = [
            [str(Interval(months, days)), billed, monthly]
            for months, days, billed, monthly in m.by_interval
        ]
        products = [[name, share] for name, share in reports.mrr_by_product(f)]
        return [
            Figure(
                "mrr-product",
                f"MRR by product ({cur})",
                "bar",
                ["Product", "MRR"],
                products,
                ["MRR"],
                "What each product's Active items bill, normalised to a month.",
            ),
            Figure(
                "mrr",
                f"MRR by billing interval ({cur})",
                "bar",
                ["Interval", "Billed per interval", "Per month"],
                intervals,
                ["Per month"],
                "Each active subscription's next billing amount (its Active items) x 365 / "
                "(365 x interval months + 12 x interval days); ARR = 12 x MRR.",
            ),
        ], {"cards": {"MRR": f"{m.mrr} {cur}", "ARR": f"{m.arr} {cur}"}}
    if page == "revenue":
        labels = [label for _, label in reports.CATEGORIES]
        return [
            _per_month(
                "revenue",
                f"New vs renewal revenue per month ({cur})",
                "stacked",
                reports.revenue(f),
                labels,
                "Paid purchases by month of payment, before refunds.",
            ),
            _per_month(
                "refunds",
                f"Refunds, chargebacks and net revenue per month ({cur})",
                "bar",
                reports.money_back(f),
                ["Refunded", "Charged back", "Net revenue"],
                "Refunds by the month of their credit note, chargebacks by the month the bank "
                "took the money back; net revenue = billed − refunded − charged back. "
                "All products.",
            ),
        ], {}
    if page == "churn":
        return [
            _per_month(
                "churn",
                "Churn per month",
                "line",
                reports.churn(f),
                ["Churn %"],
                "Deactivated or finished in the month ÷ (active at its start + started in it).",
            )
        ], {}
    if page == "renewals":
        return [
            _per_month(
                "success",
                "Renewal success rate per month",
                "line",
                reports.renewal_success(f),
                ["Success %"],
                "Renewal purchases paid ÷ opened, by month opened.",
            )
        ], {}
    if page == "upcoming":
        soon = reports.upcoming(f)
        return [
            Figure(
                "upcoming",
                f"Upcoming renewals, next 90 days ({cur})",
                "bar",
                ["Week from", "Subscriptions", "Expected revenue"],
                [[w.isoformat(), n, amount] for w, n, amount in soon.weeks],
                ["Expected revenue"],
                "Active subscriptions by next billing date; their Active items' amounts.",
            ),
        ], {
            "cards": {
                "Renewals in 30 days": soon.next_30[0],
                "Expected in 30 days": f"{soon.next_30[1]} {cur}",
                "Renewals in 90 days": soon.next_90[0],
                "Expected in 90 days": f"{soon.next_90[1]} {cur}",
            }
        }
    raise Http404("No such report.")


def _per_month(
    name: str, title: str, kind: str, rows: list[reports.MonthRow], series: list[str], note: str
) -> Figure:
    """A figure with a row per month and a column per value of the rows."""
    columns = list(rows[0].values) if rows else []
    return Figure(
        name,
        title,
        kind,
        ["Month", *columns],
        [[_month(r.month), *r.values.values()] for r in rows],
        series,
        note,
    )


@require_GET
@staff_required()
def reports_home(request: HtmxHttpRequest) -> HttpResponse:
    return redirect("report", page="overview")


@require_GET
@staff_required()
def report(request: HtmxHttpRequest, page: str) -> HttpResponse:
    if page not in dict(PAGES):
        raise Http404("No such report.")
    client = client_of(request)
    form = ReportFilterForm(request.GET or None, client=client)
    f = form.filters()
    shown, extra = figures(page, f)
    context = {
        "pages": PAGES,
        "page": page,
        "page_label": dict(PAGES)[page],
        "form": form,
        "f": f,
        "figures": [(fig, fig.chart()) for fig in shown],
        "query": request.GET.urlencode(),
        # A large batch of changes (a renewal run) is still being counted.
        "counting": rollups.pending(client.pk),
        **extra,
    }
    template = "reports/report.html" + ("#report-body" if request.htmx else "")
    return render(request, template, context)


@require_GET
@staff_required()
def report_export(request: HtmxHttpRequest, page: str, figure: str) -> HttpResponse:
    if page not in dict(PAGES):
        raise Http404("No such report.")
    form = ReportFilterForm(request.GET or None, client=client_of(request))
    f = form.filters()
    shown, _ = figures(page, f)
    chosen = next((fig for fig in shown if fig.name == figure), None)
    if chosen is None:
        raise Http404("No such figure.")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"{page}-{figure}-{f.currency}-{f.start:%Y%m%d}-{f.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(csvsafe.row(chosen.columns))
    for row in chosen.rows:
        writer.writerow(csvsafe.row(row))
    return response
