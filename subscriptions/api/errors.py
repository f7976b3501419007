"""Every API error as ``{"ResultMessage": …}``, with ``Errors`` per field for
400 (docs/api.md): domain refusals map to 400 / 404 / 409."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from subscriptions.errors import DomainError, InvalidInput, NotFound, TransitionNotAllowed

STATUS_FOR = {InvalidInput: 400, NotFound: 404, TransitionNotAllowed: 409}


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as ``{"ResultMessage": …}`` (and ``Errors`` per field for 400)."""
    if isinstance(exc, DomainError):
        code = next((c for kind, c in STATUS_FOR.items() if isinstance(exc, kind)), 409)
        body: dict[str, Any] = {"ResultMessage": exc.reason}
        if exc.fields:
            body["Errors"] = exc.fields
        return Response(body, status=code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        fields = ", ".join(errors)
        response.data = {"ResultMessage": f"Invalid input: {fields}.", "Errors": errors}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        detail = getattr(exc, "detail", str(exc))
        response.data = {"ResultMessage": str(detail)}
    return response


def _flatten(detail: Any, prefix: str = "") -> dict[str, str]:
    """DRF's nested error detail as {"Field" or "Items.0": "message"}."""
    if isinstance(detail, dict):
        out: dict[str, str] = {}
        for key, value in detail.items():
            name = "Body" if key == "non_field_errors" else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list) and any(isinstance(v, (dict, list)) for v in detail):
        out = {}
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return out
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "Body": " ".join(str(m) for m in messages)}
