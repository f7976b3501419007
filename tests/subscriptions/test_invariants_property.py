"""Random sequences of lifecycle events never break the docs/lifecycle.md invariants,
and a refused event never changes anything."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.gateway import CARD_APPROVED, CARD_DECLINES_AFTER_FIRST
from commerce.models import Purchase
from subscriptions import services
from subscriptions.errors import DomainError
from subscriptions.models import HistoryEntry, Subscription
from tests.conftest import STAFF, T0, subscribe
from tests.factories import ClientFactory, ProductFactory

items = st.lists(st.integers(1, 3), min_size=1, max_size=3)
events = st.one_of(
    st.tuples(st.just("deactivate"), items, st.booleans()),
    st.tuples(st.just("reinstate"), items),
    st.tuples(st.just("await_reinstate")),
    st.tuples(st.just("switch"), st.sampled_from(["Automatic", "Manual"])),
    st.tuples(st.just("remove"), st.integers(1, 3)),
    st.tuples(st.just("change_date"), st.integers(-5, 60)),
    st.tuples(st.just("billing_date_passes")),
    st.tuples(st.just("days_pass"), st.integers(1, 10)),
    st.tuples(st.just("pay_overdue")),
    st.tuples(st.just("renew_early"), st.booleans()),
    st.tuples(st.just("refund"), st.booleans()),
    st.tuples(st.just("hand_over")),
)


def apply(event, sub, now):
    name, *args = event
    kw = {"subscription": sub, "actor": STAFF, "at": now}
    match name:
        case "deactivate":
            services.deactivate_items(running_nos=args[0], allow_reinstate=args[1], **kw)
        case "reinstate":
            services.reinstate_items(running_nos=args[0], **kw)
        case "await_reinstate":
            services.await_reinstate(**kw)
        case "switch":
            services.switch_renewal_type(renewal_type=args[0], **kw)
        case "remove":
            services.remove_item(running_no=args[0], **kw)
        case "change_date":
            services.change_next_billing_date(next_billing_date=now + timedelta(days=args[0]), **kw)
        case "pay_overdue":
            services.pay_overdue(**kw)
        case "renew_early":
            services.renew_early(
                dates=services.NextDates.FROM_PAYMENT if args[0] else services.NextDates.SCHEDULE,
                **kw,
            )
        case "refund":
            purchase = Purchase.objects.filter(subscription=sub, status="paid").last()
            if purchase:
                amount = None if args[0] else Decimal("0.01")
                services.refund(purchase=purchase, amount=amount, actor=STAFF, at=now)
        case "hand_over":
            services.hand_over_to_client(**kw)


def state(sub):
    sub = Subscription.objects.get(pk=sub.pk)
    return sub, sub.snapshot(list(sub.items.all())), HistoryEntry.objects.count()


def check_invariants(sub):
    statuses = list(sub.items.values_list("status", flat=True))
    if sub.status in ("Deactivated", "Finished"):
        assert "Active" not in statuses, (sub.status, statuses)
    if sub.status in ("Active", "Grace", "Hold"):
        assert "Active" in statuses, (sub.status, statuses)
    if sub.status == "Finished":
        assert not {"Deactivated", "AwaitingReinstate"} & set(statuses), statuses
    assert (sub.renewal_type is None) == (sub.sm_version == "1.0")
    assert sub.next_billing_date == sub.billing_date_of(sub.last_interval_no + 1)
    paid = (
        Purchase.objects.filter(subscription=sub, category="renewal")
        .exclude(status__in=["pending", "declined", "failed"])
        .count()
    )
    assert sub.last_interval_no == 1 + paid


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sm=st.sampled_from(["1.0", "2.0"]),
    manual=st.booleans(),
    one_time=st.booleans(),
    card=st.sampled_from([CARD_APPROVED, CARD_DECLINES_AFTER_FIRST]),
    grace=st.integers(0, 3),
    hold=st.integers(0, 3),
    steps=st.lists(events, max_size=15),
)
def test_random_event_sequences_keep_the_invariants(
    db, sm, manual, one_time, card, grace, hold, steps
):
    with transaction.atomic():
        client = ClientFactory(sm_version=sm, grace_period_days=grace, hold_days=hold)
        products = [
            ProductFactory(
                client=client,
                renewal_mode="manual" if manual and no == 0 else "automatic",
                is_one_time_rebilling=one_time,
            )
            for no in range(3)
        ]
        sub = subscribe(client, *products, number=card, auto=not manual)
        now = T0
        for event in steps:
            sub, before, entries = state(sub)
            if event[0] == "billing_date_passes":
                now = max(now, sub.next_billing_date)
                services.renew_due(subscription=sub, at=now)
            elif event[0] == "days_pass":
                now += timedelta(days=event[1])
                services.advance_dunning(subscription=sub, at=now)
            else:
                try:
                    apply(event, sub, now)
                except DomainError:
                    _, after, entries_after = state(sub)
                    assert (after, entries_after) == (before, entries), event
            sub, _, _ = state(sub)
            check_invariants(sub)
        transaction.set_rollback(True)
