"""The Settings page (admin role) and the SM 1.0 -> 2.0 migration's dry run,
confirmation and result (docs/lifecycle.md), and the sandbox test
clock (docs/back-office.md)."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import dateformat, timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce import clock
from commerce.access import HtmxHttpRequest, client_of, staff_required
from commerce.models import ApiCredential, Client, WebhookEndpoint

from . import services
from .errors import DomainError
from .tasks import advance_clock as advance_task


@require_GET
@staff_required("admin")
def settings_page(request: HtmxHttpRequest) -> HttpResponse:
    client = client_of(request)
    credentials = ApiCredential.objects.filter(client=client).select_related("created_by")
    endpoints = WebhookEndpoint.objects.filter(client=client)
    return render(
        request,
        "settings/index.html",
        {
            "client": client,
            "credentials": credentials,
            "endpoints": endpoints,
            "display": DisplayForm(instance=client),
        },
    )


class DisplayForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = ["date_format"]
        labels = {"date_format": "Dates"}


@require_POST
@staff_required("admin")
def display_settings(request: HtmxHttpRequest) -> HttpResponse:
    """How dates are shown to this client's staff and customers."""
    form = DisplayForm(request.POST, instance=client_of(request))
    if form.is_valid():
        form.save()
        example = dateformat.format(datetime(2026, 3, 28), form.instance.date_format)
        messages.success(request, f"Dates are now shown as {example}.")
    else:
        messages.error(request, "Choose one of the date formats offered.")
    return redirect("settings")


class CredentialForm(forms.Form):
    label = forms.CharField(
        max_length=100,
        error_messages={
            "required": "Give the credential a name (up to 100 characters).",
            "max_length": "Give the credential a name (up to 100 characters).",
        },
    )


@require_POST
@staff_required("admin")
def create_api_credential(request: HtmxHttpRequest) -> HttpResponse:
    """A new credential; its secret is shown on this one page and never again."""
    form = CredentialForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors["label"]))
        return redirect("settings")
    label = form.cleaned_data["label"]
    credential, secret = ApiCredential.issue(
        client=client_of(request), label=label, created_by=request.user
    )
    return render(request, "settings/api_secret.html", {"credential": credential, "secret": secret})


@require_POST
@staff_required("admin")
def revoke_api_credential(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    credential = get_object_or_404(ApiCredential, pk=pk, client=client_of(request))
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
    messages.success(request, f"{credential} is revoked; calls with it are refused from now on.")
    return redirect("settings")


@require_http_methods(["GET", "POST"])
@staff_required("admin")
def sm2_migration(request: HtmxHttpRequest) -> HttpResponse:
    """GET: the dry run (changes nothing). POST: migrate, then the result."""
    client = client_of(request)
    if request.method == "POST":
        try:
            result = services.migrate_to_sm2(
                client=client,
                actor=services.Actor.staff(request.user),  # type: ignore[arg-type]
                invite_dormant=request.POST.get("dormant") == "invite",
            )
        except DomainError as error:
            messages.error(request, error.reason)
            return redirect("sm2-migration")
        messages.success(
            request,
            f"Migrated {result.migrated} subscriptions to Subscription Management 2.0: "
            f"{result.manual} with manual and {result.automatic} with automatic renewal "
            f"({result.items_reactivated} items awaiting reinstatement are Active again). "
            + (
                f"{result.dormant} whose billing date had passed are in Grace from now; "
                f"{result.invited} customer{'s' if result.invited != 1 else ''} invited to renew. "
                if result.dormant
                else ""
            )
            + (
                "No other customer was notified." if result.invited else "No customer was notified."
            ),
        )
        return redirect("settings")
    plan = services.plan_sm2_migration(client=client)
    return render(request, "settings/sm2_migration.html", {"client": client, "plan": plan})


@require_POST
@staff_required("admin")
def advance_clock(request: HtmxHttpRequest) -> HttpResponse:
    """Move this sandbox client's test clock forward (issue 10); the days on
    the way are swept by a worker, one after the other."""
    client = client_of(request)
    by = request.POST.get("by", "")
    try:
        if by == "date":
            try:
                day = parse_date(request.POST.get("to", "") or "")
            except ValueError:  # well-formed but impossible, e.g. 2027-02-30
                day = None
            if day is None:
                raise clock.ClockError("Choose the date to advance to.")
            # Keep the time of day, so "to 1 March" lands on 1 March.
            to = datetime.combine(day, client.now().timetz())
            target = clock.target_of(client, to=to)
        else:
            steps = {"day": (1, 0), "week": (7, 0), "month": (0, 1)}
            if by not in steps:
                raise clock.ClockError("Choose how far to advance.")
            days, months = steps[by]
            target = clock.target_of(client, days=days, months=months)
    except clock.ClockError as exc:
        messages.error(request, f"The clock was not moved: {exc}")
        return redirect("settings")
    transaction.on_commit(lambda: advance_task.delay(client.pk, target.isoformat()))
    messages.success(
        request,
        f"The clock is moving to {target:%Y-%m-%d %H:%M} UTC; each day on the way is swept.",
    )
    return redirect("settings")
