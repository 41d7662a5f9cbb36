"""One error type, mapped in one place: a RankloopError answers its status, code and message on a
page (rankloop.middleware) and in the API (rankloop.api_common.exception_handler), and in
OpenAI's shape on /v1/ (serving.api.openai_error); what the database refuses answers 400 or 409
without the database's own text."""
import json
import logging

import pytest
from rest_framework.test import APIClient

from labeling.errors import LabelingError
from labeling.models import Project
from labeling.moderation import ModerationConfigError
from models_app.decoding import DecodingConfigError
from models_app.default_model import DefaultModelMissing
from models_app.services import DeploymentRefused, GenerationError, ModelRegistryError
from rankloop.errors import RankloopError
from rlhf.services import RoundConflict, RoundError
from rlhf.uncertainty import NoRewardModel
from serving.api import openai_error
from serving.services import ServingError
from serving.upstream import UpstreamUnavailable
from tests.support.error_urls import SECRET_NAME

pytestmark = pytest.mark.django_db

ERROR_URLS = pytest.mark.urls("tests.support.error_urls")


@pytest.mark.parametrize("error, status, code", [
    (LabelingError, 400, "invalid"),
    (DecodingConfigError, 400, "invalid_decoding"),
    (ModerationConfigError, 400, "invalid_moderation"),
    (ModelRegistryError, 400, "invalid_model"),
    (DeploymentRefused, 409, "deployment_refused"),
    (GenerationError, 400, "generation_refused"),
    (DefaultModelMissing, 503, "default_model_missing"),
    (RoundError, 400, "invalid_round"),
    (RoundConflict, 409, "round_conflict"),
    (NoRewardModel, 409, "no_reward_model"),
    (ServingError, 400, "invalid_request"),
    (UpstreamUnavailable, 503, "upstream_unavailable"),
])
def test_every_apps_errors_are_rankloop_errors_with_a_status_and_code(error, status, code):
    raised = error("Why, in words for the user.")
    assert isinstance(raised, RankloopError)
    assert (raised.status, raised.code, raised.message) == (status, code, "Why, in words for the user.")
    assert raised.as_json() == {"detail": "Why, in words for the user.", "code": code}


@ERROR_URLS
def test_a_refusal_in_a_page_answers_its_status_and_message(client):
    page = client.get("/test-errors/refused/")
    assert page.status_code == 409
    html = page.content.decode()
    assert "This task was closed meanwhile." in html and "<b>task</b>: closed" in html
    assert "<html" in html.lower()  # the whole page, in the site's layout

    fragment = client.get("/test-errors/refused/", headers={"HX-Request": "true"})
    assert fragment.status_code == 409
    assert fragment.content.decode().startswith(
        '<div class="alert error" role="alert" data-refusal>This task was closed')


@ERROR_URLS
def test_a_refusal_in_an_api_view_answers_its_status_code_and_message():
    response = APIClient().post("/test-errors/api/")
    assert response.status_code == 403
    assert response.json() == {"detail": "Only the task's annotator may see this.", "code": "not_yours"}


@ERROR_URLS
@pytest.mark.parametrize("url, status, says", [
    ("/test-errors/duplicate/", 409, "would duplicate an existing object"),
    ("/test-errors/too-long/", 400, "does not fit its field"),
])
def test_a_database_refusal_in_a_page_answers_400_or_409_without_the_databases_text(client, caplog, url, status,
                                                                                   says):
    with caplog.at_level(logging.WARNING, logger="rankloop.pages"):
        page = client.get(url)
    assert page.status_code == status
    html = page.content.decode()
    assert says in html
    for database_text in ("duplicate key", "violates", "character varying", "auth_user", SECRET_NAME):
        assert database_text not in html
    assert "Database refused" in caplog.text  # the database's own message is for the server's log


def test_the_chat_refuses_a_project_the_user_cannot_chat_with_on_the_error_page(client, annotator, make_project):
    project = make_project("Not yours")
    client.force_login(annotator)
    page = client.post("/chat/new/", {"project": project.slug})
    assert page.status_code == 403
    assert f"You cannot chat with {project}." in page.content.decode()
    assert not project.conversations.exists()


def test_the_model_and_round_apis_answer_the_services_codes(admin_user, settings, tmp_path):
    settings.MODEL_STORE = tmp_path
    api = APIClient()
    api.force_authenticate(admin_user)
    project = Project.objects.create(name="Codes")
    bad_path = api.post("/api/v1/model-versions/", {"path": "/no/such/dir", "name": "x"}, format="json")
    assert bad_path.status_code == 400 and bad_path.json()["code"] == "invalid_model"
    no_earlier = api.post("/api/v1/deployments/rollback/", {"project": project.slug}, format="json")
    assert no_earlier.status_code == 409 and no_earlier.json()["code"] == "deployment_refused"
    assert "no earlier deployment" in no_earlier.json()["detail"]
    no_policy = api.post("/api/v1/rounds/", {"project": project.slug, "algorithm": "dpo"}, format="json")
    assert no_policy.status_code == 400 and no_policy.json()["code"] == "invalid_round"
    no_reward_model = api.post("/api/v1/rounds/score-uncertainty/", {"project": project.slug}, format="json")
    assert no_reward_model.status_code == 409 and no_reward_model.json()["code"] == "no_reward_model"


def test_v1_answers_a_rankloop_error_in_openai_shape():
    down = openai_error(UpstreamUnavailable("The model server is not answering."),
                        headers={"x-ratelimit-limit-requests": "5"})
    assert down.status_code == 503 and down["x-ratelimit-limit-requests"] == "5"
    assert json.loads(down.content) == {"error": {"message": "The model server is not answering.",
                                                  "type": "server_error", "code": "upstream_unavailable",
                                                  "param": None}}
    limited = openai_error(ServingError("Slow down.", status=429, code="rate_limit_exceeded",
                                        headers={"Retry-After": "3"}))
    assert limited.status_code == 429 and limited["Retry-After"] == "3"
    assert json.loads(limited.content)["error"]["type"] == "rate_limit_error"
    too_long = json.loads(openai_error(ServingError("Too long.", code="context_length_exceeded",
                                                    param="messages")).content)["error"]
    assert (too_long["type"], too_long["param"]) == ("invalid_request_error", "messages")
    # Any RankloopError, not only the serving app's, has the shape.
    refused = json.loads(openai_error(RoundConflict("Busy.")).content)["error"]
    assert refused == {"message": "Busy.", "type": "invalid_request_error", "code": "round_conflict", "param": None}
