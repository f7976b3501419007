"""The plain-renewal path of a charge batch in set-based SQL (PostgreSQL).

``renewals.charge_batch`` uses it on PostgreSQL: claiming a batch is two
statements and recording its approved charges is three, whatever the batch
size, and no model instance is built per row. The rows written are the
ones the per-row services write (``services.billing.apply_paid_renewal``):
the paid renewal purchase, the subscription's next interval and billing
date, the charged items' interval count, a ``renewed`` history entry with
before/after, a ``PaidOrderNotification`` outbox row with the purchase
payload, and a receipt e-mail (rendered when sent).
``tests/subscriptions/test_renewal_engine.py`` compares the two paths.

Billing dates follow ``subscriptions.dates.interval_start``: PostgreSQL adds
an interval's months first (clamping to the month's last day) and then its
days, as ``relativedelta`` does, in the connection's time zone (UTC).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from commerce import webhooks
from customers.emails import SUBJECTS
from customers.models import CustomerEmail, PaymentMethod

from . import notifications as n


@dataclass
class Claim:
    """A claimed plain renewal: its pending purchase, ready to charge."""

    sub_id: int
    purchase_id: int
    interval_no: int
    attempts: int  # charge attempts before this one
    amount: Decimal
    currency: str
    payment_method: PaymentMethod

    @property
    def key(self) -> str:
        return f"renewal:{self.sub_id}:{self.interval_no}:{self.attempts + 1}"


# One statement claims a batch: it locks the still-due subscriptions among
# the ids (skipping rows another worker holds), decides which renew on the
# plain path (paid by card, not manual, with an Active item, none at its last
# billing event and, in SM 1.0, none of a manual product; see
# ``renewals._is_plain``), and opens a pending renewal purchase with a line
# per Active item for each plain one that has none yet (the unique key on
# subscription + interval holds it to one). It returns the claimed rows
# ('c') and the purchases it opened ('n'), merged in Python rather than
# joined, so the plan never depends on the planner's guess of batch sizes.
CLAIM = """
WITH claimed AS MATERIALIZED (
    SELECT s.id, s.client_id, s.customer_id, s.payment_method_id,
           s.last_interval_no + 1 AS interval_no, s.currency, pm.kind, pm.card_number,
           p.id AS purchase_id, p.charge_attempts, p.total,
           pm.kind = 'card'
           AND s.renewal_type IS DISTINCT FROM 'Manual'
           AND (p.id IS NULL OR p.status = 'pending')
           AND EXISTS (SELECT 1 FROM subscriptions_subscriptionitem i
                       WHERE i.subscription_id = s.id AND i.status = 'Active')
           AND NOT EXISTS (
               SELECT 1 FROM subscriptions_subscriptionitem i
               JOIN commerce_product pr ON pr.id = i.product_id
               WHERE i.subscription_id = s.id AND i.status = 'Active'
                 AND ((i.recurrence_count IS NOT NULL
                       AND i.last_interval_no >= i.recurrence_count)
                      OR (s.sm_version = '1.0' AND pr.renewal_mode = 'manual'))) AS plain
    FROM subscriptions_subscription s
    JOIN customers_paymentmethod pm ON pm.id = s.payment_method_id
    LEFT JOIN commerce_purchase p ON p.subscription_id = s.id AND p.category = 'renewal'
         AND p.interval_no = s.last_interval_no + 1
    WHERE s.id = ANY(%(ids)s) AND s.status = 'Active' AND s.next_billing_date <= %(as_of)s
    ORDER BY s.id
    FOR UPDATE OF s SKIP LOCKED
), new AS (
    INSERT INTO commerce_purchase (client_id, customer_id, subscription_id, category, status,
        interval_no, currency, total, refunded_amount, payment_method_id, charge_attempts,
        gateway_reference, decline_reason, created_at, paid_at)
    SELECT c.client_id, c.customer_id, c.id, 'renewal', 'pending', c.interval_no, c.currency,
           (SELECT sum(i.unit_price * i.quantity) FROM subscriptions_subscriptionitem i
            WHERE i.subscription_id = c.id AND i.status = 'Active'),
           0, c.payment_method_id, 0, '', '', %(as_of)s, NULL
    FROM claimed c
    WHERE c.plain AND c.purchase_id IS NULL
    -- A claim that committed after this statement's snapshot opened it
    -- already: that worker is charging it, so this one leaves it.
    ON CONFLICT (subscription_id, interval_no) WHERE category = 'renewal' DO NOTHING
    RETURNING id, subscription_id, interval_no, total
), lines AS (
    INSERT INTO commerce_purchaseitem (purchase_id, running_no, product_id, quantity,
        unit_price, amount, subscription_item_id, interval_no)
    SELECT new.id, row_number() OVER (PARTITION BY new.id ORDER BY i.running_no),
           i.product_id, i.quantity, i.unit_price, i.unit_price * i.quantity, i.id,
           new.interval_no
    FROM new JOIN subscriptions_subscriptionitem i
         ON i.subscription_id = new.subscription_id AND i.status = 'Active'
)
SELECT 'c', id, interval_no, currency, payment_method_id, kind, card_number, purchase_id,
       charge_attempts, total, plain
