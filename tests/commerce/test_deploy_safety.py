"""Safe to deploy (docs/deploy.md): production-shape settings, security
headers, and every abuse limit — including under parallel requests."""

import base64
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from commerce.models import ApiCredential
from customers.models import CustomerEmail
from tests.conftest import T0, sign_up
from tests.factories import StaffFactory

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'secure_cookies': s.SESSION_COOKIE_SECURE "
    "and s.CSRF_COOKIE_SECURE, 'hsts': s.SECURE_HSTS_SECONDS, 'ssl_redirect': "
    "s.SECURE_SSL_REDIRECT, 'hosts': s.ALLOWED_HOSTS, 'session': s.SESSION_COOKIE_AGE, "
    "'secret': s.SECRET_KEY, 'conn_max_age': s.DATABASES['default'].get('CONN_MAX_AGE'), "
    "'health': s.DATABASES['default'].get('CONN_HEALTH_CHECKS')}))"
)


def run_with(env, tmp_path, *args):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "COMMERCE_DEV",
            "DEBUG",
            "SECRET_KEY",
            "CACHE_URL",
            "ALLOWED_HOSTS",
            "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for the browser tests
        )
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="commerce.settings", COMMERCE_VAR_DIR=str(tmp_path))
    command = args or ("-c", PROBE)
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=clean, capture_output=True, text=True
    )


PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "billing.example.com",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
}


def test_without_a_secret_the_app_refuses_to_start_in_production_shape(tmp_path):
    done = run_with({"CACHE_URL": "redis://127.0.0.1:6379/1"}, tmp_path)
    assert done.returncode != 0
    assert "SECRET_KEY is not set" in done.stderr and "COMMERCE_DEV=1" in done.stderr


