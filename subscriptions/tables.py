import django_tables2 as tables
from django.db.models import Prefetch, QuerySet

from commerce.tables import LeanTable

from .models import RenewalRun, Subscription, SubscriptionItem


def listed(subscriptions: QuerySet[Subscription]) -> QuerySet[Subscription]:
    """What a SubscriptionTable row reads: the customer, the items and their products."""
    items = SubscriptionItem.objects.select_related("product").order_by("running_no")
    return subscriptions.select_related("customer").prefetch_related(Prefetch("items", items))


class SubscriptionTable(LeanTable):
    """Rows read the items (``listed``): the products, the amount the next
    renewal bills and, for SM 1.0, how each Active item renews."""

    numeric = ("amount", "last_interval_no")
    id = tables.Column(verbose_name="Subscription")
    customer = tables.Column(verbose_name="Customer", order_by=("customer__email",))
    products = tables.Column(verbose_name="Products", empty_values=(), orderable=False)
    amount = tables.Column(verbose_name="Amount", empty_values=(), orderable=False)
    status = tables.Column()
    renewal_type = tables.Column(verbose_name="Renewal")
    next_billing_date = tables.Column(verbose_name="Next billing (UTC)")
    last_interval_no = tables.Column(verbose_name="Intervals paid")
    start_date = tables.Column(verbose_name="Started (UTC)")

    class Meta(LeanTable.Meta):
        template_name = "tables/subscriptions.html"
        model = Subscription
        fields = (
            "id",
            "customer",
            "products",
            "amount",
            "status",
            "renewal_type",
            "next_billing_date",
            "last_interval_no",
            "start_date",
        )
        order_by = ("-id",)
        empty_text = "No subscriptions match this search."


class RenewalRunTable(LeanTable):
    numeric = ("due", "charged", "declined", "skipped", "errors", "reminders", "dunning")
    started_at = tables.Column(verbose_name="Started (UTC)")
    finished_at = tables.Column(verbose_name="Finished (UTC)")
    trigger = tables.Column()
    due = tables.Column()
    charged = tables.Column()
    declined = tables.Column()
    skipped = tables.Column()
    errors = tables.Column()
    reminders = tables.Column()
    dunning = tables.Column(verbose_name="Dunning moves")

    class Meta(LeanTable.Meta):
        template_name = "tables/renewal_runs.html"
        model = RenewalRun
        fields = (
            "started_at",
            "finished_at",
            "trigger",
            "due",
            "charged",
            "declined",
            "skipped",
            "errors",
            "reminders",
            "dunning",
        )
        order_by = ("-started_at",)
        empty_text = "No renewal runs yet. The schedule sweeps every few minutes."
