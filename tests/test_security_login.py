"""Password logins lock out after repeated failures (django-axes): a username at one address,
and an address trying many usernames; the admin's login too."""
from datetime import timedelta

import pytest

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-123"
ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def log_in(client, username, password, address=ATTACKER, url="/accounts/login/"):
    client.cookies.clear()
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(response):
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


def fail(client, username, times, address=ATTACKER, url="/accounts/login/"):
    for _ in range(times):
        assert log_in(client, username, "wrong-guess", address, url).status_code in (200, 429)


def test_after_the_failure_limit_the_right_password_is_refused_with_a_lockout_page(client, annotator, settings):
    fail(client, "ann", settings.AXES_FAILURE_LIMIT)
    refused = log_in(client, "ann", PASSWORD)
    assert refused.status_code == 429 and not logged_in(refused)
    assert b"Too many failed logins" in refused.content
    assert refused["Content-Type"].startswith("text/html") and b"<main" in refused.content  # a page


def test_thirty_wrong_passwords_then_the_right_one_does_not_log_in(client, annotator):
    fail(client, "ann", 30)
    assert not logged_in(log_in(client, "ann", PASSWORD))


def test_a_lockout_holds_another_user_and_another_address_not(client, annotator, make_user, settings):
    make_user("bea")
    fail(client, "ann", settings.AXES_FAILURE_LIMIT)
    assert logged_in(log_in(client, "bea", PASSWORD))  # another user at the same address
    assert logged_in(log_in(client, "ann", PASSWORD, address="198.51.100.20"))  # ann elsewhere


def test_the_lockout_ends_after_the_cool_off(client, annotator, settings):
    from axes.models import AccessAttempt

    fail(client, "ann", settings.AXES_FAILURE_LIMIT)
    assert not logged_in(log_in(client, "ann", PASSWORD))
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time
                                 - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert logged_in(log_in(client, "ann", PASSWORD))


def test_failures_below_the_limit_are_cleared_by_a_successful_login(client, annotator, settings):
    fail(client, "ann", settings.AXES_FAILURE_LIMIT - 1)
    assert logged_in(log_in(client, "ann", PASSWORD))
    fail(client, "ann", settings.AXES_FAILURE_LIMIT - 1)
    assert logged_in(log_in(client, "ann", PASSWORD))


def test_the_admin_login_locks_out_too(client, admin_user, settings):
    fail(client, "admin", settings.AXES_FAILURE_LIMIT, url="/admin/login/")
    refused = log_in(client, "admin", PASSWORD, url="/admin/login/")
    assert refused.status_code == 429 and b"Too many failed logins" in refused.content
    assert not logged_in(refused)


def test_an_address_trying_many_usernames_is_locked_out_of_every_account(client, annotator, settings):
    settings.RANKLOOP_LOGIN_FAILURES_PER_ADDRESS = 8
    for i in range(8):
        fail(client, f"guess-{i}", 1)  # one try per username: under the per-account limit
    assert log_in(client, "ann", PASSWORD).status_code == 429
    assert logged_in(log_in(client, "ann", PASSWORD, address="198.51.100.21"))


def test_the_api_takes_no_password(annotator):
    """Only tokens and sessions authenticate the API: no password to guess there."""
    import base64

    from rest_framework.test import APIClient

    basic = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    response = APIClient().get("/api/v1/assignments/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 401
