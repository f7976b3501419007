"""The Purchase viewer's tabs and the Subscription Billing tab's actions."""

from datetime import timedelta

import pytest

from subscriptions import services
from tests.conftest import STAFF, T0, fresh, history_codes, item_statuses, sign_up
from tests.factories import ProductFactory

TABS = [
    "overview",
    "items",
    "customer",
    "billing",
    "payments",
    "emails",
    "notifications",
    "history",
]


def action(staff, sub, name, purchase, **data):
    return staff.post(
        f"/subscriptions/{sub.pk}/actions/{name}/",
        {"purchase": purchase.pk, **data},
        headers={"HX-Request": "true"},
    )


@pytest.fixture
def bought(sm2, monthly):
    return sign_up(sm2, monthly, email="ann@example.com")


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_has_its_own_url_with_and_without_htmx(login, sm2, bought, tab):
    staff = login(sm2)
    url = f"/purchases/{bought.purchase.pk}/{tab}/"
    full, partial = staff.get(url), staff.get(url, headers={"HX-Request": "true"})
    assert full.status_code == partial.status_code == 200
    assert "<html" in full.content.decode() and "<html" not in partial.content.decode()
    assert 'aria-selected="true"' in partial.content.decode()


@pytest.mark.parametrize("tab", TABS)
def test_tab_query_count_does_not_grow(login, sm2, monthly, tab, django_assert_max_num_queries):
    staff = login(sm2)
    small = sign_up(sm2, monthly, email="s@example.com")
    with django_assert_max_num_queries(12) as counted:
        staff.get(f"/purchases/{small.purchase.pk}/{tab}/", headers={"HX-Request": "true"})
    big = sign_up(sm2, monthly, *[ProductFactory(client=sm2) for _ in range(6)], email="b@ex.com")
    for _ in range(3):
        services.add_note(subscription=big.subscriptions[0], text="note", actor=STAFF)
    with django_assert_max_num_queries(len(counted.captured_queries)):
        staff.get(f"/purchases/{big.purchase.pk}/{tab}/", headers={"HX-Request": "true"})


def test_switch_to_manual_asks_first_then_updates_the_tab_and_history(login, sm2, bought):
    staff = login(sm2, "support")
    sub = bought.subscriptions[0]
    confirm = staff.get(
        f"/subscriptions/{sub.pk}/actions/switch-manual/",
        {"purchase": bought.purchase.pk},
        headers={"HX-Request": "true"},
    )
    assert f"Switch S{sub.pk} to manual renewal?" in confirm.content.decode()
    assert fresh(sub).renewal_type == "Automatic"  # asking changes nothing
    html = action(staff, sub, "switch-manual", bought.purchase).content.decode()
    assert 'data-testid="renewal-type">Manual' in html
    assert ">Switch to Automatic Renewal</a>" in html
    assert ">Switch to Manual Renewal</a>" not in html
    assert "Switch to Manual Renewal: done." in html
    assert "now renews manually" in html  # what changed, not only the status
    entry = sub.history.order_by("-id").first()
    assert (entry.event_code, entry.actor_kind) == ("renTypeUpd", "staff")
    history = staff.get(f"/purchases/{bought.purchase.pk}/history/").content.decode()
    assert 'title="Event code: renTypeUpd">Renewal type changed</span>' in history
    assert "<b>Renewal</b>: Automatic → Manual" in history


