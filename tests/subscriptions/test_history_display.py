"""History as staff read it: labels, names, dates with zone, product names
and amounts with currency — computed by hand for one change each."""

from datetime import UTC, datetime
from decimal import Decimal

from subscriptions import history_display, services
from subscriptions.models import HistoryEntry
from tests.conftest import STAFF, subscribe
from tests.factories import ProductFactory


def shown(sub):
    entries = list(HistoryEntry.objects.filter(subscription=sub).order_by("-id"))
    return history_display.shown(entries)[0]


def test_an_item_change_shows_product_names_and_amounts(sm2, monthly):
    sub = subscribe(sm2, monthly)
    services.deactivate_items(subscription=sub, running_nos=[1], actor=STAFF)
    entry = shown(sub)
    assert entry.label == "Deactivated"
    assert ("Item 1", "Active", "Deactivated") in [
        (c.label, c.before, c.after) for c in entry.changes
    ]


def test_a_new_billing_date_is_shown_with_its_zone(sm2, monthly):
    sub = subscribe(sm2, monthly)
    old = sub.next_billing_date
    services.change_next_billing_date(
        subscription=sub, next_billing_date=datetime(2026, 6, 1, 9, 30, tzinfo=UTC), actor=STAFF
    )
    (change,) = [c for c in shown(sub).changes if c.label == "Next billing date"]
    assert change.before == f"{old:%Y-%m-%d %H:%M} UTC"
    assert change.after == "2026-06-01 09:30 UTC"


def test_lines_name_the_product_and_currency(sm2):
    plan = ProductFactory(client=sm2, name="Team plan", price=Decimal("240.00"))
    sub = subscribe(sm2, plan)
    entries = list(HistoryEntry.objects.filter(subscription=sub).order_by("id"))
    first = history_display.shown(entries)[0]  # the sign-up: item 1 starts billing
    lines = [(c.before, c.after) for c in first.changes if c.label == "Item 1 bills"]
    assert lines == [(None, "Team plan × 1 at 240.00 EUR")]
