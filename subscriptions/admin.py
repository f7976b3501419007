"""Subscriptions in Django admin. Statuses are read-only here: a change made
by hand would skip history and notifications, so operators use the actions,
which call the lifecycle services."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .errors import DomainError
from .models import HistoryEntry, RenewalBatch, RenewalRun, Subscription, SubscriptionItem


class SubscriptionItemInline(admin.TabularInline):
    model = SubscriptionItem
    extra = 0
    can_delete = False
    fields = (
        "running_no",
        "product",
        "status",
        "quantity",
        "unit_price",
        "version",
        "last_interval_no",
        "recurrence_count",
        "deactivation_date",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class HistoryInline(admin.TabularInline):
    model = HistoryEntry
    extra = 0
    can_delete = False
    fields = ("created_at", "actor_kind", "actor_label", "event_code", "summary", "before", "after")
    readonly_fields = fields
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "display_id",
        "client",
        "customer",
        "status",
        "renewal_type",
        "next_billing_date",
        "last_interval_no",
        "currency",
    )
    list_filter = ("client", "status", "renewal_type", "sm_version")
    search_fields = ("=id", "customer__email", "customer__last_name")
    list_select_related = ("client", "customer")
    # Read-only: a hand edit would skip history and notifications. Changes go
    # through the lifecycle services (the actions, the back office, the API).
    readonly_fields = tuple(f.name for f in Subscription._meta.concrete_fields if not f.primary_key)
    inlines = [SubscriptionItemInline, HistoryInline]
    actions = ["hand_over"]

    def get_search_results(self, request, queryset, search_term):  # type: ignore[no-untyped-def]
        # "S1042" and "1042" find the same subscription.
        term = search_term.strip()
        if term[:1] in "sS" and term[1:].isdigit():
            term = term[1:]
        return super().get_search_results(request, queryset, term)

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # a deleted subscription would lose its history

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # subscriptions are made by sign-ups (checkout, API), with history

    @admin.action(description="Hand billing over to the client")
    def hand_over(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        actor = services.Actor.staff(request.user)  # type: ignore[arg-type]
        for sub in queryset:
            try:
                services.hand_over_to_client(subscription=sub, actor=actor)
            except DomainError as exc:
                self.message_user(request, f"{sub.display_id}: {exc.reason}", messages.ERROR)


@admin.register(HistoryEntry)
class HistoryEntryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "subscription",
        "client",
        "actor_kind",
        "actor_label",
        "event_code",
        "summary",
    )
    list_filter = ("client", "event_code", "actor_kind")
    search_fields = ("=subscription__id", "actor_label", "summary")
    list_select_related = ("client", "subscription")

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


class RenewalBatchInline(admin.TabularInline):
    """A run's batches: what is still out, how often each was sent."""

    model = RenewalBatch
    fields = ("kind", "attempt", "size", "sent_at", "sends", "done_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="Subscriptions")
    def size(self, batch: RenewalBatch) -> int:
        return len(batch.ids)

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(RenewalRun)
class RenewalRunAdmin(admin.ModelAdmin):
    inlines = [RenewalBatchInline]
    list_display = (
        "id",
        "client",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "due",
        "charged",
        "declined",
        "skipped",
        "errors",
        "reminders",
        "dunning",
        "resumes",
    )
    list_filter = ("client", "status", "trigger")
    search_fields = ("=id",)
    list_select_related = ("client",)
