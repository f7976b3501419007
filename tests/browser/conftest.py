import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network: no background calls home (see README, browser tests).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(live_server):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes here are ordinary blocking ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()
    # Playwright ran an event loop here; give the test database back cleanly.
    from django.db import connections

    connections.close_all()


@pytest.fixture
def shoot():
    """shoot(page, name): save docs/screenshots/<name>.png when SAVE_SCREENSHOTS=1
    (the committed ones stay put on ordinary test runs)."""
    folder = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

    def save(page, name, full_page=True):
        if os.environ.get("SAVE_SCREENSHOTS") == "1":
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)

    return save


def swap(page, selector, action):
    """Do ``action`` (a click, a key press) and wait until htmx has swapped in
    a new ``selector`` element and no request is still running: the element
    on the page before is marked, so text it already had cannot satisfy the
    wait (what a busy machine shows as a flaky test)."""
    page.eval_on_selector(selector, "e => e.setAttribute('data-before-swap', '')")
    action()
    page.wait_for_selector(f"{selector}:not([data-before-swap])", state="attached")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def open_tab(page, label):
    """Click a tab of the Purchase viewer; wait for that tab to be the selected one."""
    swap(page, "#tab-panel > nav.tabs", lambda: page.click(f"nav.tabs >> text={label}"))
    page.wait_for_selector(f"#tab-panel [role=tab][aria-selected=true]:has-text('{label}')")
