"""Renewal charged, non-payment (grace/hold/deactivate), late payment, the
last billing event, SM 1.0 manual cycle and SM 2.0 manual (docs/lifecycle.md, docs/renewals.md)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commerce.gateway import (
    CARD_DECLINES_AFTER_FIRST,
    CARD_TRANSIENT_ERROR,
    token_for_test_card,
)
from commerce.models import GatewayCharge, Purchase
from subscriptions import services
from subscriptions.errors import TransitionNotAllowed
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


def renewals(sub):
    return Purchase.objects.filter(subscription=sub, category="renewal")


def first_in_between(monkeypatch, module, other):
    """Run ``other`` (another worker, or person) once, at the worst moment:
    after the caller decided to charge, before ``module.charge_next_interval``
    takes its lock. Returns a list that holds what ``other`` returned."""
    charge, ran = module.charge_next_interval, []

    def patched(**kwargs):
        if not ran:
            ran.append(None)  # ``other``'s own charge goes straight through
            ran[0] = other()
        return charge(**kwargs)

    monkeypatch.setattr(module, "charge_next_interval", patched)
    return ran


def test_renewal_charges_active_items_and_advances_from_the_anchor(vendor, plan):
    sub = subscribe(vendor, plan, quantity=3)
    assert services.renew_due(subscription=sub, at=FEB28) == "charged"
    sub = fresh(sub)
    assert (sub.status, sub.last_interval_no, sub.next_billing_date) == ("Active", 2, MAR31)
    purchase = renewals(sub).get()
    assert (purchase.status, purchase.total, purchase.interval_no) == ("paid", Decimal("30.00"), 2)
    assert history_codes(sub)[-1] == "renewed"
    assert notification_types(sub)[-1] == "PaidOrderNotification"
    assert list(sub.items.values_list("last_interval_no", flat=True)) == [2]


def test_renewal_bills_only_active_items_at_their_current_price(vendor, plan):
    extra = ProductFactory(client=vendor, price=Decimal("4.00"))
    sub = subscribe(vendor, plan, extra)
    services.deactivate_items(subscription=sub, running_nos=[1], actor=STAFF, at=T0)
    services.renew_due(subscription=sub, at=FEB28)
    purchase = renewals(sub).get()
    assert purchase.total == Decimal("4.00")
    assert list(purchase.items.values_list("subscription_item__running_no", flat=True)) == [2]


def test_renewal_is_not_due_before_the_billing_date(vendor, plan):
    sub = subscribe(vendor, plan)
    assert services.renew_due(subscription=sub, at=FEB28 - timedelta(seconds=1)) == "skipped"
    assert not renewals(sub).exists()


def test_running_the_renewal_twice_charges_once(vendor, plan):
    sub = subscribe(vendor, plan)
    assert services.renew_due(subscription=sub, at=FEB28) == "charged"
    assert services.renew_due(subscription=sub, at=FEB28) == "skipped"
    assert renewals(sub).count() == 1
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 1


def test_renewed_by_another_worker_after_the_due_check_is_not_charged_again(
    vendor, plan, monkeypatch
):
    """Two workers with the same due subscription (two sweeps at once): one
    checks it is due, the other renews it before the first charges. The first
    must not go on to charge the next interval a month early."""
    from subscriptions.services import billing

    sub = subscribe(vendor, plan)
    other = first_in_between(
        monkeypatch, billing, lambda: services.renew_due(subscription=fresh(sub), at=FEB28)
    )
    assert services.renew_due(subscription=sub, at=FEB28) == "skipped"
    assert other == ["charged"]
    monkeypatch.undo()
    sub = fresh(sub)
    assert sub.last_interval_no == 2 and sub.next_billing_date > FEB28
    assert [p.interval_no for p in renewals(sub)] == [2]
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 1


def test_crash_after_the_charge_is_finished_by_the_retry_without_a_second_charge(
    vendor, plan, monkeypatch
):
    from subscriptions.services import billing

    sub = subscribe(vendor, plan)
    real = billing.apply_paid_renewal

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed after the gateway answered")

    monkeypatch.setattr(billing, "apply_paid_renewal", crash)
    with pytest.raises(RuntimeError):
        services.renew_due(subscription=sub, at=FEB28)
    assert renewals(sub).get().status == "pending" and fresh(sub).last_interval_no == 1
    monkeypatch.setattr(billing, "apply_paid_renewal", real)
    assert services.renew_due(subscription=sub, at=FEB28) == "charged"
    assert fresh(sub).last_interval_no == 2
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 1


def test_declined_renewal_puts_the_subscription_on_grace(vendor, plan):
    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    assert services.renew_due(subscription=sub, at=FEB28) == "declined"
    sub = fresh(sub)
    assert (sub.status, item_statuses(sub), sub.last_interval_no) == ("Grace", ["Active"], 1)
    assert notification_types(sub)[-1] == "RecurringBillingOnGraceNotification"
    assert renewals(sub).get().status == "declined"


def test_zero_grace_days_go_straight_to_hold(vendor, plan):
    vendor.grace_period_days = 0
    vendor.save()
    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    services.renew_due(subscription=sub, at=FEB28)
    assert fresh(sub).status == "Hold"
    assert notification_types(sub)[-1] == "RecurringBillingOnHoldNotification"


def test_zero_grace_and_hold_days_go_straight_to_deactivated(vendor, plan):
    vendor.grace_period_days = vendor.hold_days = 0
    vendor.save()
    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    services.renew_due(subscription=sub, at=FEB28)
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["Deactivated"])
    assert notification_types(sub)[-1] == "RecurringBillingCanceledNotification"


def test_grace_then_hold_then_deactivated_as_days_pass(vendor, plan):
    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    services.renew_due(subscription=sub, at=FEB28)
    assert services.advance_dunning(subscription=sub, at=FEB28 + timedelta(days=6)) is None
    assert services.advance_dunning(subscription=sub, at=FEB28 + timedelta(days=7)) == "Hold"
    assert services.advance_dunning(subscription=sub, at=FEB28 + timedelta(days=13)) is None
    assert (
        services.advance_dunning(subscription=sub, at=FEB28 + timedelta(days=14)) == "Deactivated"
    )
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["Deactivated"])
    assert notification_types(sub)[-3:] == [
        "RecurringBillingOnGraceNotification",
        "RecurringBillingOnHoldNotification",
        "RecurringBillingCanceledNotification",
    ]
    assert history_codes(sub)[-1] == "deactivate"


@pytest.mark.parametrize("days_late, status", [(3, "Grace"), (9, "Hold")])
def test_late_payment_reactivates_and_rebases_on_the_payment_date(vendor, plan, days_late, status):
    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    services.renew_due(subscription=sub, at=FEB28)
    if status == "Hold":
        services.advance_dunning(subscription=sub, at=FEB28 + timedelta(days=7))
    assert fresh(sub).status == status
    sub.payment_method.token = token_for_test_card("4242424242424242")
    sub.payment_method.save()
    paid_at = FEB28 + timedelta(days=days_late)
    outcome = services.pay_overdue(subscription=fresh(sub), actor=STAFF, at=paid_at)
    sub = fresh(sub)
    assert (outcome.status, sub.status, sub.last_interval_no) == ("Success", "Active", 2)
    assert sub.next_billing_date == paid_at + timedelta(days=31)  # March has 31 days
    assert history_codes(sub)[-1] == "renewed"


def test_an_overdue_payment_made_twice_at_once_charges_once(vendor, plan, monkeypatch):
    """Staff click Renew now while a dunning retry pays the same overdue
    renewal: the second finds it paid under the lock and refuses, instead of
    charging the next interval."""
    from subscriptions.errors import ConcurrentChange
    from subscriptions.services import billing

    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    services.renew_due(subscription=sub, at=FEB28)
    sub.payment_method.token = token_for_test_card("4242424242424242")
    sub.payment_method.save()
    paid_at = FEB28 + timedelta(days=2)
    retry = first_in_between(
        monkeypatch,
        billing,
        lambda: services.pay_overdue(subscription=fresh(sub), actor=STAFF, at=paid_at).status,
    )
    with pytest.raises(ConcurrentChange, match="Grace or Hold"):
        services.pay_overdue(subscription=fresh(sub), actor=STAFF, at=paid_at)
    assert retry == ["Success"]
    monkeypatch.undo()
    sub = fresh(sub)
    assert (sub.status, sub.last_interval_no) == ("Active", 2)
    assert [(p.interval_no, p.status) for p in renewals(sub)] == [(2, "paid")]


def test_renew_now_while_the_schedule_renews_charges_one_interval(vendor, plan, monkeypatch):
    """Staff click Renew now on a due subscription as the sweep renews it: the
    click asked for the interval the sweep has just charged, so it charges
    nothing more (and says so) instead of a second interval."""
    from subscriptions.errors import ConcurrentChange
    from subscriptions.services import billing

    sub = subscribe(vendor, plan)
    sweep = first_in_between(
        monkeypatch, billing, lambda: services.renew_due(subscription=fresh(sub), at=FEB28)
    )
    with pytest.raises(ConcurrentChange, match="renewed meanwhile"):
        services.renew_early(subscription=fresh(sub), actor=STAFF, at=FEB28)
    assert sweep == ["charged"]
    monkeypatch.undo()
    assert [(p.interval_no, p.status) for p in renewals(sub)] == [(2, "paid")]
    assert fresh(sub).last_interval_no == 2


def test_transient_gateway_error_is_not_a_decline(vendor, plan):
    sub = subscribe(vendor, plan)
    sub.payment_method.token = token_for_test_card(CARD_TRANSIENT_ERROR)
    sub.payment_method.save()
    assert services.renew_due(subscription=fresh(sub), at=FEB28) == "error"
    assert fresh(sub).status == "Active"
    assert renewals(sub).get().status == "failed"


def test_last_billing_event_finishes_the_subscription(vendor):
    two_events = ProductFactory(client=vendor, recurrence_count=2)
    sub = subscribe(vendor, two_events)
    assert services.renew_due(subscription=sub, at=FEB28) == "charged"
    assert services.renew_due(subscription=sub, at=MAR31) == "finished"
    assert (fresh(sub).status, item_statuses(sub)) == ("Finished", ["Finished"])
    assert renewals(sub).count() == 1
    assert notification_types(sub)[-1] == "RecurringBillingCanceledNotification"


def test_an_item_at_its_last_billing_event_finishes_while_the_other_renews(vendor, plan):
    once = ProductFactory(client=vendor, recurrence_count=1, price=Decimal("99"))
    sub = subscribe(vendor, plan, once)
    assert services.renew_due(subscription=sub, at=FEB28) == "charged"
    assert (fresh(sub).status, item_statuses(sub)) == ("Active", ["Active", "Finished"])
    assert renewals(sub).get().total == Decimal("10.00")


def test_handled_by_client_is_never_touched_by_the_schedule(vendor, plan):
    sub = subscribe(vendor, plan)
    services.hand_over_to_client(subscription=sub, actor=STAFF, at=T0)
    assert services.renew_due(subscription=sub, at=FEB28) == "skipped"
    assert services.advance_dunning(subscription=sub, at=FEB28 + timedelta(days=60)) is None
    assert fresh(sub).status == "HandledByClient" and not renewals(sub).exists()


# --- SM 1.0 manual renewal cycle ------------------------------------------------


@pytest.mark.parametrize(
    "one_time, after",
    [
        (True, ("Deactivated", ["AwaitingReinstate"])),
        (False, ("Active", ["Active"])),
    ],
)
def test_sm1_manual_cycle(sm1, one_time, after):
    product = ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=one_time)
    sub = subscribe(sm1, product)
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["AwaitingReinstate"])
    services.reinstate_items(
        subscription=sub, running_nos=[1], actor=STAFF, at=T0 + timedelta(days=10)
    )
    assert (fresh(sub).status, item_statuses(sub)) == ("Active", ["Active"])
    assert services.renew_due(subscription=sub, at=FEB28) == "charged"
    assert (fresh(sub).status, item_statuses(sub)) == after
    assert fresh(sub).next_billing_date == MAR31


def test_sm1_awaiting_reinstate_is_not_billed_at_the_billing_date(sm1):
    sub = subscribe(
        sm1, ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    )
    assert services.renew_due(subscription=sub, at=FEB28) == "skipped"
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["AwaitingReinstate"])
    assert not renewals(sub).exists()


def test_sm1_late_confirmation_bills_at_once_and_rebases_on_the_payment(sm1):
    sub = subscribe(
        sm1, ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    )
    confirmed = datetime(2026, 3, 10, 8, tzinfo=UTC)
    services.reinstate_items(subscription=sub, running_nos=[1], actor=STAFF, at=confirmed)
    sub = fresh(sub)
    assert renewals(sub).get().status == "paid"
    assert sub.last_interval_no == 2
    assert sub.next_billing_date == datetime(2026, 4, 10, 8, tzinfo=UTC)
    assert (sub.status, item_statuses(sub)) == ("Deactivated", ["AwaitingReinstate"])
    assert history_codes(sub)[-2:] == ["reinstate", "renewed"]


def test_a_late_confirmation_renewed_by_the_schedule_meanwhile_is_not_charged_again(
    sm1, monkeypatch
):
    """The customer confirms (reinstate) a renewal that is past due; before the
    confirmation charges it, a sweep renews the now Active subscription. It is
    charged once: the confirmation's charge sees it is no longer due."""
    from subscriptions.services import changes

    sub = subscribe(
        sm1, ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    )
    confirmed = datetime(2026, 3, 10, 8, tzinfo=UTC)
    sweep = first_in_between(
        monkeypatch, changes, lambda: services.renew_due(subscription=fresh(sub), at=confirmed)
    )
    services.reinstate_items(subscription=sub, running_nos=[1], actor=STAFF, at=confirmed)
    assert sweep == ["charged"]
    sub = fresh(sub)
    assert sub.last_interval_no == 2
    assert [(p.interval_no, p.status) for p in renewals(sub)] == [(2, "paid")]


