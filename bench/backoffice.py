"""Back-office speed at 1,000,000 subscriptions (issue 3, bench/RESULTS.md).

Creates a PostgreSQL database ``commerce_bench`` (dropped first), bulk-generates
one client with BIG subscriptions and a baseline client with SMALL ones (each
with its customer, card, item, sign-up purchase and history entry) in set-based
SQL, then times each back-office page in-process with Django's test client:
median server time over N requests and the SQL query count. Printed per page:
the big client's figures, the baseline client's, and their ratio, so "does not
grow with the data" is read off the same run.

    .venv/bin/python bench/backoffice.py            # 1,000,000 subscriptions
    .venv/bin/python bench/backoffice.py --big 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/commerce_bench"
)


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS commerce_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE commerce_bench")


GENERATE = """
INSERT INTO customers_customer (id, client_id, email, first_name, last_name, company, reference_id, created_at)
SELECT g, %(client)s, 'c' || g || '@bench.example', 'First' || (g %% 997), 'Last' || (g %% 991), '', 'REF' || g,
       now() - (g %% 700) * interval '1 hour'
FROM generate_series(%(lo)s, %(hi)s) g;
INSERT INTO customers_paymentmethod (id, customer_id, kind, token, brand, last4, expiry_month,
    expiry_year, created_at)
SELECT g, g, 'card', 'tok_approved_' || g, 'Visa', '4242', 12, 2099, now() FROM generate_series(%(lo)s, %(hi)s) g;
INSERT INTO subscriptions_subscription (id, client_id, customer_id, payment_method_id, status, sm_version,
    renewal_type, currency, start_interval_months, start_interval_days, interval_months, interval_days,
    start_date, end_date, anchor_date, anchor_interval_no, next_billing_date, last_interval_no,
    status_changed_at, row_version, created_at, reminded_interval_no)
SELECT g, %(client)s, g, g,
       (ARRAY['Active','Active','Active','Active','Active','Deactivated','Grace','Hold','Finished','Active'])[1 + g %% 10],
       '2.0', CASE WHEN g %% 3 = 0 THEN 'Manual' ELSE 'Automatic' END, 'EUR', 1, 0, 1, 0,
       now() - (g %% 700) * interval '1 hour', NULL, now() - (g %% 700) * interval '1 hour', 1,
       now() - (g %% 700) * interval '1 hour' + interval '1 month', 1,
       now() - (g %% 700) * interval '1 hour', 1, now(), 0
FROM generate_series(%(lo)s, %(hi)s) g;
INSERT INTO subscriptions_subscriptionitem (id, subscription_id, running_no, product_id, status, version,
    quantity, unit_price, recurrence_count, last_interval_no, start_date, end_date, deactivation_date)
SELECT g, g, 1, %(product)s,
       CASE WHEN g %% 10 IN (5, 8) THEN (CASE WHEN g %% 10 = 5 THEN 'Deactivated' ELSE 'Finished' END) ELSE 'Active' END,
       1, 1, 10.00, NULL, 1, now(), NULL, NULL
FROM generate_series(%(lo)s, %(hi)s) g;
INSERT INTO commerce_purchase (id, client_id, customer_id, subscription_id, category, status, interval_no,
    currency, total, refunded_amount, payment_method_id, charge_attempts, gateway_reference, decline_reason,
    created_at, paid_at)
SELECT g, %(client)s, g, g, 'signup', 'paid', NULL, 'EUR', 10.00, 0, g, 1, 'tg_bench', '',
       now() - (g %% 700) * interval '1 hour', now()
FROM generate_series(%(lo)s, %(hi)s) g;
INSERT INTO commerce_purchaseitem (id, purchase_id, running_no, product_id, quantity, unit_price, amount,
    subscription_item_id, interval_no)
SELECT g, g, 1, %(product)s, 1, 10.00, 10.00, g, 1 FROM generate_series(%(lo)s, %(hi)s) g;
INSERT INTO subscriptions_historyentry (client_id, subscription_id, created_at, actor_kind, actor_label,
    event_code, summary, before, after)
