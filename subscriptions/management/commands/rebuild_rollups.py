"""Recompute the report rollups from the raw tables (docs/reports.md): after
a restore, a bulk import that bypassed the database, or to check them."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from commerce.models import Client
from subscriptions import rollups


class Command(BaseCommand):
    help = "Recompute the report rollups of one client (or all) from the raw tables."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--client", help="slug of one client (default: all)")

    def handle(self, *args: Any, client: str | None, **options: Any) -> None:
        clients = Client.objects.order_by("pk")
        if client:
            clients = clients.filter(slug=client)
            if not clients:
                raise CommandError(f"No client with slug {client!r}.")
        for one in clients:
            started = time.monotonic()
            counts = rollups.rebuild(one.pk)
            counted = ", ".join(f"{kind.lower()}s {n:,}" for kind, n in counts.items())
            took = time.monotonic() - started
            self.stdout.write(f"{one.slug}: counted {counted} in {took:.1f} s")
