"""Paging that stays fast at a million rows.

No COUNT(*) (the page bar shows previous/next instead of a total), and a
deferred join: the requested page's ids are found first with an index-only
scan, then only those rows are fetched with their related and prefetched objects. A plain
OFFSET 250,000 would fetch and throw away every skipped row.

Lists ordered by id (the subscription list's default) also page by seeking
(docs/back-office.md): the Next link carries the last id shown
(``after=…``), Previous the first (``before=…``), so page 10,000 reached
that way reads 26 index entries instead of skipping 250,000. A typed
``?page=N`` (no cursor), another order, or a cursor that is not a number
pages by offset as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import EmptyPage, Page
from django.db.models import QuerySet
from django_tables2.paginators import LazyPaginator

# Further than any list goes (25 a page: 250 million rows): a page number
# beyond it is treated as past the end, not sent to the database.
MAX_PAGE = 10_000_000


# The query parameters of the cursors (after the table's prefix).
AFTER, BEFORE = "after", "before"


@dataclass(frozen=True)
class Cursor:
    """Where a seek page starts: after (Next) or before (Previous) an id."""

    direction: str  # AFTER or BEFORE
    pk: int


class SeekPage(Page):
    """A page of a list ordered by id. Whether there are pages before and
    after it is known from the rows read, not from its number; ``first_pk``
    and ``last_pk`` make the Previous and Next links' cursors."""

    def __init__(
        self, rows: list[Any], number: int, paginator: Any, *, previous: bool, following: bool
    ) -> None:
        super().__init__(rows, number, paginator)
        self._previous, self._following = previous, following
        self.first_pk = rows[0].pk if rows else None
        self.last_pk = rows[-1].pk if rows else None

    def has_previous(self) -> bool:
        return self._previous

    def has_next(self) -> bool:
        return self._following

    def previous_page_number(self) -> int:
        return max(self.number - 1, 1)

    def next_page_number(self) -> int:
        return self.number + 1


class DeferredJoinPaginator(LazyPaginator):
    def __init__(
        self, object_list: Any, per_page: int, cursor: Cursor | None = None, **kwargs: Any
    ) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.cursor = cursor

    def page(self, number: Any) -> Page:
        number = self.validate_number(number or 1)
        if number > MAX_PAGE:
            raise EmptyPage("That page contains no results")
        queryset = _queryset(self.object_list)
        descending = _by_id(queryset)
        if descending is not None and self.cursor is not None:
            return self._seek(queryset, number, descending, self.cursor)
        bottom = (number - 1) * self.per_page
        wanted = self.per_page + 1  # one more tells whether a page lies beyond
        ids = list(queryset.values_list("pk", flat=True)[bottom : bottom + wanted])
        if not ids and number != 1:
            raise EmptyPage("That page contains no results")
        self._num_pages = number + (1 if len(ids) > self.per_page else 0)
        ids = ids[: self.per_page]
        rows = self._rows(queryset, ids)
        if descending is None:
            return Page(rows, number, self)
        return SeekPage(rows, number, self, previous=number > 1, following=self._num_pages > number)

    def _seek(self, queryset: Any, number: int, descending: bool, cursor: Cursor) -> Page:
        """The page after or before ``cursor``: ids beyond it, in order."""
        wanted = self.per_page + 1  # one more tells whether a page lies beyond
        forward = cursor.direction == AFTER
        # Rows after the cursor in the list's order have smaller ids when it
        # is descending; before it, larger ones, read nearest first.
        beyond = {"pk__lt" if forward == descending else "pk__gt": cursor.pk}
        seek = queryset.filter(**beyond)
        if not forward:
            seek = seek.reverse()
        ids = list(seek.values_list("pk", flat=True)[:wanted])
        more = len(ids) > self.per_page
        ids = ids[: self.per_page]
        if not forward:
            ids.reverse()
        rows = self._rows(queryset, ids)
        if forward:
            return SeekPage(rows, number, self, previous=True, following=more)
        return SeekPage(rows, number, self, previous=more, following=True)

    def _rows(self, queryset: Any, ids: list[Any]) -> list[Any]:
        """The rows of ``ids`` with their related and prefetched objects, in that order."""
        rows = {
            row.pk: row
            for row in queryset.model._default_manager.filter(pk__in=ids)
            .select_related(*_related(queryset))
            .prefetch_related(*queryset._prefetch_related_lookups)
        }
        return [rows[pk] for pk in ids]


def _by_id(queryset: Any) -> bool | None:
    """Whether the list is ordered by id alone: True descending, False
    ascending, None for any other order (those page by offset)."""
    order = tuple(queryset.query.order_by)
    if order in (("-pk",), ("-id",)):
        return True
    if order in (("pk",), ("id",)):
        return False
    return None


def _queryset(rows: Any) -> Any:
    """django-tables2 hands over BoundRows -> TableQuerysetData -> QuerySet."""
    while not isinstance(rows, QuerySet):
        rows = rows.data
    return rows


def _related(queryset: Any) -> list[str]:
    selected = queryset.query.select_related
    return list(selected) if isinstance(selected, dict) else []


def paginate(request: Any, table: Any, per_page: int = 25) -> None:
    """Sort and page ``table`` from the request's query string (with its
    cursor, if any: ``after`` / ``before``, after the table's prefix)."""
    from django_tables2 import RequestConfig

    table.after_field, table.before_field = table.prefix + AFTER, table.prefix + BEFORE
    RequestConfig(
        request,
        paginate={
            "per_page": per_page,
            "paginator_class": DeferredJoinPaginator,
            "cursor": cursor_of(request.GET, table.after_field, table.before_field),
        },
    ).configure(table)


def cursor_of(params: Any, after: str, before: str) -> Cursor | None:
    """The cursor in the query string; none if absent or not a number."""
    for direction, name in ((AFTER, after), (BEFORE, before)):
        value = params.get(name, "")
        if value.isdigit() and len(value) < 19:  # within a bigint
            return Cursor(direction, int(value))
    return None
