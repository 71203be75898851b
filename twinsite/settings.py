"""Settings for the digital twin, read from the environment.

Every value comes from an environment variable: URLs and lists parsed by
django-environ, booleans and numbers by the strict helpers below, so a
malformed value (``DEBUG=maybe``, ``TWIN_STALE_AFTER_SECONDS=soon``) stops the
process at start, naming the variable, instead of surfacing later as odd
behaviour. The defaults give
a newcomer a working twin on an embedded SQLite file with no server to install.
"""

import hashlib
import ipaddress
import os
from datetime import timedelta
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from twinsite import installation

# Where this installation keeps its files (made by the entry points, twinsite.installation).
BASE_DIR = installation.BASE_DIR
VAR_DIR = installation.VAR_DIR

env = environ.Env()

# django-environ parses URLs and lists well but is lenient with scalars
# ("12abc" reads as 12, "maybe" as false): these refuse anything malformed,
# naming the variable.
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (true/false).")


def env_number(name: str, default: float, kind: type = float) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid {kind.__name__}.") from None


def env_int(name: str, default: int) -> int:
    return env_number(name, default, int)


DEBUG = env_bool("DEBUG", False)

# --- Secrets ----------------------------------------------------------------------
# Agents' signing secrets are derived from a key (TWIN_CREDENTIAL_KEY, by default
# SECRET_KEY): whoever knows it can sign for any host. A key anyone can read (in
# this repository, in a compose file, in a tutorial) or guess is refused outside
# DEBUG; with no key given, each installation makes its own at first start
# (``twinsite.installation``, called by the entry points).
KNOWN_PUBLIC_KEYS = frozenset(
    {
        "insecure-dev-only-key-set-SECRET_KEY-in-production",  # the development key of earlier versions
        "insecure-test-only-key",  # the test key of earlier versions
        "change-me-in-production",  # docker-compose.yml's default of earlier versions
        "changeme",
        "change-me",
        "secret",
    }
)
SECRET_KEY_MIN_LENGTH = 50  # Django's own deployment check (security.W009) asks as much
SECRET_KEY_FILE = installation.secret_key_file()


def secret_key_weakness(key: str) -> str | None:
    """Why ``key`` must not protect a deployment, or None."""
    if key in KNOWN_PUBLIC_KEYS or key.startswith("django-insecure-"):
        return "is a published value"
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < 5:
        return f"is shorter than {SECRET_KEY_MIN_LENGTH} characters or too repetitive"
    return None


