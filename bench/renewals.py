"""Renewal throughput (issue 4, bench/RESULTS.md) on PostgreSQL + Redis with real workers.

1. Creates the database ``commerce_bench_renewals`` (dropped first) with 50
   clients and SUBS subscriptions (customer, card, one item each), 2 x DUE of
   them due now, in set-based SQL.
2. Reference: the same writes a renewal makes (renewal purchase and its item,
   gateway ledger row, subscription dates, item count, history entry, outbox
   row, e-mail row) as a handful of set-based SQL statements in one
   transaction, for the first DUE of the due subscriptions; timed to commit.
   Each timed measurement starts right after a ``CHECKPOINT``.
3. The engine: two worker processes (``celery worker --concurrency 2``) on
   Redis, one ``sweep`` task, for the other DUE; timed from sending it until
   every run is finished. Prints renewals/s, the reference's, and the ratio.
   With ``--rounds N`` (default 3) both renewed halves are made due again and
   measured again, N times in all; each round's ratio and their median are
   printed (one round moves by ±10% between runs). The first round's
   receipts go to the e-mail queue (as in production); they are then sent by
   two worker processes on that queue, timed separately.
4. With ``--latency-ms 100`` it then runs a smaller due set at several worker
   concurrencies and prints how throughput scales.

    .venv/bin/python bench/renewals.py                      # 1,000,000 / 100,000
    .venv/bin/python bench/renewals.py --subs 100000 --due 10000 --latency-ms 0
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/commerce_bench_renewals"
)
BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CLIENTS = 50

GENERATE = """
INSERT INTO commerce_client (id, name, slug, sm_version, grace_period_days, hold_days, reminder_days,
    dunning_retry_days, vat_rate, created_at)
SELECT c, 'Bench client ' || c, 'bench-' || c, '2.0', 7, 7, 7, '[1, 3, 5]', 0, now()
FROM generate_series(1, %(clients)s) c;
INSERT INTO commerce_product (id, client_id, name, price, currency, is_subscription,
    initial_interval_months, initial_interval_days, interval_months, interval_days, renewal_mode,
    is_one_time_rebilling, recurrence_count, reminder_days, is_active)
SELECT c, c, 'Plan', 12.00, 'EUR', true, 1, 0, 1, 0, 'automatic', false, NULL, NULL, true
FROM generate_series(1, %(clients)s) c;
INSERT INTO customers_customer (id, client_id, email, first_name, last_name, company, reference_id, created_at)
SELECT g, 1 + g %% %(clients)s, 'c' || g || '@bench.example', 'First', 'Last', '', '', now()
FROM generate_series(1, %(subs)s) g;
INSERT INTO customers_paymentmethod (id, customer_id, kind, token, brand, last4, expiry_month,
    expiry_year, created_at)
SELECT g, g, 'card', 'tok_approved_' || g, 'Visa', '4242', 12, 2099, now() FROM generate_series(1, %(subs)s) g;
INSERT INTO subscriptions_subscription (id, client_id, customer_id, payment_method_id, status, sm_version,
    renewal_type, currency, start_interval_months, start_interval_days, interval_months, interval_days,
    start_date, end_date, anchor_date, anchor_interval_no, next_billing_date, last_interval_no,
    status_changed_at, row_version, created_at, reminded_interval_no)
SELECT g, 1 + g %% %(clients)s, g, g, 'Active', '2.0', 'Automatic', 'EUR', 1, 0, 1, 0,
       t.start, NULL, t.start, 1, t.start + interval '1 month', 1, t.start, 1, now(), 2
FROM generate_series(1, %(subs)s) g
CROSS JOIN LATERAL (SELECT CASE WHEN g %% (%(subs)s / (2 * %(due)s)) = 0
                                THEN now() - interval '1 month' - interval '1 hour'
                                ELSE now() - interval '1 day' END AS start) t;
INSERT INTO subscriptions_subscriptionitem (id, subscription_id, running_no, product_id, status, version,
    quantity, unit_price, recurrence_count, last_interval_no, start_date, end_date, deactivation_date)
