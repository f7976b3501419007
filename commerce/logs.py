"""Logging filters (settings.LOGGING)."""

from __future__ import annotations

import logging


class NoTracebackBelow500(logging.Filter):
    """A refused request (403, 404: ``django.request`` warnings) is logged as
    one line; its traceback is kept for server errors only."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
