"""Errors in the body's first line, with DEBUG off."""
from django.http import HttpResponse


class ErrorFirstLineMiddleware:
    """Answers an unhandled exception with status 500 and a text body whose
    first line is "ExceptionName: message" (for example "OperationalError:
    database is locked"), so a load generator groups failures by cause
    without Django's debug page. With STUDY_DEBUG=1 Django's own debug page
    is shown instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.conf import settings

        if settings.DEBUG:
            return None
        first = " ".join(str(exception).split())
        body = "%s: %s\n" % (type(exception).__name__, first) if first else type(exception).__name__ + "\n"
        return HttpResponse(body, status=500, content_type="text/plain; charset=utf-8")
