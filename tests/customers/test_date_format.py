"""Dates in the client's display format (Client.date_format, docs/back-office.md):
lists, the History tab and the filters read and write them that way."""

from datetime import timedelta

from commerce.models import Client
from subscriptions import services
from tests.conftest import STAFF, T0, sign_up


def test_an_admin_picks_the_format_and_every_page_follows(login, sm2, monthly):
    signed = sign_up(sm2, monthly, email="eve@example.com")
    sub, purchase = signed.subscriptions[0], signed.purchase
    admin = login(sm2, "admin")
    page = admin.post("/settings/display/", {"date_format": "d.m.Y"}, follow=True)
    assert "Dates are now shown as 28.03.2026." in page.content.decode()
    assert Client.objects.get(pk=sm2.pk).date_format == "d.m.Y"
    listing = admin.get("/subscriptions/").content.decode()
    assert "28.02.2026" in listing and "2026-02-28" not in listing  # next billing date
    # The purchase filter reads dates typed the same way (and ISO dates).
    found = admin.get("/purchases/", {"created_from": "31.01.2026", "created_to": "31.01.2026"})
    assert [p.pk for p in found.context["table"].page.object_list] == [purchase.pk]
    assert 'placeholder="DD.MM.YYYY"' in found.content.decode()
    iso = admin.get("/purchases/", {"created_from": "2026-02-01"})
    assert list(iso.context["table"].page.object_list) == []
    # History: the changed next billing date, in the format, with the zone.
    services.change_next_billing_date(
        subscription=sub, next_billing_date=T0 + timedelta(days=40), actor=STAFF
    )
    history = admin.get(f"/purchases/{purchase.pk}/history/").content.decode()
    assert "28.02.2026 12:00 UTC" in history and "12.03.2026 12:00 UTC" in history


def test_a_format_not_offered_is_refused_and_changes_nothing(login, sm2):
    admin = login(sm2, "admin")
    page = admin.post("/settings/display/", {"date_format": "%s"}, follow=True)
    assert "Choose one of the date formats offered." in page.content.decode()
    assert Client.objects.get(pk=sm2.pk).date_format == "Y-m-d"
    viewer = login(sm2, "viewer")
    assert viewer.post("/settings/display/", {"date_format": "d.m.Y"}).status_code == 403
