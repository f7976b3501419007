"""Who may see and do what in the back office.

Every back-office view is wrapped in ``staff_required``: the user must be a
client's staff member, and ``request.client`` is that client. Every query in
a view starts from ``request.client``, so another client's objects 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django_htmx.middleware import HtmxDetails

from .models import Client, DateFormat, StaffMembership


class HtmxHttpRequest(HttpRequest):
    """What a request looks like to our views (django-htmx sets ``htmx``)."""

    htmx: HtmxDetails


ROLE_RANK = {"viewer": 0, "support": 1, "admin": 2}


def membership_of(request: HttpRequest) -> StaffMembership | None:
    """The signed-in user's membership with its client, read once per request."""
    if not request.user.is_authenticated:
        return None
    if not hasattr(request, "_membership"):
        request._membership = (  # type: ignore[attr-defined]
            StaffMembership.objects.select_related("client").filter(user=request.user).first()
        )
    membership: StaffMembership | None = request._membership  # type: ignore[attr-defined]
    return membership


def can(membership: StaffMembership | None, role: str) -> bool:
    return membership is not None and ROLE_RANK[membership.role] >= ROLE_RANK[role]


def staff_required(role: str = "viewer") -> Callable[[Callable[..., HttpResponseBase]], Any]:
    """Log in, belong to a client, and have at least ``role``; else 403."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_of(request)
            if membership is None:
                raise PermissionDenied("This account belongs to no client.")
            if not can(membership, role):
                raise PermissionDenied(f"Your role ({membership.role}) may not do this.")
            request.membership = membership  # type: ignore[attr-defined]
            request.client = membership.client  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def require_role(request: HttpRequest, role: str) -> None:
    """For views that first look the object up (so another client's id is a
    404 for everyone), then check the role."""
    membership: StaffMembership = request.membership  # type: ignore[attr-defined]
    if not can(membership, role):
        raise PermissionDenied(f"Your role ({membership.role}) may not do this.")


def client_of(request: HttpRequest) -> Client:
    client: Client = request.client  # type: ignore[attr-defined]
    return client


def context_processor(request: HttpRequest) -> dict[str, Any]:
    """``DAY`` and ``MOMENT``: the staff member's client's date format, for the
    ``date`` filter (``{{ when|date:MOMENT }} UTC``)."""
    membership = membership_of(request)
    day = membership.client.date_format if membership else DateFormat.ISO
    return {
        "membership": membership,
        "can_change": can(membership, "support"),
        "can_admin": can(membership, "admin"),
        "DAY": day,
        "MOMENT": f"{day} H:i",
    }


class NoStoreMiddleware:
    """Pages for a signed-in user (staff, operators) are never kept by the
    browser or a proxy: ``Cache-Control: no-store``. Static files and
    anonymous pages keep their own headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.user.is_authenticated:
            response["Cache-Control"] = "no-store"
        return response
