"""API throttles: a strict sliding window, counted across processes, invalid tokens throttled by
address, and no token in a cache key."""
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.throttling import SimpleRateThrottle

from rankloop import api_common
from tests.support.api import token_client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock, moved by hand."""
    now = [1_000_020.0]  # 1_000_020 is a whole minute: a window edge
    monkeypatch.setattr(SimpleRateThrottle, "timer", staticmethod(lambda: now[0]))
    return now


@pytest.fixture
def rates(monkeypatch):
    def set_rates(**scopes):
        merged = {"anon": "100000/hour", "user": "100000/hour", "token": "100000/hour", **scopes}
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", merged)

    return set_rates


def most_in_any_window(times, length):
    return max(sum(1 for u in times if t - length < u <= t) for t in times)


def test_it_allows_at_most_the_rate_in_any_minute_when_a_burst_straddles_a_window_edge(
        annotator, clock, rates):
    rates(token="10/min")
    api = token_client(annotator)
    edge = clock[0]
    allowed = []
    for t in [edge - 0.5] * 15 + [edge + 0.5] * 15:
        clock[0] = t
        if api.get("/api/v1/assignments/").status_code == 200:
            allowed.append(t)
    assert most_in_any_window(allowed, 60) <= 10


def test_it_allows_at_most_the_rate_in_any_minute_to_a_client_that_paces_itself(annotator, clock, rates):
    # The whole rate just before an edge, then a request every second: a fixed window (and a
    # weighted two-window estimate) lets about twice the rate through within one minute.
    rates(token="10/min")
    api = token_client(annotator)
    edge = clock[0]
    allowed = []
    for t in [edge - 1 + i / 100 for i in range(10)] + [edge + i for i in range(70)]:
        clock[0] = t
        if api.get("/api/v1/assignments/").status_code == 200:
            allowed.append(t)
    assert len(allowed) >= 15  # it is a sliding limit, not a lockout
    assert most_in_any_window(allowed, 60) <= 10


def test_a_refused_request_says_when_to_retry_and_that_time_works(annotator, clock, rates):
    rates(token="3/min")
    api = token_client(annotator)
    assert [api.get("/api/v1/assignments/").status_code for _ in range(4)] == [200, 200, 200, 429]
    retry_after = int(api.get("/api/v1/assignments/")["Retry-After"])
    assert 0 < retry_after <= 66
    clock[0] += retry_after
    assert api.get("/api/v1/assignments/").status_code == 200


def test_invalid_tokens_are_throttled_by_address_and_their_401s_count(rates):
    from rest_framework.test import APIClient

    rates(anon="5/min")
    guesser = APIClient(REMOTE_ADDR="203.0.113.7")
    codes = []
    for _ in range(8):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_hex(20)}")
        codes.append(guesser.get("/api/v1/assignments/").status_code)
    assert codes == [401] * 5 + [429] * 3
    assert "Retry-After" in guesser.get("/api/v1/assignments/")
    other = APIClient(REMOTE_ADDR="198.51.100.9")
    other.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_hex(20)}")
    assert other.get("/api/v1/assignments/").status_code == 401  # another address is not held back


def test_requests_without_credentials_on_protected_endpoints_are_throttled_by_address(rates):
    from rest_framework.test import APIClient

    rates(anon="3/min")
    anonymous = APIClient(REMOTE_ADDR="203.0.113.8")
    codes = [anonymous.get("/api/v1/assignments/").status_code for _ in range(5)]
    assert codes == [401] * 3 + [429] * 2


def test_no_raw_token_appears_in_any_cache_key(annotator, settings):
    import redis

    url = os.environ.get("TEST_CACHE_REDIS_URL", "redis://127.0.0.1:6379/13")
    server = redis.Redis.from_url(url)
    try:
        server.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    server.flushdb()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    api = token_client(annotator)
    token = api._credentials["HTTP_AUTHORIZATION"].split()[1]
    for _ in range(3):
        assert api.get("/api/v1/assignments/").status_code == 200
    keys = [key.decode() for key in server.scan_iter()]
    assert any("throttle_token" in key for key in keys), keys
    assert not [key for key in keys if token in key]
    server.flushdb()


# Runs in a separate Python process: N requests from one address through the anonymous throttle
# with the configured default cache; prints how many it let through.
COUNTER = """
import sys, django
django.setup()
from django.test import RequestFactory
from rest_framework.request import Request
from rankloop.api_common import AnonThrottle
AnonThrottle.THROTTLE_RATES = {"anon": sys.argv[2] + "/min"}
request = Request(RequestFactory().get("/", REMOTE_ADDR=sys.argv[1]))
print(sum(AnonThrottle().allow_request(request, None) for _ in range(int(sys.argv[3]))))
"""


def test_the_default_cache_counts_across_processes(settings):
    """Without CACHE_URL, two processes (two gunicorn workers) share one count."""
    env = {k: v for k, v in os.environ.items() if k != "CACHE_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "rankloop.settings"
    address = f"192.0.2.{secrets.randbelow(250) + 1}"
    workers = [subprocess.Popen([sys.executable, "-c", COUNTER, address, "40", "30"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [worker.communicate(timeout=120) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), results
    assert sum(int(out.strip().splitlines()[-1]) for out, _ in results) == 40


class BrokenCache:
    """A cache whose every call fails, as diskcache's SQLite did once under load ("disk I/O error")."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        return fail


def test_a_failing_counts_cache_lets_the_request_through_and_logs_it(annotator, rates, monkeypatch, caplog):
    rates(token="10/min")
    monkeypatch.setattr(api_common, "counts_cache", BrokenCache)  # the throttles' one client per process
    response = token_client(annotator).get("/api/v1/assignments/")
    assert response.status_code == 200
    assert "rate-limit counts unavailable" in caplog.text
