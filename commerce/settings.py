"""Settings from environment variables (docs/deploy.md).

Safe by default: DEBUG is off and the app refuses to start without
SECRET_KEY, unless COMMERCE_DEV=1 asks for the explicit development mode
(what ``make run`` and the tests use: DEBUG on, a secret generated once per
machine in ./var, plain-HTTP cookies).

Nothing else set: SQLite in ./var and a Celery broker on kombu's filesystem
transport, so the app runs on a fresh machine with no servers. Production
shape: DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://...
"""

import hashlib
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COMMERCE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


DEV_MODE = env_bool("COMMERCE_DEV", False)
DEBUG = env_bool("DEBUG", DEV_MODE)


def _dev_secret() -> str:
    """Development mode only: a random key made once per machine (never a
    published one), kept in ./var."""
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEV_MODE:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (50+ random characters, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), or set "
            "COMMERCE_DEV=1 for the development mode (docs/deploy.md)."
        )
    SECRET_KEY = _dev_secret()
ALLOWED_HOSTS = os.environ.get(
    "ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEV_MODE else ""
).split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_tables2",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from static (no CDN)
    "django_celery_beat",
    "axes",
    "csp",
    "commerce",
    "customers",
    "subscriptions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "commerce.access.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: locks out after repeated failed sign-ins (per user and per address).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "commerce.urls"
WSGI_APPLICATION = "commerce.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "commerce.access.context_processor",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# --- Database -------------------------------------------------------------
if os.environ.get("DATABASE_URL"):
    # Connections are kept for DB_CONN_MAX_AGE seconds by production servers
    # (gunicorn's sync workers: one per process) and checked before reuse. The
    # development server opens a thread per request, so it keeps none.
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"],
            conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0" if DEV_MODE else "60")),
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "commerce.sqlite3"),
            # Web server, worker and beat share one file: take the write lock at
            # BEGIN and wait for it rather than failing with "database is locked".
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Static files are served by the app itself (whitenoise), from STATIC_ROOT
# after `collectstatic` (docs/deploy.md), or from the sources in development.
WHITENOISE_USE_FINDERS = DEV_MODE
WHITENOISE_AUTOREFRESH = DEV_MODE

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
DJANGO_TABLES2_TEMPLATE = "django_tables2/table.html"

# --- Security -----------------------------------------------------------------
# Staff sessions end after STAFF_SESSION_SECONDS (8 h) or when the browser closes.
SESSION_COOKIE_AGE = int(os.environ.get("STAFF_SESSION_SECONDS", str(8 * 3600)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    # HTTPS only: behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a commitment for the whole domain: SECURE_HSTS_PRELOAD=1 opts in.
    "security.W021",
    # Django's own Redis cache backend: atomic INCR, just not on django-ratelimit's list.
    "django_ratelimit.W001",
]
# Content Security Policy (django-csp): scripts and styles from this site only,
# no inline script, no framing. Swagger UI (/api/docs/) runs inline scripts:
# it is exempt (csp_exempt in the API's URLs).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}


def _cache_url() -> str:
    """CACHE_URL, else the Redis broker's server (database 1)."""
    if os.environ.get("CACHE_URL"):
        return os.environ["CACHE_URL"]
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker.startswith(("redis://", "rediss://")):
        return urlunsplit(urlsplit(broker)._replace(path="/1"))
    return ""


# Limits (sign-in lockout, API rate, portal link requests, checkout) count in
# the cache with atomic increments: Redis, shared by every web process.
CACHE_URL = _cache_url()
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "commerce"),
        }
    }
elif DEV_MODE:
    # One web process in development: a per-process cache counts correctly.
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")
else:
    raise ImproperlyConfigured(
        "The limits need a shared cache: set CACHE_URL=redis://... (or a Redis "
        "CELERY_BROKER_URL, whose server is then used), or COMMERCE_DEV=1."
    )
RATELIMIT_VIEW = "commerce.limits.too_many"

# Sign-in lockout (django-axes): AXES_FAILURE_LIMIT wrong passwords for one
# username, or from one address, lock sign-in for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

# Portal link requests and checkout, per client address and per e-mail address.
PORTAL_LINK_RATE_PER_ADDRESS = os.environ.get("PORTAL_LINK_RATE_PER_ADDRESS", "10/h")
PORTAL_LINK_RATE_PER_EMAIL = os.environ.get("PORTAL_LINK_RATE_PER_EMAIL", "3/h")
CHECKOUT_RATE_PER_ADDRESS = os.environ.get("CHECKOUT_RATE_PER_ADDRESS", "10/h")
# The Subscription API: calls per credential, failed authentications per address.
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "600/m")
# The payment gateway signs its callbacks (chargebacks) with this secret
# (docs/documents.md); without one set, a secret derived from SECRET_KEY.
GATEWAY_WEBHOOK_SECRET = (
    os.environ.get("GATEWAY_WEBHOOK_SECRET")
    or hashlib.sha256(f"gateway-webhook:{SECRET_KEY}".encode()).hexdigest()
)
API_FAILED_AUTH_RATE = os.environ.get("API_FAILED_AUTH_RATE", "20/m")

