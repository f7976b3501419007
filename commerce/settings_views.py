"""The Settings page (admin role) and the SM 1.0 -> 2.0 migration's dry run,
confirmation and result (SPEC 9, 11)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from subscriptions import services
from subscriptions.errors import DomainError

from .access import HtmxHttpRequest, client_of, staff_actor, staff_required


@require_GET
@staff_required("admin")
def settings_page(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "settings/index.html", {"client": client_of(request)})


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
