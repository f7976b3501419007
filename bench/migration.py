"""SM 1.0 -> 2.0 migration speed (issue 8, docs/lifecycle.md, bench/RESULTS.md) on PostgreSQL.

1. Creates the database ``commerce_bench_migration`` (dropped first): one SM
   1.0 client with SUBS subscriptions (customer, card, one item each): 70 %
   Active – Active, 15 % Deactivated – AwaitingReinstate (manual product),
   10 % Deactivated – Deactivated, 5 % Finished; in set-based SQL.
2. Baseline: one plain SQL ``UPDATE`` of the same rows that leaves them as
   the migration does (SM version, renewal type, status), committed, timed. The rows are then put back and the table
   rewritten (VACUUM FULL), as it was before the baseline.
3. The migration service (``migrate_to_sm2``: history entry per subscription,
   the subscriptions, the items, the client), timed to commit.
Prints both, and the ratio (target <= 1.5).

    .venv/bin/python bench/migration.py                 # 1,000,000
    .venv/bin/python bench/migration.py --subs 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/commerce_bench_migration"
)

GENERATE = """
INSERT INTO commerce_client (id, name, slug, sm_version, grace_period_days, hold_days,
    reminder_days, dunning_retry_days, vat_rate, created_at)
VALUES (1, 'Bench SM 1.0 client', 'bench-sm1', '1.0', 7, 7, 7, '[1, 3, 5]', 0, now());
INSERT INTO commerce_product (id, client_id, name, price, currency, is_subscription,
    initial_interval_months, initial_interval_days, interval_months, interval_days, renewal_mode,
    is_one_time_rebilling, recurrence_count, reminder_days, is_active)
VALUES (1, 1, 'Plan (automatic)', 12.00, 'EUR', true, 1, 0, 1, 0, 'automatic', false, NULL,
        NULL, true),
       (2, 1, 'Plan (manual)', 12.00, 'EUR', true, 1, 0, 1, 0, 'manual', true, NULL, NULL, true);
INSERT INTO customers_customer (id, client_id, email, first_name, last_name, company,
    reference_id, created_at)
SELECT g, 1, 'c' || g || '@bench.example', 'First', 'Last', '', '', now()
FROM generate_series(1, %(subs)s) g;
INSERT INTO customers_paymentmethod (id, customer_id, kind, token, brand, last4, expiry_month,
    expiry_year, created_at)
SELECT g, g, 'card', 'tok_approved_' || g, 'Visa', '4242', 12, 2099, now() FROM generate_series(1, %(subs)s) g;
CREATE TEMP TABLE shape AS
SELECT g, CASE WHEN g %% 20 < 14 THEN 'Active' WHEN g %% 20 < 17 THEN 'Deactivated'
               WHEN g %% 20 < 19 THEN 'Deactivated' ELSE 'Finished' END AS status,
          CASE WHEN g %% 20 < 14 THEN 'Active' WHEN g %% 20 < 17 THEN 'AwaitingReinstate'
               WHEN g %% 20 < 19 THEN 'Deactivated' ELSE 'Finished' END AS item_status
FROM generate_series(1, %(subs)s) g;
INSERT INTO subscriptions_subscription (id, client_id, customer_id, payment_method_id, status,
    sm_version, renewal_type, currency, start_interval_months, start_interval_days,
    interval_months, interval_days, start_date, end_date, anchor_date, anchor_interval_no,
    next_billing_date, last_interval_no, status_changed_at, row_version, created_at,
    reminded_interval_no)
SELECT g, 1, g, g, status, '1.0', NULL, 'EUR', 1, 0, 1, 0, now() - interval '10 days',
       CASE WHEN status = 'Active' THEN NULL ELSE now() - interval '5 days' END,
       now() - interval '10 days', 1, now() + interval '20 days', 1, now() - interval '5 days', 1,
       now(), 1
FROM shape;
INSERT INTO subscriptions_subscriptionitem (id, subscription_id, running_no, product_id, status,
    version, quantity, unit_price, recurrence_count, last_interval_no, start_date, end_date,
    deactivation_date)
