"""Operators' raw view across clients: read-mostly, searchable, filterable."""

from django.contrib import admin

from .models import (
    Client,
    Document,
    GatewayCharge,
    OutboxNotification,
    Product,
    Purchase,
    PurchaseItem,
    StaffMembership,
    WebhookDelivery,
    WebhookEndpoint,
)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "slug",
        "sm_version",
        "grace_period_days",
        "hold_days",
        "vat_rate",
        "is_sandbox",
    )
    list_filter = ("sm_version", "is_sandbox")
    search_fields = ("=id", "name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    # The test clock only moves forward, from the client's Settings page.
    readonly_fields = ("clock_offset",)


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "client", "role")
    list_filter = ("client", "role")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user", "client")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "client",
        "price",
        "currency",
        "interval_months",
        "interval_days",
        "renewal_mode",
        "is_one_time_rebilling",
        "recurrence_count",
    )
    list_filter = ("client", "renewal_mode", "is_subscription", "currency")
    search_fields = ("=id", "name")
    list_select_related = ("client",)


class PurchaseItemInline(admin.TabularInline):
    model = PurchaseItem
    extra = 0
    can_delete = False
    readonly_fields = (
        "running_no",
        "product",
        "quantity",
        "unit_price",
        "amount",
        "subscription_item",
        "interval_no",
    )

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "client",
        "customer",
        "category",
        "status",
        "total",
        "currency",
        "subscription",
        "interval_no",
        "created_at",
    )
    list_filter = ("client", "status", "category")
    search_fields = ("=id", "=subscription__id", "customer__email")
    list_select_related = ("client", "customer", "subscription")
    raw_id_fields = ("customer", "subscription", "payment_method")
    inlines = [PurchaseItemInline]
    date_hierarchy = "created_at"
    # Money and payment state change through the services (Mark as paid,
    # renewals, refunds) with their history: read-only here.
    readonly_fields = tuple(f.name for f in Purchase._meta.concrete_fields if not f.primary_key)

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(OutboxNotification)
class OutboxNotificationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "client",
        "type",
        "subscription",
        "purchase",
        "created_at",
        "delivered_at",
    )
    list_filter = ("client", "type", ("delivered_at", admin.EmptyFieldListFilter))
    search_fields = ("=id", "=subscription__id", "=purchase__id")
    list_select_related = ("client",)
    raw_id_fields = ("subscription", "purchase")
    readonly_fields = (
        "id",
        "client",
        "type",
        "payload",
        "subscription",
        "purchase",
        "generate_mail",
        "created_at",
        "delivered_at",
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Operators see endpoints; the secret stays with the client's admin."""

    list_display = ("url", "client", "is_active", "created_at")
    list_filter = ("client", "is_active")
    search_fields = ("url",)
    exclude = ("secret",)
    readonly_fields = ("client", "url", "types", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "notification",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "endpoint__client")
    search_fields = ("=notification__id", "endpoint__url")
    list_select_related = ("notification", "endpoint")
    readonly_fields = (
        "notification",
        "endpoint",
        "attempts",
        "last_attempt_at",
        "last_status_code",
        "last_response",
        "created_at",
        "delivered_at",
    )


@admin.register(GatewayCharge)
class GatewayChargeAdmin(admin.ModelAdmin):
    list_display = (
        "idempotency_key",
        "payment_token",
        "amount",
        "currency",
        "outcome",
        "created_at",
    )
    list_filter = ("outcome",)
    search_fields = ("idempotency_key", "reference")

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    """Invoices and credit notes are frozen when issued: read only."""

    list_display = ("__str__", "client", "purchase", "issued_at", "total", "currency", "reason")
    list_filter = ("kind", "client")
    search_fields = ("purchase__id", "purchase__customer__email")
    readonly_fields = [f.name for f in Document._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
