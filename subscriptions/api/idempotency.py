"""``Idempotency-Key`` on POSTs (docs/api.md): the same key with the same body
returns the first answer and changes nothing again; the same key with another
body is refused; a second request while the first still runs is refused too.
A row claims the key before the change runs (a unique constraint holds it),
so two concurrent requests cannot both apply it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework.request import Request
from rest_framework.response import Response

from commerce.models import ApiCredential, ApiIdempotentRequest

from .errors import handle_exception

View = Callable[..., Response]


def idempotent(view: View) -> View:
    @wraps(view)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return view(request, *args, **kwargs)
        if len(key) > 200:
            return _refuse(400, "Idempotency-Key is longer than 200 characters.")
        credential = request.auth
        assert isinstance(credential, ApiCredential)
        digest = hashlib.sha256(
            json.dumps(request.data, sort_keys=True, default=str).encode()
        ).hexdigest()
        try:
            with transaction.atomic():
                claim = ApiIdempotentRequest.objects.create(
                    credential=credential, key=key, endpoint=view.__name__, request_sha256=digest
                )
        except IntegrityError:
            first = ApiIdempotentRequest.objects.get(credential=credential, key=key)
            if (first.endpoint, first.request_sha256) != (view.__name__, digest):
                return _refuse(409, "This Idempotency-Key was used for a different request.")
            if not first.status_code:
                return _refuse(409, "The first request with this Idempotency-Key is still running.")
            return Response(first.response, status=first.status_code)
        try:
            response = view(request, *args, **kwargs)
        except Exception as error:
            response = handle_exception(error, {"request": request})
            if response is None:
                claim.delete()  # a server error: the key may be tried again
                raise
        claim.status_code, claim.response = response.status_code, response.data
        claim.save(update_fields=["status_code", "response"])
        return response

    return wrapper


def _refuse(code: int, message: str) -> Response:
    return Response({"ResultMessage": message}, status=code)