# Made by the entry points (twinsite.installation) before the settings are read: read here, never written.
SECRET_KEY = env.str("SECRET_KEY", default="") or installation.secret_key_read(SECRET_KEY_FILE)
TWIN_CREDENTIAL_KEY = env.str("TWIN_CREDENTIAL_KEY", default="") or SECRET_KEY
if not DEBUG:
    for _name, _key in (("SECRET_KEY", SECRET_KEY), ("TWIN_CREDENTIAL_KEY", TWIN_CREDENTIAL_KEY)):
        if (_weakness := secret_key_weakness(_key)) is not None:
            raise ImproperlyConfigured(
                f"{_name} {_weakness}: anyone could sign sessions or agents' batches with it. Set a random "
                f"value of {SECRET_KEY_MIN_LENGTH}+ characters, or unset it to use this installation's own "
                f"({SECRET_KEY_FILE}). Only DEBUG accepts it."
            )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS (Django's deployment checklist) ------------------------------------------
# Cookies are HTTPS-only outside DEBUG. Redirects and HSTS are for a deployment
# that terminates TLS (see docs/security.md); behind a proxy, it must set
# X-Forwarded-Proto and TWIN_TRUST_X_FORWARDED_PROTO must be true.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe and Prometheus scrapes over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = None
if env_bool("TWIN_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "channels",
    "axes",
    "common",
    "jobs",
    "hosts",
    "commands",
    "metrics",
    "collectors",
    "facility",
    "twin",
    "alerts",
    "fleet",
    "ops",
    "dashboard",
]

MIDDLEWARE = [
    # First, so every line logged and every response (static files and CORS preflights too) has an id and is counted.
    "ops.middleware.RequestIdMiddleware",
    "ops.middleware.HttpMetricsMiddleware",
    # Outside every middleware that answers on its own, so each answer carries the one policy.
    "common.middleware.ContentSecurityPolicyMiddleware",
    "common.middleware.JsonErrorsMiddleware",
    "common.middleware.ClientFaultMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything that answers on its own (WhiteNoise, CommonMiddleware), as django-cors-headers asks.
    "corsheaders.middleware.CorsMiddleware",
    "twinsite.middleware.AsyncWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its answer.
    "axes.middleware.AxesMiddleware",
]
# Database sessions whose key is checked for shape before any lookup (a NUL in
# a cookie made PostgreSQL fail on every page).
SESSION_ENGINE = "common.sessions"
CSRF_FAILURE_VIEW = "common.errors.csrf_failure"

# --- Admin logins: throttled by django-axes -------------------------------------------
# Failed logins are counted per username *and* address: after
# TWIN_LOGIN_FAILURE_LIMIT failures that pair is locked out for
# TWIN_LOGIN_COOLOFF_MINUTES (a 429 with Retry-After), and each failure is
# logged. An attacker at one address cannot lock a user out everywhere, and
# one guessing many usernames is stopped at each.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("TWIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_number("TWIN_LOGIN_COOLOFF_MINUTES", 15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "common.errors.login_locked_out"
# The client's address is the connection's: a forwarded-for header is set by
# whoever sends the request. Behind a proxy, see docs/security.md.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
# Successful logins are not logged to the database (only failures and lockouts).
AXES_DISABLE_ACCESS_LOG = True

ROOT_URLCONF = "twinsite.urls"
ASGI_APPLICATION = "twinsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# PostgreSQL in production and CI; an embedded SQLite file for a first look.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'twin.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers (snapshots) run beside the writer (ingest); IMMEDIATE
    # transactions take the write lock up front, so two concurrent batches
    # queue behind each other instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # End-to-end tests start a server in another process, which cannot see an
    # in-memory database: the test database is a file beside the real one.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-twin.sqlite3")}
else:
    # Under ASGI each request's sync code runs in a thread of its own, so
    # per-thread persistent connections pile up until PostgreSQL refuses new
    # ones ("too many clients", seen in bench/ at 64 concurrent agents). A
    # bounded pool shares a few connections among all threads instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 2),
        "max_size": env_int("DB_POOL_MAX", 16),
        "timeout": env_number("DB_POOL_TIMEOUT", 10.0),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels layer (the bridge from ingest to every server process) ----------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as
                # channels-redis' blocking pop, so an idle listener would time out
                # every 5 s (django/channels_redis#422). A longer one still notices
                # a dead connection.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="twin"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = installation.STATIC_ROOT
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (tests, a first look) WhiteNoise serves from the apps;
# it only asks that the collected folder exist.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["common.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # Readers: a logged-in user (session) or an API token. Agents authenticate
    # per view with their own signature scheme, never with these.
    # Token first: its WWW-Authenticate header makes a refusal a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["twin.permissions.ReadAccess"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # OPTIONS is not part of this API (no cross-origin clients): DRF's metadata
    # answer was rendered by each view's renderer, and the docs view's HTML
    # template failed on it (a 500 the header fuzzer found). Now a JSON 405.
    "DEFAULT_METADATA_CLASS": None,
    "EXCEPTION_HANDLER": "common.errors.json_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Digital twin API",
    "DESCRIPTION": "Agents post signed metric batches; dashboards read the twin. See docs/api.md.",
    "VERSION": "1",
    # msgspec writes JSON Schema 2020-12 (nullable is `"type": "null"`), which is OpenAPI 3.1's dialect.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": ["twinsite.openapi.components_append"],
    # Swagger UI and Redoc from the project's static files (drf-spectacular-sidecar): no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- Logs: human-readable lines by default, one JSON object per line with LOG_FORMAT=json.
# Every line carries the request id (ops.logs); both formats redact credentials.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'plain' or 'json'.")
# One line per request (method, path without its query, status, time, view) on the ops.requests logger.
LOG_REQUESTS = env_bool("LOG_REQUESTS", True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "ops.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {
            "()": "ops.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {
            "()": "ops.logs.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s %(threadName)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # python-socketio and python-engineio add a plain handler of their own to a logger
        # whose level is unset; set here, their lines go through ours (JSON, redacted) only.
        "engineio.server": {"level": "ERROR"},
        "socketio.server": {"level": "ERROR"},
    },
}

