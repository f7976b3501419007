from django.contrib import admin

from .models import Customer, CustomerEmail, PaymentMethod


class PaymentMethodInline(admin.TabularInline):
    model = PaymentMethod
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("id", "email", "first_name", "last_name", "company", "client", "created_at")
    list_filter = ("client",)
    search_fields = ("=id", "email", "first_name", "last_name", "reference_id")
    list_select_related = ("client",)
    inlines = [PaymentMethodInline]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "kind", "expiry_month", "expiry_year")
    list_filter = ("kind", "customer__client")
    search_fields = ("=id", "customer__email")
    raw_id_fields = ("customer",)


@admin.register(CustomerEmail)
class CustomerEmailAdmin(admin.ModelAdmin):
    list_display = ("id", "client", "kind", "to", "subject", "created_at", "sent_at")
    list_filter = ("client", "kind", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("=id", "to", "=subscription__id", "=purchase__id")
    list_select_related = ("client",)
    raw_id_fields = ("customer", "subscription", "purchase")
