"""Entering the customer self-service portal (docs/portal.md): a customer
arrives through a signed link or asks for one by e-mail; ``portal_customer``
guards the portal's pages (``subscriptions.portal_views``), which show only
that customer's subscriptions and invoices at that client."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from commerce import limits
from commerce.models import Client

from . import tasks
from .emails import portal_link_email
from .models import Customer
from .portal import LinkProblem, customer_from_token

SESSION_KEY = "portal_customer"

View = Callable[..., HttpResponse]


# --- entering -------------------------------------------------------------------------


class LinkRequestForm(forms.Form):
    email = forms.EmailField(label="Your e-mail address", max_length=254)


@require_GET
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """Open the portal from an e-mail link; a bad or old link gets a clear page."""
    found = customer_from_token(token)
    if isinstance(found, LinkProblem):
        return render(
            request,
            "portal/link_problem.html",
            {"problem": found, "form": LinkRequestForm(), "client": found.client},
            status=403,
        )
    request.session.cycle_key()
    request.session[SESSION_KEY] = found.pk
    request.session.set_expiry(settings.PORTAL_SESSION_SECONDS)
    return redirect("portal")


@require_http_methods(["GET", "POST"])
def request_link(request: HttpRequest, slug: str) -> HttpResponse:
    """A customer who lost their link enters their e-mail and gets a new one.
    The answer is the same whether or not the address is known here."""
    client = get_object_or_404(Client, slug=slug)
    form = LinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        if limits.over(
            request,
            group="portal-link-ip",
            key=limits.by_address,
            rate=settings.PORTAL_LINK_RATE_PER_ADDRESS,
        ):
            return limits.too_many(
                request,
                "Too many link requests from your address. Please try again in an hour.",
                template="portal/limited.html",
                context={"client": client},
            )
        customer = Customer.objects.filter(client=client, email=email).first()
        if not send_link(request, client, email, customer):
            return limits.too_many(
                request,
                "Several links were sent to this address in the last hour; each works for "
                "7 days. Please check your inbox (and spam folder), or try again later.",
                template="portal/limited.html",
                context={"client": client},
            )
        return render(
            request,
            "portal/link_sent.html",
            {"client": client, "email": form.cleaned_data["email"]},
        )
    return render(request, "portal/request_link.html", {"client": client, "form": form})


def send_link(request: HttpRequest, client: Client, email: str, customer: Customer | None) -> bool:
    """E-mail ``customer`` (if the address has one) a new portal link, unless
    the address had ``PORTAL_LINK_RATE_PER_EMAIL`` already: False then. The
    count is the same whether or not the address is known here."""
    if limits.over(
        request,
        group="portal-link-email",
        key=lambda group, request: f"{client.pk}:{email}",
        rate=settings.PORTAL_LINK_RATE_PER_EMAIL,
    ):
        return False
    if customer is not None:
        portal_link_email(customer, at=timezone.now()).save()
        tasks.send_after_commit()
    return True


def portal_customer(view: View) -> View:
    """The customer of this portal session, or a page saying how to get in."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pk = request.session.get(SESSION_KEY)
        customer = Customer.objects.select_related("client").filter(pk=pk).first() if pk else None
        if customer is None:
            return render(request, "portal/signed_out.html", status=403)
        return view(request, customer, *args, **kwargs)

    return wrapper


@require_http_methods(["POST"])
def leave(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    return render(request, "portal/signed_out.html", {"left": True})