def test_without_js_the_action_redirects_back_to_the_tab(login, sm2, bought):
    staff = login(sm2)
    sub = bought.subscriptions[0]
    page = staff.get(
        f"/subscriptions/{sub.pk}/actions/switch-manual/", {"purchase": bought.purchase.pk}
    )
    assert (
        "<html" in page.content.decode()
        and "Confirm: Switch to Manual Renewal" in page.content.decode()
    )
    response = staff.post(
        f"/subscriptions/{sub.pk}/actions/switch-manual/", {"purchase": bought.purchase.pk}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/purchases/{bought.purchase.pk}/billing/?subscription={sub.pk}"
    assert "Switch to Manual Renewal: done." in staff.get(response["Location"]).content.decode()


def test_sm1_await_reinstate_then_reinstate(login, sm1):
    result = sign_up(sm1, ProductFactory(client=sm1))
    staff, sub = login(sm1), result.subscriptions[0]
    html = staff.get(f"/purchases/{result.purchase.pk}/billing/").content.decode()
    assert ">Await Reinstate</a>" in html and "Switch to Manual" not in html
    html = action(staff, sub, "await-reinstate", result.purchase).content.decode()
    assert (fresh(sub).status, item_statuses(sub)) == ("Deactivated", ["AwaitingReinstate"])
    assert ">Await Reinstate</a>" not in html and ">Reinstate</a>" in html
    action(staff, sub, "reinstate", result.purchase)
    assert (fresh(sub).status, item_statuses(sub)) == ("Active", ["Active"])


def test_item_deactivate_and_reinstate(login, sm2, monthly):
    result = sign_up(sm2, monthly, ProductFactory(client=sm2))
    staff, sub = login(sm2), result.subscriptions[0]
    action(staff, sub, "deactivate-item", result.purchase, item=2)
    assert (fresh(sub).status, item_statuses(sub)) == ("Active", ["Active", "Deactivated"])
    action(staff, sub, "reinstate-item", result.purchase, item=2)
    assert item_statuses(sub) == ["Active", "Active"]


def test_change_next_billing_date(login, sm2, bought):
    staff, sub = login(sm2), bought.subscriptions[0]
    new = (T0 + timedelta(days=45)).date()
    action(staff, sub, "change-date", bought.purchase, next_billing_date=new.isoformat())
    assert fresh(sub).next_billing_date.date() == new
    assert history_codes(sub)[-1] == "updNextBD"


def test_change_to_a_past_date_shows_the_reason_and_changes_nothing(login, sm2, bought):
    staff, sub = login(sm2), bought.subscriptions[0]
    html = action(
        staff, sub, "change-date", bought.purchase, next_billing_date="2020-01-01"
    ).content.decode()
    assert (
        "Change next billing date was refused: The next billing date must be in the future." in html
    )
    assert history_codes(sub) == ["new"]


def test_renew_now_and_mark_as_paid(login, sm2, monthly):
    staff = login(sm2)
    paid = sign_up(sm2, monthly, email="r@example.com")
    action(staff, paid.subscriptions[0], "renew-now", paid.purchase)
    assert fresh(paid.subscriptions[0]).last_interval_no == 2
    invoice = sign_up(sm2, monthly, email="i@example.com", invoice=True)
    html = staff.get(f"/purchases/{invoice.purchase.pk}/billing/").content.decode()
    assert "Mark as paid" in html and "Renew now" not in html
    action(staff, invoice.subscriptions[0], "mark-paid", invoice.purchase)
    assert fresh(invoice.subscriptions[0]).status == "Active"


def test_a_refused_action_shows_the_services_reason(login, sm2, bought):
    staff, sub = login(sm2), bought.subscriptions[0]
    services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF)
    html = action(staff, sub, "switch-manual", bought.purchase).content.decode()
    assert "Switch to Manual Renewal was refused: The renewal type is already Manual." in html


def test_viewer_sees_no_action_buttons_and_cannot_post(login, sm2, bought):
    staff, sub = login(sm2, "viewer"), bought.subscriptions[0]
    html = staff.get(f"/purchases/{bought.purchase.pk}/billing/").content.decode()
    assert "Switch to Manual Renewal" not in html and "Deactivate" not in html
    assert "Add note" not in staff.get(f"/purchases/{bought.purchase.pk}/history/").content.decode()
    assert action(staff, sub, "switch-manual", bought.purchase).status_code == 403
    assert staff.post(f"/subscriptions/{sub.pk}/notes/", {"text": "x"}).status_code == 403
    assert fresh(sub).renewal_type == "Automatic"


def test_staff_add_a_note_to_history(login, sm2, bought):
    staff, sub = login(sm2), bought.subscriptions[0]
    html = staff.post(
        f"/subscriptions/{sub.pk}/notes/",
        {"text": "Asked for an invoice copy", "purchase": bought.purchase.pk},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Asked for an invoice copy" in html and "Note added." in html
    empty = staff.post(
        f"/subscriptions/{sub.pk}/notes/", {"text": "  "}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "Write a note first." in empty
