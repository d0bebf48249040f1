"""Settings for the Beacons site.

Every value comes from an environment variable with a default that runs a fresh clone
(SQLite in the project folder, console email, the in-request "direct" counter sink).
The README's settings table documents each one.
"""

import os
import tempfile
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Django -----------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production"
# `make run` writes a random key here once (git-ignored), so a fresh clone runs without DEBUG.
LOCAL_SECRET_KEY_FILE = Path(os.environ.get("SECRET_KEY_FILE") or BASE_DIR / ".secret-key")
SECRET_KEY = (
    os.environ.get("SECRET_KEY", "").strip()
    or (LOCAL_SECRET_KEY_FILE.read_text().strip() if LOCAL_SECRET_KEY_FILE.is_file() else "")
    or DEVELOPMENT_SECRET_KEY
)
# pytest sets PYTEST_VERSION for its run (servers the suite starts inherit it): tests may use
# the development key. Anything else with DEBUG off refuses to start with it.
if SECRET_KEY == DEVELOPMENT_SECRET_KEY and not DEBUG and not os.environ.get("PYTEST_VERSION"):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set and DEBUG is off: set SECRET_KEY to a long random value "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or run `make run` for development"
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "import_export",
    "ninja",  # the stats API; listed so its docs page loads Swagger UI from our static files, not a CDN
    "beacons",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "beacon_site.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "beacon_site.urls"
WSGI_APPLICATION = "beacon_site.wsgi.application"

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
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the dashboard read while ingest writes; IMMEDIATE makes writers queue on
        # the busy timeout instead of failing with "database is locked" on lock upgrade.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
    # Tests use a file, not Django's shared-cache in-memory database: its table locks ignore
    # the busy timeout, so threaded tests (live servers, concurrent ingest) would fail spuriously.
    # One file per process, so parallel and concurrent test runs never share one.
    # One file per test process; `make mutate` names one per worker instead, so its forked runs reuse it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("BEACONS_TEST_DATABASE")
        or str(Path(tempfile.gettempdir()) / f"beacons-test-{os.getpid()}.sqlite3")
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable database host must fail fast (ingest answers 503), not hang a worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    # Every read is a few short index range scans: starting parallel workers costs more than they
    # save (the busiest pages of 30 days at 10 M hits: 12 ms serial, 22-36 ms with two workers on a
    # busy host, where the planner expects three times the rows). 0 plans no parallel worker; a
    # negative value sends nothing and keeps the server's setting (a pooler that refuses startup
    # options, such as PgBouncer by default).
    parallel_workers = env_int("DATABASE_PARALLEL_WORKERS", 0)
    if parallel_workers >= 0:
        DATABASES["default"]["OPTIONS"].setdefault("options", f"-c max_parallel_workers_per_gather={parallel_workers}")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": (
        {"BACKEND": "beacon_site.cache.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
        if os.environ.get("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # plotly.js exactly as the installed plotly package ships it: /static/vendor/plotly.min.js
    ("vendor", Path(plotly.__file__).parent / "package_data"),
]
# Serve static files straight from the apps and static/ (no collectstatic needed to run);
# `make serve` runs collectstatic so production serves compressed, hashed copies.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # gzip/brotli copies at collectstatic; no manifest, so pages also render before collectstatic.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:index"
LOGOUT_REDIRECT_URL = "login"

# Every email setting comes from the environment; beacons.checks stops the start when a
# backend lacks what it needs (e.g. the file backend without EMAIL_FILE_PATH).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH") or None
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "beacons@localhost")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# "Ada <ada@example.com>, ops@example.com"
ADMINS = [parseaddr(item) for item in env_list("ADMINS")]

# HTTPS in production (README, "Production settings"); all off by default so http://127.0.0.1 works.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# Errors (a 500's traceback) go to the console whatever DEBUG is, and by mail to ADMINS when
# DEBUG is off; neither carries a client IP (beacons.logs removes the request's addresses).
# DJANGO_LOG_LEVEL=WARNING also logs every 4xx, which a flood of bad beacons would fill.
DEFAULT_EXCEPTION_REPORTER = "beacons.logs.AddressScrubbingReporter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "no_client_address": {"()": "beacons.logs.ClientAddressFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["no_client_address"]},
        "mail_admins": {
            "level": "ERROR",
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["require_debug_false", "no_client_address"],
        },
    },
    "loggers": {
        "django": {"handlers": ["console", "mail_admins"], "level": os.environ.get("DJANGO_LOG_LEVEL", "ERROR")},
        "beacons": {"handlers": ["console"], "level": os.environ.get("BEACONS_LOG_LEVEL", "INFO")},
    },
}

