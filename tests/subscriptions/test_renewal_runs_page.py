from datetime import UTC, datetime

from subscriptions import renewals
from subscriptions.models import RenewalRun
from tests.conftest import subscribe
from tests.factories import ClientFactory, ProductFactory

FEB28 = datetime(2026, 2, 28, 12, tzinfo=UTC)


def test_runs_page_shows_past_runs_and_polls_a_running_one(login, sm2, monthly):
    subscribe(sm2, monthly)
    other = ClientFactory()
    subscribe(other, ProductFactory(client=other), email="x@other.example")
    work = renewals.start_sweep(as_of=FEB28)
    staff = login(sm2, "viewer")
    page = staff.get("/renewals/").content.decode()
    assert 'hx-trigger="every 2s"' in page and "0 of 1 batches" in page
    assert RenewalRun.objects.count() == 2 and page.count("running 0%") == 1  # only our run
    for item in work:
        renewals.run_in_process(item)
    partial = staff.get("/renewals/", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and "every 2s" not in partial
    assert ">1</td>" in partial  # one charged
    assert "Run a sweep now" not in page


def test_an_admin_can_start_a_sweep_and_others_cannot(
    login, sm2, monthly, clock, django_capture_on_commit_callbacks
):
    sub = subscribe(sm2, monthly)
    clock.move_to(FEB28)  # now it is due; sign in after moving the clock
    assert login(sm2, "support").post("/renewals/start/").status_code == 403
    admin = login(sm2, "admin")
    assert "Run a sweep now" in admin.get("/renewals/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/renewals/start/")
    assert response.status_code == 302
    run = RenewalRun.objects.get(client=sm2, trigger="staff")
    assert (run.status, run.charged) == ("finished", 1)
    sub.refresh_from_db()
    assert sub.last_interval_no == 2


def test_empty_state(login, sm2):
    assert "No renewal runs yet." in login(sm2).get("/renewals/").content.decode()


def test_a_sandbox_run_shows_the_swept_date_of_its_test_clock(login, monthly):
    sandbox = ClientFactory(is_sandbox=True)
    subscribe(sandbox, ProductFactory(client=sandbox), email="s@example.com")
    for item in renewals.start_sweep(as_of=FEB28, client=sandbox):
        renewals.run_in_process(item)
    page = login(sandbox).get("/renewals/").content.decode()
    assert '2026-02-28 12:00 <span class="muted">(test clock)</span>' in page
