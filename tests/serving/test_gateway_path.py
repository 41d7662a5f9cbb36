"""The gateway's own path before the first token: its database work runs on long-lived threads that
keep their connections, and its streams keep the host check and the security headers with the
short middleware list (rankloop.asgi.STREAM_MIDDLEWARE)."""
import asyncio
import threading

import httpx
import pytest
from django.db import connection

from serving.database import database_sync_to_async


def _backend():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return threading.current_thread().name, cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_it_keeps_each_threads_connection_from_one_call_to_the_next():
    if connection.vendor != "postgresql":
        pytest.skip("reads the Postgres backend's pid")

    async def calls():
        return [await database_sync_to_async(_backend)() for _ in range(12)]

    seen = asyncio.run(calls())
    backends = {}
    for thread, pid in seen:
        backends.setdefault(thread, set()).add(pid)
    assert all(thread.startswith("serving-db") for thread in backends)
    assert all(len(pids) == 1 for pids in backends.values()), backends  # no new connection per call


def test_it_answers_the_api_with_the_security_headers(live_asgi):
    response = httpx.get(f"{live_asgi}/v1/models", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_it_refuses_an_unknown_host_on_the_api(live_asgi):
    response = httpx.get(f"{live_asgi}/v1/models", headers={"Host": "evil.example"}, timeout=10)
    assert response.status_code == 400
