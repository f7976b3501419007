import django_tables2 as tables

from .models import Purchase


class PurchaseTable(tables.Table):
    id = tables.Column(
        verbose_name="Purchase",
        linkify=("purchase", {"pk": tables.A("pk")}),
        attrs={"a": {"hx-boost": "false"}},  # a row opens a page, not a swap
    )
    created_at = tables.DateTimeColumn(verbose_name="Created", format="Y-m-d H:i")
    customer = tables.Column(
        accessor="customer__email", verbose_name="Customer", order_by=("customer__email",)
    )
    category = tables.Column()
    status = tables.Column()
    total = tables.Column(attrs={"td": {"class": "num"}})
    subscription = tables.Column(
        accessor="subscription_id", verbose_name="Subscription", orderable=False
    )

    class Meta:
        model = Purchase
        fields = ("id", "created_at", "customer", "category", "status", "total", "subscription")
        order_by = ("-created_at",)
        attrs = {"class": "table"}
        empty_text = "No purchases match this search."

    def render_total(self, record: Purchase) -> str:
        return f"{record.total} {record.currency}"

    def render_subscription(self, value: int | None) -> str:
        return f"S{value}" if value else "—"

    def render_status(self, record: Purchase) -> str:
        return record.get_status_display()

    def render_category(self, record: Purchase) -> str:
        return record.get_category_display()
