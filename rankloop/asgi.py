"""The ASGI entry point: `uvicorn rankloop.asgi:application`. It serves the whole site on one
port. Requests that stream from a model (the OpenAI-compatible /v1/ API and the chat page's
event streams) run as Django async views on the event loop, so an open stream holds no thread;
every other request (the annotator pages, the REST API, the admin: sync views) runs on Django's
WSGI handler in a pool of RANKLOOP_WSGI_THREADS threads, as under gunicorn gthread. Running the
sync views through Django's own ASGI handler instead would put them all on one thread per
process (asgiref's thread_sensitive), and annotators would queue behind each other."""
import asyncio
import contextvars
import os
import re
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from asgiref.wsgi import WsgiToAsgi, WsgiToAsgiInstance

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rankloop.settings")

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

# The streams' middleware: what their views use (the host check, the security headers, and the
# session login the chat's stream reads). Under an async view each sync middleware of the full
# list costs a thread hop on the way in and out: about 2 ms of the gateway's time to first token
# (bench/serve.py) for CSRF, CSP, messages, htmx and axes, which /v1/ (bearer tokens, JSON) and the
# chat stream (a GET of text/event-stream) never use.
STREAM_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


class _StreamHandler(ASGIHandler):
    """Django's ASGI handler with STREAM_MIDDLEWARE (Django reads the list from settings when a
    handler is built, and only then)."""

    def load_middleware(self, is_async=False):
        with override_settings(MIDDLEWARE=STREAM_MIDDLEWARE):
            super().load_middleware(is_async)


django.setup(set_prefix=False)  # what get_asgi_application does before it builds its handler
django_asgi = _StreamHandler()
django_wsgi = get_wsgi_application()

# Paths served by async views (the streams); everything else goes to the thread pool.
ASYNC_PATHS = re.compile(r"^/(v1/|chat/m/\d+/stream/)")

_pool = ThreadPoolExecutor(max_workers=settings.RANKLOOP_WSGI_THREADS, thread_name_prefix="wsgi")


class _PooledInstance(WsgiToAsgiInstance):
    """asgiref's WSGI adapter, its WSGI calls on our pool (asgiref's own runs them all on one thread)."""

    run_wsgi_app = sync_to_async(WsgiToAsgiInstance.__dict__["run_wsgi_app"].func, thread_sensitive=False,
                                 executor=_pool)

    def start_response(self, status, response_headers, exc_info=None):
        # Django writes Set-Cookie values with a leading space (WSGI servers strip it; h11 refuses it).
        return super().start_response(status, [(k, v.strip()) for k, v in response_headers], exc_info)


class _PooledWsgi(WsgiToAsgi):
    async def __call__(self, scope, receive, send):
        await _PooledInstance(self.wsgi_application)(scope, receive, send)


_threaded = _PooledWsgi(django_wsgi)


def _fresh(coroutine):
    """Run a request in a context of its own. asgiref carries context variables (the executor of
    a thread waiting in async_to_sync) from the WSGI threads back into the connection's task,
    and uvicorn starts a keep-alive connection's next request from it: without this, an async
    view after a page on the same connection found a dead executor."""
    return asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())


async def application(scope, receive, send):
    if scope["type"] == "http" and not ASYNC_PATHS.match(scope.get("path", "")):
        return await _fresh(_threaded(scope, receive, send))
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    return await _fresh(django_asgi(scope, receive, send))
