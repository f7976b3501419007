"""An operator finds a subscription in Django admin and reads its history."""

import pytest
from django.contrib.auth import get_user_model

from subscriptions import services
from tests.conftest import STAFF, T0, sign_up

pytestmark = pytest.mark.browser


def test_operator_finds_a_subscription_by_s_id_and_sees_its_history(shoot, page, sm2, monthly):
    get_user_model().objects.create_superuser("operator", "op@example.com", "operator-pass")
    sub = sign_up(sm2, monthly, email="dora@example.com").subscriptions[0]
    services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF, at=T0)

    page.goto("/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass")
    page.click("input[type=submit]")
    page.goto("/admin/subscriptions/subscription/")
    page.fill("#searchbar", f"S{sub.pk}")
    page.press("#searchbar", "Enter")
    page.click(f"text=S{sub.pk}")

    history = page.locator("#history-group")
    assert "Renewal type changed from Automatic to Manual." in history.inner_text()
    assert "renTypeUpd" in history.inner_text()
    shoot(page, "admin-subscription")
