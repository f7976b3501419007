"""Both ways of running: nothing configured -> SQLite + filesystem broker;
DATABASE_URL / CELERY_BROKER_URL -> PostgreSQL + Redis with a real worker."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; django.setup(); from django.conf import settings; "
    "from commerce import celery_app; print(json.dumps({"
    "'engine': settings.DATABASES['default']['ENGINE'], "
    "'broker': celery_app.conf.broker_url, "
    "'beat': celery_app.conf.beat_scheduler, "
    "'acks_late': celery_app.conf.task_acks_late, "
    "'reject_on_worker_lost': celery_app.conf.task_reject_on_worker_lost, "
    "'transport': celery_app.conf.broker_transport_options}))"
)


def settings_with(env, tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    clean.update(env, DJANGO_SETTINGS_MODULE="commerce.settings", COMMERCE_VAR_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def test_nothing_configured_means_sqlite_and_a_serverless_broker(tmp_path):
    conf = settings_with({}, tmp_path)
    assert conf["engine"] == "django.db.backends.sqlite3"
    assert conf["broker"] == "filesystem://"
    assert conf["beat"] == "django_celery_beat.schedulers:DatabaseScheduler"
    assert (tmp_path / "broker" / "queue").is_dir()


def test_urls_select_postgresql_and_redis(tmp_path):
    conf = settings_with(
        {
            "DATABASE_URL": "postgres://u@db.example:5432/x",
            "CELERY_BROKER_URL": "redis://cache.example:6379/0",
        },
        tmp_path,
    )
    assert conf["engine"] == "django.db.backends.postgresql"
    assert conf["broker"] == "redis://cache.example:6379/0"
    # A killed worker's task goes back to the queue, to another worker after
    # the visibility timeout (longer than any batch).
    assert (conf["acks_late"], conf["reject_on_worker_lost"]) == (True, True)
    assert conf["transport"] == {
        "visibility_timeout": 600,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }


@pytest.fixture
def redis_url():
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run with CELERY_BROKER_URL pointing at Redis")
        pytest.skip("set CELERY_BROKER_URL=redis://... to run against a real worker")
    return url


def test_a_real_worker_on_redis_answers(redis_url, tmp_path):
    from commerce import celery_app

    env = dict(os.environ, COMMERCE_VAR_DIR=str(tmp_path))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "commerce",
            "worker",
            "--pool=solo",
            "--hostname=probe@%h",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        replies: list = []
        for _ in range(30):
            replies = celery_app.control.ping(timeout=1.0)
            if replies:
                break
            time.sleep(0.5)
        assert any(name.startswith("probe@") for reply in replies for name in reply)
    finally:
        worker.terminate()
        worker.wait(20)


def test_a_refused_request_is_logged_in_one_line_a_server_error_with_its_traceback():
    import io
    import logging

    from django.conf import settings
    from django.core.exceptions import PermissionDenied

    from commerce.logs import NoTracebackBelow500

    assert settings.LOGGING["handlers"]["console"]["filters"] == ["no_4xx_traceback"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(NoTracebackBelow500())
    log = logging.getLogger("tests.refused")
    log.addHandler(handler)
    for status in (403, 500):
        try:
            raise PermissionDenied("Your role (viewer) may not do this.")
        except PermissionDenied:
            log.error("Answered %s", status, exc_info=True, extra={"status_code": status})
    log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Answered 403"
    assert lines[1] == "Answered 500" and lines[2].startswith("Traceback")
