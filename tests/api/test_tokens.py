"""The API-token settings page: create, regenerate, revoke; the token authenticates the API."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_user_creates_regenerates_and_revokes_a_token(client, annotator):
    client.force_login(annotator)
    page = client.get("/accounts/tokens/")
    assert page.status_code == 200 and b"You have no API token" in page.content
    created = client.post("/accounts/tokens/", {"action": "create"})
    key = Token.objects.get(user=annotator).key
    assert key.encode() in created.content
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/assignments/").status_code == 200
    assert key.encode() not in client.get("/accounts/tokens/").content  # shown in full only once

    client.post("/accounts/tokens/", {"action": "regenerate"})
    assert api.get("/api/v1/assignments/").status_code == 401
    new_key = Token.objects.get(user=annotator).key
    assert new_key != key

    revoked = client.post("/accounts/tokens/", {"action": "revoke"}, follow=True)
    assert b"revoked" in revoked.content and not Token.objects.filter(user=annotator).exists()


def test_token_page_needs_login(client):
    assert client.get("/accounts/tokens/").status_code == 302


def test_a_token_of_a_deactivated_user_or_an_unknown_token_is_refused(annotator):
    token = Token.objects.create(user=annotator)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/assignments/").status_code == 200
    # A bulk update skips the signal that deletes a deactivated user's tokens: the token still
    # exists, and authentication refuses it all the same.
    type(annotator).objects.filter(pk=annotator.pk).update(is_active=False)
    refused = api.get("/api/v1/assignments/")
    assert refused.status_code == 401 and "inactive" in refused.json()["detail"]
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert api.get("/api/v1/assignments/").json()["detail"] == "Invalid token."
