"""One renewal sweep in the foreground, with a progress bar (docs/renewals.md):
for operators, cron-less setups, and catching up after an outage."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from commerce.models import Client
from subscriptions import renewals


class Command(BaseCommand):
    help = "Run one renewal sweep now (charges, reminders, dunning) and show its progress."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--client", help="slug of one client (default: all)")
        parser.add_argument("--as-of", help="treat this RFC 3339 time as now (catching up)")

    def handle(self, *args: Any, client: str | None, as_of: str | None, **options: Any) -> None:
        scope = None
        if client:
            scope = Client.objects.filter(slug=client).first()
            if scope is None:
                raise CommandError(f"No client with slug {client!r}.")
        moment = parse_datetime(as_of) if as_of else timezone.now()
        if moment is None or timezone.is_naive(moment):
            raise CommandError("--as-of needs a time with a zone, e.g. 2026-12-01T00:00:00Z")
        work = renewals.start_sweep(as_of=moment, client=scope, trigger="command")
        totals: Counter[str] = Counter()
        with tqdm(total=len(work), unit="batch", file=self.stderr._out, disable=not work) as bar:
            for item in work:
                outcome = renewals.run_in_process(item)
                totals.update(outcome.counts)
                bar.update(1)
                bar.set_postfix(charged=totals["charged"], declined=totals["declined"])
        self.stdout.write(
            f"Swept {len({w.run.pk for w in work})} client(s) in {len(work)} batch(es): "
            f"{totals['charged']} charged, {totals['declined']} declined, "
            f"{totals['error']} errors, {totals['skipped']} skipped, "
            f"{totals['reminded']} reminders, {totals['dunning']} dunning moves."
        )
