"""Item changes in the Subscription Billing tab: a preview of what is charged
now and at the next billing date before anything changes (docs/api.md, docs/back-office.md)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commerce.models import Purchase
from tests.conftest import fresh, history_codes, sign_up
from tests.factories import ProductFactory

MARCH_10 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MARCH_22 = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def bought(sm2, monthly, clock):
    clock.move_to(MARCH_10, tick=False)
    result = sign_up(sm2, monthly, email="ann@example.com", at=MARCH_10)  # paid to 10 April
    clock.move_to(MARCH_22, tick=False)  # 19 of 31 days left
    return result


@pytest.fixture
def premium(sm2):
    return ProductFactory(client=sm2, name="Premium", price=Decimal("25.00"))


def post(staff, sub, kind, purchase, **data):
    return staff.post(
        f"/subscriptions/{sub.pk}/items/{kind}/",
        {"purchase": purchase.pk, **data},
        headers={"HX-Request": "true"},
    )


def test_the_tab_offers_item_changes_to_support_only(login, sm2, bought):
    url = f"/purchases/{bought.purchase.pk}/billing/"
    support = login(sm2, "support").get(url).content.decode()
    for label in ("Add item", "Change quantity", "Change product", "Change price"):
        assert label in support
    viewer = login(sm2, "viewer").get(url).content.decode()
    assert "Change product" not in viewer and "Add item" not in viewer


def test_preview_then_confirm_an_upgrade(login, sm2, bought, premium):
    staff = login(sm2, "support")
    sub, purchase = bought.subscriptions[0], bought.purchase
    form = staff.get(
        f"/subscriptions/{sub.pk}/items/product/?purchase={purchase.pk}&item=1",
        headers={"HX-Request": "true"},
    )
    assert form.status_code == 200
    assert "Premium" in form.content.decode() and "Preview charges" in form.content.decode()
    preview = post(
        staff,
        sub,
        "product",
        purchase,
        item=1,
        product=premium.pk,
        alignment="align",
        step="preview",
    )
    page = preview.content.decode()
    # 15.00 more x 19 / 31 days = 9.19 now; 25.00 from 10 April on.
    assert "9.19 EUR" in page and "19 of 31 days left" in page
    assert "2026-04-10" in page and "25.00 EUR" in page
    assert fresh(sub).items.get().product != premium  # a preview changes nothing
    token = page.split('name="expected" value="')[1].split('"')[0]
    done = post(
        staff,
        sub,
        "product",
        purchase,
        item=1,
        product=premium.pk,
        alignment="align",
        expected=token,
        step="confirm",
    )
    assert done.status_code == 200
    assert "is now Premium x 1 @ 25.00 EUR; 9.19 EUR charged now" in done.content.decode()
    assert fresh(sub).items.get().product == premium
    assert history_codes(sub)[-1] == "upgrade"
    alignment = Purchase.objects.get(subscription=sub, category="alignment")
    assert alignment.total == Decimal("9.19")
    # The tab's billing list shows the extra charge.
    assert f">{alignment.pk}</a> (Alignment)" in done.content.decode()


def test_confirming_other_values_than_previewed_changes_nothing(login, sm2, bought, premium):
    staff = login(sm2, "support")
    sub, purchase = bought.subscriptions[0], bought.purchase
    answer = post(
        staff,
        sub,
        "quantity",
        purchase,
        item=1,
        quantity=5,
        alignment="align",
        expected="0.00|0|1|10.00|align",  # what an older preview showed
        step="confirm",
    )
    assert "The amount changed since the preview" in answer.content.decode()
    assert fresh(sub).items.get().quantity == 1
    assert not Purchase.objects.filter(subscription=sub, category="alignment").exists()


def test_a_refused_change_shows_the_reason_and_changes_nothing(login, sm2, bought):
    cheap = ProductFactory(client=sm2, name="Lite", price=Decimal("4.00"))
    staff = login(sm2, "support")
    sub, purchase = bought.subscriptions[0], bought.purchase
    answer = post(
        staff, sub, "product", purchase, item=1, product=cheap.pk, alignment="align", step="preview"
    )
    assert "credit of 3.68 EUR" in answer.content.decode()  # 6.00 x 19 / 31 = 3.677...
    assert "Confirm" not in answer.content.decode()
    assert fresh(sub).items.get().product != cheap


def test_quantity_increase_from_the_next_billing_date_charges_nothing(login, sm2, bought):
    staff = login(sm2, "support")
    sub, purchase = bought.subscriptions[0], bought.purchase
    preview = post(
        staff, sub, "quantity", purchase, item=1, quantity=3, alignment="next", step="preview"
    )
    token = preview.content.decode().split('name="expected" value="')[1].split('"')[0]
    post(
        staff,
        sub,
        "quantity",
        purchase,
        item=1,
        quantity=3,
        alignment="next",
        expected=token,
        step="confirm",
    )
    assert fresh(sub).items.get().quantity == 3
    assert history_codes(sub)[-1] == "incqty"
    assert not Purchase.objects.filter(subscription=sub, category="alignment").exists()


def test_only_products_that_fit_are_offered_and_viewers_are_refused(login, sm2, bought):
    ProductFactory(client=sm2, name="Yearly thing", interval_months=12)
    ProductFactory(client=sm2, name="Dollar thing", currency="USD")
    staff = login(sm2, "support")
    sub, purchase = bought.subscriptions[0], bought.purchase
    form = staff.get(f"/subscriptions/{sub.pk}/items/add/?purchase={purchase.pk}")
    page = form.content.decode()
    assert "Pro monthly" in page
    assert "Yearly thing" not in page and "Dollar thing" not in page
    viewer = login(sm2, "viewer")
    assert post(viewer, sub, "add", purchase, step="preview").status_code == 403
