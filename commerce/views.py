from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import Client


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Landing page: what runs here and where to sign in."""
    clients = Client.objects.order_by("name")
    return render(request, "home.html", {"clients": clients})
