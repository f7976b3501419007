from django.contrib import admin

from .models import Customer, CustomerEmail, PaymentMethod

METHOD_FIELDS = ("kind", "brand", "last4", "expiry_month", "expiry_year", "token", "created_at")


class PaymentMethodInline(admin.TabularInline):
    """Payment methods are the gateway's tokens: read-only here."""

    model = PaymentMethod
    extra = 0
    fields = METHOD_FIELDS
    readonly_fields = METHOD_FIELDS
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("id", "email", "first_name", "last_name", "company", "client", "created_at")
    list_filter = ("client",)
    search_fields = ("=id", "email", "first_name", "last_name", "reference_id")
    list_select_related = ("client",)
    inlines = [PaymentMethodInline]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "kind", "brand", "last4", "expiry_month", "expiry_year")
    list_filter = ("kind", "customer__client")
    search_fields = ("=id", "customer__email")
    raw_id_fields = ("customer",)
    readonly_fields = METHOD_FIELDS

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # cards come in through the gateway (checkout, API, portal)


@admin.register(CustomerEmail)
class CustomerEmailAdmin(admin.ModelAdmin):
    list_display = ("id", "client", "kind", "to", "subject", "created_at", "sent_at")
    list_filter = ("client", "kind", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("=id", "to", "=subscription__id", "=purchase__id")
    list_select_related = ("client",)
    raw_id_fields = ("customer", "subscription", "purchase")
