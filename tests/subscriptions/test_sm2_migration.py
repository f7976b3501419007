"""SM 1.0 -> 2.0 migration (docs/lifecycle.md): every status before -> after, mixed
items, dry run, idempotence, all or nothing, SM 2.0 behaviour afterwards."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from commerce.gateway import CARD_DECLINES_AFTER_FIRST
from commerce.models import Client, OutboxNotification
from customers.models import CustomerEmail
from subscriptions import renewals, services
from subscriptions.models import HistoryEntry
from subscriptions.services import migration
from tests.conftest import STAFF, T0, fresh, item_statuses, sign_up, subscribe
from tests.factories import ProductFactory

FEB28 = T0 + timedelta(days=28)


@pytest.fixture(autouse=True, params=[True, False], ids=["ctes", "portable"])
def statements(request, monkeypatch):
    """Every test runs with PostgreSQL's two CTE statements and with the
    portable five (on SQLite only the portable ones exist)."""
    monkeypatch.setattr(migration, "USE_CTES", request.param)
    return request.param


@pytest.fixture
def auto(sm1):
    return ProductFactory(client=sm1, name="Auto")


@pytest.fixture
def manual(sm1):
    return ProductFactory(
        client=sm1, name="Manual", renewal_mode="manual", is_one_time_rebilling=True
    )


@pytest.fixture
def estate(sm1, auto, manual):
    """One SM 1.0 subscription in each state of docs/lifecycle.md, plus mixed items."""
    subs = {}

    def make(name, *products, **kwargs):
        subs[name] = subscribe(sm1, *products, email=f"{name}@example.com", **kwargs)
        return subs[name]

    make("active", auto)
    services.deactivate_items(
        subscription=make("deactivated", auto), running_nos=[1], actor=STAFF, at=T0
    )
    make("awaiting", manual)
    services.deactivate_items(
        subscription=make("finished", auto),
        running_nos=[1],
        allow_reinstate=False,
        actor=STAFF,
        at=T0,
    )
    grace = make("grace", auto, number=CARD_DECLINES_AFTER_FIRST)
    hold = make("hold", auto, number=CARD_DECLINES_AFTER_FIRST)
    for sub in (grace, hold):
        services.renew_due(subscription=sub, at=FEB28)
    services.advance_dunning(subscription=hold, at=FEB28 + timedelta(days=8))
    subs["new"] = sign_up(sm1, auto, invoice=True, email="new@example.com").subscriptions[0]
    services.hand_over_to_client(subscription=make("handed", auto), actor=STAFF, at=T0)
    make("active-mixed", auto, manual)  # Active: item 1 Active, item 2 AwaitingReinstate
    services.deactivate_items(
        subscription=make("deactivated-mixed", auto, manual),
        running_nos=[1],
        actor=STAFF,
        at=T0,
    )  # Deactivated: item 1 Deactivated, item 2 AwaitingReinstate
    return subs


def state(sub):
    sub = fresh(sub)
    return (sub.status, item_statuses(sub), sub.renewal_type, sub.sm_version)


BEFORE_AFTER = {
    "active": (("Active", ["Active"]), ("Active", ["Active"], "Automatic")),
    "deactivated": (
        ("Deactivated", ["Deactivated"]),
        ("Deactivated", ["Deactivated"], "Automatic"),
    ),
    # Their billing date (28 February) has passed by the migration (20 March):
    # dormant, so Grace from the migration on (docs/lifecycle.md).
    "awaiting": (("Deactivated", ["AwaitingReinstate"]), ("Grace", ["Active"], "Manual")),
    "finished": (("Finished", ["Finished"]), ("Finished", ["Finished"], "Automatic")),
    "grace": (("Grace", ["Active"]), ("Grace", ["Active"], "Automatic")),
    "hold": (("Hold", ["Active"]), ("Hold", ["Active"], "Automatic")),
    "new": (("New", ["Active"]), ("New", ["Active"], "Automatic")),
    "handed": (
        ("HandledByClient", ["HandledByClient"]),
        ("HandledByClient", ["HandledByClient"], "Automatic"),
    ),
    "active-mixed": (
        ("Active", ["Active", "AwaitingReinstate"]),
        ("Active", ["Active", "AwaitingReinstate"], "Automatic"),
    ),
    "deactivated-mixed": (
        ("Deactivated", ["Deactivated", "AwaitingReinstate"]),
        ("Grace", ["Deactivated", "Active"], "Manual"),
    ),
}


def test_every_status_combination_before_and_after(sm1, estate):
    for name, ((status, items), _) in BEFORE_AFTER.items():
        assert state(estate[name]) == (status, items, None, "1.0"), name
    notifications, emails = OutboxNotification.objects.count(), CustomerEmail.objects.count()

    result = migration.migrate_to_sm2(client=sm1, actor=STAFF, at=FEB28 + timedelta(days=20))

    for name, (_, (status, items, renewal_type)) in BEFORE_AFTER.items():
        assert state(estate[name]) == (status, items, renewal_type, "2.0"), name
    assert (result.migrated, result.manual, result.automatic, result.items_reactivated) == (
        10,
        2,
        8,
        2,
    )
    sm1.refresh_from_db()
    assert sm1.sm_version == "2.0"
    # No notifications and no e-mails (docs/lifecycle.md).
    assert OutboxNotification.objects.count() == notifications
    assert CustomerEmail.objects.count() == emails


def test_one_history_entry_per_subscription_with_before_and_after(sm1, estate):
    migration.migrate_to_sm2(client=sm1, actor=STAFF, at=FEB28 + timedelta(days=20))
    entries = HistoryEntry.objects.filter(event_code="migrateSM2")
    assert entries.count() == len(estate)
    mixed = entries.get(subscription=estate["deactivated-mixed"])
    assert mixed.before == {
        "status": "Deactivated",
        "renewal_type": None,
        "items": {"1": "Deactivated", "2": "AwaitingReinstate"},
    }
    assert mixed.after == {
        "status": "Grace",
        "renewal_type": "Manual",
        "items": {"1": "Deactivated", "2": "Active"},
    }
    assert "Manual" in mixed.summary and "Grace from now" in mixed.summary
    assert mixed.actor_label == "system"
    plain = entries.get(subscription=estate["grace"])
    assert (plain.before, plain.after) == ({"renewal_type": None}, {"renewal_type": "Automatic"})


def test_the_dry_run_counts_each_combination_and_changes_nothing(sm1, estate):
    plan = migration.plan_sm2_migration(client=sm1, sample_size=1)
    lines = {(c.before, c.after): c.count for c in plan.changes}
    assert lines == {
        ("Active", "Active, Automatic"): 1,
        ("Active – AwaitingReinstate", "Active, Automatic"): 1,
        ("Deactivated", "Deactivated, Automatic"): 1,
        ("Deactivated – AwaitingReinstate", "Active – Active, Manual"): 2,
        ("Finished", "Finished, Automatic"): 1,
        ("Grace", "Grace, Automatic"): 1,
        ("Hold", "Hold, Automatic"): 1,
        ("HandledByClient", "HandledByClient, Automatic"): 1,
        ("New", "New, Automatic"): 1,
    }
    assert (plan.total, plan.manual) == (10, 2)
    assert all(len(c.sample) == 1 for c in plan.changes)
    assert state(estate["awaiting"]) == ("Deactivated", ["AwaitingReinstate"], None, "1.0")
    assert not HistoryEntry.objects.filter(event_code="migrateSM2").exists()


def test_running_it_twice_changes_nothing_the_second_time(sm1, estate):
    migration.migrate_to_sm2(client=sm1, actor=STAFF)
    before = {name: state(sub) for name, sub in estate.items()}
    versions = {name: fresh(sub).row_version for name, sub in estate.items()}
    again = migration.migrate_to_sm2(client=sm1, actor=STAFF)
    assert again.migrated == 0
    assert {name: state(sub) for name, sub in estate.items()} == before
    assert {name: fresh(sub).row_version for name, sub in estate.items()} == versions
    assert HistoryEntry.objects.filter(event_code="migrateSM2").count() == len(estate)
    assert migration.plan_sm2_migration(client=sm1).total == 0


def test_a_failure_part_way_changes_nothing(sm1, estate):
    def fail_at_the_last_step(name):
        if name == "client":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        migration.migrate_to_sm2(client=sm1, actor=STAFF, progress=fail_at_the_last_step)
    for name, ((status, items), _) in BEFORE_AFTER.items():
        assert state(estate[name]) == (status, items, None, "1.0"), name
    assert Client.objects.get(pk=sm1.pk).sm_version == "1.0"
    assert not HistoryEntry.objects.filter(event_code="migrateSM2").exists()


def test_other_clients_are_untouched(sm1, sm2, estate, auto):
    other = Client.objects.create(name="Other", slug="other", sm_version="1.0")
    theirs = subscribe(other, ProductFactory(client=other), email="o@example.com")
    migration.migrate_to_sm2(client=sm1, actor=STAFF)
    assert state(theirs) == ("Active", ["Active"], None, "1.0")
    assert Client.objects.get(pk=other.pk).sm_version == "1.0"


def test_after_migration_it_behaves_as_sm2(sm1, estate, login):
    migration.migrate_to_sm2(client=sm1, actor=STAFF)
    sub = estate["active"]
    services.switch_renewal_type(
        subscription=sub, renewal_type="Manual", actor=STAFF, at=T0 + timedelta(days=1)
    )
    assert (fresh(sub).status, fresh(sub).renewal_type) == ("Active", "Manual")
    staff = login(sm1)
    purchase = fresh(estate["grace"]).purchases.order_by("pk").first()
    page = staff.get(f"/purchases/{purchase.pk}/billing/").content.decode()
    assert "Switch to Manual Renewal" in page and "Await Reinstate" not in page
    # A migrated Manual subscription is not charged at its billing date (docs/lifecycle.md).
    manual_sub = fresh(estate["awaiting"])
    outcome = services.renew_due(subscription=manual_sub, at=manual_sub.next_billing_date)
    assert outcome == "manual" and fresh(manual_sub).status == "Grace"


def test_the_command_has_a_dry_run_and_migrates(sm1, estate, capsys):
    call_command("migrate_to_sm2", "--client", sm1.slug, "--dry-run")
    out = capsys.readouterr().out
    assert "Deactivated – AwaitingReinstate -> Active – Active, Manual: 2" in out
    assert Client.objects.get(pk=sm1.pk).sm_version == "1.0"
    call_command("migrate_to_sm2", "--client", sm1.slug)
    assert "10 subscriptions migrated (2 Manual, 8 Automatic)" in capsys.readouterr().out
    assert Client.objects.get(pk=sm1.pk).sm_version == "2.0"


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_only_admins_see_settings_and_may_migrate(sm1, estate, login, role):
    staff = login(sm1, role)
    assert "/settings/" not in staff.get("/subscriptions/").content.decode()
    assert staff.get("/settings/").status_code == 403
    assert staff.get("/settings/sm2-migration/").status_code == 403
    assert staff.post("/settings/sm2-migration/").status_code == 403
    assert Client.objects.get(pk=sm1.pk).sm_version == "1.0"


def test_an_admin_runs_the_dry_run_then_confirms(sm1, estate, login):
    admin = login(sm1, "admin")
    settings_page = admin.get("/settings/").content.decode()
    assert "Start with a dry run" in settings_page
    dry_run = admin.get("/settings/sm2-migration/").content.decode()
    assert "10 subscriptions would change: 2 to manual" in dry_run
    assert f"S{estate['awaiting'].pk}" in dry_run
    assert state(estate["awaiting"])[3] == "1.0"  # the dry run changed nothing
    done = admin.post("/settings/sm2-migration/", follow=True).content.decode()
    assert "Migrated 10 subscriptions to Subscription Management 2.0" in done
    assert "Subscription Management 2.0" in done and "Start with a dry run" not in done
    assert state(estate["awaiting"]) == ("Active", ["Active"], "Manual", "2.0")
    entry = HistoryEntry.objects.get(subscription=estate["awaiting"], event_code="migrateSM2")
    assert (entry.actor_kind, entry.staff_user.username) == ("staff", entry.actor_label)
    again = admin.get("/settings/sm2-migration/").content.decode()
    assert "there is nothing to migrate" in again


# --- dormant subscriptions (awaiting confirmation, billing date passed) ---------

MIGRATED = FEB28 + timedelta(days=20)


def test_before_its_billing_date_an_awaiting_subscription_becomes_active_and_manual(sm1, manual):
    sub = subscribe(sm1, manual, email="early@example.com")
    migration.migrate_to_sm2(client=sm1, actor=STAFF, at=T0 + timedelta(days=5))
    assert state(sub) == ("Active", ["Active"], "Manual", "2.0")
    entry = HistoryEntry.objects.get(subscription=sub, event_code="migrateSM2")
    assert entry.after["status"] == "Active" and "Grace" not in entry.summary


def test_the_dry_run_lists_dormant_subscriptions_separately(sm1, estate, clock):
    clock.move_to(MIGRATED)
    plan = migration.plan_sm2_migration(client=sm1)
    assert plan.dormant == 2  # "awaiting" and "deactivated-mixed"
    assert {s.pk for s in plan.dormant_sample} == {
        estate["awaiting"].pk,
        estate["deactivated-mixed"].pk,
    }


def dormant_emails(estate):
    dormant = [estate["awaiting"], estate["deactivated-mixed"]]
    return CustomerEmail.objects.filter(subscription__in=dormant)


def test_dormant_subscriptions_get_no_e_mail_and_no_grace_wave_at_the_next_sweep(sm1, estate):
    emails = dormant_emails(estate).count()
    result = migration.migrate_to_sm2(client=sm1, actor=STAFF, at=MIGRATED)
    assert (result.dormant, result.invited) == (2, 0)
    dormant = fresh(estate["awaiting"])
    assert (dormant.status, dormant.status_changed_at) == ("Grace", MIGRATED)
    for work in renewals.start_sweep(as_of=MIGRATED + timedelta(minutes=5), client=sm1):
        renewals.run_batch(work.kind, work.ids, as_of=MIGRATED + timedelta(minutes=5))
    assert dormant_emails(estate).count() == emails  # nobody told anything, let alone "failed"
    # Grace counts from the migration: Hold after the client's 7 grace days.
    services.advance_dunning(subscription=dormant, at=MIGRATED + timedelta(days=6))
    assert fresh(dormant).status == "Grace"
    services.advance_dunning(subscription=dormant, at=MIGRATED + timedelta(days=7))
    assert fresh(dormant).status == "Hold"


def test_the_admin_may_send_each_dormant_customer_one_invitation(sm1, estate):
    result = migration.migrate_to_sm2(client=sm1, actor=STAFF, at=MIGRATED, invite_dormant=True)
    assert (result.dormant, result.invited) == (2, 2)
    sent = CustomerEmail.objects.filter(created_at=MIGRATED)
    assert sorted(sent.values_list("to", flat=True)) == [
        "awaiting@example.com",
        "deactivated-mixed@example.com",
    ]
    assert set(sent.values_list("kind", flat=True)) == {"invitation"}
    assert not dormant_emails(estate).filter(kind="payment_failed").exists()


def test_the_admin_sees_the_dormant_ones_and_chooses_to_invite_them(sm1, estate, login, clock):
    clock.move_to(MIGRATED)
    admin = login(sm1, "admin")
    dry_run = admin.get("/settings/sm2-migration/").content.decode()
    assert "Dormant: 2 subscriptions whose billing date has passed" in dry_run
    assert 'value="quiet" checked' in dry_run  # no e-mail unless asked
    done = admin.post("/settings/sm2-migration/", {"dormant": "invite"}, follow=True)
    text = done.content.decode()
    assert "2 whose billing date had passed are in Grace from now" in text
    assert "2 customers invited to renew" in text
    assert state(estate["awaiting"])[:3] == ("Grace", ["Active"], "Manual")
