"""Lists ordered by id page by seeking (docs/back-office.md): Next and
Previous carry the id they continue from, so a deep page reads only its own
rows and a row added meanwhile neither repeats nor hides one."""

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import sign_up


def shown(response) -> list[int]:
    return [row.pk for row in response.context["table"].page.object_list]


def link(response, label: str) -> str | None:
    """The pager's Next or Previous link."""
    text = {"Next": "Next ›", "Previous": "‹ Previous"}[label]
    found = re.search(rf'<a href="([^"]*)">{text}</a>', response.content.decode())
    return html.unescape(found.group(1)) if found else None


@pytest.fixture
def many(sm2, monthly):
    return [sign_up(sm2, monthly, email=f"s{n}@example.com").subscriptions[0].pk for n in range(55)]


def test_next_and_previous_show_the_pages_in_order(login, sm2, many):
    staff = login(sm2, "viewer")
    newest_first = sorted(many, reverse=True)
    first = staff.get("/subscriptions/")
    assert shown(first) == newest_first[:25] and link(first, "Previous") is None
    assert link(first, "Next") == f"?page=2&after={newest_first[24]}"
    second = staff.get("/subscriptions/" + link(first, "Next"))
    assert shown(second) == newest_first[25:50]
    third = staff.get("/subscriptions/" + link(second, "Next"))
    assert shown(third) == newest_first[50:] and link(third, "Next") is None
    assert "Page 3" in third.content.decode()
    back = staff.get("/subscriptions/" + link(third, "Previous"))
    assert shown(back) == newest_first[25:50]
    assert link(back, "Previous").endswith(f"before={newest_first[25]}")
    start = staff.get("/subscriptions/" + link(back, "Previous"))
    assert shown(start) == newest_first[:25] and link(start, "Previous") is None
    # Typed page numbers still work, by offset: the same rows.
    assert shown(staff.get("/subscriptions/", {"page": 2})) == newest_first[25:50]


def test_next_continues_after_the_last_row_shown_when_rows_are_added(login, sm2, monthly, many):
    staff = login(sm2, "viewer")
    first = staff.get("/subscriptions/")
    added = sign_up(sm2, monthly, email="late@example.com").subscriptions[0].pk
    second = staff.get("/subscriptions/" + link(first, "Next"))
    assert shown(second) == sorted(many, reverse=True)[25:50]  # nothing shown twice
    assert added in shown(staff.get("/subscriptions/"))


def test_a_page_reached_by_next_reads_no_skipped_rows(login, sm2, many):
    staff = login(sm2, "viewer")
    nxt = link(staff.get("/subscriptions/"), "Next")
    with CaptureQueriesContext(connection) as seek:
        staff.get("/subscriptions/" + nxt)
    with CaptureQueriesContext(connection) as typed:
        staff.get("/subscriptions/", {"page": 2})
    assert not [q for q in seek.captured_queries if "OFFSET" in q["sql"]]
    assert [q for q in typed.captured_queries if "OFFSET" in q["sql"]]


def test_filters_and_other_orders_keep_working_with_a_cursor(login, sm2, many):
    staff = login(sm2, "viewer")
    newest_first = sorted(many, reverse=True)
    after = newest_first[24]
    # Not a number: ignored, page 2 by offset.
    assert shown(staff.get("/subscriptions/", {"page": 2, "after": "x1"})) == newest_first[25:50]
    # Another order pages by offset; the cursor (made for the id order) is ignored.
    by_email = shown(staff.get("/subscriptions/", {"sort": "customer", "page": 2}))
    assert shown(staff.get("/subscriptions/", {"sort": "customer", "page": 2, "after": after})) == (
        by_email
    )
    # A sort header drops the cursor; a filter applies to the seek page too.
    page = staff.get("/subscriptions/", {"page": 2, "after": after})
    sort_links = re.findall(r'href="(\?[^"]*sort=[^"]*)"', page.content.decode())
    assert sort_links and not [h for h in sort_links if "after" in h]
    filtered = staff.get("/subscriptions/", {"page": 2, "after": after, "status": "Active"})
    assert shown(filtered) == newest_first[25:50]
    assert shown(staff.get("/subscriptions/", {"page": 2, "after": after, "status": "Grace"})) == []
