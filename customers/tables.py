import django_tables2 as tables

from commerce.tables import LeanTable

from .models import Customer


class CustomerTable(LeanTable):
    email = tables.Column()
    name = tables.Column(verbose_name="Name", order_by=("last_name", "first_name"))
    company = tables.Column()
    reference_id = tables.Column(verbose_name="Reference")
    created_at = tables.Column(verbose_name="Customer since")

    class Meta(LeanTable.Meta):
        template_name = "tables/customers.html"
        model = Customer
        fields = ("email", "name", "company", "reference_id", "created_at")
        order_by = ("email",)
        empty_text = "No customers match this search."
