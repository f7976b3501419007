"""The lifecycle services: the only way subscriptions change.

The back office, the API, the portal, admin actions, management commands and
Celery tasks all call these. Each runs in one transaction together with its
history entry and outbox notification, and refuses an event that the current
state does not allow with a ``DomainError`` carrying a readable reason.
"""

from .account import update_card, update_contact
from .billing import (
    ChargeOutcome,
    advance_dunning,
    charge_next_interval,
    chargeback,
    mark_purchase_paid,
    pay_overdue,
    refund,
    renew_due,
    renew_early,
)
from .changes import (
    add_note,
    await_reinstate,
    change_next_billing_date,
    deactivate_items,
    hand_over_to_client,
    reinstate_items,
    remove_item,
    switch_renewal_type,
)
from .common import SYSTEM, Actor
from .items import (
    Alignment,
    ChargeDeclined,
    CustomerPrice,
    ItemChange,
    Quote,
    change_item,
    product_change,
    quantity_change,
)
from .migration import MigrationPlan, MigrationResult, migrate_to_sm2, plan_sm2_migration
from .signup import (
    CardInput,
    CustomerInput,
    InvoiceInput,
    Line,
    SignUpResult,
    card_errors,
    sign_up,
)

__all__ = [
    "SYSTEM",
    "Actor",
    "Alignment",
    "ChargeDeclined",
    "CustomerPrice",
    "ItemChange",
    "Quote",
    "CardInput",
    "ChargeOutcome",
    "CustomerInput",
    "InvoiceInput",
    "Line",
    "MigrationPlan",
    "MigrationResult",
    "SignUpResult",
    "add_note",
    "advance_dunning",
    "await_reinstate",
    "change_next_billing_date",
    "charge_next_interval",
    "change_item",
    "chargeback",
    "deactivate_items",
    "hand_over_to_client",
    "mark_purchase_paid",
    "migrate_to_sm2",
    "pay_overdue",
    "product_change",
    "quantity_change",
    "plan_sm2_migration",
    "refund",
    "reinstate_items",
    "remove_item",
    "renew_due",
    "renew_early",
    "sign_up",
    "switch_renewal_type",
    "card_errors",
    "update_card",
    "update_contact",
]
