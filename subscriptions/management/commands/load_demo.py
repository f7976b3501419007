"""Demo data created through the lifecycle services, so every subscription
has real purchases, history and notifications."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db.models import Count
from django.utils import timezone

from commerce.gateway import CARD_APPROVED, CARD_DECLINES_AFTER_FIRST
from commerce.models import (
    ApiCredential,
    Client,
    Product,
    Purchase,
    RefundReason,
    SMVersion,
    StaffMembership,
)
from customers.portal import link_for
from subscriptions import services
from subscriptions.models import Subscription, SubscriptionStatus

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Linus"]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Torvalds",
]
ROLES = ["viewer", "support", "admin"]


DEMO_SLUGS = ["northwind", "contoso", "sandbox"]


class Command(BaseCommand):
    help = "Create two demo clients (SM 1.0 and SM 2.0) with staff, customers and subscriptions."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--customers", type=int, default=150, help="customers per client")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--summary-only", action="store_true", help="print the logins and links, load nothing"
        )

    def handle(
        self, *args: Any, customers: int, seed: int, summary_only: bool, **options: Any
    ) -> None:
        if summary_only:
            self._print_summary()
            return
        if Client.objects.filter(slug__in=["northwind", "contoso"]).exists():
            self.stdout.write("Demo data is already loaded.")
        else:
            rng = random.Random(seed)
            now = timezone.now()
            classic, modern = _clients()
            for client in (classic, modern):  # demo secrets, printed below
                ApiCredential.objects.create(
                    client=client,
                    label="Demo integration",
                    key_id=f"ak_demo_{client.slug}",
                    secret_sha256=ApiCredential.hash(f"{client.slug}-api-secret"),
                )
            for client in (classic, modern):
                for no in range(customers):
                    _one_customer(client, no, rng, now)
            _refunds(modern)
        if not Client.objects.filter(slug="sandbox").exists():
            _sandbox()
        self._print_summary()

    def _print_summary(self) -> None:
        counts = (
            Subscription.objects.values("client__name").annotate(n=Count("id")).order_by("client")
        )
        self.stdout.write(
            "Demo data: "
            + ", ".join(f"{row['client__name']} {row['n']} subscriptions" for row in counts)
        )
        self.stdout.write("\nSign in at " + settings.SITE_URL + "/login/ (username / password):")
        self.stdout.write("  operator / operator-pass   Django admin (/admin/), all clients")
        for m in StaffMembership.objects.select_related("user", "client").order_by(
            "client", "role"
        ):
            self.stdout.write(f"  {m.user.username} / {m.user.username}-pass   {m.client.name}")
        self.stdout.write("\nSubscription API (HTTP Basic, docs at /api/docs/):")
        for c in ApiCredential.objects.filter(key_id__startswith="ak_demo_").select_related(
            "client"
        ):
            self.stdout.write(f"  {c.key_id} / {c.client.slug}-api-secret   {c.client.name}")
        self.stdout.write("\nCustomer portal, as a link in a customer e-mail:")
        for client in Client.objects.filter(slug__in=DEMO_SLUGS).order_by("name"):
            customer = client.customers.filter(subscriptions__isnull=False).order_by("pk").first()
            if customer is not None:
                self.stdout.write(f"  {client.name} ({customer.email}): {link_for(customer)}")
        self.stdout.write("\nCheckout pages:")
        for client in Client.objects.filter(slug__in=DEMO_SLUGS).order_by("name"):
            self.stdout.write(f"  {client.name}: {settings.SITE_URL}/checkout/{client.slug}/")


def _clients() -> tuple[Client, Client]:
    classic = Client.objects.create(
        name="Northwind Classic", slug="northwind", sm_version=SMVersion.V1
    )
    modern = Client.objects.create(
        name="Contoso Cloud", slug="contoso", sm_version=SMVersion.V2, vat_rate=Decimal("19.00")
    )
    Product.objects.bulk_create(
        [
            Product(client=classic, name="Backup Pro (automatic renewal)", price=Decimal("9.99")),
            Product(
                client=classic,
                name="Backup Pro (manual renewal)",
                price=Decimal("9.99"),
                renewal_mode=Product.RenewalMode.MANUAL,
                is_one_time_rebilling=True,
            ),
            Product(
                client=classic,
                name="Backup Pro yearly (confirm first year)",
                price=Decimal("99.00"),
                initial_interval_months=12,
                interval_months=12,
                renewal_mode=Product.RenewalMode.MANUAL,
                is_one_time_rebilling=False,
            ),
            Product(client=classic, name="Extra storage 100 GB", price=Decimal("2.50")),
            Product(client=modern, name="Cloud Starter", price=Decimal("12.00"), currency="USD"),
            Product(
                client=modern,
                name="Cloud Team (yearly)",
                price=Decimal("240.00"),
                currency="USD",
                initial_interval_months=12,
                interval_months=12,
            ),
            Product(client=modern, name="Priority support", price=Decimal("5.00"), currency="USD"),
            Product(
                client=modern,
                name="Six-month course",
                price=Decimal("30.00"),
                currency="USD",
                recurrence_count=3,
            ),
            Product(
                client=modern,
                name="Onboarding session",
                price=Decimal("49.00"),
                currency="USD",
                is_subscription=False,
            ),
        ]
    )
    user_model = get_user_model()
    if not user_model.objects.filter(username="operator").exists():
        user_model.objects.create_superuser("operator", "operator@example.com", "operator-pass")
    for client in (classic, modern):
        for role in ROLES:
            name = f"{client.slug}-{role}"
            user = user_model.objects.create_user(name, f"{name}@example.com", f"{name}-pass")
            StaffMembership.objects.create(user=user, client=client, role=role)
    return classic, modern


def _sandbox() -> None:
    """An SM 2.0 sandbox client with a test clock and a few subscriptions
    that renew, decline and wait for payment as the clock is advanced from
    Settings (docs/back-office.md); buy more at /checkout/sandbox/."""
    sandbox = Client.objects.create(
        name="Sandbox Shop", slug="sandbox", sm_version=SMVersion.V2, is_sandbox=True
    )
    Product.objects.create(client=sandbox, name="Sandbox monthly", price=Decimal("10.00"))
    Product.objects.create(
        client=sandbox,
        name="Sandbox yearly",
        price=Decimal("100.00"),
        initial_interval_months=12,
        interval_months=12,
    )
    user_model = get_user_model()
    for role in ROLES:
        name = f"sandbox-{role}"
        user = user_model.objects.create_user(name, f"{name}@example.com", f"{name}-pass")
        StaffMembership.objects.create(user=user, client=sandbox, role=role)
    monthly, yearly = sandbox.products.order_by("id")
    now = sandbox.now()
    # (customer no, days ago, products, card or invoice, automatic renewal)
    for no, days, products, card, auto in [
        (0, 3, [monthly], CARD_APPROVED, True),
        (1, 12, [monthly, yearly], CARD_APPROVED, True),
        (2, 20, [monthly], CARD_DECLINES_AFTER_FIRST, True),
        (3, 25, [monthly], CARD_APPROVED, False),
        (4, 8, [yearly], None, True),
    ]:
        services.sign_up(
            client=sandbox,
            customer=services.CustomerInput(
                email=f"tester{no}@example.com", first_name=FIRST[no], last_name="Tester"
            ),
            lines=[services.Line(p) for p in products],
            payment=services.CardInput(card, 12, 2030) if card else services.InvoiceInput(),
            confirm_auto_renewal=auto,
            actor=services.SYSTEM,
            at=now - timedelta(days=days),
        )


def _refunds(client: Client) -> None:
    """A partial refund (with its credit note) on the first customer's first
    paid purchase, so that the Payments tab and the portal show documents."""
    purchase = (
        Purchase.objects.filter(client=client, status=Purchase.Status.PAID)
        .order_by("customer_id", "created_at")
        .first()
    )
    if purchase is not None:
        services.refund(
            purchase=purchase,
            amount=min(purchase.total, Decimal("5.00")),
            reason=RefundReason.GOODWILL,
            note="Service outage on the 3rd",
            actor=services.SYSTEM,
            at=purchase.created_at + timedelta(days=2),
        )


def _one_customer(client: Client, no: int, rng: random.Random, now: datetime) -> None:
    """One customer; ``no`` picks a scenario so that every status appears."""
    products = list(client.products.order_by("id"))
    scenario = no % 20
    email = f"{FIRST[no % 10].lower()}.{LAST[(no // 10) % 10].lower()}{no}@example.com"
    customer = services.CustomerInput(
        email=email, first_name=FIRST[no % 10], last_name=LAST[(no // 10) % 10]
    )
    start = now - timedelta(days=rng.randint(5, 150), hours=rng.randint(0, 23))
    card = CARD_APPROVED
    if scenario in (3, 4, 5):  # declined renewal 3, 10 or 20 days ago
        card = CARD_DECLINES_AFTER_FIRST
        start = now - relativedelta(months=1) - timedelta(days=(3, 10, 20)[scenario - 3])
    lines = _lines(client, products, scenario, rng)
    payment: services.CardInput | services.InvoiceInput = services.CardInput(card, 12, 2030)
    if scenario in (6, 7):
        payment = services.InvoiceInput()
    result = services.sign_up(
        client=client,
        customer=customer,
        lines=lines,
        payment=payment,
        confirm_auto_renewal=scenario not in (8, 9),
        actor=services.SYSTEM,
        at=start,
    )
    actor = services.SYSTEM
    for sub in result.subscriptions:
        when = start + timedelta(days=1)
        if scenario == 7:
            services.mark_purchase_paid(purchase=result.purchase, actor=actor, at=when)
        elif scenario == 10:
            services.deactivate_items(subscription=sub, running_nos=[1], actor=actor, at=when)
        elif scenario == 11 and client.sm_version == SMVersion.V1:
            services.await_reinstate(subscription=sub, actor=actor, at=when)
        elif scenario == 12:
            services.deactivate_items(
                subscription=sub,
                allow_reinstate=False,
                actor=actor,
                running_nos=[i.running_no for i in sub.items.all()],
                at=when,
            )
        elif scenario == 13:
            services.hand_over_to_client(subscription=sub, actor=actor, at=when)
        elif scenario == 14 and sub.items.count() > 1:
            services.remove_item(subscription=sub, running_no=2, actor=actor, at=when)
        elif scenario == 15 and client.sm_version == SMVersion.V1:
            services.reinstate_items(subscription=sub, running_nos=[1], actor=actor, at=when)
        if scenario != 6:
            _simulate_until(sub, now)


def _lines(
    client: Client, products: list[Product], scenario: int, rng: random.Random
) -> list[services.Line]:
    if client.sm_version == SMVersion.V1:
        auto, manual, yearly_manual, storage = products
        main = {1: manual, 2: yearly_manual, 11: auto, 15: manual}.get(scenario, auto)
        if scenario == 14 or rng.random() < 0.2:
            return [services.Line(main), services.Line(storage)]
        return [services.Line(main)]
    starter, team, support, course, onboarding = products
    main = {2: team, 16: course, 17: course}.get(scenario, starter)
    lines = [services.Line(main, rng.randint(1, 5) if main == team else 1)]
    if scenario == 14 or (main == starter and rng.random() < 0.3):
        lines.append(services.Line(support))
    if scenario == 18:
        lines.append(services.Line(onboarding))
    return lines


def _simulate_until(sub: Subscription, now: datetime) -> None:
    """Let the schedule catch up to ``now``: renewals at each billing date,
    dunning as grace and hold expire."""
    for _ in range(40):
        sub = Subscription.objects.select_related("client").get(pk=sub.pk)
        if sub.status == SubscriptionStatus.ACTIVE and sub.next_billing_date <= now:
            services.renew_due(subscription=sub, at=sub.next_billing_date)
        elif sub.status in (SubscriptionStatus.GRACE, SubscriptionStatus.HOLD):
            days = (
                sub.client.grace_period_days
                if sub.status == SubscriptionStatus.GRACE
                else sub.client.hold_days
            )
            expiry = sub.status_changed_at + timedelta(days=days)
            if expiry > now:
                break
            services.advance_dunning(subscription=sub, at=expiry)
        else:
            break
