import django_tables2 as tables

from .models import Subscription


class SubscriptionTable(tables.Table):
    id = tables.Column(
        verbose_name="Subscription",
        linkify=("subscription", {"pk": tables.A("pk")}),
        attrs={"a": {"hx-boost": "false"}},  # a row opens a page, not a swap
    )
    customer = tables.Column(
        accessor="customer__email", verbose_name="Customer", order_by=("customer__email",)
    )
    status = tables.Column()
    renewal_type = tables.Column(verbose_name="Renewal", default="—")
    next_billing_date = tables.DateTimeColumn(verbose_name="Next billing", format="Y-m-d")
    last_interval_no = tables.Column(verbose_name="Intervals paid", attrs={"td": {"class": "num"}})
    start_date = tables.DateTimeColumn(verbose_name="Started", format="Y-m-d")

    class Meta:
        model = Subscription
        fields = (
            "id",
            "customer",
            "status",
            "renewal_type",
            "next_billing_date",
            "last_interval_no",
            "start_date",
        )
        order_by = ("-id",)
        attrs = {"class": "table"}
        empty_text = "No subscriptions match this search."

    def render_id(self, value: int) -> str:
        return f"S{value}"

    def render_status(self, record: Subscription) -> str:
        return record.get_status_display()
