"""API test fixtures: DRF clients authenticated by token as admin, annotator, outsider."""
import pytest
from rest_framework.test import APIClient

from tests.support.api import token_client


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
