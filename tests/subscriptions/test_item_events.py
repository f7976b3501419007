"""Deactivate, retire, reinstate, remove (docs/lifecycle.md) in both SM versions."""

from decimal import Decimal

import pytest

from subscriptions import services
from subscriptions.errors import NotFound, TransitionNotAllowed
from subscriptions.models import HistoryEntry
from tests.conftest import STAFF, fresh, history_codes, item_statuses, notification_types, subscribe
from tests.factories import ProductFactory


@pytest.fixture(params=["1.0", "2.0"])
def client(request, sm1, sm2):
    return sm1 if request.param == "1.0" else sm2


@pytest.fixture
def two_items(client):
    a = ProductFactory(client=client, name="Main", price=Decimal("10"))
    b = ProductFactory(client=client, name="Extra", price=Decimal("5"))
    return subscribe(client, a, b)


def test_deactivating_all_items_deactivates_the_subscription(two_items):
    sub = services.deactivate_items(subscription=two_items, running_nos=[1, 2], actor=STAFF)
    assert (fresh(sub).status, item_statuses(sub)) == (
        "Deactivated",
        ["Deactivated", "Deactivated"],
    )
    assert history_codes(sub)[-1] == "deactivate"
    assert notification_types(sub)[-1] == "RecurringBillingCanceledNotification"


def test_deactivating_one_of_two_items_keeps_the_subscription_active(two_items):
    services.deactivate_items(subscription=two_items, running_nos=[2], actor=STAFF)
    assert (fresh(two_items).status, item_statuses(two_items)) == (
        "Active",
        ["Active", "Deactivated"],
    )


def test_retiring_all_items_finishes_the_subscription(two_items):
    services.deactivate_items(
        subscription=two_items, running_nos=[1, 2], allow_reinstate=False, actor=STAFF
    )
    assert (fresh(two_items).status, item_statuses(two_items)) == (
        "Finished",
        ["Finished", "Finished"],
    )


def test_retiring_one_item_while_the_other_is_deactivated_leaves_it_deactivated(two_items):
    services.deactivate_items(subscription=two_items, running_nos=[1], actor=STAFF)
    services.deactivate_items(
        subscription=two_items, running_nos=[2], allow_reinstate=False, actor=STAFF
    )
    assert (fresh(two_items).status, item_statuses(two_items)) == (
        "Deactivated",
        ["Deactivated", "Finished"],
    )


def test_reinstating_makes_items_and_subscription_active_again(two_items):
    services.deactivate_items(subscription=two_items, running_nos=[1, 2], actor=STAFF)
    services.reinstate_items(subscription=two_items, running_nos=[1], actor=STAFF)
    assert (fresh(two_items).status, item_statuses(two_items)) == (
        "Active",
        ["Active", "Deactivated"],
    )
    assert notification_types(two_items)[-1] == "RecurringBillingReinstatedNotification"
    entry = two_items.history.order_by("-id").first()
    assert entry.event_code == "reinstate"
    assert entry.before["status"] == "Deactivated" and entry.after["status"] == "Active"


def test_a_finished_item_cannot_be_reinstated_and_nothing_changes(two_items):
    services.deactivate_items(
        subscription=two_items, running_nos=[2], allow_reinstate=False, actor=STAFF
    )
    entries = HistoryEntry.objects.count()
    with pytest.raises(TransitionNotAllowed, match="Finished"):
        services.reinstate_items(subscription=two_items, running_nos=[2], actor=STAFF)
    assert item_statuses(two_items) == ["Active", "Finished"]
    assert HistoryEntry.objects.count() == entries


def test_deactivating_an_already_deactivated_item_is_refused(two_items):
    services.deactivate_items(subscription=two_items, running_nos=[2], actor=STAFF)
    with pytest.raises(TransitionNotAllowed, match="already Deactivated"):
        services.deactivate_items(subscription=two_items, running_nos=[1, 2], actor=STAFF)
    assert item_statuses(two_items) == ["Active", "Deactivated"]


def test_unknown_item_is_not_found(two_items):
    with pytest.raises(NotFound):
        services.deactivate_items(subscription=two_items, running_nos=[7], actor=STAFF)


def test_removing_an_item_is_allowed_while_two_remain(two_items):
    services.remove_item(subscription=two_items, running_no=2, actor=STAFF)
    assert item_statuses(two_items) == ["Active", "Removed"]
    assert history_codes(two_items)[-1] == "remove"
    assert notification_types(two_items) == ["PaidOrderNotification"]  # remove sends none


def test_the_last_item_cannot_be_removed(two_items):
    services.remove_item(subscription=two_items, running_no=2, actor=STAFF)
    with pytest.raises(TransitionNotAllowed, match="last item"):
        services.remove_item(subscription=two_items, running_no=1, actor=STAFF)
    assert item_statuses(two_items) == ["Active", "Removed"]


def test_removing_the_only_active_item_deactivates_the_subscription(two_items):
    services.deactivate_items(subscription=two_items, running_nos=[2], actor=STAFF)
    services.remove_item(subscription=two_items, running_no=1, actor=STAFF)
    assert (fresh(two_items).status, item_statuses(two_items)) == (
        "Deactivated",
        ["Removed", "Deactivated"],
    )


def test_a_note_is_added_to_history_without_changing_anything(two_items):
    before = fresh(two_items).status
    services.add_note(subscription=two_items, text="Customer called about invoice", actor=STAFF)
    entry = two_items.history.order_by("-id").first()
    assert (entry.event_code, entry.summary, entry.before) == (
        "note",
        "Customer called about invoice",
        {},
    )
    assert fresh(two_items).status == before


def test_history_entries_cannot_be_edited_or_deleted(two_items):
    entry = two_items.history.first()
    entry.summary = "rewritten"
    with pytest.raises(TransitionNotAllowed):
        entry.save()
    with pytest.raises(TransitionNotAllowed):
        entry.delete()