SELECT g, g, 1, CASE WHEN item_status = 'AwaitingReinstate' THEN 2 ELSE 1 END, item_status, 1, 1,
       12.00, NULL, 1, now() - interval '10 days', NULL,
       CASE WHEN item_status IN ('Deactivated', 'AwaitingReinstate')
            THEN now() - interval '5 days' END
FROM shape;
"""

SEQUENCES = [
    "commerce_client",
    "commerce_product",
    "customers_customer",
    "customers_paymentmethod",
    "subscriptions_subscription",
    "subscriptions_subscriptionitem",
]

# The subscriptions as the migration leaves them, in one plain UPDATE (no
# history entries, no item changes).
MANUAL = """s.status = 'Deactivated' AND EXISTS (SELECT 1 FROM subscriptions_subscriptionitem i
    WHERE i.subscription_id = s.id AND i.status = 'AwaitingReinstate')"""
BASELINE = f"""UPDATE subscriptions_subscription s SET sm_version = '2.0',
    renewal_type = CASE WHEN {MANUAL} THEN 'Manual' ELSE 'Automatic' END,
    status = CASE WHEN {MANUAL} THEN 'Active' ELSE s.status END,
    row_version = s.row_version + 1 WHERE s.client_id = 1 AND s.sm_version = '1.0'"""
RESET = """UPDATE subscriptions_subscription SET sm_version = '1.0', renewal_type = NULL,
    status = CASE WHEN renewal_type = 'Manual' THEN 'Deactivated' ELSE status END,
    row_version = row_version - 1 WHERE client_id = 1"""


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS commerce_bench_migration WITH (FORCE)")
        conn.execute("CREATE DATABASE commerce_bench_migration")


def generate(subs: int) -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(GENERATE, {"subs": subs})
        for table in SEQUENCES:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    rewrite()
    print(f"generated {subs:,} SM 1.0 subscriptions in {time.perf_counter() - started:.0f}s")


def rewrite() -> None:
    import psycopg

    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("VACUUM FULL ANALYZE subscriptions_subscription")
        conn.execute("VACUUM FULL ANALYZE subscriptions_subscriptionitem")
        conn.execute("VACUUM ANALYZE")


def baseline() -> tuple[int, float]:
    import psycopg

    with psycopg.connect(DB_URL) as conn:
        started = time.perf_counter()
        with conn.transaction():
            rows = conn.execute(BASELINE).rowcount
        elapsed = time.perf_counter() - started
        with conn.transaction():
            conn.execute(RESET)
    rewrite()
    return rows, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subs", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=DB_URL,
        DEBUG="false",
        COMMERCE_DEV="1",
        DJANGO_SETTINGS_MODULE="commerce.settings",
    )
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command

    from commerce.models import Client
    from subscriptions import services
    from subscriptions.models import HistoryEntry

    call_command("migrate", verbosity=0)
    generate(args.subs)
    rows, base_seconds = baseline()
    print(
        f"baseline: one plain UPDATE of {rows:,} subscriptions in {base_seconds:.2f}s", flush=True
    )

    client = Client.objects.get(pk=1)
    plan = services.plan_sm2_migration(client=client)
    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    result = services.migrate_to_sm2(
        client=client,
        actor=services.SYSTEM,
        progress=lambda name: marks.append((name, time.perf_counter())),
    )
    seconds = time.perf_counter() - started
    ends = [t for _, t in marks[1:]] + [started + seconds]
    steps = ", ".join(f"{name} {end - t:.2f}s" for (name, t), end in zip(marks, ends, strict=True))
    print(f"migration steps: start {marks[0][1] - started:.2f}s, {steps} (last incl. commit)")
    assert result.migrated == rows == plan.total, (result, rows, plan.total)
    assert HistoryEntry.objects.filter(event_code="migrateSM2").count() == rows
    print(
        f"migration: {result.migrated:,} subscriptions ({result.manual:,} Manual, "
        f"{result.automatic:,} Automatic, {result.items_reactivated:,} items reactivated, "
        f"{rows:,} history entries) in {seconds:.2f}s",
        flush=True,
    )
    print(f"ratio migration / plain UPDATE = {seconds / base_seconds:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