# --- SM 2.0 manual -----------------------------------------------------------------


def test_sm2_manual_is_not_charged_at_the_billing_date_and_enters_grace(sm2, monthly):
    sub = subscribe(sm2, monthly, auto=False)
    assert services.renew_due(subscription=sub, at=FEB28) == "manual"
    assert fresh(sub).status == "Grace" and not renewals(sub).exists()
    outcome = services.pay_overdue(
        subscription=fresh(sub), actor=STAFF, at=FEB28 + timedelta(days=2)
    )
    sub = fresh(sub)
    assert (outcome.status, sub.status, sub.renewal_type) == ("Success", "Active", "Manual")


def test_pay_overdue_is_refused_when_nothing_is_overdue(vendor, plan):
    sub = subscribe(vendor, plan)
    with pytest.raises(TransitionNotAllowed, match="Grace or Hold"):
        services.pay_overdue(subscription=sub, actor=STAFF)


# --- offline payment -------------------------------------------------------------


def test_mark_as_paid_activates_a_new_offline_subscription(vendor, plan):
    result = sign_up(vendor, plan, invoice=True)
    paid_at = T0 + timedelta(days=3)
    services.mark_purchase_paid(purchase=result.purchase, actor=STAFF, at=paid_at)
    sub = fresh(result.subscriptions[0])
    assert (sub.status, sub.last_interval_no) == ("Active", 1)
    assert sub.next_billing_date == datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert notification_types(sub)[-1] == "PaidOrderNotification"
    assert history_codes(sub) == ["new", "new"]


