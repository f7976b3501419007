from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from commerce.models import Client, StaffMembership
from subscriptions.models import HistoryEntry, Subscription


def test_demo_data_has_every_status_and_renewal_type_with_logins(db, capsys):
    call_command("load_demo", customers=20)
    out = capsys.readouterr().out
    classic, modern = Client.objects.get(slug="northwind"), Client.objects.get(slug="contoso")
    assert (classic.sm_version, modern.sm_version) == ("1.0", "2.0")
    every = {"Active", "Deactivated", "Finished", "Grace", "Hold", "New", "HandledByClient"}
    for client in (classic, modern):
        assert (
            set(Subscription.objects.filter(client=client).values_list("status", flat=True))
            == every
        )
    assert set(modern.subscriptions.values_list("renewal_type", flat=True)) == {
        "Automatic",
        "Manual",
    }
    assert set(classic.subscriptions.values_list("renewal_type", flat=True)) == {None}
    assert classic.subscriptions.filter(
        status="Deactivated", items__status="AwaitingReinstate"
    ).exists()
    assert not Subscription.objects.exclude(history__isnull=False).exists()
    assert HistoryEntry.objects.filter(event_code="renewed").exists()
    assert set(StaffMembership.objects.values_list("role", flat=True)) == {
        "viewer",
        "support",
        "admin",
    }
    assert "contoso-support / contoso-support-pass" in out
    assert (
        authenticate(
            RequestFactory().post("/login/"),
            username="contoso-support",
            password="contoso-support-pass",
        )
        is not None
    )


def test_loading_twice_adds_nothing(db):
    call_command("load_demo", customers=2)
    count = Subscription.objects.count()
    call_command("load_demo", customers=2)
    assert Subscription.objects.count() == count


def test_demo_api_credentials_work_as_printed(db, client, capsys):
    import base64

    call_command("load_demo", customers=3)
    assert "ak_demo_contoso / contoso-api-secret" in capsys.readouterr().out
    sub = Subscription.objects.filter(client__slug="contoso").first()
    token = base64.b64encode(b"ak_demo_contoso:contoso-api-secret").decode()
    answer = client.get(
        f"/api/subscription/getsubscription?subscriptionId={sub.display_id}",
        HTTP_AUTHORIZATION=f"Basic {token}",
    )
    assert answer.status_code == 200 and answer.json()["Subscription"]["Id"] == sub.pk


def test_demo_customers_date_from_their_first_purchase_and_the_sandbox_has_subscriptions(db):
    call_command("load_demo", customers=20)
    modern = Client.objects.get(slug="contoso")
    since = set(modern.customers.values_list("created_at__date", flat=True))
    assert len(since) > 5  # not all the day the demo was loaded
    for customer in modern.customers.all():
        first = customer.purchases.order_by("created_at").first()
        assert customer.created_at == first.created_at
    sandbox = Client.objects.get(slug="sandbox")
    statuses = set(sandbox.subscriptions.values_list("status", flat=True))
    assert {"Active", "New"} <= statuses
    assert sandbox.subscriptions.filter(renewal_type="Manual").exists()