# --- Subscription API (docs/api.md) ---------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["subscriptions.api.auth.CredentialAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["subscriptions.api.auth.CredentialRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "subscriptions.api.errors.handle_exception",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS is 405 with a ResultMessage like any other
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Commerce Assistant Subscription API",
    "VERSION": "1.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        # Broadcast (remote control) files; kombu's default is ./control.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis hands a task that was delivered but never acknowledged (its
    # worker died) to another worker after this many seconds. It must be
    # longer than the longest task: a renewal batch of 1,000 takes about a
    # second, or about a minute at 1 s of gateway latency (16 in flight).
    # Workers look for such tasks every CELERY_UNACKED_RESTORE_INTERVAL seconds
    # (kombu's default would be every 100 s).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600")),
        "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
        "unacked_restore_throttle": 1,
    }
# A task is acknowledged when it has finished, not when it starts, and a task
# whose worker process was killed goes back to the queue: every task is safe
# to run twice (docs/renewals.md, "Exactly once").
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Customer e-mails have a queue of their own, so that rendering and sending a
# backlog of receipts never delays renewals (and the other way round).
CELERY_EMAIL_QUEUE = os.environ.get("CELERY_EMAIL_QUEUE", "emails")
CELERY_NOTIFICATION_QUEUE = os.environ.get("CELERY_NOTIFICATION_QUEUE", "notifications")
CELERY_TASK_ROUTES = {
    "customers.tasks.send_customer_emails": {"queue": CELERY_EMAIL_QUEUE},
    "subscriptions.notifications.tasks.*": {"queue": CELERY_NOTIFICATION_QUEUE},
}
# Webhooks (docs/notifications.md): seconds to wait for a receiver's answer;
# plain http only in development; private addresses (127.0.0.1, 10/8, the
# cloud metadata address, ...) never, unless a test receiver needs them.
WEBHOOK_TIMEOUT_SECONDS = int(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", DEBUG)
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# Subscriptions per renewal batch (one task).
RENEWAL_BATCH_SIZE = int(os.environ.get("RENEWAL_BATCH_SIZE", "1000"))
# A batch's plain renewals are claimed this many first, then twice as many each
# part, each part's charges sent as soon as it is claimed (the gateway's latency
# passes meanwhile).
RENEWAL_CLAIM_CHUNK = int(os.environ.get("RENEWAL_CLAIM_CHUNK", "150"))
# PostgreSQL: plain renewals claimed and recorded in set-based SQL (subscriptions.renewal_sql).
RENEWAL_SET_BASED = os.environ.get("RENEWAL_SET_BASED", "true").lower() != "false"
# A running renewal run none of whose batches finished for this many seconds is
# stalled: beat's "Resume stalled renewal runs" (every 30 s) sends its unfinished
# batches again. Longer than a batch takes; shorter than CELERY_VISIBILITY_TIMEOUT.
RENEWAL_STALL_AFTER = int(os.environ.get("RENEWAL_STALL_AFTER", "180"))

# --- Payments -------------------------------------------------------------
# The built-in test gateway answers by card number (docs/renewals.md); latency in ms
# simulates a real processor.
PAYMENT_GATEWAY = os.environ.get("PAYMENT_GATEWAY", "commerce.gateway.TestGateway")
TEST_GATEWAY_LATENCY_MS = int(os.environ.get("TEST_GATEWAY_LATENCY_MS", "0"))
# Gateway calls in flight at once per worker process (its pool of connections
# to the processor), and per client within that; each call gives up after
# GATEWAY_TIMEOUT_SECONDS (a transient error: retried with the same key).
# TEST_GATEWAY_CONCURRENCY is the older name of the per-client bound.
GATEWAY_MAX_IN_FLIGHT = int(os.environ.get("GATEWAY_MAX_IN_FLIGHT", "1000"))
GATEWAY_MAX_IN_FLIGHT_PER_CLIENT = int(
    os.environ.get(
        "GATEWAY_MAX_IN_FLIGHT_PER_CLIENT", os.environ.get("TEST_GATEWAY_CONCURRENCY", "1000")
    )
)
GATEWAY_TIMEOUT_SECONDS = float(os.environ.get("GATEWAY_TIMEOUT_SECONDS", "10"))

# Unconfigured, sent e-mails are written as files to var/sent-emails/ (and
# listed on the Purchase viewer's E-mails tab); set EMAIL_BACKEND for SMTP.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = str(VAR_DIR / "sent-emails")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "billing@commerce-assistant.local")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_4xx_traceback": {"()": "commerce.logs.NoTracebackBelow500"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["no_4xx_traceback"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # django-axes logs every sign-in at INFO; its warnings (lockouts) still show.
    "loggers": {
        "axes": {"level": "WARNING"},
        # WeasyPrint reports each step of every PDF at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Customer self-service portal (docs/portal.md): links in e-mails are absolute, so
# they need the address customers reach this app at; a link works for
# PORTAL_LINK_MAX_AGE seconds, a portal session for PORTAL_SESSION_SECONDS.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
PORTAL_LINK_MAX_AGE = int(os.environ.get("PORTAL_LINK_MAX_AGE", str(7 * 24 * 3600)))
PORTAL_SESSION_SECONDS = int(os.environ.get("PORTAL_SESSION_SECONDS", "3600"))
