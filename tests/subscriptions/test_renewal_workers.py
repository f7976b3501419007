"""The renewal engine with real Celery workers on Redis and PostgreSQL:
exactly once whatever the number of workers, duplicate deliveries or kills.
Skipped locally without PostgreSQL and Redis; required in CI."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from django.db import connection
from time_machine import escape_hatch

from commerce import celery_app
from commerce.models import GatewayCharge, Purchase
from customers.models import CustomerEmail
from subscriptions import renewals
from subscriptions.models import RenewalRun, Subscription
from subscriptions.tasks import process_batch, sweep
from tests.conftest import sign_up

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def real_now():
    return datetime.fromtimestamp(escape_hatch.time.time(), tz=UTC)


def wait_for(condition, what, limit=90):
    """Poll until ``condition()`` holds (bounded; not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


class Workers:
    def __init__(self, queue, db_url, tmp_path):
        self.queue, self.db_url, self.tmp_path, self.procs = queue, db_url, tmp_path, []
        self.broker_url = os.environ["CELERY_BROKER_URL"]

    def env(self, **env):
        return dict(
            os.environ,
            DATABASE_URL=self.db_url,
            CELERY_BROKER_URL=self.broker_url,
            CELERY_TASK_DEFAULT_QUEUE=self.queue,
            CELERY_EMAIL_QUEUE=self.queue,
            CELERY_NOTIFICATION_QUEUE=self.queue,
            COMMERCE_VAR_DIR=str(self.tmp_path),
            **{k: str(v) for k, v in env.items()},
        )

    def send(self, task, **kwargs):
        """Send a task through this pool's broker (the tests' own, or another
        one through the celery command)."""
        if self.broker_url == os.environ["CELERY_BROKER_URL"]:
            return task.apply_async(kwargs=kwargs, queue=self.queue)
        command = ["call", task.name, "--kwargs", json.dumps(kwargs), "--queue", self.queue]
        self.celery(*command)

    def celery(self, *args):
        command = [sys.executable, "-m", "celery", "-A", "commerce", *args]
        return subprocess.run(command, cwd=ROOT, env=self.env(), capture_output=True, timeout=60)

    def start(self, concurrency=2, **env):
        name = f"{self.queue}-{len(self.procs)}@%h"
        full_env = self.env(**env)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "commerce",
                "worker",
                "-Q",
                self.queue,
                f"--concurrency={concurrency}",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "-n",
                name,
            ],
            cwd=ROOT,
            env=full_env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp_path / "worker.log", "a"),
        )
        self.procs.append(proc)
        wait_for(lambda: self.ping(name.replace("%h", _host())), "the worker to answer")
        return proc

    def ping(self, name):
        if self.broker_url == os.environ["CELERY_BROKER_URL"]:
            return celery_app.control.ping(timeout=0.5, destination=[name])
        return self.celery("inspect", "ping", "-d", name, "--timeout", "1").returncode == 0

    def children(self, proc):
        """The pool processes of a worker."""
        path = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def start_beat(self, **env):
        """Beat with the database schedule (django-celery-beat), as deployed."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "commerce",
                "beat",
                "--loglevel=WARNING",
                f"--pidfile={self.tmp_path / 'beat.pid'}",
            ],
            cwd=ROOT,
            env=self.env(**env),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp_path / "beat.log", "a"),
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def _host():
    import socket

    return socket.gethostname()


@pytest.fixture
def workers(transactional_db, needs_postgres, tmp_path):
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run with CELERY_BROKER_URL pointing at Redis")
        pytest.skip("set CELERY_BROKER_URL=redis://... to run real workers")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    pool = Workers(f"t{uuid.uuid4().hex[:10]}", url, tmp_path)
    yield pool
    pool.stop()
    connection.close()


@pytest.fixture
def due_set(sm2, monthly):
    """Subscriptions due now whose next billing date after one renewal is in
    the future, so a second sweep has nothing left to do."""
    start = real_now() - relativedelta(months=1) - timedelta(hours=1)
    return [
        sign_up(sm2, monthly, email=f"w{i}@example.com", at=start).subscriptions[0]
        for i in range(30)
    ]


def paid_per_subscription(subs):
    return Counter(
        Purchase.objects.filter(
            subscription__in=subs, category="renewal", status="paid"
        ).values_list("subscription", flat=True)
    )


def all_renewed(subs):
    """Every one renewed at least once (more than once is for the test's asserts to see)."""
    return lambda: (
        Subscription.objects.filter(pk__in=[s.pk for s in subs], last_interval_no__gte=2).count()
        == len(subs)
    )


def test_two_workers_renew_a_due_set_once(workers, due_set):
    workers.start(concurrency=2, RENEWAL_BATCH_SIZE=7)
    sweep.apply_async(kwargs={"trigger": "test"}, queue=workers.queue)
    wait_for(all_renewed(due_set), "every subscription to renew")
    wait_for(lambda: RenewalRun.objects.filter(status="finished").exists(), "the run to finish")
    assert set(paid_per_subscription(due_set).values()) == {1}
    run = RenewalRun.objects.get()
    assert (run.due, run.charged, run.batches_total, run.batches_done) == (30, 30, 5, 5)


def test_two_sweeps_at_the_same_time_renew_once(workers, due_set):
    workers.start(concurrency=2, RENEWAL_BATCH_SIZE=5)
    for _ in range(2):
        sweep.apply_async(kwargs={"trigger": "test"}, queue=workers.queue)
    wait_for(all_renewed(due_set), "every subscription to renew")
    wait_for(lambda: RenewalRun.objects.filter(status="running").count() == 0, "runs to finish")
    assert set(paid_per_subscription(due_set).values()) == {1}
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 30
    # The runs page counts each renewal once: one run charged it, the other skipped it.
    assert sum(RenewalRun.objects.values_list("charged", flat=True)) == 30


def test_a_batch_delivered_twice_charges_once(workers, due_set):
    workers.start(concurrency=2)
    work = renewals.start_sweep(as_of=real_now(), trigger="test")
    (batch,) = [w for w in work if w.kind == "charges"]
    process_batch.apply_async((batch.pk,), queue=workers.queue)
    process_batch.apply_async((batch.pk,), queue=workers.queue)
    wait_for(all_renewed(due_set), "every subscription to renew")
    wait_for(lambda: RenewalRun.objects.get().status == "finished", "the run to close")
    assert set(paid_per_subscription(due_set).values()) == {1}
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 30
    run = RenewalRun.objects.get()
    assert (run.charged, run.skipped, run.batches_done) == (30, 0, 1)  # counted once


def test_a_worker_killed_mid_batch_leaves_nothing_charged_twice(workers, due_set):
    slow = workers.start(
        concurrency=1,
        RENEWAL_BATCH_SIZE=10,
        TEST_GATEWAY_LATENCY_MS=150,
        TEST_GATEWAY_CONCURRENCY=1,
    )
    sweep.apply_async(kwargs={"trigger": "test"}, queue=workers.queue)
    wait_for(lambda: sum(paid_per_subscription(due_set).values()) >= 10, "a first batch")
    time.sleep(0.5)  # the second batch is now claimed and in the gateway
    workers.kill(slow)
    paid = paid_per_subscription(due_set)
    assert 10 <= sum(paid.values()) < 30
    assert Purchase.objects.filter(category="renewal", status="pending").exists()
    assert set(paid.values()) <= {1}
    for sub in Subscription.objects.filter(pk__in=[s.pk for s in due_set]):
        assert (sub.last_interval_no == 2) == (paid[sub.pk] == 1)
        assert sub.last_interval_no == 2 or sub.next_billing_date <= real_now()  # still due
    # The next sweep finishes the job without charging anyone twice.
    for item in renewals.start_sweep(as_of=real_now(), trigger="test"):
        renewals.run_in_process(item)
    assert set(paid_per_subscription(due_set).values()) == {1}
    assert all_renewed(due_set)()
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 30


def test_a_killed_workers_batches_are_finished_without_a_further_sweep(workers, due_set):
    """SIGKILL of the whole worker mid-run, then no sweep: its unacknowledged
    batches go back to the queue (after the broker's visibility timeout, 5 s
    here) and another worker finishes them — everyone renewed once, the run
    closed, every approved charge recorded, no receipt twice."""
    env = dict(
        RENEWAL_BATCH_SIZE=10,
        TEST_GATEWAY_LATENCY_MS=150,
        TEST_GATEWAY_CONCURRENCY=1,
        CELERY_VISIBILITY_TIMEOUT=5,
        CELERY_UNACKED_RESTORE_INTERVAL=2,
    )
    first = workers.start(concurrency=1, **env)
    sweep.apply_async(kwargs={"trigger": "test"}, queue=workers.queue)
    wait_for(lambda: sum(paid_per_subscription(due_set).values()) >= 10, "a first batch")
    time.sleep(0.5)  # the second batch is claimed and in the gateway
    workers.kill(first)
    assert sum(paid_per_subscription(due_set).values()) < 30
    workers.start(concurrency=1, **env)
    wait_for(all_renewed(due_set), "every subscription to renew, with no further sweep")
    wait_for(lambda: not RenewalRun.objects.filter(status="running").exists(), "the run to close")
    assert set(paid_per_subscription(due_set).values()) == {1}
    approved = GatewayCharge.objects.filter(
        idempotency_key__startswith="renewal:", outcome="approved"
    )
    assert approved.count() == 30  # charged once each ...
    assert Purchase.objects.filter(category="renewal", status="paid").count() == 30  # ... recorded
    receipts = CustomerEmail.objects.filter(subscription__in=due_set, kind="receipt")
    assert receipts.count() == 30 + 30  # sign-up and renewal, none twice


# --- crashes, then no further sweep ----------------------------------------------------

SLOW = dict(RENEWAL_BATCH_SIZE=10, TEST_GATEWAY_LATENCY_MS=150, TEST_GATEWAY_CONCURRENCY=1)


def sent_message_ids(tmp_path):
    """Message-IDs of every e-mail the workers sent (file backend), with repeats."""
    ids = Counter()
    for path in (tmp_path / "sent-emails").glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Message-ID: "):
                ids[line.removeprefix("Message-ID: ")] += 1
    return ids


def assert_recovered(due_set, tmp_path, *, resends_allowed=0):
    """Within a bounded wait: every due subscription renewed once, no run
    left running, every approved charge recorded, every e-mail sent, none
    twice (but for the one in flight at each crash, with the same Message-ID)."""
    wait_for(all_renewed(due_set), "every subscription to renew, with no further sweep")
    wait_for(lambda: not RenewalRun.objects.filter(status="running").exists(), "the run to close")
    assert set(paid_per_subscription(due_set).values()) == {1}
    approved = GatewayCharge.objects.filter(
        idempotency_key__startswith="renewal:", outcome="approved"
    )
    assert approved.count() == 30  # charged once each ...
    assert Purchase.objects.filter(category="renewal", status="paid").count() == 30  # recorded
    assert not Purchase.objects.filter(category="renewal", status="pending").exists()
    receipts = CustomerEmail.objects.filter(subscription__in=due_set, kind="receipt")
    assert receipts.count() == 30 + 30  # sign-up and renewal, none written twice
    wait_for(
        lambda: not CustomerEmail.objects.filter(sent_at__isnull=True).exists(),
        "every e-mail to be sent",
    )
    sent = sent_message_ids(tmp_path)
    assert len(sent) == CustomerEmail.objects.count()
    repeated = {mid: n for mid, n in sent.items() if n > 1}
    assert len(repeated) <= resends_allowed and set(repeated.values()) <= {2}, repeated
    run = RenewalRun.objects.get()
    assert run.charged == 30 and run.batches_done == run.batches_total
    return run


def test_a_killed_pool_process_s_batch_is_finished_without_a_further_sweep(
    workers, due_set, tmp_path
):
    """SIGKILL of the pool process running a batch: the worker rejects the
    task and it goes straight back to the queue (task_reject_on_worker_lost),
    the new pool process finishes it."""
    proc = workers.start(concurrency=1, **SLOW)
    workers.send(sweep, trigger="test")
    wait_for(lambda: sum(paid_per_subscription(due_set).values()) >= 10, "a first batch")
    time.sleep(0.5)  # the second batch is claimed and in the gateway
    (child,) = workers.children(proc)
    os.kill(child, signal.SIGKILL)
    assert sum(paid_per_subscription(due_set).values()) < 30
    assert_recovered(due_set, tmp_path, resends_allowed=1)


def test_postgresql_unavailable_mid_run_then_no_further_sweep(workers, due_set, tmp_path):
    """The database refuses connections for three seconds mid-run and every
    worker connection is terminated: batches retry with backoff, a batch that
    had run retries only its finishing, e-mails retry; all is done without
    a further sweep, with true counts."""
    import psycopg

    workers.start(concurrency=2, **SLOW)
    workers.send(sweep, trigger="test")
    wait_for(lambda: sum(paid_per_subscription(due_set).values()) >= 10, "a first batch")
    name = connection.settings_dict["NAME"]
    connection.close()
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            terminated = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            ).fetchone()[0]
            time.sleep(3)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert terminated >= 1
    assert sum(paid_per_subscription(due_set).values()) < 30
    run = assert_recovered(due_set, tmp_path, resends_allowed=1)
    assert run.skipped == 0 and run.due == 30


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own, to restart (it keeps nothing on disk, like
    the machine's)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp_path)]

    class Server:
        url = f"redis://127.0.0.1:{port}/0"

        def start(self):
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            wait_for(lambda: _redis_up(port), "redis to start")

        def kill(self):
            self.proc.kill()
            self.proc.wait(10)

    server = Server()
    server.start()
    yield server
    server.kill()


def _redis_up(port):
    import redis

    try:
        return redis.Redis(port=port).ping()
    except redis.ConnectionError:
        return False


def test_broker_restarted_mid_run_then_no_further_sweep(workers, due_set, tmp_path, private_redis):
    """Redis killed mid-run and started again empty: the queued batches are
    gone. Beat (as deployed, without the sweep) finds the run stalled and
    sends its unfinished batches again; the e-mails whose send was lost go
    with beat's e-mail flush."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    PeriodicTask.objects.all().delete()
    for name, task, seconds in [
        ("Resume stalled renewal runs", "subscriptions.tasks.resume_stalled", 1),
        ("Send customer e-mails", "customers.tasks.send_customer_emails", 2),
    ]:
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.create(name=name, task=task, interval=every)
    workers.broker_url = private_redis.url
    workers.start(concurrency=1, RENEWAL_STALL_AFTER=3, **SLOW)
    workers.start_beat(RENEWAL_STALL_AFTER=3)
    workers.send(sweep, trigger="test")
    wait_for(lambda: sum(paid_per_subscription(due_set).values()) >= 10, "a first batch")
    private_redis.kill()
    private_redis.start()
    assert sum(paid_per_subscription(due_set).values()) < 30
    run = assert_recovered(due_set, tmp_path, resends_allowed=1)
    assert run.resumes >= 1 and run.resumed_at is not None
