"""The pages' half of the error mapping (the API's is rankloop.api_common.exception_handler): an
uncaught RankloopError becomes a page with its message and status, and data the database refuses
a 400 or 409 page that names the problem without the database's own text."""
import logging

from django.db import DataError, IntegrityError, OperationalError
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from .api_common import database_refusal
from .errors import RankloopError

log = logging.getLogger("rankloop.pages")


def error_page(request, message, status, errors=None):
    """The error as a page, or as a fragment for htmx (which swaps it into the page it came from)."""
    template = "_error.html" if getattr(request, "htmx", False) else "error.html"
    return render(request, template, {"message": message, "errors": errors or {}, "status": status}, status=status)


class RankloopErrorMiddleware(MiddlewareMixin):
    """Only process_exception: on the async path (the /v1/ API, the chat stream) a middleware
    without process_request / process_response costs no thread hop per request."""

    def process_exception(self, request, exception):
        if isinstance(exception, RankloopError):
            return error_page(request, exception.message, exception.status, exception.errors)
        if isinstance(exception, (DataError, IntegrityError, OperationalError)):
            refusal = database_refusal(exception)
            if refusal is not None:
                log.warning("Database refused a request to %s: %s", request.path, exception)
                return error_page(request, refusal[1], refusal[0])
        return None  # Django's own handling (a 500, logged)
