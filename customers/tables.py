import django_tables2 as tables

from .models import Customer


class CustomerTable(tables.Table):
    email = tables.Column(
        linkify=("customer", {"pk": tables.A("pk")}),
        attrs={"a": {"hx-boost": "false"}},  # a row opens a page, not a swap
    )
    name = tables.Column(
        accessor="last_name", verbose_name="Name", order_by=("last_name", "first_name")
    )
    company = tables.Column()
    reference_id = tables.Column(verbose_name="Reference")
    created_at = tables.DateTimeColumn(verbose_name="Customer since", format="Y-m-d")

    class Meta:
        model = Customer
        fields = ("email", "name", "company", "reference_id", "created_at")
        order_by = ("email",)
        attrs = {"class": "table"}
        empty_text = "No customers match this search."

    def render_name(self, record: Customer) -> str:
        return record.full_name or "—"
