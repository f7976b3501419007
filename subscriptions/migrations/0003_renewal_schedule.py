"""Beat's schedule, editable in Django admin (Periodic tasks): a renewal
sweep every 5 minutes and an e-mail flush every minute (a safety net for
e-mails whose after-commit trigger was lost)."""

from django.db import migrations


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Task = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minutes in [
        ("Renewal sweep", "subscriptions.tasks.sweep", 5),
        ("Send customer e-mails", "customers.tasks.send_customer_emails", 1),
    ]:
        every, _ = Interval.objects.get_or_create(every=minutes, period="minutes")
        Task.objects.get_or_create(name=name, defaults={"task": task, "interval": every})


def remove(apps, schema_editor):
    Task = apps.get_model("django_celery_beat", "PeriodicTask")
    Task.objects.filter(name__in=["Renewal sweep", "Send customer e-mails"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0002_renewal_engine"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
