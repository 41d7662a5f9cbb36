"""Settings come from the environment. Unset, rankloop runs on an embedded default:
SQLite and a filesystem Celery broker (no server to install). Set DATABASE_URL and
CELERY_BROKER_URL for Postgres and Redis."""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RANKLOOP_VAR_DIR", BASE_DIR / "var"))

# Nothing downloads models or datasets at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Unset, DEBUG is on: the embedded demo is a development setup. Production sets DEBUG=0.
DEBUG = env_bool("DEBUG", default=True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-rankloop-development-only-key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rankloop.apps.RankloopConfig",
    "labeling",
    "models_app",
    "rlhf",
    "serving",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After htmx (its pages answer htmx requests with a fragment): an uncaught RankloopError or
    # database refusal becomes an error page.
    "rankloop.middleware.RankloopErrorMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during the view into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "rankloop.urls"
WSGI_APPLICATION = "rankloop.wsgi.application"

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

# Database: DATABASE_URL (Postgres in tests and production), else embedded SQLite.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # No per-request health check: it costs a round trip on every request; a broken
    # connection is replaced at the next request anyway.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Prepared statements: psycopg prepares a query the 3rd time a connection runs it, so
        # Postgres stops parsing and planning the hot ones (next task, submit: planning cost
        # more than running them). Django turns this off by default for transaction-pooling
        # proxies (pgbouncer before 1.21): set DATABASE_PREPARE_THRESHOLD=off behind one.
        # Server-side binding is what lets psycopg prepare.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["server_side_binding"] = env_bool("DATABASE_SERVER_SIDE_BINDING", default=True)
        threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "2")
        options["prepare_threshold"] = None if threshold.lower() in ("off", "none", "") else int(threshold)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "rankloop.sqlite3",
            # IMMEDIATE transactions serialize writers, so the task claim stays correct
            # without row locks; WAL lets readers run beside the writer.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login brute-force protection (django-axes): every password login (the login page, the admin's
