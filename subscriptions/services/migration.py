"""SM 1.0 -> 2.0 migration of one client (docs/lifecycle.md).

* a subscription ``Deactivated`` with items ``AwaitingReinstate`` gets renewal
  type ``Manual``, becomes ``Active``, and those items ``Active`` (its other
  items keep their status);
* a *dormant* one — the same, but its billing date has already passed — is
  migrated the same way into ``Grace`` instead, its grace starting at the
  migration: a manual subscription due and unpaid, as a sweep would leave it,
  without a sweep sending thousands of e-mails at once. Its customer gets one
  renewal invitation only if the admin asks for it (``invite_dormant``);
* every other subscription gets renewal type ``Automatic``; statuses stay.

The dry run (``plan_sm2_migration``) counts each before -> after combination
and lists a few subscriptions of each. The migration itself
(``migrate_to_sm2``) is set-based, in one transaction, so it is all or
nothing: on PostgreSQL two statements (the manual subscriptions with their
items and history entries, then the rest with theirs) and one for the
client; elsewhere one ``INSERT … SELECT`` for the history entries, then an
``UPDATE`` each for the manual subscriptions, their items, the rest, and the
client. It sends no notifications and no e-mails. A client
already on 2.0 has nothing left to migrate, so running it twice changes
nothing the second time.

On PostgreSQL the transaction is REPEATABLE READ: if another change touches
one of the client's subscriptions while it runs, the migration fails as a
whole with a clear message (nothing changed) instead of writing history that
no longer matches the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet

from commerce.models import Client, SMVersion
from customers.models import CustomerEmail

from ..errors import ConcurrentChange, TransitionNotAllowed
from ..models import EventCode, ItemStatus, Subscription, SubscriptionItem, SubscriptionStatus
from ..notifications import outbox
from ..notifications.types import NotificationType
from .common import Actor, now_or

S, IS = SubscriptionStatus, ItemStatus
SAMPLE_SIZE = 5

MANUAL_SUMMARY = "Migrated to SM 2.0: renewal type Manual; awaiting items and subscription Active."
DORMANT_SUMMARY = (
    "Migrated to SM 2.0: renewal type Manual; awaiting items Active; the billing date had "
    "passed, so the subscription is in Grace from now."
)
AUTOMATIC_SUMMARY = "Migrated to SM 2.0: renewal type Automatic."


@dataclass(frozen=True)
class Change:
    """One before -> after combination of the dry run."""

    status_before: str
    awaiting_before: bool
    count: int
    sample: list[Subscription] = field(default_factory=list)

    @property
    def manual(self) -> bool:
        return self.status_before == S.DEACTIVATED and self.awaiting_before

    @property
    def before(self) -> str:
        return f"{self.status_before}" + (" – AwaitingReinstate" if self.awaiting_before else "")

    @property
    def after(self) -> str:
        if self.manual:
            return "Active – Active, Manual"
        return f"{self.status_before}, Automatic"


@dataclass(frozen=True)
class MigrationPlan:
    client: Client
    changes: list[Change]
    # Manual-to-be whose billing date has passed (they start in Grace).
    dormant: int = 0
    dormant_sample: list[Subscription] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(c.count for c in self.changes)

    @property
    def manual(self) -> int:
        return sum(c.count for c in self.changes if c.manual)


@dataclass(frozen=True)
class MigrationResult:
    migrated: int
    manual: int
    automatic: int
    items_reactivated: int
    dormant: int = 0
    invited: int = 0


def _to_migrate(client: Client) -> tuple[object, object]:
    awaiting = SubscriptionItem.objects.filter(
        subscription=OuterRef("pk"), status=IS.AWAITING_REINSTATE
    )
    scope = Subscription.objects.filter(client=client, sm_version=SMVersion.V1)
    return scope, Exists(awaiting)


def plan_sm2_migration(*, client: Client, sample_size: int = SAMPLE_SIZE) -> MigrationPlan:
    """The dry run: how many subscriptions change and how; changes nothing."""
    scope, awaiting = _to_migrate(client)
    rows = (
        scope.annotate(awaiting=awaiting)  # type: ignore[attr-defined]
        .values("status", "awaiting")
        .annotate(count=Count("id"))
        .order_by("status", "awaiting")
    )
    changes = []
    for row in rows:
        sample = list(
            scope.annotate(awaiting=awaiting)  # type: ignore[attr-defined]
            .filter(status=row["status"], awaiting=row["awaiting"])
            .select_related("customer")
            .order_by("pk")[:sample_size]
        )
        changes.append(Change(row["status"], row["awaiting"], row["count"], sample))
    dormant = _dormant(client, now_or(None, client))
    return MigrationPlan(
        client,
        changes,
        dormant=dormant.count(),
        dormant_sample=list(dormant.select_related("customer").order_by("pk")[:sample_size]),
    )


def _dormant(client: Client, at: datetime) -> QuerySet[Subscription]:
    """SM 1.0 subscriptions awaiting the customer's confirmation whose billing
    date has passed."""
    scope, awaiting = _to_migrate(client)
    return scope.filter(awaiting, status=S.DEACTIVATED, next_billing_date__lt=at)  # type: ignore[attr-defined]


def migrate_to_sm2(
    *,
    client: Client,
    actor: Actor,
    at: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    invite_dormant: bool = False,
) -> MigrationResult:
    """Move the client and all its subscriptions to SM 2.0 (see the module
    doc). A client with nothing left on 1.0 gets zeros back and no change.
    ``progress`` is told the name of each step as it starts;
    ``invite_dormant`` sends each dormant subscription's customer one renewal
    invitation (by default nobody is e-mailed)."""
    at = now_or(at, client)
    step = progress or (lambda _: None)
    top_level = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if top_level and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            locked = Client.objects.select_for_update().get(pk=client.pk)
            if locked.sm_version == Client.SMVersion.V2 and not _left_on_v1(locked):
                return MigrationResult(0, 0, 0, 0)
            dormant = list(_dormant(locked, at).values_list("pk", flat=True))
            result = _migrate(locked, actor=actor, at=at, step=step)
            invited = _invite(dormant, at=at) if invite_dormant else 0
            result = replace(result, dormant=len(dormant), invited=invited)
    except DatabaseError as error:
        if "serializ" in str(error).lower() or "concurrent update" in str(error).lower():
            raise ConcurrentChange(
                "Some subscriptions changed while the migration ran; nothing was migrated. "
                "Run it again."
            ) from error
        raise
    client.sm_version = Client.SMVersion.V2
    return result


def _invite(ids: list[int], *, at: datetime) -> int:
    """One renewal invitation per subscription (e-mails only: nothing changed
    that a webhook receiver has not been told by the migration's absence of
    notifications)."""
    mails = []
    for sub in Subscription.objects.filter(pk__in=ids).select_related("client", "customer"):
        mail = outbox.email_for(
            NotificationType.ON_GRACE,
            subscription=sub,
            purchase=None,
            at=at,
            kind=CustomerEmail.Kind.INVITATION,
        )
        if mail is not None:
            mails.append(mail)
    outbox.write([], mails)
    return len(mails)


def _left_on_v1(client: Client) -> bool:
    return Subscription.objects.filter(client=client, sm_version=SMVersion.V1).exists()


def _migrate(
    client: Client, *, actor: Actor, at: datetime, step: Callable[[str], None]
) -> MigrationResult:
    params = {
        "client": client.pk,
        # As the ORM would write it (SQLite keeps naive UTC text).
        "at": connection.ops.adapt_datetimefield_value(at),
        "event_code": EventCode.MIGRATE_SM2.value,
        "actor_kind": actor.kind,
        "actor_label": actor.label,
        "staff_user": actor.user.pk if actor.user is not None else None,
        "manual_summary": MANUAL_SUMMARY,
        "dormant_summary": DORMANT_SUMMARY,
        "automatic_summary": AUTOMATIC_SUMMARY,
    }
    sql = _Sql(connection.vendor)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and USE_CTES:
            step("manual subscriptions")
            cursor.execute(sql.MANUAL_WITH_HISTORY, params)
            manual, items, manual_history = cursor.fetchone()
            step("other subscriptions")
            cursor.execute(sql.AUTOMATIC_WITH_HISTORY, params)
            automatic, automatic_history = cursor.fetchone()
            migrated = manual_history + automatic_history
        else:
            step("history")
            cursor.execute(sql.history(), params)
            migrated = cursor.rowcount
            step("manual subscriptions")
            cursor.execute(sql.MANUAL, params)
            manual = cursor.rowcount
            cursor.execute(sql.ITEMS, params)
            items = cursor.rowcount
            step("other subscriptions")
            cursor.execute(sql.AUTOMATIC, params)
            automatic = cursor.rowcount
        step("client")
        cursor.execute(
            "UPDATE commerce_client SET sm_version = '2.0' WHERE id = %(client)s", params
        )
    if manual + automatic != migrated:
        raise TransitionNotAllowed(
            "The subscriptions changed while the migration ran; nothing was migrated."
        )
    return MigrationResult(migrated, manual, automatic, items)


# PostgreSQL: each group's update and its history entries in one statement
# (data-modifying CTEs): one pass over each group's subscriptions, the history
# rows from the update's RETURNING. False runs the portable statements
# instead (the tests run both on PostgreSQL).
USE_CTES = True


class _Sql:
    """The statements, with the JSON functions of the database at hand."""

    # Which SM 1.0 subscriptions become Manual: Deactivated with an item
    # awaiting reinstatement. ``s`` is the subscription row.
    IS_MANUAL = (
        "s.status = 'Deactivated' AND EXISTS (SELECT 1 FROM subscriptions_subscriptionitem i "
        "WHERE i.subscription_id = s.id AND i.status = 'AwaitingReinstate')"
    )

    AFTER_STATUS = "CASE WHEN i.status = 'AwaitingReinstate' THEN 'Active' ELSE i.status END"
    # What each group's subscriptions become (``s`` is the row), and the
    # history entry's columns and fixed values; shared by both statement sets.
    # Dormant (billing date passed): Grace from now, not Active.
    MANUAL_STATUS = "CASE WHEN {0}.next_billing_date < %(at)s THEN 'Grace' ELSE 'Active' END"
    MANUAL_SUMMARY = (
        "CASE WHEN {0}.next_billing_date < %(at)s THEN %(dormant_summary)s "
        "ELSE %(manual_summary)s END"
    )
    MANUAL_SET = (
        "sm_version = '2.0', renewal_type = 'Manual', status = "
        + MANUAL_STATUS.format("s")
        + ", status_changed_at = %(at)s, end_date = NULL, row_version = s.row_version + 1"
    )
    AUTOMATIC_SET = (
        "sm_version = '2.0', renewal_type = 'Automatic', row_version = s.row_version + 1"
    )
    HISTORY_INTO = (
        "INSERT INTO subscriptions_historyentry (client_id, subscription_id, created_at, "
        "actor_kind, actor_label, staff_user_id, event_code, summary, before, after) "
    )
    HISTORY_WHO = "%(at)s, %(actor_kind)s, %(actor_label)s, %(staff_user)s, %(event_code)s"

    def __init__(self, vendor: str) -> None:
        pg = vendor == "postgresql"
        self.obj = "jsonb_build_object" if pg else "json_object"
        self.items_before = (
            "(SELECT jsonb_object_agg(i.running_no::text, i.status) "
            if pg
            else "(SELECT json(json_group_object(CAST(i.running_no AS TEXT), i.status)) "
        ) + "FROM subscriptions_subscriptionitem i WHERE i.subscription_id = s.id)"
        after_status = self.AFTER_STATUS
        self.items_after = (
            f"(SELECT jsonb_object_agg(i.running_no::text, {after_status}) "
            if pg
            else f"(SELECT json(json_group_object(CAST(i.running_no AS TEXT), {after_status})) "
        ) + "FROM subscriptions_subscriptionitem i WHERE i.subscription_id = s.id)"
        self.MANUAL = (
            f"UPDATE subscriptions_subscription AS s SET {self.MANUAL_SET} "
            f"WHERE s.client_id = %(client)s AND s.sm_version = '1.0' AND {self.IS_MANUAL}"
        )
        # The items of the subscriptions just made Manual (marked by their
        # status_changed_at); no other SM 2.0 subscription has such items.
        self.ITEMS = (
            "UPDATE subscriptions_subscriptionitem SET status = 'Active', "
            "deactivation_date = NULL WHERE status = 'AwaitingReinstate' AND subscription_id IN "
            "(SELECT id FROM subscriptions_subscription WHERE client_id = %(client)s "
            "AND renewal_type = 'Manual' AND status_changed_at = %(at)s)"
        )
        self.AUTOMATIC = (
            f"UPDATE subscriptions_subscription AS s SET {self.AUTOMATIC_SET} "
            "WHERE s.client_id = %(client)s AND s.sm_version = '1.0'"
        )

    @property
    def MANUAL_WITH_HISTORY(self) -> str:  # noqa: N802 - a statement, like the others
        return (
            "WITH manual AS MATERIALIZED (SELECT s.id, s.client_id, s.status, "
            "s.next_billing_date, "
            "j.items_before, j.items_after FROM subscriptions_subscription s, LATERAL ("
            "SELECT jsonb_object_agg(i.running_no::text, i.status) AS items_before, "
            f"jsonb_object_agg(i.running_no::text, {self.AFTER_STATUS}) AS items_after "
            "FROM subscriptions_subscriptionitem i WHERE i.subscription_id = s.id) j "
            "WHERE s.client_id = %(client)s "
            f"AND s.sm_version = '1.0' AND {self.IS_MANUAL}), "
            f"subs AS (UPDATE subscriptions_subscription s SET {self.MANUAL_SET} FROM manual m "
            "WHERE s.id = m.id RETURNING s.id), "
            "items AS (UPDATE subscriptions_subscriptionitem i SET status = 'Active', "
            "deactivation_date = NULL FROM manual m WHERE i.subscription_id = m.id "
            "AND i.status = 'AwaitingReinstate' RETURNING i.id), "
            f"history AS ({self.HISTORY_INTO}"
            f"SELECT m.client_id, m.id, {self.HISTORY_WHO}, {self.MANUAL_SUMMARY.format('m')}, "
            "jsonb_build_object('status', m.status, 'renewal_type', NULL, 'items', "
            f"m.items_before), jsonb_build_object('status', {self.MANUAL_STATUS.format('m')}, "
            "'renewal_type', 'Manual', 'items', m.items_after) FROM manual m RETURNING id) "
            "SELECT (SELECT count(*) FROM subs), (SELECT count(*) FROM items), "
            "(SELECT count(*) FROM history)"
        )

    @property
    def AUTOMATIC_WITH_HISTORY(self) -> str:  # noqa: N802 - a statement, like the others
        return (
            f"WITH subs AS (UPDATE subscriptions_subscription s SET {self.AUTOMATIC_SET} "
            "WHERE s.client_id = %(client)s AND s.sm_version = '1.0' RETURNING s.id), "
            f"history AS ({self.HISTORY_INTO}SELECT %(client)s, id, {self.HISTORY_WHO}, "
            "%(automatic_summary)s, '{\"renewal_type\": null}'::jsonb, "
            '\'{"renewal_type": "Automatic"}\'::jsonb FROM subs RETURNING id) '
            "SELECT (SELECT count(*) FROM subs), (SELECT count(*) FROM history)"
        )

    def history(self) -> str:
        o = self.obj
        manual = self.IS_MANUAL
        before = (
            f"CASE WHEN {manual} THEN {o}('status', s.status, 'renewal_type', NULL, "
            f"'items', {self.items_before}) ELSE {o}('renewal_type', NULL) END"
        )
        after = (
            f"CASE WHEN {manual} THEN {o}('status', {self.MANUAL_STATUS.format('s')}, "
            f"'renewal_type', 'Manual', 'items', {self.items_after}) "
            f"ELSE {o}('renewal_type', 'Automatic') END"
        )
        return (
            f"{self.HISTORY_INTO}SELECT s.client_id, s.id, {self.HISTORY_WHO}, "
            f"CASE WHEN {manual} THEN {self.MANUAL_SUMMARY.format('s')} "
            f"ELSE %(automatic_summary)s END, {before}, {after} "
            "FROM subscriptions_subscription s "
            "WHERE s.client_id = %(client)s AND s.sm_version = '1.0'"
        )
