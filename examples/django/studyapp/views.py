"""The study's endpoints.

POST bodies are JSON; every id is validated, so a malformed request is a 400
with a JSON error, never a 500 that would be mistaken for a database error.
"""
import json

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from .models import Account, Counter, Event, Post

# Sizes of the seeded data (management/commands/study_setup.py).
AUTHORS = 100
POSTS = 10000
ACCOUNTS = 1000
COUNTERS = 10


def bad_request(message):
    return JsonResponse({"ok": False, "error": message, "status": 400}, status=400)


def method_not_allowed(allowed):
    resp = JsonResponse({"ok": False, "error": "use " + allowed, "status": 405}, status=405)
    resp["Allow"] = allowed
    return resp


def json_body(request):
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def int_field(data, name, lo, hi):
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return None
    return value


def hello(request):
    """No database at all: the ceiling of the app server itself."""
    return HttpResponse("Hello, world\n", content_type="text/plain")


def write(request):
    """A plain insert in autocommit mode (no transaction block)."""
    if request.method != "POST":
        return method_not_allowed("POST")
    data = json_body(request)
    if data is None:
        return bad_request('body must be a JSON object such as {"post_id": 1}')
    post_id = int_field(data, "post_id", 1, 2**31 - 1)
    if post_id is None:
        return bad_request("post_id must be a positive integer")
    kind = str(data.get("kind", "view"))[:20]
    event = Event.objects.create(post_id=post_id, kind=kind, payload=str(data.get("payload", ""))[:1000])
    return JsonResponse({"ok": True, "id": event.id}, status=201)


def write_after_read(request):
    """Read then write in one atomic() block: the pattern whose deferred
    transaction must upgrade its read lock under SQLite."""
    if request.method != "POST":
        return method_not_allowed("POST")
    data = json_body(request)
    if data is None:
        return bad_request('body must be a JSON object such as {"id": 1}')
    account_id = int_field(data, "id", 1, ACCOUNTS)
    if account_id is None:
        return bad_request("id must be an integer from 1 to %d" % ACCOUNTS)
    with transaction.atomic():
        account = Account.objects.get(id=account_id)
        Account.objects.filter(id=account.id).update(balance=F("balance") + 1)
    return JsonResponse({"ok": True, "id": account_id, "balance": account.balance + 1})


def read(request):
    """A read page: an author's latest 20 posts rendered by a template."""
    try:
        author_id = int(request.GET.get("author", "1"))
    except ValueError:
        return bad_request("author must be an integer")
    posts = Post.objects.filter(author_id=author_id).select_related("author").order_by("-id")[:20]
    return render(request, "studyapp/read.html", {"author_id": author_id, "posts": posts})


def counter(request, slug):
    """Increment one counter row (the hot row under load) in autocommit."""
    if request.method not in ("POST", "GET"):
        return method_not_allowed("POST, GET")
    n = Counter.objects.filter(slug=slug).update(count=F("count") + 1)
    if n == 0:
        return JsonResponse({"ok": False, "error": "no counter %r" % slug, "status": 404}, status=404)
    return JsonResponse({"ok": True, "slug": slug})


def config(request):
    """The settings as the database connection sees them, read back from
    the database itself where it can tell (for tests and for checking a
    benchmark's setup)."""
    out = {"engine": settings.ENGINE, "vendor": connection.vendor, "conn_max_age": settings.CONN_MAX_AGE}
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            study = settings.DATABASES["default"]["STUDY"]
            for pragma in ("journal_mode", "busy_timeout", "synchronous"):
                cur.execute("PRAGMA %s" % pragma)
                out[pragma] = cur.fetchone()[0]
            out["txlock"] = study["txlock"]
            out["path"] = settings.DATABASES["default"]["NAME"]
        else:
            cur.execute("SHOW server_version")
            out["server_version"] = cur.fetchone()[0]
            cur.execute("SELECT current_database()")
            out["database"] = cur.fetchone()[0]
    return JsonResponse(out)
