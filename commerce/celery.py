"""The Celery app, configured from Django settings (CELERY_* names)."""

import gc
import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commerce.settings")

app = Celery("commerce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def freeze_startup_objects(**_: Any) -> None:
    """A pool process starts with everything imported (Django, Celery, the
    apps). Moved out of the garbage collector's reach (``gc.freeze``), they
    are no longer walked by every full collection, which a renewal batch
    (thousands of new objects) triggers a few times: measured, a fifth of
    its Python time before, a twentieth after (bench/RESULTS.md)."""
    gc.collect()
    gc.freeze()