SELECT g, g, 1, 1 + g %% %(clients)s, 'Active', 1, 1, 12.00, NULL, 1, now(), NULL, NULL
FROM generate_series(1, %(subs)s) g;
"""

SEQUENCES = [
    "commerce_client",
    "commerce_product",
    "customers_customer",
    "customers_paymentmethod",
    "subscriptions_subscription",
    "subscriptions_subscriptionitem",
]

# The writes of one renewal, set-based: what the engine must at least do.
REFERENCE = [
    """CREATE TEMP TABLE due ON COMMIT DROP AS
       SELECT s.id, s.client_id, s.customer_id, s.payment_method_id, s.last_interval_no + 1 AS n,
              s.anchor_date + (s.last_interval_no + 1) * interval '1 month' AS next_date
       FROM subscriptions_subscription s
       WHERE s.status = 'Active' AND s.next_billing_date <= now()
       ORDER BY s.id LIMIT %(due)s""",
    """INSERT INTO commerce_gatewaycharge (idempotency_key, payment_token, payment_method_ref, amount,
           currency, outcome, reference, message, created_at)
       SELECT 'ref:' || id || ':' || n, 'tok_approved_' || payment_method_id, payment_method_id::text, 12.00, 'EUR',
              'approved', 'tg_' || id, '', now() FROM due""",
    """INSERT INTO commerce_purchase (client_id, customer_id, subscription_id, category, status,
           interval_no, currency, total, refunded_amount, payment_method_id, charge_attempts,
           gateway_reference, decline_reason, created_at, paid_at)
       SELECT client_id, customer_id, id, 'renewal', 'paid', n, 'EUR', 12.00, 0, payment_method_id, 1,
              'tg_' || id, '', now(), now() FROM due""",
    """INSERT INTO commerce_purchaseitem (purchase_id, running_no, product_id, quantity, unit_price,
           amount, subscription_item_id, interval_no)
       SELECT p.id, 1, i.product_id, 1, 12.00, 12.00, i.id, p.interval_no
       FROM commerce_purchase p JOIN due d ON d.id = p.subscription_id AND p.interval_no = d.n
       JOIN subscriptions_subscriptionitem i ON i.subscription_id = d.id
       WHERE p.category = 'renewal'""",
    """UPDATE subscriptions_subscription s SET last_interval_no = d.n, next_billing_date = d.next_date,
           row_version = s.row_version + 1 FROM due d WHERE s.id = d.id""",
    """UPDATE subscriptions_subscriptionitem i SET last_interval_no = i.last_interval_no + 1
       FROM due d WHERE i.subscription_id = d.id AND i.status = 'Active'""",
    """INSERT INTO subscriptions_historyentry (client_id, subscription_id, created_at, actor_kind,
           actor_label, event_code, summary, before, after)
       SELECT client_id, id, now(), 'system', 'system', 'renewed', 'Renewed: interval ' || n || ' paid.',
              '{}', '{}' FROM due""",
    """INSERT INTO commerce_outboxnotification (id, client_id, type, payload, subscription_id,
           generate_mail, created_at)
       SELECT gen_random_uuid(), client_id, 'PaidOrderNotification',
              json_build_object('SubscriptionId', 'S' || id, 'IntervalNo', n), id, true, now() FROM due""",
    """INSERT INTO customers_customeremail (client_id, customer_id, subscription_id, kind, "to", subject,
           body_text, body_html, created_at, error, notification)
       SELECT client_id, customer_id, id, 'receipt', 'c' || customer_id || '@bench.example',
              'Your receipt', 'Thank you for your payment.', '<p>Thank you for your payment.</p>', now(), '',
              'PaidOrderNotification'
       FROM due""",
]


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS commerce_bench_renewals WITH (FORCE)")
        conn.execute("CREATE DATABASE commerce_bench_renewals")


def generate(subs: int, due: int) -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(GENERATE, {"clients": CLIENTS, "subs": subs, "due": due})
        for table in SEQUENCES:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cur.execute("VACUUM ANALYZE")
    print(
        f"generated {subs:,} subscriptions ({due:,} due) for {CLIENTS} clients "
        f"in {time.perf_counter() - started:.0f}s",
        flush=True,
    )


def reference(due: int, url: str = DB_URL) -> tuple[int, float, float]:
    """The reference renews the first ``due`` of the due subscriptions and
    commits (so it pays for its WAL flush as the engine does); the engine
    then renews the other ``due``. Returns renewals, seconds, and the CPU
    seconds of its PostgreSQL backend (``backend_cpu``)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # both measurements start right after one
        conn.autocommit = False
        pid = conn.info.backend_pid
        cpu, started = backend_cpu(pid), time.perf_counter()
        with conn.transaction():
            conn.execute(REFERENCE[0], {"due": due})
            for statement in REFERENCE[1:]:
                conn.execute(statement)
            count = conn.execute("SELECT count(*) FROM due").fetchone()[0]
        elapsed, cpu = time.perf_counter() - started, backend_cpu(pid) - cpu
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return count, elapsed, cpu


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend process on this
    machine, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_worker(queue: str, concurrency: int, env: dict[str, str]) -> subprocess.Popen:
    from commerce import celery_app

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "commerce",
            "worker",
            "-Q",
            queue,
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{queue}@%h",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(ROOT / "var" / "bench-worker.log", "a"),  # noqa: SIM115
    )
    for _ in range(100):
        if celery_app.control.ping(timeout=0.5):
            break
    return worker