# login; the API takes tokens and sessions, no passwords) goes through AxesStandaloneBackend,
# which refuses a locked-out client before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)
AXES_HANDLER = "rankloop.account_views.LoginLockoutHandler"
# Lockout policy: a username at one address. Not the username alone: anyone could then lock
# any annotator out just by failing their login (usernames are not secret). Not the address
# alone: one NAT address often carries a whole annotation team. The handler adds the address
# alone at a higher limit (RANKLOOP_LOGIN_FAILURES_PER_ADDRESS), against one address trying
# many usernames. Many addresses on one username are left to the password validators.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
RANKLOOP_LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("RANKLOOP_LOGIN_FAILURES_PER_ADDRESS", "50"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True  # a successful login clears that username's failures at that address
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
# The client's address as the API throttles read it (REMOTE_ADDR, or NUM_PROXIES back in X-Forwarded-For).
AXES_CLIENT_IP_CALLABLE = "rankloop.api_common.client_address"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeling:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
# Chart.js for the round charts, from npm (`npm ci`, run by `make install`), served locally (no CDN).
if (BASE_DIR / "node_modules" / "chart.js" / "dist").is_dir():
    STATICFILES_DIRS.append(("chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# Security: strict when DEBUG is off (`manage.py check --deploy` is clean then).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp): pages load only this site's scripts, styles, images and
# fonts; no inline script, no inline style (element or attribute), no eval, no framing, forms
# post only here. htmx and Chart.js work under it (base.html turns off htmx's injected
# indicator style). The API docs pages (rankloop/api_urls.py) and the browsable API's HTML
# (api_common.BrowsableAPIRenderer) add inline styles for themselves, which their libraries set.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Permissions-Policy (django-permissions-policy): no page uses these browser features.
PERMISSIONS_POLICY = {feature: [] for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer",
    "microphone", "midi", "payment", "publickey-credentials-get", "screen-wake-lock", "serial", "usb",
    "xr-spatial-tracking",
)}
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(50 * 1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# Cache (the API throttle counters): Redis when CACHE_URL is set, shared by every process on
# every machine. Else a disk cache in var/cache (diskcache: SQLite files, atomic increments),
# shared by the processes of one machine, so gunicorn workers count together. Cost of the two
# throttles (user, token) of an annotator's request, measured on the 2-core machine while busy
# (load 5): per-process memory 0.08 ms, diskcache 0.6 ms, Redis 1.6 ms (6 round trips),
# FileBasedCache 7.1 ms (a temporary file, a rename and a directory scan per write; its
# read-modify-write increment also loses counts between processes), DatabaseCache 2.1 ms on
# SQLite and 17 ms on Postgres (a committed transaction per write; increments not atomic either).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "diskcache.DjangoCache", "LOCATION": str(VAR_DIR / "cache"), "SHARDS": 4}}

# Celery: Redis (or any broker URL) when set, else kombu's filesystem transport, which
# needs no server and does not share the SQLite file.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    _broker_dir = VAR_DIR / "broker"
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"  # the host is unused; without one kombu warns on every connection
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "models_app.tasks.*": {"queue": "gpu"},
    "rlhf.tasks.train_*": {"queue": "gpu"},
    "rlhf.tasks.run_*": {"queue": "gpu"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE = {
    "reclaim-expired-leases": {"task": "labeling.tasks.reclaim_expired_leases", "schedule": 60.0},
    "reap-lost-training-runs": {"task": "rlhf.tasks.reap_lost_runs", "schedule": 60.0},
}
# Training runs beat every RLHF_HEARTBEAT_S; the reaper fails a run silent for RLHF_HEARTBEAT_TIMEOUT_S.
RLHF_HEARTBEAT_S = float(os.environ.get("RLHF_HEARTBEAT_S", "10"))
RLHF_HEARTBEAT_TIMEOUT_S = int(os.environ.get("RLHF_HEARTBEAT_TIMEOUT_S", "120"))
RLHF_TORCH_THREADS = int(os.environ.get("RLHF_TORCH_THREADS", "0"))  # 0: the cores, shared by processes
# A run that succeeds deletes its intermediate checkpoints (its model version is saved apart).
RLHF_KEEP_CHECKPOINTS = env_bool("RLHF_KEEP_CHECKPOINTS", default=False)
# Each stage runs as `accelerate launch` of its script (rlhf/launcher.py); a cancel sends SIGTERM
# to the run's process group, then SIGKILL after RLHF_CANCEL_GRACE_S seconds.
RLHF_CANCEL_GRACE_S = float(os.environ.get("RLHF_CANCEL_GRACE_S", "10"))
# "python": a one-process CPU run starts its script with plain python instead of accelerate
# launch (the same run, without accelerate's own start-up; the tests' workers use it).
RLHF_SINGLE_PROCESS_RUNNER = os.environ.get("RLHF_SINGLE_PROCESS_RUNNER", "accelerate")
# The only folder whose files a project or round may name as its DeepSpeed/FSDP accelerate config
# (launcher setting config_file); "" (the default): none may.
RANKLOOP_LAUNCHER_CONFIG_DIR = os.environ.get("RANKLOOP_LAUNCHER_CONFIG_DIR", "")

# Models: where converted and trained weights live.
MODEL_STORE = Path(os.environ.get("MODEL_STORE", VAR_DIR / "models"))
# Generation (models_app): device ("" picks cuda when present), prompts per batch, the worker's
# model cache (LRU by count and bytes), and the moderation filters run on every candidate.
GENERATION_DEVICE = os.environ.get("GENERATION_DEVICE", "")
GENERATION_BATCH_SIZE = int(os.environ.get("GENERATION_BATCH_SIZE", "8"))
MODEL_CACHE_MAX_MODELS = int(os.environ.get("MODEL_CACHE_MAX_MODELS", "2"))
MODEL_CACHE_MAX_BYTES = int(os.environ.get("MODEL_CACHE_MAX_BYTES", str(4 * 1024**3)))
MODERATION_FILTERS = env_list("MODERATION_FILTERS", "rules")

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rankloop.api_common.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rankloop.api_common.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rankloop.api_common.IdCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rankloop.api_common.AnonThrottle",
        "rankloop.api_common.UserThrottle",
        "rankloop.api_common.TokenRateThrottle",
    ],
    "EXCEPTION_HANDLER": "rankloop.api_common.exception_handler",
    # Proxies in front of the app that append to X-Forwarded-For: the client's address (for
    # throttles and login lockouts) is read that many entries from its end. 0: REMOTE_ADDR.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")) or None,
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "60/min"),
        "user": os.environ.get("API_THROTTLE_USER", "100000/hour"),
        "token": os.environ.get("API_THROTTLE_TOKEN", "100000/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "rankloop API",
    "DESCRIPTION": "Import prompts, rank answers, export preference datasets, run RLHF rounds.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs pages need a login (session or token): generating the schema costs
    # the server most of a second of CPU, which anyone could otherwise ask for again and again.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and Redoc from local static files (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema name per choice set that several fields share (else check --deploy warns).
    "ENUM_NAME_OVERRIDES": {
        "PairwiseChoiceEnum": "labeling.models.Annotation.PairwiseChoice",
        "ModelVersionKindEnum": "models_app.models.ModelVersion.Kind",
    },
}
# Prompt import limits (the whole file is validated before anything is written).
RANKLOOP_IMPORT_MAX_BYTES = int(os.environ.get("RANKLOOP_IMPORT_MAX_BYTES", str(DATA_UPLOAD_MAX_MEMORY_SIZE)))
RANKLOOP_IMPORT_MAX_LINES = int(os.environ.get("RANKLOOP_IMPORT_MAX_LINES", "200000"))
RANKLOOP_IMPORT_MAX_CANDIDATES = int(os.environ.get("RANKLOOP_IMPORT_MAX_CANDIDATES", "9"))
RANKLOOP_IMPORT_MAX_TEXT_CHARS = int(os.environ.get("RANKLOOP_IMPORT_MAX_TEXT_CHARS", "100000"))

# Labeling limits
RANKLOOP_MAX_TEXT_CHARS = int(os.environ.get("RANKLOOP_MAX_TEXT_CHARS", "20000"))

# Serving (the chat and the OpenAI-compatible /v1/ API): the upstream that deployments marked
# "embedded" use (`make demo` starts `transformers serve` there), the timeouts of each upstream
# request (connect, and each chunk read: a silent upstream ends in a 503, never a hang), limits
# on what one request may ask for, and the default rate limits (the admin sets them per project
# and per user group).
RANKLOOP_EMBEDDED_UPSTREAM_URL = os.environ.get("RANKLOOP_EMBEDDED_UPSTREAM_URL", "http://127.0.0.1:8011/v1")
RANKLOOP_UPSTREAM_CONNECT_TIMEOUT_S = float(os.environ.get("RANKLOOP_UPSTREAM_CONNECT_TIMEOUT_S", "3"))
RANKLOOP_UPSTREAM_READ_TIMEOUT_S = float(os.environ.get("RANKLOOP_UPSTREAM_READ_TIMEOUT_S", "60"))
RANKLOOP_SERVING_MAX_N = int(os.environ.get("RANKLOOP_SERVING_MAX_N", "4"))
RANKLOOP_SERVING_MAX_TOKENS = int(os.environ.get("RANKLOOP_SERVING_MAX_TOKENS", "1024"))
RANKLOOP_SERVING_DEFAULT_MAX_TOKENS = int(os.environ.get("RANKLOOP_SERVING_DEFAULT_MAX_TOKENS", "256"))
RANKLOOP_SERVING_REQUESTS_PER_MINUTE = int(os.environ.get("RANKLOOP_SERVING_REQUESTS_PER_MINUTE", "60"))
RANKLOOP_SERVING_TOKENS_PER_DAY = int(os.environ.get("RANKLOOP_SERVING_TOKENS_PER_DAY", "200000"))
# Sync views (the annotator pages, the admin) run on this many threads per process when the
# whole site is served by the ASGI app (rankloop.asgi, uvicorn): streams never take these.
RANKLOOP_WSGI_THREADS = int(os.environ.get("RANKLOOP_WSGI_THREADS", "3"))
# The async views' database work (checking a chat request, recording its outcome) runs on this
# many long-lived threads per process, each keeping its connection (serving/database.py).
RANKLOOP_SERVING_DB_THREADS = int(os.environ.get("RANKLOOP_SERVING_DB_THREADS", "4"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR",
                        "filters": ["require_debug_false"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's own console handler beside the root's printed every django.* line twice under DEBUG.
    "loggers": {"django": {"handlers": ["mail_admins"], "level": "INFO"}, "django.server": {"level": "WARNING"}},
}
