"""Abuse limits (docs/deploy.md), counted by django-ratelimit in the shared
cache with atomic increments; sign-in lockout is django-axes (settings).

``over(request, ...)`` counts one hit and says whether the limit is passed;
views answer with ``too_many`` (429 and a page that says what to do)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

Key = str | Callable[[str, Any], str]


def by_address(group: str, request: Any) -> str:
    """The client's address (``REMOTE_ADDR``: behind a proxy, the server
    must pass the client's own, e.g. gunicorn's ``--forwarded-allow-ips``)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


@dataclass(frozen=True)
class Usage:
    over: bool
    wait: int  # seconds until the window ends


def usage(request: Any, *, group: str, key: Key, rate: str, count: bool = False) -> Usage:
    """Where ``key`` (a function of the request, e.g. ``by_address``) stands against
    ``rate`` (e.g. ``"10/h"``), counting this request first if ``count``."""
    found = get_usage(request, group=group, key=key, rate=rate, increment=count)
    if found is None:
        return Usage(False, 0)
    return Usage(bool(found["should_limit"]), max(0, int(found["time_left"])))


def over(request: HttpRequest, *, group: str, key: Key, rate: str) -> bool:
    """Count this request against ``rate`` for ``key``; is it over the limit?"""
    return usage(request, group=group, key=key, rate=rate, count=True).over


def too_many(
    request: HttpRequest,
    message: str | Exception | None = None,
    *,
    template: str = "limited.html",
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """429 with a page that says what happened and when to try again (also
    django-ratelimit's ``RATELIMIT_VIEW``)."""
    text = str(message) if message and str(message) else ""
    return render(
        request,
        template,
        {
            **(context or {}),
            "message": text or "Too many attempts from here. Please wait a while and try again.",
        },
        status=429,
    )