# --- The twin itself -----------------------------------------------------------


def _default_twin_id() -> str:
    """A twin id that every process sharing one database agrees on.

    Derived from where the data lives rather than invented at start, so it
    survives restarts and is the same behind a load balancer.
    """
    db = DATABASES["default"]
    where = f"{db.get('HOST', '')}:{db.get('PORT', '')}/{db.get('NAME', '')}"
    return "twin-" + hashlib.sha256(where.encode()).hexdigest()[:8]


TWIN_ID = env.str("TWIN_ID", default="") or _default_twin_id()
# A host is online while its last sample is younger than this, then stale...
TWIN_STALE_AFTER_SECONDS = env_number("TWIN_STALE_AFTER_SECONDS", 30.0)
# ...and offline once it has been silent this long.
TWIN_OFFLINE_AFTER_SECONDS = env_number("TWIN_OFFLINE_AFTER_SECONDS", 120.0)
# How far in the future an agent's clock may be before its samples are refused.
TWIN_MAX_FUTURE_SKEW_SECONDS = env_number("TWIN_MAX_FUTURE_SKEW_SECONDS", 300.0)
# Pushes of the twin state to dashboards, at most this many per second...
TWIN_PUSH_MAX_PER_SECOND = env_number("TWIN_PUSH_MAX_PER_SECOND", 2.0)
# ...and a rebuild at least this often, so time-driven status changes reach
# dashboards and a message lost by the channel layer costs one interval.
TWIN_REFRESH_SECONDS = env_number("TWIN_REFRESH_SECONDS", 5.0)
# Hostnames are stored lower-cased (a database constraint holds it).
TWIN_CORE_HOSTNAME = env.str("TWIN_CORE_HOSTNAME", default="core-switch").strip().lower()
TWIN_DEFAULT_LINK_CAPACITY_GBPS = env_number("TWIN_DEFAULT_LINK_CAPACITY_GBPS", 10.0)
# Browser origins other than the twin's own allowed to read it: Socket.IO connections and
# the HTTP API's CORS headers alike ("*" for any). TWIN_SOCKETIO_ORIGINS is its former name.
TWIN_ALLOWED_ORIGINS = env.list(
    "TWIN_ALLOWED_ORIGINS",
    default=env.list("TWIN_SOCKETIO_ORIGINS", default=["http://localhost:8000", "http://127.0.0.1:8000"]),
)
# django-cors-headers, for the HTTP API only. Readers on another origin send an API
# token (Authorization), so no cookies cross origins.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_ALL_ORIGINS = "*" in TWIN_ALLOWED_ORIGINS
CORS_ALLOWED_ORIGINS = [] if CORS_ALLOW_ALL_ORIGINS else TWIN_ALLOWED_ORIGINS
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]

# --- Operator endpoints (ops/) -------------------------------------------------------
# Who may read /metrics: these networks (the connection's own address, never a
# forwarded one), or anyone with `Authorization: Bearer <TWIN_METRICS_TOKEN>` when set.
TWIN_METRICS_ALLOW = env.list("TWIN_METRICS_ALLOW", default=["127.0.0.1/32", "::1/128"])
try:
    TWIN_METRICS_ALLOW_NETWORKS = [ipaddress.ip_network(net.strip(), strict=False) for net in TWIN_METRICS_ALLOW]
except ValueError as exc:
    raise ImproperlyConfigured(f"TWIN_METRICS_ALLOW: {exc}") from None
TWIN_METRICS_TOKEN = env.str("TWIN_METRICS_TOKEN", default="")