def peak_memory_mb(worker: subprocess.Popen) -> float:
    """The largest peak resident memory (VmHWM) of the worker's pool processes."""
    peaks = []
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    pids = [int(pid) for pid in children.read_text().split()] if children.exists() else []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


PEAKS: list[float] = []


def _stop(worker: subprocess.Popen) -> None:
    try:
        PEAKS.append(peak_memory_mb(worker))
    except OSError:
        pass
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(60)


def run_engine(
    concurrency: int, env: dict[str, str], *, send_emails: bool = False
) -> tuple[int, float]:
    """Renewals on their queue, timed. E-mails go to a queue of their own
    (as in production); with ``send_emails`` they are then sent by the same
    number of worker processes and that is timed too."""
    from django.db.models import Count, Q

    from commerce import celery_app
    from customers.models import CustomerEmail
    from subscriptions.models import RenewalRun, Subscription

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    worker_env = dict(
        os.environ,
        DATABASE_URL=DB_URL,
        CELERY_BROKER_URL=BROKER,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        CELERY_EMAIL_QUEUE=f"{queue}-emails",
        CELERY_NOTIFICATION_QUEUE=f"{queue}-notifications",
        DEBUG="false",
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        **env,
    )
    unsent = CustomerEmail.objects.filter(sent_at__isnull=True)
    unsent.update(sent_at=_now())  # the reference's: not this run's to send
    worker = _start_worker(queue, concurrency, worker_env)
    try:
        due = Subscription.objects.filter(status="Active", next_billing_date__lte=_now()).count()
        RenewalRun.objects.all().delete()
        checkpoint()
        started = time.perf_counter()
        celery_app.send_task("subscriptions.tasks.sweep", kwargs={"trigger": "bench"}, queue=queue)
        while True:
            time.sleep(0.25)
            runs = RenewalRun.objects.aggregate(
                total=Count("id"), running=Count("id", filter=Q(status="running"))
            )
            done = sum(RenewalRun.objects.values_list("charged", flat=True))
            if runs["total"] and not runs["running"] and done >= due:
                break
            if runs["total"] and not runs["running"] and time.perf_counter() - started > 600:
                break  # something was not charged: reported below
        elapsed = time.perf_counter() - started
        charged = sum(RenewalRun.objects.values_list("charged", flat=True))
        if charged != due:
            print(f"  note: {due} were due, {charged} charged", flush=True)
    finally:
        _stop(worker)
    if send_emails:
        count = unsent.count()
        worker = _start_worker(f"{queue}-emails", concurrency, worker_env)
        try:
            started = time.perf_counter()
            celery_app.send_task("customers.tasks.send_customer_emails", queue=f"{queue}-emails")
            while unsent.exists():
                time.sleep(0.25)
            seconds = time.perf_counter() - started
        finally:
            _stop(worker)
        print(
            f"  then the receipts, on the e-mail queue: {count:,} rendered (text + HTML) and "
            f"sent in {seconds:.1f}s = {count / seconds:,.0f}/s",
            flush=True,
        )
    return charged, elapsed


