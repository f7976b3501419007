"""Beat looks for stalled renewal runs every 30 seconds (docs/renewals.md):
a run none of whose batches finished for RENEWAL_STALL_AFTER seconds gets its
unfinished batches sent again. Editable in Django admin (Periodic tasks)."""

from django.db import migrations

NAME = "Resume stalled renewal runs"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Task = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = Interval.objects.get_or_create(every=30, period="seconds")
    Task.objects.get_or_create(
        name=NAME, defaults={"task": "subscriptions.tasks.resume_stalled", "interval": every}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0011_renewal_batches"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
