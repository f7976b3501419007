"""The notification types a client receives (docs/notifications.md), and
which of them also tell the customer by e-mail."""

from __future__ import annotations

from django.db import models

from customers.models import CustomerEmail


class NotificationType(models.TextChoices):
    PAID_ORDER = "PaidOrderNotification"
    NEW_OFFLINE_PAYMENT = "NewOfflinePaymentPurchaseNotification"
    PAYMENT_DECLINED = "OnlinePaymentDeclined"
    BILLING_CANCELED = "RecurringBillingCanceledNotification"
    BILLING_REINSTATED = "RecurringBillingReinstatedNotification"
    RENEWAL_TYPE_CHANGED = "SubscriptionRenewalTypeChangedNotification"
    BILLING_DATE_EXTENDED = "SubscriptionBillingDateExtendedNotification"
    ON_GRACE = "RecurringBillingOnGraceNotification"
    ON_HOLD = "RecurringBillingOnHoldNotification"
    REFUND = "RefundNotification"
    PARTIAL_REFUND = "PartialRefundNotification"
    CHARGEBACK = "ChargebackNotification"
    REMINDER_CHARGE = "SubscriptionReminderChargeNotification"
    REMINDER_OFFLINE = "SubscriptionReminderOfflinePayNotification"
    REMINDER_CARD_EXPIRING = "SubscriptionReminderPayOptExpNotification"


N, K = NotificationType, CustomerEmail.Kind

# Which notification tells the customer what, by e-mail (docs/notifications.md).
EMAIL_KIND: dict[str, str] = {
    N.PAID_ORDER: K.RECEIPT,
    N.NEW_OFFLINE_PAYMENT: K.INVOICE,
    N.PAYMENT_DECLINED: K.PAYMENT_FAILED,
    N.ON_GRACE: K.PAYMENT_FAILED,
    N.ON_HOLD: K.ON_HOLD,
    N.BILLING_CANCELED: K.DEACTIVATED,
    N.BILLING_REINSTATED: K.CHANGED,
    N.RENEWAL_TYPE_CHANGED: K.CHANGED,
    N.BILLING_DATE_EXTENDED: K.CHANGED,
    N.REMINDER_CHARGE: K.REMINDER,
    N.REMINDER_OFFLINE: K.REMINDER,
    N.REMINDER_CARD_EXPIRING: K.REMINDER,
    N.REFUND: K.REFUND,
    N.PARTIAL_REFUND: K.REFUND,
}
