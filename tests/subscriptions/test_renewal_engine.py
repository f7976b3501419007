"""The renewal engine (docs/renewals.md): sweeps and batches."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from commerce.gateway import (
    CARD_DECLINES_AFTER_FIRST,
    CARD_TRANSIENT_ERROR,
    Answers,
    TestGateway,
    token_for_test_card,
)
from commerce.models import GatewayCharge, OutboxNotification, Purchase
from customers.models import CustomerEmail
from subscriptions import renewal_sql, renewals, services
from subscriptions.models import RenewalBatch, RenewalRun, Subscription
from subscriptions.services import billing
from tests.conftest import (
    STAFF,
    T0,
    fresh,
    history_codes,
    item_statuses,
    notification_types,
    sign_up,
    subscribe,
)
from tests.factories import ClientFactory, ProductFactory

FEB28 = datetime(2026, 2, 28, 12, tzinfo=UTC)
MAR31 = datetime(2026, 3, 31, 12, tzinfo=UTC)


def sweep(at, **kwargs):
    """What beat + workers do, in-process."""
    work = renewals.start_sweep(as_of=at, **kwargs)
    for item in work:
        renewals.run_in_process(item)
    return work


def many(vendor, product, n, **kwargs):
    return [
        subscribe(vendor, product, email=f"m{i}-{product.pk}@example.com", **kwargs)
        for i in range(n)
    ]


def paid_renewals(sub):
    return Purchase.objects.filter(subscription=sub, category="renewal", status="paid").count()


def test_a_due_set_is_renewed_once_even_when_swept_twice(vendor, plan):
    subs = many(vendor, plan, 5)
    sweep(FEB28)
    sweep(FEB28)
    for sub in subs:
        sub = fresh(sub)
        assert (sub.last_interval_no, sub.next_billing_date, paid_renewals(sub)) == (2, MAR31, 1)
        assert history_codes(sub)[-1] == "renewed"
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 5


def test_bulk_renewal_writes_what_the_per_row_service_writes(sm2, monthly):
    bulk, single = many(sm2, monthly, 2, quantity=2)
    outcome = renewals.charge_batch([bulk.pk], as_of=FEB28)
    assert outcome.counts["charged"] == 1
    services.renew_due(subscription=single, at=FEB28)
    a, b = fresh(bulk), fresh(single)
    for field in ("status", "last_interval_no", "next_billing_date", "renewal_type"):
        assert getattr(a, field) == getattr(b, field)
    assert history_codes(a) == history_codes(b)
    assert notification_types(a) == notification_types(b)
    assert [h.after for h in a.history.all()] == [h.after for h in b.history.all()]
    assert list(a.items.values_list("last_interval_no", flat=True)) == [2]
    pa = Purchase.objects.get(subscription=a, category="renewal")
    pb = Purchase.objects.get(subscription=b, category="renewal")
    assert (pa.total, pa.status, pa.items.count()) == (pb.total, pb.status, pb.items.count())
    payload = OutboxNotification.objects.filter(purchase=pa).get().payload
    assert payload["Purchase"]["Items"][0]["RecurringBilling"]["IntervalNo"] == 2
    assert set(CustomerEmail.objects.filter(subscription=a).values_list("kind", flat=True)) == {
        "receipt"
    }


def test_a_batch_costs_the_same_number_of_queries_for_5_or_50(
    sm2, monthly, django_assert_max_num_queries, needs_postgres
):
    """The set-based path (PostgreSQL); elsewhere batches renew one at a time."""
    five = [s.pk for s in many(sm2, monthly, 5)]
    other = ProductFactory(client=sm2)
    fifty = [s.pk for s in many(sm2, other, 50)]
    with django_assert_max_num_queries(40) as small:
        renewals.charge_batch(five, as_of=FEB28)
    with django_assert_max_num_queries(len(small.captured_queries)):
        renewals.charge_batch(fifty, as_of=FEB28)
    assert Purchase.objects.filter(category="renewal", status="paid").count() == 55


def test_declines_go_to_grace_with_notification_and_email(vendor, plan):
    subs = many(vendor, plan, 3, number=CARD_DECLINES_AFTER_FIRST)
    outcome = renewals.charge_batch([s.pk for s in subs], as_of=FEB28)
    assert outcome.counts["declined"] == 3 and not outcome.retry_ids
    for sub in subs:
        assert (fresh(sub).status, item_statuses(sub)) == ("Grace", ["Active"])
        assert notification_types(sub)[-1] == "RecurringBillingOnGraceNotification"
        assert CustomerEmail.objects.filter(subscription=sub, kind="payment_failed").exists()


def test_zero_grace_and_hold_deactivates_in_bulk(monthly, sm2):
    sm2.grace_period_days = sm2.hold_days = 0
    sm2.save()
    sub = subscribe(sm2, monthly, number=CARD_DECLINES_AFTER_FIRST)
    renewals.charge_batch([sub.pk], as_of=FEB28)
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["Deactivated"])


def test_transient_errors_are_retried_not_declined(sm2, monthly):
    sub = subscribe(sm2, monthly)
    sub.payment_method.token = token_for_test_card(CARD_TRANSIENT_ERROR)
    sub.payment_method.save()
    outcome = renewals.charge_batch([sub.pk], as_of=FEB28)
    assert outcome.retry_ids == [sub.pk] and outcome.counts["error"] == 1
    assert fresh(sub).status == "Active"
    sub.payment_method.token = token_for_test_card("4242424242424242")
    sub.payment_method.save()
    assert renewals.charge_batch(outcome.retry_ids, as_of=FEB28).counts["charged"] == 1
    assert paid_renewals(sub) == 1


def test_crash_between_charge_and_record_is_finished_without_a_second_charge(
    sm2, monthly, monkeypatch
):
    subs = many(sm2, monthly, 3)

    def killed(*args, **kwargs):
        raise SystemExit("worker killed")

    # Both ways a batch records a charge: set-based, and per row.
    monkeypatch.setattr(renewal_sql, "record_paid", killed)
    monkeypatch.setattr(billing, "record_charge", killed)
    with pytest.raises(SystemExit):
        renewals.charge_batch([s.pk for s in subs], as_of=FEB28)
    monkeypatch.undo()
    assert all(fresh(s).last_interval_no == 1 for s in subs)  # still due
    sweep(FEB28 + timedelta(minutes=5))
    assert [paid_renewals(s) for s in subs] == [1, 1, 1]
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 3


def test_special_cases_go_through_the_per_row_rules(sm1, sm2, monthly):
    manual_product = ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    sm1_manual = subscribe(sm1, manual_product)
    services.reinstate_items(subscription=sm1_manual, running_nos=[1], actor=STAFF, at=T0)
    sm2_manual = subscribe(sm2, monthly, auto=False, email="man@example.com")
    invoice = sign_up(sm2, monthly, invoice=True, email="inv@example.com")
    services.mark_purchase_paid(purchase=invoice.purchase, actor=STAFF, at=T0)
    last = subscribe(sm2, ProductFactory(client=sm2, recurrence_count=1), email="l@example.com")
    sweep(FEB28)
    assert (fresh(sm1_manual).status, item_statuses(sm1_manual)) == (
        "Deactivated",
        ["AwaitingReinstate"],
    )
    assert paid_renewals(sm1_manual) == 1
    assert fresh(sm2_manual).status == "Grace" and paid_renewals(sm2_manual) == 0
    assert fresh(invoice.subscriptions[0]).status == "Grace"
    assert fresh(last).status == "Finished"


def test_handled_by_client_is_never_swept(sm2, monthly):
    sub = subscribe(sm2, monthly)
    services.hand_over_to_client(subscription=sub, actor=STAFF, at=T0)
    assert sweep(FEB28 + timedelta(days=90)) == []


def test_reminders_go_once_per_interval_seven_days_before(vendor, plan):
    sub = subscribe(vendor, plan)
    sweep(FEB28 - timedelta(days=8))
    assert not CustomerEmail.objects.filter(kind="reminder").exists()
    sweep(FEB28 - timedelta(days=7))
    sweep(FEB28 - timedelta(days=6))
    assert CustomerEmail.objects.filter(kind="reminder", subscription=sub).count() == 1
    assert notification_types(sub).count("SubscriptionReminderChargeNotification") == 1
    sweep(FEB28)
    sweep(MAR31 - timedelta(days=7))
    assert CustomerEmail.objects.filter(kind="reminder", subscription=sub).count() == 2


def test_reminder_kinds_for_invoices_and_expiring_cards(sm2, monthly):
    sm2.reminder_days = 3
    sm2.save()
    invoice = sign_up(sm2, monthly, invoice=True, email="i@example.com")
    services.mark_purchase_paid(purchase=invoice.purchase, actor=STAFF, at=T0)
    expiring = subscribe(sm2, monthly, email="e@example.com")
    expiring.payment_method.expiry_year, expiring.payment_method.expiry_month = 2026, 1
    expiring.payment_method.save()
    sweep(FEB28 - timedelta(days=3))
    assert (
        notification_types(invoice.subscriptions[0])[-1]
        == "SubscriptionReminderOfflinePayNotification"
    )
    assert notification_types(expiring)[-1] == "SubscriptionReminderPayOptExpNotification"


def test_dunning_retries_on_days_1_3_5_then_hold_then_deactivated(sm2, monthly, clock):
    sub = subscribe(sm2, monthly, number=CARD_DECLINES_AFTER_FIRST)
    clock.move_to(FEB28)
    sweep(None)
    renewal = Purchase.objects.get(subscription=sub, category="renewal")
    for day, attempts in [(1, 2), (2, 2), (3, 3), (5, 4), (6, 4)]:
        clock.move_to(FEB28 + timedelta(days=day, minutes=1))
        sweep(None)
        renewal.refresh_from_db()
        assert renewal.charge_attempts == attempts, day
    clock.move_to(FEB28 + timedelta(days=7, minutes=1))
    sweep(None)
    assert fresh(sub).status == "Hold"
    clock.move_to(FEB28 + timedelta(days=14, minutes=2))
    sweep(None)
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["Deactivated"])
    kinds = set(CustomerEmail.objects.filter(subscription=sub).values_list("kind", flat=True))
    assert kinds >= {"payment_failed", "on_hold", "deactivated"}


def test_a_retry_that_succeeds_reactivates(sm2, monthly):
    sub = subscribe(sm2, monthly, number=CARD_DECLINES_AFTER_FIRST)
    sweep(FEB28)
    sub.payment_method.token = token_for_test_card("4242424242424242")
    sub.payment_method.save()
    sweep(FEB28 + timedelta(days=1))
    sub = fresh(sub)
    assert (sub.status, sub.last_interval_no) == ("Active", 2)
    assert sub.next_billing_date == FEB28 + timedelta(days=1) + timedelta(days=31)


def test_a_run_is_recorded_per_client_with_its_counts(sm2, monthly):
    other = ClientFactory()
    many(sm2, monthly, 3)
    subscribe(sm2, monthly, number=CARD_DECLINES_AFTER_FIRST, email="d@example.com")
    subscribe(other, ProductFactory(client=other), email="o@example.com")
    sweep(FEB28)
    run = RenewalRun.objects.get(client=sm2)
    assert (run.status, run.due, run.charged, run.declined, run.progress_percent) == (
        "finished",
        4,
        3,
        1,
        100,
    )
    assert run.finished_at is not None
    assert RenewalRun.objects.get(client=other).charged == 1


def test_run_renewals_command_sweeps_in_the_foreground(sm2, monthly, capsys):
    many(sm2, monthly, 2)
    call_command("run_renewals", "--as-of", FEB28.isoformat())
    assert "2 charged, 0 declined" in capsys.readouterr().out
    assert Subscription.objects.filter(last_interval_no=2).count() == 2


def test_time_travel_through_month_ends_and_the_last_billing_event(vendor, clock):
    course = ProductFactory(client=vendor, recurrence_count=3)
    sub = subscribe(vendor, course)
    expected = ["2026-02-28", "2026-03-31", "2026-04-30"]
    for day in expected:
        clock.move_to(datetime.fromisoformat(day + "T12:00:00+00:00"))
        sweep(None)
    sub = fresh(sub)
    assert (sub.status, item_statuses(sub), sub.last_interval_no) == ("Finished", ["Finished"], 3)
    dates = list(
        Purchase.objects.filter(subscription=sub, category="renewal")
        .order_by("interval_no")
        .values_list("paid_at", flat=True)
    )
    assert [d.date().isoformat() for d in dates] == expected[:2]


def test_the_gateway_batch_replays_known_keys(sm2, monthly):
    sub = subscribe(sm2, monthly)
    from commerce.gateway import ChargeRequest

    request = ChargeRequest(monthly.price, "EUR", sub.payment_method, "k-1")
    first = TestGateway().charge_many([request, request])
    second = TestGateway().charge_many([request])
    assert first[0] == first[1] == second[0]
    assert GatewayCharge.objects.filter(idempotency_key="k-1").count() == 1


def _one_batch_run(sm2, monthly, n=3, **kwargs):
    subs = many(sm2, monthly, n, **kwargs)
    (work,) = renewals.start_sweep(as_of=FEB28, client=sm2)
    return subs, work


def test_a_lost_database_connection_retries_the_batch_and_the_run_finishes(
    sm2, monthly, monkeypatch
):
    from django.db import OperationalError

    from subscriptions import tasks

    subs, work = _one_batch_run(sm2, monthly)
    real, calls = renewals.run_batch, []

    def restarted_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(renewals, "run_batch", restarted_once)
    tasks.process_batch.apply((work.pk,), retries=0)
    run = RenewalRun.objects.get(pk=work.run.pk)
    assert len(calls) == 2  # retried
    assert (run.status, run.charged) == ("finished", 3)
    assert [paid_renewals(s) for s in subs] == [1, 1, 1]


def test_a_database_error_while_finishing_retries_only_the_finishing_with_the_counts(
    sm2, monthly, monkeypatch
):
    from django.db import OperationalError

    from subscriptions import tasks

    subs, work = _one_batch_run(sm2, monthly)
    real, ran, finishing = renewals.finish_batch, [], []
    real_run = renewals.run_batch
    monkeypatch.setattr(renewals, "run_batch", lambda *a, **k: ran.append(1) or real_run(*a, **k))

    def restarted_once(*args, **kwargs):
        finishing.append(1)
        if len(finishing) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real(*args, **kwargs)

    monkeypatch.setattr(renewals, "finish_batch", restarted_once)
    tasks.process_batch.apply((work.pk,), retries=0)
    run = RenewalRun.objects.get(pk=work.run.pk)
    assert (len(ran), len(finishing)) == (1, 2)  # the batch ran once, finishing twice
    assert (run.status, run.charged, run.skipped) == ("finished", 3, 0)  # its true counts
    assert [paid_renewals(s) for s in subs] == [1, 1, 1]


def test_a_batch_delivered_again_after_it_finished_counts_once(sm2, monthly):
    from subscriptions import tasks

    subs, work = _one_batch_run(sm2, monthly)
    tasks.process_batch.apply((work.pk,))
    tasks.process_batch.apply((work.pk,))
    run = RenewalRun.objects.get(pk=work.run.pk)
    assert (run.status, run.charged, run.skipped, run.batches_done) == ("finished", 3, 0, 1)


def test_with_the_broker_down_a_transient_retry_is_sent_when_the_run_is_found_stalled(
    sm2, monthly, monkeypatch, clock, settings, django_capture_on_commit_callbacks
):
    """The retry batch is recorded with the batch that needs it; it could not
    be sent, so the run stays open, shows as stalled, and beat's
    ``resume_stalled`` sends it — no further sweep, true counts at the end."""
    from kombu.exceptions import OperationalError as BrokerError

    from subscriptions import tasks

    subs, work = _one_batch_run(sm2, monthly, n=2)
    for sub in subs:
        sub.payment_method.token = token_for_test_card(CARD_TRANSIENT_ERROR)
        sub.payment_method.save()
    real_send = tasks.process_batch.apply_async

    def broker_down(*args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.process_batch, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as sends:
        tasks.process_batch.apply((work.pk,))
    assert len(sends) == 1  # tried, and failed
    run = RenewalRun.objects.get(pk=work.run.pk)
    assert (run.status, run.errors, run.batches_done, run.batches_total) == ("running", 2, 1, 2)
    clock.shift(timedelta(seconds=settings.RENEWAL_STALL_AFTER + 1))
    assert tasks.resume_stalled.apply().get() == 0  # not stalled: its retry was due 30 s later
    # The broker is back, the card works now; 30 s (the retry's wait) + the stall time later:
    monkeypatch.setattr(tasks.process_batch, "apply_async", real_send)
    for sub in subs:
        sub.payment_method.token = token_for_test_card("4242424242424242")
        sub.payment_method.save()
    clock.shift(timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.resume_stalled.apply().get() == 1
    run.refresh_from_db()
    assert (run.status, run.charged, run.errors, run.resumes) == ("finished", 2, 2, 1)
    assert run.resumed_at is not None
    assert [paid_renewals(s) for s in subs] == [1, 1]


def test_a_run_whose_batches_were_lost_is_resumed_and_the_page_says_so(
    sm2, monthly, clock, settings, login, django_capture_on_commit_callbacks
):
    """Batches sent and lost (a broker restart without persistence): no
    progress for RENEWAL_STALL_AFTER seconds, then beat re-sends exactly the
    unfinished ones; the run closes with its true counts."""
    from subscriptions import tasks

    settings.RENEWAL_BATCH_SIZE = 2
    subs = many(sm2, monthly, 5)
    clock.move_to(FEB28)
    first, *lost = renewals.start_sweep(client=sm2, as_of=FEB28)
    assert len(lost) == 2
    tasks.process_batch.apply((first.pk,))  # one batch arrived; two were lost
    run = RenewalRun.objects.get(pk=first.run.pk)
    assert (run.status, run.batches_done, run.charged) == ("running", 1, 2)
    clock.shift(timedelta(seconds=settings.RENEWAL_STALL_AFTER - 5))
    assert tasks.resume_stalled.apply().get() == 0  # progress 175 s ago: not stalled yet
    clock.shift(timedelta(seconds=10))
    with django_capture_on_commit_callbacks() as sends:
        assert tasks.resume_stalled.apply().get() == 2
    assert len(sends) == 2
    assert RenewalBatch.objects.filter(sends=2).count() == 2  # the lost ones, not the first
    assert set(RenewalBatch.objects.filter(sends=2).values_list("pk", flat=True)) == {
        b.pk for b in lost
    }
    page = login(sm2).get("/renewals/").content.decode()
    run.refresh_from_db()
    assert f"stalled — resumed at {run.resumed_at:%H:%M:%S}" in page
    assert 'hx-trigger="every 2s"' in page  # still polled: it is running again
    assert tasks.resume_stalled.apply().get() == 0  # just resumed: waits again
    for send in sends:
        send()  # the broker is back: the workers get them
    run.refresh_from_db()
    assert (run.status, run.charged, run.skipped, run.batches_done, run.resumes) == (
        "finished",
        5,
        0,
        3,
        1,
    )
    assert [paid_renewals(s) for s in subs] == [1] * 5
    assert "stalled — resumed" not in login(sm2).get("/renewals/").content.decode()
    assert "resumed once" in login(sm2).get("/renewals/").content.decode()


def test_a_running_run_with_nothing_out_is_closed_by_the_watcher(sm2, monthly, clock, settings):
    from subscriptions import tasks

    run = RenewalRun.objects.create(
        client=sm2, as_of=T0, started_at=T0, progress_at=T0, batches_total=3
    )  # e.g. left running by an older version
    clock.shift(timedelta(seconds=settings.RENEWAL_STALL_AFTER + 1))
    tasks.resume_stalled.apply()
    run.refresh_from_db()
    assert run.status == "finished" and run.finished_at is not None


# --- reconciliation: approved at the gateway, never recorded -----------------------


def _charged_but_not_recorded(sm2, monthly, monkeypatch, number=None):
    """A batch charges and the worker dies before recording (both paths)."""
    sub = subscribe(sm2, monthly)

    def killed(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(renewal_sql, "record_paid", killed)
    monkeypatch.setattr(billing, "record_charge", killed)
    with pytest.raises(SystemExit):
        renewals.charge_batch([sub.pk], as_of=FEB28)
    monkeypatch.undo()
    purchase = Purchase.objects.get(subscription=sub, category="renewal")
    assert purchase.status == "pending"
    assert GatewayCharge.objects.get(idempotency_key=f"renewal:{sub.pk}:2:1").outcome == "approved"
    return sub, purchase


def test_an_approved_charge_is_recorded_even_after_a_switch_to_manual(sm2, monthly, monkeypatch):
    sub, purchase = _charged_but_not_recorded(sm2, monthly, monkeypatch)
    services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF, at=FEB28)
    sweep(FEB28 + timedelta(minutes=5))  # reconciles before it looks for due work
    sub, purchase = fresh(sub), Purchase.objects.get(pk=purchase.pk)
    assert (purchase.status, sub.status, sub.renewal_type) == ("paid", "Active", "Manual")
    assert (sub.last_interval_no, sub.next_billing_date) == (2, MAR31)
    kinds = set(CustomerEmail.objects.filter(subscription=sub).values_list("kind", flat=True))
    assert "receipt" in kinds and not kinds & {"payment_failed", "invitation"}
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 1


def test_an_approved_charge_that_can_no_longer_apply_is_refunded_with_history(
    sm2, monthly, monkeypatch
):
    sub, purchase = _charged_but_not_recorded(sm2, monthly, monkeypatch)
    services.deactivate_items(subscription=sub, running_nos=[1], actor=STAFF, at=FEB28)
    sweep(FEB28 + timedelta(minutes=5))
    sub, purchase = fresh(sub), Purchase.objects.get(pk=purchase.pk)
    assert (purchase.status, purchase.refunded_amount) == ("refunded", purchase.total)
    assert sub.status == "Deactivated" and sub.last_interval_no == 1
    refund = GatewayCharge.objects.get(idempotency_key=f"refund:renewal:{sub.pk}:2:1")
    assert (refund.amount, refund.outcome) == (purchase.total, "approved")
    entry = sub.history.get(event_code="chargeRefunded")
    assert "could no longer be applied" in entry.summary and "refunded" in entry.summary
    assert not CustomerEmail.objects.filter(subscription=sub, kind="payment_failed").exists()
    sweep(FEB28 + timedelta(minutes=10))  # once
    assert GatewayCharge.objects.filter(idempotency_key__startswith="refund:").count() == 1


def test_a_charge_still_in_flight_is_left_to_its_batch(sm2, monthly, monkeypatch):
    sub, purchase = _charged_but_not_recorded(sm2, monthly, monkeypatch)
    renewals.reconcile(sm2, at=FEB28 + timedelta(seconds=30))  # too recent to be lost
    assert Purchase.objects.get(pk=purchase.pk).status == "pending"


def test_a_subscription_changed_between_claim_and_record_is_recorded_by_the_services(
    sm2, monthly, monkeypatch, needs_postgres
):
    """The set-based path writes a subscription only if its row version is
    still the claim's; one changed meanwhile (here switched to Manual and
    given a new billing date by staff while the charges were out) is
    recorded by ``record_charge`` with what it is now, the others in the
    batch as usual."""
    subs = many(sm2, monthly, 3)
    gateway = renewals.get_gateway()
    MOVED_TO = datetime(2026, 3, 20, 12, tzinfo=UTC)

    class StaffActsDuringTheCharge:
        def send_many(self, requests):
            services.switch_renewal_type(
                subscription=fresh(subs[1]), renewal_type="Manual", actor=STAFF, at=FEB28
            )
            services.change_next_billing_date(
                subscription=fresh(subs[1]), next_billing_date=MOVED_TO, actor=STAFF, at=FEB28
            )
            return gateway.send_many(requests)

    monkeypatch.setattr(renewals, "get_gateway", StaffActsDuringTheCharge)
    outcome = renewals.charge_batch([s.pk for s in subs], as_of=FEB28)
    assert outcome.counts["charged"] == 3
    assert [paid_renewals(s) for s in subs] == [1, 1, 1]
    assert [fresh(s).last_interval_no for s in subs] == [2, 2, 2]
    changed = fresh(subs[1])
    assert changed.renewal_type == "Manual" and changed.status == "Active"
    assert history_codes(changed)[-3:] == ["renTypeUpd", "updNextBD", "renewed"]
    # The renewal counted from the date staff set, not the claim's dates.
    assert changed.next_billing_date == datetime(2026, 4, 20, 12, tzinfo=UTC)
    assert fresh(subs[0]).next_billing_date == datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert Purchase.objects.filter(subscription__in=subs, status="pending").count() == 0


def test_a_batch_is_claimed_in_parts_each_parts_charges_sent_before_the_next_claim(
    sm2, monthly, monkeypatch, settings, needs_postgres
):
    """The gateway's latency passes while the rest of the batch is claimed:
    part 1's charges are on the network before part 2 is claimed, each part
    twice the one before; every subscription renews once, whatever the parts."""
    settings.RENEWAL_CLAIM_CHUNK = 2
    subs = many(sm2, monthly, 7)
    events = []
    claim, gateway = renewal_sql.claim, renewals.get_gateway()

    def claiming(ids, **kwargs):
        events.append(("claim", list(ids)))
        return claim(ids, **kwargs)

    class Watched:
        def send_many(self, requests):
            events.append(("send", len(requests)))
            answers = gateway.send_many(requests)

            def collect():
                events.append(("answers", len(requests)))
                return answers()

            return Answers([], collect)

    monkeypatch.setattr(renewal_sql, "claim", claiming)
    monkeypatch.setattr(renewals, "get_gateway", Watched)
    outcome = renewals.charge_batch([s.pk for s in subs], as_of=FEB28)
    ids = [s.pk for s in subs]
    assert events == [
        ("claim", ids[0:2]),
        ("send", 2),
        ("claim", ids[2:6]),
        ("send", 4),
        ("claim", ids[6:7]),
        ("send", 1),
        ("answers", 2),
        ("answers", 4),
        ("answers", 1),
    ]
    assert outcome.counts["charged"] == 7
    assert [paid_renewals(s) for s in subs] == [1] * 7
    assert renewals.charge_batch(ids, as_of=FEB28).counts["charged"] == 0
