"""Tables of the back office. django-tables2 does sorting and paging; each
table's rows are written out in its own template (``tables/<name>.html``,
extending ``tables/lean.html``), several times faster than django-tables2's
per-cell rendering at 25 rows a page."""

import django_tables2 as tables

from .models import Purchase


class LeanTable(tables.Table):
    numeric: tuple[str, ...] = ()

    class Meta:
        template_name = "tables/lean.html"


class PurchaseTable(LeanTable):
    numeric = ("total",)
    id = tables.Column(verbose_name="Purchase")
    created_at = tables.Column(verbose_name="Created (UTC)")
    customer = tables.Column(verbose_name="Customer", order_by=("customer__email",))
    category = tables.Column()
    status = tables.Column()
    total = tables.Column()
    subscription = tables.Column(verbose_name="Subscription", orderable=False)

    class Meta(LeanTable.Meta):
        template_name = "tables/purchases.html"
        model = Purchase
        fields = ("id", "created_at", "customer", "category", "status", "total", "subscription")
        order_by = ("-created_at",)
        empty_text = "No purchases match this search."
