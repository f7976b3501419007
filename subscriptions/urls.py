"""URLs of the subscriptions app: the Purchase and Customer viewers,
subscriptions, renewal runs, reports, settings, notifications, checkout and
the portal's pages."""

from django.urls import path

from . import (
    checkout,
    portal_views,
    refund_views,
    report_views,
    settings_views,
    viewers,
    views,
)
from .notifications import views as notification_views

urlpatterns = [
    path("purchases/<int:pk>/", viewers.purchase_viewer, name="purchase"),
    path("purchases/<int:pk>/refund/", refund_views.refund, name="purchase-refund"),
    path("purchases/<int:pk>/chargeback/", refund_views.chargeback, name="purchase-chargeback"),
    path("gateway/events/", refund_views.gateway_event, name="gateway-event"),
    path("purchases/<int:pk>/invoice.pdf", refund_views.purchase_invoice, name="purchase-invoice"),
    path("purchases/<int:pk>/<slug:tab>/", viewers.purchase_viewer, name="purchase-tab"),
    path("documents/<int:pk>/", refund_views.document, name="document"),
    path("documents/<int:pk>.pdf", refund_views.document, {"pdf": True}, name="document-pdf"),
    path("customers/<int:pk>/", viewers.customer_detail, name="customer"),
    path("subscriptions/", views.subscription_list, name="subscriptions"),
    path("subscriptions/<int:pk>/", views.subscription_detail, name="subscription"),
    path(
        "subscriptions/<int:pk>/actions/<slug:name>/",
        views.subscription_action,
        name="subscription-action",
    ),
    path(
        "subscriptions/<int:pk>/items/<slug:kind>/",
        views.item_change,
        name="subscription-item-change",
    ),
    path("subscriptions/<int:pk>/notes/", views.add_note, name="subscription-note"),
    path("renewals/", views.renewal_runs, name="renewal-runs"),
    path("renewals/start/", views.start_renewal_run, name="renewal-run-start"),
    path("reports/", report_views.reports_home, name="reports"),
    path("reports/<slug:page>/", report_views.report, name="report"),
    path("reports/<slug:page>/<slug:figure>.csv", report_views.report_export, name="report-export"),
    path("settings/", settings_views.settings_page, name="settings"),
    path("settings/clock/", settings_views.advance_clock, name="clock-advance"),
    path("settings/display/", settings_views.display_settings, name="display-settings"),
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
        "settings/webhooks/<int:pk>/retry-failed/",
        notification_views.endpoint_retry_failed,
        name="endpoint-retry-failed",
    ),
    path(
        "settings/webhooks/<int:pk>/toggle/",
        notification_views.endpoint_toggle,
        name="endpoint-toggle",
    ),
    # The customer self-service portal's pages (entering it: customers.urls).
    path("portal/", portal_views.home, name="portal"),
    path("portal/invoices/", portal_views.purchases, name="portal-purchases"),
    path("portal/invoices/<int:pk>/", portal_views.invoice, name="portal-invoice"),
    path("portal/invoices/<int:pk>.pdf", portal_views.purchase_pdf, name="portal-invoice-pdf"),
    path("portal/documents/<int:pk>.pdf", portal_views.document_pdf, name="portal-document-pdf"),
    path("portal/subscriptions/<int:pk>/<slug:action>/", portal_views.act, name="portal-action"),
    path("portal/card/", portal_views.card, name="portal-card"),
    path("portal/contact/", portal_views.contact, name="portal-contact"),
    path("portal/order/", portal_views.order, name="portal-order"),
    path("checkout/<slug:slug>/", checkout.checkout, name="checkout"),
    path("checkout/<slug:slug>/summary/", checkout.summary, name="checkout-summary"),
]