# --- Limits ------------------------------------------------------------------------
# The largest request body (and gzip-inflated body) accepted: a 413 beyond.
TWIN_MAX_BODY_BYTES = env_int("TWIN_MAX_BODY_BYTES", 10 * 2**20)
DATA_UPLOAD_MAX_MEMORY_SIZE = TWIN_MAX_BODY_BYTES
# The most samples one batch may carry: a 413 beyond.
TWIN_MAX_BATCH_SAMPLES = env_int("TWIN_MAX_BATCH_SAMPLES", 10_000)
# Batches a host (or, unsigned, an address) may post per minute: a 429 beyond.
TWIN_INGEST_RATE_PER_MINUTE = env_int("TWIN_INGEST_RATE_PER_MINUTE", 600)
# What a client is told to wait when the database is unreachable (a 503).
TWIN_RETRY_AFTER_SECONDS = env_int("TWIN_RETRY_AFTER_SECONDS", 5)
# The bytes of gzip bodies all requests of a process may hold inflated at once;
# beyond, requests wait, then get a 503 (common.http.InflationBudget).
TWIN_INFLATE_BUDGET_BYTES = env_int("TWIN_INFLATE_BUDGET_BYTES", 32 * 2**20)
if TWIN_INFLATE_BUDGET_BYTES <= TWIN_MAX_BODY_BYTES:
    raise ImproperlyConfigured("TWIN_INFLATE_BUDGET_BYTES must be larger than TWIN_MAX_BODY_BYTES.")

# Shared counters (rate limits): Redis when there is one, so every process agrees.
# Without timeouts a Redis that hangs (stopped, not dead) would hold every
# request that counts; with them, the throttle falls back to per-process
# counters within a second (common.throttling).
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "twin",
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Agents and readers ---------------------------------------------------------
# "signed": batches must carry a host credential's HMAC signature (see docs/api.md).
# "open": unsigned seed-format batches are accepted and create hosts; a trusted lab only.
TWIN_AGENT_AUTH = env.str("TWIN_AGENT_AUTH", default="signed")
if TWIN_AGENT_AUTH not in {"signed", "open"}:
    raise ImproperlyConfigured("TWIN_AGENT_AUTH must be 'signed' or 'open'.")
# A signed request's timestamp may differ from the server clock by at most this.
TWIN_SIGNATURE_WINDOW_SECONDS = env_number("TWIN_SIGNATURE_WINDOW_SECONDS", 300.0)
# New hosts wait for an admin's approval before their batches are accepted.
TWIN_REQUIRE_APPROVAL = env_bool("TWIN_REQUIRE_APPROVAL", False)
# Let anyone read the twin (state API and Socket.IO) without logging in.
TWIN_PUBLIC_READ = env_bool("TWIN_PUBLIC_READ", False)
# How often each server process checks that the readers on its live connections
# are still allowed (user active, token not deleted, session not ended or its
# password changed); the others are disconnected (twin/live/guard.py).
TWIN_READER_RECHECK_SECONDS = env_number("TWIN_READER_RECHECK_SECONDS", 5.0)
# How often the server expects an agent to report; told to agents at registration.
TWIN_HEARTBEAT_SECONDS = env_int("TWIN_HEARTBEAT_SECONDS", 10)
# TWIN_CREDENTIAL_KEY (see "Secrets" above): agents' signing secrets are derived
# from it and their key id, so the database holds no secret an attacker could
# sign with. Changing it revokes every agent credential at once.

# --- Commands ----------------------------------------------------------------------------
# An agent's reported output is kept up to this many bytes (then cut, with a marker).
TWIN_COMMAND_OUTPUT_MAX_BYTES = env_int("TWIN_COMMAND_OUTPUT_MAX_BYTES", 65536)
# Finished commands are removed this many days after their last invocation ended.
TWIN_COMMAND_RETENTION_DAYS = env_number("TWIN_COMMAND_RETENTION_DAYS", 30.0)

# --- Background jobs ------------------------------------------------------------------
# Each server process runs due jobs (pruning, timeouts, status by the clock) on a
# thread of its own, every tick; claims in the database make each run happen once
# across processes. False: run them apart with `manage.py run_jobs --loop`.
TWIN_JOBS_ENABLED = env_bool("TWIN_JOBS_ENABLED", True)
TWIN_JOBS_TICK_SECONDS = env_number("TWIN_JOBS_TICK_SECONDS", 1.0)