def test_mark_as_paid_twice_is_refused(vendor, plan):
    result = sign_up(vendor, plan, invoice=True)
    services.mark_purchase_paid(purchase=result.purchase, actor=STAFF)
    with pytest.raises(TransitionNotAllowed, match="not an unpaid invoice"):
        services.mark_purchase_paid(purchase=result.purchase, actor=STAFF)


def test_sm1_manual_product_paid_by_invoice_then_awaits_reinstate(sm1):
    product = ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=False)
    result = sign_up(sm1, product, invoice=True)
    services.mark_purchase_paid(purchase=result.purchase, actor=STAFF)
    sub = fresh(result.subscriptions[0])
    assert (sub.status, item_statuses(sub)) == ("Deactivated", ["AwaitingReinstate"])


def test_invoice_renewal_waits_for_mark_as_paid_and_keeps_the_schedule_when_on_time(vendor, plan):
    result = sign_up(vendor, plan, invoice=True)
    services.mark_purchase_paid(purchase=result.purchase, actor=STAFF, at=T0)
    sub = result.subscriptions[0]
    assert services.renew_due(subscription=sub, at=FEB28) == "invoiced"
    invoice = renewals(sub).get()
    assert (invoice.status, fresh(sub).status) == ("pending", "Grace")
    services.mark_purchase_paid(purchase=invoice, actor=STAFF, at=FEB28)
    sub = fresh(sub)
    assert (sub.status, sub.last_interval_no, sub.next_billing_date) == ("Active", 2, MAR31)


def test_one_client_settings_do_not_leak_to_another(vendor, plan):
    other = ClientFactory(grace_period_days=0, hold_days=0)
    sub = subscribe(vendor, plan, number=CARD_DECLINES_AFTER_FIRST)
    services.renew_due(subscription=sub, at=FEB28)
    assert fresh(sub).status == "Grace" and other.grace_period_days == 0
