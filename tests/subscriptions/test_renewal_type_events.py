"""Await Reinstate (SM 1.0), Switch renewal type (SM 2.0), Change next billing date."""

from datetime import UTC, datetime, timedelta

import pytest

from subscriptions import services
from subscriptions.errors import InvalidInput, TransitionNotAllowed
from tests.conftest import (
    STAFF,
    T0,
    fresh,
    history_codes,
    item_statuses,
    notification_types,
    subscribe,
)
from tests.factories import ProductFactory


def test_switch_to_manual_changes_only_the_renewal_type(sm2, monthly):
    sub = subscribe(sm2, monthly)
    services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF, at=T0)
    sub = fresh(sub)
    assert (sub.status, item_statuses(sub), sub.renewal_type) == ("Active", ["Active"], "Manual")
    assert history_codes(sub)[-1] == "renTypeUpd"
    assert notification_types(sub)[-1] == "SubscriptionRenewalTypeChangedNotification"
    entry = sub.history.order_by("-id").first()
    assert (entry.before, entry.after) == (
        {"renewal_type": "Automatic"},
        {"renewal_type": "Manual"},
    )


def test_switch_back_to_automatic(sm2, monthly):
    sub = subscribe(sm2, monthly, auto=False)
    services.switch_renewal_type(subscription=sub, renewal_type="Automatic", actor=STAFF, at=T0)
    assert fresh(sub).renewal_type == "Automatic"


def test_switching_to_the_same_type_is_refused(sm2, monthly):
    sub = subscribe(sm2, monthly)
    with pytest.raises(TransitionNotAllowed, match="already Automatic"):
        services.switch_renewal_type(subscription=sub, renewal_type="Automatic", actor=STAFF)


def test_renewal_type_switch_is_refused_in_sm1(sm1):
    sub = subscribe(sm1, ProductFactory(client=sm1))
    with pytest.raises(TransitionNotAllowed, match="2.0 only"):
        services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF)
    assert fresh(sub).renewal_type is None and history_codes(sub) == ["new"]


def test_unknown_renewal_type_is_invalid_input(sm2, monthly):
    sub = subscribe(sm2, monthly)
    with pytest.raises(InvalidInput):
        services.switch_renewal_type(subscription=sub, renewal_type="Sometimes", actor=STAFF)


def test_await_reinstate_in_sm1_sets_deactivated_awaiting_reinstate(sm1):
    sub = subscribe(sm1, ProductFactory(client=sm1), ProductFactory(client=sm1))
    services.await_reinstate(subscription=sub, actor=STAFF, at=T0)
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["AwaitingReinstate"] * 2)
    assert history_codes(sub)[-1] == "deactivate"
    assert notification_types(sub)[-1] == "RecurringBillingCanceledNotification"


def test_await_reinstate_is_refused_in_sm2(sm2, monthly):
    sub = subscribe(sm2, monthly)
    with pytest.raises(TransitionNotAllowed, match="Switch to Manual Renewal"):
        services.await_reinstate(subscription=sub, actor=STAFF)
    assert fresh(sub).status == "Active"


def test_await_reinstate_twice_is_refused(sm1):
    sub = subscribe(sm1, ProductFactory(client=sm1))
    services.await_reinstate(subscription=sub, actor=STAFF, at=T0)
    with pytest.raises(TransitionNotAllowed):
        services.await_reinstate(subscription=sub, actor=STAFF, at=T0)


def test_change_next_billing_date_moves_the_date_and_later_ones_follow(sm2, monthly):
    sub = subscribe(sm2, monthly)
    new_date = datetime(2026, 3, 15, 12, tzinfo=UTC)
    services.change_next_billing_date(
        subscription=sub, next_billing_date=new_date, actor=STAFF, at=T0
    )
    sub = fresh(sub)
    assert sub.next_billing_date == new_date
    assert sub.billing_date_of(sub.last_interval_no + 2).date().isoformat() == "2026-04-15"
    assert history_codes(sub)[-1] == "updNextBD"
    assert notification_types(sub)[-1] == "SubscriptionBillingDateExtendedNotification"


@pytest.mark.parametrize("when", [T0 - timedelta(days=1), T0])
def test_next_billing_date_in_the_past_is_refused(sm2, monthly, when):
    sub = subscribe(sm2, monthly)
    with pytest.raises(InvalidInput, match="future"):
        services.change_next_billing_date(
            subscription=sub, next_billing_date=when, actor=STAFF, at=T0
        )
    assert fresh(sub).next_billing_date.date().isoformat() == "2026-02-28"


def test_naive_date_is_refused(sm2, monthly):
    sub = subscribe(sm2, monthly)
    with pytest.raises(InvalidInput, match="time zone"):
        services.change_next_billing_date(
            subscription=sub, next_billing_date=datetime(2027, 1, 1), actor=STAFF, at=T0
        )


def test_handed_over_subscription_refuses_every_change(sm2, monthly):
    sub = subscribe(sm2, monthly)
    services.hand_over_to_client(subscription=sub, actor=STAFF, at=T0)
    assert (fresh(sub).status, item_statuses(sub)) == ("HandledByClient", ["HandledByClient"])
    for change in (
        lambda: services.deactivate_items(subscription=sub, running_nos=[1], actor=STAFF),
        lambda: services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF),
        lambda: services.change_next_billing_date(
            subscription=sub, next_billing_date=T0 + timedelta(days=90), actor=STAFF, at=T0
        ),
    ):
        with pytest.raises(TransitionNotAllowed, match="handled by the client"):
            change()
    assert fresh(sub).status == "HandledByClient"
