"""SM 1.0 -> 2.0 migration of one client, for operators (docs/lifecycle.md):
``--dry-run`` prints what would change; without it the client is migrated,
with a progress bar over the migration's steps."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from commerce.models import Client
from subscriptions.errors import DomainError
from subscriptions.models import HistoryEntry
from subscriptions.services import Actor, migration

OPERATOR = Actor(HistoryEntry.ActorKind.SYSTEM, "operator (migrate_to_sm2)")
STEPS = ["history", "manual subscriptions", "items", "other subscriptions", "client"]


class Command(BaseCommand):
    help = "Migrate one client from Subscription Management 1.0 to 2.0 (or --dry-run)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--client", required=True, help="the client's slug")
        parser.add_argument("--dry-run", action="store_true", help="show what would change")
        parser.add_argument(
            "--invite-dormant",
            action="store_true",
            help="send one renewal invitation to each dormant subscription's customer",
        )

    def handle(
        self, *args: Any, client: str, dry_run: bool, invite_dormant: bool, **options: Any
    ) -> None:
        target = Client.objects.filter(slug=client).first()
        if target is None:
            raise CommandError(f"No client with slug {client!r}.")
        plan = migration.plan_sm2_migration(client=target)
        self.stdout.write(f"{target.name} (SM {target.sm_version}): {plan.total} to migrate")
        for change in plan.changes:
            ids = ", ".join(s.display_id for s in change.sample)
            self.stdout.write(f"  {change.before} -> {change.after}: {change.count}  (e.g. {ids})")
        if plan.dormant:
            ids = ", ".join(s.display_id for s in plan.dormant_sample)
            self.stdout.write(
                f"  of which dormant (billing date passed; into Grace from now): "
                f"{plan.dormant}  (e.g. {ids})"
            )
        if dry_run or not plan.total:
            return
        with tqdm(total=len(STEPS), unit="step", file=self.stderr._out) as bar:

            def step(name: str) -> None:
                bar.set_postfix_str(name)
                bar.update(1)

            try:
                result = migration.migrate_to_sm2(
                    client=target, actor=OPERATOR, progress=step, invite_dormant=invite_dormant
                )
            except DomainError as error:
                raise CommandError(error.reason) from error
        self.stdout.write(
            f"{result.migrated} subscriptions migrated ({result.manual} Manual, "
            f"{result.automatic} Automatic); {result.items_reactivated} items reactivated; "
            f"{result.dormant} dormant in Grace, {result.invited} invited; "
            f"{target.name} is on SM 2.0."
        )
