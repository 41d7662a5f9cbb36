"""What every app's API shares: keyset pagination, the admin permission, the per-token
throttle and the mapping of service errors to HTTP answers."""
import logging

from django.contrib.auth import get_user_model
from django.db import DataError, IntegrityError, OperationalError
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions
from rest_framework.authtoken.models import Token
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

log = logging.getLogger("rankloop.api")


class IdCursorPagination(CursorPagination):
    """Keyset pagination on the primary key: a page never repeats or skips a row when others
    insert or delete rows meanwhile (offsets would)."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication with the token and its user read in one hand-written query:
    every annotator request authenticates, and the ORM query cost more to build than to run."""

    def authenticate_credentials(self, key):
        from . import rawsql

        User = get_user_model()
        user_names = rawsql.attnames(User)
        row = rawsql.fetch_one(
            f"SELECT t.created, {rawsql.columns(User, 'u', user_names)} FROM {rawsql.table(Token)} t "
            f"JOIN {rawsql.table(User)} u ON u.{User._meta.pk.column} = t.user_id WHERE t.key = %s",
            [key],
        )
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = rawsql.instance(User, user_names, row[1:])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = rawsql.instance(Token, rawsql.attnames(Token), (key, user.pk, row[0]))
        token.user = user
        return user, token


class IsAdmin(permissions.BasePermission):
    message = "Only project admins (staff) may use this endpoint."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsAdminOrReadOnly(IsAdmin):
    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


class FixedWindowThrottle(SimpleRateThrottle):
    """A counter per time window. DRF's SimpleRateThrottle keeps (and pickles) the time of
    every request in its window, so each request costs O(rate); this costs O(1)."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        key = f"{self.key}:{window}"
        # incr first: only a window's first request finds no counter, so most requests make one
        # cache call (a Redis round trip when CACHE_URL is set), not two.
        try:
            count = self.cache.incr(key)
        except ValueError:
            if self.cache.add(key, 1, self.duration + 1):
                return True
            count = self.cache.incr(key)  # another request added it meanwhile
        return count <= self.num_requests

    def wait(self):
        return max(0.0, self.window_end - self.now)


class AnonThrottle(FixedWindowThrottle, AnonRateThrottle):
    pass


class UserThrottle(FixedWindowThrottle, UserRateThrottle):
    pass


class TokenRateThrottle(FixedWindowThrottle):
    """Throttles each API token on its own (the user throttle counts all of a user's
    requests together); requests without a token are left to the user/anon throttles."""

    scope = "token"

    def get_cache_key(self, request, view):
        key = getattr(request.auth, "key", None)
        if not key:
            return None
        return self.cache_format % {"scope": self.scope, "ident": key}


class IgnoreFormatParam(DefaultContentNegotiation):
    """For views whose own `format` query parameter names a file format, not a renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def _database_refusal(exc):
    """(status, message) for an error the database raised, or None. The message names the
    problem (and the column, when the database says which) but never carries the database's
    own text, which can show SQL, constraint names and other rows' values."""
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or ""
    diag = getattr(cause, "diag", None)
    column = getattr(diag, "column_name", None)
    field = f" ({column})" if column else ""
    if isinstance(exc, IntegrityError):
        if sqlstate == "23502":
            return 400, f"A required value is missing{field}: it cannot be null."
        if sqlstate == "23503":
            return 409, "This refers to an object that does not exist (any more)."
        if sqlstate == "23514":
            return 400, f"A value is outside what its field allows{field}."
        return 409, "This would duplicate an existing object: a value that must be unique is already taken."
    if isinstance(exc, DataError):
        return 400, f"A value does not fit its field{field}: too long, out of range or not valid text."
    if isinstance(exc, OperationalError) and sqlstate in _RETRY_SQLSTATES:
        return 409, "Another change to the same data happened at the same time; try again."
    return None


def exception_handler(exc, context):
    """Service refusals (LabelingError and the other apps' errors with a `status`) become
    their HTTP status with the message; data the database refuses becomes a 400 or 409 that
    names the problem, with the database's own message only in the server's log."""
    status_code = getattr(exc, "status", None)
    message = getattr(exc, "message", None)
    if isinstance(status_code, int) and message is not None and not isinstance(exc, exceptions.APIException):
        body = {"detail": message}
        errors = getattr(exc, "errors", None)
        if errors:
            body["errors"] = errors
        code = getattr(exc, "code", None)
        if code:
            body["code"] = code
        return Response(body, status=status_code)
    refusal = _database_refusal(exc) if isinstance(exc, (DataError, IntegrityError, OperationalError)) else None
    if refusal is not None:
        status_code, message = refusal
        view = context.get("view")
        log.warning("Database refused a request to %s: %s", type(view).__name__ if view else "?", exc)
        return Response({"detail": message}, status=status_code)
    from rest_framework.views import exception_handler as drf_exception_handler  # views import this module

    return drf_exception_handler(exc, context)


class ServiceRefusal(exceptions.APIException):
    """A service's refusal (ModelRegistryError, RoundError, …) with its message, as 400 for bad
    input or 409 for an action the object's state does not allow."""

    status_code = 400
    default_code = "refused"

    def __init__(self, message, status_code=400):
        super().__init__({"detail": message})
        self.status_code = status_code
