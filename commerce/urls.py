from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from customers import portal_views
from customers import views as customer_views
from subscriptions import report_views
from subscriptions import views as subscription_views

from . import checkout, notification_views, settings_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("purchases/", views.purchase_search, name="purchases"),
    path("purchases/export.csv", views.purchase_export, name="purchase-export"),
    path("purchases/<int:pk>/", views.purchase_viewer, name="purchase"),
    path("purchases/<int:pk>/<slug:tab>/", views.purchase_viewer, name="purchase-tab"),
    path("subscriptions/", subscription_views.subscription_list, name="subscriptions"),
    path("subscriptions/<int:pk>/", subscription_views.subscription_detail, name="subscription"),
    path(
        "subscriptions/<int:pk>/actions/<slug:name>/",
        subscription_views.subscription_action,
        name="subscription-action",
    ),
    path(
        "subscriptions/<int:pk>/items/<slug:kind>/",
        subscription_views.item_change,
        name="subscription-item-change",
    ),
    path("subscriptions/<int:pk>/notes/", subscription_views.add_note, name="subscription-note"),
    path("renewals/", subscription_views.renewal_runs, name="renewal-runs"),
    path("renewals/start/", subscription_views.start_renewal_run, name="renewal-run-start"),
    path("reports/", report_views.reports_home, name="reports"),
    path("reports/<slug:page>/", report_views.report, name="report"),
    path("reports/<slug:page>/<slug:figure>.csv", report_views.report_export, name="report-export"),
    path("customers/", customer_views.customer_list, name="customers"),
    path("customers/<int:pk>/", customer_views.customer_detail, name="customer"),
    path("settings/", settings_views.settings_page, name="settings"),
    path("settings/clock/", settings_views.advance_clock, name="clock-advance"),
    path("settings/sm2-migration/", settings_views.sm2_migration, name="sm2-migration"),
    path(
        "settings/api-credentials/",
        settings_views.create_api_credential,
        name="api-credential-create",
    ),
    path(
        "settings/api-credentials/<int:pk>/revoke/",
        settings_views.revoke_api_credential,
        name="api-credential-revoke",
    ),
    path("notifications/", notification_views.notifications, name="notifications"),
    path(
        "notifications/deliveries/<int:pk>/resend/",
        notification_views.resend,
        name="delivery-resend",
    ),
    path("settings/webhooks/new/", notification_views.endpoint_create, name="endpoint-create"),
    path(
        "settings/webhooks/<int:pk>/rotate/",
        notification_views.endpoint_rotate,
        name="endpoint-rotate",
    ),
    path(
        "settings/webhooks/<int:pk>/toggle/",
        notification_views.endpoint_toggle,
        name="endpoint-toggle",
    ),
    # The customer self-service portal (SPEC 10).
    path("portal/", portal_views.home, name="portal"),
    path("portal/enter/<str:token>/", portal_views.enter, name="portal-enter"),
    path("portal/link/<slug:slug>/", portal_views.request_link, name="portal-request-link"),
    path("portal/leave/", portal_views.leave, name="portal-leave"),
    path("portal/invoices/", portal_views.purchases, name="portal-purchases"),
    path("portal/invoices/<int:pk>/", portal_views.invoice, name="portal-invoice"),
    path("portal/subscriptions/<int:pk>/<slug:action>/", portal_views.act, name="portal-action"),
    path("portal/card/", portal_views.card, name="portal-card"),
    path("portal/contact/", portal_views.contact, name="portal-contact"),
    path("checkout/<slug:slug>/", checkout.checkout, name="checkout"),
    path("api/", include("subscriptions.api.urls")),
    path("admin/", admin.site.urls),
]