def test_production_shape_is_locked_down(tmp_path):
    done = run_with(PRODUCTION, tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["debug"] is False
    assert found["secure_cookies"] and found["ssl_redirect"] and found["hsts"] >= 31536000
    assert found["hosts"] == ["billing.example.com"]
    assert found["session"] == 8 * 3600


def test_production_shape_reuses_database_connections_with_health_checks(tmp_path):
    env = {**PRODUCTION, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}
    found = json.loads(run_with(env, tmp_path).stdout)
    assert (found["conn_max_age"], found["health"]) == (60, True)
    dev = json.loads(run_with({**env, "COMMERCE_DEV": "1"}, tmp_path).stdout)
    assert dev["conn_max_age"] == 0  # the dev server's thread per request keeps none


def test_deployment_checks_pass_in_production_shape(tmp_path):
    done = run_with(
        PRODUCTION, tmp_path, "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_development_mode_generates_its_own_secret_once(tmp_path):
    first = json.loads(run_with({"COMMERCE_DEV": "1"}, tmp_path).stdout)
    again = json.loads(run_with({"COMMERCE_DEV": "1"}, tmp_path).stdout)
    other = json.loads(run_with({"COMMERCE_DEV": "1"}, tmp_path / "elsewhere").stdout)
    assert first["debug"] is True and first["secure_cookies"] is False
    assert first["secret"] == again["secret"] != other["secret"]
    assert len(first["secret"]) >= 50


# --- headers ---------------------------------------------------------------------------


def test_pages_carry_a_content_security_policy_and_staff_pages_are_not_stored(client, sm2):
    anonymous = client.get(f"/checkout/{sm2.slug}/")
    policy = anonymous["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "no-store" not in anonymous.get("Cache-Control", "")
    staff = StaffFactory(client=sm2)
    client.force_login(staff.user)
    page = client.get("/purchases/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert page["X-Frame-Options"] == "DENY"


def test_no_page_has_inline_script_or_handlers():
    """The policy forbids inline scripts: no template may rely on one."""
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        if path.parts[-2] == "emails":
            continue
        for bad in (" onclick=", " onsubmit=", " onchange=", "<script>", "javascript:"):
            if bad in text:
                offenders.append(f"{path.relative_to(ROOT)}: {bad.strip()}")
    assert offenders == []


def test_an_unknown_address_is_a_plain_404_without_the_url_list(client):
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert b"URLconf" not in page.content and b"admin/" not in page.content


# --- sign-in lockout (django-axes) ------------------------------------------------------


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_the_account_even_with_the_right_one(client, sm2):
    staff = StaffFactory(client=sm2)
    for _ in range(5):
        assert sign_in(client, staff.user.username, "wrong").status_code in (200, 429)
    locked = sign_in(client, staff.user.username, "pw-123456")
    assert locked.status_code == 429
    assert "Sign-in locked" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address cannot get in either: the account itself is locked.
    assert sign_in(client, staff.user.username, "pw-123456", "10.9.9.9").status_code == 429


def test_one_address_trying_many_accounts_is_locked(client, sm2):
    users = [StaffFactory(client=sm2).user for _ in range(6)]
    for user in users[:5]:
        sign_in(client, user.username, "wrong", "10.0.0.7")
    assert sign_in(client, users[5].username, "pw-123456", "10.0.0.7").status_code == 429
    assert sign_in(client, users[5].username, "pw-123456", "10.0.0.8").status_code == 302


def test_a_right_password_before_the_limit_signs_in_and_resets(client, sm2):
    staff = StaffFactory(client=sm2)
    for _ in range(3):
        sign_in(client, staff.user.username, "wrong")
    assert sign_in(client, staff.user.username, "pw-123456").status_code == 302


# --- parallel bursts against a real server ------------------------------------------------


def _csrf(url):
    """A CSRF cookie and token, as a browser gets them with the form."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        cookie = answer.headers["Set-Cookie"].split(";")[0]
    return cookie, cookie.split("=", 1)[1]


def _post(url, data, headers=None):
    cookie, token = _csrf(url)
    body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
    headers = {**(headers or {}), "Cookie": cookie}
    request = urllib.request.Request(url, body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _get(url, headers):
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


API_CALL = "/api/subscription/getsubscriptionsforcustomer?customerEmail=a%40example.com"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.django_db(transaction=True)
def test_a_parallel_burst_of_wrong_passwords_still_locks_the_account(live_server, sm2):
    staff = StaffFactory(client=sm2)
    url = f"{live_server.url}/login/"
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda _: _post(url, {"username": staff.user.username, "password": "x"}),
                range(24),
            )
        )
    assert 429 in codes  # locked while the burst was still going
    opener = urllib.request.build_opener(NoRedirect)
    cookie, token = _csrf(url)
    right = urllib.parse.urlencode(
        {"username": staff.user.username, "password": "pw-123456", "csrfmiddlewaretoken": token}
    )
    request = urllib.request.Request(url, right.encode(), headers={"Cookie": cookie})
    try:
        status = opener.open(request, timeout=30).status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == 429  # not 302: the right password does not get in


@pytest.mark.django_db(transaction=True)
def test_the_api_rate_limit_holds_under_a_parallel_burst(
    live_server, sm2, monthly, settings, clock
):
    # The clock stands still (for the server's threads too): on a busy machine
    # a burst could otherwise run across the end of the limit's window.
    clock.move_to(T0, tick=False)
    settings.API_RATE_LIMIT = "20/m"
    sign_up(sm2, monthly, email="a@example.com")
    credential, secret = ApiCredential.issue(client=sm2, label="ERP")
    token = base64.b64encode(f"{credential.key_id}:{secret}".encode()).decode()
    url = live_server.url + API_CALL
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda _: _get(url, {"Authorization": f"Basic {token}"}), range(60)))
    assert codes.count(200) == 20 and codes.count(429) == 40


@pytest.mark.django_db(transaction=True)
def test_failed_api_authentication_is_limited_per_address(live_server, sm2, settings, clock):
    clock.move_to(T0, tick=False)  # one window for the whole burst
    settings.API_FAILED_AUTH_RATE = "10/m"
    credential, secret = ApiCredential.issue(client=sm2, label="ERP")
    bad = base64.b64encode(f"{credential.key_id}:guess".encode()).decode()
    url = live_server.url + API_CALL
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda _: _get(url, {"Authorization": f"Basic {bad}"}), range(30)))
    assert codes.count(401) == 10 and codes.count(429) == 20
    good = base64.b64encode(f"{credential.key_id}:{secret}".encode()).decode()
    assert _get(url, {"Authorization": f"Basic {good}"}) == 429  # this address waits


@pytest.mark.django_db(transaction=True)
def test_portal_link_requests_are_limited_per_address_under_a_burst(live_server, sm2, monthly):
    sign_up(sm2, monthly, email="ann@example.com")
    url = f"{live_server.url}/portal/link/{sm2.slug}/"
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: _post(url, {"email": f"x{i}@example.com"}), range(25)))
    assert codes.count(200) == 10 and codes.count(429) == 15


def test_portal_links_to_one_address_are_limited(client, sm2, monthly):
    sign_up(sm2, monthly, email="ann@example.com")
    before = CustomerEmail.objects.count()
    answers = [
        client.post(
            f"/portal/link/{sm2.slug}/", {"email": "ann@example.com"}, REMOTE_ADDR=f"10.1.0.{i}"
        )
        for i in range(5)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert "check your inbox" in answers[3].content.decode()
    assert CustomerEmail.objects.count() == before + 3


@pytest.mark.django_db(transaction=True)
def test_checkout_is_limited_per_address_under_a_burst(live_server, sm2, monthly):
    url = f"{live_server.url}/checkout/{sm2.slug}/"
    data = {"email": "", "payment": "card"}  # invalid: nothing is bought, the tries count
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: _post(url, data), range(25)))
    assert codes.count(429) == 15 and codes.count(400) == 10


# --- card data ---------------------------------------------------------------------------

CARD = "4242 4242 4242 4242"


def _rows_holding(text):
    """Every (model, field) of every app whose stored value contains ``text``."""
    from django.apps import apps
    from django.db import models

    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, (models.CharField, models.TextField, models.JSONField)):
                lookup = "icontains" if not isinstance(field, models.JSONField) else "contains"
                if isinstance(field, models.JSONField):
                    hits = [
                        pk
                        for pk, value in model.objects.values_list("pk", field.name)
                        if text in json.dumps(value)
                    ]
                else:
                    hits = list(
                        model.objects.filter(**{f"{field.name}__{lookup}": text}).values_list(
                            "pk", flat=True
                        )
                    )
                if hits:
                    found.append(f"{model._meta.label}.{field.name}")
    return found


def test_a_card_number_is_never_stored_nor_shown(client, sm2, monthly, admin_client):
    from customers.models import PaymentMethod

    data = {
        "email": "card@example.com",
        "payment": "card",
        "card_number": CARD,
        "expiry_month": 12,
        "expiry_year": 2099,
        f"qty_{monthly.pk}": 1,
    }
    assert client.post(f"/checkout/{sm2.slug}/", data).status_code == 200
    method = PaymentMethod.objects.get(customer__email="card@example.com")
    assert (method.brand, method.last4, method.expiry_month) == ("Visa", "4242", 12)
    assert method.token.startswith("tok_approved_")
    assert _rows_holding("4242424242424242") == []
    assert _rows_holding("424242424242") == []  # not even most of it
    for url in (
        f"/admin/customers/paymentmethod/{method.pk}/change/",
        "/admin/customers/paymentmethod/",
        "/admin/commerce/gatewaycharge/",
        f"/admin/customers/customer/{method.customer_id}/change/",
    ):
        page = admin_client.get(url).content.decode()
        assert "4242424242424242" not in page and "4242 4242 4242 4242" not in page, url
    assert "Visa •••• 4242" in str(method)


def test_403_and_404_are_styled_pages_with_navigation_and_the_reason(client, sm2):
    viewer = StaffFactory(client=sm2, role="viewer")
    client.force_login(viewer.user)
    denied = client.post("/renewals/start/")
    assert denied.status_code == 403
    page = denied.content.decode()
    assert "Your role (viewer) may not do this." in page and 'class="mainnav"' in page
    missing = client.get("/purchases/999999/")
    assert missing.status_code == 404
    assert "Not found" in missing.content.decode() and 'class="mainnav"' in missing.content.decode()
    assert client.get("/checkout/no-such-shop/").status_code == 404