SELECT %(client)s, g, now(), 'system', 'system', 'new', 'Signed up (bench data).', '{}', '{"status": "Active"}'
FROM generate_series(%(lo)s, %(hi)s) g;
"""

# What the reports read beyond sign-ups: ended subscriptions have an end
# date, and half of the subscriptions have a renewal purchase (90 % paid)
# spread over the last 300 days.
REPORT_DATA = """
UPDATE subscriptions_subscription SET end_date = start_date + interval '20 days'
WHERE client_id = %(client)s AND status IN ('Deactivated', 'Finished');
INSERT INTO commerce_purchase (id, client_id, customer_id, subscription_id, category, status, interval_no,
    currency, total, refunded_amount, payment_method_id, charge_attempts, gateway_reference, decline_reason,
    created_at, paid_at)
SELECT %(offset)s + g, %(client)s, g, g, 'renewal', CASE WHEN g %% 10 = 0 THEN 'declined' ELSE 'paid' END,
       2, 'EUR', 10.00, 0, g, 1, 'tg_bench', '', now() - (g %% 300) * interval '1 day',
       CASE WHEN g %% 10 = 0 THEN NULL ELSE now() - (g %% 300) * interval '1 day' END
FROM generate_series(%(lo)s, %(hi)s) g WHERE g %% 2 = 0;
"""

SEQUENCES = [
    "customers_customer",
    "customers_paymentmethod",
    "subscriptions_subscription",
    "subscriptions_subscriptionitem",
    "commerce_purchase",
    "commerce_purchaseitem",
]


def generate(small: int, big: int) -> dict[str, int]:
    from django.db import connection

    from commerce.models import Client, Product

    ids = {}
    ranges = {"small": (1, small), "big": (small + 1, small + big)}
    for name, (lo, hi) in ranges.items():
        client = Client.objects.create(name=f"Bench {name}", slug=f"bench-{name}")
        product = Product.objects.create(client=client, name="Bench plan", price=10)
        started = time.perf_counter()
        with connection.cursor() as cur:
            params = {"client": client.pk, "product": product.pk, "lo": lo, "hi": hi}
            cur.execute(GENERATE, params)
            cur.execute(REPORT_DATA, {**params, "offset": small + big})
        print(
            f"generated {hi - lo + 1:>9,} subscriptions for {client.name} "
            f"in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        ids[name] = client.pk
    with connection.cursor() as cur:
        for table in SEQUENCES:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cur.execute("VACUUM ANALYZE")
    return ids


def pages(client_pk: int) -> list[tuple[str, str]]:
    from commerce.models import Product, Purchase
    from subscriptions.models import Subscription

    purchase = Purchase.objects.filter(client_id=client_pk, category="signup").order_by("-id")[500]
    # Page 10,000 as its Next link reaches it: after the last row of page 9,999
    # (docs/back-office.md); the small client has no such page (it shows page 1).
    subs = Subscription.objects.filter(client_id=client_pk).order_by("-id")
    last = subs.values_list("pk", flat=True)[9_999 * 25 - 1 : 9_999 * 25].first()
    product = Product.objects.filter(client_id=client_pk).get()
    email = purchase.customer.email
    viewer = [
        (f"viewer: {tab}", f"/purchases/{purchase.pk}/{tab}/")
        for tab in [
            "overview",
            "items",
            "customer",
            "billing",
            "payments",
            "emails",
            "notifications",
            "history",
        ]
    ]
    return [
        ("purchase search, page 1", "/purchases/"),
        ("purchase search, by e-mail", f"/purchases/?q={email}"),
        ("purchase search, by S-id", f"/purchases/?q=S{purchase.subscription_id}"),
        ("purchase search, by name prefix", "/purchases/?q=Last98"),
        ("customer search, by name prefix", "/customers/?q=Last98"),
        ("subscription list, page 1", "/subscriptions/"),
        ("subscription list, page 10,000", "/subscriptions/?page=10000"),
        (
            "subscription list, page 10,000 by Next",
            f"/subscriptions/?page=10000&after={last}" if last else "/subscriptions/",
        ),
        ("subscription list, status filter", "/subscriptions/?status=Grace"),
        ("customer list, page 1", "/customers/"),
        *viewer,
        *[
            (f"report: {page}", f"/reports/{page}/")
            for page in ("overview", "mrr", "revenue", "churn", "renewals", "upcoming")
        ],
        *[
            (f"report: {page}, by product", f"/reports/{page}/?product={product.pk}")
            for page in ("overview", "revenue", "churn")
        ],
    ]


def count_rollups(ids: dict[str, int]) -> None:
    """The reports read rollups (docs/reports.md): build them from the raw
    tables (``rebuild``)."""
    from subscriptions import rollups

    for name, pk in ids.items():
        started = time.perf_counter()
        counts = rollups.rebuild(pk)
        took = time.perf_counter() - started
        print(f"rebuilt rollups of {name} ({counts}) in {took:.1f}s", flush=True)


def time_rollup_job(ids: dict[str, int]) -> None:
    """The incremental job on 1 % of the big client's subscriptions changed by
    one bulk UPDATE (their next billing date moves a month)."""
    from django.db import connection

    from subscriptions import rollups

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE subscriptions_subscription SET next_billing_date = next_billing_date"
            " + interval '1 month' WHERE client_id = %s AND id %% 100 = 0",
            [ids["big"]],
        )
        changed = cur.rowcount
    started = time.perf_counter()
    rollups.catch_up(ids["big"])
    took = time.perf_counter() - started
    print(
        f"rollup job: {changed:,} changed subscriptions counted in {took:.2f}s "
        f"({changed / took:,.0f}/s)",
        flush=True,
    )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


def measure(staff: object, url: str, repeat: int) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings, queries, status = [], 0, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = staff.get(
                url,
                secure=True,  # DEBUG is off: HTTPS only, as in production
                headers={"HX-Request": "true"}
                if "/purchases/" in url and url.count("/") > 3
                else {},
            )
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            timings.append((time.perf_counter() - started) * 1000)
        queries, status = len(captured.captured_queries), response.status_code
    return statistics.median(timings), queries, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--reuse", action="store_true", help="keep the generated database")
    parser.add_argument(
        "--rebuild", action="store_true", help="with --reuse: rebuild the rollups again"
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = BENCH_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commerce.settings")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("COMMERCE_DEV", "1")
    if not args.reuse:
        recreate_database()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client as TestClient

    from commerce.models import Client, StaffMembership

    settings.ALLOWED_HOSTS = ["*"]
    if not args.reuse:
        call_command("migrate", verbosity=0)
        ids = generate(args.small, args.big)
        count_rollups(ids)
    else:
        ids = {n: Client.objects.get(slug=f"bench-{n}").pk for n in ("small", "big")}
        if args.rebuild:
            count_rollups(ids)
    time_rollup_job(ids)
    results = {}
    for name, pk in ids.items():
        user, _ = get_user_model().objects.get_or_create(username=f"bench-{name}")
        StaffMembership.objects.get_or_create(user=user, client_id=pk, defaults={"role": "support"})
        staff = TestClient()
        staff.force_login(user)
        results[name] = {label: measure(staff, url, args.repeat) for label, url in pages(pk)}
    print(f"\n{'page':<36}{'big ms':>9}{'queries':>9}{'small ms':>10}{'queries':>9}{'ratio':>7}")
    for label, (ms, queries, status) in results["big"].items():
        small_ms, small_queries, _ = results["small"][label]
        flag = "" if status == 200 else f"  HTTP {status}"
        print(
            f"{label:<36}{ms:>9.1f}{queries:>9}{small_ms:>10.1f}{small_queries:>9}"
            f"{ms / small_ms:>7.2f}{flag}"
        )
    print(
        f"\nbig = {args.big:,} subscriptions in one client; small = {args.small:,}; "
        f"median of {args.repeat} requests, server time in-process."
    )


if __name__ == "__main__":
    main()
