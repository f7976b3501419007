"""axe-core in the browser on the pages staff and customers use most: the
search, every tab of the Purchase viewer, the lists, every report, the
checkout and the whole portal on a phone. Any violation (minor to critical)
fails the test and names the rule, the page and the elements. And on a phone
no portal page scrolls sideways."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from django.urls import reverse

from commerce.models import Client, Purchase
from customers.portal import make_token
from subscriptions.models import Subscription
from subscriptions.report_views import PAGES
from subscriptions.viewers import TABS
from tests.browser.test_back_office_browser import sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
AXE = Axe()


def violations(page) -> list[str]:
    results = AXE.run(page)
    found = []
    for v in results.response["violations"]:
        nodes = "; ".join(n["target"][0] for n in v["nodes"][:5])
        found.append(f"{page.url}: {v['id']} ({v['impact']}) at {nodes}")
    return found


@pytest.fixture
def demo(db):
    call_command("load_demo", customers=12, verbosity=0)
    return Client.objects.get(slug="contoso")


def visit(page, url, ready):
    page.goto(url)
    page.wait_for_selector(ready)
    return violations(page)


@pytest.mark.parametrize("slug", ["contoso", "northwind"])
def test_back_office_pages_have_no_accessibility_violations(page, demo, slug):
    client = Client.objects.get(slug=slug)
    sign_in(page, client, "admin")
    purchase = (
        Purchase.objects.filter(client=client, subscription__status="Active").order_by("pk").first()
    )
    sub = Subscription.objects.filter(client=client).order_by("pk").first()
    found = visit(page, "/purchases/?q=example", "#purchase-results")
    for tab, _label in TABS:
        found += visit(page, reverse("purchase-tab", args=[purchase.pk, tab]), ".tab-body")
    # A confirmation opened on the Billing tab takes the focus.
    page.goto(reverse("purchase-tab", args=[purchase.pk, "billing"]))
    page.click(".action-list a >> nth=0")
    page.wait_for_selector("[role=dialog]")
    assert page.evaluate("document.activeElement.getAttribute('role')") == "dialog"
    found += violations(page)
    found += visit(page, reverse("purchase-refund", args=[purchase.pk]), "h1")
    found += visit(page, reverse("subscriptions"), "#subscription-results")
    found += visit(page, reverse("subscription", args=[sub.pk]), ".tab-body")
    found += visit(page, reverse("customers"), "table")
    found += visit(page, reverse("customer", args=[sub.customer_id]), "h1")
    found += visit(page, reverse("renewal-runs"), "h1")
    for report, _label in PAGES:
        found += visit(page, reverse("report", args=[report]), "#report-body")
    found += visit(page, reverse("notifications"), "h1")
    found += visit(page, reverse("settings"), "h1")
    assert found == []


SIDEWAYS = """() => document.documentElement.scrollWidth > window.innerWidth
  || [...document.querySelectorAll("body *")].some((e) => e.scrollWidth > e.clientWidth + 1
       && ["auto", "scroll"].includes(getComputedStyle(e).overflowX))"""


def scrolls_sideways(page) -> bool:
    """The page, or a box on it (a table in an overflow wrapper), scrolls sideways."""
    return page.evaluate(SIDEWAYS)


def test_checkout_and_portal_on_a_phone_have_no_violations_and_no_sideways_scroll(
    shoot, page, demo
):
    page.set_viewport_size(PHONE)
    customer = (
        demo.customers.filter(subscriptions__status="Active", purchases__items__isnull=False)
        .order_by("pk")
        .first()
    )
    invoice = customer.purchases.order_by("pk").first()
    pages = [
        (reverse("checkout", args=[demo.slug]), "form"),
        (reverse("portal-enter", args=[make_token(customer)]), "h1"),
        (reverse("portal-purchases"), "h1"),
        (reverse("portal-invoice", args=[invoice.pk]), "h1"),
        (reverse("portal-card"), "h1"),
        (reverse("portal-contact"), "h1"),
        (reverse("portal-order"), "h1"),
    ]
    found, sideways = [], []
    for url, ready in pages:
        found += visit(page, url, ready)
        if scrolls_sideways(page):
            sideways.append(url)
        if url == reverse("portal-purchases"):
            shoot(page, "portal-invoices-phone")
    # A confirmation: what will happen, on its own page.
    page.goto(reverse("portal"))
    page.click("main a[href*='/portal/subscriptions/'] >> nth=0")
    page.wait_for_selector("[role=dialog]")
    found += violations(page)
    sideways += [page.url] if scrolls_sideways(page) else []
    # Signed out, the link request and a broken link.
    page.click("text=Sign out")
    page.wait_for_url("**/portal/leave/**")
    for url in (reverse("portal-request-link", args=[demo.slug]), "/portal/enter/nonsense/"):
        found += visit(page, url, "h1")
        sideways += [url] if scrolls_sideways(page) else []
    assert found == []
    assert sideways == []