# --- Alerts (alerts/, docs/api.md "Alerts") ----------------------------------------
# How often every rule is evaluated over the latest values and the clock (the status recorder's tick).
TWIN_ALERTS_EVALUATE_SECONDS = env_number("TWIN_ALERTS_EVALUATE_SECONDS", 1.0)
# The share of one core evaluation may take: after a run that cost c CPU seconds the next waits
# at least c / share (at 10,000 hosts a run costs about 0.2 s: every 4 s; a small fleet stays at every second).
TWIN_ALERTS_CPU_SHARE = env_number("TWIN_ALERTS_CPU_SHARE", 0.05)
# How often queued notices are sent (and failed ones retried, with backoff up to the last figure).
TWIN_ALERTS_DELIVER_SECONDS = env_number("TWIN_ALERTS_DELIVER_SECONDS", 1.0)
TWIN_ALERTS_RETRY_MAX_SECONDS = env_number("TWIN_ALERTS_RETRY_MAX_SECONDS", 300.0)
TWIN_ALERTS_ATTEMPTS_MAX = env_int("TWIN_ALERTS_ATTEMPTS_MAX", 12)
TWIN_ALERTS_SEND_TIMEOUT_SECONDS = env_number("TWIN_ALERTS_SEND_TIMEOUT_SECONDS", 5.0)
# Webhooks and Alertmanagers on private, loopback or link-local addresses are refused unless allowed.
TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS = env_bool("TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS", False)
# Where notices' generatorURL points: the dashboard's address as operators open it (empty: a relative link).
TWIN_ALERTS_DASHBOARD_URL = env.str("TWIN_ALERTS_DASHBOARD_URL", default="")
# A Prometheus Alertmanager (its base URL) that gets every firing and resolved alert, beside the admin's receivers.
TWIN_ALERTMANAGER_URL = env.str("TWIN_ALERTMANAGER_URL", default="")
# How often alerts still firing are posted to each Alertmanager again, each with endsAt four of these ahead:
# Alertmanager resolves an alert by itself once its endsAt passes (resolve_timeout, 5 min, when none is given).
TWIN_ALERTMANAGER_REPOST_SECONDS = env_number("TWIN_ALERTMANAGER_REPOST_SECONDS", 60.0)

# --- History ------------------------------------------------------------------------
# Raw samples are kept this many whole UTC days, then their day is dropped;
# 5-minute and hourly rollups outlive them (metrics/retention.py).
TWIN_RAW_RETENTION_DAYS = env_int("TWIN_RAW_RETENTION_DAYS", 14)
TWIN_ROLLUP_RETENTION_DAYS = env_int("TWIN_ROLLUP_RETENTION_DAYS", 90)
TWIN_HOURLY_RETENTION_DAYS = env_int("TWIN_HOURLY_RETENTION_DAYS", 400)
if not 1 <= TWIN_RAW_RETENTION_DAYS <= TWIN_ROLLUP_RETENTION_DAYS <= TWIN_HOURLY_RETENTION_DAYS:
    raise ImproperlyConfigured(
        "History retention must satisfy 1 <= TWIN_RAW_RETENTION_DAYS <= TWIN_ROLLUP_RETENTION_DAYS "
        "<= TWIN_HOURLY_RETENTION_DAYS."
    )
# Labelled metrics: at most this many series (a name and its labels) per host and
# in all; a new series beyond either is refused with the limit's name (metrics/series.py).
TWIN_SERIES_MAX_PER_HOST = env_int("TWIN_SERIES_MAX_PER_HOST", 1_000)
TWIN_SERIES_MAX_TOTAL = env_int("TWIN_SERIES_MAX_TOTAL", 1_000_000)

if TWIN_OFFLINE_AFTER_SECONDS < TWIN_STALE_AFTER_SECONDS:
    raise ImproperlyConfigured("TWIN_OFFLINE_AFTER_SECONDS must not be below TWIN_STALE_AFTER_SECONDS.")
if TWIN_PUSH_MAX_PER_SECOND <= 0:
    raise ImproperlyConfigured("TWIN_PUSH_MAX_PER_SECOND must be positive.")