# --- Security headers -------------------------------------------------------------------

# Content-Security-Policy (beacon_site.middleware): no inline scripts anywhere. Plotly draws
# charts with inline style attributes, so styles need 'unsafe-inline'; scripts never do.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'self'"],
    "form-action": ["'self'"],
}

# --- Beacons ----------------------------------------------------------------------------

BEACONS_ENABLED = env_bool("BEACONS_ENABLED", True)
# The ingest URLs skip the middleware stack and the URL walk (beacons.ingest.fastpath); off: Django's full path.
BEACONS_FAST_PATH = env_bool("BEACONS_FAST_PATH", True)
# Reject event types that are not registered (422) instead of auto-registering them.
BEACONS_STRICT = env_bool("BEACONS_STRICT", False)
BEACONS_TIME_ZONE = os.environ.get("BEACONS_TIME_ZONE", TIME_ZONE)
BEACONS_MAX_BATCH = env_int("BEACONS_MAX_BATCH", 50)
BEACONS_MAX_META_BYTES = env_int("BEACONS_MAX_META_BYTES", 2048)
BEACONS_MAX_BODY_BYTES = env_int("BEACONS_MAX_BODY_BYTES", 65536)
# How deep a JSON field (e.g. meta) may nest ({"a": {}} is 2 deep); deeper bodies get a 400.
BEACONS_MAX_JSON_DEPTH = env_int("BEACONS_MAX_JSON_DEPTH", 8)
# Auto-registration budget: at most this many types registered by beacons (not in the admin),
# and at most BEACONS_NEW_TYPES_PER_MINUTE new ones a minute from one visitor and from one
# network; beyond it unknown types are dropped (tallied as "unknown type over budget").
BEACONS_MAX_AUTO_TYPES = env_int("BEACONS_MAX_AUTO_TYPES", 100)
BEACONS_NEW_TYPES_PER_MINUTE = env_int("BEACONS_NEW_TYPES_PER_MINUTE", 10)
# Distinct values one dimension (source, country, a custom property...) of one type and site may
# count per day; beyond it new values count as "(other)" (tallied in "dropped values").
BEACONS_MAX_VALUES_PER_DIMENSION = env_int("BEACONS_MAX_VALUES_PER_DIMENSION", 1000)
BEACONS_RESPECT_DNT = env_bool("BEACONS_RESPECT_DNT", True)
# Origins allowed to send beacons for every site, e.g. "https://shop.example.com"; "*" for any.
# Each site's own origins and extra allowed origins (admin, Sites), this server's own origin and
# the hosts in ALLOWED_HOSTS are always allowed.
BEACONS_ALLOWED_ORIGINS = env_list("BEACONS_ALLOWED_ORIGINS")
# Behind a reverse proxy, the request header holding the visitor's address, as Django's META
# names it, e.g. HTTP_X_FORWARDED_FOR or HTTP_X_REAL_IP. Empty: REMOTE_ADDR. Never stored.
BEACONS_CLIENT_IP_HEADER = os.environ.get("BEACONS_CLIENT_IP_HEADER", "")
# How many proxies in front append to that header: the address used is this many entries from
# its right end (entries further left were written by the client and can be forged).
BEACONS_CLIENT_IP_PROXY_COUNT = env_int("BEACONS_CLIENT_IP_PROXY_COUNT", 1)
# Stats API requests per key per minute (answered 429 with Retry-After beyond it); 0 = off.
BEACONS_API_RATE_PER_MINUTE = env_int("BEACONS_API_RATE_PER_MINUTE", 600)
BEACONS_RATE_LIMIT = env_int("BEACONS_RATE_LIMIT", 600)  # events per visitor per minute; 0 = off
# Events per network (IPv4 /24, IPv6 /64) per minute, whatever the user agents; 0 = off.
# Several visitors share a network (an office behind one address), hence 5 visitors' worth.
BEACONS_NETWORK_RATE_LIMIT = env_int("BEACONS_NETWORK_RATE_LIMIT", 3000)
BEACONS_DEDUPE_SECONDS = env_int("BEACONS_DEDUPE_SECONDS", 86400)
# Count signed-in users as themselves (stable across days) rather than by the day's visitor hash:
# {% beacon_script %} then sends a signed, keyed hash of the user id (never the id).
BEACONS_IDENTIFY_USERS = env_bool("BEACONS_IDENTIFY_USERS", False)
# The key of that hash and its signature; "" derives one from SECRET_KEY. Changing it makes every
# signed-in user a new visitor.
BEACONS_IDENTIFY_SECRET = os.environ.get("BEACONS_IDENTIFY_SECRET", "")
# A visitor's page views with no gap longer than this are one visit (beacons.ingest.sessions).
# Drop-in endpoints for other trackers and the Sentry SDKs (beacons.ingest.compat): those named are on.
BEACONS_COMPAT = env_list("BEACONS_COMPAT", "plausible,umami,goatcounter,sentry")
# Flags and experiments: a change (a kill switch) reaches every page within this many seconds.
BEACONS_FLAGS_MAX_AGE = env_int("BEACONS_FLAGS_MAX_AGE", 60)
# Units one experiment records (a row each): past it, new units are not counted (their exposures tallied as dropped).
BEACONS_EXPERIMENT_MAX_UNITS = env_int("BEACONS_EXPERIMENT_MAX_UNITS", 1_000_000)
BEACONS_VISIT_GAP_SECONDS = env_int("BEACONS_VISIT_GAP_SECONDS", 1800)
# Largest import an admin upload may be, and an XLSX file may unpack to (the sum of the
# sizes in its zip directory): a 1 MB XLSX can hold a 1 GiB sheet.
BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = env_int("BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES", 64 * 1024 * 1024)