def checkpoint() -> None:
    """Write every changed page out before a timed measurement: the first
    change of a page after a checkpoint also logs the whole page, so the
    reference and the engine each start right after one, on equal terms
    (otherwise whichever runs nearer the last one pays more)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("CHECKPOINT")


def _now():  # noqa: ANN202
    from django.utils import timezone

    return timezone.now()


def vacuum_analyze() -> None:
    """As after generating: a round starts from the same state of the tables."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


def make_due_again(count: int) -> None:
    """Move ``count`` of the subscriptions the engine has just renewed back
    to due for the next measurement: a due set of the same shape (the same
    clients, so batches of the same size) as the 0 ms run's."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """UPDATE subscriptions_subscription SET next_billing_date = now() - interval '1 hour'
               WHERE id IN (SELECT id FROM subscriptions_subscription WHERE last_interval_no > 1
                            ORDER BY id DESC LIMIT %s)""",
            [count],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subs", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--latency-due", type=int, default=4_000)
    parser.add_argument("--concurrency", default="1,2,4,8", help="for the latency runs")
    parser.add_argument("--batch-size", type=int, default=None, help="RENEWAL_BATCH_SIZE")
    parser.add_argument("--no-emails", action="store_true", help="do not time sending e-mails")
    parser.add_argument(
        "--rounds", type=int, default=3, help="reference + engine at 0 ms, on the same due set"
    )
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=DB_URL,
        CELERY_BROKER_URL=BROKER,
        DEBUG="false",
        COMMERCE_DEV="1",
        DJANGO_SETTINGS_MODULE="commerce.settings",
    )
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    generate(args.subs, args.due)

    ratios = []
    for round_no in range(1, args.rounds + 1):
        if round_no > 1:
            make_due_again(2 * args.due)  # both halves: the same shape again
            vacuum_analyze()
        count, ref_seconds, _ = reference(args.due)
        ref_rate = count / ref_seconds
        print(
            f"round {round_no}: reference (set-based SQL, one transaction): {count:,} renewals "
            f"in {ref_seconds:.2f}s = {ref_rate:,.0f}/s",
            flush=True,
        )
        batch = {"RENEWAL_BATCH_SIZE": str(args.batch_size)} if args.batch_size else {}
        charged, seconds = run_engine(2, batch, send_emails=not args.no_emails and round_no == 1)
        rate = charged / seconds
        ratios.append(rate / ref_rate)
        print(
            f"  engine (2 worker processes, Redis, PostgreSQL): {charged:,} renewals in "
            f"{seconds:.2f}s = {rate:,.0f}/s\n"
            f"  ratio engine / reference = {rate / ref_rate:.2f}  (target >= 0.8)",
            flush=True,
        )
    if args.rounds > 1:
        print(
            f"ratio engine / reference, median of {args.rounds} rounds: "
            f"{statistics.median(ratios):.2f} (each: {', '.join(f'{r:.2f}' for r in ratios)})",
            flush=True,
        )
    print()

    print(f"peak memory per worker process (VmHWM): {max(PEAKS, default=0):.0f} MB\n")
    if args.latency_ms:
        from django.conf import settings

        print(
            f"gateway latency {args.latency_ms} ms per charge, {args.latency_due:,} due per "
            f"run, up to {settings.GATEWAY_MAX_IN_FLIGHT_PER_CLIENT} charges in flight per "
            f"client and {settings.GATEWAY_MAX_IN_FLIGHT} per worker process, claimed "
            f"{settings.RENEWAL_CLAIM_CHUNK} at a time (target >= 2,000/s with 2 processes):"
        )
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            make_due_again(args.latency_due)
            PEAKS.clear()
            charged, seconds = run_engine(
                concurrency, {"TEST_GATEWAY_LATENCY_MS": str(args.latency_ms)}
            )
            print(
                f"  {concurrency} worker process(es): {charged:,} in {seconds:.1f}s "
                f"= {charged / seconds:,.0f}/s; peak memory per process {max(PEAKS):.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
