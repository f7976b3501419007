"""Bad input never gets a server error (docs/deploy.md): every page of the
back office and the portal is found by following links from the start pages
(as an admin of an SM 1.0 and of an SM 2.0 client, and as a portal
customer), every form on them is submitted with each field set in turn to
hostile values, and every page is asked for with hostile query parameters.
Nothing is listed per view: the crawl must reach every URL pattern of the
site (a test below holds that), so a new page is fuzzed the day it exists."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from commerce.models import Client as Vendor
from commerce.models import StaffMembership, WebhookEndpoint
from customers.models import Customer
from customers.portal import make_token

HOSTILE = {
    "long": "x" * 5000,
    "nul": "a\x00b",
    "unicode": "Zoë 🧾 \u202e\ufeff",
    "huge": "1" + "0" * 23,
    "negative": "-1",
    "impossible date": "2027-02-30",
    "far date": "9999-12-31",
    "not a url": "javascript:alert(1)",
    "blank": "",
}
# Never followed or submitted: they end the session being crawled.
SKIP = {"logout", "portal-leave"}
# Patterns no page links to by design (machine endpoints, covered elsewhere).
NOT_CRAWLED = {
    "portal-enter",  # from e-mails (entered once, below)
    "api-schema",
    "api-docs",
    "checkout",  # public, entered below
    "portal-request-link",  # public, entered below
    "delivery-resend",  # POST-only, forms cover it
    "endpoint-retry-failed",  # a button only while deliveries failed; no fields
    "document",  # linked where a refund exists (tests/subscriptions/test_refund_pages.py)
    "document-pdf",
    "portal-document-pdf",
    "gateway-event",  # the payment gateway's signed callback (same test module)
}


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class PageParser(HTMLParser):
    """Links and forms of a page (with each field's current value)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base, self.links, self.forms = base, set(), []
        self.form: Form | None = None
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.add(a["href"].split("#")[0])
        for attr in ("hx-get", "hx-post"):
            if a.get(attr, "").startswith("/"):
                self.links.add(a[attr].split("#")[0])
        if tag == "form":
            action = a.get("action") or self.base
            self.form = Form(
                action if action.startswith("/") else self.base, a.get("method", "get")
            )
            self.forms.append(self.form)
        if self.form is None:
            return
        if tag in ("input", "textarea") and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                self.form.fields.setdefault(a["name"], "")
            elif a.get("type") != "submit":
                self.form.fields[a["name"]] = a.get("value", "")
        if tag == "select" and a.get("name"):
            self.select = a["name"]
            self.form.fields[a["name"]] = ""
        if (
            tag == "option"
            and self.select
            and ("selected" in a or not self.form.fields[self.select])
        ):
            self.form.fields[self.select] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        if tag == "select":
            self.select = None


def url_name(path: str) -> str | None:
    try:
        return resolve(urlsplit(path).path).url_name
    except Resolver404:
        return None


class Crawl:
    def __init__(self, client: Client) -> None:
        self.client, self.seen, self.forms, self.errors = client, set(), [], []
        self.silent: list[str] = []
        self.names: Counter[str] = Counter()

    def check(self, response, what):
        if response.status_code >= 500:
            self.errors.append(f"{response.status_code} {what}")

    def visit(self, start: str, limit: int = 400) -> None:
        queue = [start]
        while queue and len(self.seen) < limit:
            path = queue.pop(0)
            name = url_name(path)
            if path in self.seen or name in SKIP or name is None:
                continue
            if path.startswith(("/admin", "/static", "/api/")):
                continue
            self.seen.add(path)
            self.names[name] += 1
            if self.names[name] > 6:
                continue  # enough pages of one kind
            response = self.client.get(path)
            self.check(response, f"GET {path}")
            if response.status_code in (301, 302) and response["Location"].startswith("/"):
                queue.append(response["Location"])
            if "text/html" not in response.get("Content-Type", ""):
                continue
            parser = PageParser(path)
            parser.feed(response.content.decode())
            self.forms += [f for f in parser.forms if url_name(f.action) not in SKIP]
            queue += sorted(parser.links - self.seen)

    def fuzz_queries(self) -> None:
        """Page numbers and redirect targets on one page of each kind (the
        filters' own fields are fuzzed as forms)."""
        first: dict[str, str] = {}
        for path in sorted(self.seen):
            first.setdefault(url_name(path) or "", path.split("?")[0])
        for path in first.values():
            for value in HOSTILE.values():
                for name in ("page", "next", "item", "purchase", "subscription"):
                    response = self.client.get(path + "?" + urlencode({name: value}))
                    self.check(response, f"GET {path} {name}={value[:20]!r}")

    def fuzz_forms(self, relogin) -> None:
        done = set()
        for form in self.forms:
            key = (url_name(form.action), form.method, tuple(sorted(form.fields)))
            if key in done:
                continue
            done.add(key)
            for name in form.fields:
                if name == "csrfmiddlewaretoken":
                    continue
                for label, value in HOSTILE.items():
                    data = {**form.fields, name: value}
                    if form.method.lower() == "post":
                        response = self.client.post(form.action, data)
                    else:
                        response = self.client.get(form.action, data)
                    self.check(response, f"{form.method} {form.action} {name}={label}")
                    if label == "nul" and form.method.lower() == "post":
                        self.refused(response, f"POST {form.action} {name}=NUL")
                    relogin()

    def refused(self, response, what):
        """A value nothing may store (NUL) is refused with a message: a 4xx,
        or a page (after a redirect) that shows an error."""
        if 400 <= response.status_code < 500:
            return
        if response.status_code in (301, 302, 303) and response["Location"].startswith("/"):
            response = self.client.get(response["Location"])
        page = response.content.decode(errors="replace")
        if not any(mark in page for mark in ("errorlist", "msg-error", 'role="alert"')):
            self.silent.append(f"{response.status_code} {what}")


@pytest.fixture
def demo(transactional_db):
    """Demo data, committed: each request runs in its own transaction, as in
    production, so one bad request cannot hide the next one's outcome."""
    call_command("load_demo", customers=6, stdout=open("/dev/null", "w"))
    for vendor in Vendor.objects.all():
        WebhookEndpoint.objects.create(
            client=vendor, url="https://hooks.example.com/in", secret=WebhookEndpoint.new_secret()
        )


KINDS = ["1.0", "2.0", "sandbox"]


def admin_of(kind: str) -> StaffMembership:
    admins = StaffMembership.objects.filter(role="admin").select_related("user", "client")
    if kind == "sandbox":
        return admins.filter(client__is_sandbox=True).first()
    return admins.filter(client__sm_version=kind, client__is_sandbox=False).first()


@pytest.mark.parametrize("kind", KINDS)
def test_no_back_office_page_or_form_gives_a_server_error(demo, kind):
    membership = admin_of(kind)
    client = Client(raise_request_exception=False)

    def relogin():
        client.force_login(membership.user)

    relogin()
    crawl = Crawl(client)
    crawl.visit("/")
    crawl.fuzz_queries()
    crawl.fuzz_forms(relogin)
    assert crawl.errors == []
    assert crawl.silent == []
    assert len(crawl.seen) > 15 and len(crawl.forms) > 5


def test_no_portal_page_or_public_form_gives_a_server_error(demo):
    customer = Customer.objects.filter(subscriptions__isnull=False).first()
    client = Client(raise_request_exception=False)

    def relogin():
        client.get(f"/portal/enter/{make_token(customer)}/")

    relogin()
    crawl = Crawl(client)
    crawl.visit("/portal/")
    crawl.visit(f"/checkout/{customer.client.slug}/")
    crawl.visit(f"/portal/link/{customer.client.slug}/")
    crawl.visit("/login/")
    for token in HOSTILE.values():
        crawl.check(client.get(f"/portal/enter/{token[:200] or 'x'}/"), f"enter {token[:20]!r}")
    crawl.fuzz_queries()
    crawl.fuzz_forms(relogin)
    assert crawl.errors == []
    assert crawl.silent == []


def _patterns(resolvers, prefix=""):
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            yield prefix + str(entry.pattern), entry.name


def test_the_crawl_reaches_every_page_of_the_site(demo):
    """Every named URL pattern outside admin and the API is reached by the
    crawls above (as a page or a form's target), or is listed here as
    entered some other way."""
    names = {"login"}  # the public sign-in page, fuzzed above
    for kind in KINDS:
        client = Client(raise_request_exception=False)
        client.force_login(admin_of(kind).user)
        crawl = Crawl(client)
        crawl.visit("/")
        names |= set(crawl.names) | {url_name(f.action) for f in crawl.forms}
    customer = Customer.objects.filter(subscriptions__isnull=False).first()
    client = Client(raise_request_exception=False)
    client.get(f"/portal/enter/{make_token(customer)}/")
    crawl = Crawl(client)
    crawl.visit("/portal/")
    names |= set(crawl.names) | {url_name(f.action) for f in crawl.forms}
    site = {
        name
        for route, name in _patterns(get_resolver().url_patterns)
        if not re.match(r"^(admin|api)/", route)
    }
    assert site - names - NOT_CRAWLED - SKIP == set()
