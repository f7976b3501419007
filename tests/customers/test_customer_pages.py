from decimal import Decimal

from tests.conftest import sign_up
from tests.factories import ProductFactory


def test_customer_list_search_and_viewer_show_all_their_purchases_and_subscriptions(
    login, sm2, monthly
):
    yearly = ProductFactory(client=sm2, interval_months=12, initial_interval_months=12)
    first = sign_up(sm2, monthly, email="kim@example.com")
    second = sign_up(sm2, yearly, email="kim@example.com")
    sign_up(sm2, monthly, email="lee@example.com")
    staff = login(sm2, "viewer")
    listing = staff.get("/customers/", {"q": "kim"}).content.decode()
    assert "kim@example.com" in listing and "lee@example.com" not in listing
    page = staff.get(f"/customers/{first.purchase.customer_id}/").content.decode()
    for result in (first, second):
        assert f"S{result.subscriptions[0].pk}" in page
        assert f">{result.purchase.pk}<" in page


def test_subscription_list_filters_and_opens_the_billing_tab(login, sm2, monthly):
    active = sign_up(sm2, monthly, email="a@example.com").subscriptions[0]
    manual = sign_up(sm2, monthly, email="m@example.com", auto=False).subscriptions[0]
    staff = login(sm2, "viewer")
    html = staff.get("/subscriptions/", {"renewal": "Manual"}).content.decode()
    assert f"S{manual.pk}" in html and f">S{active.pk}<" not in html
    html = staff.get("/subscriptions/", {"q": f"S{active.pk}"}).content.decode()
    assert f">S{active.pk}<" in html and f">S{manual.pk}<" not in html
    response = staff.get(f"/subscriptions/{active.pk}/")
    assert response.status_code == 302 and response["Location"].endswith("/billing/")


def test_subscription_list_shows_products_amount_and_links(login, sm2, monthly):
    team = ProductFactory(client=sm2, name="Team plan", price=Decimal("240.00"))
    sub = sign_up(sm2, monthly, team, email="ines@example.com", quantity=2).subscriptions[0]
    sign_up(sm2, monthly, email="other@example.com")
    staff = login(sm2, "viewer")
    html = staff.get("/subscriptions/", {"product": team.pk}).content.decode()
    row = html[html.index(f">S{sub.pk}<") :]
    row = row[: row.index("</tr>")]
    # What the next renewal bills: (10.00 + 240.00) x 2, in the currency.
    assert "Team plan × 2" in row and "500.00 EUR" in row
    assert f'href="/customers/{sub.customer_id}/"' in row
    assert "other@example.com" not in html  # the product filter
    assert '<span class="badge badge-active">Active</span>' in row


def test_sm1_list_shows_and_filters_how_each_item_renews(login, sm1):
    auto = ProductFactory(client=sm1, name="Backup", renewal_mode="automatic")
    manual = ProductFactory(client=sm1, name="Licence", renewal_mode="manual")
    both = sign_up(sm1, auto, manual, email="both@example.com").subscriptions[0]
    only_manual = sign_up(sm1, manual, email="manual@example.com").subscriptions[0]
    staff = login(sm1, "viewer")
    response = staff.get("/subscriptions/")
    html = response.content.decode()
    row = html[html.index(f">S{both.pk}<") :]
    assert "#1 Automatic" in row[: row.index("</tr>")] and "#2 Manual" in row[: row.index("</tr>")]
    automatic = {
        r.pk
        for r in staff.get("/subscriptions/", {"renewal": "Automatic"})
        .context["table"]
        .page.object_list
    }
    manually = {
        r.pk
        for r in staff.get("/subscriptions/", {"renewal": "Manual"})
        .context["table"]
        .page.object_list
    }
    assert automatic == {both.pk}
    assert manually == {both.pk, only_manual.pk}


def test_lists_keep_a_constant_query_count(login, sm2, monthly, django_assert_max_num_queries):
    staff = login(sm2)
    sign_up(sm2, monthly, email="x0@example.com")
    counts = {}
    for url in ["/subscriptions/", "/customers/"]:
        with django_assert_max_num_queries(12) as captured:
            staff.get(url)
        counts[url] = len(captured.captured_queries)
    for n in range(1, 20):
        sign_up(sm2, monthly, email=f"x{n}@example.com")
    for url, count in counts.items():
        with django_assert_max_num_queries(count):
            staff.get(url)
