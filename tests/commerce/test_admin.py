"""Django admin for operators: every model listed, searchable, filterable,
history inline on subscriptions, history read-only."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from subscriptions import services
from tests.conftest import sign_up

MODELS = [
    "commerce/client",
    "commerce/staffmembership",
    "commerce/product",
    "commerce/purchase",
    "commerce/outboxnotification",
    "commerce/gatewaycharge",
    "customers/customer",
    "customers/paymentmethod",
    "subscriptions/subscription",
    "subscriptions/historyentry",
]


@pytest.fixture
def operator(client, db):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def signed_up(sm2, monthly):
    return sign_up(sm2, monthly, email="findme@example.com")


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_a_changelist_with_search(operator, signed_up, model):
    response = operator.get(f"/admin/{model}/", {"q": "findme"})
    assert response.status_code == 200


def test_subscriptions_filter_by_client_and_status(operator, signed_up, sm2):
    url = reverse("admin:subscriptions_subscription_changelist")
    response = operator.get(url, {"client__id__exact": sm2.pk, "status": "Active"})
    assert response.status_code == 200
    assert f"S{signed_up.subscriptions[0].pk}" in response.content.decode()
    response = operator.get(url, {"status": "Hold"})
    assert f"S{signed_up.subscriptions[0].pk}" not in response.content.decode()


@pytest.mark.parametrize("term", ["S{pk}", "{pk}", "findme@example.com"])
def test_subscription_search_by_id_with_or_without_s_and_by_email(
    operator, signed_up, term, sm2, monthly
):
    sign_up(sm2, monthly, email="someone-else@example.com")
    sub = signed_up.subscriptions[0]
    response = operator.get(
        reverse("admin:subscriptions_subscription_changelist"), {"q": term.format(pk=sub.pk)}
    )
    html = response.content.decode()
    assert "1 subscription" in html and f"S{sub.pk}" in html


def test_subscription_page_shows_its_history(operator, signed_up):
    sub = signed_up.subscriptions[0]
    services.add_note(subscription=sub, text="Called the customer", actor=services.SYSTEM)
    page = operator.get(reverse("admin:subscriptions_subscription_change", args=[sub.pk]))
    html = page.content.decode()
    assert "Called the customer" in html and "Signed up (paid online" in html


def test_history_cannot_be_changed_in_admin(operator, signed_up):
    entry = signed_up.subscriptions[0].history.get()
    url = reverse("admin:subscriptions_historyentry_change", args=[entry.pk])
    operator.post(url, {"summary": "rewritten"})
    entry.refresh_from_db()
    assert entry.summary.startswith("Signed up")
    assert (
        operator.get(
            reverse("admin:subscriptions_historyentry_delete", args=[entry.pk])
        ).status_code
        == 403
    )


def test_hand_over_action_goes_through_the_service(operator, signed_up):
    sub = signed_up.subscriptions[0]
    operator.post(
        reverse("admin:subscriptions_subscription_changelist"),
        {"action": "hand_over", "_selected_action": [sub.pk]},
    )
    sub.refresh_from_db()
    assert sub.status == "HandledByClient"
    assert sub.history.filter(event_code="handover", actor_label="op").exists()


def test_subscriptions_and_purchases_cannot_be_deleted_in_admin(operator, signed_up):
    sub = signed_up.subscriptions[0]
    url = reverse("admin:subscriptions_subscription_delete", args=[sub.pk])
    assert operator.get(url).status_code == 403
    url = reverse("admin:commerce_purchase_delete", args=[signed_up.purchase.pk])
    assert operator.get(url).status_code == 403


def test_a_renewal_run_shows_its_batches(operator, sm2, monthly):
    from datetime import UTC, datetime

    from subscriptions import renewals

    sign_up(sm2, monthly, email="due@example.com")
    (batch,) = renewals.start_sweep(as_of=datetime(2026, 3, 1, tzinfo=UTC), client=sm2)
    page = operator.get(f"/admin/subscriptions/renewalrun/{batch.run.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Renewal charges" in text and "Subscriptions" in text


def test_subscriptions_cannot_be_added_and_purchases_not_edited_by_hand(operator, signed_up):
    assert operator.get("/admin/subscriptions/subscription/add/").status_code == 403
    listing = operator.get("/admin/subscriptions/subscription/").content.decode()
    assert "/admin/subscriptions/subscription/add/" not in listing
    purchase = signed_up.purchase
    page = operator.get(f"/admin/commerce/purchase/{purchase.pk}/change/").content.decode()
    assert 'name="status"' not in page and 'name="total"' not in page
    assert operator.get("/admin/commerce/purchase/add/").status_code == 403