FROM claimed
UNION ALL
SELECT 'n', subscription_id, NULL, NULL, NULL, NULL, NULL, id, 0, total, NULL FROM new
"""

# Timestamps as Python's isoformat() writes them for UTC.
_ISO = (
    "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN extract(microseconds FROM {0})::bigint %% 1000000 = 0 THEN ''"
    " ELSE to_char({0} AT TIME ZONE 'UTC', '.US') END"
)


def _iso(column: str) -> str:
    return _ISO.format(column) + " || '+00:00'"


def _iso_z(column: str) -> str:
    return _ISO.format(column) + " || 'Z'"


RECORD_PAID = f"""
WITH paid AS (
    -- References come as one JSON object (purchase id: reference): a lookup
    -- per row, not a join the planner may turn into a nested loop.
    UPDATE commerce_purchase p
    SET status = 'paid', paid_at = %(at)s, gateway_reference = %(refs)s::jsonb ->> p.id::text,
        charge_attempts = p.charge_attempts + 1
    WHERE p.id = ANY(%(ids)s) AND p.status = 'pending'
    RETURNING p.id, p.subscription_id, p.interval_no, p.total, p.currency, p.customer_id
), steps AS (
    SELECT paid.*, s.client_id, s.status, s.renewal_type, s.anchor_date,
           s.next_billing_date AS old_date, s.last_interval_no AS old_no,
           paid.interval_no + 1 - s.anchor_interval_no AS n_steps,
           CASE WHEN s.anchor_interval_no = 1 AND paid.interval_no + 1 > 1 THEN 1 ELSE 0 END
               AS initial_steps,
           s.start_interval_months, s.start_interval_days, s.interval_months, s.interval_days
    FROM paid JOIN subscriptions_subscription s ON s.id = paid.subscription_id
    WHERE s.last_interval_no < paid.interval_no
), renewed AS (
    SELECT steps.*,
           anchor_date + make_interval(
               months => (start_interval_months * initial_steps
                          + interval_months * (n_steps - initial_steps))::int,
               days => (start_interval_days * initial_steps
                        + interval_days * (n_steps - initial_steps))::int) AS new_date
    FROM steps
), subs AS (
    UPDATE subscriptions_subscription s
    SET last_interval_no = r.interval_no, next_billing_date = r.new_date,
        row_version = s.row_version + 1
    FROM renewed r WHERE s.id = r.subscription_id
), items AS (
    UPDATE subscriptions_subscriptionitem i SET last_interval_no = i.last_interval_no + 1
    FROM commerce_purchaseitem pi JOIN renewed r ON pi.purchase_id = r.id
    WHERE i.id = pi.subscription_item_id
), history AS (
    INSERT INTO subscriptions_historyentry (client_id, subscription_id, created_at, actor_kind,
        actor_label, staff_user_id, event_code, summary, before, after)
    SELECT client_id, subscription_id, %(at)s, 'system', 'system', NULL, 'renewed',
           'Renewed: interval ' || interval_no || ' paid (' || total || ' ' || currency
           || ', purchase ' || id || '); next billing date '
           || to_char(new_date AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '.',
           jsonb_build_object('next_billing_date', {_iso("old_date")},
                              'last_interval_no', old_no),
           jsonb_build_object('next_billing_date', {_iso("new_date")},
                              'last_interval_no', interval_no)
    FROM renewed
), outbox AS (
    INSERT INTO commerce_outboxnotification (id, client_id, type, payload, subscription_id,
        purchase_id, generate_mail, created_at, delivered_at)
    SELECT gen_random_uuid(), r.client_id, %(notification)s,
           jsonb_build_object('Purchase', jsonb_build_object(
               'Id', r.id, 'CustomerId', r.customer_id, 'Category', 'renewal',
               'Status', 'paid', 'Total', r.total::text, 'CurrencyId', r.currency,
               'Items', coalesce((
                   -- per purchase (a correlated subquery: an index lookup each,
                   -- whatever the planner guesses of the batch size)
                   SELECT jsonb_agg(
                       jsonb_build_object('RunningNo', pi.running_no,
                           'ProductId', pi.product_id, 'Quantity', pi.quantity,
                           'UnitPrice', pi.unit_price::text, 'Amount', pi.amount::text)
                       || CASE WHEN si.id IS NULL THEN '{{}}'::jsonb ELSE jsonb_build_object(
                           'RecurringBilling', jsonb_build_object(
                               'SubscriptionId', 'S' || r.subscription_id,
                               'SubscriptionItemRunningNo', si.running_no,
                               'SubscriptionEventtypeId', 'renewed',
                               'IntervalNo', pi.interval_no,
                               'NextBillingDate', {_iso_z("r.new_date")},
                               'Status', r.status, 'ItemStatus', si.status,
                               'RenewalType', r.renewal_type, 'CancellationUrl', '')) END
                       ORDER BY pi.running_no)
                   FROM commerce_purchaseitem pi
                   LEFT JOIN subscriptions_subscriptionitem si
                        ON si.id = pi.subscription_item_id
                        AND si.subscription_id = r.subscription_id
                   WHERE pi.purchase_id = r.id), '[]'::jsonb))),
           r.subscription_id, r.id, true, %(at)s, NULL
    FROM renewed r
), mail AS (
    INSERT INTO customers_customeremail (client_id, customer_id, subscription_id, purchase_id,
        kind, notification, "to", subject, body_text, body_html, created_at, sent_at, error)
    SELECT r.client_id, r.customer_id, r.subscription_id, r.id, %(kind)s, %(notification)s,
           c.email,
           replace(replace(%(subject)s, '{{client}}', cl.name), '{{date}}',
                   to_char(r.new_date AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
           '', '', %(at)s, NULL, ''
    FROM renewed r JOIN customers_customer c ON c.id = r.customer_id
    JOIN commerce_client cl ON cl.id = r.client_id
)
SELECT (SELECT count(*) FROM paid), (SELECT count(*) FROM renewed)
"""


def claim(ids: list[int], *, as_of: datetime) -> tuple[list[Claim], list[int]]:
    """Claim the still-due subscriptions among ``ids`` (``CLAIM``). Returns
    the plain ones, and the ids of the others, for the per-row services.
    Runs in the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(CLAIM, {"ids": ids, "as_of": as_of})
        rows = cursor.fetchall()
    opened = {row[1]: (row[7], row[9]) for row in rows if row[0] == "n"}
    plain, special = [], []
    for _, sub_id, interval_no, currency, pm_id, kind, card, pk, attempts, total, is_plain in (
        row for row in rows if row[0] == "c"
    ):
        if not is_plain:
            special.append(sub_id)
            continue
        if pk is None:
            if sub_id not in opened:
                continue  # opened by a concurrent claim (see CLAIM): skipped here
            (pk, total), attempts = opened[sub_id], 0
        method = PaymentMethod(pk=pm_id, kind=kind, card_number=card)
        plain.append(Claim(sub_id, pk, interval_no, attempts, total, currency, method))
    return plain, special


def record_paid(paid: list[tuple[int, str]], *, at: datetime) -> int:
    """Record approved charges given as (purchase id, gateway reference):
    each still-pending purchase is paid and its subscription renewed, with
    history, outbox row and receipt e-mail. Returns how many purchases this
    call recorded (a concurrent batch may have recorded the others). Runs in
    the caller's transaction."""
    if not paid:
        return 0
    ids = sorted(pk for pk, _ in paid)
    params: dict[str, Any] = {
        "ids": [pk for pk, _ in paid],
        "refs": json.dumps({str(pk): ref for pk, ref in paid}),
        "at": at,
        "notification": n.PAID_ORDER,
        "kind": CustomerEmail.Kind.RECEIPT,
        "subject": SUBJECTS[CustomerEmail.Kind.RECEIPT],
    }
    with connection.cursor() as cursor:
        # Lock in one order (purchases, then their subscriptions, as the
        # per-row services do) so two batches never wait on each other in a circle.
        cursor.execute(
            "SELECT subscription_id FROM commerce_purchase WHERE id = ANY(%s) ORDER BY id "
            "FOR UPDATE",
            [ids],
        )
        sub_ids = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT id FROM subscriptions_subscription WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [sub_ids],
        )
        cursor.execute(RECORD_PAID, params)
        recorded, renewed = cursor.fetchone()
    if renewed:
        webhooks.deliver_after_commit()
    return int(recorded)
