"""What every app's API shares: keyset pagination, token authentication, the admin permission,
the throttles and the mapping of errors to HTTP answers (RankloopError and the database's
refusals; rankloop.middleware maps the same for pages)."""
import hashlib
import logging
import threading

from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import DataError, IntegrityError, OperationalError
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions, renderers
from rest_framework.authtoken.models import Token
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle, UserRateThrottle

from .errors import RankloopError

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


def client_address(request):
    """The client's address as the throttles see it: REMOTE_ADDR, or with NUM_PROXIES set the
    address that many proxies back in X-Forwarded-For (DRF's rule). django-axes uses it too
    (AXES_CLIENT_IP_CALLABLE), so login lockouts and API throttles agree on who is who."""
    return BaseThrottle().get_ident(request)


_counts_cache = None
_counts_cache_lock = threading.Lock()


def counts_cache():
    """One client of the default cache per process for the rate-limit counts. DRF's throttles use
    `django.core.cache.cache`, which is per request context: under the async views (/v1/) each
    request built a new client (diskcache opened its SQLite shards again, about 6 ms of the time to
    first token in bench/serve.py; Redis would open a new connection). Both backends are
    thread-safe; made on first use, so after a server forks its workers."""
    global _counts_cache
    if _counts_cache is None:
        with _counts_cache_lock:
            if _counts_cache is None:
                _counts_cache = caches.create_connection("default")
    return _counts_cache


@receiver(setting_changed)
def _forget_counts_cache(setting, **kwargs):
    global _counts_cache
    if setting == "CACHES":  # a test's override_settings(CACHES=...) gets a client of its own cache
        _counts_cache = None


class SlidingWindowThrottle(SimpleRateThrottle):
    """At most `rate` requests in ANY window of the rate's length, not only in each fixed window
    (a fixed window lets twice the rate through around its edge). Each identity counts its
    requests per sub-window (a tenth of the window); a request is allowed when the current
    sub-window plus the ten before it hold at most the rate. Those eleven cover every window
    that ends now, so the bound is strict; the price is that a client pacing exactly at the
    rate gets 10/11 of it through. Past sub-windows never change, so their sum is computed once
    per sub-window and kept beside it: an allowed request costs two cache calls (incr and get),
    whatever the rate. DRF's SimpleRateThrottle keeps and pickles every request's time instead,
    so each request costs O(rate). A refused request does not count (as in DRF): a client that
    waits for Retry-After gets back in."""

    sub_windows = 10
    cache = property(lambda self: counts_cache())

    def allow_request(self, request, view):
        try:
            return self._allow_request(request, view)
        except Exception:  # noqa: BLE001 - the counts' cache failed (e.g. diskcache's SQLite under load)
            # A rate limit protects the service; it must not be what breaks a request. Let it
            # through and say so in the log.
            log.warning("rate-limit counts unavailable; %s let through", type(self).__name__, exc_info=True)
            return True

    def _allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        self.step = self.duration / self.sub_windows
        self.bucket = int(self.now // self.step)
        ttl = self.duration + 2 * self.step + 1  # a sub-window is read until 10 more have passed
        current = self._bucket_key(self.bucket)
        count = self._increment(current, ttl)
        earlier = self.cache.get(f"{current}:earlier")
        if earlier is None:  # this identity's first request in this sub-window
            earlier = sum(self._earlier_counts())
            self.cache.set(f"{current}:earlier", earlier, ttl)
        if earlier + count <= self.num_requests:
            return True
        try:
            self.cache.decr(current)
        except ValueError:  # the counter expired meanwhile: nothing to take back
            pass
        self._retry_after = self._time_until_room(self._earlier_counts() + [count - 1])
        return False

    def wait(self):
        return self._retry_after

    def _bucket_key(self, bucket):
        return f"{self.key}:{bucket}"

    def _increment(self, key, ttl):
        # incr first: only a sub-window's first request finds no counter, so most requests
        # make one call here, not two.
        try:
            return self.cache.incr(key)
        except ValueError:
            if self.cache.add(key, 1, ttl):
                return 1
            return self.cache.incr(key)  # another request added it meanwhile

    def _earlier_counts(self):
        """Counts of the sub-windows before the current one, oldest first."""
        keys = [self._bucket_key(b) for b in range(self.bucket - self.sub_windows, self.bucket)]
        found = self.cache.get_many(keys)
        return [found.get(key, 0) for key in keys]

    def _time_until_room(self, counts):
        """Seconds until enough of the oldest sub-windows have left the window for one more
        request. counts: oldest first, the current sub-window last."""
        for oldest_kept in range(len(counts)):
            if sum(counts[oldest_kept + 1:]) + 1 <= self.num_requests:
                break
        # counts[i] is sub-window bucket - sub_windows + i; it leaves when bucket + i + 1 begins.
        return max(0.0, (self.bucket + oldest_kept + 1) * self.step - self.now)


class AnonThrottle(SlidingWindowThrottle, AnonRateThrottle):
    """Anonymous requests, by address. Requests whose credentials fail (an unknown token, no
    credentials on a protected endpoint) count here too: see exception_handler."""


class UserThrottle(SlidingWindowThrottle, UserRateThrottle):
    pass


class TokenRateThrottle(SlidingWindowThrottle):
    """Throttles each API token on its own (the user throttle counts all of a user's
    requests together); requests without a token are left to the user/anon throttles.
    The cache key holds a hash of the token, never the token: whoever reads the cache
    (a shared Redis) must not find credentials there."""

    scope = "token"

    def get_cache_key(self, request, view):
        key = getattr(request.auth, "key", None)
        if not key:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}


class FailedAuthenticationThrottle(SlidingWindowThrottle):
    """Counts a request whose credentials failed against its address's anonymous budget
    (the same counter as AnonThrottle): DRF checks credentials before throttles, so without
    this someone guessing tokens would get 401s forever and never a 429."""

    scope = "anon"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's HTML pages of the API. Its templates carry style attributes, so these pages allow
    inline styles in their Content-Security-Policy; scripts stay files from this site."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_update = {"style-src": ["'unsafe-inline'"]}  # read by django-csp's middleware
        return super().render(data, accepted_media_type, renderer_context)


class IgnoreFormatParam(DefaultContentNegotiation):
    """For views whose own `format` query parameter names a file format, not a renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def database_refusal(exc):
    """(status, message) for an error the database raised, or None. The message names the
    problem (and the column, when the database says which) but never carries the database's
    own text, which can show SQL, constraint names and other rows' values. The API's handler
    below and the pages' middleware both answer with it."""
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
    """A RankloopError becomes its status with its message and code; data the database refuses
    becomes a 400 or 409 that names the problem, with the database's own message only in the
    server's log. Failed or missing credentials count against the address's anonymous rate, and
    past it become a 429."""
    if isinstance(exc, RankloopError):
        return Response(exc.as_json(), status=exc.status)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        throttle = FailedAuthenticationThrottle()
        if not throttle.allow_request(context["request"], context.get("view")):
            exc = exceptions.Throttled(throttle.wait())
    refusal = database_refusal(exc) if isinstance(exc, (DataError, IntegrityError, OperationalError)) else None
    if refusal is not None:
        status_code, message = refusal
        view = context.get("view")
        log.warning("Database refused a request to %s: %s", type(view).__name__ if view else "?", exc)
        return Response({"detail": message}, status=status_code)
    from rest_framework.views import exception_handler as drf_exception_handler  # views import this module

    return drf_exception_handler(exc, context)
