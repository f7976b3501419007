"""Beat delivers the notification outbox every minute too (a safety net for
notifications whose after-commit trigger was lost, or written while no
worker ran); editable in Django admin (Periodic tasks)."""

from django.db import migrations

NAME = "Deliver notifications"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Task = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = Interval.objects.get_or_create(every=1, period="minutes")
    Task.objects.get_or_create(
        name=NAME, defaults={"task": "commerce.tasks.deliver_notifications", "interval": every}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0008_webhooks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
