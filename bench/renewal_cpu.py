"""CPU per renewal: the engine's Python and PostgreSQL time against the
set-based SQL reference, measured in the same run (bench/RESULTS.md).

``bench/renewals.py`` times the whole engine (Celery, two worker processes),
which moves by ±10% from run to run. This script measures what decides that
throughput, with less noise, in one process:

1. Creates ``commerce_bench_cpu`` (dropped first) with the data of
   ``bench/renewals.py``: 50 clients, SUBS subscriptions, a fifth of them
   due, in 10 clients (SUBS / 50 each: full batches, as in its runs).
2. Each round: the reference (``bench/renewals.py``'s statements, one
   transaction) renews DUE of the due subscriptions; then the engine's
   ``renewals.charge_batch`` renews about DUE others, in full batches of one
   client's (``RENEWAL_BATCH_SIZE``), as a worker process would (without
   Celery and the run bookkeeping). For each: renewals per second, and CPU
   per renewal read from ``/proc`` — this process's (Python) and its
   PostgreSQL backend's (so PostgreSQL must run on this machine).
3. Prints the most the engine could do with both cores busy all the time
   (2 / its CPU per renewal) as a ratio to the reference: the ceiling of the
   ratio ``bench/renewals.py`` measures.

    .venv/bin/python bench/renewal_cpu.py                     # 200,000 / 6,000, 3 rounds
    .venv/bin/python bench/renewal_cpu.py --subs 1000000 --due 30000 --rounds 1
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/commerce_bench_cpu"
)
CORES = 2

_spec = importlib.util.spec_from_file_location("bench_renewals", ROOT / "bench" / "renewals.py")
assert _spec is not None and _spec.loader is not None
data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(data)


def due_batches(limit: int) -> list[list[int]]:
    """Batches of due subscriptions, per client as a sweep makes them, until
    they hold at least ``limit``."""
    from django.conf import settings
    from django.utils import timezone

    from commerce.bulk import chunks
    from subscriptions.models import Subscription

    rows = (
        Subscription.objects.filter(status="Active", next_billing_date__lte=timezone.now())
        .order_by("pk")
        .values_list("client_id", "pk")
    )
    by_client: dict[int, list[int]] = defaultdict(list)
    for client_id, pk in rows:
        by_client[client_id].append(pk)
    out: list[list[int]] = []
    for ids in by_client.values():
        for part in chunks(ids, settings.RENEWAL_BATCH_SIZE):
            if sum(map(len, out)) >= limit:
                return out
            out.append(part)
    return out


def engine(batches: list[list[int]]) -> tuple[int, float, float, float]:
    """Renewals, seconds, Python CPU and PostgreSQL CPU seconds of
    ``charge_batch`` on the batches, in this process."""
    from django.db import connection
    from django.utils import timezone

    from subscriptions import renewals

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    now = timezone.now()
    python, postgres, started = time.process_time(), data.backend_cpu(pid), time.perf_counter()
    charged = 0
    for ids in batches:
        charged += renewals.charge_batch(ids, as_of=now).counts["charged"]
    return (
        charged,
        time.perf_counter() - started,
        time.process_time() - python,
        data.backend_cpu(pid) - postgres,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subs", type=int, default=200_000)
    parser.add_argument("--due", type=int, default=6_000, help="renewals per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=DB_URL,
        CELERY_BROKER_URL=data.BROKER,  # the after-commit sends, as in bench/renewals.py
        DEBUG="false",
        COMMERCE_DEV="1",
        DJANGO_SETTINGS_MODULE="commerce.settings",
    )
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS commerce_bench_cpu WITH (FORCE)")
        conn.execute("CREATE DATABASE commerce_bench_cpu")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    data.generate(args.subs, args.subs // 10)
    # Warm up (imports, URL resolver, first queries), as a worker process is
    # by its second batch; then freeze what is left, as worker_process_init does.
    engine([due_batches(1)[0][-100:]])
    gc.collect()
    gc.freeze()

    ceilings = []
    for round_no in range(1, args.rounds + 1):
        if round_no > 1:
            data.make_due_again(args.subs)  # every one renewed so far
            data.vacuum_analyze()
        count, seconds, ref_cpu = data.reference(args.due, DB_URL)
        ref_rate = count / seconds
        data.checkpoint()
        charged, eng_seconds, python, postgres = engine(due_batches(args.due))
        per = 1e6 / charged
        ceiling = CORES / (python + postgres) * charged
        ceilings.append(ceiling / ref_rate)
        print(
            f"round {round_no}: reference {ref_rate:,.0f}/s ({1e6 * seconds / count:.0f} µs per "
            f"renewal, of which {1e6 * ref_cpu / count:.0f} µs PostgreSQL CPU)\n"
            f"  engine in one process: {charged:,} in {eng_seconds:.2f}s = "
            f"{charged / eng_seconds:,.0f}/s; per renewal {python * per:.0f} µs Python + "
            f"{postgres * per:.0f} µs PostgreSQL = {(python + postgres) * per:.0f} µs CPU\n"
            f"  at most {ceiling:,.0f}/s with {CORES} cores always busy = "
            f"{ceiling / ref_rate:.2f} of the reference",
            flush=True,
        )
    print(
        f"ceiling of engine / reference, median of {args.rounds}: {statistics.median(ceilings):.2f}"
    )


if __name__ == "__main__":
    main()
