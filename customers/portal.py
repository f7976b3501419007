"""Signed, expiring links into the customer self-service portal (docs/portal.md).

A link carries the customer id and their client id, signed with Django's
``TimestampSigner`` (the project's SECRET_KEY and a salt of its own), so it
cannot be forged or pointed at another customer, and it stops working after
``PORTAL_LINK_MAX_AGE`` seconds. Opening a link starts a portal session for
that one customer; every portal page reads the customer from the session and
only ever queries that customer's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.urls import reverse

from commerce.models import Client

from .models import Customer

SALT = "customers.portal.link"


@dataclass(frozen=True)
class LinkProblem:
    title: str
    message: str
    # Known for an expired link: a new one is offered there. Not part of what
    # the problem is (EXPIRED == EXPIRED whatever the client).
    client: Client | None = field(default=None, compare=False)


EXPIRED = LinkProblem(
    "This link has expired",
    "Links to your account work for a limited time. Enter your e-mail address below "
    "and we will send you a new one.",
)
INVALID = LinkProblem(
    "This link is not valid",
    "The link is incomplete or was changed. Use the link from your latest e-mail as it is, "
    "or ask the shop you bought from for a new one.",
)


class _ClientClockSigner(signing.TimestampSigner):
    """Stamps links with the client's time, so that a sandbox client's test
    clock also ages its portal links (issue 10)."""

    def __init__(self, moment: datetime) -> None:
        super().__init__(salt=SALT)
        self.moment = moment

    def timestamp(self) -> str:
        return signing.b62_encode(int(self.moment.timestamp()))


def make_token(customer: Customer, client: Client | None = None) -> str:
    """``client`` is the customer's, when the caller has it already loaded."""
    signer = _ClientClockSigner((client or customer.client).now())
    return signer.sign_object({"c": customer.pk, "k": customer.client_id})


def link_for(customer: Customer, client: Client | None = None) -> str:
    """The absolute portal link for e-mails."""
    return settings.SITE_URL + reverse("portal-enter", args=[make_token(customer, client)])


def customer_from_token(token: str, *, max_age: int | None = None) -> Customer | LinkProblem:
    """The customer a token was made for, or why it does not open the portal."""
    age = settings.PORTAL_LINK_MAX_AGE if max_age is None else max_age
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(token)  # signature only
        stamped = signing.b62_decode(signing.Signer(salt=SALT).unsign(token).rsplit(":", 1)[1])
    except (signing.BadSignature, ValueError):
        return INVALID
    if not (isinstance(data, dict) and isinstance(data.get("c"), int)):
        return INVALID
    customer = (
        Customer.objects.select_related("client")
        .filter(pk=data["c"], client_id=data.get("k", 0))
        .first()
    )
    if customer is None:
        return INVALID
    # The age on the customer's client's clock (a sandbox's test clock).
    if customer.client.now().timestamp() - stamped > age:
        return replace(EXPIRED, client=customer.client)
    return customer
