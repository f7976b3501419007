"""The Notifications page (webhook deliveries, Resend) and the webhook
endpoints of Settings (docs/notifications.md)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce.access import HtmxHttpRequest, client_of, staff_required
from commerce.models import WebhookDelivery, WebhookEndpoint

from . import tasks, webhooks
from .types import NotificationType


@require_GET
@staff_required()
def notifications(request: HtmxHttpRequest) -> HttpResponse:
    """The client's latest deliveries, newest first, by status."""
    status = request.GET.get("status", "")
    deliveries = WebhookDelivery.objects.filter(notification__client=client_of(request))
    if status in WebhookDelivery.Status.values:
        deliveries = deliveries.filter(status=status)
    rows = deliveries.select_related("notification", "endpoint").order_by("-created_at", "-id")
    return render(
        request,
        "notifications/list.html",
        {
            "deliveries": rows[:200],
            "status": status,
            "statuses": WebhookDelivery.Status.choices,
            "has_endpoints": WebhookEndpoint.objects.filter(client=client_of(request)).exists(),
            # Endpoints with failed deliveries, and how many: "Retry all failed".
            "failing": WebhookEndpoint.objects.filter(
                client=client_of(request), deliveries__status=WebhookDelivery.Status.FAILED
            )
            .annotate(failed=Count("deliveries"))
            .order_by("url"),
        },
    )


@require_POST
@staff_required("support")
def resend(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk, notification__client=client_of(request))
    webhooks.resend(delivery)
    tasks.deliver_after_commit()
    messages.success(
        request, f"{delivery.notification.type} is being sent again to {delivery.endpoint.url}."
    )
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("notifications")


class EndpointForm(forms.Form):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            webhooks.checked_target(url)
        except webhooks.UnsafeTarget as error:
            raise forms.ValidationError(str(error)) from error
        return url

    types = forms.MultipleChoiceField(
        choices=[(t, t) for t in NotificationType.values],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every type.",
    )


@require_http_methods(["GET", "POST"])
@staff_required("admin")
def endpoint_create(request: HtmxHttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = WebhookEndpoint.objects.create(
            client=client_of(request),
            url=form.cleaned_data["url"],
            types=form.cleaned_data["types"],
            secret=WebhookEndpoint.new_secret(),
        )
        return render(request, "notifications/endpoint_secret.html", {"endpoint": endpoint})
    return render(request, "notifications/endpoint_form.html", {"form": form})


@require_POST
@staff_required("admin")
def endpoint_rotate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A new signing secret, shown once; the old one stops working at once."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk, client=client_of(request))
    endpoint.secret = WebhookEndpoint.new_secret()
    endpoint.save(update_fields=["secret"])
    return render(
        request, "notifications/endpoint_secret.html", {"endpoint": endpoint, "rotated": True}
    )


@require_POST
@staff_required("support")
def endpoint_retry_failed(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Send every failed delivery of the endpoint again (after fixing it)."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk, client=client_of(request))
    count = webhooks.retry_failed(endpoint)
    if count:
        tasks.deliver_after_commit()
        messages.success(request, f"{count} failed deliveries to {endpoint.url} are sent again.")
    else:
        messages.info(request, f"{endpoint.url} has no failed deliveries.")
    return redirect("notifications")


@require_POST
@staff_required("admin")
def endpoint_toggle(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk, client=client_of(request))
    endpoint.is_active = not endpoint.is_active
    endpoint.save(update_fields=["is_active"])
    state = "active" if endpoint.is_active else "paused: nothing new is sent to it"
    messages.success(request, f"{endpoint.url} is {state}.")
    return redirect("settings")
