"""The database from the async views (the /v1/ API, the chat's streams). Their sync parts (check a
request, record its outcome) run on a few long-lived threads per process, so each thread keeps its
Postgres connection, and the statements psycopg has prepared on it, from one request to the next,
as the WSGI threads do. asgiref's default (thread_sensitive, one fresh thread per request) opened
a new connection for every chat request: with Postgres's per-backend caches cold, checking a
request took 15 to 20 ms instead of 4, most of the gateway's time before the first token
(bench/serve.py). The pool also bounds the connections streams take: RANKLOOP_SERVING_DB_THREADS
per process, however many streams are open."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

_pool = ThreadPoolExecutor(max_workers=settings.RANKLOOP_SERVING_DB_THREADS, thread_name_prefix="serving-db")


def _checked(function):
    @functools.wraps(function)
    def run(*args, **kwargs):
        # What Django does around each request: drop a connection that broke or is past CONN_MAX_AGE.
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def database_sync_to_async(function):
    """`function` (sync, may use the ORM) as an awaitable that runs on the serving pool."""
    return sync_to_async(_checked(function), thread_sensitive=False, executor=_pool)
