"""Staff of one client never see another client's objects: 404 on every URL."""

import pytest
from django.contrib.auth import get_user_model

from subscriptions.actions import ACTIONS
from tests.conftest import sign_up
from tests.factories import ClientFactory, ProductFactory

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


@pytest.fixture
def foreign():
    other = ClientFactory(name="Other vendor")
    return sign_up(other, ProductFactory(client=other), email="secret@other.example")


def foreign_urls(result):
    p, s, c = result.purchase.pk, result.subscriptions[0].pk, result.purchase.customer_id
    gets = [
        f"/purchases/{p}/",
        *[f"/purchases/{p}/{t}/" for t in TABS],
        f"/subscriptions/{s}/",
        f"/customers/{c}/",
        *[f"/subscriptions/{s}/actions/{n}/" for n in ACTIONS],
    ]
    posts = [f"/subscriptions/{s}/actions/{n}/" for n in ACTIONS] + [f"/subscriptions/{s}/notes/"]
    return gets, posts


@pytest.mark.parametrize("role", ["viewer", "support", "admin"])
def test_every_url_of_another_clients_objects_is_404(login, sm2, foreign, role):
    staff = login(sm2, role)
    gets, posts = foreign_urls(foreign)
    for url in gets:
        assert staff.get(url).status_code == 404, url
    for url in posts:
        assert staff.post(url, {"text": "x", "item": 1}).status_code == 404, url
    sub = foreign.subscriptions[0]
    sub.refresh_from_db()
    assert (sub.status, sub.history.count()) == ("Active", 1)


def test_own_subscription_with_another_clients_purchase_is_404(login, sm2, monthly, foreign):
    own = sign_up(sm2, monthly)
    response = login(sm2).get(
        f"/subscriptions/{own.subscriptions[0].pk}/actions/renew-now/",
        {"purchase": foreign.purchase.pk},
    )
    assert response.status_code == 404


def test_lists_search_and_export_show_only_own_data(login, sm2, monthly, foreign):
    sign_up(sm2, monthly, email="mine@example.com")
    staff = login(sm2)
    for url in ["/purchases/", "/subscriptions/", "/customers/"]:
        html = staff.get(url, {"q": "secret@other.example"}).content.decode()
        assert ">secret@other.example<" not in html and "matc" in html  # "No … match"
        assert "secret@other.example" not in staff.get(url).content.decode()
    export = b"".join(staff.get("/purchases/export.csv").streaming_content).decode()
    assert "mine@example.com" in export and "secret@other.example" not in export


def test_anonymous_users_are_sent_to_login_and_non_staff_get_403(client, db):
    assert client.get("/purchases/")["Location"] == "/login/?next=/purchases/"
    client.force_login(get_user_model().objects.create_user("nobody", password="pw-123456"))
    assert client.get("/purchases/").status_code == 403