# Counter sinks: "direct" (upsert in the request), "memory" (in-process buffer), "redis".
BEACONS_SINK = os.environ.get("BEACONS_SINK", "direct")
BEACONS_FLUSH_SECONDS = float(os.environ.get("BEACONS_FLUSH_SECONDS", "2"))
BEACONS_FLUSH_MAX_KEYS = env_int("BEACONS_FLUSH_MAX_KEYS", 10000)
BEACONS_REDIS_URL = os.environ.get("BEACONS_REDIS_URL", "redis://127.0.0.1:6379/0")
BEACONS_REDIS_PREFIX = os.environ.get("BEACONS_REDIS_PREFIX", "beacons")
# Parallel transactions (database connections) a large drained batch is written with.
BEACONS_DRAIN_WORKERS = env_int("BEACONS_DRAIN_WORKERS", 2)

# Error alerts (defaults; each error definition in the registry may override them).
BEACONS_BASE_URL = os.environ.get("BEACONS_BASE_URL", "http://127.0.0.1:8000")
BEACONS_ALERT_EMAILS = env_list("BEACONS_ALERT_EMAILS")
BEACONS_ALERT_HANDLERS = env_list("BEACONS_ALERT_HANDLERS", "beacons.errors.handlers.email_handler")
BEACONS_ALERT_WEBHOOK_URL = os.environ.get("BEACONS_ALERT_WEBHOOK_URL", "")
BEACONS_ALERT_ON_NEW = env_bool("BEACONS_ALERT_ON_NEW", True)
BEACONS_ALERT_ON_REGRESSION = env_bool("BEACONS_ALERT_ON_REGRESSION", True)
BEACONS_ALERT_THRESHOLD = env_int("BEACONS_ALERT_THRESHOLD", 100)  # occurrences ...
BEACONS_ALERT_WINDOW_MINUTES = env_int("BEACONS_ALERT_WINDOW_MINUTES", 60)  # ... within this window
BEACONS_ALERT_COOLDOWN_MINUTES = env_int("BEACONS_ALERT_COOLDOWN_MINUTES", 60)

# Email reports (manage.py beacons_reports): the Chrome or Chromium kaleido draws their charts in
# (kaleido 1.x drives a browser; Debian's chromium package installs it here).
BEACONS_CHROMIUM = os.environ.get("BEACONS_CHROMIUM", "/usr/bin/chromium")
