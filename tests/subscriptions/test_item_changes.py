"""Item changes with alignment and proration (docs/api.md). Every expected amount
is computed by hand in the comment above it: price difference x remaining
days / days in the current interval, rounded half-up to the cent."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commerce.gateway import CARD_DECLINES_AFTER_FIRST
from commerce.models import Purchase
from subscriptions import services
from subscriptions.errors import InvalidInput, TransitionNotAllowed
from subscriptions.models import HistoryEntry
from tests.conftest import STAFF, fresh, history_codes, notification_types, subscribe
from tests.factories import ProductFactory

ALIGN = services.Alignment(align=True)
EXTEND = services.Alignment(align=True, extend=True)
NEXT = services.Alignment()


def at(y, m, d):
    return datetime(y, m, d, 12, 0, tzinfo=UTC)


@pytest.fixture
def pro(sm2):
    return ProductFactory(client=sm2, name="Pro", price=Decimal("10.00"))


@pytest.fixture
def premium(sm2):
    return ProductFactory(client=sm2, name="Premium", price=Decimal("25.00"))


def change(sub, when, alignment=ALIGN, **kwargs):
    return services.change_item(
        subscription=sub,
        change=services.ItemChange(**kwargs),
        alignment=alignment,
        actor=STAFF,
        at=when,
    )


def alignment_purchases(sub):
    return list(Purchase.objects.filter(subscription=sub, category="alignment").order_by("id"))


def test_upgrade_in_the_middle_of_a_monthly_interval_charges_the_prorated_difference(
    sm2, pro, premium
):
    sub = subscribe(sm2, pro, at=at(2026, 3, 10))  # paid to 2026-04-10: 31 days
    quote = change(
        sub, at(2026, 3, 22), kind="update", running_no=1, product=premium, update_action="Upgrade"
    )
    # 15.00 more a month x 19 days left (22 March -> 10 April) / 31 = 9.1935... -> 9.19
    assert quote.charge_now == Decimal("9.19")
    assert (quote.remaining_days, quote.interval_days) == (19, 31)
    [purchase] = alignment_purchases(sub)
    assert (purchase.status, purchase.total, purchase.currency) == ("paid", Decimal("9.19"), "EUR")
    [line] = purchase.items.all()
    assert (line.product, line.quantity, line.amount) == (premium, 1, Decimal("9.19"))
    item = fresh(sub).items.get()
    assert (item.product, item.unit_price, item.version) == (premium, Decimal("25.00"), 2)
    assert fresh(sub).next_billing_date == at(2026, 4, 10)  # the interval is not moved
    assert history_codes(sub)[-1] == "upgrade"
    assert notification_types(sub)[-1] == "PaidOrderNotification"
    entry = HistoryEntry.objects.filter(subscription=sub).latest("id")
    assert entry.before["lines"] == {"1": f"P{pro.pk} x 1 @ 10.00"}
    assert entry.after["lines"] == {"1": f"P{premium.pk} x 1 @ 25.00"}


def test_upgrade_in_the_middle_of_a_yearly_interval(sm2):
    basic = ProductFactory(client=sm2, price=Decimal("120.00"), interval_months=12)
    plus = ProductFactory(client=sm2, price=Decimal("240.00"), interval_months=12)
    basic.initial_interval_months = plus.initial_interval_months = 12
    basic.save()
    plus.save()
    sub = subscribe(sm2, basic, at=at(2026, 2, 1))  # paid to 2027-02-01: 365 days
    quote = change(sub, at(2026, 8, 15), kind="update", running_no=1, product=plus)
    # 120.00 more a year x 170 days left (15 Aug 2026 -> 1 Feb 2027) / 365 = 55.8904... -> 55.89
    assert quote.charge_now == Decimal("55.89")
    assert alignment_purchases(sub)[0].total == Decimal("55.89")
    assert history_codes(sub)[-1] == "update"


def test_quantity_increase_across_february(sm2, pro):
    sub = subscribe(sm2, pro, at=at(2026, 2, 5))  # paid to 2026-03-05: 28 days
    quote = change(sub, at(2026, 2, 18), kind="incqty", running_no=1, add_quantity=2)
    # 2 more x 10.00 = 20.00 x 15 days left (18 Feb -> 5 Mar) / 28 = 10.714... -> 10.71
    assert quote.charge_now == Decimal("10.71")
    item = fresh(sub).items.get()
    assert (item.quantity, item.version) == (3, 2)
    assert history_codes(sub)[-1] == "incqty"
    # The next renewal bills the new quantity.
    assert quote.next_billing_total == Decimal("30.00")


def test_half_a_cent_rounds_up(sm2, pro):
    sub = subscribe(sm2, pro, at=at(2026, 4, 10))  # paid to 2026-05-10: 30 days
    price = services.CustomerPrice("EUR", Decimal("10.01"), is_gross=True)
    quote = change(sub, at(2026, 4, 25), kind="price", running_no=1, price=price)
    # 0.01 more x 15 / 30 = 0.005 -> 0.01 (half-up; banker's rounding would give 0.00)
    assert quote.charge_now == Decimal("0.01")


def test_price_change_gross_and_net_with_the_clients_vat(sm2, pro):
    sm2.vat_rate = Decimal("19")
    sm2.save()
    one = subscribe(sm2, pro, at=at(2026, 3, 10), email="one@example.com")
    two = subscribe(sm2, pro, at=at(2026, 3, 10), email="two@example.com")
    net = services.CustomerPrice("EUR", Decimal("20.00"), is_gross=False)
    gross = services.CustomerPrice("EUR", Decimal("20.00"), is_gross=True)
    by_net = change(one, at(2026, 3, 22), NEXT, kind="price", running_no=1, price=net)
    by_gross = change(two, at(2026, 3, 22), NEXT, kind="price", running_no=1, price=gross)
    # net 20.00 + 19 % VAT = gross 23.80; gross 20.00 = net 16.81 (20 / 1.19 = 16.806...) + 3.19
    assert by_net.next_billing_split == (Decimal("23.80"), Decimal("20.00"), Decimal("3.80"))
    assert by_gross.next_billing_split == (Decimal("20.00"), Decimal("16.81"), Decimal("3.19"))
    assert fresh(one).items.get().unit_price == Decimal("23.80")
    assert fresh(two).items.get().unit_price == Decimal("20.00")
    # Not aligned: nothing is charged now.
    assert by_net.charge_now == by_gross.charge_now == Decimal("0")
    assert alignment_purchases(one) == alignment_purchases(two) == []


def test_preview_changes_nothing(sm2, pro, premium):
    sub = subscribe(sm2, pro, at=at(2026, 3, 10))
    history, before = sub.history.count(), fresh(sub)
    preview = services.Alignment(preview_only=True, align=True)
    quote = change(sub, at(2026, 3, 22), preview, kind="update", running_no=1, product=premium)
    assert quote.charge_now == Decimal("9.19")
    assert not quote.applied
    after = fresh(sub)
    assert after.items.get().product == pro
    assert after.row_version == before.row_version
    assert sub.history.count() == history
    assert alignment_purchases(sub) == []


def test_extend_interval_charges_one_full_interval_at_the_new_prices(sm2, pro, premium):
    addon = ProductFactory(client=sm2, name="Add-on", price=Decimal("5.00"))
    sub = subscribe(sm2, pro, addon, at=at(2026, 3, 10))
    quote = change(sub, at(2026, 3, 22), EXTEND, kind="update", running_no=1, product=premium)
    # One full month of Premium 25.00 + Add-on 5.00 = 30.00, whatever the days left.
    assert quote.charge_now == Decimal("30.00")
    after = fresh(sub)
    assert after.next_billing_date == at(2026, 5, 10)  # 10 April + one month
    assert after.last_interval_no == 2
    assert [i.last_interval_no for i in after.items.all()] == [2, 2]
    [purchase] = alignment_purchases(sub)
    assert [(i.running_no, i.amount) for i in purchase.items.all()] == [
        (1, Decimal("25.00")),
        (2, Decimal("5.00")),
    ]
    assert purchase.interval_no == 2


def test_a_declined_immediate_charge_changes_nothing(sm2, pro, premium):
    sub = subscribe(sm2, pro, at=at(2026, 3, 10), number=CARD_DECLINES_AFTER_FIRST)
    history, before = sub.history.count(), fresh(sub)
    with pytest.raises(
        services.ChargeDeclined, match=r"declined \(Insufficient funds\); nothing was changed"
    ):
        change(sub, at(2026, 3, 22), kind="update", running_no=1, product=premium)
    after = fresh(sub)
    item = after.items.get()
    assert (item.product, item.unit_price, item.version) == (pro, Decimal("10.00"), 1)
    assert (after.row_version, after.next_billing_date) == (
        before.row_version,
        before.next_billing_date,
    )
    assert sub.history.count() == history
    [purchase] = alignment_purchases(sub)  # the declined attempt is on record
    assert purchase.status == "declined"


def test_a_negative_aligned_amount_is_refused_and_changes_nothing(sm2, pro, premium):
    sub = subscribe(sm2, premium, at=at(2026, 3, 10))
    with pytest.raises(InvalidInput, match="credit of 9.19 EUR"):
        change(sub, at(2026, 3, 22), kind="update", running_no=1, product=pro)
    assert fresh(sub).items.get().product == premium
    # The same downgrade from the next billing date is fine and charges nothing.
    quote = change(
        sub,
        at(2026, 3, 22),
        NEXT,
        kind="update",
        running_no=1,
        product=pro,
        update_action="Downgrade",
    )
    assert quote.charge_now == 0
    assert fresh(sub).items.get().product == pro
    assert history_codes(sub)[-1] == "downgrade"
    assert alignment_purchases(sub) == []


def test_a_product_with_another_interval_or_currency_is_refused(sm2, pro):
    """They conflict with the subscription (409 in the API), not bad input."""
    yearly = ProductFactory(client=sm2, interval_months=12)
    dollars = ProductFactory(client=sm2, currency="USD")
    sub = subscribe(sm2, pro, at=at(2026, 3, 10))
    with pytest.raises(TransitionNotAllowed, match="renews every 12 month"):
        change(sub, at(2026, 3, 22), kind="update", running_no=1, product=yearly)
    with pytest.raises(TransitionNotAllowed, match="priced in USD"):
        change(sub, at(2026, 3, 22), kind="add", product=dollars)
    with pytest.raises(TransitionNotAllowed, match="in USD, the subscription in EUR"):
        change(
            sub,
            at(2026, 3, 22),
            kind="price",
            running_no=1,
            price=services.CustomerPrice("USD", Decimal("1"), True),
        )
    assert fresh(sub).items.count() == 1
    assert fresh(sub).items.get().product == pro


def test_added_item_is_prorated_now_and_billed_in_full_at_the_next_renewal(sm2, pro):
    addon = ProductFactory(client=sm2, name="Add-on", price=Decimal("6.00"))
    sub = subscribe(sm2, pro, at=at(2026, 3, 10))
    quote = change(sub, at(2026, 3, 22), kind="add", product=addon)
    # 6.00 x 19 / 31 = 3.677... -> 3.68
    assert quote.charge_now == Decimal("3.68")
    item = fresh(sub).items.get(running_no=2)
    assert (item.product, item.status, item.version) == (addon, "Active", 1)
    assert history_codes(sub)[-1] == "add"
    [purchase] = alignment_purchases(sub)
    assert purchase.items.get().subscription_item == item
    services.renew_due(subscription=sub, at=at(2026, 4, 10))
    renewal = Purchase.objects.get(subscription=sub, category="renewal")
    assert renewal.total == Decimal("16.00")  # 10.00 + 6.00


def test_only_an_active_subscriptions_active_items_change(sm2, pro, premium):
    sub = subscribe(sm2, pro, pro, at=at(2026, 3, 10))
    services.deactivate_items(subscription=sub, running_nos=[2], actor=STAFF, at=at(2026, 3, 11))
    with pytest.raises(TransitionNotAllowed, match="Item 2 is Deactivated"):
        change(sub, at(2026, 3, 22), kind="incqty", running_no=2, add_quantity=1)
    services.deactivate_items(subscription=sub, running_nos=[1], actor=STAFF, at=at(2026, 3, 12))
    with pytest.raises(TransitionNotAllowed, match="only while the subscription is Active"):
        change(sub, at(2026, 3, 22), kind="add", product=premium)


def test_nothing_to_change_is_refused(sm2, pro):
    sub = subscribe(sm2, pro, at=at(2026, 3, 10))
    with pytest.raises(InvalidInput, match="nothing to change"):
        change(sub, at(2026, 3, 22), kind="update", running_no=1, product=pro)


def test_invoice_subscriptions_cannot_be_charged_now(sm2, pro, premium):
    sub = subscribe(sm2, pro, at=at(2026, 3, 10), invoice=True)
    services.mark_purchase_paid(
        purchase=Purchase.objects.filter(items__subscription_item__subscription=sub).get(),
        actor=STAFF,
        at=at(2026, 3, 10),
    )
    with pytest.raises(TransitionNotAllowed, match="paid by invoice"):
        change(sub, at(2026, 3, 22), kind="update", running_no=1, product=premium)
    quote = change(sub, at(2026, 3, 22), NEXT, kind="update", running_no=1, product=premium)
    assert quote.applied


def test_a_change_made_during_the_charge_refunds_it_and_changes_nothing(
    sm2, pro, premium, monkeypatch
):
    """Between the pending purchase and recording the charge someone else
    changes the subscription: the charged amount may be wrong, so it is given
    back and the item stays as it was."""
    from subscriptions.errors import ConcurrentChange
    from subscriptions.services import items

    sub = subscribe(sm2, pro, at=at(2026, 3, 10))
    real = items.get_gateway()

    class Meanwhile:
        def charge(self, *args):
            services.add_note(subscription=sub, text="changed meanwhile", actor=STAFF)
            return real.charge(*args)

    monkeypatch.setattr(items, "get_gateway", lambda: Meanwhile())
    with pytest.raises(ConcurrentChange, match="was refunded and nothing was changed"):
        change(sub, at(2026, 3, 22), kind="update", running_no=1, product=premium)
    [purchase] = alignment_purchases(sub)
    assert (purchase.status, purchase.refunded_amount) == ("refunded", Decimal("9.19"))
    item = fresh(sub).items.get()
    assert (item.product, item.version) == (pro, 1)
    assert "note" in history_codes(sub) and "upgrade" not in history_codes(sub)
