"""Settings of the study's reference app, all from environment variables.

The app reproduces the 2022 "SQLite in Django" study's endpoints so that
`lode bench` can run it on SQLite (any journal mode, busy timeout and
transaction mode) and on PostgreSQL with the same code. Every knob is an
environment variable, so a benchmark matrix sets them per cell:

  STUDY_DB_ENGINE              sqlite (default) or postgresql
  STUDY_SQLITE_PATH            the SQLite file (default: db.sqlite3 here)
  STUDY_SQLITE_JOURNAL_MODE    delete, truncate, persist or wal; empty keeps
                               the file's mode (a new file: delete). WAL is
                               stored in the file, so `manage.py study_setup`
                               sets it before the server starts; truncate and
                               persist are per connection and set on connect.
  STUDY_SQLITE_BUSY_TIMEOUT_MS busy timeout in ms (empty: Python's 5000)
  STUDY_SQLITE_TXLOCK          deferred (default) or immediate: how atomic()
                               begins its transaction, i.e. Django 5.1's
                               OPTIONS["transaction_mode"], implemented here
                               for older Django (Debian 12 ships 3.2)
  STUDY_SQLITE_SYNCHRONOUS     full, normal or off (empty: SQLite's default)
  STUDY_PG_HOST, STUDY_PG_PORT, STUDY_PG_NAME, STUDY_PG_USER, STUDY_PG_PASSWORD
  STUDY_CONN_MAX_AGE           seconds a connection is reused (default 0, a
                               new connection per request, Django's default)
  STUDY_DEBUG                  1 for Django's debug pages (default off)
  STUDY_ALLOWED_HOSTS          comma-separated (default 127.0.0.1,localhost)

Errors are never hidden: with DEBUG off an unhandled exception is answered
with status 500 and a body whose first line is "ExceptionName: message"
(studyapp.middleware), so a load generator can group failures such as
"OperationalError: database is locked".
"""
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default).strip()


def choice(name, allowed, default=""):
    value = env(name, default).lower()
    if value and value not in allowed:
        raise ImproperlyConfigured(
            "%s=%r: want one of %s (or leave it empty for the default)" % (name, value, ", ".join(allowed))
        )
    return value


def number(name, default, minimum=0):
    raw = env(name)
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured("%s=%r: want a whole number" % (name, raw)) from None
    if value < minimum:
        raise ImproperlyConfigured("%s=%r: want a number >= %d" % (name, raw, minimum))
    return value


SECRET_KEY = env("STUDY_SECRET_KEY", "lode-study-reference-app-not-secret")
DEBUG = env("STUDY_DEBUG") in ("1", "true", "yes", "on")
ALLOWED_HOSTS = [h.strip() for h in env("STUDY_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]

INSTALLED_APPS = ["studyapp"]
MIDDLEWARE = ["studyapp.middleware.ErrorFirstLineMiddleware"]
ROOT_URLCONF = "studyapp.urls"
WSGI_APPLICATION = "studyapp.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    # The middleware answers errors itself; Django's request logger would
    # print a traceback per failed request, thousands per second under load.
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "CRITICAL"}},
}

ENGINE = choice("STUDY_DB_ENGINE", ["sqlite", "postgresql"], "sqlite")
CONN_MAX_AGE = number("STUDY_CONN_MAX_AGE", 0)

if ENGINE == "sqlite":
    busy_ms = number("STUDY_SQLITE_BUSY_TIMEOUT_MS", None)
    options = {}
    if busy_ms is not None:
        # Python's sqlite3 passes timeout (seconds) to sqlite3_busy_timeout.
        options["timeout"] = busy_ms / 1000.0
    DATABASES = {
        "default": {
            "ENGINE": "studyapp.sqlite_backend",
            "NAME": env("STUDY_SQLITE_PATH") or str(BASE_DIR / "db.sqlite3"),
            "OPTIONS": options,
            "CONN_MAX_AGE": CONN_MAX_AGE,
            # Read by studyapp.sqlite_backend, not passed to sqlite3.connect.
            "STUDY": {
                "journal_mode": choice("STUDY_SQLITE_JOURNAL_MODE", ["delete", "truncate", "persist", "wal"]),
                "txlock": choice("STUDY_SQLITE_TXLOCK", ["deferred", "immediate"], "deferred"),
                "synchronous": choice("STUDY_SQLITE_SYNCHRONOUS", ["full", "normal", "off"]),
                "busy_timeout_ms": busy_ms,
            },
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": env("STUDY_PG_HOST", "127.0.0.1"),
            "PORT": env("STUDY_PG_PORT", "5432"),
            "NAME": env("STUDY_PG_NAME", "study"),
            "USER": env("STUDY_PG_USER", "postgres"),
            "PASSWORD": env("STUDY_PG_PASSWORD"),
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }
