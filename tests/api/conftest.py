"""API test fixtures: DRF clients authenticated by token as admin, annotator, outsider."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(user=None):
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_api(admin_user):
    return token_client(admin_user)


@pytest.fixture
def annotator_api(annotator):
    return token_client(annotator)


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def outsider_api(outsider):
    return token_client(outsider)


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def project(make_project, annotator):
    return make_project("Chat quality", annotators=[annotator])


@pytest.fixture
def ranking_project(make_project, annotator):
    return make_project("Rankings", annotators=[annotator], mode="ranking", candidates_per_prompt=4)


def jsonl(*rows):
    import orjson

    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"
