"""The Settings page (admin role) and the SM 1.0 -> 2.0 migration's dry run,
confirmation and result (SPEC 9, 11)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from subscriptions import services
from subscriptions.errors import DomainError

from .access import HtmxHttpRequest, client_of, staff_actor, staff_required
from .models import ApiCredential, WebhookEndpoint


@require_GET
@staff_required("admin")
def settings_page(request: HtmxHttpRequest) -> HttpResponse:
    client = client_of(request)
    credentials = ApiCredential.objects.filter(client=client).select_related("created_by")
    endpoints = WebhookEndpoint.objects.filter(client=client)
    return render(
        request,
        "settings/index.html",
        {"client": client, "credentials": credentials, "endpoints": endpoints},
    )


@require_POST
@staff_required("admin")
def create_api_credential(request: HtmxHttpRequest) -> HttpResponse:
    """A new credential; its secret is shown on this one page and never again."""
    label = request.POST.get("label", "").strip()
    if not label or len(label) > 100:
        messages.error(request, "Give the credential a name (up to 100 characters).")
        return redirect("settings")
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
            result = services.migrate_to_sm2(client=client, actor=staff_actor(request))
        except DomainError as error:
            messages.error(request, error.reason)
            return redirect("sm2-migration")
        messages.success(
            request,
            f"Migrated {result.migrated} subscriptions to Subscription Management 2.0: "
            f"{result.manual} with manual and {result.automatic} with automatic renewal "
            f"({result.items_reactivated} items awaiting reinstatement are Active again). "
            "No customer was notified.",
        )
        return redirect("settings")
    plan = services.plan_sm2_migration(client=client)
    return render(request, "settings/sm2_migration.html", {"client": client, "plan": plan})
